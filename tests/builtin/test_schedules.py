"""Builtin schedules: values at every step, errors, resume, state round trips, GreedyLR.

Every expected learning rate is computed here from the published formulas
(``/shared/REFERENCE.md``) written as plain math, never by calling the module's own
step functions. GreedyLR scenarios are worked out by hand, step by step.
"""

from __future__ import annotations

import math
import pickle
import re
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import torch
from helpers import save_load, sgd
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

import optreg
from optreg import SchedulerType
from optreg.builtin import schedules as S
from optreg.builtin.greedy import GreedyLR, get_greedy_schedule

pytestmark = pytest.mark.usefixtures("fresh_registry")

APPROX = {"rel": 1e-12, "abs": 1e-15}


def _run(sched: Any, steps: int) -> list[list[float]]:
    """The lrs of every group at construction and after each of ``steps`` steps."""
    out = [list(sched.get_last_lr())]
    for _ in range(steps):
        sched.optimizer.step()
        sched.step()
        out.append(list(sched.get_last_lr()))
    return out


def _check(sched: Any, ref: Callable[[int], float], steps: int, *bases: float) -> None:
    bases = bases or (1.0,)
    got = _run(sched, steps)
    want = [[b * ref(s) for b in bases] for s in range(steps + 1)]
    for s, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == pytest.approx(w, **APPROX), f"step {s}: {g} != {w}"


# ------------------------------------------------------------ reference formulas (math)


def warm(s: int, w: int) -> float:
    return s / max(1, w)


def cos_half(p: float, c: float) -> float:
    return 0.5 * (1 + math.cos(math.pi * c * 2 * p))


STEP_COUNTS = [(0, 10), (3, 10), (10, 10), (0, 1), (1, 1), (0, 0), (4, 7), (2, 3)]


# ------------------------------------------------------------------- LambdaLR values


def test_constant() -> None:
    _check(S.get_constant_schedule(sgd(0.5, 0.2)), lambda s: 1.0, 12, 0.5, 0.2)


@pytest.mark.parametrize("w", [0, 1, 5])
def test_constant_with_warmup(w: int) -> None:
    _check(
        S.get_constant_schedule_with_warmup(sgd(0.5, 0.2), w),
        lambda s: warm(s, w) if s < w else 1.0,
        w + 6,
        0.5,
        0.2,
    )


@pytest.mark.parametrize(("w", "n"), STEP_COUNTS)
def test_linear(w: int, n: int) -> None:
    def ref(s: int) -> float:
        return warm(s, w) if s < w else max(0.0, (n - s) / max(1, n - w))

    _check(S.get_linear_schedule_with_warmup(sgd(0.5, 0.2), w, n), ref, n + 5, 0.5, 0.2)


@pytest.mark.parametrize(("w", "n"), STEP_COUNTS)
@pytest.mark.parametrize("c", [0.5, 0.0, 0.25, 1.5])
def test_cosine(w: int, n: int, c: float) -> None:
    def ref(s: int) -> float:
        # past the end the curve follows the cosine (it rises again for c = 0.5)
        return warm(s, w) if s < w else max(0.0, cos_half((s - w) / max(1, n - w), c))

    _check(S.get_cosine_schedule_with_warmup(sgd(), w, n, num_cycles=c), ref, n + 6)


def test_cosine_default_is_half_a_cosine() -> None:
    sched = S.get_cosine_schedule_with_warmup(sgd(), 0, 4)
    assert [lr for (lr,) in _run(sched, 4)] == pytest.approx(
        [1.0, 0.5 + 0.5 * math.sqrt(0.5), 0.5, 0.5 - 0.5 * math.sqrt(0.5), 0.0], **APPROX
    )


@pytest.mark.parametrize(("w", "n"), STEP_COUNTS)
@pytest.mark.parametrize("c", [1, 0, 2, 2.5, 0.5])
def test_cosine_with_restarts(w: int, n: int, c: float) -> None:
    def ref(s: int) -> float:
        if s < w:
            return warm(s, w)
        p = (s - w) / max(1, n - w)
        if p >= 1:
            return 0.0
        return max(0.0, 0.5 * (1 + math.cos(math.pi * ((c * p) % 1))))

    _check(
        S.get_cosine_with_hard_restarts_schedule_with_warmup(sgd(), w, n, num_cycles=c),
        ref,
        n + 4,
    )


