"""Whole numbers from query arguments and headers: ASCII digits only.

``str.isdigit`` is true for ``²`` and other digits that ``int`` refuses (and ``int`` refuses
more than 4,300 digits), so request text is matched against ``[0-9]{1,18}`` instead.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]{1,18}")


def whole_number(text: str) -> int | None:
    """``text`` as a non-negative integer when it is 1 to 18 ASCII digits, else None."""
    return int(text) if _DIGITS.fullmatch(text) else None
