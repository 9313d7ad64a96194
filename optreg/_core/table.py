"""Plain-text output shared by the command line and the comparison table."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence

__all__ = ["one_line", "printable", "text_table"]


# ANSI escape sequences: CSI (colours, cursor moves), OSC (titles, links), and the rest
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def printable(text: object) -> str:
    """``text`` safe for a terminal: ANSI escape sequences removed, every other control
    character (a plugin's description may hold any) shown as ``\\xNN``; line breaks and
    tabs kept."""
    cleaned = _ANSI.sub("", str(text))
    return "".join(
        c if c in "\n\r\t" or unicodedata.category(c) != "Cc" else f"\\x{ord(c):02x}"
        for c in cleaned
    )


def one_line(text: object) -> str:
    """``text`` on one line, safe for a terminal (`printable()`): every run of
    whitespace (newlines included) made one space."""
    return " ".join(printable(text).split())


def text_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, right: Collection[int] = ()
) -> str:
    """An aligned table: header, a rule of dashes, then the rows.

    Args:
        header: the column titles.
        rows: the cells, as strings, one sequence per row.
        right: indices of the columns to align right (numbers); the others align left.
    """
    rows = [[one_line(cell) for cell in row] for row in rows]  # a cell is one printable line
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])