def test_cosine_with_restarts_restarts() -> None:
    sched = S.get_cosine_with_hard_restarts_schedule_with_warmup(sgd(), 0, 8, num_cycles=2)
    # two half-cosines of 4 steps each, then 0
    half = [1.0, 0.5 + 0.5 * math.sqrt(0.5), 0.5, 0.5 - 0.5 * math.sqrt(0.5)]
    assert [lr for (lr,) in _run(sched, 10)] == pytest.approx(half + half + [0, 0, 0], **APPROX)


@pytest.mark.parametrize(("w", "n"), STEP_COUNTS)
@pytest.mark.parametrize(
    ("lr", "lr_end", "power"),
    [
        (1e-3, 1e-7, 1.0),
        (1e-3, 1e-4, 2.0),
        (1e-3, 0.0, 0.5),
        (1e-3, 1e-3 - 1e-12, 1.0),  # lr_end just below lr
        (0.1, 0.01, 0.0),
    ],
)
def test_polynomial(w: int, n: int, lr: float, lr_end: float, power: float) -> None:
    def ref(s: int) -> float:
        if s < w:
            return warm(s, w)
        if s > n or n == w:  # n == w: the reference divides 0/0 at s == n; optreg: the limit
            return lr_end / lr
        return ((lr - lr_end) * (1 - (s - w) / (n - w)) ** power + lr_end) / lr

    _check(
        S.get_polynomial_decay_schedule_with_warmup(sgd(lr), w, n, lr_end=lr_end, power=power),
        ref,
        n + 4,
        lr,
    )


def test_polynomial_reads_the_optimizer_default_lr() -> None:
    # lr_init is optimizer.defaults["lr"], even when a group has another lr
    opt = sgd(0.5, 2.0, default=1.0)
    sched = S.get_polynomial_decay_schedule_with_warmup(opt, 0, 2, lr_end=0.2)
    _check(sched, lambda s: [1.0, (0.8 * 0.5 + 0.2), 0.2, 0.2][s], 3, 0.5, 2.0)


@pytest.mark.parametrize("w", [0, 1, 4, 9])
@pytest.mark.parametrize("timescale", [None, 3, 100, 2.5])
def test_inverse_sqrt(w: int, timescale: float | None) -> None:
    t = timescale if timescale is not None else (w if w else 10_000)

    def ref(s: int) -> float:
        return warm(s, w) if s < w else 1 / math.sqrt((s + t - w) / t)

    _check(S.get_inverse_sqrt_schedule(sgd(), w, timescale=timescale), ref, w + 30)


@pytest.mark.parametrize(("w", "n"), STEP_COUNTS)
@pytest.mark.parametrize(
    ("kwargs", "m"),
    [({"min_lr": 1e-4}, 1e-4 / 2e-3), ({"min_lr_rate": 0.1}, 0.1), ({"min_lr_rate": 0.0}, 0.0)],
)
@pytest.mark.parametrize("c", [0.5, 1.5])
def test_cosine_with_min_lr(w: int, n: int, kwargs: dict[str, float], m: float, c: float) -> None:
    def ref(s: int) -> float:
        if s < w:
            return warm(s, w)
        f = cos_half((s - w) / max(1, n - w), c)
        return max(0.0, f * (1 - m) + m)

    sched = S.get_cosine_with_min_lr_schedule_with_warmup(sgd(2e-3), w, n, num_cycles=c, **kwargs)
    _check(sched, ref, n + 5, 2e-3)


@pytest.mark.parametrize(("w", "n"), STEP_COUNTS)
@pytest.mark.parametrize(
    ("kwargs", "m", "r"),
    [
        ({"min_lr": 1e-4}, 1e-4 / 2e-3, None),
        ({"min_lr_rate": 0.1, "warmup_lr_rate": 0.05}, 0.1, 0.05),
        ({"min_lr_rate": 0.0, "warmup_lr_rate": 0.5, "num_cycles": 1.0}, 0.0, 0.5),
    ],
)
def test_cosine_warmup_with_min_lr(
    w: int, n: int, kwargs: dict[str, float], m: float, r: float | None
) -> None:
    c = kwargs.get("num_cycles", 0.5)

    def ref(s: int) -> float:
        if s < w:
            return (s + 1) / max(1, w) if r is None else r + (1 - r) * s / max(1, w - 1)
        p = (s - w + 1) / max(1, n - w)
        return max(0.0, cos_half(p, c) * (1 - m) + m)

    sched = S.get_cosine_with_min_lr_schedule_with_warmup_lr_rate(sgd(2e-3), w, n, **kwargs)
    _check(sched, ref, n + 5, 2e-3)


