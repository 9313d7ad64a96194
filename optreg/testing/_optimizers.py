"""The optimizer contract: `check_optimizer()` and its checks, each on the kit's fixed
problem (the scheduler contract is `optreg.testing._schedulers`)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optreg._core.signature import requires
from optreg.testing._common import (
    DEFAULT_LR,
    DESCENT_STEPS,
    OPTIMIZER_CHECKS,
    RESUME_AFTER,
    RESUME_BEFORE,
    Problem,
    Report,
    check_skip_names,
    clone_units,
    max_diff,
    pick,
    resolve_target,
    roundtrip,
    seeded,
)

if TYPE_CHECKING:
    import torch

    from optreg._core.entry import Entry


__all__ = ["STEPS", "OptSpec", "Runner", "check_optimizer"]


@dataclass
class OptSpec:
    label: str
    factory: Callable[..., Any]
    kwargs: dict[str, Any]
    requires_closure: bool
    sparse_grad: bool
    create_graph: bool
    train_eval: bool | None
    skip_checks: dict[str, str]
    param_groups: bool = True
    matrices_only: bool = False


class Runner:
    """Builds and trains optimizers of one spec on the fixed problem."""

    def __init__(self, spec: OptSpec) -> None:
        self.spec = spec
        self.problem = Problem(sparse=spec.sparse_grad, matrices=spec.matrices_only)

    def build(self, params: Any, what: str, **extra: Any) -> Any:
        import torch

        kwargs = {**self.spec.kwargs, **extra}
        try:
            opt: Any = self.spec.factory(params, **kwargs)
        except Exception as e:
            raise AssertionError(
                f"{self.spec.label}: building the optimizer {what} with kwargs {kwargs!r} "
                f"raised {type(e).__name__}: {e}"
            ) from e
        if not isinstance(opt, torch.optim.Optimizer):
            raise AssertionError(
                f"{self.spec.label}: the factory returned {type(opt).__module__}."
                f"{type(opt).__qualname__}, which is not a torch.optim.Optimizer "
                "(LR schedulers and trainers need one)"
            )
        if self._uses_train_eval(opt):
            self._call(getattr(opt, "train"), "optimizer.train() right after construction")  # noqa: B009
        return opt

    def _uses_train_eval(self, opt: Any) -> bool:
        if self.spec.train_eval is not None:
            return self.spec.train_eval
        return callable(getattr(opt, "train", None)) and callable(getattr(opt, "eval", None))

    def closure_for(
        self, opt: Any, units: Sequence[Sequence[torch.Tensor]], seen: list[float] | None = None
    ) -> Callable[[], torch.Tensor]:
        import torch

        def closure() -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            with torch.enable_grad():
                loss = self.problem.loss(units)
                if self.spec.create_graph:
                    with warnings.catch_warnings():
                        # torch warns about the param <-> grad reference cycle
                        warnings.simplefilter("ignore", UserWarning)
                        loss.backward(create_graph=True)  # type: ignore[no-untyped-call]
                else:
                    loss.backward()  # type: ignore[no-untyped-call]
            if seen is not None:
                seen.append(float(loss.detach()))
            return loss

        return closure

    def step(self, opt: Any, units: Sequence[Sequence[torch.Tensor]], what: str) -> None:
        closure = self.closure_for(opt, units)
        try:
            if self.spec.requires_closure:
                opt.step(closure)
            else:
                closure()
                opt.step()
        except Exception as e:
            raise AssertionError(
                f"{self.spec.label}: optimizer.step() raised {type(e).__name__}: {e} ({what})"
            ) from e

    def loss_value(self, units: Sequence[Sequence[torch.Tensor]]) -> float:
        import torch

        with torch.no_grad():
            return float(self.problem.loss(units))

    def to_eval(self, opt: Any) -> None:
        if self._uses_train_eval(opt):
            self._call(opt.eval, "optimizer.eval()")

    def to_train(self, opt: Any) -> None:
        if self._uses_train_eval(opt):
            self._call(opt.train, "optimizer.train()")

    def _call(self, fn: Callable[[], Any], what: str) -> None:
        try:
            fn()
        except Exception as e:
            raise AssertionError(f"{self.spec.label}: {what} raised {type(e).__name__}: {e}") from e


# --------------------------------------------------------------------------
# optimizer checks
# --------------------------------------------------------------------------
def _check_build_from_params(run: Runner) -> None:
    unit, frozen = run.problem.unit(), run.problem.frozen()
    opt = run.build([*unit, frozen], "from a list of tensors")
    groups = opt.param_groups
    got = [p for g in groups for p in g["params"]]
    if (
        len(groups) != 1
        or len(got) != 3
        or any(a is not b for a, b in zip(got, [*unit, frozen], strict=False))
    ):
        raise AssertionError(
            f"{run.spec.label}: built from a list of 3 tensors, the optimizer has "
            f"{len(groups)} param group(s) holding {len(got)} parameter(s); expected 1 group "
            "holding exactly those tensors, in order"
        )


def _check_build_from_groups(run: Runner) -> str | None:
    if not run.spec.param_groups:
        return "the optimizer supports a single param group only"
    unit, frozen = run.problem.unit(), run.problem.frozen()
    opt = run.build([{"params": unit}, {"params": [frozen]}], "from 2 param groups")
    groups = opt.param_groups
    if len(groups) != 2 or [len(g["params"]) for g in groups] != [2, 1]:
        raise AssertionError(
            f"{run.spec.label}: built from 2 param groups of 2 and 1 tensors, the optimizer "
            f"has {len(groups)} group(s) of sizes {[len(g['params']) for g in groups]}"
        )
    for i, group in enumerate(groups):
        missing = sorted(k for k in opt.defaults if k not in group)
        if missing:
            raise AssertionError(
                f"{run.spec.label}: param group {i} lacks the default hyperparameter(s) "
                f"{missing}; every group must carry every key of optimizer.defaults"
            )
    return None


def _positive(lr: Any) -> float | None:
    try:
        value = float(lr)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _numeric_lr(opt: Any) -> float | None:
    """``optimizer.defaults['lr']``, or else the lr of a group built without one (some
    optimizers keep ``lr`` in their groups only); None when neither is a positive number."""
    first = opt.param_groups[0] if opt.param_groups else {}
    return _positive(opt.defaults.get("lr")) or _positive(first.get("lr"))


def _check_per_group_lr(run: Runner) -> str | None:
    """Two param groups, identical parameters and gradients, different ``lr``.

    Group 1 gets ``lr=0.0`` (or ``lr/10`` when the optimizer rejects 0): its
    updates must differ from group 0's. (``lr=0`` need not freeze a group: Rprop,
    for one, clamps its step size to a minimum.) Returns a skip reason, or None.
    """
    import torch

    if not run.spec.param_groups:
        return "the optimizer supports a single param group only"
    probe = run.build([run.problem.unit()[0]], "to read its defaults")
    base = _numeric_lr(probe)
    if base is None:
        group_lr = probe.param_groups[0].get("lr", "(absent)") if probe.param_groups else None
        return (
            f"optimizer.defaults['lr'] is {probe.defaults.get('lr', '(absent)')!r} and a "
            f"group's is {group_lr!r}, not a positive number: per-group lr cannot be checked"
        )
    label = run.spec.label
    for other_lr in (0.0, base * 0.1):
        with seeded():
            first, second = run.problem.unit(), run.problem.unit()
            groups = [{"params": first}, {"params": second, "lr": other_lr}]
            try:
                opt = run.build(groups, f"with param group 1 at lr={other_lr}")
                start = [[p.detach().clone() for p in u] for u in (first, second)]
                for i in range(3):
                    run.step(opt, [first, second], f"per-group lr check, step {i + 1}")
            except AssertionError:
                if other_lr == 0.0:
                    continue  # lr=0 rejected or unsupported: compare two positive lrs instead
                raise
        moved = max(max_diff(p, p0) for p, p0 in zip(first, start[0], strict=True))
        if moved == 0.0:
            raise AssertionError(
                f"{label}: with lr={base} the parameters of param group 0 did not move in 3 "
                "steps on a problem with non-zero gradients"
            )
        deltas = [
            [p.detach() - p0 for p, p0 in zip(u, u0, strict=True)]
            for u, u0 in zip((first, second), start, strict=True)
        ]
        if all(torch.equal(a, b) for a, b in zip(*deltas, strict=True)):
            raise AssertionError(
                f"{label}: param group 0 (lr={base}) and param group 1 (lr={other_lr}) got "
                "identical updates from identical parameters and gradients in 3 steps: the "
                "optimizer ignores the per-group 'lr'; read hyperparameters from each param "
                "group, not from optimizer.defaults"
            )
        return None
    return None  # pragma: no cover - the loop always returns


def _check_no_grad_untouched(run: Runner) -> None:
    with seeded():
        unit, frozen = run.problem.unit(), run.problem.frozen()
        before = frozen.detach().clone()
        opt = run.build([*unit, frozen], "with a parameter that gets no gradient")
        for i in range(3):
            run.step(opt, [unit], f"no-grad check, step {i + 1}")
    if frozen.grad is not None or not _equal(frozen, before):
        raise AssertionError(
            f"{run.spec.label}: a parameter whose .grad is None changed by up to "
            f"{max_diff(frozen, before):.3g} in 3 steps; parameters without a gradient must "
            "be skipped (no weight decay, no momentum update)"
        )


def _equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    import torch

    return bool(torch.equal(a.detach(), b.detach()))


def _check_closure_returns_loss(run: Runner) -> None:
    with seeded():
        unit = run.problem.unit()
        opt = run.build(unit, "for the closure check")
        seen: list[float] = []
        closure = run.closure_for(opt, [unit], seen)
        try:
            ret = opt.step(closure)
        except Exception as e:
            raise AssertionError(
                f"{run.spec.label}: optimizer.step(closure) raised {type(e).__name__}: {e}"
            ) from e
    label = run.spec.label
    if not seen:
        raise AssertionError(f"{label}: optimizer.step(closure) never called the closure")
    if ret is None:
        raise AssertionError(
            f"{label}: optimizer.step(closure) returned None; it must return the loss the "
            f"closure returned ({seen[0]!r})"
        )
    try:
        value = float(ret.detach() if hasattr(ret, "detach") else ret)
    except (TypeError, ValueError, RuntimeError) as e:
        raise AssertionError(
            f"{label}: optimizer.step(closure) returned {type(ret).__name__} {ret!r}, not the "
            "loss the closure returned"
        ) from e
    if value != seen[0]:
        raise AssertionError(
            f"{label}: optimizer.step(closure) returned {value!r}, but the closure's loss was "
            f"{seen[0]!r}"
        )


def _check_loss_decreases(run: Runner) -> None:
    with seeded():
        unit = run.problem.unit()
        opt = run.build(unit, "for the descent check")
        initial = run.loss_value([unit])
        for i in range(DESCENT_STEPS):
            run.step(opt, [unit], f"descent check, step {i + 1}")
            current = run.loss_value([unit])
            if not math.isfinite(current):
                raise AssertionError(
                    f"{run.spec.label}: the loss became {current} after {i + 1} step(s) on a "
                    f"convex least-squares problem (initial loss {initial:.6g})"
                )
        run.to_eval(opt)
        final = run.loss_value([unit])
    if not final < initial:
        raise AssertionError(
            f"{run.spec.label}: the loss did not decrease on a convex least-squares problem: "
            f"{initial:.6g} before, {final:.6g} after {DESCENT_STEPS} steps with kwargs "
            f"{run.spec.kwargs!r}"
        )


def _check_resume(run: Runner) -> None:
    label = run.spec.label

    def groups_of(unit: Sequence[torch.Tensor], frozen: torch.Tensor) -> list[dict[str, Any]]:
        if not run.spec.param_groups:
            return [{"params": [*unit, frozen]}]
        return [{"params": list(unit)}, {"params": [frozen]}]

    # the reference: never stopping (with the same eval/train round trip at the split)
    with seeded():
        ref_unit, ref_frozen = run.problem.unit(), run.problem.frozen()
        ref = run.build(groups_of(ref_unit, ref_frozen), "for the resume check")
        for i in range(RESUME_BEFORE):
            run.step(ref, [ref_unit], f"resume check, reference step {i + 1}")
        run.to_eval(ref)
        run.to_train(ref)
        for i in range(RESUME_AFTER):
            run.step(ref, [ref_unit], f"resume check, reference step {RESUME_BEFORE + i + 1}")
    # stop after RESUME_BEFORE steps, save, load into a fresh instance, continue
    with seeded():
        unit, frozen = run.problem.unit(), run.problem.frozen()
        opt = run.build(groups_of(unit, frozen), "for the resume check")
        for i in range(RESUME_BEFORE):
            run.step(opt, [unit], f"resume check, step {i + 1}")
        run.to_eval(opt)
        saved = roundtrip(opt.state_dict(), label, "optimizer")
        (new_unit, [new_frozen]) = clone_units([unit, [frozen]])
        del opt, unit, frozen
        fresh = run.build(groups_of(new_unit, new_frozen), "fresh, for resuming")
        try:
            fresh.load_state_dict(saved)
        except Exception as e:
            raise AssertionError(
                f"{label}: load_state_dict() of a fresh instance with the saved state raised "
                f"{type(e).__name__}: {e}"
            ) from e
        run.to_train(fresh)
        for i in range(RESUME_AFTER):
            run.step(fresh, [new_unit], f"after resuming, step {RESUME_BEFORE + i + 1}")
    for i, (got, want) in enumerate(
        zip([*new_unit, new_frozen], [*ref_unit, ref_frozen], strict=True)
    ):
        if not _equal(got, want):
            raise AssertionError(
                f"{label}: resuming is not exact: after state_dict -> torch.save -> "
                "torch.load(weights_only=True) -> load_state_dict into a fresh instance and "
                f"{RESUME_AFTER} more steps, parameter {i} (shape {tuple(got.shape)}) differs "
                f"from never stopping by up to {max_diff(got, want):.3g}; the state_dict "
                "must hold everything the update depends on (e.g. a step counter kept outside "
                "optimizer.state is lost)"
            )


#: The checks in the order they run: (name in OPTIMIZER_CHECKS, check); a check returns
#: a reason when it does not apply, None when it passed, and raises AssertionError.
STEPS: tuple[tuple[str, Callable[[Runner], str | None]], ...] = (
    ("build_from_params", _check_build_from_params),
    ("build_from_param_groups", _check_build_from_groups),
    ("per_group_lr", _check_per_group_lr),
    ("no_grad_untouched", _check_no_grad_untouched),
    ("closure_returns_loss", _check_closure_returns_loss),
    ("loss_decreases", _check_loss_decreases),
    ("resume_bit_identical", _check_resume),
)


def check_optimizer(
    name_or_factory: str | Entry | Callable[..., Any],
    /,
    *,
    requires_closure: bool | None = None,
    param_groups: bool | None = None,
    sparse_grad: bool | None = None,
    create_graph: bool | None = None,
    train_eval: bool | None = None,
    skip_checks: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Report:
    """Run the optimizer contract checks; raise AssertionError on the first violation.

    Args:
        name_or_factory: a registered name (plain or ``dist:name``), an
            [Entry][optreg.Entry], or a factory ``(params, **kwargs) -> Optimizer``.
        requires_closure: drive every step with ``step(closure)``; default: the
            entry's metadata, else False.
        param_groups: False for an optimizer that supports one param group only.
        sparse_grad: train on a problem with sparse gradients.
        create_graph: call ``backward(create_graph=True)``.
        train_eval: call ``optimizer.train()`` / ``.eval()`` (schedule-free style);
            default: metadata, else whether the optimizer has both methods.
        skip_checks: ``{check name: reason}`` for checks that do not apply
            (names in `OPTIMIZER_CHECKS`).
        **kwargs: hyperparameters passed to every construction (e.g. ``lr=0.01``);
            a factory whose ``lr`` has no default gets ``lr=0.01``.

    Returns:
        A `Report` of the checks that passed and those skipped.

    Raises:
        AssertionError: a contract violation, with a message saying which and how.
        TypeError: ``name_or_factory`` is neither a string nor callable, or a bad
            ``skip_checks`` key.
        UnknownNameError: no optimizer has that name.
    """
    label, factory, needs = resolve_target("optimizer", name_or_factory)
    skips = {**dict(needs.get("skip_checks") or {}), **dict(skip_checks or {})}
    check_skip_names(skips, OPTIMIZER_CHECKS)
    spec = OptSpec(
        label=label,
        factory=factory,
        kwargs={**dict(needs.get("kwargs") or {}), **kwargs},
        requires_closure=pick(requires_closure, needs, "requires_closure"),
        sparse_grad=pick(sparse_grad, needs, "sparse_grad"),
        create_graph=pick(create_graph, needs, "create_graph"),
        train_eval=train_eval if train_eval is not None else needs.get("needs_train_eval"),
        skip_checks=skips,
        param_groups=param_groups
        if param_groups is not None
        else bool(needs.get("param_groups", True)),
        matrices_only=bool(needs.get("matrices_only", False)),
    )
    if "lr" not in spec.kwargs and requires(factory, "lr"):
        spec.kwargs["lr"] = DEFAULT_LR
    run = Runner(spec)
    report = Report(label, skipped=dict(skips))
    for check, fn in STEPS:
        if check in skips:
            continue
        reason = fn(run)
        if reason:
            report.skipped[check] = reason
        else:
            report.passed.append(check)
    return report
