"""Under CI the browser and service tests are mandatory: every usual way of saying so counts."""

from __future__ import annotations

import pytest

from devkit.servers import ROOT
from tests.helpers.ci import on_ci

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("value", ["true", "TRUE", "True", "1", "yes", "Yes", "on", "ON", " true "])
def test_the_usual_truthy_values_mean_ci(value):
    assert on_ci({"CI": value})


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "FALSE"])
def test_falsy_or_missing_values_do_not(value):
    assert not on_ci({"CI": value})
    assert not on_ci({})


def needs_a_service(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test directory whose only test skips (or fails under CI) for a missing service."""
    pytester.makeconftest("pytest_plugins = ['tests.conftest']")
    pytester.makepyfile(test_needs_service="""
        from tests.helpers.ci import skip_or_fail

        def test_needs_it():
            skip_or_fail("service X not reachable")
    """)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


SUMMARY = ["*1 TESTS SKIPPED: what they guard was NOT tested*", "SKIPPED *test_needs_it*service X not reachable*"]


@pytest.mark.slow  # two pytest runs
def test_a_missing_service_fails_under_ci(pytester, monkeypatch):
    """The skip becomes a failure, and the summary names what was not tested even outside CI."""
    needs_a_service(pytester, monkeypatch)
    monkeypatch.setenv("CI", "1")
    assert pytester.runpytest_inprocess("-p", "no:cacheprovider").ret == pytest.ExitCode.TESTS_FAILED
    monkeypatch.delenv("CI")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(SUMMARY)


@pytest.mark.slow  # a pytest run and its worker process
def test_the_summary_names_the_skipped_tests_under_xdist_too(pytester, monkeypatch):
    """`make test` runs under pytest-xdist: the workers' skips reach the summary."""
    needs_a_service(pytester, monkeypatch)
    monkeypatch.delenv("CI", raising=False)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-n", "1")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(SUMMARY)
