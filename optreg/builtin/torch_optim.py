"""The torch.optim family, registered by name.

Every name builds the ``torch.optim`` class itself. ``adamw`` (alias ``adamw_torch``)
and ``adam`` are "fast by default": they go through :func:`adamw` / :func:`adam`,
which pass ``fused=True`` when torch's fused kernel supports every parameter and the
caller chose none of ``foreach`` / ``fused`` / ``differentiable`` / ``capturable``.
Pass ``fused=False`` (or ``foreach=True``) to get torch's own default choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

__all__ = ["adam", "adamw", "adamw_torch_fused", "fused_supported"]

#: Device types whose fused Adam/AdamW kernel accepts every floating dtype
#: (checked for torch 2.13 on CPU: float16, bfloat16, float32 and float64).
FUSED_DEVICES = frozenset({"cpu", "cuda"})
_PLAIN_TENSORS = (Tensor, torch.nn.Parameter)


def _tensors(params: list[Any]) -> Iterator[Any]:
    for item in params:
        if isinstance(item, dict):
            yield from item.get("params", ())
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            yield item[1]  # (name, tensor) pairs
        else:
            yield item


def _materialize(params: Any) -> Any:
    """Turn one-shot iterables (generators, group params) into lists, once."""
    if isinstance(params, Tensor) or not isinstance(params, Iterable):
        return params  # let torch raise its own error
    out: list[Any] = []
    for item in params:
        if isinstance(item, dict) and not isinstance(item.get("params"), (Tensor, type(None))):
            item = {**item, "params": list(item["params"])}
        elif isinstance(item, dict) and isinstance(item.get("params"), Tensor):
            item = {**item, "params": [item["params"]]}
        out.append(item)
    return out


def fused_supported(params: Any) -> bool:
    """True when torch's fused Adam/AdamW kernel supports every tensor in ``params``.

    ``params`` is a list of tensors, of ``(name, tensor)`` pairs or of param-group
    dicts. Supported: plain tensors (no subclasses) of a floating dtype on a device in
    :data:`FUSED_DEVICES`.
    """
    if isinstance(params, Tensor) or not isinstance(params, list):
        return False
    found = False
    for p in _tensors(params):
        if not (
            type(p) in _PLAIN_TENSORS
            and p.device.type in FUSED_DEVICES
            and torch.is_floating_point(p)
        ):
            return False
        found = True
    return found


def _want_fused(
    params: Any, foreach: bool | None, fused: bool | None, capturable: bool, differentiable: bool
) -> bool | None:
    if foreach is not None or fused is not None or capturable or differentiable:
        return fused
    return True if fused_supported(params) else None


def adamw(
    params: Any,
    lr: float | Tensor = 1e-3,
    betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    foreach: bool | None = None,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """Build ``torch.optim.AdamW``, with ``fused=True`` when that kernel supports the params.

    Arguments are torch's. The fused kernel is chosen when every parameter is a
    floating tensor on CPU or CUDA and none of ``foreach`` / ``fused`` /
    ``differentiable`` / ``capturable`` was asked for; pass ``fused=False`` or
    ``foreach=True`` to opt out.

    Returns:
        A ``torch.optim.AdamW``.

    Raises:
        ValueError: an invalid hyperparameter (raised by torch).
    """
    params = _materialize(params)
    return torch.optim.AdamW(
        params,
        lr,
        betas,
        eps,
        weight_decay,
        amsgrad,
        maximize=maximize,
        foreach=foreach,
        capturable=capturable,
        differentiable=differentiable,
        fused=_want_fused(params, foreach, fused, capturable, differentiable),
    )


def adam(
    params: Any,
    lr: float | Tensor = 1e-3,
    betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
    decoupled_weight_decay: bool = False,
) -> torch.optim.Adam:
    """Build ``torch.optim.Adam``, with ``fused=True`` when that kernel supports the params.

    Arguments are torch's; the fused kernel is chosen as in :func:`adamw`.

    Returns:
        A ``torch.optim.Adam``.

    Raises:
        ValueError: an invalid hyperparameter (raised by torch).
    """
    params = _materialize(params)
    return torch.optim.Adam(
        params,
        lr,
        betas,
        eps,
        weight_decay,
        amsgrad,
        foreach=foreach,
        maximize=maximize,
        capturable=capturable,
        differentiable=differentiable,
        fused=_want_fused(params, foreach, fused, capturable, differentiable),
        # torch < 2.6's Adam has no such keyword: pass it only when asked for
        **({"decoupled_weight_decay": True} if decoupled_weight_decay else {}),
    )


def adamw_torch_fused(
    params: Any,
    lr: float | Tensor = 1e-3,
    betas: tuple[float | Tensor, float | Tensor] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    capturable: bool = False,
) -> torch.optim.AdamW:
    """Build ``torch.optim.AdamW(..., fused=True)`` (transformers' ``adamw_torch_fused``).

    Returns:
        A ``torch.optim.AdamW``.

    Raises:
        RuntimeError: a parameter the fused kernel does not support (raised by torch).
        ValueError: an invalid hyperparameter (raised by torch).
    """
    return torch.optim.AdamW(
        params,
        lr,
        betas,
        eps,
        weight_decay,
        amsgrad,
        maximize=maximize,
        capturable=capturable,
        fused=True,
    )
