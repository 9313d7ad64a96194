"""optreg.params._rules: declarative param-group rules and layer-wise lr decay (get_optimizer(rules=))."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import torch
from torch import nn

import optreg
from optreg.params._rules import layer_ids  # layer decay's layer numbering, under test


class Encoder(nn.Module):
    """BERT-style names: embeddings, encoder.layer.N.*, a final norm, a tied head."""

    def __init__(self, layers: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embeddings = nn.Embedding(20, 8)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(
            nn.ModuleDict({"attn": nn.Linear(8, 8), "norm": nn.LayerNorm(8)}) for _ in range(layers)
        )
        self.final_norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 20, bias=False)
        self.head.weight = self.embeddings.weight  # tied: listed once, as embeddings.weight


def _lrs(opt: torch.optim.Optimizer, model: nn.Module) -> dict[str, tuple[float, float]]:
    """``{name: (lr, weight_decay)}`` of every parameter."""
    names = {id(p): n for n, p in model.named_parameters()}
    return {
        names[id(p)]: (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]
    }


def test_selectors_and_options() -> None:
    model = Encoder()
    rules = [
        {"module": "embedding", "lr_scale": 0.1},
        {"regex": r"layer\.0\.attn\.weight", "lr": 1e-4},
        {"module": "norm", "match": "final_*", "weight_decay": 0.5},
        {"ndim": 2, "shape": [8, 8], "match": "*layer.2*", "betas": [0.8, 0.9]},
    ]
    opt = optreg.get_optimizer("adamw", model, lr=1e-3, weight_decay=0.01, rules=rules)
    got = _lrs(opt, model)
    assert got["embeddings.weight"] == (pytest.approx(1e-4), 0.01)
    assert got["encoder.layer.0.attn.weight"] == (1e-4, 0.01)
    assert got["encoder.layer.1.attn.weight"] == (1e-3, 0.01)
    assert got["encoder.layer.1.attn.bias"] == (1e-3, 0.0)  # the default no-decay split stays
    assert got["final_norm.weight"] == (1e-3, 0.5)  # a rule beats the default split
    assert got["encoder.layer.1.norm.weight"] == (1e-3, 0.0)
    betas = {
        tuple(g["betas"])
        for g in opt.param_groups
        for p in g["params"]
        if p is model.encoder.layer[2].attn.weight
    }
    assert betas == {(0.8, 0.9)}
    assert len(got) == len(list(model.parameters()))  # the tied head once


def test_rules_are_plain_data() -> None:
    rules = json.loads('[{"match": "encoder.*", "lr_scale": 0.5}, {"ndim": 1, "weight_decay": 0}]')
    opt = optreg.get_optimizer("sgd", Encoder(), lr=0.1, weight_decay=0.01, rules=rules)
    assert {(g["lr"], g["weight_decay"]) for g in opt.param_groups} == {
        (0.1, 0.01),
        (0.05, 0.01),
        (0.05, 0),
        (0.1, 0),
    }


def test_layer_decay() -> None:
    model = Encoder(layers=3)
    opt = optreg.get_optimizer("adamw", model, lr=1.0, layer_decay=0.5)
    got = _lrs(opt, model)
    # embeddings layer 0, encoder.layer.i -> i + 1, final norm / head 4: lr * 0.5 ** (4 - id)
    assert got["embeddings.weight"][0] == 0.5**4
    assert got["encoder.layer.0.attn.weight"][0] == 0.5**3
    assert got["encoder.layer.2.norm.bias"][0] == 0.5**1
    assert got["final_norm.weight"][0] == 1.0
    ids, count = layer_ids(["stem.weight", "blocks.0.w", "blocks.1.w", "norm.weight", "pos_embed"])
    assert count == 2 and ids == {
        "stem.weight": 3,
        "blocks.0.w": 1,
        "blocks.1.w": 2,
        "norm.weight": 3,
        "pos_embed": 0,
    }
    ids, _ = layer_ids(["stage3.x", "stage1.x"], pattern=r"stage(\d+)")
    assert ids == {"stage3.x": 4, "stage1.x": 2}


def test_layer_decay_and_a_rule_scale_multiply() -> None:
    model = Encoder(layers=1)
    rules = [{"module": "embedding", "lr_scale": 0.1}]
    got = _lrs(optreg.get_optimizer("sgd", model, lr=1.0, rules=rules, layer_decay=0.5), model)
    assert got["embeddings.weight"][0] == pytest.approx(0.1 * 0.5**2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"rules": [{"match": "encoder.*", "lr": 1e-4}, {"ndim": 2, "lr": 2e-4}]},
            ValueError,
            r"conflicting rules: parameter 'encoder.layer.0.attn.weight': lr=0.0001 from "
            r"rules\[0\], lr=0.0002 from rules\[1\]",
        ),
        (
            {"rules": [{"name": "typo", "match": "encodr.*", "lr": 1e-4}]},
            ValueError,
            r"rule 'typo' matches no parameter; names look like embeddings.weight",
        ),
        ({"rules": [{"lr": 1e-4}]}, ValueError, r"rules\[0\] selects nothing: give one of match"),
        ({"rules": [{"ndim": 1}]}, ValueError, r"rules\[0\] sets no option"),
        ({"rules": [{"regex": "(", "lr": 1}]}, ValueError, r"regex '\(' does not compile"),
        ({"rules": [{"ndim": 1, "lr_scale": -1}]}, ValueError, r"lr_scale must be a finite number >= 0"),
        ({"rules": {"ndim": 1}}, TypeError, r"rules must be a list of dicts, got dict"),
        ({"rules": [{"ndim": 1, "lrr": 1}]}, TypeError, r"rules\[0\] got an unexpected keyword argument 'lrr'; did you mean 'lr'"),
        ({"rules": [{"ndim": 1, "optimizer": "adamw"}]}, TypeError, r"sets 'optimizer', which only a composite"),
        ({"layer_decay": 1.5}, ValueError, r"layer_decay must be a number in \(0, 1\], got 1.5"),
        ({"rules": [{"ndim": 1, "lr": 1}], "overrides": {"head": {"lr": 1}}}, ValueError, r"give rules= or overrides=, not both"),
    ],
)  # fmt: skip
def test_errors_name_the_rule_and_the_parameter(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        optreg.get_optimizer("adamw", Encoder(), lr=1e-3, **kwargs)


def test_rules_need_names_and_an_lr() -> None:
    with pytest.raises(ValueError, match=r"select parameters by name: pass the nn.Module"):
        optreg.get_optimizer(
            "sgd", list(Encoder().parameters()), lr=0.1, rules=[{"ndim": 1, "lr": 1}]
        )
    with pytest.raises(
        ValueError, match=r"lr_scale / layer_decay scale the lr, and parameter .* has lr=None"
    ):
        optreg.get_optimizer("adafactor", Encoder(), layer_decay=0.5)
    with pytest.raises(ValueError, match=r"no name shows one"):
        optreg.get_optimizer("sgd", nn.Linear(2, 2), lr=0.1, layer_decay=0.5)


@pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="torch.optim.Muon needs torch >= 2.9")
def test_a_composite_takes_the_side_from_a_rule() -> None:
    model = Encoder()
    rules = [
        {"match": "encoder.layer.2.attn.weight", "optimizer": "adamw"},
        {"module": "embedding", "lr_scale": 0.5},
    ]
    opt = optreg.get_optimizer(
        "muon_adamw", model, lr=0.02, adamw_lr=1e-3, rules=rules, layer_decay=1.0
    )
    assert opt.routes["encoder.layer.2.attn.weight"] == "adamw"  # type: ignore[attr-defined]
    assert opt.routes["encoder.layer.1.attn.weight"] == "muon"  # type: ignore[attr-defined]
    side_lrs = {(g["optimizer"], g["lr"]) for g in opt.param_groups}
    assert ("adamw", 5e-4) in side_lrs and ("muon", 0.02) in side_lrs
    with pytest.raises(
        ValueError, match=r"a rule sends 'final_norm.weight' of shape \[8\] to Muon"
    ):
        optreg.get_optimizer(
            "muon_adamw", Encoder(), rules=[{"match": "final_norm.weight", "optimizer": "muon"}]
        )


def test_a_record_rebuilds_the_same_groups() -> None:
    model = Encoder()
    opt = optreg.get_optimizer(
        "adamw", model, lr=1e-3, rules=[{"ndim": 1, "lr_scale": 2.0}], layer_decay=0.8
    )
    rebuilt, _ = optreg.from_state_dict(optreg.state_dict(opt), model)
    assert [g["lr"] for g in rebuilt.param_groups] == [g["lr"] for g in opt.param_groups]


def test_group_parameters_is_what_get_optimizer_gives_the_optimizer() -> None:
    model = torch.nn.Sequential(
        torch.nn.Embedding(5, 4), torch.nn.Linear(4, 4), torch.nn.LayerNorm(4)
    )
    rules = [{"module": "embedding", "lr_scale": 0.1}, {"match": "1.weight", "betas": [0.8, 0.9]}]
    groups = optreg.group_parameters(model, rules=rules, weight_decay=0.1, lr=1e-2)
    opt = optreg.get_optimizer("adamw", model, rules=rules, weight_decay=0.1, lr=1e-2)
    strip = [{k: v for k, v in g.items() if k != "params"} for g in groups]
    assert [[id(p) for p in g["params"]] for g in groups] == [
        [id(p) for p in g["params"]] for g in opt.param_groups
    ]
    for options, group in zip(strip, opt.param_groups, strict=True):
        assert {k: group[k] for k in options} == options
    assert any(o.get("lr") == pytest.approx(1e-3) for o in strip)  # the embedding's
    with pytest.raises(ValueError, match="give rules= or overrides=, not both"):
        optreg.group_parameters(model, rules=rules, overrides={"0": {"lr": 1.0}})


@pytest.mark.parametrize(
    ("rule", "error", "message"),
    [
        ({"shape": 8, "lr": 1e-3}, TypeError, "selector 'shape' must be a list of ints, got int: 8"),
        ({"match": 5, "lr": 1e-3}, TypeError, "selector 'match' must be a name pattern"),
        ({"ndim": [1, "a"], "lr": 1e-3}, TypeError, "selector 'ndim' must be an int or a list"),
        ({"regex": ["a"], "lr": 1e-3}, TypeError, "selector 'regex' must be a regular expression"),
        ({"match": "weight", "lr_scale": float("inf")}, ValueError,
         "lr_scale must be a finite number >= 0, got inf"),
    ],
)  # fmt: skip
def test_selectors_and_lr_scale_of_the_wrong_kind_are_named(
    rule: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=re.escape(f"rules[0]: {message}")):
        optreg.get_optimizer("adamw", torch.nn.Linear(2, 2), rules=[rule])


def test_an_lr_scale_that_overflows_the_lr_is_refused() -> None:
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError) as info:
        optreg.get_optimizer(
            "adamw", model, lr=1e308, rules=[{"match": "weight", "lr_scale": 1e10}]
        )
    assert str(info.value) == (
        "lr_scale / layer_decay make parameter 'weight''s lr inf (lr 1e+308 x 10000000000.0), "
        "which is not finite; use a smaller lr_scale or lr"
    )


def test_layer_decay_scales_a_tensor_lr_into_a_tensor_per_group() -> None:
    """A tensor lr (for a compiled step) was refused with "give the optimizer an lr"."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    lr = torch.tensor(0.01)
    opt = optreg.get_optimizer("adamw", model, lr=lr, layer_decay=0.5, layer_pattern=r"^(\d+)\.")
    lrs = [g["lr"] for g in opt.param_groups]
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in lrs)
    assert [v.item() for v in lrs] == [
        (lr * 0.5**2).item(), (lr * 0.5**2).item(), (lr * 0.5).item(), (lr * 0.5).item()
    ]  # fmt: skip
    assert len({id(v) for v in lrs}) == len(lrs)  # each its own, for a schedule to fill
    with pytest.raises(ValueError, match=r"has lr='fast', which is not a number: give"):
        optreg.group_parameters(model, layer_decay=0.5, layer_pattern=r"^(\d+)\.", lr="fast")