WSD_WARMUP = {
    "linear": lambda q: q,
    "cosine": lambda q: 0.5 * (1 - math.cos(math.pi * q)),
    "1-sqrt": lambda q: 1 - math.sqrt(1 - q),
}


def _wsd_decay(kind: str, q: float, c: float) -> float:
    if kind == "linear":
        return 1 - q
    if kind == "cosine":
        return cos_half(q, c)
    return 1 - math.sqrt(q)


@pytest.mark.parametrize("warmup_type", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize("decay_type", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize(("w", "d", "n"), [(3, 4, 12), (0, 5, 5), (2, 0, 6), (1, 1, 2), (0, 0, 0)])
@pytest.mark.parametrize(("m", "c"), [(0.0, 0.5), (0.1, 1.0)])
def test_warmup_stable_decay(
    warmup_type: str, decay_type: str, w: int, d: int, n: int, m: float, c: float
) -> None:
    stable = n - w - d

    def ref(s: int) -> float:
        if s < w:
            return max(0.0, WSD_WARMUP[warmup_type](s / max(1, w)) * (1 - m) + m)
        if s < w + stable:
            return 1.0
        if s < w + stable + d:
            q = (s - w - stable) / max(1, d)
            return max(0.0, _wsd_decay(decay_type, q, c) * (1 - m) + m)
        return m

    sched = S.get_wsd_schedule(
        sgd(0.3),
        w,
        d,
        num_training_steps=n,
        warmup_type=warmup_type,
        decay_type=decay_type,
        min_lr_ratio=m,
        num_cycles=c,
    )
    _check(sched, ref, n + 4, 0.3)


def test_warmup_stable_decay_with_stable_steps() -> None:
    sched = S.get_wsd_schedule(sgd(), 2, 2, num_stable_steps=3, decay_type="linear")
    assert [lr for (lr,) in _run(sched, 9)] == pytest.approx(
        [0.0, 0.5, 1, 1, 1, 1.0, 0.5, 0.0, 0.0, 0.0], **APPROX
    )


def test_warmup_stable_decay_warns_when_both_given_and_uses_stable_steps() -> None:
    with pytest.warns(
        UserWarning,
        match=re.escape(
            "Both num_training_steps and num_stable_steps are specified. "
            "num_stable_steps will be used."
        ),
    ):
        sched = S.get_wsd_schedule(
            sgd(), 0, 2, num_training_steps=100, num_stable_steps=1, decay_type="linear"
        )
    assert [lr for (lr,) in _run(sched, 4)] == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0], **APPROX)


# ------------------------------------------------------------------ get_scheduler

#: Arguments through optreg.get_scheduler for every LambdaLR schedule.
LAMBDA_CASES: dict[str, dict[str, Any]] = {
    "constant": {},
    "constant_with_warmup": {"num_warmup_steps": 3},
    "linear": {"num_warmup_steps": 3, "num_training_steps": 12},
    "cosine": {"num_warmup_steps": 3, "num_training_steps": 12},
    "cosine_with_restarts": {"num_warmup_steps": 3, "num_training_steps": 12, "num_cycles": 2},
    "polynomial": {"num_warmup_steps": 3, "num_training_steps": 12, "power": 2.0},
    "inverse_sqrt": {"num_warmup_steps": 3},
    "cosine_with_min_lr": {"num_warmup_steps": 3, "num_training_steps": 12, "min_lr": 1e-3},
    "cosine_warmup_with_min_lr": {
        "num_warmup_steps": 3,
        "num_training_steps": 12,
        "min_lr_rate": 0.1,
        "warmup_lr_rate": 0.2,
    },
    "warmup_stable_decay": {
        "num_warmup_steps": 3,
        "num_training_steps": 12,
        "num_decay_steps": 4,
        "decay_type": "1-sqrt",
    },
    "sequence": {
        "num_training_steps": 12,
        "phases": [
            {"name": "linear", "steps": 4, "num_warmup_steps": 2},
            {"name": "cosine", "steps": 8},
        ],
    },
}
METRIC_DRIVEN = {"reduce_lr_on_plateau", "greedy"}
OTHER_HELPERS = {"adafactor"}  # registered from optreg/builtin/adafactor.py


