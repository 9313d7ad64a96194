"""Fuzzing the public API with hypothesis: only documented errors, readable messages.

For any input, get_optimizer / get_scheduler / register_* either succeed or raise
one of the documented exceptions (an :class:`optreg.OptregError`, ``TypeError`` or
``ValueError``; a ``KeyError`` only as :class:`optreg.UnknownNameError`), and the
message shows the offending value (its ``repr`` or ``str``). A successful build
has finite, non-negative learning rates at every step probed.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.optim.lr_scheduler import LambdaLR

import optreg
from optreg import MissingDependencyError, OptregError, UnknownNameError
from optreg.testing import needs, step_scheduler

FUZZ = settings(
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

OPTIMIZERS = optreg.list_optimizers()
SCHEDULERS = optreg.list_schedulers()


# --------------------------------------------------------------------------- strategies

odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), -1.0, -0.0, 0.0, 1e308]),
    st.text(max_size=6),
    st.binary(max_size=3),
    st.complex_numbers(max_magnitude=10),
    st.lists(st.integers(-3, 3), max_size=2),
    st.tuples(st.floats(-2, 2), st.floats(-2, 2)),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    st.builds(object),
)


def _variants(name: str) -> st.SearchStrategy[str]:
    """Spellings that must reach ``name``: case, '-' for '_', surrounding blanks."""
    return st.builds(
        lambda upper, dash, pad: (
            (" " * pad)
            + (name.upper() if upper else name).replace("_", "-" if dash else "_")
            + ("\t" * pad)
        ),
        st.booleans(),
        st.booleans(),
        st.integers(0, 2),
    )


def names(known: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(known).flatmap(_variants),
        st.sampled_from(known).map(lambda n: f"optreg:{n}"),
        st.text(max_size=12),
        st.text(alphabet="ab_-:. \t\nAZ0é", max_size=10),
        st.sampled_from(
            ["", " ", ":", "optreg:", ":adamw", "a:b:c", "adam w", "adamw!", "nodist:adamw", "ß"]
        ),
        odd_values.filter(lambda v: not isinstance(v, str)),
    )


steps = st.one_of(
    st.none(),
    st.integers(min_value=-5, max_value=60),
    st.integers(min_value=10**6, max_value=10**30),
    st.integers(max_value=-1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 5.0, 2.5, -3.0, float("nan"), float("inf"), True, False]),
    st.text(max_size=3),
)

#: Scheduler arguments (beyond the step counts) and the values to try for them.
SCHED_ARGS = [
    "num_cycles",
    "power",
    "lr_end",
    "min_lr",
    "min_lr_rate",
    "warmup_lr_rate",
    "num_decay_steps",
    "num_stable_steps",
    "warmup_type",
    "decay_type",
    "min_lr_ratio",
    "timescale",
    "factor",
    "patience",
    "mode",
    "threshold",
    "no_such_argument",
]
arg_values = st.one_of(
    odd_values,
    st.floats(min_value=-2, max_value=2),
    st.integers(-3, 20),
    st.sampled_from(["linear", "cosine", "1-sqrt", "min", "max", "rel", "abs"]),
)
sched_kwargs = st.dictionaries(st.sampled_from(SCHED_ARGS), arg_values, max_size=2)

OPT_ARGS = ["lr", "weight_decay", "momentum", "eps", "betas", "alpha", "no_such_argument"]
opt_kwargs = st.dictionaries(
    st.sampled_from(OPT_ARGS),
    st.one_of(odd_values, st.floats(min_value=-1, max_value=1)),
    min_size=1,
    max_size=2,
)

# --------------------------------------------------------------------------- checks

ALLOWED = (OptregError, TypeError, ValueError)


def _shown(value: object, message: str) -> bool:
    try:
        texts = {repr(value), str(value)}
        if isinstance(value, float) and value.is_integer():  # -1.0 may be shown as -1
            texts.add(str(int(value)))
        if isinstance(value, (tuple, list)) and value:  # or the offending element of a pair
            texts |= {repr(v) for v in value} | {str(v) for v in value}
        if isinstance(value, str):  # names are shown normalised, e.g. ' ADAM-W ' as 'adam_w'
            norm = value.strip().lower().replace("-", "_")
            texts |= {norm, repr(norm)}
    except Exception:  # pragma: no cover - a value whose repr raises
        return True
    return any(t and t in message for t in texts)


def check_error(error: BaseException, *values: object) -> None:
    """The error is documented and its message shows one of ``values``."""
    assert isinstance(error, ALLOWED), f"undocumented {type(error).__name__}: {error}"
    if isinstance(error, KeyError):
        assert isinstance(error, UnknownNameError), f"bare KeyError: {error!r}"
    message = str(error)
    if isinstance(error, TypeError) and "missing" in message and "required" in message:
        return  # nothing bad was given; Python names the argument that is missing
    assert any(_shown(v, message) for v in values), (
        f"{type(error).__name__} message names none of {values!r}: {message!r}"
    )


def check_lrs(optimizer: Any) -> None:
    for group in optimizer.param_groups:
        lr = group["lr"]
        if lr is None:  # relative-step Adafactor computes its own
            continue
        lr = float(lr)
        assert math.isfinite(lr), f"lr {lr!r}"
        assert lr >= 0, f"lr {lr!r}"


@contextmanager
def _quiet_paged() -> Iterator[None]:
    """bnb's paged names warn (once) on CPU; that warning is documented."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*[Pp]aged optimizers are not supported on CPU")
        yield


