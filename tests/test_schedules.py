"""Builtin schedules: values at every step, errors, resume, state round trips, GreedyLR.

Every expected learning rate is computed here from the published formulas
(``/shared/REFERENCE.md``) written as plain math, never by calling the module's own
step functions. GreedyLR scenarios are worked out by hand, step by step.
"""

from __future__ import annotations

import io
import math
import pickle
import re
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau

import optreg
from optreg import SchedulerType
from optreg.builtin import schedules as S
from optreg.builtin.greedy import GreedyLR, get_greedy_schedule

pytestmark = pytest.mark.usefixtures("fresh_registry")

APPROX = {"rel": 1e-12, "abs": 1e-15}


def _opt(*lrs: float, default: float | None = None) -> torch.optim.SGD:
    """SGD over one scalar parameter per lr (one param group each)."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs or (1.0,)]
    return torch.optim.SGD(groups, lr=groups[0]["lr"] if default is None else default)


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
    _check(S.get_constant_schedule(_opt(0.5, 0.2)), lambda s: 1.0, 12, 0.5, 0.2)


@pytest.mark.parametrize("w", [0, 1, 5])
def test_constant_with_warmup(w: int) -> None:
    _check(
        S.get_constant_schedule_with_warmup(_opt(0.5, 0.2), w),
        lambda s: warm(s, w) if s < w else 1.0,
        w + 6,
        0.5,
        0.2,
    )


@pytest.mark.parametrize(("w", "n"), STEP_COUNTS)
def test_linear(w: int, n: int) -> None:
    def ref(s: int) -> float:
        return warm(s, w) if s < w else max(0.0, (n - s) / max(1, n - w))

    _check(S.get_linear_schedule_with_warmup(_opt(0.5, 0.2), w, n), ref, n + 5, 0.5, 0.2)


@pytest.mark.parametrize(("w", "n"), STEP_COUNTS)
@pytest.mark.parametrize("c", [0.5, 0.0, 0.25, 1.5])
def test_cosine(w: int, n: int, c: float) -> None:
    def ref(s: int) -> float:
        # past the end the curve follows the cosine (it rises again for c = 0.5)
        return warm(s, w) if s < w else max(0.0, cos_half((s - w) / max(1, n - w), c))

    _check(S.get_cosine_schedule_with_warmup(_opt(), w, n, num_cycles=c), ref, n + 6)


def test_cosine_default_is_half_a_cosine() -> None:
    sched = S.get_cosine_schedule_with_warmup(_opt(), 0, 4)
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
        S.get_cosine_with_hard_restarts_schedule_with_warmup(_opt(), w, n, num_cycles=c),
        ref,
        n + 4,
    )


def test_cosine_with_restarts_restarts() -> None:
    sched = S.get_cosine_with_hard_restarts_schedule_with_warmup(_opt(), 0, 8, num_cycles=2)
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
        S.get_polynomial_decay_schedule_with_warmup(_opt(lr), w, n, lr_end=lr_end, power=power),
        ref,
        n + 4,
        lr,
    )


def test_polynomial_reads_the_optimizer_default_lr() -> None:
    # lr_init is optimizer.defaults["lr"], even when a group has another lr
    opt = _opt(0.5, 2.0, default=1.0)
    sched = S.get_polynomial_decay_schedule_with_warmup(opt, 0, 2, lr_end=0.2)
    _check(sched, lambda s: [1.0, (0.8 * 0.5 + 0.2), 0.2, 0.2][s], 3, 0.5, 2.0)


@pytest.mark.parametrize("w", [0, 1, 4, 9])
@pytest.mark.parametrize("timescale", [None, 3, 100, 2.5])
def test_inverse_sqrt(w: int, timescale: float | None) -> None:
    t = timescale if timescale is not None else (w if w else 10_000)

    def ref(s: int) -> float:
        return warm(s, w) if s < w else 1 / math.sqrt((s + t - w) / t)

    _check(S.get_inverse_sqrt_schedule(_opt(), w, timescale=timescale), ref, w + 30)


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

    sched = S.get_cosine_with_min_lr_schedule_with_warmup(_opt(2e-3), w, n, num_cycles=c, **kwargs)
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

    sched = S.get_cosine_with_min_lr_schedule_with_warmup_lr_rate(_opt(2e-3), w, n, **kwargs)
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
        _opt(0.3),
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
    sched = S.get_wsd_schedule(_opt(), 2, 2, num_stable_steps=3, decay_type="linear")
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
            _opt(), 0, 2, num_training_steps=100, num_stable_steps=1, decay_type="linear"
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
    sched = optreg.get_scheduler(name, _opt(0.1), **LAMBDA_CASES[name])
    assert isinstance(sched, LambdaLR)
    (fn,) = sched.lr_lambdas
    assert isinstance(fn, partial) or fn.__name__ == "_constant"
    clone = pickle.loads(pickle.dumps(fn))
    assert [clone(s) for s in range(20)] == [fn(s) for s in range(20)]


def test_get_scheduler_matches_the_factory() -> None:
    sched = optreg.get_scheduler(
        SchedulerType.POLYNOMIAL,
        _opt(1e-3),
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
    sched = optreg.get_scheduler("linear", _opt(), num_warmup_steps=2.0, num_training_steps=4.0)
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
        optreg.get_scheduler(name, _opt(), **steps, **kwargs)


def test_get_scheduler_passes_only_declared_step_counts() -> None:
    # constant ignores both; constant_with_warmup and inverse_sqrt ignore num_training_steps
    sched = optreg.get_scheduler("constant", _opt(), num_warmup_steps=5, num_training_steps=10)
    assert [lr for (lr,) in _run(sched, 3)] == [1.0, 1.0, 1.0, 1.0]
    sched = optreg.get_scheduler(
        "constant_with_warmup", _opt(), num_warmup_steps=2, num_training_steps=1
    )
    assert [lr for (lr,) in _run(sched, 3)] == pytest.approx([0.0, 0.5, 1.0, 1.0])
    sched = optreg.get_scheduler("inverse_sqrt", _opt(), num_warmup_steps=4, num_training_steps=1)
    assert [lr for (lr,) in _run(sched, 6)][-1] == pytest.approx(1 / math.sqrt(6 / 4), **APPROX)
    # warmup_stable_decay passes num_training_steps through: stable = 10 - 2 - 3
    sched = optreg.get_scheduler(
        "warmup_stable_decay",
        _opt(),
        num_warmup_steps=2,
        num_training_steps=10,
        num_decay_steps=3,
        decay_type="linear",
    )
    lrs = [lr for (lr,) in _run(sched, 11)]
    assert lrs == pytest.approx([0, 0.5, 1, 1, 1, 1, 1, 1, 2 / 3, 1 / 3, 0, 0], **APPROX)


def test_get_scheduler_reduce_lr_on_plateau() -> None:
    opt = _opt(0.1)
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
        optreg.get_scheduler("reduce_lr_on_plateau", _opt(), patients=3)


def test_get_scheduler_greedy() -> None:
    opt = _opt(0.1)
    sched = optreg.get_scheduler(
        "greedy", opt, num_warmup_steps=3, num_training_steps=10, factor=0.5, patience=0
    )
    assert isinstance(sched, GreedyLR)
    assert isinstance(sched, LRScheduler)
    sched.step(1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)
    with pytest.raises(TypeError, match=r"'patients'; did you mean 'patience'\?"):
        optreg.get_scheduler("greedy", _opt(), patients=3)
    assert isinstance(get_greedy_schedule(_opt(), patience=1), GreedyLR)


# ------------------------------------------------------------------------ errors

NAN = float("nan")


def _lin(*a: Any, **k: Any) -> Any:
    return S.get_linear_schedule_with_warmup(_opt(1e-3), *a, **k)


def _poly(*a: Any, **k: Any) -> Any:
    return S.get_polynomial_decay_schedule_with_warmup(_opt(1e-3), *a, **k)


def _cmin(*a: Any, lr: float = 1e-3, **k: Any) -> Any:
    return S.get_cosine_with_min_lr_schedule_with_warmup(_opt(lr), *a, **k)


def _cwmin(*a: Any, **k: Any) -> Any:
    return S.get_cosine_with_min_lr_schedule_with_warmup_lr_rate(_opt(1e-3), *a, **k)


def _wsd(*a: Any, **k: Any) -> Any:
    return S.get_wsd_schedule(_opt(), *a, **k)


def _greedy(**k: Any) -> Any:
    return GreedyLR(_opt(0.1), **k)


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
    (lambda: _lin("3", 10), TypeError, "`num_warmup_steps` must be an int >= 0, got str: '3'"),
    (lambda: _lin(True, 10), TypeError, "`num_warmup_steps` must be an int >= 0, got bool: True"),
    (lambda: _lin(11, 10), ValueError, "got num_warmup_steps=11 > num_training_steps=10"),
    (
        lambda: S.get_cosine_schedule_with_warmup(_opt(), 0, 10, num_cycles=NAN),
        ValueError,
        "`num_cycles` must be a finite number, got nan",
    ),
    (
        lambda: S.get_cosine_with_hard_restarts_schedule_with_warmup(
            _opt(), 0, 10, num_cycles=math.inf
        ),
        ValueError,
        "`num_cycles` must be a finite number, got inf",
    ),
    (
        lambda: S.get_cosine_with_hard_restarts_schedule_with_warmup(_opt(), 5, 4),
        ValueError,
        "num_warmup_steps=5 > num_training_steps=4",
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
    (lambda: _poly(0, 10, lr_end=NAN), ValueError, "`lr_end` must be a finite number, got nan"),
    (lambda: _poly(0, 10, power=-1), ValueError, "`power` must be >= 0, got -1.0"),
    (lambda: _poly(0, 10, power=NAN), ValueError, "`power` must be a finite number, got nan"),
    (lambda: _poly(3, 2), ValueError, "num_warmup_steps=3 > num_training_steps=2"),
    (
        lambda: S.get_inverse_sqrt_schedule(_opt(), 2, timescale=0),
        ValueError,
        "`timescale` must be > 0, got 0",
    ),
    (
        lambda: S.get_inverse_sqrt_schedule(_opt(), 2, timescale=-4),
        ValueError,
        "`timescale` must be > 0, got -4",
    ),
    (
        lambda: S.get_constant_schedule_with_warmup(_opt(), -2),
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
    (lambda: _cmin(4, 3, min_lr_rate=0.1), ValueError, "num_warmup_steps=4 > num_training_steps=3"),
    (lambda: _cwmin(0, 10), ValueError, "One of min_lr or min_lr_rate should be set"),
    (
        lambda: _cwmin(0, 10, min_lr=1.0, min_lr_rate=0.0),
        ValueError,
        "Only one of min_lr or min_lr_rate",
    ),
    (
        lambda: _cwmin(0, 10, min_lr_rate=0.1, warmup_lr_rate=NAN),
        ValueError,
        "`warmup_lr_rate` must be a finite number, got nan",
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
        "`min_lr_ratio` must be a finite number, got nan",
    ),
    (lambda: _wsd(0), TypeError, "num_decay_steps"),
    (lambda: _greedy(factor=1.0), ValueError, "Factor should be < 1.0."),
    (lambda: _greedy(factor=0), ValueError, "`factor` must be > 0, got 0"),
    (lambda: _greedy(factor=NAN), ValueError, "`factor` must be > 0, got nan"),
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
    (lambda: _greedy(patience=-1), ValueError, "`patience` must be an int >= 0, got -1"),
    (lambda: _greedy(cooldown=1.5), ValueError, "`cooldown` must be an int >= 0, got 1.5"),
    (lambda: _greedy(window_size=0), ValueError, "`window_size` must be an int >= 1, got 0"),
    (lambda: _greedy(eps=NAN), ValueError, "`eps` must be a finite number, got nan"),
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
    full = [lrs for lrs in _run(optreg.get_scheduler(name, _opt(0.1, 0.3), **kwargs), 16)]
    opt = _opt(0.1, 0.3)
    for group in opt.param_groups:  # what a checkpointed optimizer carries
        group["initial_lr"] = group["lr"]
    resumed = optreg.get_scheduler(name, opt, last_epoch=done - 1, **kwargs)
    assert _run(resumed, 16 - done) == full[done:]


def _save_load(obj: Any) -> Any:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("name", sorted(LAMBDA_CASES))
def test_state_dict_round_trip(name: str) -> None:
    kwargs = LAMBDA_CASES[name]
    opt = _opt(0.1, 0.3)
    sched = optreg.get_scheduler(name, opt, **kwargs)
    before = _run(sched, 6)
    ckpt = _save_load({"opt": opt.state_dict(), "sched": sched.state_dict()})
    after = _run(sched, 8)[1:]

    # same configuration (polynomial and min_lr read optimizer.defaults["lr"] when built);
    # the lrs, base lrs and step count must come from the checkpoint
    opt2 = _opt(0.1, 0.3)
    sched2 = optreg.get_scheduler(name, opt2, **kwargs)
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert sched2.get_last_lr() == before[-1]
    assert _run(sched2, 8)[1:] == after


# ---------------------------------------------------------------------- GreedyLR


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
    sched = GreedyLR(_opt(0.1))
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
    lrs = _greedy_run(_opt(0.1), [10, 9, 8, 7, 6, 5, 4], factor=0.5, patience=2, threshold=0)
    assert _flat(lrs) == pytest.approx([0.1, 0.1, 0.2, 0.2, 0.2, 0.4, 0.4])


def test_greedy_reduces_on_plateau_then_cools_down() -> None:
    # step 1 improves on inf; then 2 bad steps > patience 1 -> halve; 2 steps of cooldown
    lrs = _greedy_run(_opt(0.1), [1.0] * 7, factor=0.5, patience=1, cooldown=2)
    assert _flat(lrs) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025])


def test_greedy_warmup_after_increase() -> None:
    # patience 0: every improvement raises; then 2 steps are ignored (best stays 10)
    sched = GreedyLR(_opt(0.1), factor=0.5, patience=0, warmup=2)
    lrs = []
    for m in [10, 9, 8, 7, 6, 5]:
        sched.step(m)
        lrs.append(sched.get_last_lr()[0])
        if m == 8:
            assert sched.best == 10
    assert lrs == pytest.approx([0.2, 0.2, 0.2, 0.4, 0.4, 0.4])


def test_greedy_min_and_max_lr_per_group() -> None:
    lrs = _greedy_run(
        _opt(0.1, 0.2),
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
    sched = GreedyLR(_opt(0.1), factor=0.5, patience=0, min_lr=0.1 - 5e-9, eps=1e-8)
    for m in [1.0, 1.0, 1.0]:
        sched.step(m)
    assert sched.get_last_lr() == [0.1]  # 5e-9 < eps: never lowered
    assert sched.reset_start == 500  # and so never counted as "at min_lr"


def test_greedy_mode_max_relative_threshold() -> None:
    lrs = _greedy_run(
        _opt(0.1),
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
    raw = _greedy_run(_opt(0.1), metrics, **kwargs)
    sched = GreedyLR(_opt(0.1), smooth=True, window_size=2, **kwargs)
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
        _opt(0.1), factor=0.5, patience=0, min_lr=0.05, reset_start=2, smooth=True, window_size=3
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
    sched2 = GreedyLR(_opt(0.1), factor=0.5, patience=0, min_lr=0.05, reset_start=2, smooth=True)
    for _ in range(4):
        sched2.step(1.0)
    state = sched2.state_dict()
    assert (state["best"], state["num_bad_epochs"], state["num_good_epochs"]) == (math.inf, 0, 0)
    assert state["_streaming_avg"]["values"] == []


def test_greedy_increase_rearms_reset_start() -> None:
    sched = GreedyLR(_opt(0.1), factor=0.5, patience=0, min_lr=0.1, reset_start=3)
    for m in [1.0, 1.0]:  # up to 0.2, back down to 0.1 = min (counter 2)
        sched.step(m)
    assert sched.reset_start == 2
    sched.step(0.5)  # improvement: up, counter back to 3
    assert sched.get_last_lr() == [0.2]
    assert sched.reset_start == 3


def test_greedy_accepts_tensor_metrics_and_explicit_epoch() -> None:
    sched = GreedyLR(_opt(0.1), factor=0.5, patience=0)
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
    opt = _opt(0.1, 0.2)
    sched = GreedyLR(opt, **kwargs)
    for m in metrics[:7]:
        sched.step(m)
    ckpt = _save_load({"opt": opt.state_dict(), "sched": sched.state_dict()})
    assert ckpt["sched"]["_streaming_avg"]["values"] == metrics[4:7]
    tail = []
    for m in metrics[7:]:
        sched.step(m)
        tail.append(sched.get_last_lr())

    opt2 = _opt(0.3, 0.3)
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
    sched = GreedyLR(_opt(0.1), factor=0.5, patience=0)
    sched.step(1.0)
    opt2 = _opt(0.1)
    GreedyLR(opt2).load_state_dict(_save_load(sched.state_dict()))
    assert opt2.param_groups[0]["lr"] == 0.2


def test_greedy_load_state_dict_checks_group_count() -> None:
    state = GreedyLR(_opt(0.1, 0.2)).state_dict()
    with pytest.raises(
        ValueError, match=re.escape("GreedyLR state has 2 min_lrs, the optimizer has 1")
    ):
        GreedyLR(_opt(0.1)).load_state_dict(state)
