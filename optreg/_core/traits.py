"""What a name needs from whoever trains with it, as typed facts: `Traits`.

A plugin declares traits when it registers a name (``registry.register(..., traits=
optreg.Traits(train_eval=True))``); optreg, its integrations and the conformance kit act
on them, and ``optreg info`` shows them. They are read without importing the target.
The free-form ``metadata`` of an entry is for display; the keys optreg 0.3 read from it
(``needs_train_eval``, ``metric_driven``, ``own_lr``, ``install``) still declare the
same traits when no ``traits`` are given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["Traits"]


@dataclass(frozen=True)
class Traits:
    """What a name's optimizer or schedule needs from the training loop.

    Attributes:
        train_eval: the optimizer must be switched with ``optimizer.train()`` before
            training steps and ``optimizer.eval()`` before evaluation and saving
            (schedule-free optimizers): ``optreg.eval_mode`` and the integrations do it.
        metric_driven: the schedule steps with a metric (``scheduler.step(val_loss)``).
        own_lr: the optimizer sets its own learning rate (Adafactor's relative step): an
            lr schedule cannot drive it.
        install: how to install what the name needs, where a pip extra of optreg does
            not say it (a command shown in errors).
    """

    train_eval: bool = False
    metric_driven: bool = False
    own_lr: bool = False
    install: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "install":
                if value is not None and not isinstance(value, str):
                    raise TypeError(f"Traits.install must be a str or None, got {value!r:.60}")
            elif not isinstance(value, bool):
                raise TypeError(f"Traits.{f.name} must be True or False, got {value!r:.60}")

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Traits:
        """The traits optreg 0.3 read from an entry's metadata keys."""
        install = metadata.get("install")
        return cls(
            train_eval=bool(metadata.get("needs_train_eval")),
            metric_driven=bool(metadata.get("metric_driven")),
            own_lr=bool(metadata.get("own_lr")),
            install=install if isinstance(install, str) else None,
        )

    def shown(self) -> list[str]:
        """The declared traits in words, for ``optreg info`` (empty: none)."""
        out = []
        if self.train_eval:
            out.append("needs optimizer.train() / eval() around evaluation and saving")
        if self.metric_driven:
            out.append("steps with a metric (scheduler.step(val_loss))")
        if self.own_lr:
            out.append("sets its own learning rate (no lr schedule drives it)")
        if self.install:
            out.append(f"install: {self.install}")
        return out
