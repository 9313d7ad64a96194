"""optreg-heavyball: the frozen class list, lazy listing, builtins not shadowed, the kit table."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from optreg_heavyball.plugin import CLASSES, HEAVYBALL_VERSION, NOT_REGISTERED

import optreg
from optreg.testing import assert_table_current

DIST = "optreg-heavyball"
README = Path(__file__).parents[1] / "README.md"


@pytest.fixture(autouse=True)
def fresh(isolated_registry: None) -> None:
    """Every test with a registry of its own (optreg.testing's public fixture)."""


def test_frozen_classes_match_the_installed_heavyball() -> None:
    import heavyball

    exported = sorted(
        n
        for n in dir(heavyball)
        if isinstance(getattr(heavyball, n), type)
        and issubclass(getattr(heavyball, n), torch.optim.Optimizer)
    )
    assert importlib.metadata.version("heavyball") == HEAVYBALL_VERSION
    assert exported == sorted([*CLASSES, *NOT_REGISTERED]), "heavyball changed: update plugin.py"


def test_listing_imports_no_heavyball() -> None:
    code = (
        "import sys, optreg; n = set(optreg.list_optimizers()); "
        "print('heavysoap' in n, 'psgdkron' in n, 'heavyball' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "True", "False"]


@pytest.mark.parametrize("name", ["adamw", "sgd", "nadam", "rmsprop", "muon"])
def test_builtins_are_not_shadowed(name: str) -> None:
    assert optreg.optimizers.resolve(name).provider == "optreg"
    theirs = optreg.optimizers.resolve(f"{DIST}:{name}")
    assert theirs.target == f"heavyball:{dict((c.lower(), c) for c in CLASSES)[name]}"
    shadowed, _ = optreg.optimizers.conflicts()
    assert (optreg.optimizers.resolve(name), theirs) in shadowed


def test_a_name_builds_the_heavyball_class() -> None:
    import heavyball

    p = torch.nn.Parameter(torch.ones(4, 4))
    assert type(optreg.get_optimizer("heavysoap", [p], lr=1e-3)) is heavyball.HeavySOAP
    # pytorch_optimizer has a soap too: the qualified name settles it
    assert type(optreg.get_optimizer(f"{DIST}:soap", [p], lr=1e-3)) is heavyball.SOAP


def test_every_name_has_a_row_in_the_readme_kit_table_and_it_is_current() -> None:
    rows = assert_table_current(README, DIST)
    assert {r.name for r in rows} == {c.lower() for c in CLASSES}
