"""What a name needs from whoever trains with it, as typed facts: `Traits`, and what the
conformance kit needs to check it: `Conformance`.

A plugin declares traits when it registers a name (``registry.register(..., traits=
optreg.Traits(train_eval=True))``); optreg, its integrations and the conformance kit act
on them, and ``optreg info`` shows them. They are read without importing the target.
The free-form ``metadata`` of an entry is for display; the keys optreg 0.3 read from it
(``needs_train_eval``, ``metric_driven``, ``own_lr``, ``install``) still declare the
same traits when no ``traits`` are given, and ``metadata["conformance"]`` is read into a
`Conformance` at registration (an unknown key is an error there, not a check skipped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

__all__ = ["Conformance", "Traits"]


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class Conformance:
    """What the conformance kit ([optreg.testing][]) needs to check a name.

    Declared with the name (``traits=optreg.Traits(conformance=optreg.Conformance(...))``,
    or the mapping ``metadata={"conformance": {...}}``), read without importing it.

    Attributes:
        skip: a reason not to check the name at all.
        device: the device it needs beyond the CPU (``"cuda"``, ``"xla"``, ``"npu"``):
            the kit's problem runs on the CPU, so it is not checked.
        kwargs: keyword arguments to build it with.
        requires_closure: every step is ``optimizer.step(closure)`` (LBFGS).
        sparse_grad: the problem produces sparse gradients (SparseAdam).
        create_graph: ``backward(create_graph=True)`` (Hessian-based optimizers).
        matrices_only: every parameter of the problem is 2-D (Muon).
        param_groups: False for an optimizer that supports one param group only.
        skip_checks: ``{check name: reason}`` for checks that do not apply.
        optimizer: (schedules) the optimizer name to schedule instead of SGD.
        optimizer_kwargs: (schedules) that optimizer's keyword arguments.
        needs_train_eval: the optimizer is switched with ``train()`` / ``eval()`` (as
            ``Traits.train_eval`` says).
        metric_driven: (schedules) ``step(metric)`` (as ``Traits.metric_driven`` says).

    Raises:
        TypeError: a field of the wrong type, or a ``device`` that is not a device name
            other than ``"cpu"``.
    """

    skip: str | None = None
    device: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=lambda: _frozen({}))
    requires_closure: bool = False
    sparse_grad: bool = False
    create_graph: bool = False
    matrices_only: bool = False
    param_groups: bool = True
    skip_checks: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    optimizer: str | None = None
    optimizer_kwargs: Mapping[str, Any] = field(default_factory=lambda: _frozen({}))
    needs_train_eval: bool = False
    metric_driven: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("kwargs", "skip_checks", "optimizer_kwargs"):
                if not isinstance(value, Mapping):
                    raise TypeError(f"Conformance.{f.name} must be a mapping, got {value!r:.60}")
                object.__setattr__(self, f.name, _frozen(value))
            elif f.name in ("skip", "device", "optimizer"):
                if value is not None and not isinstance(value, str):
                    raise TypeError(
                        f"Conformance.{f.name} must be a str or None, got {value!r:.60}"
                    )
            elif not isinstance(value, bool):
                raise TypeError(f"Conformance.{f.name} must be True or False, got {value!r:.60}")
        if self.device is not None and (not self.device or self.device == "cpu"):
            raise TypeError(
                "Conformance.device names the device the name needs beyond the CPU ('cuda', "
                f"'xla', 'npu', ...), got {self.device!r}"
            )

    @classmethod
    def from_mapping(cls, declared: object) -> Conformance:
        """The declaration ``metadata={"conformance": {...}}`` gives.

        Raises:
            TypeError: ``declared`` is not a mapping, or a value of the wrong type.
            ValueError: a key the kit does not know (the known ones are listed).
        """
        if not isinstance(declared, Mapping):
            raise TypeError(
                f"metadata['conformance'] must be a mapping, got {type(declared).__name__}: "
                f"{declared!r:.60}"
            )
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in declared if k not in known)
        if unknown:
            raise ValueError(
                f"metadata['conformance'] has {', '.join(map(repr, unknown))}, which the kit "
                f"does not read; known: {', '.join(known)}"
            )
        return cls(**declared)

    def declared(self) -> dict[str, Any]:
        """What was declared (every field that differs from its default), as the kit's
        ``needs()`` reads it."""
        default = Conformance()
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != getattr(default, f.name):
                out[f.name] = dict(value) if isinstance(value, Mapping) else value
        return out


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
        conformance: what the conformance kit needs to check it (`Conformance`).
    """

    train_eval: bool = False
    metric_driven: bool = False
    own_lr: bool = False
    install: str | None = None
    conformance: Conformance = field(default_factory=Conformance)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "install":
                if value is not None and not isinstance(value, str):
                    raise TypeError(f"Traits.install must be a str or None, got {value!r:.60}")
            elif f.name == "conformance":
                if not isinstance(value, Conformance):
                    raise TypeError(
                        f"Traits.conformance must be an optreg.Conformance, got {value!r:.60}"
                    )
            elif not isinstance(value, bool):
                raise TypeError(f"Traits.{f.name} must be True or False, got {value!r:.60}")

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Traits:
        """The traits optreg 0.3 read from an entry's metadata keys.

        Raises:
            TypeError: ``metadata["conformance"]`` is not a mapping, or holds a value of
                the wrong type.
            ValueError: ``metadata["conformance"]`` has a key the kit does not read.
        """
        install = metadata.get("install")
        declared = metadata.get("conformance")
        return cls(
            train_eval=bool(metadata.get("needs_train_eval")),
            metric_driven=bool(metadata.get("metric_driven")),
            own_lr=bool(metadata.get("own_lr")),
            install=install if isinstance(install, str) else None,
            conformance=Conformance() if declared is None else Conformance.from_mapping(declared),
        )

    def to_json(self) -> dict[str, Any]:
        """Plain data: every trait, and the conformance fields declared."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["conformance"] = self.conformance.declared()
        return out

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
