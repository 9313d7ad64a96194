"""Hyperparameter schedules: any schedule name drives ``weight_decay`` or momentum as it
drives the lr ([optreg.get_scheduler][] with ``hyperparameter=``).

A schedule that is a function of the step (a ``LambdaLR``: every builtin but the
metric-driven ones, ``sequence`` included, and any plugin's of that kind) gives one
multiplier per param group; `HyperparameterScheduler` sets each group's
hyperparameter to its initial value (kept as ``initial_<name>`` in the group, as torch
keeps ``initial_lr``) times that multiplier, with the same warmup and phases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["HYPERPARAMETERS", "HyperparameterScheduler", "hyperparameter_scheduler", "slot"]

#: What a schedule can drive: ``momentum`` is a group's ``momentum`` (SGD, Muon) or, where
#: it has none, the first of its ``betas`` (Adam's beta1).
HYPERPARAMETERS = ("lr", "weight_decay", "momentum")


def slot(
    group: dict[str, Any], hyperparameter: str, index: int, label: str
) -> tuple[str, int | None]:
    """Where ``hyperparameter`` lives in a param group: ``(key, None)`` or ``("betas", 0)``.

    Raises:
        ValueError: a hyperparameter not in `HYPERPARAMETERS`, or one the group
            does not have (its keys are named).
    """
    if hyperparameter not in HYPERPARAMETERS:
        raise ValueError(
            f"{label}: hyperparameter={hyperparameter!r} is not one a schedule drives; use "
            f"one of {', '.join(map(repr, HYPERPARAMETERS))}"
        )
    if hyperparameter in group:
        return hyperparameter, None
    betas = group.get("betas")
    if hyperparameter == "momentum" and isinstance(betas, (tuple, list)) and betas:
        return "betas", 0
    keys = ", ".join(k for k in group if k != "params")
    raise ValueError(
        f"{label}: param group {index} has no {hyperparameter!r} to schedule (its options: "
        f"{keys}); choose a hyperparameter this optimizer has"
    )


def _read(group: dict[str, Any], where: tuple[str, int | None]) -> float:
    key, index = where
    value = group[key] if index is None else group[key][index]
    return float(value)


def _write(group: dict[str, Any], where: tuple[str, int | None], value: float) -> None:
    key, index = where
    held = group[key] if index is None else group[key][index]
    if isinstance(held, torch.Tensor):  # a tensor option keeps its identity (compile)
        held.fill_(value)
    elif index is None:
        group[key] = value
    else:
        old = group[key]
        group[key] = type(old)((*old[:index], value, *old[index + 1 :]))


class HyperparameterScheduler(LRScheduler):
    """Sets one hyperparameter of every param group to its initial value times the
    schedule's multiplier at the step (the lr is left to the lr schedule).

    Built by [optreg.get_scheduler][] with ``hyperparameter=``; it steps, saves and
    loads as torch's schedulers do (its ``state_dict`` holds the step and the initial
    values, not the functions), so several on one optimizer resume exactly.

    Attributes:
        hyperparameter: the group option driven (``"weight_decay"``, ``"momentum"``).
        base_values: each group's initial value.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        hyperparameter: str,
        multipliers: Sequence[Callable[[int], float]],
        last_epoch: int = -1,
        label: str = "scheduler",
    ) -> None:
        groups = optimizer.param_groups
        self.hyperparameter = hyperparameter
        self.slots = [slot(g, hyperparameter, i, label) for i, g in enumerate(groups)]
        if len(multipliers) == 1:
            multipliers = list(multipliers) * len(groups)
        self.lr_lambdas = list(multipliers)
        initial = f"initial_{hyperparameter}"
        for group, where in zip(groups, self.slots, strict=True):
            group.setdefault(initial, _read(group, where))
        self.base_values = [float(g[initial]) for g in groups]
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:  # type: ignore[override]
        """The lrs as they are: this scheduler drives another hyperparameter."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self, epoch: int | None = None) -> None:
        """torch's step (counting, the lrs left as they are), then the hyperparameter of
        every group set for the new step."""
        super().step(epoch)
        for group, where, base, multiplier in zip(
            self.optimizer.param_groups, self.slots, self.base_values, self.lr_lambdas, strict=True
        ):
            _write(group, where, base * multiplier(self.last_epoch))

    def get_last_value(self) -> list[float]:
        """Each group's value of the hyperparameter after the last step."""
        return [_read(g, w) for g, w in zip(self.optimizer.param_groups, self.slots, strict=True)]

    def state_dict(self) -> dict[str, Any]:
        """torch's scheduler state (the step, the initial values), without functions."""
        return {
            k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas", "slots")
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a `state_dict()` of a scheduler of the same hyperparameter.

        Raises:
            ValueError: the state drives another hyperparameter.
        """
        saved = state_dict.get("hyperparameter")
        if saved != self.hyperparameter:
            raise ValueError(
                f"this scheduler drives {self.hyperparameter!r}, the state is of one "
                f"driving {saved!r}"
            )
        self.__dict__.update(state_dict)


def hyperparameter_scheduler(
    label: str, optimizer: Any, hyperparameter: str, build: Callable[[], Any]
) -> HyperparameterScheduler:
    """The schedule ``build()`` makes on ``optimizer`` (built in place, the lrs and
    ``initial_lr`` it writes put back), driving ``hyperparameter`` instead of the lr.

    Raises:
        ValueError: a hyperparameter the groups lack (or not one a schedule drives), or
            a schedule that is not one function of the step per group (metric-driven).
    """
    for i, group in enumerate(optimizer.param_groups):
        slot(group, hyperparameter, i, label)  # refused by name before anything is built
    from optreg.builtin.schedule_lr import built_in_place

    built = built_in_place(optimizer, build)
    lambdas = getattr(built, "lr_lambdas", None)
    if not isinstance(lambdas, list) or not all(map(callable, lambdas)):
        raise ValueError(
            f"{label} cannot drive {hyperparameter!r}: it built a {type(built).__name__}, and "
            "a hyperparameter follows schedules that are one function of the step (a "
            "LambdaLR, as every builtin but the metric-driven ones)"
        )
    return HyperparameterScheduler(optimizer, hyperparameter, lambdas, label=label)
