"""The scheduler contract checks (`check_scheduler()`)."""

from __future__ import annotations

import math
import pickle
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optreg._core.signature import parameters, step_needs_metric, step_scheduler
from optreg.testing._common import (
    SCHED_SPLIT,
    SCHED_STEPS,
    SCHED_TRAINING,
    SCHED_WARMUP,
    SCHEDULER_CHECKS,
    Problem,
    Report,
    check_skip_names,
    clone_units,
    no_grad,
    reachable_name,
    resolve_target,
    roundtrip,
    seeded,
)

if TYPE_CHECKING:
    import torch

    from optreg._core.entry import Entry

__all__ = ["check_scheduler"]


# --------------------------------------------------------------------------
# scheduler checks
# --------------------------------------------------------------------------
@dataclass
class _SchedSpec:
    label: str
    build_scheduler: Callable[[Any], Any]
    optimizer: Callable[..., Any]
    optimizer_label: str
    metric_driven: bool | None


def _metric(step: int) -> float:
    # decreases for 5 steps, then plateaus: plateau logic gets exercised
    return max(1.0 - 0.1 * step, 0.5)


class _SchedRun:
    def __init__(self, spec: _SchedSpec) -> None:
        self.spec = spec
        self.problem = Problem(sparse=False)
        self.metric_driven = spec.metric_driven

    def make(self) -> tuple[Any, Any, list[list[torch.Tensor]]]:
        units = [self.problem.unit(), [self.problem.frozen()]]
        groups = [{"params": units[0]}, {"params": units[1]}]
        try:
            opt = self.spec.optimizer(groups)
        except Exception as e:
            raise AssertionError(
                f"{self.spec.label}: building the optimizer {self.spec.optimizer_label} to "
                f"schedule raised {type(e).__name__}: {e}"
            ) from e
        try:
            sched = self.spec.build_scheduler(opt)
        except Exception as e:
            raise AssertionError(
                f"{self.spec.label}: building the scheduler on {self.spec.optimizer_label} "
                f"with 2 param groups raised {type(e).__name__}: {e}"
            ) from e
        if self.metric_driven is None:
            self.metric_driven = step_needs_metric(sched)
        return opt, sched, units

    def lrs(self, opt: Any, when: str) -> list[float]:
        out: list[float] = []
        for i, group in enumerate(opt.param_groups):
            lr = group.get("lr")
            try:
                value = float(lr)
            except (TypeError, ValueError) as e:
                raise AssertionError(
                    f"{self.spec.label}: {when}, param group {i} has lr={lr!r}, not a number"
                ) from e
            if not math.isfinite(value) or value < 0:
                raise AssertionError(
                    f"{self.spec.label}: {when}, param group {i} has lr={value!r}; learning "
                    "rates must be finite and >= 0"
                )
            out.append(value)
        return out

    def step(self, opt: Any, sched: Any, units: list[list[torch.Tensor]], t: int) -> None:
        opt.zero_grad(set_to_none=True)
        loss = self.problem.loss([units[0]])
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        try:
            step_scheduler(sched, _metric(t), metric_driven=self.metric_driven)
        except Exception as e:
            raise AssertionError(
                f"{self.spec.label}: scheduler.step() raised {type(e).__name__}: {e} (step {t + 1})"
            ) from e


def _check_scheduler_run(run: _SchedRun) -> list[list[float]]:
    with seeded():
        opt, sched, units = run.make()
        history = [run.lrs(opt, "right after the scheduler was built")]
        for t in range(SCHED_STEPS):
            run.step(opt, sched, units, t)
            history.append(run.lrs(opt, f"after scheduler step {t + 1}"))
    return history


