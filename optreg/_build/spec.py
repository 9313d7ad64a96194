"""One spec of a set-up: optimizer name + arguments + grouping, schedule + step counts.

`Spec` is plain data, normalised and checked once when it is made. It is what
[optreg.build][] makes from a config, what the checkpoint record stores (and
[optreg.from_state_dict][] rebuilds from), and what the command line's ``--config``
and ``compare`` build from::

    Spec.from_config({"optimizer": {"name": "adamw", "lr": 3e-4},
                      "scheduler": {"name": "cosine", "num_warmup_steps": 0.05},
                      "num_training_steps": 10_000}).build(model)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optreg._build import records
from optreg._build.config import load_config, plain_config
from optreg._core.errors import close_matches

if TYPE_CHECKING:
    import torch

__all__ = ["GROUPING_KEYS", "TOP_KEYS", "OptimizerSpec", "ScheduleSpec", "Spec", "build"]

#: The keys of a config: an optimizer section, an optional scheduler section, and the
#: training length the schedule (and any warmup fraction) is measured against.
TOP_KEYS = ("optimizer", "scheduler", "num_training_steps")
#: The keywords of [optreg.get_optimizer][] that say how parameters are grouped.
GROUPING_KEYS = ("no_decay", "overrides", "rules", "layer_decay", "layer_pattern")


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer name, its hyperparameters, and the grouping keywords given."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    grouping: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> OptimizerSpec:
        """A config's optimizer section (``{"name": ..., **kwargs, **grouping}``)."""
        rest = dict(section)
        name = rest.pop("name")
        _reserved(rest, "optimizer", "params", "the parameters are build()'s first argument")
        grouping = {k: rest.pop(k) for k in GROUPING_KEYS if rest.get(k) is not None}
        for k in GROUPING_KEYS:
            rest.pop(k, None)
        return cls(name, rest, grouping)

    @classmethod
    def from_record(cls, saved: Mapping[str, Any]) -> OptimizerSpec:
        """The optimizer part of a checkpoint record (every optreg version's)."""
        record = records.OptimizerRecord.from_data(saved)
        return cls(record.qualified_name, record.kwargs, record.grouping)

    def record(self) -> dict[str, Any]:
        """The keys a checkpoint record keeps for this spec (``from_record`` reads them)."""
        return records.optimizer_record(self.kwargs, self.grouping)

    def build(self, params: Any) -> torch.optim.Optimizer:
        """[optreg.get_optimizer][] with this spec (raises what it raises)."""
        from optreg._build.api import get_optimizer

        return get_optimizer(self.name, params, **self.grouping, **self.kwargs)


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule name, its step counts (None: not given) and its own arguments."""

    name: str
    num_warmup_steps: Any = None
    num_training_steps: Any = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_section(cls, section: Mapping[str, Any], num_training_steps: Any = None) -> ScheduleSpec:
        """A config's scheduler section; ``num_training_steps`` fills in where it has none."""
        rest = dict(section)
        _reserved(rest, "scheduler", "optimizer", "the schedule drives the optimizer built")
        name = rest.pop("name")
        warmup = rest.pop("num_warmup_steps", None)
        steps = rest.pop("num_training_steps", None)  # null: not given, as anywhere else
        return cls(name, warmup, num_training_steps if steps is None else steps, rest)

    @classmethod
    def from_record(cls, saved: Mapping[str, Any]) -> ScheduleSpec:
        """The scheduler part of a checkpoint record."""
        record = records.ScheduleRecord.from_data(saved)
        return cls(
            record.qualified_name,
            record.num_warmup_steps,
            record.num_training_steps,
            record.kwargs,
        )

    def build(self, optimizer: Any) -> Any:
        """[optreg.get_scheduler][] with this spec (raises what it raises)."""
        from optreg._build.api import get_scheduler

        return get_scheduler(
            self.name,
            optimizer,
            num_warmup_steps=self.num_warmup_steps,
            num_training_steps=self.num_training_steps,
            **self.kwargs,
        )


