"""gel_toolkit, shared by the server and the dispenser: TOML loading, redaction, loopback hosts."""

from __future__ import annotations

import io
import logging
import re
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
    if content == "":
        assert str(excinfo.value).endswith(": Is a directory")  # the reason in words, not the errno and path again


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


def test_the_longest_secret_is_masked_first_so_no_part_of_it_is_left():
    # Were "abc-1" masked first, "***23" would leave the longer token's tail in the log.
    assert redact("Bearer abc-123 then abc-1.", ["abc-1", "abc-123"]) == "Bearer *** then ***."
    assert redact("q=abc%2B1", ["abc+1", "abc"]) == "q=***"


def test_only_non_empty_strings_count_as_secrets():
    assert redact("a None 0 here", [None, 0, "", "here"]) == "a None 0 ***"


def test_added_secrets_are_masked_and_the_first_ones_still_are():
    flt = RedactSecrets(["old-token-1"])
    flt.add(["new-token-22"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(flt)
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "%s and %s", ("old-token-1", "new-token-22"), None)
    handler.handle(record)
    assert stream.getvalue() == "*** and ***\n"


def test_a_traceback_formatted_before_the_filter_is_masked_too():
    try:
        raise ValueError(f"bad {SECRET}")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    record.exc_text = logging.Formatter().formatException(record.exc_info)  # another handler formatted it first
    RedactSecrets([SECRET]).filter(record)
    assert SECRET not in record.exc_text and "ValueError: bad ***" in record.exc_text


def test_setup_logging_leaves_one_handler_at_the_level_asked(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [logging.NullHandler()])
    monkeypatch.setattr(root, "level", logging.WARNING)
    stream = io.StringIO()
    handler = gel_toolkit.setup_logging("debug", [SECRET], stream, fmt="%(levelname)s|%(message)s")
    assert root.handlers == [handler] and root.level == logging.DEBUG
    logging.getLogger("anyone").debug("token %s", SECRET)
    assert stream.getvalue() == "DEBUG|token ***\n"


def test_secrets_are_masked_by_length_not_by_alphabet():
    # In reverse alphabetical order "zz-9" would go first and leave the "a" of "azz-9" in the log.
    assert redact("key azz-9 and zz-9", ["zz-9", "azz-9"]) == "key *** and ***"


def test_a_slash_in_a_secret_is_masked_url_encoded_too():
    assert redact("GET /x?t=ab%2Fcd HTTP/1.1", ["ab/cd"]) == "GET /x?t=*** HTTP/1.1"


def test_the_default_line_is_time_level_logger_message(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    stream = io.StringIO()
    gel_toolkit.setup_logging("info", [], stream)
    logging.getLogger("dispenser").info("dose dispenser=entree")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO dispenser dose dispenser=entree\n",
                        stream.getvalue())
