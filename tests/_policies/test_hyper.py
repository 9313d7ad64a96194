"""Hyperparameter schedules: get_scheduler(..., hyperparameter=) drives weight decay or
momentum with the same multipliers as the lr."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

import optreg

STEPS, WARMUP = 100, 10


def _cosine(step: int) -> float:
    """transformers' cosine-with-warmup multiplier, by hand."""
    if step < WARMUP:
        return step / max(1, WARMUP)
    progress = (step - WARMUP) / max(1, STEPS - WARMUP)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))


def _built(model: nn.Module) -> tuple[Any, Any, Any]:
    opt = optreg.get_optimizer("adamw", model, lr=1e-2, weight_decay=0.1)
    lr = optreg.get_scheduler("cosine", opt, num_warmup_steps=WARMUP, num_training_steps=STEPS)
    wd = optreg.get_scheduler(
        "cosine", opt, num_warmup_steps=WARMUP, num_training_steps=STEPS,
        hyperparameter="weight_decay",
    )  # fmt: skip
    return opt, lr, wd


def _train(model: nn.Module, parts: tuple[Any, Any, Any], start: int, stop: int) -> None:
    opt, lr, wd = parts
    for step in range(start, stop):
        x = torch.randn(8, 4, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        lr.step()
        wd.step()


def test_a_cosine_weight_decay_schedule_matches_the_formula_beside_the_lr() -> None:
    model = _model()
    opt, _, wd = parts = _built(model)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 * _cosine(0) and no_decay["weight_decay"] == 0.0
    for step in range(1, STEPS + 1):
        _train(model, parts, step - 1, step)
        assert decay["weight_decay"] == 0.1 * _cosine(step), step
        assert decay["lr"] == 1e-2 * _cosine(step), step  # the lr schedule, untouched
        assert no_decay["weight_decay"] == 0.0  # 0 times anything
    assert wd.get_last_value() == [0.1 * _cosine(STEPS), 0.0]
    assert decay["initial_weight_decay"] == 0.1


def test_two_schedules_resume_bit_for_bit_from_one_checkpoint(tmp_path: Any) -> None:
    model = _model()
    whole = _built(model)
    _train(model, whole, 0, STEPS)
    first = _model()
    parts = _built(first)
    _train(first, parts, 0, 37)
    opt, lr, wd = parts
    torch.save(
        {"model": first.state_dict(), "opt": opt.state_dict(), "lr": lr.state_dict(), "wd": wd.state_dict()},
        tmp_path / "ckpt.pt",
    )  # fmt: skip
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    again = _model()
    again.load_state_dict(saved["model"])
    resumed = _built(again)
    for part, key in zip(resumed, ("opt", "lr", "wd"), strict=True):
        part.load_state_dict(saved[key])
    assert resumed[0].param_groups[0]["weight_decay"] == 0.1 * _cosine(37)
    _train(again, resumed, 37, STEPS)
    for p, q in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)
    assert [g["weight_decay"] for g in resumed[0].param_groups] == [
        g["weight_decay"] for g in whole[0].param_groups
    ]


def test_momentum_is_momentum_or_beta1() -> None:
    model = _model()
    adam = optreg.get_optimizer("adamw", model, lr=1e-3, betas=(0.9, 0.95))
    sched = optreg.get_scheduler(
        "linear", adam, num_warmup_steps=0, num_training_steps=10, hyperparameter="momentum"
    )
    for _ in range(5):
        adam.step()
        sched.step()
    assert adam.param_groups[0]["betas"] == (0.9 * 0.5, 0.95)
    sgd = optreg.get_optimizer("sgd", model, lr=0.1, momentum=0.9)
    sched = optreg.get_scheduler(
        "linear", sgd, num_warmup_steps=0, num_training_steps=10, hyperparameter="momentum"
    )
    for _ in range(5):
        sgd.step()
        sched.step()
    assert sgd.param_groups[0]["momentum"] == 0.9 * 0.5


def test_a_hyperparameter_the_optimizer_lacks_is_refused_by_name() -> None:
    adagrad = torch.optim.Adagrad(_model().parameters(), lr=0.1)
    with pytest.raises(ValueError) as info:
        optreg.get_scheduler(
            "cosine", adagrad, num_warmup_steps=1, num_training_steps=10, hyperparameter="momentum"
        )
    assert str(info.value).startswith(
        "scheduler 'cosine' (optreg.builtin.schedules:get_cosine_schedule_with_warmup): param "
        "group 0 has no 'momentum' to schedule (its options: lr, "
    )
    assert "lr" in str(info.value) and adagrad.param_groups[0]["lr"] == 0.1  # nothing changed
    with pytest.raises(ValueError, match=r"hyperparameter='eps' is not one a schedule drives"):
        optreg.get_scheduler(
            "cosine", adagrad, num_warmup_steps=1, num_training_steps=10, hyperparameter="eps"
        )


def test_a_config_and_a_sequence_drive_weight_decay() -> None:
    config = {
        "optimizer": {"name": "sgd", "lr": 0.1, "weight_decay": 0.01},
        "scheduler": {
            "name": "sequence",
            "hyperparameter": "weight_decay",
            "phases": [{"name": "constant", "steps": 5}, {"name": "linear", "steps": 5}],
        },
        "num_training_steps": 10,
    }
    opt, sched = optreg.build(_model(), config)
    values = []
    for _ in range(10):
        opt.step()
        sched.step()
        values.append(opt.param_groups[0]["weight_decay"])
    assert values[:4] == [0.01] * 4 and values[-1] == 0.0 and opt.param_groups[0]["lr"] == 0.1
    record = optreg.state_dict(opt, sched)
    assert record["scheduler"]["kwargs"]["hyperparameter"] == "weight_decay"
