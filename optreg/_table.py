"""Plain-text output shared by the command line and the comparison table."""

from __future__ import annotations

from collections.abc import Collection, Sequence

__all__ = ["one_line", "text_table"]


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(str(text).split())


def text_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, right: Collection[int] = ()
) -> str:
    """An aligned table: header, a rule of dashes, then the rows.

    Args:
        header: the column titles.
        rows: the cells, as strings, one sequence per row.
        right: indices of the columns to align right (numbers); the others align left.
    """
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])
