"""Parameter-group helpers: the weight-decay split and per-name overrides.

`param_groups()` turns whatever a user passes as ``params`` into a list of
param-group dicts. With an ``nn.Module`` it knows parameter names, so it can

* put biases, normalisation weights and every 1-D parameter in a group with
  ``weight_decay=0.0`` (the transformers / timm convention), and
* apply per-name ``overrides``: ``{"pattern": {"lr": 1e-4}}``, where a pattern
  matches a parameter name as a substring or as an ``fnmatch`` glob.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from optreg.params._kinds import NORM_LAYERS, is_named_pairs, is_norm
from optreg.params._kinds import named_parameters as walk

__all__ = ["NORM_LAYERS", "check_overrides", "matches", "named_no_decay", "param_groups"]


def matches(name: str, pattern: str) -> bool:
    """True when ``pattern`` matches parameter ``name`` as a substring or a glob."""
    return pattern in name or fnmatch.fnmatchcase(name, pattern)


def named_no_decay(model: nn.Module) -> set[str]:
    """Names of parameters the default rule exempts from weight decay.

    Biases, weights of normalisation layers (`NORM_LAYERS`, or any module
    whose class name ends in ``Norm``) and every parameter with fewer than 2 dims.
    """
    names: set[str] = set()
    for mod_name, module in model.named_modules():
        norm = is_norm(module)
        for p_name, p in module.named_parameters(recurse=False):
            full = f"{mod_name}.{p_name}" if mod_name else p_name
            if norm or p_name == "bias" or p.ndim < 2:
                names.add(full)
    return names


def param_groups(
    params: Any,
    *,
    weight_decay: float | None = None,
    no_decay: Iterable[str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    lr: Any = None,
) -> list[dict[str, Any]]:
    """Turn ``params`` into a list of param-group dicts.

    Args:
        params: an ``nn.Module``, an iterable of tensors, an iterable of
            ``(name, tensor)`` pairs, or an iterable of param-group dicts.
        weight_decay: with a module (or named pairs) and a value > 0, parameters
            matched by ``no_decay`` go to a group with ``weight_decay=0.0``.
        no_decay: name patterns (substring or glob) exempt from weight decay;
            default: biases, normalisation weights and every 1-D parameter.
        overrides: ``{pattern: {option: value}}``; every parameter whose name
            matches ``pattern`` (first matching pattern wins) gets those group
            options, e.g. ``{"embed": {"lr": 1e-4}}``.
        options: ``{name: group options}``, what `optreg.params._rules.assign()` makes of
            declarative rules and ``layer_decay``; an ``lr_scale`` multiplies ``lr``.
        lr: the optimizer's lr, which an ``lr_scale`` scales.

    Returns:
        Param-group dicts (fresh dicts; the caller may mutate them).

    Raises:
        TypeError: ``params`` is a single tensor or holds something else.
        ValueError: no parameters, ``overrides`` / ``no_decay`` / ``options`` without
            names, or an ``lr_scale`` without a numeric lr.
    """
    ruled = options is not None
    if isinstance(params, torch.Tensor):
        raise TypeError(
            "params must be an iterable of tensors, of (name, tensor) pairs, of "
            f"param-group dicts, or an nn.Module; got a single {torch.typename(params)}"
        )
    if isinstance(params, Mapping):
        raise TypeError(
            "params must be an iterable of tensors or param-group dicts, or an nn.Module; "
            "got a single dict (wrap it in a list: [{'params': ...}])"
        )
    if isinstance(no_decay, str):  # one pattern, not its characters
        no_decay = [no_decay]
    named: list[tuple[str, torch.Tensor]] | None = None
    default_rule: set[str] | None = None
    if isinstance(params, nn.Module):
        named = [(n, p) for n, p in walk(params) if p.requires_grad]
        default_rule = named_no_decay(params) if no_decay is None else None
        if not named:
            raise ValueError(f"{type(params).__name__} has no trainable parameters")
        _check_initialised(named)
    else:
        if not isinstance(params, Iterable) or isinstance(params, (str, bytes)):
            raise TypeError(
                "params must be an iterable of tensors, of (name, tensor) pairs, of "
                f"param-group dicts, or an nn.Module; got {type(params).__name__}: {params!r:.80}"
            )
        items = list(params)
        if not items:
            raise ValueError("optimizer got an empty parameter list")
        if all(isinstance(x, Mapping) for x in items):
            if overrides or no_decay is not None or ruled:
                raise ValueError(
                    "overrides=, no_decay= and rules= need parameter names: pass the "
                    "nn.Module or (name, tensor) pairs instead of param-group dicts"
                )
            return [_group(i, g) for i, g in enumerate(items)]
        if is_named_pairs(items):
            named = [(str(n), p) for n, p in items]
            _check_initialised(named)
        else:
            bad = next((x for x in items if not isinstance(x, torch.Tensor)), None)
            if bad is not None:
                raise TypeError(
                    "params must hold tensors, (name, tensor) pairs or param-group dicts; "
                    f"found {type(bad).__name__}: {bad!r:.80}"
                )
            if overrides or no_decay is not None or ruled:
                raise ValueError(
                    "overrides=, no_decay= and rules= need parameter names: pass the "
                    "nn.Module or (name, tensor) pairs instead of bare tensors"
                )
            _check_initialised([(f"params[{i}]", p) for i, p in enumerate(items)])
            return [{"params": items}]
    return _split(named, weight_decay, no_decay, default_rule, dict(overrides or {}), options, lr)


def _group(index: int, group: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh copy of a param-group dict whose ``params`` is a list, read once.

    ``{"params": model.parameters()}`` holds a generator: a hook that only looks at it
    would exhaust it and leave the optimizer with no parameters.

    Raises:
        ValueError: the group has no ``params``.
        TypeError: its ``params`` is not a tensor or an iterable of tensors.
    """
    if "params" not in group:
        raise ValueError(
            f"param group {index} has no 'params' key; got keys {sorted(map(str, group))}"
        )
    out = dict(group)
    tensors = out["params"]
    if isinstance(tensors, torch.Tensor):
        out["params"] = [tensors]
    elif isinstance(tensors, Iterable) and not isinstance(tensors, (str, bytes, Mapping)):
        out["params"] = list(tensors)
    else:
        raise TypeError(
            f"param group {index}: 'params' must be a tensor or an iterable of tensors, got "
            f"{type(tensors).__name__}: {tensors!r:.80}"
        )
    bad = next((p for p in out["params"] if not isinstance(p, torch.Tensor)), None)
    if bad is not None:
        raise TypeError(
            f"param group {index}: 'params' must hold tensors, found "
            f"{type(bad).__name__}: {bad!r:.80}"
        )
    _check_initialised([(f"param group {index}", p) for p in out["params"]])
    return out


