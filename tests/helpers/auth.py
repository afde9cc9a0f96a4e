"""Authorization headers as dispensers and the admin send them."""

from __future__ import annotations


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying `token` as a Bearer token."""
    return {"Authorization": f"Bearer {token}"}
