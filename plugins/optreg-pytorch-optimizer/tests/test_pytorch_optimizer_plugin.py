"""optreg-pytorch-optimizer: names listed lazily, builtins not shadowed, names usable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from optreg_pytorch_optimizer._generate import listing
from optreg_pytorch_optimizer._names import OPTIMIZERS, PYTORCH_OPTIMIZER_VERSION, SCHEDULERS
from optreg_pytorch_optimizer._needs import MUON_FAMILY, NOT_REGISTERED, TAKES_MODEL

import optreg
from optreg.testing import (
    OPTIMIZER_CHECKS,
    assert_table_current,
    check_optimizer,
    check_scheduler,
)

DIST = "optreg-pytorch-optimizer"
README = Path(__file__).parents[1] / "README.md"


@pytest.fixture(autouse=True)
def fresh(isolated_registry: None) -> None:
    """Every test with a registry of its own (optreg.testing's public fixture)."""


def test_frozen_names_match_the_installed_pytorch_optimizer() -> None:
    version, optimizers, schedulers = listing()
    assert (version, optimizers, schedulers) == (
        PYTORCH_OPTIMIZER_VERSION,
        OPTIMIZERS,
        SCHEDULERS,
    ), (
        "pytorch_optimizer changed: regenerate optreg_pytorch_optimizer/_names.py with "
        "`python -m optreg_pytorch_optimizer._generate`"
    )


def test_listing_imports_no_pytorch_optimizer() -> None:
    code = (
        "import sys, optreg; names = optreg.list_optimizers(); sch = optreg.list_schedulers(); "
        "info = optreg.optimizers['adabelief']; "
        "print(len(names), 'adabelief' in names, 'rex' in sch, info.provider, "
        "'pytorch_optimizer' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[1:] == ["True", "True", "optreg_pytorch_optimizer", "False"]


def test_every_listed_name_is_registered_except_non_factories() -> None:
    for kind, names, registry in (
        ("optimizer", OPTIMIZERS, optreg.optimizers),
        ("scheduler", SCHEDULERS, optreg.schedulers),
    ):
        for name, attr in names.items():
            qualified = f"{DIST}:{name}"
            if (kind, name) in NOT_REGISTERED:
                assert qualified not in registry
                continue
            entry = registry[qualified]
            if kind == "optimizer" and name in MUON_FAMILY:
                assert entry.target == f"optreg_pytorch_optimizer.muon:{name}"
            elif kind == "optimizer" and name in TAKES_MODEL:
                assert entry.target == f"optreg_pytorch_optimizer.model:{name}"
            else:
                assert entry.target == f"pytorch_optimizer:{attr}"
            assert entry.provider == "optreg_pytorch_optimizer"


@pytest.mark.parametrize(
    ("kind", "name"), [("optimizer", "adamw"), ("optimizer", "lbfgs"), ("scheduler", "cosine")]
)
def test_builtins_are_not_shadowed(kind: str, name: str) -> None:
    registry = optreg.optimizers if kind == "optimizer" else optreg.schedulers
    assert registry[name].provider == "optreg"
    theirs = registry[f"{DIST}:{name}"]
    assert theirs.provider == "optreg_pytorch_optimizer"
    shadowed, _ = registry.conflicts()
    assert (registry[name], theirs) in shadowed


def test_a_name_builds_the_pytorch_optimizer_class() -> None:
    import pytorch_optimizer

    p = torch.nn.Parameter(torch.ones(3))
    opt = optreg.get_optimizer("adabelief", [p], lr=0.01)
    assert type(opt) is pytorch_optimizer.AdaBelief
    assert type(optreg.get_optimizer(f"{DIST}:adamw", [p])) is torch.optim.AdamW
    sched = optreg.get_scheduler("cosine_annealing", opt, T_max=10)
    assert type(sched) is torch.optim.lr_scheduler.CosineAnnealingLR


def test_missing_optional_module_makes_a_name_unavailable() -> None:
    info = optreg.optimizer_info("demo")
    einops_installed = False
    try:
        import einops  # noqa: F401

        einops_installed = True
    except ImportError:
        pass
    assert info.available is einops_installed


def test_conformance_metadata_reaches_entry_info() -> None:
    info = optreg.optimizer_info(f"{DIST}:lbfgs")
    assert info.metadata["conformance"] == {"requires_closure": True, "param_groups": False}


# lion is qualified: optreg-single-optimizers (lion-pytorch) has one too
@pytest.mark.parametrize("name", ["adabelief", f"{DIST}:lion", "adahessian", f"{DIST}:lbfgs"])
def test_conformance_of_a_few_names(name: str) -> None:
    report = check_optimizer(name)
    assert set(report.passed) | set(report.skipped) == set(OPTIMIZER_CHECKS)


def test_conformance_of_a_scheduler() -> None:
    report = check_scheduler("rex")
    assert report.skipped == {}


def test_every_name_has_a_row_in_the_readme_kit_table_and_it_is_current() -> None:
    rows = assert_table_current(README, DIST)
    registered = {n for n in OPTIMIZERS if ("optimizer", n) not in NOT_REGISTERED}
    registered |= {n for n in SCHEDULERS if ("scheduler", n) not in NOT_REGISTERED}
    assert {r.name for r in rows} == registered


# -- the Muon family: use_muon groups made for you ------------------------------------
class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 8)
        self.body = torch.nn.Linear(8, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.conv = torch.nn.Conv1d(8, 8, 1)
        self.head = torch.nn.Linear(8, 10)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.norm(torch.relu(self.body(self.embed(ids))))
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)
        return self.head(h)


def _train(opt: torch.optim.Optimizer, model: torch.nn.Module, steps: int = 4) -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        ids = torch.randint(0, 10, (4, 5), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), ids.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("name", sorted(MUON_FAMILY - {"distributedmuon"}))
def test_a_muon_name_splits_as_prepare_muon_parameters_does(name: str) -> None:
    from pytorch_optimizer.optimizer.muon.utils import prepare_muon_parameters

    torch.manual_seed(0)
    ours_model = _Net()
    theirs_model = _Net()
    theirs_model.load_state_dict(ours_model.state_dict())
    ours = optreg.get_optimizer(
        f"{DIST}:{name}", ours_model, lr=0.02, weight_decay=0.0, adamw_lr=1e-3
    )
    theirs = prepare_muon_parameters(
        theirs_model, name, lr=0.02, weight_decay=0.0, adamw_lr=1e-3, adamw_wd=0.0
    )
    assert type(ours) is type(theirs)
    names = {id(p): n for n, p in ours_model.named_parameters()}
    muon_side = [names[id(p)] for g in ours.param_groups if g["use_muon"] for p in g["params"]]
    assert muon_side == ["body.weight", "conv.weight"]  # not the embedding, norm, biases, head
    assert [g["lr"] for g in ours.param_groups] == [0.02, 1e-3]
    _train(ours, ours_model)
    _train(theirs, theirs_model)
    for (n, a), b in zip(ours_model.named_parameters(), theirs_model.parameters(), strict=True):
        assert torch.equal(a, b), n


def test_a_muon_name_keeps_optregs_no_decay_split_on_both_sides() -> None:
    opt = optreg.get_optimizer(f"{DIST}:muon", _Net(), lr=0.02, weight_decay=0.1, adamw_wd=0.01)
    sides = [(g["use_muon"], g["weight_decay"], len(g["params"])) for g in opt.param_groups]
    # decayed: body/conv weights by Muon (weight_decay), embedding and head weights by
    # AdamW (adamw_wd); not decayed: biases and the norm, all AdamW
    assert sides == [(True, 0.1, 2), (False, 0.01, 2), (False, 0.0, 5)]


def test_a_rules_lr_scale_scales_each_sides_own_lr() -> None:
    opt = optreg.get_optimizer(
        f"{DIST}:muon",
        _Net(),
        lr=0.02,
        adamw_lr=1e-3,
        adamw_wd=0.01,  # Muon's weight_decay stays 0.0: AdamW's side gets the no-decay split
        rules=[{"match": ["embed", "body"], "lr_scale": 0.5}],
    )
    got = sorted(
        (g["use_muon"], g["lr"], g["weight_decay"], len(g["params"])) for g in opt.param_groups
    )
    assert got == sorted(
        [
            (True, 0.01, 0.0, 1),  # body.weight: 0.5 * lr, Muon's weight_decay
            (False, 0.0005, 0.01, 1),  # embed.weight: 0.5 * adamw_lr, adamw_wd
            (False, 0.0005, 0.0, 1),  # body.bias: 0.5 * adamw_lr, not decayed
            (True, 0.02, 0.0, 1),  # conv.weight
            (False, 1e-3, 0.01, 1),  # head.weight
            (False, 1e-3, 0.0, 4),  # conv.bias, norm.weight, norm.bias, head.bias
        ]
    )


def test_a_rule_can_send_a_parameter_to_either_side() -> None:
    opt = optreg.get_optimizer(
        f"{DIST}:muon",
        _Net(),
        lr=0.02,
        rules=[{"match": "head.weight", "use_muon": True}, {"match": "conv", "use_muon": False}],
    )
    flags = {(g["use_muon"], p.shape) for g in opt.param_groups for p in g["params"]}
    assert (True, torch.Size([10, 8])) in flags and (False, torch.Size([8, 8, 1])) in flags


def test_bare_tensors_go_by_shape_and_a_flagged_group_stays_as_given() -> None:
    w, b = torch.nn.Parameter(torch.ones(4, 3)), torch.nn.Parameter(torch.ones(3))
    opt = optreg.get_optimizer(f"{DIST}:muon", [w, b], lr=0.02)
    assert [(g["use_muon"], [p.shape for p in g["params"]]) for g in opt.param_groups] == [
        (True, [torch.Size([4, 3])]),
        (False, [torch.Size([3])]),
    ]
    opt = optreg.get_optimizer(f"{DIST}:muon", [{"params": [w, b], "use_muon": False}])
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["use_muon"] is False


def test_the_factories_show_the_class_keywords_and_a_routed_one_the_grouping_options() -> None:
    import inspect

    muon = inspect.signature(optreg.optimizers.load(optreg.optimizers.resolve(f"{DIST}:muon")))
    assert muon.parameters["lr"].default == 0.02
    assert muon.parameters["adamw_lr"].default == 3e-4
    assert "rules" not in muon.parameters  # optreg groups for it: the keywords are its own
    assert inspect.signature(optreg.optimizers.load("adammini")).parameters["rules"].default is None
    info = optreg.optimizer_info("adammini")
    assert info.signature.startswith("(params, *, lr: float = 1.0, betas")  # not `model`
    assert "num_heads: int = 32" in info.signature


# -- LOMO, AdaLOMO, Adam-mini: they take the model ------------------------------------
def test_adammini_gets_the_model_and_matches_building_it_by_hand() -> None:
    from pytorch_optimizer import AdamMini

    torch.manual_seed(0)
    ours_model, theirs_model = _Net(), _Net()
    theirs_model.load_state_dict(ours_model.state_dict())
    ours = optreg.get_optimizer("adammini", ours_model, lr=1e-3, num_embeds=8, num_heads=2)
    theirs = AdamMini(theirs_model, lr=1e-3, num_embeds=8, num_heads=2)
    assert type(ours) is AdamMini
    assert [g["name"] for g in ours.param_groups] == [g["name"] for g in theirs.param_groups]
    _train(ours, ours_model)
    _train(theirs, theirs_model)
    for (n, a), b in zip(ours_model.named_parameters(), theirs_model.parameters(), strict=True):
        assert torch.equal(a, b), n


@pytest.mark.parametrize("name", ["lomo", "adalomo"])
def test_lomo_trains_through_fused_backward_as_built_by_hand(name: str) -> None:
    import pytorch_optimizer

    def net() -> torch.nn.Module:  # AdaLOMO takes 1-D and 2-D parameters only (upstream)
        return torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Linear(8, 10))

    torch.manual_seed(0)
    ours_model, theirs_model = net(), net()
    theirs_model.load_state_dict(ours_model.state_dict())
    ours = optreg.get_optimizer(f"{DIST}:{name}", ours_model, lr=1e-2)
    theirs = getattr(pytorch_optimizer, TAKES_MODEL_CLASSES[name])(theirs_model, lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        ids = torch.randint(0, 10, (4, 5), generator=gen)
        for opt, model in ((ours, ours_model), (theirs, theirs_model)):
            loss = torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), ids.flatten())
            opt.fused_backward(loss, lr=1e-2)
    for (n, a), b in zip(ours_model.named_parameters(), theirs_model.parameters(), strict=True):
        assert torch.equal(a, b), n