def _params(*, matrices: bool = False) -> list[torch.nn.Parameter]:
    """A matrix and a bias (a 1 x 3 matrix for optimizers of 2-D parameters only)."""
    torch.manual_seed(0)
    bias = torch.randn(1, 3) if matrices else torch.randn(3)
    return [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(bias)]


def _sgd() -> torch.optim.Optimizer:
    return torch.optim.SGD(_params(), lr=0.1)


# --------------------------------------------------------------------------- names


@FUZZ
@given(name=names(OPTIMIZERS))
def test_fuzz_optimizer_names(name: Any) -> None:
    try:
        entry = optreg.optimizers.resolve(name)
    except Exception as e:
        check_error(e, name)
        with pytest.raises(type(e)):
            optreg.get_optimizer(name, _params())
        return
    assert entry.name in OPTIMIZERS
    need = needs(entry)
    params = _params(matrices=bool(need.get("matrices_only")))
    try:
        with _quiet_paged():
            optimizer = optreg.get_optimizer(name, params, **dict(need.get("kwargs") or {}))
    except MissingDependencyError:
        return
    check_lrs(optimizer)


@FUZZ
@given(name=names(SCHEDULERS))
def test_fuzz_scheduler_names(name: Any) -> None:
    try:
        optreg.get_scheduler(name, _sgd(), num_warmup_steps=2, num_training_steps=10)
    except Exception as e:
        if name in optreg.schedulers:
            return  # a known name that needs more arguments; fuzzed below
        check_error(e, name)


# --------------------------------------------------------------------------- steps, kwargs


def _probe(scheduler: Any, optimizer: Any, warmup: Any, total: Any) -> None:
    check_lrs(optimizer)
    for i in range(4):
        optimizer.step()
        step_scheduler(scheduler, 1.0 / (i + 1))
        check_lrs(optimizer)
    if isinstance(scheduler, LambdaLR):
        points = {0, 1, 10**9}
        for v in (warmup, total):
            if isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v < 10**40:
                points |= {int(v), int(v) + 1, max(0, int(v) - 1)}
        for fn, base in zip(scheduler.lr_lambdas, scheduler.base_lrs, strict=True):
            for s in sorted(points):
                m = fn(s)
                assert math.isfinite(m), f"multiplier {m!r} at step {s}"
                assert m >= 0, f"multiplier {m!r} at step {s}"
                assert math.isfinite(base * m)


@FUZZ
@given(
    name=st.sampled_from(SCHEDULERS),
    warmup=steps,
    total=steps,
    kwargs=sched_kwargs,
)
def test_fuzz_scheduler_arguments(
    name: str, warmup: Any, total: Any, kwargs: dict[str, Any]
) -> None:
    if name == "reduce_lr_on_plateau" and kwargs:
        return  # torch's own class: known gaps, see test_plateau_bad_values_are_named
    optimizer = _sgd()
    try:
        with warnings.catch_warnings():  # documented: computed as transformers does
            warnings.simplefilter("ignore", optreg.WarmupLongerThanTrainingWarning)
            scheduler = optreg.get_scheduler(
                name,
                optimizer,
                num_warmup_steps=warmup,
                num_training_steps=total,
                scheduler_specific_kwargs=kwargs,
            )
    except Exception as e:
        error: Exception | None = e
    else:
        error = None
    if error is not None:
        given = {k for k, v in kwargs.items() if v is not None}
        given |= {"num_warmup_steps"} if warmup is not None else set()
        given |= {"num_training_steps"} if total is not None else set()
        missing = [
            a
            for a in (*SCHED_ARGS, "num_warmup_steps", "num_training_steps")
            if re.search(rf"\b{a}\b", str(error)) and a not in given
        ]
        required = re.search(r"requires `(\w+)`", str(error))
        if isinstance(error, ValueError) and required:  # transformers' wording, no value
            arg = required.group(1)
            given_steps = {"num_warmup_steps": warmup, "num_training_steps": total}
            assert given_steps.get(arg, kwargs.get(arg)) is None, error
        elif isinstance(error, (TypeError, ValueError)) and missing:
            pass  # about an argument that was not given (e.g. "One of min_lr or min_lr_rate")
        else:
            # the optimizer itself may be what is wrong (AdafactorSchedule needs Adafactor)
            check_error(error, warmup, total, *kwargs, *kwargs.values(), type(optimizer).__name__)
        return
    _probe(scheduler, optimizer, warmup, total)


