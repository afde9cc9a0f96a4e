"""The dispenser (gel_dispenser, dispenser.py) on gpiozero mock pins, against real or fake servers."""
