"""Which process does a piece of work, and is it still there.

Records of work in progress (a sync run, a scheduler's heartbeat) carry their process as
`host:pid`, so that recovery can close what a killed process left open — at once when
the process was on this machine and is gone, otherwise after a time no such work takes.
"""

from __future__ import annotations

import os
import socket


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def gone_from_this_host(owner: str | None) -> bool:
    """True when `owner` (host:pid) was a process on this machine that no longer runs."""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    """A killed child not yet reaped by its parent still has a pid: it runs nothing."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
