"""Exact resume: every builtin optimizer x every builtin schedule.

For each pair: train ``N`` steps, save model + optimizer + scheduler state with
``torch.save``, load it with ``torch.load(weights_only=True)`` into fresh objects
built by name, train ``M`` more steps. Parameters and learning rates must be
bit-identical (``torch.equal`` / ``==``) to an uninterrupted ``N + M`` run.

The names come from the registry's own listing at collection time, so a new
builtin (or an installed plugin) is covered without touching this file; a name
whose dependency is missing is skipped with the registry's reason.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

import optreg
from optreg import MissingDependencyError
from optreg.testing import needs, needs_closure, step_scheduler

N_BEFORE = 3  # steps before the checkpoint
N_AFTER = 3  # steps after it
WARMUP = 2
TOTAL = N_BEFORE + N_AFTER

#: Hyperparameters per optimizer name, over what its registration declares it needs
#: (``optreg.testing.needs``: e.g. momentum for bnb's SGD8bit); every other name gets
#: ``{"lr": 1e-2}``. Momentum is switched on where the optimizer has it, so that there
#: is state to resume.
OPT_KWARGS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 1e-2, "momentum": 0.9, "weight_decay": 0.01},
    "rmsprop": {"lr": 1e-2, "momentum": 0.9},
    "lbfgs": {"lr": 0.5, "max_iter": 3, "history_size": 4},
    "adamw": {"lr": 1e-2, "weight_decay": 0.01},
    "adamw_hf": {"lr": 1e-2, "weight_decay": 0.01},
    # an explicit lr so that every schedule changes the steps it takes; the default
    # (relative_step=True) is covered by test_adafactor_default_resumes_exactly
    "adafactor": {"lr": 1e-2, "relative_step": False, "scale_parameter": False, "beta1": 0.9},
}

#: Scheduler arguments beyond the step counts (all schedules get W and N), over what the
#: registration declares (``min_lr_rate`` for the min-lr cosines...).
SCHED_KWARGS: dict[str, dict[str, Any]] = {
    "warmup_stable_decay": {"num_decay_steps": 2},  # fits in the TOTAL steps here
    "reduce_lr_on_plateau": {"patience": 0, "factor": 0.5},
    "greedy": {"patience": 0, "factor": 0.5, "min_lr": 1e-5, "smooth": True, "window_size": 3},
}

#: Schedules that only make sense with one optimizer family.
SCHED_ONLY_FOR: dict[str, set[str]] = {
    # AdafactorSchedule reports the lr Adafactor computes with relative_step=True:
    # covered by test_adafactor_default_resumes_exactly
    "adafactor": set(),
}

#: A metric sequence for metric-driven schedules (ReduceLROnPlateau, GreedyLR):
#: improves, then stalls, so that the learning rate moves both before and after
#: the checkpoint, independent of the optimizer under test.
METRICS = [1.0, 0.5, 0.6, 0.7, 0.4, 0.45, 0.5, 0.55]

#: Warnings a name documents on this machine: (name pattern, category, message regex).
#: Anything else is an error (the suite runs with ``-W error``).
EXPECTED_WARNINGS: list[tuple[str, type[Warning], str]] = [
    (r"^paged_", UserWarning, r".*paged optimizers are not supported on CPU"),
]


# --------------------------------------------------------------------------- names


def _names(kind: str) -> list[str]:
    return optreg.list_optimizers() if kind == "optimizer" else optreg.list_schedulers()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "opt_name" in metafunc.fixturenames:
        metafunc.parametrize("opt_name", _names("optimizer"))
    if "sched_name" in metafunc.fixturenames:
        metafunc.parametrize("sched_name", _names("scheduler"))


def _skip_unavailable(registry: optreg.Registry, name: str) -> None:
    available, reason = registry.status(registry.resolve(name))
    if not available:
        pytest.skip(f"{name}: {reason}")


@contextmanager
def _documented_warnings(opt_name: str) -> Iterator[None]:
    """Allow the warnings documented for ``opt_name``; the suite's filters (errors) stay."""
    with warnings.catch_warnings():
        for pattern, category, message in EXPECTED_WARNINGS:
            if re.search(pattern, opt_name):
                warnings.filterwarnings("ignore", message=message, category=category)
        yield


# --------------------------------------------------------------------------- training


class Net(nn.Module):
    """Dense model: one weight of 5120 elements (>= 4096, so bnb keeps 8-bit state)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 80)
        self.norm = nn.LayerNorm(80)
        self.fc2 = nn.Linear(80, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.norm(self.fc1(x))))


class SparseNet(nn.Module):
    """For sparse_adam: a sparse embedding of 128 x 40 = 5120 elements."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(128, 40, sparse=True)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.emb(idx).sum(-1, keepdim=True)


