"""Conformance checks for optimizer and scheduler plugins, and a pytest plugin running them.

A plugin author checks a name (or a factory) with one call::

    from optreg.testing import check_optimizer, check_scheduler

    def test_my_optimizer():
        check_optimizer("signsgd", lr=0.01)

    def test_my_schedule():
        check_scheduler("my_schedule")

or every installed name at once, from the command line (this module is a pytest
plugin registered through the ``pytest11`` entry point)::

    pytest --optreg-conformance                         # every installed name
    pytest --optreg-conformance --optreg-provider=my-dist   # just my distribution's names
    pytest --optreg-names=signsgd,my_schedule            # just these names

Each check is deterministic (fixed seeds, a fixed convex least-squares problem)
and raises :class:`AssertionError` with a precise message on the first violation.

Optimizer checks: builds from a list of tensors and from param groups (every group
gets the defaults); per-group ``lr`` is honoured; a parameter without a gradient
is left untouched; ``step(closure)`` returns the closure's loss; the loss decreases;
``state_dict -> torch.save -> torch.load(weights_only=True) -> load_state_dict`` into
a fresh instance, then continuing, is bit-identical to never stopping.

Scheduler checks: builds on an optimizer with two param groups; every learning rate
is a finite number >= 0 at every step; the same resume check (optimizer and
scheduler state saved and restored); the scheduler pickles and the copy continues
identically.

What a name needs to be checked is read from its entry's metadata under the key
``"conformance"`` (a mapping), e.g. ``metadata={"conformance": {"requires_closure":
True}}``. Recognised keys:

* ``skip``: a reason; the name is not checked by the pytest plugin.
* ``kwargs``: keyword arguments for building the optimizer or the scheduler.
* ``requires_closure``: every step is ``optimizer.step(closure)`` (e.g. LBFGS).
* ``sparse_grad``: the problem produces sparse gradients (e.g. SparseAdam).
* ``create_graph``: ``backward(create_graph=True)`` (Hessian-based optimizers).
* ``needs_train_eval`` (top-level metadata key too): call ``optimizer.train()``
  before training steps and ``optimizer.eval()`` before saving (schedule-free).
* ``param_groups``: False for an optimizer that supports a single param group
  (e.g. LBFGS): the param-group checks are skipped.
* ``skip_checks``: ``{check name: reason}`` for checks that do not apply.
* ``optimizer`` / ``optimizer_kwargs`` (schedulers): the optimizer name to
  schedule instead of ``torch.optim.SGD`` (e.g. ``"adafactor"``).
* ``metric_driven`` (schedulers): ``step(metric)``; detected from the signature
  of ``step`` when not given.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import math
import pickle
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

try:  # the pytest plugin part needs pytest; the checks do not
    import pytest
except ImportError:  # pragma: no cover - pytest is in optreg[test]
    pytest = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import torch

    from optreg._registry import Entry

__all__ = [
    "METADATA_KEY",
    "OPTIMIZER_CHECKS",
    "SCHEDULER_CHECKS",
    "Report",
    "check_optimizer",
    "check_scheduler",
]

#: The metadata key under which an entry declares what its checks need.
METADATA_KEY = "conformance"

OPTIMIZER_CHECKS = (
    "build_from_params",
    "build_from_param_groups",
    "per_group_lr",
    "no_grad_untouched",
    "closure_returns_loss",
    "loss_decreases",
    "resume_bit_identical",
)
SCHEDULER_CHECKS = (
    "build",
    "finite_non_negative_lr",
    "resume_bit_identical",
    "picklable",
)

#: What builtin names need (their entries are registered by optreg's own plugins;
#: metadata given there wins over this table).
_BUILTIN_NEEDS: dict[tuple[str, str], dict[str, Any]] = {
    ("optimizer", "lbfgs"): {"requires_closure": True, "param_groups": False},
    ("optimizer", "sparse_adam"): {"sparse_grad": True},
    # bitsandbytes: SGD8bit / LARS8bit refuse momentum=0 (their default)
    ("optimizer", "sgd_8bit"): {"kwargs": {"momentum": 0.9}},
    ("optimizer", "lars_8bit"): {"kwargs": {"momentum": 0.9}},
    ("scheduler", "adafactor"): {"optimizer": "adafactor"},
    ("scheduler", "cosine_with_min_lr"): {"kwargs": {"min_lr_rate": 0.1}},
    ("scheduler", "cosine_warmup_with_min_lr"): {"kwargs": {"min_lr_rate": 0.1}},
    ("scheduler", "warmup_stable_decay"): {"kwargs": {"num_decay_steps": 5}},
}

_SEED = 0
_DEFAULT_LR = 0.01  # for factories whose ``lr`` has no default
_RESUME_BEFORE = 3
_RESUME_AFTER = 3
_DESCENT_STEPS = 20
_SCHED_WARMUP = 3
_SCHED_TRAINING = 20
_SCHED_STEPS = 24
_SCHED_SPLIT = 10


@dataclass
class Report:
    """What a check run did: the checks that passed and the ones skipped, with reasons."""

    name: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------
# the problem: convex least squares, fixed data
# --------------------------------------------------------------------------
class _Problem:
    """``mean((X @ W + b - Y) ** 2)`` per unit ``(W, b)``; sparse: two embedding tables."""

    def __init__(self, *, sparse: bool) -> None:
        import torch

        self.sparse = sparse
        gen = torch.Generator().manual_seed(_SEED)
        self.x = torch.randn(8, 4, generator=gen)
        self.y = torch.randn(8, 3, generator=gen)
        self.w0 = torch.randn(4, 3, generator=gen) * 0.5
        self.b0 = torch.randn(3, generator=gen) * 0.5
        self.e0 = torch.randn(6, 3, generator=gen) * 0.5
        self.f0 = torch.randn(5, 3, generator=gen) * 0.5
        self.idx_e = torch.tensor([0, 1, 2, 3, 4, 5, 0, 2])
        self.idx_f = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])

    def unit(self) -> list[torch.Tensor]:
        """Fresh leaf tensors holding the initial values of one unit."""
        first, second = (self.e0, self.f0) if self.sparse else (self.w0, self.b0)
        return [first.clone().requires_grad_(True), second.clone().requires_grad_(True)]

    def frozen(self) -> torch.Tensor:
        """A parameter that no loss uses: its ``.grad`` stays None."""
        return self.b0.clone().add_(1.0).requires_grad_(True)

    def loss(self, units: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
        import torch.nn.functional as F

        total = None
        for first, second in units:
            if self.sparse:
                pred = F.embedding(self.idx_e, first, sparse=True) + F.embedding(
                    self.idx_f, second, sparse=True
                )
            else:
                pred = self.x @ first + second
            term = ((pred - self.y) ** 2).mean()
            total = term if total is None else total + term
        if total is None:  # pragma: no cover - callers always pass a unit
            raise ValueError("no unit to compute a loss for")
        return total


@dataclass
class _OptSpec:
    label: str
    factory: Callable[..., Any]
    kwargs: dict[str, Any]
    requires_closure: bool
    sparse_grad: bool
    create_graph: bool
    train_eval: bool | None
    skip_checks: dict[str, str]
    param_groups: bool = True


class _Runner:
    """Builds and trains optimizers of one spec on the fixed problem."""

    def __init__(self, spec: _OptSpec) -> None:
        self.spec = spec
        self.problem = _Problem(sparse=spec.sparse_grad)

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


@contextlib.contextmanager
def _seeded() -> Iterator[None]:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEED)
        yield


def _roundtrip(state: Any, label: str, what: str) -> Any:
    import torch

    buf = io.BytesIO()
    try:
        torch.save(state, buf)
        buf.seek(0)
        return torch.load(buf, weights_only=True)
    except Exception as e:
        raise AssertionError(
            f"{label}: {what}.state_dict() does not survive torch.save -> "
            f"torch.load(weights_only=True): {type(e).__name__}: {e}. Keep only tensors, "
            "numbers, strings, None, lists, tuples and dicts in the state "
            "(no functions, lambdas or custom objects)"
        ) from e


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    import torch

    if a.is_sparse:
        a = a.to_dense()
    if b.is_sparse:
        b = b.to_dense()
    return float(torch.max(torch.abs(a.detach().double() - b.detach().double())))


def _clone_units(units: Sequence[Sequence[torch.Tensor]]) -> list[list[torch.Tensor]]:
    return [[p.detach().clone().requires_grad_(True) for p in unit] for unit in units]


# --------------------------------------------------------------------------
# optimizer checks
# --------------------------------------------------------------------------
def _check_build_from_params(run: _Runner) -> None:
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


def _check_build_from_groups(run: _Runner) -> str | None:
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


def _numeric_lr(opt: Any) -> float | None:
    lr = opt.defaults.get("lr")
    try:
        value = float(lr)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _check_per_group_lr(run: _Runner) -> str | None:
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
        return (
            f"optimizer.defaults['lr'] is {probe.defaults.get('lr', '(absent)')!r}, not a "
            "positive number: per-group lr cannot be checked"
        )
    label = run.spec.label
    for other_lr in (0.0, base * 0.1):
        with _seeded():
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
        moved = max(_max_diff(p, p0) for p, p0 in zip(first, start[0], strict=True))
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


def _check_no_grad_untouched(run: _Runner) -> None:
    with _seeded():
        unit, frozen = run.problem.unit(), run.problem.frozen()
        before = frozen.detach().clone()
        opt = run.build([*unit, frozen], "with a parameter that gets no gradient")
        for i in range(3):
            run.step(opt, [unit], f"no-grad check, step {i + 1}")
    if frozen.grad is not None or not _equal(frozen, before):
        raise AssertionError(
            f"{run.spec.label}: a parameter whose .grad is None changed by up to "
            f"{_max_diff(frozen, before):.3g} in 3 steps; parameters without a gradient must "
            "be skipped (no weight decay, no momentum update)"
        )


def _equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    import torch

    return bool(torch.equal(a.detach(), b.detach()))


def _check_closure_returns_loss(run: _Runner) -> None:
    with _seeded():
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


def _check_loss_decreases(run: _Runner) -> None:
    with _seeded():
        unit = run.problem.unit()
        opt = run.build(unit, "for the descent check")
        initial = run.loss_value([unit])
        for i in range(_DESCENT_STEPS):
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
            f"{initial:.6g} before, {final:.6g} after {_DESCENT_STEPS} steps with kwargs "
            f"{run.spec.kwargs!r}"
        )


def _check_resume(run: _Runner) -> None:
    label = run.spec.label

    def groups_of(unit: Sequence[torch.Tensor], frozen: torch.Tensor) -> list[dict[str, Any]]:
        if not run.spec.param_groups:
            return [{"params": [*unit, frozen]}]
        return [{"params": list(unit)}, {"params": [frozen]}]

    # the reference: never stopping (with the same eval/train round trip at the split)
    with _seeded():
        ref_unit, ref_frozen = run.problem.unit(), run.problem.frozen()
        ref = run.build(groups_of(ref_unit, ref_frozen), "for the resume check")
        for i in range(_RESUME_BEFORE):
            run.step(ref, [ref_unit], f"resume check, reference step {i + 1}")
        run.to_eval(ref)
        run.to_train(ref)
        for i in range(_RESUME_AFTER):
            run.step(ref, [ref_unit], f"resume check, reference step {_RESUME_BEFORE + i + 1}")
    # stop after _RESUME_BEFORE steps, save, load into a fresh instance, continue
    with _seeded():
        unit, frozen = run.problem.unit(), run.problem.frozen()
        opt = run.build(groups_of(unit, frozen), "for the resume check")
        for i in range(_RESUME_BEFORE):
            run.step(opt, [unit], f"resume check, step {i + 1}")
        run.to_eval(opt)
        saved = _roundtrip(opt.state_dict(), label, "optimizer")
        (new_unit, [new_frozen]) = _clone_units([unit, [frozen]])
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
        for i in range(_RESUME_AFTER):
            run.step(fresh, [new_unit], f"after resuming, step {_RESUME_BEFORE + i + 1}")
    for i, (got, want) in enumerate(
        zip([*new_unit, new_frozen], [*ref_unit, ref_frozen], strict=True)
    ):
        if not _equal(got, want):
            raise AssertionError(
                f"{label}: resuming is not exact: after state_dict -> torch.save -> "
                "torch.load(weights_only=True) -> load_state_dict into a fresh instance and "
                f"{_RESUME_AFTER} more steps, parameter {i} (shape {tuple(got.shape)}) differs "
                f"from never stopping by up to {_max_diff(got, want):.3g}; the state_dict "
                "must hold everything the update depends on (e.g. a step counter kept outside "
                "optimizer.state is lost)"
            )


def _entry_needs(entry: Entry) -> dict[str, Any]:
    needs = (
        dict(_BUILTIN_NEEDS.get((entry.kind, entry.name), {})) if entry.source == "builtin" else {}
    )
    meta = entry.metadata or {}
    declared = meta.get(METADATA_KEY) or {}
    if not isinstance(declared, Mapping):
        raise TypeError(
            f"{entry.kind} {entry.qualified_name!r}: metadata[{METADATA_KEY!r}] must be a "
            f"mapping, got {type(declared).__name__}: {declared!r}"
        )
    needs.update(declared)
    if "needs_train_eval" in meta and "needs_train_eval" not in needs:
        needs["needs_train_eval"] = meta["needs_train_eval"]
    return needs


def _resolve(kind: str, name_or_factory: Any) -> tuple[str, Callable[..., Any], dict[str, Any]]:
    from optreg._registry import Entry

    if isinstance(name_or_factory, (str, Entry)):
        from optreg._discovery import optimizers, schedulers

        registry = optimizers if kind == "optimizer" else schedulers
        entry = (
            name_or_factory
            if isinstance(name_or_factory, Entry)
            else registry.resolve(name_or_factory)
        )
        return f"{kind} {entry.qualified_name!r}", registry.load(entry), _entry_needs(entry)
    if not callable(name_or_factory):
        raise TypeError(
            f"check_{kind}() takes a {kind} name or a factory callable, got "
            f"{type(name_or_factory).__name__}: {name_or_factory!r}"
        )
    qual = getattr(name_or_factory, "__qualname__", type(name_or_factory).__qualname__)
    return f"{kind} factory {qual}", name_or_factory, {}


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
            :class:`~optreg.Entry`, or a factory ``(params, **kwargs) -> Optimizer``.
        requires_closure: drive every step with ``step(closure)``; default: the
            entry's metadata, else False.
        param_groups: False for an optimizer that supports one param group only.
        sparse_grad: train on a problem with sparse gradients.
        create_graph: call ``backward(create_graph=True)``.
        train_eval: call ``optimizer.train()`` / ``.eval()`` (schedule-free style);
            default: metadata, else whether the optimizer has both methods.
        skip_checks: ``{check name: reason}`` for checks that do not apply
            (names in :data:`OPTIMIZER_CHECKS`).
        **kwargs: hyperparameters passed to every construction (e.g. ``lr=0.01``);
            a factory whose ``lr`` has no default gets ``lr=0.01``.

    Returns:
        A :class:`Report` of the checks that passed and those skipped.

    Raises:
        AssertionError: a contract violation, with a message saying which and how.
        TypeError: ``name_or_factory`` is neither a string nor callable, or a bad
            ``skip_checks`` key.
        UnknownNameError: no optimizer has that name.
    """
    label, factory, needs = _resolve("optimizer", name_or_factory)
    skips = {**dict(needs.get("skip_checks") or {}), **dict(skip_checks or {})}
    _check_skip_names(skips, OPTIMIZER_CHECKS)
    spec = _OptSpec(
        label=label,
        factory=factory,
        kwargs={**dict(needs.get("kwargs") or {}), **kwargs},
        requires_closure=_pick(requires_closure, needs, "requires_closure"),
        sparse_grad=_pick(sparse_grad, needs, "sparse_grad"),
        create_graph=_pick(create_graph, needs, "create_graph"),
        train_eval=train_eval if train_eval is not None else needs.get("needs_train_eval"),
        skip_checks=skips,
        param_groups=param_groups
        if param_groups is not None
        else bool(needs.get("param_groups", True)),
    )
    if "lr" not in spec.kwargs and _requires(factory, "lr"):
        spec.kwargs["lr"] = _DEFAULT_LR
    run = _Runner(spec)
    report = Report(label, skipped=dict(skips))
    steps: list[tuple[str, Callable[[_Runner], str | None]]] = [
        ("build_from_params", _check_build_from_params),
        ("build_from_param_groups", _check_build_from_groups),
        ("per_group_lr", _check_per_group_lr),
        ("no_grad_untouched", _check_no_grad_untouched),
        ("closure_returns_loss", _check_closure_returns_loss),
        ("loss_decreases", _check_loss_decreases),
        ("resume_bit_identical", _check_resume),
    ]
    for check, fn in steps:
        if check in skips:
            continue
        reason = fn(run)
        if reason:
            report.skipped[check] = reason
        else:
            report.passed.append(check)
    return report