def _check_scheduler_resume(run: _SchedRun, reference: list[list[float]]) -> None:
    label = run.spec.label
    with seeded():
        opt, sched, units = run.make()
        missing = [m for m in ("state_dict", "load_state_dict") if not hasattr(sched, m)]
        if missing:
            raise AssertionError(
                f"{label}: the scheduler ({type(sched).__module__}.{type(sched).__qualname__}) "
                f"has no {' / '.join(m + '()' for m in missing)}: a run using it cannot be "
                "checkpointed and resumed"
            )
        for t in range(SCHED_SPLIT):
            run.step(opt, sched, units, t)
        saved_opt = roundtrip(opt.state_dict(), label, "the scheduled optimizer")
        saved = roundtrip(sched.state_dict(), label, "scheduler")
        params = clone_units(units)
        del opt, sched, units
        fresh_opt, fresh, fresh_units = run.make()
        for target, source in zip(fresh_units, params, strict=True):
            for p, q in zip(target, source, strict=True):
                with no_grad():
                    p.copy_(q)
        try:
            fresh_opt.load_state_dict(saved_opt)
            fresh.load_state_dict(saved)
        except Exception as e:
            raise AssertionError(
                f"{label}: load_state_dict() of a fresh scheduler with the saved state raised "
                f"{type(e).__name__}: {e}"
            ) from e
        got = run.lrs(fresh_opt, f"right after resuming at step {SCHED_SPLIT}")
        if got != reference[SCHED_SPLIT]:
            raise AssertionError(
                f"{label}: resuming is not exact: right after loading the state saved at step "
                f"{SCHED_SPLIT}, the learning rates are {got}, never stopping gives "
                f"{reference[SCHED_SPLIT]}"
            )
        for t in range(SCHED_SPLIT, SCHED_STEPS):
            run.step(fresh_opt, fresh, fresh_units, t)
            got = run.lrs(fresh_opt, f"after scheduler step {t + 1} (resumed)")
            if got != reference[t + 1]:
                raise AssertionError(
                    f"{label}: resuming is not exact: after state_dict -> torch.save -> "
                    f"torch.load(weights_only=True) -> load_state_dict at step {SCHED_SPLIT}, "
                    f"step {t + 1} gives learning rates {got}, never stopping gives "
                    f"{reference[t + 1]}; the scheduler's state_dict must hold everything "
                    "its schedule depends on"
                )


def _check_picklable(run: _SchedRun) -> None:
    label = run.spec.label
    with seeded():
        opt, sched, units = run.make()
        for t in range(3):
            run.step(opt, sched, units, t)
        try:
            blob = pickle.dumps(sched)
        except Exception as e:
            raise AssertionError(
                f"{label}: the scheduler is not picklable: {type(e).__name__}: {e}. "
                "Checkpointing and multiprocessing need it: bind a module-level function "
                "with functools.partial instead of a lambda or a closure"
            ) from e
        try:
            with warnings.catch_warnings():
                # torch < 2.6 unpickles tensors through torch.load(weights_only=False)
                # and says so with a FutureWarning; that is not the plugin's doing
                warnings.filterwarnings("ignore", category=FutureWarning, message=".*weights_only")
                copy = pickle.loads(blob)
        except Exception as e:
            raise AssertionError(
                f"{label}: the pickled scheduler cannot be unpickled: {type(e).__name__}: {e}"
            ) from e
        copy_opt = getattr(copy, "optimizer", None)
        if copy_opt is None:
            return
        opt.zero_grad(set_to_none=True)
        for t in range(3, 6):
            for o, s in ((opt, sched), (copy_opt, copy)):
                o.step()
                step_scheduler(s, _metric(t), metric_driven=run.metric_driven)
            want = run.lrs(opt, f"after step {t + 1}")
            got = run.lrs(copy_opt, f"after step {t + 1} of the unpickled copy")
            if got != want:
                raise AssertionError(
                    f"{label}: the unpickled scheduler diverges: after step {t + 1} it gives "
                    f"learning rates {got}, the original {want}"
                )


