"""Signed recipient tokens: ``<recipient id>.<HMAC-SHA256 signature>``.

The signature covers the recipient id only, so one token serves every campaign an ESP sends.
Several keys verify, the first signs: add a new key in front, and drop the old one once no
email carrying it is still read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from models.conversions.click_refs import ClickRef
from models.recipients.upserts import valid_recipient_id
from models.storage.slots import SLOTS

SIGNATURE_BYTES = 16
_DOMAIN = b"blanco-recipient-v1\x00"
_PSEUDONYM_DOMAIN = b"pseudonym\x00"
_ORDER_DOMAIN = b"order\x00"
_CLICK_DOMAIN = b"blanco-click-v1\x00"
_CLICK_ID = re.compile(r"^[0-9a-f]{4}[A-Za-z0-9_-]{16}$")


def _keyed(key: bytes, prefix: bytes) -> hmac.HMAC:
    """HMAC-SHA256 under ``key`` with ``prefix`` already fed: each use copies it, which skips
    setting the key up again (the open path signs twice per request)."""
    return hmac.new(key, prefix, hashlib.sha256)


def _mac(keyed: hmac.HMAC, recipient_id: str) -> bytes:
    mac = keyed.copy()
    mac.update(recipient_id.encode())
    return mac.digest()


def _signature(keyed: hmac.HMAC, recipient_id: str) -> str:
    mac = _mac(keyed, recipient_id)
    return base64.urlsafe_b64encode(mac[:SIGNATURE_BYTES]).rstrip(b"=").decode()


class TokenSigner:
    """Signs and verifies recipient tokens with a list of keys."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("TokenSigner needs at least one key")
        self._signing = tuple(_keyed(key.encode(), _DOMAIN) for key in keys)
        self._pseudonyms = _keyed(keys[-1].encode(), _PSEUDONYM_DOMAIN)
        self._orders = _keyed(keys[-1].encode(), _ORDER_DOMAIN)
        self._clicks = tuple(_keyed(key.encode(), _CLICK_DOMAIN) for key in keys)

    def sign(self, recipient_id: str) -> str:
        """The token for ``recipient_id``, signed with the first key."""
        if not valid_recipient_id(recipient_id):
            raise ValueError("invalid recipient id")
        return f"{recipient_id}.{_signature(self._signing[0], recipient_id)}"

    def pseudonym(self, recipient_id: str) -> str:
        """A stable, non-reversible stand-in for the recipient id in events and counters."""
        return _mac(self._pseudonyms, recipient_id).hex()[:20]

    def order_key(self, recipient_id: str, order_id: str) -> str:
        """A stable, non-reversible name for one recipient's order in the money counters (an
        order id may hold personal data, and the counters outlive an erasure)."""
        return _mac(self._orders, f"{recipient_id}\x00{order_id}").hex()[:20]

    def verify(self, token: str | None) -> str | None:
        """The recipient id of a genuine token, else None. Constant time per key."""
        if not token or len(token) > 200:
            return None
        recipient_id, _, given = token.rpartition(".")
        if not valid_recipient_id(recipient_id) or not given.isascii():
            return None
        matched = False
        for keyed in self._signing:
            matched |= hmac.compare_digest(given, _signature(keyed, recipient_id))
        return recipient_id if matched else None

    def sign_click(self, ref: ClickRef) -> str:
        """A click's attribution token: ``<slot, 4 hex digits><click id>.<signature>``. It
        names a Redis slot and a random id, nothing about the recipient."""
        named = f"{ref.slot:04x}{ref.click_id}"
        return f"{named}.{_signature(self._clicks[0], named)}"

    def verify_click(self, token: str | None) -> ClickRef | None:
        """The reference a genuine click token names, else None. Constant time per key."""
        if not token or len(token) > 100:
            return None
        named, _, given = token.rpartition(".")
        if not _CLICK_ID.match(named) or not given.isascii():
            return None
        matched = False
        for keyed in self._clicks:
            matched |= hmac.compare_digest(given, _signature(keyed, named))
        slot = int(named[:4], 16)
        return ClickRef(slot, named[4:]) if matched and slot < SLOTS else None


@dataclass(frozen=True)
class Identity:
    """Who a URL names: a signed token's recipient, or an unsigned ESP subscriber key (which
    only campaigns that allow it accept, with restricted content), or nobody."""

    recipient_id: str | None
    signed: bool = True


def identify(signer: TokenSigner, token: str | None, subscriber_key: str | None) -> Identity:
    """A genuine token wins; else a well-formed subscriber key, marked unsigned."""
    verified = signer.verify(token)
    if verified is not None:
        return Identity(verified)
    if subscriber_key and valid_recipient_id(subscriber_key):
        return Identity(subscriber_key, signed=False)
    return Identity(None)