def _requires(factory: Callable[..., Any], arg: str) -> bool:
    try:
        param = inspect.signature(factory).parameters.get(arg)
    except (TypeError, ValueError):
        return False
    return param is not None and param.default is param.empty


def _reachable_name(name: str | Entry) -> str:
    if isinstance(name, str):
        return name
    # runtime names have no distribution to qualify them with
    return name.name if name.source == "runtime" else name.qualified_name


def _pick(given: bool | None, needs: Mapping[str, Any], key: str) -> bool:
    return bool(needs.get(key, False)) if given is None else given


def _check_skip_names(skips: Mapping[str, str], allowed: Sequence[str]) -> None:
    for key in skips:
        if key not in allowed:
            raise TypeError(
                f"unknown check name {key!r} in skip_checks; the checks are: {', '.join(allowed)}"
            )


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
        self.problem = _Problem(sparse=False)
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
            from optreg._plot import is_metric_driven

            self.metric_driven = is_metric_driven(sched)
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
            if self.metric_driven:
                sched.step(_metric(t))
            else:
                sched.step()
        except Exception as e:
            raise AssertionError(
                f"{self.spec.label}: scheduler.step() raised {type(e).__name__}: {e} (step {t + 1})"
            ) from e


def _check_scheduler_run(run: _SchedRun) -> list[list[float]]:
    with _seeded():
        opt, sched, units = run.make()
        history = [run.lrs(opt, "right after the scheduler was built")]
        for t in range(_SCHED_STEPS):
            run.step(opt, sched, units, t)
            history.append(run.lrs(opt, f"after scheduler step {t + 1}"))
    return history


