"""optreg._core.table: the one text-table and one-line formatter of the CLI and compare."""

from __future__ import annotations

from optreg._core.table import one_line, text_table  # the module under test


def test_text_table_aligns_left_and_right() -> None:
    table = text_table(("name", "n"), [("adamw", "1"), ("sgd", "100")], right={1})
    assert table.splitlines() == ["name     n", "-----  ---", "adamw    1", "sgd    100"]


def test_text_table_strips_trailing_blanks() -> None:
    assert text_table(("a", "b"), [("x", "")]).splitlines()[2] == "x"


def test_one_line() -> None:
    assert one_line("a\n  b\tc ") == "a b c"