def test_layer_decay_puts_every_embedding_in_layer_zero() -> None:
    vit = [  # timm's VisionTransformer names: a 2-D pos_embed Parameter, a head Linear
        "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
        "blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.qkv.weight",
        "blocks.0.qkv.bias", "norm.weight", "norm.bias", "head.weight", "head.bias",
    ]  # fmt: skip
    names = [*vit, "shared.weight", "transformer.wte.weight"]
    layers, count = layer_ids(names)
    assert count == 1
    embeddings = {n for n in names if layers[n] == 0}
    assert embeddings == {
        "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
        "shared.weight", "transformer.wte.weight",
    }  # fmt: skip


PATTERN = r"x(\d)"


@pytest.mark.parametrize(
    ("call", "where"),
    [
        (lambda kw: optreg.get_optimizer("adamw", Encoder(), lr=1e-3, **kw), "get_optimizer('adamw')"),
        (lambda kw: optreg.group_parameters(Encoder(), lr=1e-3, **kw), "group_parameters"),
        (lambda kw: optreg.get_optimizer("muon_adamw", Encoder(), lr=1e-3, **kw), "get_optimizer('muon_adamw')"),
    ],
)  # fmt: skip
def test_the_grouping_keywords_are_checked_in_one_place_for_every_caller(
    call: Any, where: str
) -> None:
    """get_optimizer, group_parameters and a composite read one checked Grouping: the
    same keyword error, named for the call, before any parameter is walked."""
    both = {"rules": [{"ndim": 1, "lr": 1.0}], "overrides": {"head": {"lr": 1.0}}}
    with pytest.raises(
        ValueError, match=re.escape(f"{where}: give rules= or overrides=, not both")
    ):
        call(both)
    with pytest.raises(TypeError, match=re.escape(f"{where}: overrides must map name patterns")):
        call({"overrides": {"head": 0.1}})
    with pytest.raises(
        ValueError, match=re.escape(f"{where}: layer_pattern={PATTERN!r} is read only")
    ):
        call({"layer_pattern": PATTERN})


