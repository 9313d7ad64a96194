"""optreg-timm: the frozen name list, lazy listing, timm's classes, the kit table."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from optreg_timm._names import NAMES, TIMM_VERSION

import optreg
from optreg.testing import assert_table_current

DIST = "optreg-timm"
README = Path(__file__).parents[1] / "README.md"


@pytest.fixture(autouse=True)
def fresh(isolated_registry: None) -> None:
    """Every test with a registry of its own (optreg.testing's public fixture)."""


def test_frozen_names_match_the_installed_timm() -> None:
    import timm.optim

    assert importlib.metadata.version("timm") == TIMM_VERSION
    assert tuple(timm.optim.list_optimizers()) == NAMES, "timm changed: regenerate _names.py"


def test_listing_imports_neither_timm_nor_torchvision() -> None:
    code = (
        "import sys, optreg; n = set(optreg.list_optimizers()); "
        "print('lamb' in n, 'madgradw' in n, 'timm' in sys.modules, 'torchvision' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "True", "False", "False"]


def test_loading_a_factory_imports_no_timm_until_it_is_used() -> None:
    code = (
        "import sys, optreg; f = optreg.optimizers.load(optreg.optimizers.resolve('lamb')); "
        "print('timm' in sys.modules, f.__name__); import inspect; inspect.signature(f); "
        "print('timm' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "lamb", "True"]


def test_a_name_builds_what_create_optimizer_v2_builds() -> None:
    from timm.optim import Lamb, create_optimizer_v2

    p = torch.nn.Parameter(torch.ones(4, 4))
    ours = optreg.get_optimizer("lamb", [p], lr=1e-3, weight_decay=0.01)
    theirs = create_optimizer_v2([p], opt="lamb", lr=1e-3, weight_decay=0.01)
    assert type(ours) is type(theirs) is Lamb
    assert ours.defaults == theirs.defaults
    # a builtin's name stays the builtin's; timm's is qualified
    assert type(optreg.get_optimizer("adamw", [p])) is torch.optim.AdamW
    assert optreg.optimizers.resolve(f"{DIST}:adamw").provider == "optreg_timm"


def test_optregs_groups_are_not_split_again_by_timm() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = optreg.get_optimizer("lamb", model, lr=1e-3, weight_decay=0.1)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]


def test_every_name_has_a_row_in_the_readme_kit_table_and_it_is_current() -> None:
    rows = assert_table_current(README, DIST)
    assert {r.name for r in rows} == set(NAMES)


def test_a_factory_has_the_signature_of_what_timm_builds() -> None:
    import inspect

    sgdp = inspect.signature(optreg.optimizers.load(optreg.optimizers.resolve("sgdp")))
    assert sgdp.parameters["lr"].default is inspect.Parameter.empty
    assert sgdp.parameters["weight_decay"].default == 0.0  # timm's, not the class's
    assert sgdp.parameters["nesterov"].default is True  # the name's own default
    nlars = inspect.signature(optreg.optimizers.load(optreg.optimizers.resolve("nlars")))
    assert (nlars.parameters["lr"].default, nlars.parameters["momentum"].default) == (1.0, 0.9)
    assert "kwargs" in nlars.parameters  # create_optimizer_v2's grouping options


def test_a_required_lr_is_asked_for_by_name() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(TypeError, match=r"timm's optimizer 'sgdp' has no default for lr: pass lr="):
        optreg.get_optimizer("sgdp", [p])
    opt = optreg.get_optimizer("sgdp", [p], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["nesterov"] is True
