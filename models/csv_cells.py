"""Text cells for CSV files that people open in spreadsheets.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return before one) as a formula, so a recipient named ``=HYPERLINK(…)`` would run in the
marketer's spreadsheet; and a line break inside a value splits the row for many importers. CSV
exports write text through ``safe_cell``; their JSON Lines form keeps every value as stored.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
LINE_BREAKS = ("\r\n", "\n", "\r", "\u2028", "\u2029", "\x0b", "\x0c", "\x85")


def safe_cell(text: str) -> str:
    """``text`` as a cell a spreadsheet shows as text: each line break becomes a space, and a
    cell a spreadsheet would read as a formula gets a leading apostrophe (which spreadsheets
    take as "this is text" and do not show)."""
    if text.startswith(FORMULA_STARTS):
        text = "'" + text
    for line_break in LINE_BREAKS:
        if line_break in text:
            text = text.replace(line_break, " ")
    return text
