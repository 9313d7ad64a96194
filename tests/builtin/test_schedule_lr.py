"""optreg.builtin.schedule_lr: ScheduleLR's checked load, and lrs restored in any order."""

from __future__ import annotations

import pytest
import torch

import optreg


def _opt(lr: float | torch.Tensor) -> torch.optim.Optimizer:
    return torch.optim.Adam([torch.nn.Parameter(torch.ones(3))], lr=lr)


def test_the_saved_lr_is_back_in_the_groups_when_the_schedule_is_built_last() -> None:
    opt = _opt(0.1)
    sched = optreg.get_scheduler("linear", opt, num_warmup_steps=2, num_training_steps=10)
    for _ in range(5):
        opt.step()
        sched.step()
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 5 / 8)

    fresh = _opt(0.1)
    fresh.load_state_dict(saved_opt)
    again = optreg.get_scheduler("linear", fresh, num_warmup_steps=2, num_training_steps=10)
    assert fresh.param_groups[0]["lr"] == 0.0  # what LambdaLR's construction wrote: f(0)
    again.load_state_dict(saved_sched)
    assert fresh.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert fresh.param_groups[0]["initial_lr"] == 0.1


def test_a_tensor_lr_is_restored_in_place() -> None:
    lr = torch.tensor(0.1)
    opt = _opt(lr)
    sched = optreg.get_scheduler("cosine", opt, num_warmup_steps=0, num_training_steps=10)
    for _ in range(3):
        opt.step()
        sched.step()
    saved = sched.state_dict()
    fresh = _opt(torch.tensor(0.1))
    fresh.load_state_dict(opt.state_dict())
    again = optreg.get_scheduler("cosine", fresh, num_warmup_steps=0, num_training_steps=10)
    tensor = fresh.param_groups[0]["lr"]
    again.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] is tensor  # the same tensor (a compiled step keeps it)
    assert torch.equal(tensor, opt.param_groups[0]["lr"])


def test_a_state_for_other_groups_is_refused() -> None:
    sched = optreg.get_scheduler("constant", _opt(0.1))
    state = sched.state_dict()
    state["base_lrs"] = [0.1, 0.1]
    with pytest.raises(
        ValueError, match=r"saved for 2 param groups \('base_lrs'\), but the optimizer has 1"
    ):
        sched.load_state_dict(state)
