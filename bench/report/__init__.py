"""The report of `make bench`: from bench/results.json to the tables and the prose of BENCHMARKS.md and README.md.

The steps measure and write results.json; this package only reads it (`python -m bench.report` renders the docs
again from it, `python -m bench.report merge` puts an `--only fleet` run's figures into it). It imports no step.
"""
