"""`python -m bench.report`: the docs from bench/results.json; `merge`: first the fleet figures of an `--only fleet`
run (bench/work/partial.json) into results.json."""

from __future__ import annotations

import sys

from bench.report.docs import merge, render_results

if __name__ == "__main__":
    if sys.argv[1:] == ["merge"]:
        merge()
    elif sys.argv[1:]:
        sys.exit("usage: python -m bench.report [merge]")
    else:
        render_results()
