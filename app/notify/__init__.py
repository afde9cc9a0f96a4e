"""Alerts that leave the screen: transitions written to an outbox, then delivered to webhooks and Apprise targets.

`tracker` turns the live figures' alerts into transitions (raised, resolved) recorded once, `texts` writes
them for people, `senders` speaks to the receivers, `worker` delivers in order with retries, in one process.
"""
