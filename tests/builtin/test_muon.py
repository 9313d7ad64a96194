"""optreg.builtin.muon: ``muon`` and the ``muon_adamw`` hybrid (one optimizer, two sides)."""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch
from helpers import needs_muon
from torch import nn

import optreg
from optreg.builtin.muon import MuonAdamW, route

pytestmark = needs_muon


class TinyLM(nn.Module):
    """Embedding, two blocks, a norm, a tied head, and a conv stem (N-D kernel)."""

    def __init__(self, vocab: int = 32, width: int = 16) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv1d(1, 1, 3, padding=1)
        self.embed = nn.Embedding(vocab, width)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"attn": nn.Linear(width, width), "mlp": nn.Linear(width, width)})
            for _ in range(2)
        )
        self.norm = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.embed.weight  # tied
        self.classifier = nn.Linear(width, 2)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.embed(idx)
        h = h + self.stem(h.reshape(-1, 1, h.shape[-1])).reshape(h.shape)
        for block in self.blocks:
            h = h + block["mlp"](torch.tanh(block["attn"](h)))
        h = self.norm(h)
        return self.lm_head(h).sum() + self.classifier(h).sum()


def _loss(model: nn.Module, step: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(step)
    return model(torch.randint(0, 32, (4, 5), generator=gen)).pow(2) * 1e-3


HIDDEN = [
    "blocks.0.attn.weight",
    "blocks.0.mlp.weight",
    "blocks.1.attn.weight",
    "blocks.1.mlp.weight",
]


def test_muon_is_torchs_and_names_what_is_not_2d() -> None:
    w = nn.Parameter(torch.randn(4, 3))
    opt = optreg.get_optimizer("muon", [w], lr=0.02)
    assert type(opt) is torch.optim.Muon and opt.defaults["lr"] == 0.02  # type: ignore[attr-defined]
    with pytest.raises(
        ValueError,
        match=r"muon takes only 2-D parameters .* got 3 that are not "
        r"\(group 1: shape \[16\], group 1: shape \[16\], group 1: shape \[16\]\); "
        r"use 'muon_adamw'",
    ):
        optreg.get_optimizer(
            "muon", nn.Sequential(nn.Linear(16, 16), nn.LayerNorm(16)), weight_decay=0.1
        )


def test_the_split() -> None:
    routes = route(TinyLM())
    assert [n for n, side in routes.items() if side == "muon"] == HIDDEN
    adamw = {n for n, side in routes.items() if side == "adamw"}
    assert adamw == {
        "stem.weight",  # a conv kernel (3-D)
        "stem.bias",
        "embed.weight",  # the embedding, and the head tied to it (listed once)
        "blocks.0.attn.bias", "blocks.0.mlp.bias", "blocks.1.attn.bias", "blocks.1.mlp.bias",
        "norm.weight", "norm.bias",
        "classifier.weight",  # an output head, by its module's name
        "classifier.bias",
    }  # fmt: skip
    # named parameters without modules: embeddings and heads by name
    named = route(list(TinyLM().named_parameters()))
    assert [n for n, side in named.items() if side == "muon"] == HIDDEN
    # user patterns win
    forced = route(TinyLM(), adamw_params=["blocks.1.*"], muon_params=["classifier.weight"])
    assert forced["blocks.1.attn.weight"] == "adamw" and forced["classifier.weight"] == "muon"


def test_one_optimizer_with_tagged_groups_and_the_routes_to_read() -> None:
    model = TinyLM()
    opt = optreg.get_optimizer("muon_adamw", model, lr=0.02, adamw_lr=3e-4)
    assert isinstance(opt, torch.optim.Optimizer) and isinstance(opt, MuonAdamW)
    assert opt.routes == route(model)
    sides = [
        (g["optimizer"], g["lr"], g["weight_decay"], len(g["params"])) for g in opt.param_groups
    ]
    assert sides == [("muon", 0.02, 0.1, 4), ("adamw", 3e-4, 0.01, 3), ("adamw", 3e-4, 0.0, 8)]
    assert isinstance(opt.muon, torch.optim.Muon) and type(opt.adamw) is torch.optim.AdamW  # type: ignore[attr-defined]


def _by_hand(model: nn.Module, fused: bool | None = None) -> list[torch.optim.Optimizer]:
    """What a user writes: the same split, torch.optim.Muon + torch.optim.AdamW."""
    routes = route(model)
    named = list(model.named_parameters())
    muon_part = [(n, p) for n, p in named if routes[n] == "muon"]
    adamw_part = [(n, p) for n, p in named if routes[n] == "adamw"]
    return [
        torch.optim.Muon(
            optreg.group_parameters(muon_part, weight_decay=0.1), lr=0.02, weight_decay=0.1
        ),  # type: ignore[attr-defined]
        torch.optim.AdamW(
            optreg.group_parameters(adamw_part, weight_decay=0.01),
            lr=1e-3,
            weight_decay=0.01,
            fused=fused,
        ),
    ]


@pytest.mark.parametrize(
    ("kwargs", "fused"),
    [({}, True), ({"adamw_fused": False}, None)],
    ids=["fused-by-default", "torch-default-kernel"],
)
def test_updates_equal_torch_muon_plus_adamw_by_hand_bit_for_bit(
    kwargs: dict[str, Any], fused: bool | None
) -> None:
    ours_model, hand_model = TinyLM(), TinyLM()
    ours = optreg.get_optimizer("muon_adamw", ours_model, lr=0.02, adamw_lr=1e-3, **kwargs)
    hand = _by_hand(hand_model, fused=fused)
    sched = optreg.get_scheduler("cosine", ours, num_warmup_steps=1, num_training_steps=6)
    hand_scheds = [
        optreg.get_scheduler("cosine", o, num_warmup_steps=1, num_training_steps=6) for o in hand
    ]
    for step in range(6):
        _loss(ours_model, step).backward()
        _loss(hand_model, step).backward()
        ours.step()
        sched.step()
        ours.zero_grad()
        for o, s in zip(hand, hand_scheds, strict=True):
            o.step()
            s.step()
            o.zero_grad()
        assert [g["lr"] for g in ours.param_groups] == [
            g["lr"] for o in hand for g in o.param_groups
        ]
    for (name, a), b in zip(ours_model.named_parameters(), hand_model.parameters(), strict=True):
        assert torch.equal(a, b), name


def test_resume_is_bit_identical_through_weights_only() -> None:
    straight, resumed = TinyLM(), TinyLM()
    opt = optreg.get_optimizer("muon_adamw", straight, lr=0.02)
    sched = optreg.get_scheduler("linear", opt, num_warmup_steps=1, num_training_steps=8)
    for step in range(8):
        if step == 4:
            buf = io.BytesIO()
            torch.save(
                {
                    "model": straight.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                },
                buf,
            )
            buf.seek(0)
            ckpt = torch.load(buf, weights_only=True)
        _loss(straight, step).backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    resumed.load_state_dict(ckpt["model"])
    r_opt = optreg.get_optimizer("muon_adamw", resumed, lr=0.02)
    r_opt.load_state_dict(ckpt["opt"])
    r_sched = optreg.get_scheduler("linear", r_opt, num_warmup_steps=1, num_training_steps=8)
    r_sched.load_state_dict(ckpt["sched"])
    assert r_opt.muon.state is r_opt.state and r_opt.muon.param_groups[0] is r_opt.param_groups[0]  # type: ignore[attr-defined]
    for step in range(4, 8):
        _loss(resumed, step).backward()
        r_opt.step()
        r_sched.step()
        r_opt.zero_grad()
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b), name
    # another split refuses the state, by side
    other = optreg.get_optimizer("muon_adamw", TinyLM(), lr=0.02, adamw_params=["blocks.*"])
    with pytest.raises(
        ValueError, match=r"the state's param groups are \['muon', 'adamw', 'adamw'\]"
    ):
        other.load_state_dict(ckpt["opt"])


