"""MQTT for Home Assistant and building systems: discovery configs, retained states, availability.

`discovery` writes Home Assistant's device configs, `publisher` keeps the broker current: what changed, at most
once a second per dispenser, off the request path, and everything again when the broker or Home Assistant returns.
"""
