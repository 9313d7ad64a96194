"""The dry run: which parameter goes to which group, inner optimizer, lr and weight decay.

`explain_groups()` builds the optimizer on the model (nothing is stepped) and reads
its param groups back by parameter name, with warnings for the classic mistakes: an
embedding or output head routed to a side that updates whole matrices (Muon's, as the
optimizer's contract declares), a norm weight or a bias decayed, a frozen
parameter in a group, a trainable parameter in no group. ``optreg groups`` prints it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from optreg._build.api import get_optimizer
from optreg._core import loading
from optreg._core.registry import optimizers
from optreg._core.table import text_table

if TYPE_CHECKING:
    from torch import nn

    from optreg._core.contract import Sides

__all__ = ["GroupReport", "GroupRow", "explain_groups"]


@dataclasses.dataclass(frozen=True)
class GroupRow:
    """One parameter: where it went and with which lr / weight decay (None: in no group)."""

    param: str
    shape: tuple[int, ...]
    group: int | None
    optimizer: str | None
    lr: float | None
    weight_decay: float | None
    trainable: bool


@dataclasses.dataclass(frozen=True)
class GroupReport:
    """What `explain_groups()` found: one row per parameter, and the warnings."""

    name: str
    rows: tuple[GroupRow, ...]
    warnings: tuple[str, ...]

    def table(self) -> str:
        """The rows as an aligned text table, the warnings after it."""
        rows = [
            [
                r.param,
                "x".join(map(str, r.shape)) or "scalar",
                "-" if r.group is None else str(r.group),
                r.optimizer or "-",
                "-" if r.lr is None else f"{r.lr:.3g}",
                "-" if r.weight_decay is None else f"{r.weight_decay:g}",
            ]
            for r in self.rows
        ]
        header = ["parameter", "shape", "group", "optimizer", "lr", "weight_decay"]
        out = text_table(header, rows, right=(2, 4, 5))
        return out + "".join(f"\nwarning: {w}" for w in self.warnings)

    def to_json(self) -> dict[str, Any]:
        """Plain data: ``{"optimizer": name, "rows": [...], "warnings": [...]}``."""
        return {
            "optimizer": self.name,
            "rows": [{**dataclasses.asdict(r), "shape": list(r.shape)} for r in self.rows],
            "warnings": list(self.warnings),
        }


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _side(sides: Sides | None, group: Mapping[str, Any], name: str) -> str:
    """The group's side where the optimizer declares sides, else its name."""
    side = None if sides is None else sides.side_of(group)
    return name if side is None else side


def explain_groups(name: str, model: nn.Module, params: Any = None, **kwargs: Any) -> GroupReport:
    """Build ``name`` on ``model`` and report each parameter's group, without a step.

    Args:
        name: an optimizer name.
        model: the model whose parameters are reported (all of them, frozen ones too).
        params: what to build the optimizer on; default: ``model``.
        **kwargs: what [optreg.get_optimizer][] takes (hyperparameters, ``rules``,
            ``layer_decay``, ``no_decay``, ...).

    Returns:
        A `GroupReport`; ``report.table()`` is what ``optreg groups`` prints.

    Raises:
        OptregError: what [optreg.get_optimizer][] raises for these arguments (and its
            TypeError / ValueError for bad ones).
    """
    from optreg.params._kinds import is_embedding, is_head, is_norm, owners

    optimizer = get_optimizer(name, model if params is None else params, **kwargs)
    declared = loading.contract(optimizers.resolve(name)).sides
    matrices = {} if declared is None else declared.matrices
    where = {
        id(p): (i, group) for i, group in enumerate(optimizer.param_groups) for p in group["params"]
    }
    held = owners(model)
    rows, warnings = [], []
    for pname, p in model.named_parameters():
        found = where.get(id(p))
        group = found[1] if found else None
        side = None if group is None else _side(declared, group, name)
        rows.append(
            GroupRow(
                param=pname,
                shape=tuple(p.shape),
                group=None if found is None else found[0],
                optimizer=side,
                lr=None if group is None else _number(group.get("lr")),
                weight_decay=None if group is None else _number(group.get("weight_decay", 0.0)),
                trainable=p.requires_grad,
            )
        )
        module = held.get(id(p), ("", model))[1]
        embedding = is_embedding(pname, module)
        instead = matrices.get(side) if side is not None else None
        if instead is not None and (embedding or is_head(pname)):
            what = "an embedding" if embedding else "an output head"
            warnings.append(
                f"{pname} is {what} and goes to the {side!r} side, which updates whole "
                f"matrices (route it to {instead!r})"
            )
        norm = is_norm(module)
        decay = rows[-1].weight_decay
        if decay and (norm or pname.endswith("bias")):
            what = "a bias" if pname.endswith("bias") else "a norm weight"
            warnings.append(f"{pname} is {what} and is decayed (weight_decay={decay:g})")
        if found is not None and not p.requires_grad:
            warnings.append(f"{pname} is frozen (requires_grad=False) but in group {found[0]}")
        if found is None and p.requires_grad:
            warnings.append(f"{pname} is trainable but in no group: it will not be updated")
    return GroupReport(name, tuple(rows), tuple(warnings))