def test_a_checkpoint_record_rebuilds_it() -> None:
    model = TinyLM()
    opt = optreg.get_optimizer("muon_adamw", model, lr=0.02, adamw_betas=(0.9, 0.95))
    _loss(model, 0).backward()
    opt.step()
    record = optreg.state_dict(opt)
    rebuilt, _ = optreg.from_state_dict(record, model)
    assert isinstance(rebuilt, MuonAdamW) and rebuilt.hyperparameters["adamw_betas"] == (0.9, 0.95)
    assert rebuilt.state_dict()["state"].keys() == opt.state_dict()["state"].keys()


def test_as_a_class_and_with_overrides() -> None:
    model = TinyLM()
    opt = optreg.get_optimizer_cls("muon_adamw")(
        model, lr=0.02, overrides={"blocks.1": {"lr": 0.01}}
    )
    lrs = {(g["optimizer"], g["lr"]) for g in opt.param_groups}
    assert (
        ("muon", 0.01) in lrs and ("muon", 0.02) in lrs and ("adamw", 0.01) in lrs
    )  # biases of blocks.1


@pytest.mark.parametrize(
    ("params", "kwargs", "error", "match"),
    [
        (lambda: list(TinyLM().parameters()), {}, TypeError, r"routes parameters by name and module type"),
        (lambda: TinyLM(), {"route": "shape"}, ValueError, r"`route` must be 'auto' or 'ndim', got 'shape'"),
        (lambda: TinyLM(), {"muon_params": ["norm.weight"]}, ValueError, r"matches 'norm.weight' of shape \[16\]: Muon takes only 2-D"),
        (lambda: TinyLM(), {"adamw_params": ["nope"]}, ValueError, r"adamw_params pattern 'nope' matches no parameter"),
        (lambda: [{"params": [nn.Parameter(torch.zeros(2, 2))]}], {}, ValueError, r"param group 0 of muon_adamw needs 'optimizer'"),
    ],
)  # fmt: skip
def test_errors(params: Any, kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        optreg.get_optimizer("muon_adamw", params(), **kwargs)


def test_bare_tensors_by_shape_and_tagged_groups() -> None:
    w, b = nn.Parameter(torch.randn(4, 4)), nn.Parameter(torch.randn(4))
    opt = optreg.get_optimizer("muon_adamw", [w, b], route="ndim")
    assert opt.routes == {"params[0]": "muon", "params[1]": "adamw"}
    assert route(iter([w, b]), route="ndim") == opt.routes  # a generator, read once
    tagged = optreg.get_optimizer(
        "muon_adamw",
        [{"params": [b], "optimizer": "adamw", "lr": 1e-4}, {"params": [w], "optimizer": "muon"}],
    )
    assert [(g["optimizer"], g["lr"]) for g in tagged.param_groups] == [
        ("muon", 1e-3),
        ("adamw", 1e-4),
    ]
    extra = nn.Parameter(torch.randn(4, 4))
    tagged.add_param_group({"params": [extra], "optimizer": "muon", "lr": 0.5})
    assert tagged.param_groups[-1] is tagged.muon.param_groups[-1]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"add_param_group needs 'optimizer': 'muon' or 'adamw'"):
        tagged.add_param_group({"params": [nn.Parameter(torch.randn(2))]})


