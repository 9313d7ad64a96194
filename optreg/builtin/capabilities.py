"""Measured capabilities: the builtins' packaged table (``capabilities.json`` beside this
module) and the tables plugin distributions publish in their READMEs.

A table is measured, never declared. ``python -m optreg.testing --capabilities`` runs
the kit's capability checks (`optreg.testing._capabilities`) on every builtin
optimizer and writes the JSON, with the torch version and machine; a test re-measures
it. ``python -m optreg.testing README.md --provider DIST --capabilities`` writes a
distribution's table between `CAP_START` and `CAP_END` in its README, which
the installed distribution carries as its metadata's description: `published()`
reads it back from there. ``optreg info NAME`` shows a name's row and ``optreg list
--supports compile,fsdp2`` filters by it. A name no table holds is unknown, never
supported.
"""

from __future__ import annotations

import contextlib
import json
import re
import weakref
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CAPABILITIES",
    "CAP_END",
    "CAP_START",
    "TABLE",
    "Verdict",
    "parse",
    "published",
    "row",
    "table",
]

#: The capabilities the kit measures, in the order they are shown.
CAPABILITIES = ("compile", "bf16", "ddp", "fsdp2")
TABLE = Path(__file__).with_name("capabilities.json")
#: The markers around a distribution's capability table in its README.
CAP_START = "<!-- optreg-capability-table:start -->"
CAP_END = "<!-- optreg-capability-table:end -->"
_MEASURED = re.compile(r"Measured with torch (\S+) on ([^:]+): of \d+ optimizers")
#: Lines longer than this are not part of a table (a published README is read line by
#: line, each line at most this long, so a crafted description costs linear time).
MAX_LINE = 4096


@dataclass(frozen=True)
class Verdict:
    """One capability of one name: ``pass``, ``fail`` (the message) or ``n/a`` (why)."""

    status: Literal["pass", "fail", "n/a"]
    detail: str = ""


@cache
def table() -> dict[str, Any]:
    """The stored table: ``{"torch", "machine", "optimizers": {name: {capability:
    [status, detail]}}}``; empty where the file is missing (a bare source tree)."""
    try:
        data: dict[str, Any] = json.loads(TABLE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"torch": None, "machine": None, "optimizers": {}}
    return data


def parse(text: str) -> dict[str, Any]:
    """The capability table between the markers of a README, in `table()`'s shape
    (a detail as the README shows it, shortened); no optimizers without the markers."""
    start = text.find(CAP_START)
    end = text.find(CAP_END, start) if start >= 0 else -1
    found: dict[str, Any] = {"torch": None, "machine": None, "optimizers": {}}
    if start < 0 or end < start:
        return found
    for line in text[start:end].splitlines():
        if len(line) > MAX_LINE:
            continue
        header = None if found["torch"] else _MEASURED.match(line.strip())
        if header:
            found["torch"], found["machine"] = header.groups()
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == len(CAPABILITIES) + 1 and cells[0].startswith("`"):
            verdicts = [cell.partition(": ") for cell in cells[1:]]
            found["optimizers"][cells[0].strip("`")] = {
                c: [status, detail]
                for c, (status, _, detail) in zip(CAPABILITIES, verdicts, strict=True)
            }
    return found


# A distribution's parsed table, once per distribution object (weakly keyed, as the
# metadata cache in optreg._core.entry).
_PUBLISHED: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def published(dist: Any) -> dict[str, Any]:
    """The capability table a plugin distribution publishes in its README (its metadata's
    description), in `table()`'s shape; no optimizers when it has none or its
    metadata cannot be read."""
    try:
        return _PUBLISHED[dist]
    except (KeyError, TypeError):
        pass
    from optreg._core.entry import dist_metadata

    try:
        description = dist_metadata(dist)["Description"] or ""
    except Exception:  # a corrupt or missing METADATA file
        description = ""
    found = parse(str(description))
    with contextlib.suppress(TypeError):  # not weakly referable: parse it each time
        _PUBLISHED[dist] = found
    return found


def row(name: str, dist: Any = None) -> dict[str, Verdict] | None:
    """The measured row of an optimizer's canonical name: the builtins' table, or with
    ``dist`` the table that plugin distribution publishes; None when never measured."""
    source = table() if dist is None else published(dist)
    found = source["optimizers"].get(name)
    if found is None:
        return None
    return {c: Verdict(*found[c]) for c in CAPABILITIES if c in found}
