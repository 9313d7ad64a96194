"""``reduce_lr_on_plateau``: torch's ``ReduceLROnPlateau`` with every argument checked.

Metric-driven: step it with the watched metric, ``scheduler.step(val_loss)``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from optreg._core import validate
from optreg.builtin.schedule_lr import check_group_count

__all__ = ["CheckedReduceLROnPlateau", "get_reduce_on_plateau_schedule"]


class CheckedReduceLROnPlateau(ReduceLROnPlateau):
    """torch's ``ReduceLROnPlateau``, whose ``load_state_dict`` checks the group count and
    which keeps a tensor lr in place on every torch optreg supports.

    torch's own loads a state saved for another number of param groups silently
    (its ``min_lrs`` then no longer match the groups).
    """

    def _reduce_lr(self, epoch: Any) -> None:
        """torch's reduction, a tensor lr kept as the same tensor and filled in place (as
        current torch does; torch 2.4 replaced it with a float, and a compiled step that
        reads the tensor then recompiled at every reduction)."""
        held = [group["lr"] for group in self.optimizer.param_groups]
        super()._reduce_lr(epoch)  # type: ignore[misc]
        for group, lr in zip(self.optimizer.param_groups, held, strict=False):
            if isinstance(lr, Tensor) and group["lr"] is not lr:
                lr.fill_(float(group["lr"]))
                group["lr"] = lr

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by `state_dict()`.

        Raises:
            ValueError: the state holds a different number of param groups.
        """
        check_group_count(self, state_dict, "min_lrs")
        super().load_state_dict(state_dict)


def get_reduce_on_plateau_schedule(
    optimizer: Optimizer,
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float | list[float] = 0.0,
    eps: float = 1e-8,
) -> CheckedReduceLROnPlateau:
    """torch's ``ReduceLROnPlateau`` with its arguments checked; step it with a metric.

    Same defaults and semantics as ``torch.optim.lr_scheduler.ReduceLROnPlateau``;
    the values are checked here so that every error shows the value given.

    Raises:
        TypeError: a number that is not a number.
        ValueError: ``mode`` not min/max, ``threshold_mode`` not rel/abs, ``factor``
            outside (0, 1), negative or non-integer ``patience`` / ``cooldown``, or a
            negative / NaN ``threshold``, ``min_lr`` or ``eps``.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"`mode` must be 'min' or 'max', got {mode!r}")
    if threshold_mode not in ("rel", "abs"):
        raise ValueError(f"`threshold_mode` must be 'rel' or 'abs', got {threshold_mode!r}")
    validate.real("factor", factor, low=0, high=1, low_open=True, high_open=True)
    validate.count("patience", patience)
    validate.count("cooldown", cooldown)
    lows = min_lr if isinstance(min_lr, (list, tuple)) else [min_lr]
    for arg, value in (("threshold", threshold), ("eps", eps), *(("min_lr", v) for v in lows)):
        validate.real(arg, value, low=0)
    return CheckedReduceLROnPlateau(
        optimizer,
        mode=mode,  # type: ignore[arg-type]
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,  # type: ignore[arg-type]
        cooldown=cooldown,
        min_lr=min_lr,
        eps=eps,
    )