TAKES_MODEL_CLASSES = {"lomo": "LOMO", "adalomo": "AdaLOMO"}


def test_a_model_taking_name_says_what_it_needs() -> None:
    p = torch.nn.Parameter(torch.ones(4, 3))
    with pytest.raises(TypeError, match=r"adammini takes the nn.Module .*got list"):
        optreg.get_optimizer("adammini", [p])
    with pytest.raises(ValueError, match=r"its own param groups .* so optreg's overrides cannot"):
        optreg.get_optimizer("adammini", _Net(), overrides={"head": {"lr": 0.1}})


def test_a_muon_name_is_grouped_by_optreg_from_its_declared_sides() -> None:
    """The factory declares its sides and takes param groups: optreg routes, groups and
    flags (and runs the prepare hook there); the groups are what optreg.group_sides makes."""
    from optreg_pytorch_optimizer.muon import SIDES

    contract = optreg.optimizers.load(f"{DIST}:muon").optreg_contract
    assert contract.sides is SIDES and not contract.routes_params
    model = _Net()
    opt = optreg.get_optimizer(f"{DIST}:muon", model, lr=0.02, adamw_lr=1e-3, adamw_wd=0.01)
    groups = optreg.group_sides(
        model, SIDES, {"lr": 0.02, "adamw_lr": 1e-3, "weight_decay": 0.0, "adamw_wd": 0.01}
    )
    assert [[id(p) for p in g["params"]] for g in opt.param_groups] == [
        [id(p) for p in g["params"]] for g in groups
    ]
    assert [g["use_muon"] for g in opt.param_groups] == [True, False, False]
