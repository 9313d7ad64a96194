"""optreg-pytorch-optimizer: names listed lazily, builtins not shadowed, names usable."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from optreg_pytorch_optimizer._generate import listing
from optreg_pytorch_optimizer._names import OPTIMIZERS, PYTORCH_OPTIMIZER_VERSION, SCHEDULERS
from optreg_pytorch_optimizer._needs import NOT_REGISTERED

import optreg
from optreg import _discovery
from optreg.testing import OPTIMIZER_CHECKS, check_optimizer, check_scheduler

DIST = "optreg-pytorch-optimizer"


@pytest.fixture(autouse=True)
def fresh() -> object:
    _discovery.reset()
    yield
    _discovery.reset()


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
