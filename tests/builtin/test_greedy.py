"""optreg.builtin.greedy: GreedyLR's rules, bounds, smoothing, resets and state."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import torch
from helpers import save_load, sgd

from optreg.builtin.greedy import GreedyLR


def _greedy_run(
    opt: torch.optim.Optimizer, metrics: list[float], **kwargs: Any
) -> list[list[float]]:
    sched = GreedyLR(opt, **kwargs)
    out = []
    for m in metrics:
        sched.step(m)
        out.append([g["lr"] for g in opt.param_groups])
        assert sched.get_last_lr() == out[-1]
    return out


def _flat(rows: list[list[float]]) -> list[float]:
    return [r[0] for r in rows]


def test_greedy_defaults() -> None:
    sched = GreedyLR(sgd(0.1))
    assert (sched.mode, sched.factor, sched.patience, sched.threshold, sched.threshold_mode) == (
        "min",
        0.95,
        10,
        1e-6,
        "abs",
    )
    assert (sched.cooldown, sched.warmup, sched.min_lrs, sched.max_lrs, sched.eps) == (
        0,
        0,
        [1e-3],
        [1.0],
        1e-8,
    )
    assert (sched.smooth, sched.window_size, sched.reset_start) == (False, 50, 500)
    assert sched.best == math.inf
    assert sched.get_last_lr() == [0.1]  # construction changes nothing


def test_greedy_increases_after_patience_improvements() -> None:
    # improving every step; patience 2: the 3rd improvement in a row divides by factor
    lrs = _greedy_run(sgd(0.1), [10, 9, 8, 7, 6, 5, 4], factor=0.5, patience=2, threshold=0)
    assert _flat(lrs) == pytest.approx([0.1, 0.1, 0.2, 0.2, 0.2, 0.4, 0.4])


def test_greedy_reduces_on_plateau_then_cools_down() -> None:
    # step 1 improves on inf; then 2 bad steps > patience 1 -> halve; 2 steps of cooldown
    lrs = _greedy_run(sgd(0.1), [1.0] * 7, factor=0.5, patience=1, cooldown=2)
    assert _flat(lrs) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025])


def test_greedy_warmup_after_increase() -> None:
    # patience 0: every improvement raises; then 2 steps are ignored (best stays 10)
    sched = GreedyLR(sgd(0.1), factor=0.5, patience=0, warmup=2)
    lrs = []
    for m in [10, 9, 8, 7, 6, 5]:
        sched.step(m)
        lrs.append(sched.get_last_lr()[0])
        if m == 8:
            assert sched.best == 10
    assert lrs == pytest.approx([0.2, 0.2, 0.2, 0.4, 0.4, 0.4])


def test_greedy_min_and_max_lr_per_group() -> None:
    lrs = _greedy_run(
        sgd(0.1, 0.2),
        [3, 2, 2, 2, 2, 2, 2],
        factor=0.5,
        patience=0,
        min_lr=[0.04, 0.01],
        max_lr=[0.3, 0.25],
    )
    assert lrs == [
        pytest.approx([0.2, 0.25]),  # up; group 1 capped at its max_lr
        pytest.approx([0.3, 0.25]),  # up; group 0 capped, group 1 already at max
        pytest.approx([0.15, 0.125]),  # plateau: halve
        pytest.approx([0.075, 0.0625]),
        pytest.approx([0.04, 0.03125]),  # group 0 floored at its min_lr
        pytest.approx([0.04, 0.015625]),
        pytest.approx([0.04, 0.01]),
    ]


def test_greedy_skips_changes_below_eps() -> None:
    sched = GreedyLR(sgd(0.1), factor=0.5, patience=0, min_lr=0.1 - 5e-9, eps=1e-8)
    for m in [1.0, 1.0, 1.0]:
        sched.step(m)
    assert sched.get_last_lr() == [0.1]  # 5e-9 < eps: never lowered
    assert sched.reset_start == 500  # and so never counted as "at min_lr"


def test_greedy_mode_max_relative_threshold() -> None:
    lrs = _greedy_run(
        sgd(0.1),
        [1.0, 1.05, 1.2],
        mode="max",
        threshold=0.1,
        threshold_mode="rel",
        factor=0.5,
        patience=0,
    )
    # 1.05 is not > 1.0 * 1.1 (worse), 1.2 is
    assert _flat(lrs) == pytest.approx([0.2, 0.1, 0.2])


def test_greedy_smoothing_window() -> None:
    metrics = [10, 4, 6, 3]
    kwargs: dict[str, Any] = {"factor": 0.5, "patience": 0, "threshold": 0}
    raw = _greedy_run(sgd(0.1), metrics, **kwargs)
    sched = GreedyLR(sgd(0.1), smooth=True, window_size=2, **kwargs)
    smooth = []
    for m in metrics:
        sched.step(m)
        smooth.append(sched.get_last_lr()[0])
    # raw: 6 is worse than 4; rolling means 10, 7, 5, 4.5 always improve (capped at max_lr 1)
    assert _flat(raw) == pytest.approx([0.2, 0.4, 0.2, 0.4])
    assert smooth == pytest.approx([0.2, 0.4, 0.8, 1.0])
    assert sched.best == 4.5
    assert sched.state_dict()["_streaming_avg"] == {"window_size": 2, "values": [6, 3], "sum": 9.0}


def test_greedy_resets_after_reset_start_reductions_at_min_lr() -> None:
    sched = GreedyLR(
        sgd(0.1), factor=0.5, patience=0, min_lr=0.05, reset_start=2, smooth=True, window_size=3
    )
    lrs, counters = [], []
    for _ in range(5):
        sched.step(1.0)
        lrs.append(sched.get_last_lr()[0])
        counters.append(sched.reset_start)
    # up (improves on inf); down; down to min (counter 1); at min again -> counter 0 -> reset
    # to the initial lr with best = inf and an empty window; then 1.0 improves on inf again
    assert lrs == pytest.approx([0.2, 0.1, 0.05, 0.1, 0.2])
    assert counters == [2, 2, 1, 2, 2]
    sched2 = GreedyLR(sgd(0.1), factor=0.5, patience=0, min_lr=0.05, reset_start=2, smooth=True)
    for _ in range(4):
        sched2.step(1.0)
    state = sched2.state_dict()
    assert (state["best"], state["num_bad_epochs"], state["num_good_epochs"]) == (math.inf, 0, 0)
    assert state["_streaming_avg"]["values"] == []


def test_greedy_increase_rearms_reset_start() -> None:
    sched = GreedyLR(sgd(0.1), factor=0.5, patience=0, min_lr=0.1, reset_start=3)
    for m in [1.0, 1.0]:  # up to 0.2, back down to 0.1 = min (counter 2)
        sched.step(m)
    assert sched.reset_start == 2
    sched.step(0.5)  # improvement: up, counter back to 3
    assert sched.get_last_lr() == [0.2]
    assert sched.reset_start == 3


def test_greedy_accepts_tensor_metrics_and_explicit_epoch() -> None:
    sched = GreedyLR(sgd(0.1), factor=0.5, patience=0)
    sched.step(torch.tensor(2.0))
    assert sched.best == 2.0
    sched.step(1.0, epoch=10)
    assert sched.last_epoch == 10


def test_greedy_state_dict_round_trip() -> None:
    metrics = [1.0, 0.9, 0.95, 0.8, 0.85, 0.9, 0.7, 0.75, 0.8, 0.85, 0.6, 0.9, 0.9, 0.5, 0.55]
    kwargs: dict[str, Any] = {
        "factor": 0.5,
        "patience": 1,
        "cooldown": 1,
        "warmup": 1,
        "min_lr": [1e-3, 1e-4],
        "max_lr": 0.5,
        "smooth": True,
        "window_size": 3,
        "reset_start": 2,
    }
    opt = sgd(0.1, 0.2)
    sched = GreedyLR(opt, **kwargs)
    for m in metrics[:7]:
        sched.step(m)
    ckpt = save_load({"opt": opt.state_dict(), "sched": sched.state_dict()})
    assert ckpt["sched"]["_streaming_avg"]["values"] == metrics[4:7]
    tail = []
    for m in metrics[7:]:
        sched.step(m)
        tail.append(sched.get_last_lr())

    opt2 = sgd(0.3, 0.3)
    sched2 = GreedyLR(opt2, patience=7)  # settings come from the checkpoint too
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert sched2.state_dict() == ckpt["sched"]
    tail2 = []
    for m in metrics[7:]:
        sched2.step(m)
        tail2.append(sched2.get_last_lr())
    assert tail2 == tail
    assert sched2.state_dict() == sched.state_dict()


def test_greedy_load_state_dict_restores_learning_rates() -> None:
    sched = GreedyLR(sgd(0.1), factor=0.5, patience=0)
    sched.step(1.0)
    opt2 = sgd(0.1)
    GreedyLR(opt2).load_state_dict(save_load(sched.state_dict()))
    assert opt2.param_groups[0]["lr"] == 0.2


def test_greedy_load_state_dict_checks_group_count() -> None:
    state = GreedyLR(sgd(0.1, 0.2)).state_dict()
    with pytest.raises(
        ValueError, match=re.escape("GreedyLR state has 2 min_lrs, the optimizer has 1")
    ):
        GreedyLR(sgd(0.1)).load_state_dict(state)


def test_greedy_is_a_plateau_schedule_to_trainers() -> None:
    # The transformers Trainer and Lightning step a ReduceLROnPlateau with the metric;
    # being one is how GreedyLR is recognised there with no extra keys. None of torch's
    # plateau logic runs: a metric that would make torch's cut the lr (patience 0, no
    # improvement) leaves GreedyLR's alone until its own patience is used up.
    sched = GreedyLR(sgd(0.1), factor=0.5, patience=1)
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    for metric in (1.0, 1.0):
        sched.step(metric)
    assert sched.optimizer.param_groups[0]["lr"] == 0.1
    sched.step(1.0)
    assert sched.optimizer.param_groups[0]["lr"] == 0.05


def test_a_tensor_lr_is_kept_and_filled_in_place_as_torch_does() -> None:
    param = torch.nn.Parameter(torch.zeros(2))
    lr = torch.tensor(0.1)
    opt = torch.optim.Adam([param], lr=lr)
    sched = GreedyLR(opt, factor=0.5, patience=1, min_lr=1e-4)
    seen = []
    for metric in [1.0, 1.0, 1.0, 1.0, 0.5, 0.4, 0.3]:
        sched.step(metric)
        assert opt.param_groups[0]["lr"] is lr  # the same tensor, as current torch keeps it
        seen.append(float(lr))
    # halved after two bad steps, doubled back (within max_lr) after two good ones
    assert seen == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.05, 0.1, 0.1])
    assert sched.get_last_lr() == pytest.approx([0.1])
    sched._restart()  # back to the lr it started with, in place
    assert opt.param_groups[0]["lr"] is lr and float(lr) == pytest.approx(0.1)
