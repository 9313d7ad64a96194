"""The conformance kit's verdict on every name of a provider, as a Markdown table.

``python -m optreg.testing README.md --provider optreg-heavyball`` runs every check over
the provider's names and writes the table between the README's markers::

    <!-- optreg-kit-table:start -->
    <!-- optreg-kit-table:end -->

``--check`` writes nothing and exits 1 when the table there is not what the kit says now.
With ``--capabilities`` the same command measures the provider's optimizers' capabilities
(`optreg.testing._capabilities`) into the section between
``<!-- optreg-capability-table:start -->`` and ``<!-- optreg-capability-table:end -->``.
A row is one name: ``passes`` (every check), ``passes, with gaps`` (some checks declared
not to apply, each with its reason), ``fails`` (the check and the kit's message), ``not
checked`` (a whole-name skip, with its reason) or ``unavailable`` (what to install).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optreg.builtin.capabilities import CAP_END, CAP_START

if TYPE_CHECKING:
    from optreg._core.entry import Entry

__all__ = [
    "CAP_END",
    "CAP_START",
    "END",
    "START",
    "Row",
    "assert_table_current",
    "conformance_rows",
    "parse_capabilities",
    "render",
    "render_capabilities",
    "replace_section",
]

START = "<!-- optreg-kit-table:start -->"
END = "<!-- optreg-kit-table:end -->"
STATUSES = ("passes", "passes, with gaps", "fails", "not checked", "unavailable")


@dataclass(frozen=True)
class Row:
    """The kit's verdict on one name.

    Attributes:
        kind: ``"optimizer"`` or ``"scheduler"``.
        name: the entry's plain name (``dist:name`` always reaches it; the plain name
            does where no builtin shadows it and no other plugin has it).
        status: one of `STATUSES`.
        detail: the reason, the failing check's message or the checked kwargs.
        device: the device the name needs beyond the CPU (its ``"device"`` conformance
            metadata), else ``""``.
    """

    kind: str
    name: str
    status: str
    detail: str = ""
    device: str = ""


def _one(entry: Entry) -> Row:
    from optreg import testing
    from optreg._core.registry import optimizers, schedulers

    registry = optimizers if entry.kind == "optimizer" else schedulers
    name = entry.name
    needs = testing.needs(entry)
    device = str(needs.get("device") or "")
    available, reason = registry.status(entry)
    if not available:
        hint = f"; it needs {device.upper()} hardware too" if device else ""
        return Row(entry.kind, name, "unavailable", f"{reason}{hint}", device)
    if needs.get("skip"):
        return Row(entry.kind, name, "not checked", str(needs["skip"]), device)
    check = testing.check_optimizer if entry.kind == "optimizer" else testing.check_scheduler
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = check(entry)
    except AssertionError as e:
        message = str(e).splitlines()[0]
        label = f"{entry.kind} {entry.qualified_name!r}: "
        return Row(entry.kind, name, "fails", message.removeprefix(label))
    except Exception as e:  # a check that could not even start (a broken plugin)
        return Row(entry.kind, name, "fails", f"{type(e).__name__}: {e}")
    kwargs = needs.get("kwargs")
    checked = f"checked with {kwargs!r}" if kwargs else ""
    if report.skipped:
        gaps = "; ".join(f"{k}: {v}" for k, v in report.skipped.items())
        return Row(entry.kind, name, "passes, with gaps", "; ".join(filter(None, [gaps, checked])))
    return Row(entry.kind, name, "passes", checked)


def conformance_rows(providers: Iterable[str]) -> list[Row]:
    """Check every optimizer and scheduler of ``providers`` (distribution names).

    Raises:
        ValueError: a provider that provides no installed name.
    """
    from optreg.testing._common import provided

    entries = provided(providers, ("optimizer", "scheduler"), "name")
    entries.sort(key=lambda e: (e.kind != "optimizer", e.name))
    return [_one(e) for e in entries]


def _cell(text: str, limit: int = 240) -> str:
    text = re.sub(r"\s+", " ", text).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render(rows: Sequence[Row]) -> str:
    """The Markdown table of ``rows``, with a count per status above it."""
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines = [
        f"{len(rows)} names: {summary}.",
        "",
        "| kind | name | kit | detail |",
        "| --- | --- | --- | --- |",
        *(f"| {r.kind} | `{r.name}` | {r.status} | {_cell(r.detail)} |" for r in rows),
    ]
    return "\n".join(lines)


def replace_section(text: str, table: str, markers: tuple[str, str] = (START, END)) -> str:
    """``text`` with what lies between the two ``markers`` replaced by ``table``.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    first, last = markers
    start, end = text.find(first), text.find(last)
    if start < 0 or end < start:
        raise ValueError(f"the file needs the two lines {first} and {last}, in that order")
    return text[: start + len(first)] + "\n" + table + "\n" + text[end:]


def render_capabilities(measured: dict[str, Any]) -> str:
    """The Markdown table of a `capability_table()`:
    the torch version and machine, a count per capability, a row per name."""
    from optreg.builtin.capabilities import CAPABILITIES

    rows = measured["optimizers"]
    counts = ", ".join(f"{c} {sum(r[c][0] == 'pass' for r in rows.values())}" for c in CAPABILITIES)
    lines = [
        f"Measured with torch {measured['torch']} on {measured['machine']}: of "
        f"{len(rows)} optimizers, {counts} pass.",
        "",
        f"| name | {' | '.join(CAPABILITIES)} |",
        f"| --- |{' --- |' * len(CAPABILITIES)}",
    ]
    for name, caps in rows.items():
        cells = [
            status if status == "pass" else f"{status}: {_cell(detail, 90)}"
            for status, detail in (caps[c] for c in CAPABILITIES)
        ]
        lines.append(f"| `{name}` | {' | '.join(cells)} |")
    return "\n".join(lines)


def parse_capabilities(text: str) -> dict[str, list[str]]:
    """``{name: [status per capability]}`` of the capability table in ``text``."""
    from optreg.builtin.capabilities import CAPABILITIES, parse

    return {
        name: [caps[c][0] for c in CAPABILITIES] for name, caps in parse(text)["optimizers"].items()
    }


def parse(text: str) -> list[tuple[str, str, str]]:
    """``(kind, name, status)`` of each row of the table between the markers."""
    start, end = text.find(START), text.find(END)
    rows = []
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] in ("optimizer", "scheduler"):
            rows.append((cells[0], cells[1].strip("`"), cells[2]))
    return rows


def stale(text: str, rows: Sequence[Row]) -> list[tuple[str, str, str]]:
    """The ``(kind, name, status)`` rows on which ``text``'s table and ``rows`` differ."""
    return sorted(set(parse(replace_section(text, render(rows)))) ^ set(parse(text)))


def assert_table_current(path: str | Path, provider: str) -> list[Row]:
    """Check that the kit table in ``path`` says what the kit says now (an adapter's test).

    Returns:
        The rows, for further assertions.

    Raises:
        AssertionError: a name's verdict differs, or a name is missing or extra; the
            message gives the command that rewrites the table.
    """
    rows = conformance_rows([provider])
    diff = stale(Path(path).read_text(encoding="utf-8"), rows)
    if diff:
        raise AssertionError(
            f"the kit table in {path} is out of date ({diff[:6]}): run "
            f"python -m optreg.testing {path} --provider {provider}"
        )
    return rows
