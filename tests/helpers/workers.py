"""pytest-xdist scheduling for this suite: whole modules to a worker, the longest first, the Redis ones together."""

from __future__ import annotations

from typing import Any

import pytest

# Socket.IO's Redis manager publishes on one channel whatever the database, so two workers' servers on one Redis
# would hear each other's pushes: these modules run on one worker, one after the other. A module that uses the
# redis_url fixture and is missing here fails the collection (tests/conftest.py).
REDIS_MODULES = ("tests/test_nginx.py", "tests/test_scale_out.py", "tests/test_notify_cluster.py")

# The modules that take longest (wall time in `make test`, slowest first) start first, so that no long one is left
# running alone at the end while the other workers are done. Only when the run ends depends on this list: a module
# missing from it runs after these, in file order.
LONGEST_FIRST = (
    "tests/test_fleet_pages.py", "tests/test_hardening_load.py", "tests/test_dashboard.py",
    "tests/test_dashboard_more.py", "tests/test_compliance_pages.py", "tests/test_dispenser_delivery.py",
    "tests/test_api.py", "tests/test_live_process.py", "tests/test_torture_dispenser.py", "tests/test_fuzz_api.py",
    "tests/test_ops.py", "tests/test_dispenser_wire.py", "tests/test_scale_out.py", "tests/test_nginx.py",
)


def longest_first(items: list[pytest.Item]) -> None:
    """Put the modules of LONGEST_FIRST first, in its order; the others keep theirs."""
    rank = {module: i for i, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


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
