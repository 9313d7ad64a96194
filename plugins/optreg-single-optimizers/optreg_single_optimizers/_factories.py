"""Factories for the names whose upstream class is not a plain ``(params, **kwargs)``.

LOMO and AdaLomo take the ``nn.Module`` (they update each parameter during the fused
backward pass); AnyPrecisionAdamW gets transformers' ``optim_args`` defaults, with dtypes
given by name as ``optim_args`` gives them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from optreg import FactoryContract

__all__ = ["adalomo", "adamw_anyprecision", "lomo"]


def _model_of(name: str, params: Any, **grouping: Any) -> nn.Module:
    if not isinstance(params, nn.Module):
        raise TypeError(
            f"{name} takes the nn.Module (it updates each parameter inside its fused "
            f"backward, optimizer.fused_backward(loss, lr)); got {type(params).__name__}"
        )
    given = sorted(k for k, v in grouping.items() if v is not None)
    if given:
        raise ValueError(
            f"{name} updates every trainable parameter of the model alike: it takes no "
            f"param groups, so {', '.join(given)} cannot apply"
        )
    return params


def lomo(
    params: Any,
    *,
    lr: float = 1e-3,
    clip_grad_norm: float | None = None,
    clip_grad_value: float | None = None,
    weight_decay: float = 0.0,
    loss_scale_args: Mapping[str, Any] | None = None,
    no_decay: Any = None,
    overrides: Any = None,
    rules: Any = None,
    layer_decay: Any = None,
    layer_pattern: Any = None,
) -> torch.optim.Optimizer:
    """lomo_optim.Lomo on the model (train with ``opt.fused_backward(loss, lr)``).

    Raises:
        TypeError: ``params`` is not an ``nn.Module``.
        ValueError: param-group options were given (LOMO has no groups).
    """
    from lomo_optim import Lomo

    model = _model_of(
        "lomo",
        params,
        no_decay=no_decay,
        overrides=overrides,
        rules=rules,
        layer_decay=layer_decay,
        layer_pattern=layer_pattern,
    )
    return Lomo(
        model,
        lr=lr,
        clip_grad_norm=clip_grad_norm,
        clip_grad_value=clip_grad_value,
        weight_decay=weight_decay,
        loss_scale_args=dict(loss_scale_args or {}),
    )


lomo.optreg_contract = FactoryContract(routes_params=True)  # type: ignore[attr-defined]


def adalomo(
    params: Any,
    *,
    lr: float = 1e-3,
    loss_scale: float = 1024,
    eps: tuple[float, float] = (1e-30, 1e-3),
    clip_threshold: float = 1.0,
    decay_rate: float = -0.8,
    clip_grad_norm: float | None = None,
    clip_grad_value: float | None = None,
    weight_decay: float = 0.0,
    no_decay: Any = None,
    overrides: Any = None,
    rules: Any = None,
    layer_decay: Any = None,
    layer_pattern: Any = None,
) -> torch.optim.Optimizer:
    """lomo_optim.AdaLomo on the model (train with ``opt.fused_backward(loss, lr)``).

    Raises:
        TypeError: ``params`` is not an ``nn.Module``.
        ValueError: param-group options were given (AdaLomo has no groups).
    """
    from lomo_optim import AdaLomo

    model = _model_of(
        "adalomo",
        params,
        no_decay=no_decay,
        overrides=overrides,
        rules=rules,
        layer_decay=layer_decay,
        layer_pattern=layer_pattern,
    )
    return AdaLomo(
        model,
        lr=lr,
        loss_scale=loss_scale,
        eps=tuple(eps),
        clip_threshold=clip_threshold,
        decay_rate=decay_rate,
        clip_grad_norm=clip_grad_norm,
        clip_grad_value=clip_grad_value,
        weight_decay=weight_decay,
    )


adalomo.optreg_contract = FactoryContract(routes_params=True)  # type: ignore[attr-defined]


def _dtype(name: str, value: str | torch.dtype) -> torch.dtype:
    if isinstance(value, torch.dtype):
        return value
    found = getattr(torch, str(value), None)
    if not isinstance(found, torch.dtype):
        raise ValueError(
            f"adamw_anyprecision: {name}={value!r} is not a torch dtype; use e.g. "
            "'float32', 'bfloat16' or 'float16'"
        )
    return found


def adamw_anyprecision(
    params: Any,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    use_kahan_summation: bool = False,
    momentum_dtype: str | torch.dtype = "float32",
    variance_dtype: str | torch.dtype = "float32",
    compensation_buffer_dtype: str | torch.dtype = "bfloat16",
) -> torch.optim.Optimizer:
    """torchdistx's AnyPrecisionAdamW with transformers' defaults (dtypes by name).

    Raises:
        ValueError: a dtype name that is not a torch dtype.
    """
    from torchdistx.optimizers import AnyPrecisionAdamW

    return AnyPrecisionAdamW(
        params,
        lr=lr,
        betas=tuple(betas),
        eps=eps,
        weight_decay=weight_decay,
        use_kahan_summation=use_kahan_summation,
        momentum_dtype=_dtype("momentum_dtype", momentum_dtype),
        variance_dtype=_dtype("variance_dtype", variance_dtype),
        compensation_buffer_dtype=_dtype("compensation_buffer_dtype", compensation_buffer_dtype),
    )
