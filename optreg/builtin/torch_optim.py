"""The torch.optim family, registered by name.

Every name builds the ``torch.optim`` class itself. ``adamw`` (alias ``adamw_torch``)
and ``adam`` are "fast by default": they go through `adamw()` / `adam()`,
which pass ``fused=True`` when torch's fused kernel supports every parameter and the
caller chose none of ``foreach`` / ``fused`` / ``differentiable`` / ``capturable``.
Pass ``fused=False`` (or ``foreach=True``) to get torch's own default choice.

torch's fused CPU kernel (2.13) mis-updates a parameter that is a strided view, such as
``torch.randn(10, 5, 2)[..., 0]``: it climbs where the other kernels descend. So fused is
chosen only when every parameter is contiguous, a group added later with a strided one
steps with torch's default kernel, and asking for fused on one raises
(`optreg.builtin.fused` decides and guards).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import torch
from torch import Tensor

from optreg._core.contract import FactoryContract, StateLayout
from optreg.builtin.fused import fused_guard, want_fused
from optreg.builtin.shards import step_shards_locally

__all__ = [
    "ADAM_STATE",
    "adam",
    "adamw",
    "adamw_for",
    "adamw_torch_fused",
    "keep_kernel_choice",
    "keep_state_dtypes",
    "muon",
    "nadam",
    "restore_saved_dtypes",
]

_KERNEL_OPTIONS = ("fused", "foreach")
_O = TypeVar("_O", bound=torch.optim.Optimizer)


def _keep_kernel_options(optimizer: Any, state_dict: dict[str, Any]) -> dict[str, Any]:
    """load_state_dict pre-hook: the kernel this optimizer was built with stays."""
    groups = [
        {**saved, **{k: g[k] for k in _KERNEL_OPTIONS if k in g}}
        for saved, g in zip(state_dict["param_groups"], optimizer.param_groups, strict=False)
    ]
    return {**state_dict, "param_groups": groups + state_dict["param_groups"][len(groups) :]}


def keep_kernel_choice(optimizer: _O) -> _O:
    """Make ``load_state_dict`` keep the optimizer's own ``fused`` / ``foreach`` choice.

    torch restores these from the checkpoint's param groups, so a run that opted out of
    the fused kernel (``fused=False``) would silently run fused again after loading a
    checkpoint saved by a fused optimizer. Which kernel runs is a property of this run,
    not state: the results of the kernels agree to rounding.
    """
    optimizer.register_load_state_dict_pre_hook(_keep_kernel_options)
    return optimizer


def restore_saved_dtypes(optimizer: Any, state_dict: dict[str, Any]) -> None:
    """After ``optimizer.load_state_dict(state_dict)``: give each state tensor back the
    dtype it was saved with. The one fix of torch casting floating state to the
    parameter's dtype on load (``adafactor`` and the torch names it wraps use it).

    The saved state is matched to the parameters through the saved param groups' ids, in
    order, as torch's ``load_state_dict`` matches it.
    """
    saved_ids = [i for g in state_dict.get("param_groups", ()) for i in g["params"]]
    params = [p for g in optimizer.param_groups for p in g["params"]]
    saved_state = state_dict.get("state", {})
    for pid, p in zip(saved_ids, params, strict=False):
        loaded = optimizer.state.get(p, {})
        for key, value in (saved_state.get(pid) or {}).items():
            now = loaded.get(key)
            if isinstance(value, Tensor) and isinstance(now, Tensor) and now.dtype != value.dtype:
                loaded[key] = value.to(device=now.device, copy=True)


def _stash_saved_state(optimizer: Any, state_dict: dict[str, Any]) -> None:
    optimizer._optreg_saved_state = state_dict


def _restore_state_dtypes(optimizer: Any) -> None:
    """load_state_dict post-hook: state tensors keep the dtype they were saved with."""
    restore_saved_dtypes(optimizer, optimizer.__dict__.pop("_optreg_saved_state", {}))


def keep_state_dtypes(optimizer: _O) -> _O:
    """Make ``load_state_dict`` keep each state tensor's saved dtype.

    torch casts loaded state to the parameter's dtype (``step`` excepted): NAdam's
    float32 ``mu_product`` of a bfloat16 parameter came back as bfloat16, and the
    resumed run differed from the uninterrupted one.
    """
    optimizer.register_load_state_dict_pre_hook(_stash_saved_state)
    optimizer.register_load_state_dict_post_hook(_restore_state_dtypes)
    return optimizer


def _exact_resume(cls: type[_O], name: str) -> Callable[..., _O]:
    """A factory building ``cls`` itself, resuming with the state's own dtypes."""

    def factory(params: Any, *args: Any, **kwargs: Any) -> _O:
        return keep_state_dtypes(cls(params, *args, **kwargs))

    factory.__name__ = factory.__qualname__ = name
    factory.__module__ = __name__
    factory.__doc__ = (
        f"Build ``torch.optim.{cls.__name__}`` (its arguments, its defaults); a loaded "
        "state keeps the dtypes it was saved with."
    )
    factory.__signature__ = inspect.signature(cls)  # type: ignore[attr-defined]
    return factory


nadam = _exact_resume(torch.optim.NAdam, "nadam")


