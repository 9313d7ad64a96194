"""Train/eval modes: schedule-free optimizers evaluate and save at another point than
they take gradients at, and must be told which (``optimizer.train()`` / ``eval()``).

Whether an optimizer needs this is a trait of its name (`optreg.Traits.train_eval`),
read from the record of what optreg built; an optimizer built by hand needs it where it
has the ``train()`` / ``eval()`` methods schedule-free optimizers have.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["eval_mode", "in_train_mode", "needs_modes", "unwrap_optimizer"]


def unwrap_optimizer(optimizer: Any) -> Any:
    """The optimizer inside a trainer's wrapper (accelerate's ``AcceleratedOptimizer``
    keeps it as ``.optimizer``, Lightning's ``LightningOptimizer`` as ``._optimizer``)."""
    for _ in range(4):
        inner = getattr(optimizer, "optimizer", None) or getattr(optimizer, "_optimizer", None)
        if inner is None or inner is optimizer or not hasattr(inner, "param_groups"):
            return optimizer
        optimizer = inner
    return optimizer


def needs_modes(optimizer: Any) -> bool:
    """Whether ``optimizer`` must be switched with ``train()`` / ``eval()``: its name's
    trait where optreg built it, else whether it has both methods."""
    from optreg._build.records import built_traits

    optimizer = unwrap_optimizer(optimizer)
    traits = built_traits(optimizer)
    if traits is not None:
        return traits.train_eval
    return callable(getattr(optimizer, "train", None)) and callable(
        getattr(optimizer, "eval", None)
    )


def in_train_mode(optimizer: Any) -> bool:
    """Whether a train/eval optimizer is in train mode (schedule-free optimizers keep
    ``train_mode`` in each param group; one without that flag counts as training)."""
    return all(g.get("train_mode", True) for g in optimizer.param_groups)


@contextmanager
def eval_mode(optimizer: Any) -> Iterator[Any]:
    """Evaluate (and save) with the weights a train/eval optimizer means you to use.

    A schedule-free optimizer takes gradients at one point and evaluates at another: in
    the block it is switched to eval mode (``optimizer.eval()``), and back to train mode
    after, if it was training. For any other optimizer it does nothing, so a training
    loop can use it whatever the name::

        with optreg.eval_mode(optimizer):
            val_loss = evaluate(model)
            torch.save(model.state_dict(), "model.pt")

    Args:
        optimizer: the optimizer training the model.

    Yields:
        ``optimizer``.
    """
    inner = unwrap_optimizer(optimizer)
    switch = needs_modes(inner) and in_train_mode(inner)
    if switch:
        inner.eval()
    try:
        yield optimizer
    finally:
        if switch:
            inner.train()