def _reserved(section: Mapping[str, Any], where: str, key: str, why: str) -> None:
    """Refuse a key a config section may not give (it would reach the builder twice)."""
    if key in section:
        raise ValueError(
            f"config[{where!r}]: {key!r} cannot be given in a config ({why}); remove "
            f"{key!r} from the {where!r} section"
        )


def _unknown(key: object, allowed: Sequence[str]) -> ValueError:
    hint = close_matches(str(key), allowed, n=1)
    did = f"; did you mean {hint[0]!r}?" if hint else ""
    return ValueError(f"config: unknown key {key!r}{did} (allowed: {', '.join(allowed)})")


def _section(config: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return {"name": value}  # "optimizer": "adamw"
    if not isinstance(value, dict) or "name" not in value:
        raise TypeError(
            f"config[{key!r}] must be a name or a mapping with a 'name', got {value!r:.80}"
        )
    return dict(value)


@dataclass(frozen=True)
class Spec:
    """A whole set-up: an optimizer (None in a config that gives only a schedule, which
    the command line plots), an optional schedule, and the config's training length."""

    optimizer: OptimizerSpec | None
    scheduler: ScheduleSpec | None = None
    num_training_steps: Any = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str | Path) -> Spec:
        """Read a config (a mapping, an OmegaConf object, a file or inline JSON).

        Raises:
            ValueError: an unknown key (with the closest one), or a config that does
                not parse.
            TypeError: a config or section of the wrong shape.
        """
        data = plain_config(load_config(config) if isinstance(config, (str, Path)) else config)
        if not isinstance(data, dict):
            raise TypeError(f"config must be a mapping, got {type(data).__name__}")
        for key in data:
            if key not in TOP_KEYS:
                raise _unknown(key, TOP_KEYS)
        opt, sched = _section(data, "optimizer"), _section(data, "scheduler")
        steps = data.get("num_training_steps")
        return cls(
            None if opt is None else OptimizerSpec.from_section(opt),
            None if sched is None else ScheduleSpec.from_section(sched, steps),
            steps,
        )

    @classmethod
    def from_record(cls, checkpoint: Mapping[str, Any]) -> Spec:
        """What a [optreg.state_dict][] record built (checked by the caller)."""
        saved_sched = checkpoint.get("scheduler")
        return cls(
            OptimizerSpec.from_record(checkpoint["optimizer"]),
            None if saved_sched is None else ScheduleSpec.from_record(saved_sched),
        )

    def build(self, params: Any) -> tuple[torch.optim.Optimizer, Any]:
        """``(optimizer, scheduler)``; the scheduler is None without a schedule.

        Raises:
            ValueError: a spec with no optimizer, or what the builders raise.
        """
        if self.optimizer is None:
            raise ValueError("config needs an 'optimizer' section (a name or {'name': ...})")
        optimizer = self.optimizer.build(params)
        return optimizer, None if self.scheduler is None else self.scheduler.build(optimizer)


def build(
    model_or_params: Any, config: Mapping[str, Any] | str | Path
) -> tuple[torch.optim.Optimizer, Any]:
    """Build ``(optimizer, scheduler)`` from one config; the scheduler is None without one.

    Args:
        model_or_params: what [optreg.get_optimizer][] takes (an ``nn.Module``...).
        config: a mapping (dict, OmegaConf / Hydra object) or a file / JSON string for
            [optreg.load_config][]. Keys: ``optimizer`` (a name, or ``{"name": ...,
            **its keyword arguments, "no_decay": [...], "overrides": {...}, "rules":
            [...], "layer_decay": ...}``), ``scheduler`` (likewise, with
            ``num_warmup_steps`` and the schedule's own arguments), and
            ``num_training_steps`` (for the scheduler; its section may give its own).

    Raises:
        ValueError: an unknown key (with the closest one), or a bad value.
        TypeError: a section of the wrong shape, or an argument the optimizer or
            schedule does not take (with the closest one).
        UnknownNameError: an unknown optimizer or schedule name.
    """
    return Spec.from_config(config).build(model_or_params)