def _materialize(params: Any) -> Any:
    """Turn one-shot iterables (generators, group params) into lists, once; a group dict
    whose params is a list already is kept as it is (torch fills in its defaults there,
    where a composite such as muon_adamw reads them)."""
    if isinstance(params, Tensor) or not isinstance(params, Iterable):
        return params  # let torch raise its own error
    out: list[Any] = []
    for item in params:
        if isinstance(item, dict) and not isinstance(
            item.get("params"), (Tensor, list, type(None))
        ):
            item = {**item, "params": list(item["params"])}
        elif isinstance(item, dict) and isinstance(item.get("params"), Tensor):
            item = {**item, "params": [item["params"]]}
        out.append(item)
    return out


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
    return adamw_for(
        "adamw",
        params,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        maximize=maximize,
        foreach=foreach,
        capturable=capturable,
        differentiable=differentiable,
        fused=fused,
    )


def adamw_for(
    name: str,
    params: Any,
    *,
    foreach: bool | None = None,
    fused: bool | None = None,
    capturable: bool = False,
    differentiable: bool = False,
    **options: Any,
) -> torch.optim.AdamW:
    """``torch.optim.AdamW`` with the kernel ``adamw`` chooses: the one place that choice
    is made (``adamw`` by name and ``muon_adamw``'s AdamW side).

    Args:
        name: the optreg name it is built for, for errors.
        params: tensors or param-group dicts.
        foreach, fused, capturable, differentiable: torch's; when none is given, fused
            where `fused_supported()` (every parameter contiguous, floating, CPU/CUDA).
        **options: AdamW's hyperparameters (``lr``, ``betas``, ...).

    Raises:
        ValueError: fused asked for a strided parameter, or what torch raises.
    """
    params = _materialize(params)
    optimizer = torch.optim.AdamW(
        params,
        **options,
        foreach=foreach,
        capturable=capturable,
        differentiable=differentiable,
        fused=want_fused(params, foreach, fused, capturable, differentiable),
    )
    return step_shards_locally(
        keep_kernel_choice(fused_guard(optimizer, name, chosen=fused is None))
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

    Arguments are torch's; the fused kernel is chosen as in `adamw()`.

    Returns:
        A ``torch.optim.Adam``.

    Raises:
        ValueError: an invalid hyperparameter (raised by torch).
    """
    params = _materialize(params)
    optimizer = torch.optim.Adam(
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
        fused=want_fused(params, foreach, fused, capturable, differentiable),
        # torch < 2.6's Adam has no such keyword: pass it only when asked for
        **({"decoupled_weight_decay": True} if decoupled_weight_decay else {}),
    )
    return step_shards_locally(
        keep_kernel_choice(fused_guard(optimizer, "adam", chosen=fused is None))
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
        ValueError: a strided (non-contiguous) parameter, which that kernel mis-updates
            (here or, for a group added later, at the next ``step()``), or an invalid
            hyperparameter (raised by torch).
    """
    optimizer = torch.optim.AdamW(
        _materialize(params),
        lr,
        betas,
        eps,
        weight_decay,
        amsgrad,
        maximize=maximize,
        capturable=capturable,
        fused=True,
    )
    return step_shards_locally(fused_guard(optimizer, "adamw_torch_fused", chosen=False))


def muon(
    params: Any,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
    eps: float = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
) -> torch.optim.Optimizer:
    """``torch.optim.Muon``, with an error that names what is not 2-D and the fix.

    Raises:
        ValueError: a parameter that is not 2-D (use ``muon_adamw``), and Muon's own.
    """
    groups = list(params)
    tensors = [
        (i, p)
        for i, g in enumerate(groups)
        for p in (g["params"] if isinstance(g, Mapping) else [g])
    ]
    bad = [(i, tuple(p.shape)) for i, p in tensors if p.ndim != 2]
    if bad:
        shown = ", ".join(f"group {i}: shape {list(s)}" for i, s in bad[:4])
        raise ValueError(
            f"muon takes only 2-D parameters (torch.optim.Muon), got {len(bad)} that are not "
            f"({shown}); use 'muon_adamw', which gives biases, norms, embeddings and heads "
            "to AdamW"
        )
    cls: Any = torch.optim.Muon  # type: ignore[attr-defined]
    optimizer: torch.optim.Optimizer = cls(
        groups,
        lr=lr,
        weight_decay=weight_decay,
        momentum=momentum,
        nesterov=nesterov,
        ns_coefficients=ns_coefficients,
        eps=eps,
        ns_steps=ns_steps,
        adjust_lr_fn=adjust_lr_fn,
    )
    return optimizer


_ADAM_KEYS = ("exp_avg", "exp_avg_sq")


def _read_adam(state: Mapping[str, Any], what: str) -> tuple[list[Any], int]:
    missing = [k for k in ("step", *_ADAM_KEYS) if k not in state]
    if missing:
        raise ValueError(
            f"{what} lacks {', '.join(missing)} (keys: {sorted(state)}): not a torch Adam state"
        )
    return [state[k].float() for k in _ADAM_KEYS], int(state["step"])


def _write_adam(
    moments: list[Any], step: int, optimizer: Any, position: tuple[int, int] | None
) -> dict[str, Any]:
    del optimizer, position  # torch keeps every parameter's state alike
    out: dict[str, Any] = {"step": torch.tensor(float(step), dtype=torch.float32)}
    out.update(zip(_ADAM_KEYS, (m.clone() for m in moments), strict=True))
    return out


#: torch's Adam / AdamW state (``exp_avg``, ``exp_avg_sq`` and a tensor ``step``), for
#: `optreg.convert_state_dict` to and from bitsandbytes' layouts.
ADAM_STATE = StateLayout("adam", "torch", _read_adam, _write_adam)
adamw.optreg_contract = FactoryContract(state=ADAM_STATE)  # type: ignore[attr-defined]
adam.optreg_contract = FactoryContract(state=ADAM_STATE)  # type: ignore[attr-defined]
