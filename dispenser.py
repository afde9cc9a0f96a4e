"""The Raspberry Pi side: an IR sensor, a servo, a local spool and a sender to the usage server.

`python dispenser.py --config config.toml` on a Pi; `--simulate` anywhere (gpiozero mock pins).
Standard library, gpiozero and requests only: a dispenser-only Pi never installs Flask.
The code lives in the `gel_dispenser` package; this file is only the entry point.
"""

import sys

from gel_dispenser.cli import main

if __name__ == "__main__":
    sys.exit(main())
