"""Signed recipient tokens."""

from __future__ import annotations

import base64
import hmac
import re

import pytest

from server import tokens
from server.tokens import TokenSigner

KEY_A = "a" * 40
KEY_B = "b" * 40


def test_round_trip_and_tampering() -> None:
    signer = TokenSigner([KEY_A])
    token = signer.sign("anna@example.com")
    assert signer.verify(token) == "anna@example.com"
    recipient, _, signature = token.rpartition(".")
    assert signer.verify(f"bram.{signature}") is None
    assert signer.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert signer.verify(recipient) is None
    assert signer.verify("") is None
    assert signer.verify(None) is None
    assert signer.verify("x" * 500) is None
    assert signer.verify("anna.!!!") is None


def test_rotation_accepts_every_configured_key() -> None:
    old = TokenSigner([KEY_A]).sign("anna")
    rotated = TokenSigner([KEY_B, KEY_A])
    assert rotated.verify(old) == "anna"
    assert rotated.sign("anna") != old
    assert TokenSigner([KEY_B]).verify(old) is None


def test_refuses_ids_that_do_not_fit_a_url() -> None:
    with pytest.raises(ValueError, match="invalid recipient id"):
        TokenSigner([KEY_A]).sign("anna smith")


def test_the_signature_is_hmac_sha256_truncated_to_128_bits_in_unpadded_base64url() -> None:
    token = TokenSigner([KEY_A]).sign("anna@example.com")
    recipient, _, signature = token.rpartition(".")
    assert recipient == "anna@example.com"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", signature)  # base64url, no '=' padding
    raw = base64.urlsafe_b64decode(signature + "==")
    assert len(raw) * 8 == 128
    full = hmac.digest(KEY_A.encode(), tokens._DOMAIN + recipient.encode(), "sha256")
    assert raw == full[:16]


def test_an_orders_name_in_the_counters_is_keyed_and_survives_rotation() -> None:
    signer = TokenSigner([KEY_A])
    named = signer.order_key("anna", "anna-o1")
    assert re.fullmatch(r"[0-9a-f]{20}", named)
    assert TokenSigner([KEY_B, KEY_A]).order_key("anna", "anna-o1") == named  # the oldest key
    assert TokenSigner([KEY_B]).order_key("anna", "anna-o1") != named  # no key, no guess
    assert signer.order_key("bram", "anna-o1") != named  # one recipient's order
    assert signer.pseudonym("anna") != signer.order_key("anna", "")
