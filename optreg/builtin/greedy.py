"""GreedyLR: a metric-driven schedule that raises the lr while a metric improves.

The behaviour of ``transformers.optimization.GreedyLR`` (5.x): after more than
``patience`` improving steps every group's lr is divided by ``factor`` (up to
``max_lr``), after more than ``patience`` non-improving steps it is multiplied by
``factor`` (down to ``min_lr``); ``warmup`` / ``cooldown`` steps of rest follow each
change. Once every group sits at its ``min_lr`` for ``reset_start`` reductions, the
schedule starts over from the initial learning rates. ``smooth=True`` judges the
rolling mean of the last ``window_size`` metrics instead of the raw metric.

The state dict uses the reference's keys (the rolling window under
``"_streaming_avg"``) and holds only plain Python values, so it loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, SupportsFloat

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from optreg._core import validate
from optreg.builtin.schedule_lr import set_lr

__all__ = ["GreedyLR", "get_greedy_schedule"]

_STATE_KEYS = (
    "factor",
    "min_lrs",
    "max_lrs",
    "patience",
    "verbose",
    "cooldown",
    "warmup",
    "cooldown_counter",
    "warmup_counter",
    "mode",
    "threshold",
    "threshold_mode",
    "best",
    "num_bad_epochs",
    "num_good_epochs",
    "eps",
    "last_epoch",
    "smooth",
    "window_size",
    "reset_start",
    "reset_start_original",
    "_last_lr",
    "_init_lrs",
)


class GreedyLR(ReduceLROnPlateau):
    """Raise the learning rate while a metric improves, lower it when it stalls.

    A ``ReduceLROnPlateau`` by type, so that every trainer that steps its plateau
    schedules with a metric (the transformers Trainer, Lightning, accelerate) steps
    this one with the metric too, with no extra configuration. It shares no code
    with torch's: every method it runs is its own.

    Call ``scheduler.step(metric)`` once per evaluation (or per step) with the
    metric to watch, e.g. the validation loss.

    Args:
        optimizer: the optimizer whose learning rates are adjusted.
        mode: ``"min"`` (lower is better) or ``"max"``.
        factor: multiplier on a plateau, divisor on improvement; ``0 < factor < 1``.
        patience: improving (or non-improving) steps tolerated before a change.
        threshold: how much better than the best a metric must be to count.
        threshold_mode: ``"abs"`` (``best - threshold``) or ``"rel"``
            (``best * (1 - threshold)``); mirrored for ``mode="max"``.
        cooldown: steps ignored after a decrease.
        warmup: steps ignored after an increase.
        min_lr: lower bound of the lr, one number or one per param group.
        max_lr: upper bound of the lr, one number or one per param group.
        eps: changes of the lr smaller than this are skipped.
        verbose: print each change.
        smooth: judge the rolling mean of the last ``window_size`` metrics.
        window_size: length of the rolling window.
        reset_start: reductions at ``min_lr`` (every group) before the schedule
            resets to the initial learning rates; an increase re-arms it.

    Raises:
        ValueError: ``factor`` not in (0, 1) (``"Factor should be < 1.0."`` for
            ``factor >= 1``), an unknown ``mode`` / ``threshold_mode``, a
            ``min_lr`` / ``max_lr`` list of the wrong length, ``min_lr > max_lr``,
            a negative count, ``window_size < 1``, or a negative or non-finite
            ``threshold`` / ``eps``.
        TypeError: ``optimizer`` is not a ``torch.optim.Optimizer``, or a number
            that is not a number (``factor=None``).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.95,
        patience: int = 10,
        threshold: float = 1e-6,
        threshold_mode: str = "abs",
        cooldown: int = 0,
        warmup: int = 0,
        min_lr: float | Sequence[float] = 1e-3,
        max_lr: float | Sequence[float] = 1.0,
        eps: float = 1e-8,
        verbose: bool = False,
        smooth: bool = False,
        window_size: int = 50,
        reset_start: int = 500,
    ) -> None:
        validate.real("factor", factor)
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        if not factor > 0.0:
            raise ValueError(f"`factor` must be > 0, got {factor!r}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        n_groups = len(optimizer.param_groups)
        min_lrs = validate.per_group("min_lr", min_lr, n_groups)
        max_lrs = validate.per_group("max_lr", max_lr, n_groups)
        for i, (lo, hi) in enumerate(zip(min_lrs, max_lrs, strict=True)):
            if lo > hi:
                raise ValueError(
                    f"`min_lr` must be <= `max_lr`, got min_lr={lo} > max_lr={hi} in group {i}"
                )
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        for arg, value in (("threshold", threshold), ("eps", eps)):
            validate.real(arg, value, low=0)

        self.optimizer = optimizer
        self.factor = float(factor)
        self.patience = validate.count("patience", patience)
        self.verbose = bool(verbose)
        self.cooldown = validate.count("cooldown", cooldown)
        self.warmup = validate.count("warmup", warmup)
        self.cooldown_counter = 0
        self.warmup_counter = 0
        self.mode = mode
        self.threshold = float(threshold)
        self.threshold_mode = threshold_mode
        self.eps = float(eps)
        self.smooth = bool(smooth)
        self.window_size = validate.count("window_size", window_size, minimum=1)
        self.reset_start = validate.count("reset_start", reset_start)
        self.reset_start_original = self.reset_start
        self.last_epoch = 0
        self.min_lrs = min_lrs
        self.max_lrs = max_lrs
        # values, not a tensor lr itself: it is filled in place as the lr changes
        self._init_lrs: list[Any] = [_value(group["lr"]) for group in optimizer.param_groups]
        self._last_lr = list(self._init_lrs)
        self.best = self._worst()
        self.num_bad_epochs = 0
        self.num_good_epochs = 0
        self._window: list[float] = []
        self._window_sum = 0.0

    # -- stepping ---------------------------------------------------------------

    def step(self, metrics: SupportsFloat, epoch: int | None = None) -> None:  # type: ignore[override]
        """Judge ``metrics`` and adjust the learning rates.

        Args:
            metrics: the watched metric (a float or a 0-d tensor).
            epoch: the step index to record; defaults to the previous one plus 1.
        """
        current = float(metrics)
        if self.smooth:
            current = self._rolling_mean(current)
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch

        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = self.num_good_epochs = 0
        elif self.warmup_counter > 0:
            self.warmup_counter -= 1
            self.num_bad_epochs = self.num_good_epochs = 0
        else:
            if self.is_better(current, self.best):
                self.best = current
                self.num_bad_epochs = 0
                self.num_good_epochs += 1
            else:
                self.num_bad_epochs += 1
                self.num_good_epochs = 0
            if self.num_good_epochs > self.patience:
                self._raise_lrs()
                self.warmup_counter = self.warmup
                self.num_good_epochs = 0
            elif self.num_bad_epochs > self.patience:
                self._lower_lrs()
                self.cooldown_counter = self.cooldown
                self.num_bad_epochs = 0
        self._last_lr = [_value(group["lr"]) for group in self.optimizer.param_groups]

    def is_better(self, current: float, best: float) -> bool:
        """Whether ``current`` beats ``best`` by more than the threshold."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return bool(current < best * (1.0 - self.threshold))
            return bool(current < best - self.threshold)
        if self.threshold_mode == "rel":
            return bool(current > best * (1.0 + self.threshold))
        return bool(current > best + self.threshold)

    def _worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def _rolling_mean(self, value: float) -> float:
        self._window.append(value)
        self._window_sum += value
        if len(self._window) > self.window_size:
            self._window_sum -= self._window.pop(0)
        return self._window_sum / len(self._window)

    def _raise_lrs(self) -> None:
        for i, group in enumerate(self.optimizer.param_groups):
            old_lr = float(group["lr"])
            new_lr = min(old_lr / self.factor, self.max_lrs[i])
            if new_lr - old_lr > self.eps:
                set_lr(group, new_lr)
                if self.verbose:
                    print(f"Epoch {self.last_epoch}: increasing lr of group {i} to {new_lr:.4e}.")
        self.reset_start = self.reset_start_original

    def _lower_lrs(self) -> None:
        all_at_min = True
        for i, group in enumerate(self.optimizer.param_groups):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, self.min_lrs[i])
            if old_lr - new_lr > self.eps:
                set_lr(group, new_lr)
                if self.verbose:
                    print(f"Epoch {self.last_epoch}: reducing lr of group {i} to {new_lr:.4e}.")
            if group["lr"] > self.min_lrs[i]:
                all_at_min = False
        if all_at_min:
            self.reset_start -= 1
            if self.reset_start <= 0:
                self._restart()

    def _restart(self) -> None:
        for group, lr in zip(self.optimizer.param_groups, self._init_lrs, strict=False):
            set_lr(group, lr)
        self.best = self._worst()
        self.num_bad_epochs = self.num_good_epochs = 0
        self.cooldown_counter = self.warmup_counter = 0
        self.reset_start = self.reset_start_original
        self._window = []
        self._window_sum = 0.0
        if self.verbose:
            print("GreedyLR: reset to the initial learning rates.")

    # -- state ------------------------------------------------------------------

    def get_last_lr(self) -> list[Any]:
        """The learning rates after the last step, one per param group."""
        return self._last_lr

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run, rolling window included.

        Only plain Python values: loads with ``torch.load(weights_only=True)``.
        """
        state: dict[str, Any] = {key: getattr(self, key) for key in _STATE_KEYS}
        state["min_lrs"] = list(self.min_lrs)
        state["max_lrs"] = list(self.max_lrs)
        state["_last_lr"] = list(self._last_lr)
        state["_init_lrs"] = list(self._init_lrs)
        if self.smooth:
            state["_streaming_avg"] = {
                "window_size": self.window_size,
                "values": list(self._window),
                "sum": self._window_sum,
            }
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:  # type: ignore[override]
        """Restore a `state_dict()` and put its learning rates into the optimizer.

        Raises:
            ValueError: the state holds a different number of param groups.
        """
        n_groups = len(self.optimizer.param_groups)
        for key in ("min_lrs", "max_lrs", "_last_lr", "_init_lrs"):
            if key in state_dict and len(state_dict[key]) != n_groups:
                raise ValueError(
                    f"GreedyLR state has {len(state_dict[key])} {key}, "
                    f"the optimizer has {n_groups} param groups"
                )
        for key in _STATE_KEYS:
            if key in state_dict:
                value = state_dict[key]
                setattr(self, key, list(value) if isinstance(value, list) else value)
        window = state_dict.get("_streaming_avg")
        if window is not None:
            self.window_size = window.get("window_size", self.window_size)
            self._window = list(window.get("values", []))
            self._window_sum = window.get("sum", 0.0)
        if "_last_lr" in state_dict:
            for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=False):
                set_lr(group, lr)


def _value(lr: Any) -> Any:
    """A one-element tensor lr as its number; any other lr as it is."""
    return lr.item() if isinstance(lr, torch.Tensor) else lr


def get_greedy_schedule(optimizer: Optimizer, **kwargs: Any) -> GreedyLR:
    """``GreedyLR(optimizer, **kwargs)`` under transformers' factory name."""
    return GreedyLR(optimizer, **kwargs)