# --------------------------------------------------------------- options: each on its own side


def _group_of(opt: Any, model: nn.Module, name: str) -> dict[str, Any]:
    p = dict(model.named_parameters())[name]
    [group] = [g for g in opt.param_groups if any(q is p for q in g["params"])]
    return group


@pytest.mark.parametrize("key", ["betas", "adamw_betas"])
@pytest.mark.parametrize("how", ["rules", "overrides"])
def test_an_adamw_option_in_a_rule_or_override_reaches_adamws_side(key: str, how: str) -> None:
    model = TinyLM()
    given = {key: (0.8, 0.9)}
    grouping: dict[str, Any] = (
        {"rules": [{"match": "embed.*", **given}]}
        if how == "rules"
        else {"overrides": {"embed": given}}
    )
    opt = optreg.get_optimizer("muon_adamw", model, **grouping)
    group = _group_of(opt, model, "embed.weight")
    assert group["optimizer"] == "adamw" and group["betas"] == (0.8, 0.9)
    assert key not in group or key == "betas"
    assert _group_of(opt, model, "classifier.bias")["betas"] == (0.9, 0.999)


def test_adamw_lr_in_a_rule_sets_the_adamw_groups_lr_and_lr_scale_scales_it() -> None:
    model = TinyLM()
    opt = optreg.get_optimizer(
        "muon_adamw", model, lr=0.02,
        rules=[{"match": "embed.*", "adamw_lr": 1e-3, "lr_scale": 0.5}],
    )  # fmt: skip
    group = _group_of(opt, model, "embed.weight")
    assert group["lr"] == 5e-4 and "adamw_lr" not in group
    assert _group_of(opt, model, "blocks.0.attn.weight")["lr"] == 0.02


def test_a_muon_option_applies_to_the_muon_parameters_a_rule_selects() -> None:
    model = TinyLM()
    opt = optreg.get_optimizer(
        "muon_adamw", model, rules=[{"match": "blocks.0.*", "momentum": 0.8}]
    )
    assert _group_of(opt, model, "blocks.0.attn.weight")["momentum"] == 0.8
    assert "momentum" not in _group_of(opt, model, "blocks.0.attn.bias")  # AdamW's side
    assert _group_of(opt, model, "blocks.1.attn.weight")["momentum"] == 0.95


@pytest.mark.parametrize(
    "grouping",
    [
        {"rules": [{"ndim": 1, "momentum": 0.5}]},
        {"overrides": {"norm": {"nesterov": False}}},
        {"overrides": {"blocks.0.mlp.weight": {"adamw_eps": 1e-6}}},
    ],
)
def test_an_option_that_reaches_no_parameter_of_its_side_is_refused(grouping: Any) -> None:
    with pytest.raises(ValueError, match=r"an option of the (muon|adamw) side, but every "
                       r"parameter it selects goes to (adamw|muon) \('"):  # fmt: skip
        optreg.get_optimizer("muon_adamw", TinyLM(), **grouping)


