"""optreg's builtin schedules vs transformers' functions of the same names: exact parity.

Steps both schedulers side by side over a grid of step counts (warmup 0, warmup ==
training steps, training steps 0 and 1, steps past the end) and schedule arguments,
and compares the learning rates with ``==`` (not a tolerance). GreedyLR is driven by
400 random configurations x 200 noisy metrics, comparing lrs at every step and the
final state dicts; error types and messages are compared on the shared error inputs.
Configurations where transformers itself raises ZeroDivisionError are listed with
optreg's value (the limit value) instead.

transformers is needed only here; install it in a separate environment:

    python3 -m venv /work/benchvenv-schedules
    /work/benchvenv-schedules/bin/pip install torch==2.13.0 transformers pluggy importlib-metadata
    /work/benchvenv-schedules/bin/pip install -e .
    /work/benchvenv-schedules/bin/python benchmarks/check_schedules_vs_transformers.py
"""

from __future__ import annotations

import itertools
import random
import sys
import warnings
from collections.abc import Callable
from typing import Any

import torch
import transformers
import transformers.optimization as hf

from optreg.builtin import greedy as og
from optreg.builtin import schedules as ox


def _opt(lr: float = 1e-3, groups: int = 1) -> torch.optim.SGD:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(groups)]
    return torch.optim.SGD(
        [{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(params)], lr=lr
    )


def _lrs(sched: Any, steps: int) -> list[float]:
    out = [sched.get_last_lr()[0]]
    for _ in range(steps):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def _error(make: Callable[[], Any]) -> tuple[str, str] | None:
    try:
        make()
    except Exception as e:  # both sides' exceptions are compared, whatever they are
        return type(e).__name__, str(e)
    return None


WN_SCHEDULES: list[tuple[str, Any, Any, list[dict[str, Any]]]] = [
    ("linear", hf.get_linear_schedule_with_warmup, ox.get_linear_schedule_with_warmup, [{}]),
    (
        "cosine",
        hf.get_cosine_schedule_with_warmup,
        ox.get_cosine_schedule_with_warmup,
        [{}, {"num_cycles": 0}, {"num_cycles": 0.3}, {"num_cycles": 2.7}],
    ),
    (
        "cosine_with_restarts",
        hf.get_cosine_with_hard_restarts_schedule_with_warmup,
        ox.get_cosine_with_hard_restarts_schedule_with_warmup,
        [{}, {"num_cycles": 0}, {"num_cycles": 0.5}, {"num_cycles": 3}, {"num_cycles": 2.5}],
    ),
    (
        "polynomial",
        hf.get_polynomial_decay_schedule_with_warmup,
        ox.get_polynomial_decay_schedule_with_warmup,
        [
            {},
            {"power": 2.0},
            {"power": 0.5, "lr_end": 1e-4},
            {"lr_end": 1e-3 - 1e-12},
            {"power": 0.0},
        ],
    ),
    (
        "cosine_with_min_lr",
        hf.get_cosine_with_min_lr_schedule_with_warmup,
        ox.get_cosine_with_min_lr_schedule_with_warmup,
        [{"min_lr": 1e-5}, {"min_lr_rate": 0.1}, {"min_lr_rate": 0.1, "num_cycles": 1.5}],
    ),
    (
        "cosine_warmup_with_min_lr",
        hf.get_cosine_with_min_lr_schedule_with_warmup_lr_rate,
        ox.get_cosine_with_min_lr_schedule_with_warmup_lr_rate,
        [
            {"min_lr": 1e-5},
            {"min_lr_rate": 0.1, "warmup_lr_rate": 0.05},
            {"min_lr_rate": 0.0, "warmup_lr_rate": 0.5},
        ],
    ),
]


def check_lambda_schedules() -> None:
    steps = 0
    crashed: list[tuple[str, int, int, dict[str, Any]]] = []
    for name, ref, ours, variants in WN_SCHEDULES:
        for w, n in itertools.product([0, 1, 2, 5, 10], [0, 1, 2, 7, 10, 33]):
            if w > n:  # optreg raises ValueError here (checked in tests/builtin/test_schedules.py)
                continue
            for kw in variants:
                try:
                    a = _lrs(ref(_opt(), w, n, **kw), n + 20)
                except ZeroDivisionError:
                    crashed.append((name, w, n, kw))
                    continue
                b = _lrs(ours(_opt(), w, n, **kw), n + 20)
                if a != b:
                    sys.exit(f"MISMATCH {name} W={w} N={n} {kw}:\n  hf     {a}\n  optreg {b}")
                steps += len(a)
    for w in [0, 1, 4, 10]:
        for kw in [{}, {"timescale": 3}, {"timescale": 100}]:
            a = _lrs(hf.get_inverse_sqrt_schedule(_opt(), w, **kw), 60)
            b = _lrs(ox.get_inverse_sqrt_schedule(_opt(), w, **kw), 60)
            if a != b:
                sys.exit(f"MISMATCH inverse_sqrt W={w} {kw}")
            steps += len(a)
        a = _lrs(hf.get_constant_schedule_with_warmup(_opt(), w), 30)
        b = _lrs(ox.get_constant_schedule_with_warmup(_opt(), w), 30)
        if a != b:
            sys.exit(f"MISMATCH constant_with_warmup W={w}")
        steps += len(a)
    if _lrs(hf.get_constant_schedule(_opt()), 5) != _lrs(ox.get_constant_schedule(_opt()), 5):
        sys.exit("MISMATCH constant")
    steps += 6
    types = ["linear", "cosine", "1-sqrt"]
    grid = itertools.product(
        [0, 1, 5], [0, 1, 6], [None, 20], [None, 0, 4], types, types, [0, 0.1], [0.5, 1.0]
    )
    for w, d, n, s, wt, dt, m, c in grid:
        if n is None and s is None:
            continue
        kw = {
            "num_training_steps": n,
            "num_stable_steps": s,
            "warmup_type": wt,
            "decay_type": dt,
            "min_lr_ratio": m,
            "num_cycles": c,
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # both warn when n and s are both given
            a = _lrs(hf.get_wsd_schedule(_opt(), w, d, **kw), 40)
            b = _lrs(ox.get_wsd_schedule(_opt(), w, d, **kw), 40)
        if a != b:
            sys.exit(f"MISMATCH warmup_stable_decay W={w} D={d} {kw}")
        steps += len(a)
    print(f"LambdaLR schedules: identical lrs (==) at {steps} steps")
    print(f"transformers raised ZeroDivisionError on {len(crashed)} configurations; optreg:")
    by_name = {name: ours for name, _, ours, _ in WN_SCHEDULES}
    for name, w, n, kw in crashed:
        lrs = _lrs(by_name[name](_opt(), w, n, **kw), n + 2)
        print(f"  {name} W={w} N={n} {kw}: {[float(f'{x:.6g}') for x in lrs]}")


def check_greedy() -> None:
    rng = random.Random(0)
    steps = 0
    for trial in range(400):
        kw = {
            "mode": rng.choice(["min", "max"]),
            "factor": rng.choice([0.5, 0.9, 0.95]),
            "patience": rng.randint(0, 4),
            "threshold": rng.choice([0.0, 1e-6, 0.01]),
            "threshold_mode": rng.choice(["abs", "rel"]),
            "cooldown": rng.randint(0, 3),
            "warmup": rng.randint(0, 3),
            "min_lr": rng.choice([1e-3, [1e-3, 5e-3]]),
            "max_lr": rng.choice([1.0, 0.02, [0.05, 0.5]]),
            "smooth": rng.random() < 0.5,
            "window_size": rng.randint(1, 6),
            "reset_start": rng.randint(0, 4),
        }
        opt_a, opt_b = _opt(0.01, 2), _opt(0.01, 2)
        ref, ours = hf.GreedyLR(opt_a, **kw), og.GreedyLR(opt_b, **kw)
        metric = 1.0
        for _ in range(200):
            metric += rng.gauss(-0.01 if rng.random() < 0.6 else 0.02, 0.05)
            ref.step(metric)
            ours.step(metric)
            if ref.get_last_lr() != ours.get_last_lr():
                sys.exit(f"MISMATCH greedy trial {trial} {kw}")
            steps += 1
        if ref.state_dict() != ours.state_dict():
            sys.exit(f"MISMATCH greedy state_dict, trial {trial} {kw}")
    print(
        f"GreedyLR: identical lrs at {steps} steps (400 random configurations), equal state dicts"
    )


def check_errors() -> None:
    opt = _opt()
    cases: dict[str, Callable[[Any], Any]] = {
        "polynomial lr_end": lambda m: m.get_polynomial_decay_schedule_with_warmup(
            opt, 0, 10, lr_end=1e-3
        ),
        "min_lr both": lambda m: m.get_cosine_with_min_lr_schedule_with_warmup(
            opt, 0, 10, min_lr=1, min_lr_rate=0.1
        ),
        "min_lr neither": lambda m: m.get_cosine_with_min_lr_schedule_with_warmup(opt, 0, 10),
        "warmup min_lr neither": lambda m: m.get_cosine_with_min_lr_schedule_with_warmup_lr_rate(
            opt, 0, 10
        ),
        "wsd no N/S": lambda m: m.get_wsd_schedule(opt, 0, 3),
        "wsd warmup type": lambda m: m.get_wsd_schedule(opt, 0, 3, 10, warmup_type="exp"),
        "wsd decay type": lambda m: m.get_wsd_schedule(opt, 0, 3, 10, decay_type="exp"),
    }
    for key, make in cases.items():
        a, b = _error(lambda make=make: make(hf)), _error(lambda make=make: make(ox))
        if a != b:
            sys.exit(f"MISMATCH error {key}: hf {a} optreg {b}")
    greedy_cases: list[dict[str, Any]] = [
        {"factor": 1.0},
        {"mode": "x"},
        {"threshold_mode": "x"},
        {"min_lr": [1, 2]},
        {"max_lr": [1, 2]},
    ]
    for kw in greedy_cases:
        a = _error(lambda kw=kw: hf.GreedyLR(opt, **kw))
        b = _error(lambda kw=kw: og.GreedyLR(opt, **kw))
        if a != b:
            sys.exit(f"MISMATCH greedy error {kw}: hf {a} optreg {b}")
    print(f"errors: same type and message on {len(cases) + len(greedy_cases)} error inputs")


if __name__ == "__main__":
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    check_lambda_schedules()
    check_greedy()
    check_errors()