def _check_scheduler_resume(run: _SchedRun, reference: list[list[float]]) -> None:
    label = run.spec.label
    with _seeded():
        opt, sched, units = run.make()
        missing = [m for m in ("state_dict", "load_state_dict") if not hasattr(sched, m)]
        if missing:
            raise AssertionError(
                f"{label}: the scheduler ({type(sched).__module__}.{type(sched).__qualname__}) "
                f"has no {' / '.join(m + '()' for m in missing)}: a run using it cannot be "
                "checkpointed and resumed"
            )
        for t in range(_SCHED_SPLIT):
            run.step(opt, sched, units, t)
        saved_opt = _roundtrip(opt.state_dict(), label, "the scheduled optimizer")
        saved = _roundtrip(sched.state_dict(), label, "scheduler")
        params = _clone_units(units)
        del opt, sched, units
        fresh_opt, fresh, fresh_units = run.make()
        for target, source in zip(fresh_units, params, strict=True):
            for p, q in zip(target, source, strict=True):
                with _no_grad():
                    p.copy_(q)
        try:
            fresh_opt.load_state_dict(saved_opt)
            fresh.load_state_dict(saved)
        except Exception as e:
            raise AssertionError(
                f"{label}: load_state_dict() of a fresh scheduler with the saved state raised "
                f"{type(e).__name__}: {e}"
            ) from e
        got = run.lrs(fresh_opt, f"right after resuming at step {_SCHED_SPLIT}")
        if got != reference[_SCHED_SPLIT]:
            raise AssertionError(
                f"{label}: resuming is not exact: right after loading the state saved at step "
                f"{_SCHED_SPLIT}, the learning rates are {got}, never stopping gives "
                f"{reference[_SCHED_SPLIT]}"
            )
        for t in range(_SCHED_SPLIT, _SCHED_STEPS):
            run.step(fresh_opt, fresh, fresh_units, t)
            got = run.lrs(fresh_opt, f"after scheduler step {t + 1} (resumed)")
            if got != reference[t + 1]:
                raise AssertionError(
                    f"{label}: resuming is not exact: after state_dict -> torch.save -> "
                    f"torch.load(weights_only=True) -> load_state_dict at step {_SCHED_SPLIT}, "
                    f"step {t + 1} gives learning rates {got}, never stopping gives "
                    f"{reference[t + 1]}; the scheduler's state_dict must hold everything "
                    "its schedule depends on"
                )


