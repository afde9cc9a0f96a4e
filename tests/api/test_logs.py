"""Server logs: a token carried by an exception is redacted in the message and in the traceback."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from app import create_app
from app.logs import redact_more, setup_logging
from tests.helpers.config import ADMIN, TOKENS


@pytest.fixture
def server_log() -> Iterator[io.StringIO]:
    """What the server's logging setup writes, with the root logger restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_an_exception_carrying_a_token_is_logged_redacted(write_config, server_log):
    token = TOKENS["cafeteria"]
    app = create_app(write_config())
    setup_logging("INFO", app.extensions["usage_config"].secrets(), server_log)

    @app.get("/test-only/crash")
    def crash():  # a driver error that quotes the request it choked on, say
        raise RuntimeError(f"cannot store event for Bearer {token} (admin {ADMIN})")

    resp = app.test_client().get("/test-only/crash")
    assert resp.status_code == 500
    out = server_log.getvalue()
    assert "Traceback (most recent call last)" in out and "RuntimeError: cannot store event for Bearer ***" in out
    assert token not in out and ADMIN not in out
    assert out.count("***") == 2


def test_a_stack_and_a_url_encoded_token_are_redacted_too(server_log):
    token = "tok/en+with=signs-0001"
    setup_logging("DEBUG", [token], server_log)
    logging.getLogger("werkzeug").info("GET /x?t=%s HTTP/1.1", "tok%2Fen%2Bwith%3Dsigns-0001")
    logging.getLogger("app").warning("seen %s", token, stack_info=True)
    out = server_log.getvalue()
    assert "tok%2F" not in out and token not in out
    assert "GET /x?t=*** HTTP/1.1" in out and "Stack (most recent call last)" in out


def test_request_lines_keep_the_query_keys_not_their_values(server_log):
    setup_logging("INFO", [], server_log)
    logging.getLogger("app.access").info('"GET /x?token=abc&group=ward-a#top HTTP/1.1" 200')
    assert server_log.getvalue().endswith('"GET /x?token=***&group=***#top HTTP/1.1" 200\n')


def test_a_reloaded_config_s_new_tokens_are_redacted_and_the_old_ones_still_are(server_log):
    setup_logging("INFO", ["old-token-0001"], server_log)
    redact_more(["new-token-0002"])
    logging.getLogger("app").warning("%s %s", "old-token-0001", "new-token-0002")
    assert server_log.getvalue().rstrip().endswith("logger=app *** ***")
