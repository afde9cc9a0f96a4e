"""pytest-xdist scheduling for this suite: whole modules to a worker, the longest first, the Redis ones together.

How long a module takes is measured, not kept by hand: `make test` (pytest --write-durations) records each module's
wall time (setup, call and teardown of its tests) in tests/durations.json at the end of the run, and the next run
starts the longest first, so that no long module is left running alone at the end while the other workers are done.
A module missing from the file (new, or renamed) goes first: it may be long.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

DURATIONS = Path(__file__).resolve().parents[1] / "durations.json"
ROOT = DURATIONS.parents[1]

# Socket.IO's Redis manager publishes on one channel whatever the database, so two workers' servers on one Redis
# would hear each other's pushes: these modules run on one worker, one after the other. A module that uses the
# redis_url fixture and is missing here fails the collection (tests/conftest.py).
REDIS_MODULES = ("tests/services/test_nginx.py", "tests/services/test_scale_out.py",
                 "tests/services/test_notify_cluster.py")


def module_of(nodeid: str) -> str:
    """The module part of a test id: tests/kind/test_x.py."""
    return nodeid.split("::", 1)[0]


def load_durations(path: Path = DURATIONS) -> dict[str, float]:
    """module -> seconds, as the last full run measured them (empty when there is no file yet)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def longest_first(items: list[pytest.Item], durations: dict[str, float] | None = None) -> None:
    """Sort the modules by measured duration, longest first, unknown ones before all; a module's tests keep their
    order (the sort is stable)."""
    durations = load_durations() if durations is None else durations
    items.sort(key=lambda item: -durations.get(module_of(item.nodeid), math.inf))


class DurationsRecorder:
    """Sums each module's test durations during the run; writes them to DURATIONS when the session ends."""

    def __init__(self, path: Path = DURATIONS) -> None:
        self.path = path
        self.seconds: dict[str, float] = defaultdict(float)

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Under xdist the controller hears every worker's reports, so one process sees the whole run."""
        self.seconds[module_of(report.nodeid)] += report.duration

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """The measured modules replace their old figures; modules whose file is gone are dropped."""
        if not self.seconds:
            return
        merged = {**load_durations(self.path), **{m: round(s, 1) for m, s in self.seconds.items()}}
        kept = {m: s for m, s in sorted(merged.items()) if (ROOT / m).is_file()}
        self.path.write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")


def record_durations(config: pytest.Config) -> None:
    """With --write-durations, record this run's module durations (in the controller only, not in xdist workers)."""
    if config.getoption("write_durations") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(DurationsRecorder(), "gel-durations")


def module_scheduling(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` (a module-scoped fixture is built once per run) in collection order (longest_first), with
    the Redis modules as one unit."""
    from xdist.scheduler import LoadFileScheduling

    class ModuleScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return "redis" if module in REDIS_MODULES else module

    config.option.loadscopereorder = False  # xdist's own order is by test count: 100 quick API tests first
    return ModuleScheduling(config, log)