def _check_initialised(named: Iterable[tuple[str, Any]]) -> None:
    """Refuse lazy modules' parameters before their first forward pass (their shape, and
    so which weight-decay group they belong to, is not known yet)."""
    uninitialised = nn.parameter.UninitializedParameter
    for name, p in named:
        if isinstance(p, uninitialised):
            raise ValueError(
                f"parameter {name!r} is not initialised yet (a lazy module such as "
                "nn.LazyLinear): run one forward pass before building the optimizer"
            )


def check_overrides(
    named: Sequence[tuple[str, Any]], overrides: Mapping[str, Mapping[str, Any]]
) -> None:
    """Every override pattern is a str mapping to an options dict and matches a parameter.

    Raises:
        TypeError: a pattern that is not a str, or options that are not a mapping.
        ValueError: a pattern that matches no parameter name (the names are shown).
    """
    for pat, opts in overrides.items():
        if not isinstance(pat, str) or not isinstance(opts, Mapping):
            raise TypeError(
                "overrides must map name patterns to option dicts, e.g. "
                f"{{'embed': {{'lr': 1e-4}}}}; got {pat!r}: {opts!r}"
            )
        if not any(matches(n, pat) for n, _ in named):
            raise ValueError(
                f"override pattern {pat!r} matches no parameter; "
                f"names look like {', '.join(n for n, _ in named[:3])}"
            )


def _split(
    named: list[tuple[str, torch.Tensor]],
    weight_decay: float | None,
    no_decay: Iterable[str] | None,
    default_rule: set[str] | None,
    overrides: dict[str, Mapping[str, Any]],
    extra: Mapping[str, Mapping[str, Any]] | None = None,
    lr: Any = None,
) -> list[dict[str, Any]]:
    check_overrides(named, overrides)
    patterns = list(no_decay) if no_decay is not None else None
    split_decay = weight_decay is not None and weight_decay > 0
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    pattern: str | None
    for name, p in named:
        exempt = False
        if split_decay:
            if patterns is not None:
                exempt = any(matches(name, pat) for pat in patterns)
            else:
                exempt = name in (default_rule or set()) or p.ndim < 2 or name.endswith("bias")
        pattern = next((pat for pat in overrides if matches(name, pat)), None)
        ruled = dict((extra or {}).get(name, {}))
        key = (exempt, pattern, tuple(sorted(ruled.items(), key=lambda kv: kv[0])))
        if key not in groups:
            group: dict[str, Any] = {"params": []}
            if exempt:
                group["weight_decay"] = 0.0
            if pattern is not None:
                group.update(overrides[pattern])
            scale = ruled.pop("lr_scale", None)
            group.update(ruled)
            if scale is not None:
                group["lr"] = _scaled_lr(group.get("lr", lr), scale, name)
            groups[key] = group
        groups[key]["params"].append(p)
    # deterministic order: un-overridden groups first, then by pattern; decay before no-decay;
    # ruled groups in the order their first parameter comes
    order: dict[str | None, int] = {pat: i for i, pat in enumerate(overrides)}
    first = {k: i for i, k in enumerate(groups)}
    return [
        groups[k]
        for k in sorted(
            groups, key=lambda k: (order.get(k[1], -1), k[0] if not k[2] else False, first[k])
        )
    ]


def _scaled_lr(base: Any, scale: float, name: str) -> Any:
    """``base * scale`` for a parameter's group: a number, or a one-element tensor lr (a
    new tensor per group, which a schedule fills in place as torch's do).

    Raises:
        ValueError: no lr to scale, or a product that is not finite.
    """
    import math

    import torch

    if isinstance(base, torch.Tensor) and base.numel() == 1 and base.is_floating_point():
        scaled: Any = (base.detach() * scale).reshape(base.shape)
        value = float(scaled)
    elif isinstance(base, (int, float)) and not isinstance(base, bool):
        scaled = value = base * scale
    else:
        raise ValueError(
            f"lr_scale / layer_decay scale the lr, and parameter {name!r} has lr={base!r}, "
            "which is not a number: give get_optimizer an lr (a float or a one-element "
            "tensor)"
        )
    if not math.isfinite(value):
        raise ValueError(
            f"lr_scale / layer_decay make parameter {name!r}'s lr {value!r} (lr {float(base)!r}"
            f" x {scale!r}), which is not finite; use a smaller lr_scale or lr"
        )
    return scaled
