"""Helpers shared by the tests and the benchmarks: real server processes on free ports, the zygote, Chromium's flags.

Neutral ground: devkit imports neither `tests` nor `bench` (import-linter contracts in pyproject.toml).
"""
