"""Transitional shim: bench/ still puts tests/ on sys.path and imports this; tests use tests.helpers.servers."""

from helpers.servers import ROOT, ServerProcess, free_port, wait_for

__all__ = ["ROOT", "ServerProcess", "free_port", "wait_for"]
