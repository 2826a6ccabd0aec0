"""Redis Cluster hash slots: which slot a key's hash tag falls in, and a short tag for every slot.

A key is placed by the CRC16 of its hash tag (the part between the first ``{`` and the next
``}``). ``slot_tag`` gives, for any slot, a short tag of our own that falls in it, so that data
which must live beside a recipient's keys but may not name the recipient (the tombstones of
erased ids) can be kept in the same slot.
"""

from __future__ import annotations

import threading

from redis.crc import key_slot

SLOTS = 16384
_tags: list[str] | None = None
_lock = threading.Lock()


def slot_of(tag: str) -> int:
    """The slot of a key whose hash tag is ``tag``."""
    return int(key_slot(tag.encode()))


def _all_tags() -> list[str]:
    """One tag per slot: the first of ``e0``, ``e1``, … that falls in it (worked out once,
    in about a tenth of a second)."""
    global _tags
    if _tags is None:
        with _lock:
            if _tags is None:
                found: list[str | None] = [None] * SLOTS
                left, number = SLOTS, 0
                while left:
                    tag = f"e{number}"
                    slot = slot_of(tag)
                    if found[slot] is None:
                        found[slot] = tag
                        left -= 1
                    number += 1
                _tags = [t for t in found if t is not None]
    return _tags


def slot_tag(slot: int) -> str:
    """A short hash tag that falls in ``slot``."""
    return _all_tags()[slot]