def test_override_and_rule_options_are_checked_alike_and_kept_as_checked() -> None:
    """Each override and each rule is one option set, checked as keywords are: the same
    message for both, and the checked value (a NumPy scalar as a Python float) is what
    the group gets."""
    np = pytest.importorskip("numpy")
    for kw, at in (
        ({"overrides": {"final_norm": {"lrr": 1.0}}}, "overrides['final_norm']"),
        ({"rules": [{"match": "final_norm*", "lrr": 1.0}]}, "rules[0]"),
        ({"rules": [{"name": "norms", "match": "final_norm*", "lrr": 1.0}]}, "rule 'norms'"),
    ):
        with pytest.raises(
            TypeError, match=re.escape(f"{at} got an unexpected keyword argument 'lrr'")
        ):
            optreg.get_optimizer("adamw", Encoder(), lr=1e-3, **kw)
    for kw in (
        {"overrides": {"final_norm": {"weight_decay": np.float64(0.5)}}},
        {"rules": [{"match": "final_norm*", "weight_decay": np.float64(0.5)}]},
    ):
        opt = optreg.get_optimizer("adamw", Encoder(), lr=1e-3, **kw)
        groups = [g for g in opt.param_groups if g["weight_decay"] == 0.5]
        assert len(groups) == 1 and len(groups[0]["params"]) == 2  # final_norm's two
        assert type(groups[0]["weight_decay"]) is float
