"""Socket.IO packets that send the figures from the JSON text the GET route already made."""

from __future__ import annotations

import json
from typing import Any

from socketio.packet import EVENT as EVENT_PACKET
from socketio.packet import Packet

from app.live import DELTA, EVENT
from app.live.figures import Payload


class PayloadPacket(Packet):
    """The server's packet class: the figures are plain JSON, already encoded; other packets as usual.

    python-socketio would otherwise walk the whole payload looking for bytes on every emit, then encode it
    again for each push.
    """

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        """The figures never hold bytes; anything else is checked as usual."""
        if isinstance(data, list) and len(data) == 2 and data[0] in (EVENT, DELTA):
            return False
        return super().data_is_binary(data)

    def encode(self) -> Any:
        """The figures' event from the payload's cached JSON text; other packets as usual."""
        data = self.data
        if (self.packet_type == EVENT_PACKET and self.id is None and self.namespace in (None, "/")
                and isinstance(data, list) and len(data) == 2 and data[0] in (EVENT, DELTA)
                and isinstance(data[1], dict)):
            figures = data[1]
            if isinstance(figures, Payload):
                text = figures.encoded()[0]
            else:  # figures received from another process through the message queue
                text = json.dumps(figures, ensure_ascii=False, separators=(",", ":"))
            return f'{EVENT_PACKET}["{data[0]}",{text}]'
        return super().encode()
