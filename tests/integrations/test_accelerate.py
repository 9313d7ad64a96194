"""accelerate's prepare / save_state / load_state with optimizers and schedules by name.

Nothing in optreg is accelerate-specific; this keeps working what a user does today:
build by name, ``prepare``, train, ``save_state`` at step 10, resume in a fresh
``Accelerator`` and match the uninterrupted run exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import optreg

accelerate = pytest.importorskip("accelerate")

STEPS, RESUME_AT = 20, 10


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _build(name: str, schedule: str, kwargs: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 1))
    opt = optreg.get_optimizer(name, model, weight_decay=0.01, **kwargs)
    sched = optreg.get_scheduler(schedule, opt, num_warmup_steps=4, num_training_steps=STEPS)
    accelerator = accelerate.Accelerator(cpu=True)
    return accelerator, *accelerator.prepare(model, opt, sched)


def _train(accelerator: Any, model: Any, opt: Any, sched: Any, steps: range) -> dict[int, float]:
    lrs = {}
    for step in steps:
        gen = torch.Generator().manual_seed(step)
        x = torch.randn(4, 6, generator=gen)
        loss = torch.nn.functional.mse_loss(model(x), x.sum(dim=1, keepdim=True).sin())
        accelerator.backward(loss)
        opt.step()
        sched.step()
        opt.zero_grad()
        lrs[step] = opt.param_groups[0]["lr"]
    return lrs


@pytest.mark.parametrize(
    ("name", "schedule", "kwargs"),
    [
        ("adamw", "cosine", {"lr": 1e-2}),
        ("adafactor", "linear", {"lr": 1e-2, "relative_step": False}),
        ("sgd", "polynomial", {"lr": 1e-2, "momentum": 0.9}),
        ("adamw_8bit", "inverse_sqrt", {"lr": 1e-2}),
    ],
)
def test_save_state_and_load_state(
    tmp_path: Path, name: str, schedule: str, kwargs: dict[str, Any]
) -> None:
    if not optreg.optimizer_info(name).available:
        pytest.skip(str(optreg.optimizer_info(name).reason))
    straight = _build(name, schedule, kwargs)
    lrs = _train(*straight, range(1, RESUME_AT + 1))
    straight[0].save_state(str(tmp_path))
    lrs.update(_train(*straight, range(RESUME_AT + 1, STEPS + 1)))

    resumed = _build(name, schedule, kwargs)
    resumed[0].load_state(str(tmp_path))
    resumed_lrs = _train(*resumed, range(RESUME_AT + 1, STEPS + 1))
    assert resumed_lrs == {step: lrs[step] for step in resumed_lrs}
    for a, b in zip(straight[1].parameters(), resumed[1].parameters(), strict=True):
        assert torch.equal(a, b)
