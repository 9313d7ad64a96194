"""The optimizer contract checks (`check_optimizer()`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from optreg._core.signature import requires
from optreg.testing._common import (
    DEFAULT_LR,
    OPTIMIZER_CHECKS,
    Report,
    check_skip_names,
    pick,
    resolve_target,
)
from optreg.testing._optimizer_checks import STEPS, OptSpec, Runner

if TYPE_CHECKING:
    from optreg._core.entry import Entry

__all__ = ["check_optimizer"]


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
