"""sd_notify: a datagram to $NOTIFY_SOCKET; a no-op when systemd did not set one."""

from __future__ import annotations

import os
import socket


def notify(*fields: str) -> bool:
    """Send e.g. notify("READY=1", "STATUS=running"); False when there is no socket."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(fields).encode())
    except OSError:
        return False
    return True