def check_scheduler(
    name_or_factory: str | Entry | Callable[..., Any],
    /,
    *,
    optimizer: str | Callable[..., Any] | None = None,
    optimizer_kwargs: Mapping[str, Any] | None = None,
    metric_driven: bool | None = None,
    num_warmup_steps: int = SCHED_WARMUP,
    num_training_steps: int = SCHED_TRAINING,
    skip_checks: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Report:
    """Run the scheduler contract checks; raise AssertionError on the first violation.

    The scheduler drives ``torch.optim.SGD`` (lr 0.1 and 0.05 in two param groups)
    unless ``optimizer`` (or the entry's metadata) names another optimizer, for
    ``num_training_steps + 4`` steps of a fixed convex problem.

    Args:
        name_or_factory: a registered name (plain or ``dist:name``), an
            [Entry][optreg.Entry], or a factory ``(optimizer, **kwargs) -> scheduler``.
        optimizer: an optimizer name or factory to schedule instead of SGD.
        optimizer_kwargs: keyword arguments for that optimizer.
        metric_driven: call ``step(metric)``; default: metadata, else True when
            ``scheduler.step`` has a required argument.
        num_warmup_steps: passed to schedules that take it.
        num_training_steps: passed to schedules that take it.
        skip_checks: ``{check name: reason}`` (names in `SCHEDULER_CHECKS`).
        **kwargs: schedule-specific arguments.

    Returns:
        A `Report` of the checks that passed and those skipped.

    Raises:
        AssertionError: a contract violation, with a message saying which and how.
        TypeError: ``name_or_factory`` is neither a string nor callable.
        UnknownNameError: no scheduler has that name.
    """
    import torch

    from optreg._core.entry import Entry

    label, factory, needs = resolve_target("scheduler", name_or_factory)
    skips = {**dict(needs.get("skip_checks") or {}), **dict(skip_checks or {})}
    check_skip_names(skips, SCHEDULER_CHECKS)
    sched_kwargs = {**dict(needs.get("kwargs") or {}), **kwargs}
    opt_choice = optimizer if optimizer is not None else needs.get("optimizer")
    opt_kwargs = {**dict(needs.get("optimizer_kwargs") or {}), **dict(optimizer_kwargs or {})}
    opt_factory: Callable[..., Any]
    if opt_choice is None:
        opt_factory, opt_label = torch.optim.SGD, "torch.optim.SGD"
        opt_kwargs = {"lr": 0.1, **opt_kwargs}
    elif isinstance(opt_choice, str):
        from optreg.optim import get_optimizer_cls

        opt_factory, opt_label = get_optimizer_cls(opt_choice), f"optimizer {opt_choice!r}"
    else:
        opt_factory, opt_label = opt_choice, getattr(opt_choice, "__qualname__", repr(opt_choice))

    def make_optimizer(groups: list[dict[str, Any]]) -> Any:
        if "lr" in opt_kwargs and isinstance(opt_kwargs["lr"], float):
            groups[1]["lr"] = opt_kwargs["lr"] / 2
        return opt_factory(groups, **opt_kwargs)

    def build_scheduler(opt: Any) -> Any:
        if isinstance(name_or_factory, (str, Entry)):
            from optreg._build.api import get_scheduler

            return get_scheduler(
                reachable_name(name_or_factory),
                opt,
                num_warmup_steps=num_warmup_steps,
                num_training_steps=num_training_steps,
                **sched_kwargs,
            )
        call = dict(sched_kwargs)
        params = parameters(factory) or {}
        for arg, value in (
            ("num_warmup_steps", num_warmup_steps),
            ("num_training_steps", num_training_steps),
        ):
            if arg in params:
                call.setdefault(arg, value)
        return factory(opt, **call)

    run = _SchedRun(
        _SchedSpec(
            label=label,
            build_scheduler=build_scheduler,
            optimizer=make_optimizer,
            optimizer_label=opt_label,
            metric_driven=metric_driven
            if metric_driven is not None
            else needs.get("metric_driven"),
        )
    )
    report = Report(label, skipped=dict(skips))
    reference = _check_scheduler_run(run)  # build + finite, non-negative lrs
    report.passed += ["build", "finite_non_negative_lr"]
    if "resume_bit_identical" not in skips:
        _check_scheduler_resume(run, reference)
        report.passed.append("resume_bit_identical")
    if "picklable" not in skips:
        _check_picklable(run)
        report.passed.append("picklable")
    return report
