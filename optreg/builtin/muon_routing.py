"""Which side of ``muon_adamw`` each parameter goes to, and which side each group option
belongs to.

Hidden 2-D weight matrices go to Muon; embeddings, the output head (and weights tied to
it), norm weights, biases and conv kernels to AdamW, as `optreg.params._kinds`
decides them, the same for a module and for ``(name, tensor)`` pairs; rules may send a
parameter to a side by name (``{"optimizer": "adamw"}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from optreg._core.contract import Sides
from optreg.params._kinds import HEAD_NAMES, is_embedding, is_head, is_named_pairs, owners
from optreg.params._kinds import named_parameters as walk
from optreg.params._split import matches

__all__ = ["HEAD_MODULES", "MUON_SIDES", "SIDES", "route", "sides_of"]


#: Name parts that mark an output head (`optreg.params._kinds.HEAD_NAMES`): to AdamW.
HEAD_MODULES = HEAD_NAMES
_ROUTES = ("auto", "ndim")
SIDES = ("muon", "adamw")
#: Group options only Muon has (a rule or override giving one applies to Muon's side).
_MUON_ONLY = ("momentum", "nesterov", "ns_coefficients", "eps", "ns_steps", "adjust_lr_fn")
#: Group options only AdamW has, by the names a rule or override may use -> AdamW's name.
_ADAMW_ONLY = {
    "betas": "betas",
    "adamw_betas": "betas",
    "adamw_eps": "eps",
    "adamw_lr": "lr",
    "adamw_weight_decay": "weight_decay",
}


def _named(params: Any) -> tuple[list[tuple[str, torch.Tensor]], set[int], set[int]] | None:
    """``(named trainable params, embedding ids, head ids)``, or None when ``params`` says
    no names. Embeddings and heads as `optreg.params._kinds` decides: by module type and name
    for a module, by name for ``(name, tensor)`` pairs."""
    if isinstance(params, nn.Module):
        held = owners(params)
        named: list[tuple[str, torch.Tensor]] = [(n, p) for n, p in walk(params) if p.requires_grad]
        embeddings = {id(p) for n, p in named if is_embedding(n, held.get(id(p), ("", None))[1])}
    elif is_named_pairs(params):
        named = [(str(n), p) for n, p in params if p.requires_grad]
        embeddings = {id(p) for n, p in named if is_embedding(n)}
    else:
        return None
    heads = {id(p) for n, p in named if is_head(n)}
    return named, embeddings, heads


def route(
    params: Any,
    *,
    route: str = "auto",
    adamw_params: Sequence[str] = (),
    muon_params: Sequence[str] = (),
    forced: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``{parameter name: "muon" | "adamw"}``: where `MuonAdamW` puts each one.

    ``route="auto"`` (a module or ``(name, tensor)`` pairs): to AdamW go embeddings and
    output heads as `optreg.params._kinds` decides (``nn.Embedding`` weights and names such
    as ``pos_embed`` / ``wte`` / ``shared``; parameters under ``lm_head`` / ``classifier`` /
    ``head``..., ``classifier.out_proj`` included; weights tied to an embedding, which a
    module lists once), every parameter that is not 2-D (biases, norm weights, conv
    kernels) and names matching ``adamw_params``; the other 2-D weights, and names
    matching ``muon_params``, go to Muon. Pairs are judged by name alone: pass the module
    where only a module type tells an embedding. ``route="ndim"``: by shape alone (2-D to
    Muon), for bare tensors. ``forced`` (``{name: side}``, what rules with an
    ``"optimizer"`` option say) overrides all of it.

    Raises:
        TypeError: ``route="auto"`` without names (bare tensors or param-group dicts).
        ValueError: an unknown ``route``, a ``muon_params`` match that is not 2-D, or a
            pattern that matches no parameter.
    """
    return sides_of(params, route, adamw_params, muon_params, forced)[0]


