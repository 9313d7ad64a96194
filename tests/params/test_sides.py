"""optreg.group_sides: a composite optimizer's groups, routed, grouped and tagged from the
optreg.Sides it declares (muon_adamw's and the adapters' Muon family use it too)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
import torch
from torch import nn

import optreg


def _route(
    params: Any, forced: Mapping[str, str], hyperparameters: Mapping[str, Any]
) -> tuple[dict[str, str], list[tuple[str, torch.Tensor]]]:
    named = list(params.named_parameters())
    routes = {n: "mat" if p.ndim == 2 else "vec" for n, p in named}
    return {**routes, **forced}, named


SIDES = optreg.Sides(
    key="kind",
    values={"mat": "M", "vec": "V"},
    route=_route,
    lr={"vec": "vec_lr"},
    weight_decay={"vec": "vec_wd"},
    own={"mat": {"momentum": "momentum"}, "vec": {"vec_betas": "betas"}},
    label="toy",
)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))


def _shown(groups: list[dict[str, Any]], model: nn.Module) -> list[dict[str, Any]]:
    names = {id(p): n for n, p in model.named_parameters()}
    return [{**g, "params": [names[id(p)] for p in g["params"]]} for g in groups]


def test_each_side_is_grouped_with_its_own_lr_and_weight_decay_and_tagged() -> None:
    model = _model()
    hyper = {"lr": 0.1, "weight_decay": 0.0, "vec_lr": 0.01, "vec_wd": 0.5}
    groups = optreg.group_sides(model, SIDES, hyper, rules=[{"match": "2.*", "lr_scale": 0.5}])
    assert _shown(groups, model) == [
        {"params": ["0.weight"], "kind": "M"},  # the mat side does not decay: no split
        {"params": ["2.weight"], "lr": 0.05, "kind": "M"},  # 0.5 x lr
        {"params": ["2.bias"], "weight_decay": 0.0, "lr": 0.005, "kind": "V"},  # 0.5 x vec_lr
        {"params": ["0.bias", "1.weight", "1.bias"], "weight_decay": 0.0, "kind": "V"},
    ]  # ruled groups before the plain no-decay one, as group_parameters orders them


def test_a_rule_sends_a_parameter_to_a_side_and_own_options_reach_theirs_only() -> None:
    model = _model()
    hyper = {"lr": 0.1, "vec_lr": 0.01}
    groups = optreg.group_sides(
        model,
        SIDES,
        hyper,
        rules=[
            {"match": "2.weight", "kind": "V"},  # by the tag's value
            {"ndim": [1, 2], "vec_betas": (0.9, 0.95), "momentum": 0.8},
        ],
    )
    shown = _shown(groups, model)
    assert [(g["kind"], g["params"]) for g in shown] == [
        ("M", ["0.weight"]),
        ("V", ["0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]),
    ]
    assert shown[0]["momentum"] == 0.8 and "betas" not in shown[0]
    assert shown[1]["betas"] == (0.9, 0.95) and "momentum" not in shown[1]
    with pytest.raises(
        ValueError,
        match=re.escape(
            "toy: a rule sets 'momentum', an option of the mat side, but every parameter it "
            "selects goes to vec ('0.bias', '1.weight', '1.bias', '2.bias')"
        ),
    ):
        optreg.group_sides(model, SIDES, hyper, rules=[{"ndim": 1, "momentum": 0.8}])
    with pytest.raises(ValueError, match=r"toy: give rules= or overrides=, not both"):
        optreg.group_sides(
            model, SIDES, hyper, rules=[{"ndim": 1, "lr": 1.0}], overrides={"0": {"lr": 1.0}}
        )


def test_muon_adamw_declares_its_sides_and_groups_as_group_sides_does() -> None:
    """One implementation: the groups muon_adamw builds are group_sides' over its Sides."""
    model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 8), nn.LayerNorm(8))
    sides = optreg.optimizers.load("muon_adamw").optreg_contract.sides
    assert sides is not None and sides.key == "optimizer"
    opt = optreg.get_optimizer("muon_adamw", model, lr=0.02, adamw_lr=1e-3, weight_decay=0.1)
    hyper = {"lr": 0.02, "weight_decay": 0.1, "adamw_lr": 1e-3, "adamw_weight_decay": 0.01}
    groups = optreg.group_sides(model, sides, hyper)
    assert [[id(p) for p in g["params"]] for g in groups] == [
        [id(p) for p in g["params"]] for g in opt.param_groups
    ]
    assert [g["optimizer"] for g in groups] == [g["optimizer"] for g in opt.param_groups]