def _builtin_names() -> set[str]:
    return {n for n in optreg.schedulers if optreg.schedulers[n].provider == "optreg"}


def test_cases_cover_every_scheduler_type() -> None:
    assert set(LAMBDA_CASES) | METRIC_DRIVEN | OTHER_HELPERS == {t.value for t in SchedulerType}


def test_scheduler_type_values_are_the_builtin_names() -> None:
    values = {t.value for t in SchedulerType}
    builtin = _builtin_names()
    assert builtin == values  # "adafactor" comes from optreg/builtin/adafactor.py
    for t in SchedulerType:
        if t.value in builtin:
            assert optreg.schedulers.resolve(t.value).name == t.value


def test_builtin_schedules_are_lazy_and_described() -> None:
    for name in set(LAMBDA_CASES) | METRIC_DRIVEN:
        entry = optreg.schedulers[name]
        assert isinstance(entry.target, str)
        assert entry.target.startswith("optreg.builtin.")
        assert entry.description
        assert "\n" not in entry.description


@pytest.mark.parametrize("name", sorted(LAMBDA_CASES))
def test_get_scheduler_builds_a_picklable_lambda_lr(name: str) -> None:
    sched = optreg.get_scheduler(name, sgd(0.1), **LAMBDA_CASES[name])
    assert isinstance(sched, LambdaLR)
    (fn,) = sched.lr_lambdas
    assert isinstance(fn, partial) or fn.__name__ == "_constant"
    clone = pickle.loads(pickle.dumps(fn))
    assert [clone(s) for s in range(20)] == [fn(s) for s in range(20)]


def test_get_scheduler_matches_the_factory() -> None:
    sched = optreg.get_scheduler(
        SchedulerType.POLYNOMIAL,
        sgd(1e-3),
        num_warmup_steps=2,
        num_training_steps=6,
        scheduler_specific_kwargs={"lr_end": 1e-4},
        power=2.0,
    )
    _check(
        sched,
        lambda s: (
            warm(s, 2) if s < 2 else 0.1 if s > 6 else (9e-4 * (1 - (s - 2) / 4) ** 2 + 1e-4) / 1e-3
        ),
        8,
        1e-3,
    )


def test_get_scheduler_accepts_whole_float_step_counts() -> None:
    sched = optreg.get_scheduler("linear", sgd(), num_warmup_steps=2.0, num_training_steps=4.0)
    assert [lr for (lr,) in _run(sched, 5)] == pytest.approx([0, 0.5, 1, 0.5, 0, 0], **APPROX)


