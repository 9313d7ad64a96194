"""Against the real transformers (tox -e integrations): warmup fractions and warmup longer
than training give exactly transformers' learning rates, step for step."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
import torch

import optreg

transformers = pytest.importorskip("transformers")

#: Every schedule with a warmup, with arguments transformers needs too.
WARMUP_SCHEDULES: list[tuple[str, dict[str, Any]]] = [
    ("linear", {}),
    ("cosine", {}),
    ("cosine_with_restarts", {"num_cycles": 2}),
    ("polynomial", {"power": 2.0, "lr_end": 1e-4}),
    ("constant_with_warmup", {}),
    ("inverse_sqrt", {}),
    ("cosine_with_min_lr", {"min_lr_rate": 0.1}),
    ("cosine_warmup_with_min_lr", {"min_lr_rate": 0.1}),
    ("warmup_stable_decay", {"num_decay_steps": 3}),
]


def _sgd() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)


def _lrs(sched: Any, steps: int) -> list[float]:
    return [float(sched.lr_lambdas[0](s)) for s in range(steps)]


def _theirs(name: str, w: int, n: int, kwargs: dict[str, Any]) -> Any:
    return transformers.get_scheduler(
        name, _sgd(), num_warmup_steps=w, num_training_steps=n, scheduler_specific_kwargs=kwargs
    )


@pytest.mark.parametrize(("name", "kwargs"), WARMUP_SCHEDULES)
@pytest.mark.parametrize(("w", "n"), [(500, 10), (11, 10), (5, 4), (20, 19)])
def test_warmup_longer_than_training_equals_transformers(
    name: str, kwargs: dict[str, Any], w: int, n: int
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' own and optreg's notes
        theirs = _theirs(name, w, n, kwargs)
        ours = optreg.get_scheduler(
            name, _sgd(), num_warmup_steps=w, num_training_steps=n, **kwargs
        )
    steps = w + n + 20
    assert _lrs(ours, steps) == _lrs(theirs, steps)


def test_warmup_longer_than_training_warns() -> None:
    with pytest.warns(optreg.WarmupLongerThanTrainingWarning):
        optreg.get_scheduler("linear", _sgd(), num_warmup_steps=500, num_training_steps=10)


@pytest.mark.parametrize("fraction", [0.001, 0.05, 0.1, 0.5, 0.999])
@pytest.mark.parametrize("n", [7, 95, 1000])
@pytest.mark.parametrize(("name", "kwargs"), WARMUP_SCHEDULES)
def test_a_warmup_fraction_is_read_as_training_arguments_read_it(
    tmp_path: Any, fraction: float, n: int, name: str, kwargs: dict[str, Any]
) -> None:
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), warmup_steps=fraction, report_to=[], use_cpu=True
    )
    w = args.get_warmup_steps(n)
    assert w == math.ceil(fraction * n)
    if name == "polynomial" and w == n:
        pytest.skip("transformers divides 0 by 0 there; optreg returns the limit (README)")
    if name == "warmup_stable_decay" and w <= n < w + kwargs["num_decay_steps"]:
        pytest.skip("warmup + decay beyond training: an error in optreg (README)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = _theirs(name, w, n, kwargs)
        ours = optreg.get_scheduler(
            name, _sgd(), num_warmup_steps=fraction, num_training_steps=n, **kwargs
        )
    assert _lrs(ours, n + 5) == _lrs(theirs, n + 5)
