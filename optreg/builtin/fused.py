"""When torch's fused Adam / AdamW kernel is right, and the guard that keeps it from
silently mis-updating a strided parameter (torch 2.13's fused CPU kernel does).

``adam`` / ``adamw`` and muon_adamw's AdamW side choose fused from `want_fused()`;
`fused_guard()` re-checks groups added later.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import torch
from torch import Tensor

__all__ = ["FUSED_DEVICES", "fused_guard", "fused_supported", "want_fused"]

#: Device types whose fused Adam/AdamW kernel accepts every floating dtype
#: (checked for torch 2.13 on CPU: float16, bfloat16, float32 and float64).
FUSED_DEVICES = frozenset({"cpu", "cuda"})
_PLAIN_TENSORS = (Tensor, torch.nn.Parameter)
_O = TypeVar("_O", bound=torch.optim.Optimizer)


def _tensors(params: list[Any]) -> Iterator[Any]:
    for item in params:
        if isinstance(item, dict):
            yield from item.get("params", ())
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            yield item[1]  # (name, tensor) pairs
        else:
            yield item


def fused_supported(params: Any) -> bool:
    """True when torch's fused Adam/AdamW kernel supports every tensor in ``params``.

    ``params`` is a list of tensors, of ``(name, tensor)`` pairs or of param-group
    dicts. Supported: plain tensors (no subclasses) and FSDP2's DTensors over them, of a
    floating dtype on a device in `FUSED_DEVICES`, and contiguous (the kernel
    mis-updates strided views).
    """
    if isinstance(params, Tensor) or not isinstance(params, list):
        return False
    found = False
    for p in _tensors(params):
        if not _fits(p):
            return False
        found = True
    return found


def _fits(p: Any) -> bool:
    """Whether the fused kernel takes ``p`` (a DTensor: its local tensor)."""
    if type(p).__name__ == "DTensor" and hasattr(p, "device_mesh"):
        p = p._local_tensor
    return (
        type(p) in _PLAIN_TENSORS
        and p.device.type in FUSED_DEVICES
        and torch.is_floating_point(p)
        and p.is_contiguous()
    )


def _strided(groups: Iterable[dict[str, Any]], start: int = 0) -> tuple[int, int, Tensor] | None:
    """``(group index, index in group, tensor)`` of the first strided parameter of a group
    that steps fused, from group ``start`` on; None when there is none."""
    for i, group in enumerate(groups):
        if i < start or not group.get("fused"):
            continue
        for j, p in enumerate(group["params"]):
            if not p.is_contiguous():
                return i, j, p
    return None


def _strided_error(name: str, found: tuple[int, int, Tensor]) -> ValueError:
    i, j, p = found
    return ValueError(
        f"optimizer {name!r}: torch's fused kernel mis-updates a parameter that is not "
        f"contiguous (a strided view), and param group {i} holds one at index {j} (shape "
        f"{list(p.shape)}, stride {p.stride()}); use 'adamw' / 'adam' without fused=True "
        "(they choose fused only where it is right), pass foreach=True, or make the "
        "parameter contiguous"
    )


def _check_added_groups(optimizer: Any, args: Any, kwargs: Any) -> None:
    """Step pre-hook of `fused_guard()`: groups added since the last step. Where
    optreg chose fused, a group the kernel cannot take (strided, complex, another device
    or dtype) steps with torch's default kernel; where the user asked for it, a strided
    parameter is refused (torch refuses the rest itself)."""
    checked = optimizer.__dict__.get("_optreg_fused_checked", 0)
    groups = optimizer.param_groups
    if len(groups) == checked:
        return
    if optimizer.__dict__.get("_optreg_fused_chosen"):
        for group in groups[checked:]:
            if group.get("fused") and not all(map(_fits, group["params"])):
                group["fused"] = False
    found = _strided(groups, checked)
    while found is not None:
        if not optimizer.__dict__.get("_optreg_fused_chosen"):
            raise _strided_error(optimizer.__dict__["_optreg_name"], found)
        groups[found[0]]["fused"] = False  # optreg chose fused: torch's default kernel here
        found = _strided(groups, found[0] + 1)
    optimizer._optreg_fused_checked = len(groups)


def fused_guard(optimizer: _O, name: str, *, chosen: bool) -> _O:
    """Keep a fused Adam/AdamW from silently mis-updating strided parameters.

    Args:
        optimizer: the ``torch.optim.Adam`` / ``AdamW`` just built.
        name: the optreg name, for errors.
        chosen: True when optreg chose ``fused=True`` (then a group added later with a
            strided parameter steps with torch's default kernel), False when the user
            asked for it (then such a group raises at the next ``step()``).

    Returns:
        ``optimizer``, with a step pre-hook checking groups added after it was built.

    Raises:
        ValueError: the user asked for fused and a parameter is strided.
    """
    found = _strided(optimizer.param_groups)
    if found is not None:
        raise _strided_error(name, found)
    optimizer._optreg_name = name  # type: ignore[attr-defined]
    optimizer._optreg_fused_chosen = chosen  # type: ignore[attr-defined]
    optimizer._optreg_fused_checked = len(optimizer.param_groups)  # type: ignore[attr-defined]
    if any(g.get("fused") for g in optimizer.param_groups):
        optimizer.register_step_pre_hook(_check_added_groups)
    return optimizer


def want_fused(
    params: Any, foreach: bool | None, fused: bool | None, capturable: bool, differentiable: bool
) -> bool | None:
    """``fused`` as given, or True where optreg may choose it: no kernel option asked for
    and `fused_supported()`; None leaves the choice to torch."""
    if foreach is not None or fused is not None or capturable or differentiable:
        return fused
    return True if fused_supported(params) else None