@contextlib.contextmanager
def _no_grad() -> Iterator[None]:
    import torch

    with torch.no_grad():
        yield


def _check_picklable(run: _SchedRun) -> None:
    label = run.spec.label
    with _seeded():
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
                if run.metric_driven:
                    s.step(_metric(t))
                else:
                    s.step()
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
    num_warmup_steps: int = _SCHED_WARMUP,
    num_training_steps: int = _SCHED_TRAINING,
    skip_checks: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Report:
    """Run the scheduler contract checks; raise AssertionError on the first violation.

    The scheduler drives ``torch.optim.SGD`` (lr 0.1 and 0.05 in two param groups)
    unless ``optimizer`` (or the entry's metadata) names another optimizer, for
    ``num_training_steps + 4`` steps of a fixed convex problem.

    Args:
        name_or_factory: a registered name (plain or ``dist:name``), an
            :class:`~optreg.Entry`, or a factory ``(optimizer, **kwargs) -> scheduler``.
        optimizer: an optimizer name or factory to schedule instead of SGD.
        optimizer_kwargs: keyword arguments for that optimizer.
        metric_driven: call ``step(metric)``; default: metadata, else True when
            ``scheduler.step`` has a required argument.
        num_warmup_steps: passed to schedules that take it.
        num_training_steps: passed to schedules that take it.
        skip_checks: ``{check name: reason}`` (names in :data:`SCHEDULER_CHECKS`).
        **kwargs: schedule-specific arguments.

    Returns:
        A :class:`Report` of the checks that passed and those skipped.

    Raises:
        AssertionError: a contract violation, with a message saying which and how.
        TypeError: ``name_or_factory`` is neither a string nor callable.
        UnknownNameError: no scheduler has that name.
    """
    import torch

    from optreg._registry import Entry

    label, factory, needs = _resolve("scheduler", name_or_factory)
    skips = {**dict(needs.get("skip_checks") or {}), **dict(skip_checks or {})}
    _check_skip_names(skips, SCHEDULER_CHECKS)
    sched_kwargs = {**dict(needs.get("kwargs") or {}), **kwargs}
    opt_choice = optimizer if optimizer is not None else needs.get("optimizer")
    opt_kwargs = {**dict(needs.get("optimizer_kwargs") or {}), **dict(optimizer_kwargs or {})}
    opt_factory: Callable[..., Any]
    if opt_choice is None:
        opt_factory, opt_label = torch.optim.SGD, "torch.optim.SGD"
        opt_kwargs = {"lr": 0.1, **opt_kwargs}
    elif isinstance(opt_choice, str):
        from optreg._api import get_optimizer_cls

        opt_factory, opt_label = get_optimizer_cls(opt_choice), f"optimizer {opt_choice!r}"
    else:
        opt_factory, opt_label = opt_choice, getattr(opt_choice, "__qualname__", repr(opt_choice))

    def make_optimizer(groups: list[dict[str, Any]]) -> Any:
        if "lr" in opt_kwargs and isinstance(opt_kwargs["lr"], float):
            groups[1]["lr"] = opt_kwargs["lr"] / 2
        return opt_factory(groups, **opt_kwargs)

    def build_scheduler(opt: Any) -> Any:
        if isinstance(name_or_factory, (str, Entry)):
            from optreg._api import get_scheduler

            return get_scheduler(
                _reachable_name(name_or_factory),
                opt,
                num_warmup_steps=num_warmup_steps,
                num_training_steps=num_training_steps,
                **sched_kwargs,
            )
        call = dict(sched_kwargs)
        try:
            params = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
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