def sides_of(
    params: Any,
    route: str,
    adamw_params: Sequence[str],
    muon_params: Sequence[str],
    forced: Mapping[str, str] | None,
) -> tuple[dict[str, str], list[tuple[str, torch.Tensor]]]:
    """`route()`'s map, and the named trainable parameters it was made from (bare
    tensors named ``params[i]``)."""
    if route not in _ROUTES:
        raise ValueError(f"`route` must be 'auto' or 'ndim', got {route!r}")
    if not isinstance(params, nn.Module):
        params = list(params)  # read twice below: a generator only once
    found = _named(params)
    if found is None:
        if route == "auto":
            raise TypeError(
                "muon_adamw routes parameters by name and module type: pass the nn.Module "
                "or model.named_parameters(), param groups tagged {'optimizer': 'muon' | "
                "'adamw'}, or route='ndim' to route bare tensors by shape alone"
            )
        tensors = [(f"params[{i}]", p) for i, p in enumerate(p for p in params if p.requires_grad)]
        return {n: "muon" if p.ndim == 2 else "adamw" for n, p in tensors}, tensors
    named, embeddings, heads = found
    for what, patterns in (("adamw_params", adamw_params), ("muon_params", muon_params)):
        for pattern in patterns:
            if not any(matches(n, pattern) for n, _ in named):
                raise ValueError(
                    f"{what} pattern {pattern!r} matches no parameter; names look like "
                    f"{', '.join(n for n, _ in named[:3])}"
                )
    out = {}
    for name, p in named:
        forced_adamw = any(matches(name, pat) for pat in adamw_params)
        forced_muon = any(matches(name, pat) for pat in muon_params)
        if forced_muon and not forced_adamw:
            if p.ndim != 2:
                raise ValueError(
                    f"muon_params matches {name!r} of shape {list(p.shape)}: Muon takes "
                    "only 2-D parameters"
                )
            out[name] = "muon"
        elif forced_adamw or p.ndim != 2:
            out[name] = "adamw"
        elif route == "ndim":
            out[name] = "muon"
        else:
            out[name] = "adamw" if id(p) in embeddings or id(p) in heads else "muon"
        side = (forced or {}).get(name)
        if side is not None:
            if side not in SIDES:
                raise ValueError(f"a rule sends {name!r} to optimizer {side!r}: 'muon' or 'adamw'")
            if side == "muon" and p.ndim != 2:
                raise ValueError(
                    f"a rule sends {name!r} of shape {list(p.shape)} to Muon, which takes "
                    "only 2-D parameters"
                )
            out[name] = side
    return out, named


def _route(
    params: Any, forced: Mapping[str, str], hyperparameters: Mapping[str, Any]
) -> tuple[dict[str, str], list[tuple[str, torch.Tensor]]]:
    return sides_of(
        params,
        hyperparameters.get("route", "auto"),
        hyperparameters.get("adamw_params", ()),
        hyperparameters.get("muon_params", ()),
        forced,
    )


#: muon_adamw's sides, for `optreg.group_sides`: groups tagged ``"optimizer": "muon" |
#: "adamw"``; AdamW's lr and weight decay are ``adamw_lr`` / ``adamw_weight_decay``;
#: Muon's own options reach Muon's groups only, AdamW's (as ``betas`` or ``adamw_*``) AdamW's.
MUON_SIDES = Sides(
    key="optimizer",
    values=MappingProxyType({"muon": "muon", "adamw": "adamw"}),
    route=_route,
    lr=MappingProxyType({"adamw": "adamw_lr"}),
    weight_decay=MappingProxyType({"adamw": "adamw_weight_decay"}),
    own=MappingProxyType(
        {
            "muon": MappingProxyType({k: k for k in _MUON_ONLY}),
            "adamw": MappingProxyType(_ADAMW_ONLY),
        }
    ),
    matrices=MappingProxyType({"muon": "adamw"}),
    label="muon_adamw",
)
