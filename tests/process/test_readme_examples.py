"""Issue 23 item 9: every curl example of the README, run as written against `make demo` (tools/demo.py on the
shipped config.toml), answers as the README shows: 2xx (or the 304 it names), and the body where one is shown."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from devkit.servers import ROOT, free_port, reaped, stop_process, wait_for
from tests.helpers.demo import start_demo

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
BASE = "http://127.0.0.1:5000"


def curl_examples() -> list[tuple[list[str], dict | None]]:
    """Each `curl` command of the README's sh blocks (continuations joined, comments dropped) and the JSON
    answer the README prints on the next line as `# {...}`, if any."""
    examples = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        lines = block.replace("\\\n", " ").splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("curl "):
                continue
            shown = lines[i + 1].strip() if i + 1 < len(lines) else ""
            examples.append((shlex.split(line, comments=True), json.loads(shown[2:]) if shown.startswith("# {")
                             else None))
    return examples


def test_every_readme_curl_example_answers_as_shown_against_the_demo(tmp_path: Path) -> None:
    examples = curl_examples()
    assert len(examples) >= 12, examples
    assert any("group=" in " ".join(args) for args, _ in examples)  # the group examples are among them
    port = free_port()
    shipped = (ROOT / "config.toml").read_text(encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(shipped.replace("port = 5000", f"port = {port}"), encoding="utf-8")
    proc, out, err = start_demo(config, tmp_path)
    with reaped(proc):
        url = wait_for(lambda: next((x for x in out if x.startswith("http://")), None) or proc.poll() is not None,
                       60, message="URL line")
        assert isinstance(url, str), err
        failed = []
        for args, shown in examples:
            command = [a.replace(BASE, url.rstrip("/")) for a in args]
            run = subprocess.run([command[0], "-sS", "--max-time", "20", "-w", "\n%{http_code}", *command[1:]],
                                 capture_output=True, text=True, cwd=tmp_path, timeout=30)
            body, _, status = run.stdout.rpartition("\n")
            if run.returncode != 0 or status not in ("200", "304"):
                failed.append((" ".join(args), status, body[-300:], run.stderr[-300:]))
            elif shown is not None and json.loads(body) != shown:
                failed.append((" ".join(args), status, body, f"README shows {shown}"))
        assert failed == [], failed
        assert stop_process(proc, signal.SIGINT, 30) == 0