# --------------------------------------------------------------------------
# the pytest plugin
# --------------------------------------------------------------------------
def _wanted(config: Any) -> bool:
    return bool(
        config.getoption("optreg_conformance")
        or config.getoption("optreg_names")
        or config.getoption("optreg_provider")
    )


def _split(raw: str | None) -> list[str]:
    return [x.strip() for x in (raw or "").split(",") if x.strip()]


def _selected_entries(config: Any) -> list[Entry]:
    from optreg._discovery import optimizers, schedulers
    from optreg._errors import OptregError
    from optreg._registry import normalize_dist

    names = _split(config.getoption("optreg_names"))
    providers = {normalize_dist(p) for p in _split(config.getoption("optreg_provider"))}
    entries: list[Entry] = []
    if names:
        for name in names:
            found = []
            errors = []
            for registry in (optimizers, schedulers):
                try:
                    found.append(registry.resolve(name))
                except (OptregError, KeyError, ValueError) as e:
                    errors.append(str(e))
            if not found:
                raise pytest.UsageError(f"--optreg-names: {name!r}: " + "; ".join(errors))
            entries.extend(found)
    else:
        entries = [*optimizers.entries(), *schedulers.entries()]
    if providers:
        entries = [e for e in entries if e.provider in providers]
    unique = {(e.kind, e.qualified_name): e for e in entries}
    return [unique[k] for k in sorted(unique)]


