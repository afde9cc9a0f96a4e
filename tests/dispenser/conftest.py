"""Fixtures of the dispenser tests: fake servers and a sender started on a spool of three doses."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from gel_dispenser.sender import Sender
from gel_dispenser.spool import Spool
from tests.helpers.fake_server import Fake, Handler
from tests.helpers.rigs import spooled


@pytest.fixture
def fake() -> Iterator[Callable[..., Fake]]:
    """fake(behave) -> a running Fake, shut down at teardown."""
    servers: list[Fake] = []

    def start(behave: Callable[[Handler, bytes | None], None]) -> Fake:
        servers.append(Fake(behave))
        return servers[-1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sender_for(tmp_path) -> Iterator[Callable[..., tuple[Sender, Spool]]]:
    """sender_for(url, **config) -> a started Sender with 3 doses spooled (and a refill pending when asked)."""
    made: list[tuple[Sender, Spool]] = []

    def start(url: str, refill: bool = False, **changes) -> tuple[Sender, Spool]:
        sender, spool = spooled(tmp_path, url, backoff_base_s=0.05, backoff_max_s=0.2, **changes)
        if refill:
            sender.request_refill()
        made.append((sender.start(), spool))
        return made[-1]

    yield start
    for sender, spool in made:
        assert sender.stop()
        spool.close()
