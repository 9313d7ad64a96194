"""The builtins' measured capabilities (``capabilities.json`` beside this module).

The table is measured, never declared: ``python -m optreg.testing --capabilities`` runs
the kit's capability checks (:mod:`optreg.testing._capabilities`) on every builtin
optimizer and writes it, with the torch version and machine; a test re-measures it.
``optreg info NAME`` shows a name's row and ``optreg list --supports compile,fsdp2``
filters by it. A name the table does not hold is unknown, never supported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

__all__ = ["CAPABILITIES", "TABLE", "Verdict", "row", "table"]

#: The capabilities the kit measures, in the order they are shown.
CAPABILITIES = ("compile", "bf16", "ddp", "fsdp2")
TABLE = Path(__file__).with_name("capabilities.json")


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


def row(name: str) -> dict[str, Verdict] | None:
    """The measured row of a builtin optimizer's canonical name; None when never measured."""
    found = table()["optimizers"].get(name)
    if found is None:
        return None
    return {c: Verdict(*found[c]) for c in CAPABILITIES if c in found}