@dataclass
class Task:
    model: nn.Module
    inputs: torch.Tensor
    target: torch.Tensor

    def loss(self) -> torch.Tensor:
        return nn.functional.mse_loss(self.model(self.inputs), self.target)


def make_task(opt_name: str) -> Task:
    """A fresh model with fixed initial weights and fixed data."""
    torch.manual_seed(1234)
    gen = torch.Generator().manual_seed(99)
    if _needs("optimizer", opt_name).get("sparse_grad"):
        model: nn.Module = SparseNet()
        inputs = torch.randint(0, 128, (16, 6), generator=gen)
        target = torch.randn(16, 6, 1, generator=gen)
        return Task(model, inputs, target)
    if _needs("optimizer", opt_name).get("matrices_only") and "adamw" not in opt_name:
        model = nn.Sequential(
            nn.Linear(64, 80, bias=False), nn.Tanh(), nn.Linear(80, 4, bias=False)
        )
        return Task(model, torch.randn(16, 64, generator=gen), torch.randn(16, 4, generator=gen))
    return Task(Net(), torch.randn(16, 64, generator=gen), torch.randn(16, 4, generator=gen))


def _needs(kind: str, name: str) -> dict[str, Any]:
    """What the name's registration says checking it needs (its conformance metadata)."""
    registry = optreg.optimizers if kind == "optimizer" else optreg.schedulers
    return needs(registry.resolve(name))


def opt_kwargs(opt_name: str) -> dict[str, Any]:
    declared = dict(_needs("optimizer", opt_name).get("kwargs") or {})
    return {**declared, **OPT_KWARGS.get(opt_name, {"lr": 1e-2})}


def sched_kwargs(sched_name: str) -> dict[str, Any]:
    declared = dict(_needs("scheduler", sched_name).get("kwargs") or {})
    return {**declared, **SCHED_KWARGS.get(sched_name, {})}


