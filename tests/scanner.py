"""Reading QR codes and barcodes back with a real decoder: ZBar, through pyzbar. ``make test``
installs Debian's libzbar0 (``make zbar``); without it the tests fail and say so."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

ZBAR_TYPES = {"qr": "QRCODE", "code128": "CODE128", "ean13": "EAN13", "upca": "UPCA"}
"""ZBar's name of each symbology of a code block."""


def _zbar() -> Any:
    try:
        from pyzbar import pyzbar  # loads libzbar: only once a test reads a code
    except ImportError as exc:
        pytest.fail(f"no ZBar library ({exc}): install Debian's libzbar0 (make zbar does)")
    return pyzbar


def scan(image: Image.Image | bytes, symbology: str) -> list[tuple[str, str]]:
    """(ZBar type, text) of every code of ``symbology`` ZBar finds in ``image`` (or its bytes).

    UPC-A is read with EAN-13 enabled too, as ZBar needs; otherwise only the one symbology is.
    """
    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    pyzbar = _zbar()
    wanted = [getattr(pyzbar.ZBarSymbol, ZBAR_TYPES[symbology])]
    if symbology == "upca":
        wanted.append(pyzbar.ZBarSymbol.EAN13)
    found = pyzbar.decode(image.convert("L"), symbols=wanted)
    return [(code.type, code.data.decode()) for code in found]