@pytest.mark.parametrize(
    ("name", "steps", "kwargs", "message"),
    [
        ("linear", {"num_training_steps": 10}, {}, "linear requires `num_warmup_steps`"),
        ("linear", {"num_warmup_steps": 1}, {}, "linear requires `num_training_steps`"),
        ("cosine", {}, {}, "cosine requires `num_warmup_steps`"),
        (
            "cosine_with_restarts",
            {"num_warmup_steps": 1},
            {},
            "cosine_with_restarts requires `num_training_steps`",
        ),
        ("polynomial", {"num_warmup_steps": 1}, {}, "polynomial requires `num_training_steps`"),
        ("constant_with_warmup", {}, {}, "constant_with_warmup requires `num_warmup_steps`"),
        ("inverse_sqrt", {"num_training_steps": 5}, {}, "inverse_sqrt requires `num_warmup_steps`"),
        (
            "cosine_with_min_lr",
            {"num_warmup_steps": 1},
            {"min_lr": 0.0},
            "cosine_with_min_lr requires `num_training_steps`",
        ),
        (
            "cosine_warmup_with_min_lr",
            {"num_training_steps": 5},
            {"min_lr": 0.0},
            "cosine_warmup_with_min_lr requires `num_warmup_steps`",
        ),
        (
            "warmup_stable_decay",
            {"num_training_steps": 5},
            {"num_decay_steps": 1},
            "warmup_stable_decay requires `num_warmup_steps`",
        ),
        (
            "warmup_stable_decay",
            {"num_warmup_steps": 1},
            {"num_decay_steps": 1},
            "Either num_training_steps or num_stable_steps must be specified.",
        ),
    ],
)
def test_get_scheduler_missing_step_counts(
    name: str, steps: dict[str, int], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        optreg.get_scheduler(name, sgd(), **steps, **kwargs)


def test_get_scheduler_passes_only_declared_step_counts() -> None:
    # constant ignores both; constant_with_warmup and inverse_sqrt ignore num_training_steps
    sched = optreg.get_scheduler("constant", sgd(), num_warmup_steps=5, num_training_steps=10)
    assert [lr for (lr,) in _run(sched, 3)] == [1.0, 1.0, 1.0, 1.0]
    sched = optreg.get_scheduler(
        "constant_with_warmup", sgd(), num_warmup_steps=2, num_training_steps=1
    )
    assert [lr for (lr,) in _run(sched, 3)] == pytest.approx([0.0, 0.5, 1.0, 1.0])
    sched = optreg.get_scheduler("inverse_sqrt", sgd(), num_warmup_steps=4, num_training_steps=1)
    assert [lr for (lr,) in _run(sched, 6)][-1] == pytest.approx(1 / math.sqrt(6 / 4), **APPROX)
    # warmup_stable_decay passes num_training_steps through: stable = 10 - 2 - 3
    sched = optreg.get_scheduler(
        "warmup_stable_decay",
        sgd(),
        num_warmup_steps=2,
        num_training_steps=10,
        num_decay_steps=3,
        decay_type="linear",
    )
    lrs = [lr for (lr,) in _run(sched, 11)]
    assert lrs == pytest.approx([0, 0.5, 1, 1, 1, 1, 1, 1, 2 / 3, 1 / 3, 0, 0], **APPROX)


def test_get_scheduler_greedy() -> None:
    opt = sgd(0.1)
    sched = optreg.get_scheduler(
        "greedy", opt, num_warmup_steps=3, num_training_steps=10, factor=0.5, patience=0
    )
    assert isinstance(sched, GreedyLR)
    assert isinstance(sched, LRScheduler)
    sched.step(1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)
    with pytest.raises(TypeError, match=r"'patients'; did you mean 'patience'\?"):
        optreg.get_scheduler("greedy", sgd(), patients=3)
    assert isinstance(get_greedy_schedule(sgd(), patience=1), GreedyLR)


# ------------------------------------------------------------------------ errors

NAN = float("nan")


def _lin(*a: Any, **k: Any) -> Any:
    return S.get_linear_schedule_with_warmup(sgd(1e-3), *a, **k)


def _poly(*a: Any, **k: Any) -> Any:
    return S.get_polynomial_decay_schedule_with_warmup(sgd(1e-3), *a, **k)


def _cmin(*a: Any, lr: float = 1e-3, **k: Any) -> Any:
    return S.get_cosine_with_min_lr_schedule_with_warmup(sgd(lr), *a, **k)


def _cwmin(*a: Any, **k: Any) -> Any:
    return S.get_cosine_with_min_lr_schedule_with_warmup_lr_rate(sgd(1e-3), *a, **k)


def _wsd(*a: Any, **k: Any) -> Any:
    return S.get_wsd_schedule(sgd(), *a, **k)


def _greedy(**k: Any) -> Any:
    return GreedyLR(sgd(0.1), **k)


ERROR_CASES: list[tuple[Callable[[], Any], type[Exception], str]] = [
    (lambda: _lin(-1, 10), ValueError, "`num_warmup_steps` must be >= 0, got -1"),
    (lambda: _lin(0, -5), ValueError, "`num_training_steps` must be >= 0, got -5"),
    (
        lambda: _lin(2.5, 10),
        ValueError,
        "`num_warmup_steps` must be a whole number of steps >= 0, got 2.5",
    ),
    (
        lambda: _lin(NAN, 10),
        ValueError,
        "`num_warmup_steps` must be a whole number of steps >= 0, got nan",
    ),
    (
        lambda: _lin(0, math.inf),
        ValueError,
        "`num_training_steps` must be a whole number of steps >= 0, got inf",
    ),
    (
        lambda: _lin("3", 10),
        TypeError,
        "`num_warmup_steps` must be a whole number of steps >= 0, got str: '3'",
    ),
    (
        lambda: _lin(True, 10),
        TypeError,
        "`num_warmup_steps` must be a whole number of steps >= 0, got bool: True",
    ),
    (
        lambda: S.get_cosine_schedule_with_warmup(sgd(), 0, 10, num_cycles=NAN),
        ValueError,
        "`num_cycles` must be a finite number, got nan",
    ),
    (
        lambda: S.get_cosine_with_hard_restarts_schedule_with_warmup(
            sgd(), 0, 10, num_cycles=math.inf
        ),
        ValueError,
        "`num_cycles` must be a finite number, got inf",
    ),
    (
        lambda: _poly(0, 10, lr_end=1e-3),
        ValueError,
        "lr_end (0.001) must be smaller than initial lr (0.001)",
    ),
    (
        lambda: _poly(0, 10, lr_end=0.5),
        ValueError,
        "lr_end (0.5) must be smaller than initial lr (0.001)",
    ),
    (
        lambda: _poly(0, 10, lr_end=NAN),
        ValueError,
        "`lr_end` must be a finite number >= 0, got nan",
    ),
    (lambda: _poly(0, 10, power=-1), ValueError, "`power` must be >= 0, got -1.0"),
    (lambda: _poly(0, 10, power=NAN), ValueError, "`power` must be a finite number, got nan"),
    (
        lambda: S.get_inverse_sqrt_schedule(sgd(), 2, timescale=0),
        ValueError,
        "`timescale` must be > 0, got 0",
    ),
    (
        lambda: S.get_inverse_sqrt_schedule(sgd(), 2, timescale=-4),
        ValueError,
        "`timescale` must be > 0, got -4",
    ),
    (
        lambda: S.get_constant_schedule_with_warmup(sgd(), -2),
        ValueError,
        "`num_warmup_steps` must be >= 0, got -2",
    ),
    (
        lambda: _cmin(0, 10, min_lr=1e-5, min_lr_rate=0.1),
        ValueError,
        "Only one of min_lr or min_lr_rate should be set",
    ),
    (
        lambda: _cmin(0, 10),
        ValueError,
        "One of min_lr or min_lr_rate should be set through the `lr_scheduler_kwargs`",
    ),
    (
        lambda: _cmin(0, 10, min_lr=1e-5, lr=0.0),
        ValueError,
        "`min_lr` (1e-05) needs a non-zero optimizer lr",
    ),
    (
        lambda: _cmin(0, 10, min_lr_rate=NAN),
        ValueError,
        "`min_lr_rate` must be a finite number, got nan",
    ),
    (lambda: _cwmin(0, 10), ValueError, "One of min_lr or min_lr_rate should be set"),
    (
        lambda: _cwmin(0, 10, min_lr=1.0, min_lr_rate=0.0),
        ValueError,
        "Only one of min_lr or min_lr_rate",
    ),
    (
        lambda: _cwmin(0, 10, min_lr_rate=0.1, warmup_lr_rate=NAN),
        ValueError,
        "`warmup_lr_rate` must be a finite number >= 0, got nan",
    ),
    (
        lambda: _wsd(0, 3),
        ValueError,
        "Either num_training_steps or num_stable_steps must be specified.",
    ),
    (
        lambda: _wsd(0, 3, 10, warmup_type="exp"),
        ValueError,
        "Unknown warmup type: exp, expected 'linear', 'cosine' or '1-sqrt'",
    ),
    (
        lambda: _wsd(0, 3, 10, decay_type="step"),
        ValueError,
        "Unknown decay type: step, expected 'linear', 'cosine' or '1-sqrt'",
    ),
    (lambda: _wsd(2, 9, 10), ValueError, "2 + 9 = 11 > num_training_steps=10"),
    (
        lambda: _wsd(0, 3, num_stable_steps=-1),
        ValueError,
        "`num_stable_steps` must be >= 0, got -1",
    ),
    (lambda: _wsd(0, -3, 10), ValueError, "`num_decay_steps` must be >= 0, got -3"),
    (
        lambda: _wsd(0, 3, 10, min_lr_ratio=NAN),
        ValueError,
        "`min_lr_ratio` must be a finite number >= 0, got nan",
    ),
    (lambda: _wsd(0), TypeError, "num_decay_steps"),
    (lambda: _greedy(factor=1.0), ValueError, "Factor should be < 1.0."),
    (lambda: _greedy(factor=0), ValueError, "`factor` must be > 0, got 0"),
    (lambda: _greedy(factor=NAN), ValueError, "`factor` must be a finite number, got nan"),
    (lambda: _greedy(mode="low"), ValueError, "mode low is unknown!"),
    (lambda: _greedy(threshold_mode="pct"), ValueError, "threshold mode pct is unknown!"),
    (lambda: _greedy(min_lr=[1e-3, 1e-4]), ValueError, "expected 1 min_lrs, got 2"),
    (lambda: _greedy(max_lr=(1.0, 2.0)), ValueError, "expected 1 max_lrs, got 2"),
    (
        lambda: _greedy(min_lr=NAN),
        ValueError,
        "`min_lr` must be a number >= 0 (or one per group), got nan",
    ),
    (lambda: _greedy(min_lr=0.5, max_lr=0.1), ValueError, "min_lr=0.5 > max_lr=0.1 in group 0"),
    (
        lambda: _greedy(patience=-1),
        ValueError,
        "`patience` must be an int >= 0, got -1",
    ),
    (
        lambda: _greedy(cooldown=1.5),
        ValueError,
        "`cooldown` must be an int >= 0, got 1.5",
    ),
    (lambda: _greedy(window_size=0), ValueError, "`window_size` must be an int >= 1, got 0"),
    (lambda: _greedy(eps=NAN), ValueError, "`eps` must be a finite number >= 0, got nan"),
    (lambda: _poly(1, 10, lr_end=-0.01), ValueError, "`lr_end` must be >= 0, got -0.01"),
    (
        lambda: _wsd(0, 3, 10, min_lr_ratio=-0.5),
        ValueError,
        "`min_lr_ratio` must be >= 0, got -0.5",
    ),
    (lambda: _greedy(factor=None), TypeError, "`factor` must be a number, got NoneType: None"),
    (lambda: _greedy(threshold=-1e-4), ValueError, "`threshold` must be >= 0, got -0.0001"),
    (lambda: _greedy(eps=-1.0), ValueError, "`eps` must be >= 0, got -1.0"),
    (lambda: GreedyLR([torch.zeros(1)]), TypeError, "list is not an Optimizer"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("make", "exc", "message"), ERROR_CASES)
def test_errors(make: Callable[[], Any], exc: type[Exception], message: str) -> None:
    with pytest.raises(exc, match=re.escape(message)):
        make()


# ------------------------------------------------------------- resume and state


@pytest.mark.parametrize("name", sorted(LAMBDA_CASES))
@pytest.mark.parametrize("done", [1, 5, 11])
def test_resume_via_last_epoch(name: str, done: int) -> None:
    """A schedule built with ``last_epoch=done - 1`` continues the uninterrupted run."""
    kwargs = LAMBDA_CASES[name]
    full = [lrs for lrs in _run(optreg.get_scheduler(name, sgd(0.1, 0.3), **kwargs), 16)]
    opt = sgd(0.1, 0.3)
    for group in opt.param_groups:  # what a checkpointed optimizer carries
        group["initial_lr"] = group["lr"]
    resumed = optreg.get_scheduler(name, opt, last_epoch=done - 1, **kwargs)
    assert _run(resumed, 16 - done) == full[done:]


@pytest.mark.parametrize("name", sorted(LAMBDA_CASES))
def test_state_dict_round_trip(name: str) -> None:
    kwargs = LAMBDA_CASES[name]
    opt = sgd(0.1, 0.3)
    sched = optreg.get_scheduler(name, opt, **kwargs)
    before = _run(sched, 6)
    ckpt = save_load({"opt": opt.state_dict(), "sched": sched.state_dict()})
    after = _run(sched, 8)[1:]

    # same configuration (polynomial and min_lr read optimizer.defaults["lr"] when built);
    # the lrs, base lrs and step count must come from the checkpoint
    opt2 = sgd(0.1, 0.3)
    sched2 = optreg.get_scheduler(name, opt2, **kwargs)
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert sched2.get_last_lr() == before[-1]
    assert _run(sched2, 8)[1:] == after


# ---------------------------------------------------------------------- GreedyLR


@pytest.mark.parametrize("name", ["linear", "cosine", "constant", "polynomial", "inverse_sqrt"])
def test_a_state_saved_for_other_param_groups_is_refused(name: str) -> None:
    saved = optreg.get_scheduler(name, sgd(0.1, 0.2), num_warmup_steps=2, num_training_steps=10)
    fresh = optreg.get_scheduler(name, sgd(0.1), num_warmup_steps=2, num_training_steps=10)
    with pytest.raises(ValueError) as info:
        fresh.load_state_dict(saved.state_dict())
    assert str(info.value) == (
        "ScheduleLR.load_state_dict: the state was saved for 2 param groups ('base_lrs'), "
        "but the optimizer has 1; build the optimizer with the same param groups as the run "
        "that saved it"
    )
    assert isinstance(fresh, LambdaLR)  # still a LambdaLR for every tool that expects one


def test_plateau_state_for_other_param_groups_is_refused() -> None:
    saved = optreg.get_scheduler("reduce_lr_on_plateau", sgd(0.1, 0.2))
    fresh = optreg.get_scheduler("reduce_lr_on_plateau", sgd(0.1))
    with pytest.raises(
        ValueError, match=r"saved for 2 param groups \('min_lrs'\), but the optimizer has 1"
    ):
        fresh.load_state_dict(saved.state_dict())


# ------------------------------------------------ warmup fractions, warmup beyond training

#: (name, schedule-specific kwargs): every builtin that takes both step counts.
BOTH_COUNTS = [
    ("linear", {}),
    ("cosine", {}),
    ("cosine_with_restarts", {"num_cycles": 2}),
    ("polynomial", {"power": 2.0}),
    ("cosine_with_min_lr", {"min_lr_rate": 0.1}),
    ("cosine_warmup_with_min_lr", {"min_lr_rate": 0.1}),
    ("warmup_stable_decay", {"num_decay_steps": 3}),
]


@pytest.mark.parametrize(("name", "kwargs"), BOTH_COUNTS)
def test_warmup_longer_than_training_warns_and_computes_the_formula(
    name: str, kwargs: dict[str, Any]
) -> None:
    """--max_steps 10 under a config's warmup_steps=500: transformers computes values, and
    so does optreg (the same formulas, REFERENCE.md), with one warning."""
    with pytest.warns(
        optreg.WarmupLongerThanTrainingWarning, match="num_warmup_steps=500 > num_training_steps=10"
    ) as caught:
        sched = optreg.get_scheduler(
            name, sgd(1.0), num_warmup_steps=500, num_training_steps=10, **kwargs
        )
    assert [w.filename for w in caught] == [__file__]  # the caller's line, not optreg's
    fn = sched.lr_lambdas[0]
    for step in range(0, 600, 7):
        if name == "cosine_warmup_with_min_lr":
            want = (step + 1) / 500 if step < 500 else None
        else:
            want = step / 500 if step < 500 else None
        if want is not None:
            assert fn(step) == want, (name, step)
    assert fn(499) > fn(10)  # the warmup goes on past the end of training, as in transformers


def test_warmup_as_a_fraction_of_training_rounds_up() -> None:
    """transformers 5 reads a float warmup_steps < 1 as ceil(fraction * max_steps)."""
    sched = optreg.get_scheduler("linear", sgd(1.0), num_warmup_steps=0.1, num_training_steps=95)
    assert sched.lr_lambdas[0].keywords == {"num_warmup_steps": 10, "num_training_steps": 95}
    one = optreg.get_scheduler("cosine", sgd(1.0), num_warmup_steps=1.0, num_training_steps=95)
    assert one.lr_lambdas[0].keywords["num_warmup_steps"] == 1  # a whole number stays steps
    # schedules that take only the warmup count still get the fraction resolved
    cw = optreg.get_scheduler(
        "constant_with_warmup", sgd(1.0), num_warmup_steps=0.25, num_training_steps=10
    )
    assert cw.lr_lambdas[0].keywords == {"num_warmup_steps": 3}
    direct = S.get_cosine_schedule_with_warmup(sgd(1.0), 0.05, 1000)
    assert direct.lr_lambdas[0].keywords["num_warmup_steps"] == 50


def test_a_fraction_without_training_steps_is_an_error() -> None:
    with pytest.raises(
        ValueError,
        match="`num_warmup_steps` 0.1 is a fraction of `num_training_steps`, which was not given",
    ):
        S.get_constant_schedule_with_warmup(sgd(1.0), 0.1)


def test_a_negative_warmup_lr_rate_is_refused() -> None:
    """It would write a negative lr into the optimizer during warmup."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match=r"`warmup_lr_rate` must be >= 0, got -0.5"):
        optreg.get_scheduler("cosine_warmup_with_min_lr", opt, num_warmup_steps=5,
                             num_training_steps=10, min_lr_rate=0.1, warmup_lr_rate=-0.5)  # fmt: skip
