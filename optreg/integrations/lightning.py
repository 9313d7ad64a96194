"""A LightningModule's ``configure_optimizers`` from optreg names, in one call.

>>> from optreg.integrations.lightning import configure_optimizers
>>> class Model(L.LightningModule):  # doctest: +SKIP
...     def configure_optimizers(self):
...         return configure_optimizers(self, "adamw", "cosine", num_warmup_steps=0.1,
...                                     optimizer_kwargs={"lr": 3e-4, "weight_decay": 0.01})

The result is the dict Lightning documents for ``configure_optimizers``: the schedule
steps every optimizer step (``interval="step"``) over
``trainer.estimated_stepping_batches`` steps; a metric-driven schedule
(``reduce_lr_on_plateau``, ``greedy``, a plugin's) steps once per epoch with the metric
``monitor`` (default ``"val_loss"``). Works with ``lightning`` and ``pytorch_lightning``
alike, and imports neither: it only reads ``module.trainer``.

Metric-driven optreg schedules need no helper either: ``greedy`` is a
``ReduceLROnPlateau``, so Lightning steps it with the monitored metric when it is
returned as ``{"scheduler": s, "monitor": "val_loss"}``, exactly as it steps torch's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from optreg._build.api import get_optimizer, get_scheduler, is_metric_driven
from optreg._core import signature
from optreg._core.registry import schedulers

__all__ = ["OptimizerModes", "clip_gradients", "configure_optimizers"]

if TYPE_CHECKING:  # built on first use by __getattr__ (it subclasses Lightning's Callback)
    OptimizerModes: type

_INTERVALS = ("step", "epoch")


def configure_optimizers(
    module: Any,
    optimizer: str = "adamw",
    scheduler: str | None = None,
    *,
    optimizer_kwargs: Mapping[str, Any] | None = None,
    scheduler_kwargs: Mapping[str, Any] | None = None,
    num_warmup_steps: float | None = None,
    num_training_steps: int | None = None,
    params: Any = None,
    monitor: str = "val_loss",
    interval: str | None = None,
    frequency: int = 1,
    weight_decay_scheduler: str | None = None,
    weight_decay_scheduler_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """Build ``optimizer`` (and ``scheduler``) for ``module`` as Lightning wants them.

    Args:
        module: the LightningModule (``self`` in ``configure_optimizers``).
        optimizer: an optimizer name (``optreg list optimizers``).
        scheduler: a schedule name (``optreg list schedulers``); None for none.
        optimizer_kwargs: the optimizer's hyperparameters, plus ``no_decay`` /
            ``overrides`` as [optreg.get_optimizer][] takes them.
        scheduler_kwargs: the schedule's own arguments (``num_cycles``, ``mode``, ...).
        num_warmup_steps: warmup steps; a float in (0, 1) is that fraction of the
            training steps, rounded up.
        num_training_steps: the schedule's length; default:
            ``trainer.estimated_stepping_batches`` (``interval="step"``) or
            ``trainer.max_epochs`` (``interval="epoch"``).
        params: what to optimize; default: the module (so biases and norm weights get
            no weight decay, by name).
        monitor: the logged metric a metric-driven schedule steps with.
        interval: ``"step"`` or ``"epoch"``; default: ``"epoch"`` for a metric-driven
            schedule, else ``"step"``.
        frequency: step the schedule every ``frequency`` intervals.
        weight_decay_scheduler: a schedule name for ``weight_decay`` too, stepped beside
            the lr schedule with the same warmup, length and interval (see
            [optreg.get_scheduler][]'s ``hyperparameter``).
        weight_decay_scheduler_kwargs: that schedule's own arguments.

    Returns:
        ``{"optimizer": ...}``, with ``"lr_scheduler": {"scheduler": ..., "interval": ...,
        "frequency": ...}`` (and ``"monitor"`` for a metric-driven schedule) when a
        schedule is named.

    Raises:
        UnknownNameError: no optimizer or schedule has that name.
        ValueError: an ``interval`` other than step / epoch, a ``frequency`` below 1,
            or a schedule that needs the step count when the trainer cannot say it
            (no trainer attached, or an unbounded run).
        TypeError: what [optreg.get_optimizer][] / [optreg.get_scheduler][] raise.
    """
    built = get_optimizer(
        optimizer, module if params is None else params, **dict(optimizer_kwargs or {})
    )
    if scheduler is None:
        return {"optimizer": built}
    entry = schedulers.resolve(scheduler)
    metric_driven = is_metric_driven(scheduler)
    interval = interval or ("epoch" if metric_driven else "step")
    if interval not in _INTERVALS:
        raise ValueError(f"`interval` must be 'step' or 'epoch', got {interval!r}")
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
        raise ValueError(f"`frequency` must be an int >= 1, got {frequency!r}")
    if num_training_steps is None and signature.takes(schedulers.load(entry), "num_training_steps"):
        num_training_steps = _trainer_steps(module, entry.name, interval, frequency)
    built_scheduler = get_scheduler(
        scheduler,
        built,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        scheduler_specific_kwargs=scheduler_kwargs,
    )
    config: dict[str, Any] = {
        "scheduler": built_scheduler,
        "interval": interval,
        "frequency": frequency,
    }
    if metric_driven:
        config["monitor"] = monitor
        config["reduce_on_plateau"] = True  # a plugin's may not be a ReduceLROnPlateau
    if weight_decay_scheduler is None:
        return {"optimizer": built, "lr_scheduler": config}
    if metric_driven:
        raise ValueError(
            f"weight_decay_scheduler={weight_decay_scheduler!r} is a function of the step, and "
            f"the lr schedule {scheduler!r} is metric-driven: give them separately"
        )
    decay = get_scheduler(
        weight_decay_scheduler,
        built,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        scheduler_specific_kwargs=weight_decay_scheduler_kwargs,
        hyperparameter="weight_decay",
    )
    return [built], [config, {"scheduler": decay, "interval": interval, "frequency": frequency}]


def _trainer_steps(module: Any, name: str, interval: str, frequency: int) -> int:
    """How often the trainer will step the schedule: its stepping batches or epochs.

    Raises:
        ValueError: no trainer attached, or it runs without a bound.
    """
    try:
        trainer = module.trainer
    except RuntimeError:  # Lightning's "not attached to a Trainer"
        trainer = None
    except AttributeError:  # not a LightningModule
        raise TypeError(
            f"configure_optimizers(module, ...) takes the LightningModule (`self` in its "
            f"configure_optimizers), got {type(module).__name__}; for a plain nn.Module "
            f"pass num_training_steps=, or use optreg.get_optimizer / optreg.get_scheduler"
        ) from None
    if trainer is None:
        raise ValueError(
            f"schedule {name!r} needs num_training_steps: pass it, or call this from "
            "configure_optimizers, where module.trainer can tell it"
        )
    total = trainer.estimated_stepping_batches if interval == "step" else trainer.max_epochs
    if total is None or total < 0 or math.isinf(total):
        raise ValueError(
            f"schedule {name!r} needs num_training_steps, and the trainer runs without a "
            f"bound ({'estimated_stepping_batches' if interval == 'step' else 'max_epochs'}"
            f"={total}): set max_steps / max_epochs, or pass num_training_steps"
        )
    return max(1, int(total) // frequency)


def clip_gradients(
    module: Any,
    optimizer: Any,
    gradient_clip_val: float | None = None,
    gradient_clip_algorithm: str | None = None,
) -> None:
    """Lightning's gradient clipping, as the optimizer's name says (its clip policy).

    Call it from the LightningModule's ``configure_gradient_clipping``; the Trainer's
    ``gradient_clip_val`` then clips ``muon_adamw``'s AdamW side only (see
    [optreg.clip_grad_norm_][]), and every other name as Lightning would::

        def configure_gradient_clipping(self, optimizer, gradient_clip_val=None,
                                        gradient_clip_algorithm=None):
            clip_gradients(self, optimizer, gradient_clip_val, gradient_clip_algorithm)

    Args:
        module: the LightningModule (``self``).
        optimizer: the optimizer Lightning passes.
        gradient_clip_val: what Lightning passes (the Trainer's ``gradient_clip_val``).
        gradient_clip_algorithm: what Lightning passes (``"norm"`` or ``"value"``).
    """
    from optreg._policies.clip import clip_grad_norm_, clip_policy

    by_norm = gradient_clip_algorithm in (None, "norm")
    if gradient_clip_val and by_norm and clip_policy(optimizer) is not None:
        clip_grad_norm_(optimizer, float(gradient_clip_val))
        return
    module.clip_gradients(
        optimizer,
        gradient_clip_val=gradient_clip_val,
        gradient_clip_algorithm=gradient_clip_algorithm,
    )


def _modes_callback() -> type:
    """`OptimizerModes`, a Callback of the Lightning that is installed."""
    try:
        from lightning.pytorch import Callback  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - the older package name
        from pytorch_lightning import Callback  # type: ignore[import-not-found,no-redef,unused-ignore]

    from optreg._policies.modes import in_train_mode, needs_modes, unwrap_optimizer

    def _training(trainer: Any) -> list[Any]:
        """The train/eval optimizers now in train mode."""
        found = [unwrap_optimizer(o) for o in trainer.optimizers]
        return [o for o in found if needs_modes(o) and in_train_mode(o)]

    class OptimizerModes(Callback):  # type: ignore[misc,valid-type]
        """Switch train/eval optimizers (schedule-free) to train mode for training
        steps, to eval mode for validation, testing, prediction and every checkpoint,
        and back to train mode after.

        ``Trainer(callbacks=[OptimizerModes()])``; for other optimizers it does nothing.
        """

        def __init__(self) -> None:
            self._switched: list[Any] = []

        def _eval(self, trainer: Any, *_: Any) -> None:
            self._switched = _training(trainer)
            for optimizer in self._switched:
                optimizer.eval()

        def _train(self, trainer: Any, *_: Any) -> None:
            for optimizer in self._switched:
                optimizer.train()
            self._switched = []

        on_validation_start = on_test_start = on_predict_start = _eval
        on_validation_end = on_test_end = on_predict_end = _train

        def on_train_batch_start(self, trainer: Any, *_: Any) -> None:
            """Training steps in train mode (schedule-free optimizers start in eval)."""
            for optimizer in map(unwrap_optimizer, trainer.optimizers):
                if needs_modes(optimizer) and not in_train_mode(optimizer):
                    optimizer.train()

        def on_save_checkpoint(self, trainer: Any, module: Any, checkpoint: Any) -> None:
            """The checkpoint takes the eval-mode weights and optimizer state."""
            training = _training(trainer)
            if not training:
                return
            for optimizer in training:
                optimizer.eval()
            try:
                checkpoint["state_dict"] = {
                    k: v.detach().clone() for k, v in module.state_dict().items()
                }
                checkpoint["optimizer_states"] = [
                    _copied(o.state_dict()) for o in trainer.optimizers
                ]
            finally:
                for optimizer in training:
                    optimizer.train()

    return OptimizerModes


def _copied(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    return value


def __getattr__(name: str) -> Any:
    # OptimizerModes subclasses Lightning's Callback: built on first use, so that this
    # module imports no Lightning
    if name == "OptimizerModes":
        value = globals()["OptimizerModes"] = _modes_callback()
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