def test_an_override_pattern_that_matches_nothing_is_refused_as_for_adamw() -> None:
    for name in ("adamw", "muon_adamw"):
        with pytest.raises(ValueError, match="override pattern 'nothing' matches no parameter"):
            optreg.get_optimizer(name, TinyLM(), overrides={"nothing": {"lr": 1e-4}})


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copy_steps_as_the_original(how: str) -> None:
    import copy
    import pickle

    model = TinyLM()
    opt = optreg.get_optimizer("muon_adamw", model, lr=0.02)
    _loss(model, 0).backward()
    opt.step()
    twin_model, twin = copy.deepcopy((model, opt))
    if how == "pickle":
        twin_model, twin = pickle.loads(pickle.dumps((model, opt)))
    assert twin.routes == opt.routes and twin.defaults == opt.defaults
    for m, o in ((model, opt), (twin_model, twin)):
        o.zero_grad()
        _loss(m, 1).backward()
        o.step()
    for (name, a), b in zip(model.named_parameters(), twin_model.parameters(), strict=True):
        assert torch.equal(a, b), name
    # the copy's sides hold the copy's groups and state, not the original's
    assert twin.muon.param_groups[0] is twin.param_groups[0]
    assert twin.adamw.state is twin.state and twin.state is not opt.state


def test_add_param_group_refuses_a_parameter_the_other_side_holds() -> None:
    model = TinyLM()
    opt = optreg.get_optimizer("muon_adamw", model, lr=0.02)
    hidden = model.blocks[0]["attn"].weight  # on Muon's side
    with pytest.raises(
        ValueError,
        match=r"a parameter of shape \(16, 16\) is already in a param group \(of the muon side\)",
    ):
        opt.add_param_group({"params": [hidden], "optimizer": "adamw"})
    assert len(opt.param_groups) == len(opt.muon.param_groups) + len(opt.adamw.param_groups)
    extra = nn.Parameter(torch.ones(4))
    opt.add_param_group({"params": extra, "optimizer": "adamw"})
    _loss(model, 0).backward()
    extra.grad = torch.ones(4)
    opt.step()
    assert not torch.equal(extra, torch.ones(4))


def test_optreg_prepare_is_not_an_option() -> None:
    with pytest.raises(TypeError, match=r"optreg_prepare is what optreg passes a factory"):
        optreg.get_optimizer("muon_adamw", TinyLM(), optreg_prepare=print)


def test_the_adamw_side_takes_the_kernel_adamw_would() -> None:
    model = TinyLM()
    opt = optreg.get_optimizer("muon_adamw", model, lr=0.02)
    alone = optreg.get_optimizer("adamw", [p for p in model.parameters() if p.ndim != 2])
    assert {g["fused"] for g in opt.adamw.param_groups} == {alone.param_groups[0]["fused"]}
    assert opt.adamw.param_groups[0]["fused"] is True  # CPU, contiguous: fused, as adamw
    own = optreg.get_optimizer("muon_adamw", model, lr=0.02, adamw_foreach=True)
    assert {(g["foreach"], g["fused"]) for g in own.adamw.param_groups} == {(True, None)}
    assert own.hyperparameters["adamw_foreach"] is True
    # a strided AdamW-side parameter: not fused (the kernel mis-updates it), as for adamw
    strided = nn.Parameter(torch.randn(10, 5, 2)[..., 0])
    side = optreg.get_optimizer(
        "muon_adamw", [{"params": [strided], "optimizer": "adamw"}], lr=0.02
    )
    assert side.adamw.param_groups[0]["fused"] is None
    with pytest.raises(ValueError, match=r"muon_adamw.*strided"):
        optreg.get_optimizer(
            "muon_adamw", [{"params": [strided], "optimizer": "adamw"}], adamw_fused=True
        )


def test_a_checkpoint_of_the_default_kernel_loads_and_the_fused_kernel_stays() -> None:
    model = TinyLM()
    before = optreg.get_optimizer("muon_adamw", model, lr=0.02, adamw_fused=False)
    _loss(model, 0).backward()
    before.step()
    saved = before.state_dict()
    for group in saved["param_groups"]:  # as saved before the AdamW side was fused: torch's
        if group["optimizer"] == "adamw":  # default kernel
            group["fused"] = None
    after = optreg.get_optimizer("muon_adamw", model, lr=0.02)
    after.load_state_dict(saved)
    assert {g["fused"] for g in after.adamw.param_groups} == {True}
    _loss(model, 1).backward()
    after.step()  # steps fused from the for-loop kernel's state
    assert int(after.state[model.blocks[0]["attn"].bias]["step"]) == 2
