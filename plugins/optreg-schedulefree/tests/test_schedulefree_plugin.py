"""optreg-schedulefree: names, the train/eval metadata, and the behaviour it describes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import optreg
from optreg.testing import OPTIMIZER_CHECKS, assert_table_current, check_optimizer

NAMES = ["schedule_free_adamw", "schedule_free_radam", "schedule_free_sgd"]


@pytest.fixture(autouse=True)
def fresh(isolated_registry: None) -> None:
    """Every test with a registry of its own (optreg.testing's public fixture)."""


def test_names_and_aliases_are_listed_without_importing_schedulefree() -> None:
    code = (
        "import sys, optreg; n = optreg.list_optimizers(); "
        "print([x for x in n if 'schedule_free' in x], optreg.optimizers['adamw_schedulefree'].name, "
        "'schedulefree' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"{NAMES} schedule_free_adamw False"


@pytest.mark.parametrize("name", NAMES)
def test_entry_info_tells_a_trainer_about_train_and_eval(name: str) -> None:
    info = optreg.optimizer_info(name)
    assert info.provider == "optreg-schedulefree"  # the project name its metadata gives
    assert info.available is True
    # what optreg acts on: train/eval modes, and what the kit needs to check the name
    conformance = {"kwargs": {"silent_sgd_phase": False}} if name.endswith("radam") else {}
    assert info.traits == optreg.Traits(
        train_eval=True, conformance=optreg.Conformance(**conformance)
    )
    assert info.metadata["needs_train_eval"] is True  # shown, for 0.3 readers
    assert "optimizer.train()" in info.metadata["note"]
    assert "optimizer.eval()" in info.metadata["note"]
    assert info.metadata["recommended_scheduler"] == "constant"


def test_step_without_train_mode_fails_as_the_metadata_warns() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = optreg.get_optimizer("schedule_free_adamw", [p], lr=0.1)
    p.grad = torch.ones(3)
    with pytest.raises(Exception, match="not in train mode"):
        opt.step()
    opt.train()
    opt.step()
    assert not torch.equal(p.detach(), torch.ones(3))


def test_eval_switches_to_the_averaged_point_and_train_switches_back() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = optreg.get_optimizer("schedule_free_sgd", [p], lr=0.1, momentum=0.9)
    opt.train()
    for _ in range(5):
        opt.zero_grad()
        (p**2).sum().backward()
        opt.step()
    y = p.detach().clone()
    opt.eval()
    x = p.detach().clone()
    assert not torch.equal(x, y)  # evaluation happens at a different point
    opt.train()
    torch.testing.assert_close(p.detach(), y)


@pytest.mark.parametrize("name", NAMES)
def test_conformance(name: str) -> None:
    # the kit reads needs_train_eval from the metadata: train() before steps,
    # eval() before state_dict(), train() after loading
    report = check_optimizer(name)
    assert report.passed == list(OPTIMIZER_CHECKS)


def test_readme_kit_table_is_current() -> None:
    rows = assert_table_current(Path(__file__).parents[1] / "README.md", "optreg-schedulefree")
    assert {r.status for r in rows} == {"passes"}
