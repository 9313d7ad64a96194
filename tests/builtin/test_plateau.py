"""optreg.builtin.plateau: reduce_lr_on_plateau is torch's ReduceLROnPlateau, every argument checked."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import sgd
from torch.optim.lr_scheduler import ReduceLROnPlateau

import optreg


def test_get_scheduler_reduce_lr_on_plateau() -> None:
    opt = sgd(0.1)
    sched = optreg.get_scheduler(
        "reduce_lr_on_plateau",
        opt,
        num_warmup_steps=3,
        num_training_steps=10,
        scheduler_specific_kwargs={"factor": 0.5, "patience": 0},
    )
    assert isinstance(sched, ReduceLROnPlateau)
    lrs = []
    for metric in [1.0, 1.0, 0.5, 0.7]:
        sched.step(metric)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1, 0.05, 0.05, 0.025])
    with pytest.raises(TypeError, match="patients"):
        optreg.get_scheduler("reduce_lr_on_plateau", sgd(), patients=3)


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"factor": 1.5}, "`factor` must be in (0, 1), got 1.5"),
        ({"patience": None}, "`patience` must be an int >= 0, got None"),
        ({"mode": "up"}, "`mode` must be 'min' or 'max', got 'up'"),
        ({"cooldown": -1}, "`cooldown` must be an int >= 0, got -1"),
        ({"eps": float("nan")}, "`eps` must be a finite number >= 0, got nan"),
        ({"min_lr": [0.0, -1.0]}, "`min_lr` must be >= 0, got -1.0"),
    ],
    ids=["factor", "patience", "mode", "cooldown", "eps", "min_lr"],
)
def test_bad_values_are_named_at_construction(kwargs: dict[str, Any], shown: str) -> None:
    # torch's own class would accept some of these and fail (or misbehave) at step()
    with pytest.raises(ValueError) as info:
        optreg.get_scheduler("reduce_lr_on_plateau", sgd(0.1), **kwargs)
    assert str(info.value) == shown