if pytest is not None:

    def pytest_addoption(parser: pytest.Parser) -> None:
        """Add the ``--optreg-*`` options."""
        group = parser.getgroup("optreg", "optreg conformance checks (optreg.testing)")
        group.addoption(
            "--optreg-conformance",
            action="store_true",
            default=False,
            help="add a conformance test for every installed optimizer and scheduler name",
        )
        group.addoption(
            "--optreg-names",
            default=None,
            metavar="NAMES",
            help="comma-separated names (plain or DIST:name) to check; implies "
            "--optreg-conformance",
        )
        group.addoption(
            "--optreg-provider",
            default=None,
            metavar="DISTS",
            help="check only names provided by these comma-separated distributions; "
            "implies --optreg-conformance",
        )

    class ConformanceItem(pytest.Item):
        """One conformance test: every check of one optimizer or scheduler entry."""

        def __init__(self, *, entry: Entry, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.entry = entry

        def runtest(self) -> None:
            """Skip unavailable or opted-out names; otherwise run the checks."""
            from optreg._discovery import optimizers, schedulers

            entry = self.entry
            registry = optimizers if entry.kind == "optimizer" else schedulers
            available, reason = registry.status(entry)
            if not available:
                pytest.skip(f"{entry.qualified_name} unavailable: {reason}")
            needs = _entry_needs(entry)
            if needs.get("skip"):
                pytest.skip(f"{entry.qualified_name}: {needs['skip']}")
            # a warning (e.g. "paged optimizers fall back on CPU") is reported in
            # pytest's warnings summary, not turned into a failure by -W error
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                if entry.kind == "optimizer":
                    check_optimizer(entry)
                else:
                    check_scheduler(entry)

        def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
            """Show the contract violation's message without a traceback."""
            if isinstance(excinfo.value, AssertionError):
                return str(excinfo.value)
            return super().repr_failure(excinfo, style=style)

        def reportinfo(self) -> tuple[Any, int | None, str]:
            """Where the test comes from, for pytest's report."""
            return (
                self.path,
                None,
                f"optreg conformance: {self.entry.kind} {self.entry.qualified_name}",
            )

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Append one conformance item per selected entry when asked to."""
        if not _wanted(config):
            return
        for entry in _selected_entries(config):
            test_name = f"{entry.kind}[{entry.qualified_name}]"
            items.append(
                ConformanceItem.from_parent(
                    session,
                    name=test_name,
                    nodeid=f"optreg-conformance::{test_name}",
                    entry=entry,
                )
            )
