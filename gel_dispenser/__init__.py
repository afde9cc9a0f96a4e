"""The Raspberry Pi side, run by `dispenser.py`: config, devices, spool and sender (gpiozero and requests, no Flask)."""

__version__ = "1.0.0"