def build(
    opt_name: str, sched_name: str, task: Task, kwargs: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    optimizer = build_optimizer(opt_name, task, kwargs)
    return optimizer, build_scheduler(sched_name, optimizer)


def build_optimizer(opt_name: str, task: Task, kwargs: dict[str, Any] | None = None) -> Any:
    kwargs = opt_kwargs(opt_name) if kwargs is None else kwargs
    try:
        return optreg.get_optimizer(opt_name, task.model, **kwargs)
    except MissingDependencyError as e:
        pytest.skip(str(e))


def build_scheduler(sched_name: str, optimizer: Any) -> Any:
    return optreg.get_scheduler(
        sched_name,
        optimizer,
        num_warmup_steps=WARMUP,
        num_training_steps=TOTAL,
        scheduler_specific_kwargs=sched_kwargs(sched_name),
    )


def train_step(step: int, task: Task, optimizer: Any, scheduler: Any) -> list[float]:
    """One step: gradients from the deterministic loss, optimizer step, scheduler step."""

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = task.loss()
        loss.backward()
        return loss

    if needs_closure(optimizer):
        optimizer.step(closure)
    else:
        closure()
        optimizer.step()
    step_scheduler(scheduler, METRICS[step])
    lrs = [float(g["lr"]) for g in optimizer.param_groups]
    assert all(math.isfinite(lr) and lr >= 0 for lr in lrs), lrs
    return lrs


def params_of(task: Task) -> list[torch.Tensor]:
    return [p.detach().clone() for p in task.model.parameters()]


def _uint8_state(optimizer: Any) -> bool:
    def walk(obj: Any) -> Iterator[torch.Tensor]:
        if isinstance(obj, torch.Tensor):
            yield obj
        elif isinstance(obj, dict):
            for v in obj.values():
                yield from walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                yield from walk(v)

    return any(t.dtype == torch.uint8 for t in walk(optimizer.state_dict()["state"]))


def _assert_same_state(a: Any, b: Any, where: str = "state") -> None:
    """Recursively compare two state dicts: tensors with torch.equal, the rest with ==."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype, where
        assert a.shape == b.shape, where
        assert torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict), where
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same_state(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)), where
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float), where
        assert math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


ORDERS = ("build-then-load", "optimizer-state-first")


def check_resume(
    opt_name: str,
    sched_name: str,
    kwargs: dict[str, Any] | None = None,
    *,
    dedicated: bool = False,
    order: str = "build-then-load",
) -> None:
    """Run straight, and resumed from a checkpoint at step N_BEFORE; both must agree.

    ``order`` is how the resumed run builds and loads: ``"build-then-load"`` builds the
    optimizer and the scheduler, then loads both; ``"optimizer-state-first"`` builds the
    optimizer and loads its state before it builds the scheduler and loads that (where
    a bare ``LambdaLR`` resumes its first step at the step-0 lr).
    """
    _skip_unavailable(optreg.optimizers, opt_name)
    _skip_unavailable(optreg.schedulers, sched_name)
    only = SCHED_ONLY_FOR.get(sched_name)
    if only is not None and opt_name not in only and not dedicated:
        pytest.skip(f"schedule {sched_name!r} is tested with {sorted(only) or 'its own test'}")

    with _documented_warnings(opt_name):
        # the uninterrupted run
        ref = make_task(opt_name)
        ref_opt, ref_sched = build(opt_name, sched_name, ref, kwargs)
        ref_lrs = [train_step(s, ref, ref_opt, ref_sched) for s in range(TOTAL)]
        ref_params = params_of(ref)

        # the interrupted run: N steps, checkpoint through bytes, fresh objects, M steps
        run = make_task(opt_name)
        opt, sched = build(opt_name, sched_name, run, kwargs)
        lrs = [train_step(s, run, opt, sched) for s in range(N_BEFORE)]
        if "8bit" in opt_name:
            assert _uint8_state(opt), f"{opt_name}: no uint8 state after {N_BEFORE} steps"
        buf = io.BytesIO()
        torch.save(
            {
                "model": run.model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
            },
            buf,
        )
        del run, opt, sched
        buf.seek(0)
        ckpt = torch.load(buf, weights_only=True)

        resumed = make_task(opt_name)
        resumed.model.load_state_dict(ckpt["model"])
        if order == "build-then-load":
            opt, sched = build(opt_name, sched_name, resumed, kwargs)
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["scheduler"])
        else:
            opt = build_optimizer(opt_name, resumed, kwargs)
            opt.load_state_dict(ckpt["optimizer"])
            sched = build_scheduler(sched_name, opt)
            sched.load_state_dict(ckpt["scheduler"])
        assert [float(g["lr"]) for g in opt.param_groups] == lrs[-1], "lrs as loaded"
        lrs += [train_step(s, resumed, opt, sched) for s in range(N_BEFORE, TOTAL)]

    assert lrs == ref_lrs, f"learning rates differ:\n{lrs}\n{ref_lrs}"
    for i, (p, q) in enumerate(zip(params_of(resumed), ref_params, strict=True)):
        assert torch.equal(p, q), (
            f"{opt_name} x {sched_name}: parameter {i} differs after resume, "
            f"max abs diff {(p - q).abs().max().item():.3g}"
        )
    _assert_same_state(opt.state_dict(), ref_opt.state_dict(), "optimizer")
    _assert_same_state(sched.state_dict(), ref_sched.state_dict(), "scheduler")


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("order", ORDERS)
def test_resume_is_bit_identical(opt_name: str, sched_name: str, order: str) -> None:
    """The full cross product: every optimizer name x every schedule name x both orders."""
    check_resume(opt_name, sched_name, order=order)


@pytest.mark.parametrize("order", ORDERS)
def test_adafactor_default_resumes_exactly(order: str) -> None:
    """Adafactor with its defaults (relative step, parameter scaling) and its schedule."""
    if "adafactor" not in optreg.list_optimizers():
        pytest.skip("no adafactor optimizer registered")
    if "adafactor" not in optreg.list_schedulers():
        pytest.skip("no adafactor schedule registered")
    # lr=None: an lr-scaling LambdaLR schedule cannot drive it (as in transformers)
    check_resume("adafactor", "adafactor", {}, dedicated=True, order=order)


def test_listing_is_covered() -> None:
    """The parametrisation above sees the builtins the design names (when present)."""
    names = set(optreg.list_optimizers())
    assert {"adamw", "sgd"} <= names
    assert {"constant", "linear", "cosine"} <= set(optreg.list_schedulers())


def test_checkpoint_holds_only_weights_only_types(sched_name: str) -> None:
    """A scheduler's state_dict needs no pickled code: it loads with weights_only=True."""
    _skip_unavailable(optreg.schedulers, sched_name)
    opt_name = "adafactor" if sched_name == "adafactor" else "sgd"
    task = make_task(opt_name)
    with _documented_warnings(opt_name):
        optimizer, scheduler = build(opt_name, sched_name, task, {})
        for s in range(2):
            train_step(s, task, optimizer, scheduler)
    state = scheduler.state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    _assert_same_state(loaded, state, "scheduler")