@FUZZ
@given(
    # the adafactor schedule drives only a relative-step Adafactor (tests/_checkpoint/test_resume.py)
    name=st.sampled_from([n for n in SCHEDULERS if n != "adafactor"]),
    warmup=st.integers(0, 20),
    extra=st.integers(0, 20),
)
def test_valid_schedules_keep_lr_finite_and_non_negative(
    name: str, warmup: int, extra: int
) -> None:
    """Plain valid step counts: every schedule builds (given its required extra) and stays sane."""
    kwargs: dict[str, Any] = dict(needs(optreg.schedulers[name]).get("kwargs") or {})
    if name == "warmup_stable_decay":  # what the registration declares may not fit here
        kwargs["num_decay_steps"] = min(2, extra)
    if name == "sequence" and warmup + extra < 4:
        return  # its two phases (a quarter and three quarters) need a few steps each
    optimizer = _sgd()
    scheduler = optreg.get_scheduler(
        name,
        optimizer,
        num_warmup_steps=warmup,
        num_training_steps=warmup + extra,
        scheduler_specific_kwargs=kwargs,
    )
    _probe(scheduler, optimizer, warmup, warmup + extra)


#: Values bitsandbytes does not support: NotImplementedError inside bitsandbytes,
#: which the bnb names must turn into a ValueError that shows the value.
BNB_UNSUPPORTED: list[tuple[str, dict[str, Any]]] = [
    ("sgd_8bit", {"lr": 0.1}),  # momentum defaults to 0
    ("sgd_8bit", {"lr": 0.1, "momentum": 0.0}),
    ("lars_8bit", {"lr": 0.1, "momentum": 0}),
    ("rmsprop_bnb", {"lr": 0.1, "alpha": 0.0}),
    ("rmsprop_bnb_8bit", {"lr": 0.1, "centered": True}),
]


@FUZZ
@given(name=st.sampled_from(OPTIMIZERS), kwargs=opt_kwargs)
def test_fuzz_optimizer_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    try:
        with _quiet_paged():
            optimizer = optreg.get_optimizer(name, _params(), **kwargs)
    except MissingDependencyError:
        return
    except Exception as e:
        check_error(e, *kwargs, *kwargs.values())
        return
    check_lrs(optimizer)


@pytest.mark.parametrize(("name", "kwargs"), BNB_UNSUPPORTED)
def test_bnb_unsupported_values_raise_value_error(name: str, kwargs: dict[str, Any]) -> None:
    if name not in OPTIMIZERS or not optreg.optimizers.status(optreg.optimizers.resolve(name))[0]:
        pytest.skip(f"{name} is not available here")
    with pytest.raises(ValueError) as info:
        optreg.get_optimizer(name, _params(), **kwargs)
    message = str(info.value)
    assert name in message
    for key, value in kwargs.items():
        assert f"{key}={value!r}" in message


# --------------------------------------------------------------------------- registration


def _factory(params: Any, **kwargs: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, **kwargs)


factories = st.one_of(
    st.just(_factory),
    st.just(torch.optim.SGD),
    st.just("torch.optim:SGD"),
    st.sampled_from(["torch.optim", "torch.optim:", ":SGD", "not a ref", "a b:c", "x:y"]),
    odd_values.filter(lambda v: not callable(v)),
)


@FUZZ
@given(
    kind=st.sampled_from(["optimizer", "scheduler"]),
    name=names(["adamw", "linear", "fuzzed_name"]),
    factory=factories,
    aliases=st.one_of(
        st.just(()),
        st.lists(
            st.one_of(st.text(max_size=6), st.sampled_from(["a:b", "", "ok_alias"])), max_size=2
        ),
    ),
    override=st.booleans(),
)
def test_fuzz_register(
    fresh_registry: None, kind: str, name: Any, factory: Any, aliases: list[Any], override: bool
) -> None:
    register = optreg.register_optimizer if kind == "optimizer" else optreg.register_scheduler
    registry = optreg.optimizers if kind == "optimizer" else optreg.schedulers
    try:
        entry = register(name, factory, aliases=aliases, override=override)
    except Exception as e:
        check_error(e, name, factory, *aliases)
        return
    try:
        assert registry.resolve(name) == entry
        for alias in aliases:
            assert registry.resolve(alias).name == entry.name
    finally:
        registry.unregister(entry.name)
