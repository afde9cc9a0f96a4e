"""The seed's sensor loop, for the idle-CPU comparison: `while True: if sensor: ...; sleep(0.1)` on a mock pin."""

from __future__ import annotations

import time

from gpiozero import DigitalInputDevice
from gpiozero.pins.mock import MockFactory


def main() -> None:
    """Poll a mock IR sensor every 100 ms forever, like the seed's loop."""
    sensor = DigitalInputDevice(17, pull_up=True, pin_factory=MockFactory())
    while True:
        if sensor.is_active:
            print("hand")
        time.sleep(0.1)


if __name__ == "__main__":
    main()
