"""pytest-xdist scheduling for this suite: whole modules to a worker, the modules that share Redis to one worker."""

from __future__ import annotations

from typing import Any

import pytest

# Socket.IO's Redis manager publishes on one channel whatever the database, so two workers' servers on one Redis
# would hear each other's pushes: these modules run on one worker, one after the other. A module that uses the
# redis_url fixture and is missing here fails the collection (tests/conftest.py).
REDIS_MODULES = ("tests/test_nginx.py", "tests/test_scale_out.py")


def module_scheduling(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` (a module-scoped fixture is built once per run), with the Redis modules as one unit."""
    from xdist.scheduler import LoadFileScheduling

    class ModuleScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return "redis" if module in REDIS_MODULES else module

    return ModuleScheduling(config, log)
