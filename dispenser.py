"""The Raspberry Pi side: an IR sensor, a servo, a local spool and a sender to the usage server.

`python dispenser.py --config config.toml` on a Pi; `--simulate` anywhere (gpiozero mock pins).
Standard library, gpiozero and requests only: a dispenser-only Pi never installs Flask.
The code lives in the `gel_dispenser` package; this file is the entry point and keeps the names importable.
"""

import sys

from gel_dispenser import __version__
from gel_dispenser.cli import EXIT_BACKLOG, EXIT_CONFIG, EXIT_OK, main, parse_args
from gel_dispenser.config import SERVO_MAX_ANGLE, SERVO_MIN_ANGLE, Config, ConfigError, load_config, read_config
from gel_dispenser.device import Dispenser
from gel_dispenser.sender import Sender
from gel_dispenser.simulate import Simulator
from gel_dispenser.spool import Spool, new_event
from gel_toolkit import RedactSecrets, setup_logging

__all__ = ["EXIT_BACKLOG", "EXIT_CONFIG", "EXIT_OK", "SERVO_MAX_ANGLE", "SERVO_MIN_ANGLE", "Config", "ConfigError",
           "Dispenser", "RedactSecrets", "Sender", "Simulator", "Spool", "__version__", "load_config", "main",
           "new_event", "parse_args", "read_config", "setup_logging"]

if __name__ == "__main__":
    sys.exit(main())
