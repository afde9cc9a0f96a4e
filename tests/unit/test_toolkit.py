"""gel_toolkit, shared by the server and the dispenser: TOML loading, redaction, loopback hosts."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest

import gel_toolkit
from devkit.servers import ROOT
from gel_toolkit import ConfigFileError, RedactSecrets, load_toml, redact

SECRET = "s3cret-token-0001"


def test_load_toml_reads_a_table(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[dispenser]\nid = "entree"\n', encoding="utf-8")
    assert load_toml(path) == {"dispenser": {"id": "entree"}}


@pytest.mark.parametrize("content, message", [
    (None, "config file not found: {path}"),
    ("[dispenser\nid = 1\n", "{path}: not valid TOML: "),
    ("", "config file {path} cannot be read: "),
])
def test_load_toml_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "config.toml"
    if content == "":
        path.mkdir()  # a directory where the file should be
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigFileError) as excinfo:
        load_toml(path)
    assert str(excinfo.value).startswith(message.format(path=path))
    assert isinstance(excinfo.value, ValueError)


def test_redact_replaces_plain_and_url_encoded_secrets():
    assert redact(f"Bearer {SECRET} and {SECRET}", [SECRET, ""]) == "Bearer *** and ***"
    assert redact("?t=a%2Bb%3D%3D", ["a+b=="]) == "?t=***"
    assert redact("nothing here", []) == "nothing here"


def record_output(secrets: list[str], log: callable) -> str:
    """What one handler carrying the filter writes for the records `log` emits."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets(secrets))
    logger = logging.getLogger("toolkit-test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        log(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_filter_redacts_message_args_traceback_and_stack():
    def log(logger: logging.Logger) -> None:
        logger.warning("token=%s", SECRET)
        try:
            raise ValueError(f"bad {SECRET}")
        except ValueError:
            logger.exception("failed", stack_info=True)

    out = record_output([SECRET], log)
    assert SECRET not in out
    assert "token=***" in out and "ValueError: bad ***" in out and "Stack (most recent call last)" in out


def test_is_loopback():
    assert gel_toolkit.is_loopback("localhost") and gel_toolkit.is_loopback("127.0.0.2")
    assert gel_toolkit.is_loopback("::1")
    assert not gel_toolkit.is_loopback("192.168.1.10") and not gel_toolkit.is_loopback("pi.local")


def test_toolkit_is_standard_library_only():
    code = ("import sys, gel_toolkit; std = set(sys.stdlib_module_names); "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] not in std | {'gel_toolkit', '__main__'}); "
            "print(bad); sys.exit(bool(bad))")
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
