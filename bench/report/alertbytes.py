"""The alertbytes step's rows in the goals table, from results.json."""

from __future__ import annotations


def rows(fig: dict) -> list[tuple[str, str, str, float | None, float, str]]:
    """One row per offline count: bytes per use received by a dashboard joined to the whole fleet."""
    a = fig["alertbytes"]
    out = []
    for offline, got in a["offline"].items():
        out.append((f"{a['dispensers']:,} dispensers, {int(offline):,} offline: bytes per use to a joined dashboard "
                    "(websocket frames)",
                    f"{got['bytes_per_use']:,.0f} B (largest frame {got['largest_frame']:,} B; connecting and the "
                    f"fleet's change, once: {got['warmup_bytes'] / 1024:,.0f} KiB)", "<= 2 KiB", got["bytes_per_use"],
                    2048.0, "<="))
    return out
