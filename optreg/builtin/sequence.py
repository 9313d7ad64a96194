"""``sequence``: phases of any registered schedules, one after the other.

::

    get_scheduler("sequence", optimizer, num_training_steps=100, phases=[
        {"name": "constant_with_warmup", "steps": 10, "num_warmup_steps": 10},
        {"name": "cosine", "steps": 90},
    ])

Inside a phase the multiplier is exactly what that schedule computes at the local step
(the step minus the phase's start), the schedule built with ``num_training_steps`` = the
phase's length and ``num_warmup_steps`` = 0 unless the phase gives one. From
``num_training_steps`` on, the multiplier stays at the last phase's value at its own end
(local step = its length), so a cosine does not rise again. There is no handoff to get
wrong (torch's ``SequentialLR`` has had open bugs at the boundary for years): the whole
sequence is one pure function of the step, bound with `functools.partial()` over the
phases' own pure functions (each builtin's declared pure form: no optimizer is built), in a
``LambdaLR``; it pickles and resumes bit-identically.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from optreg._core import signature, validate
from optreg.builtin.schedule_lr import ScheduleLR, built_in_place, default_lr

__all__ = ["get_sequence_schedule"]

_RESERVED = ("name", "steps")


def _sequence(
    step: int,
    *,
    starts: tuple[int, ...],
    lengths: tuple[int, ...],
    functions: tuple[Callable[[int], float], ...],
) -> float:
    """The multiplier at ``step``: the phase holding it, at its local step."""
    end = starts[-1] + lengths[-1]
    if step >= end:  # after the last phase: its value at its own end
        return functions[-1](lengths[-1])
    i = bisect.bisect_right(starts, step) - 1
    return functions[i](step - starts[i])


def _lengths(phases: Sequence[Mapping[str, Any]], n: int) -> tuple[int, ...]:
    """Each phase's length from its ``steps``: a count, or a fraction in (0, 1) of ``n``.

    Fractions are placed one after the other and each boundary rounded to the nearest
    step (half up), so fractions that add up to 1 fill ``n`` exactly.

    Raises:
        ValueError: a phase shorter than one step, or an invalid count.
    """
    position, boundary, out = 0.0, 0, []
    for i, phase in enumerate(phases):
        value = phase["steps"]
        if isinstance(value, float) and 0.0 < value < 1.0:
            position += value * n
        else:
            position += validate.steps(f"phases[{i}].steps", value)
        end = math.floor(position + 0.5)
        if end - boundary < 1:
            raise ValueError(
                f"`phases[{i}].steps` must make a phase of at least 1 step, got {value!r}"
                + (f" (of num_training_steps={n})" if isinstance(value, float) else "")
            )
        out.append(end - boundary)
        boundary = end
    return tuple(out)


def _phase_functions(
    index: int, phase: Mapping[str, Any], length: int, optimizer: Optimizer
) -> list[Callable[[int], float]]:
    """The phase's step functions, its schedule built for ``length`` steps: the pure form a
    schedule declares (``FactoryContract.multiplier``, every builtin), one function for
    every group; else (a plugin's ``LambdaLR``) one per group, from the schedule built on
    the optimizer itself, whose groups' learning rates are put back.

    Raises:
        ValueError: a metric-driven schedule, or one that is not a ``LambdaLR``.
    """
    from optreg._core.loading import contract
    from optreg._core.registry import schedulers

    name = phase.get("name")
    where = f"phases[{index}] ({name!r})"
    entry = schedulers.resolve(name)  # type: ignore[arg-type]
    if entry.name == "sequence":
        raise ValueError(f"{where}: a sequence cannot hold another sequence")
    factory = schedulers.load(entry)
    specific = {k: v for k, v in phase.items() if k not in _RESERVED}
    warmup = specific.pop("num_warmup_steps", 0)
    if "num_training_steps" in specific:
        raise ValueError(
            f"{where}: a phase's num_training_steps is its `steps` ({length}); do not give both"
        )
    label = f"sequence {where}"
    call = validate.schedule_arguments(label, label, factory, warmup, length, specific)
    call.pop("last_epoch", None)  # the sequence's own counts the steps
    pure = contract(entry).multiplier
    if pure is not None:
        if signature.takes(pure, "base_lr") == "named":
            call["base_lr"] = default_lr(optimizer)
        return [pure(**call)]
    built = built_in_place(optimizer, lambda: factory(optimizer, **call))
    if signature.step_needs_metric(built):
        raise ValueError(
            f"{where} is metric-driven: it changes the lr from the metrics it is given, and "
            "a sequence is a function of the step alone; use it on its own"
        )
    lambdas = getattr(built, "lr_lambdas", None)
    if not isinstance(built, LambdaLR) or not isinstance(lambdas, list):
        raise ValueError(
            f"{where} built a {type(built).__name__}, not a LambdaLR: a sequence is made of "
            "schedules that are one function of the step per param group"
        )
    return list(lambdas)


def get_sequence_schedule(
    optimizer: Optimizer,
    num_training_steps: int,
    phases: Sequence[Mapping[str, Any]],
    last_epoch: int = -1,
) -> ScheduleLR:
    """Run registered schedules one after the other, each exact at its local step.

    Args:
        optimizer: the optimizer whose learning rates are scheduled.
        num_training_steps: the total; the phases' lengths must add up to it.
        phases: one mapping per phase: ``name`` (any registered schedule but a
            metric-driven one), ``steps`` (a count, or a fraction in (0, 1) of
            ``num_training_steps``: fractions are laid end to end and each boundary
            rounded to the nearest step, so fractions adding up to 1 fill it exactly),
            and that schedule's own arguments (``num_warmup_steps`` defaults to 0; a
            fraction there is of the phase's length).
        last_epoch: as for ``LambdaLR``.

    Returns:
        A ``LambdaLR`` (`ScheduleLR`).

    Raises:
        ValueError: no phases, a phase length below 1, lengths that do not add up
            to ``num_training_steps`` (the numbers are shown), a metric-driven or
            non-``LambdaLR`` phase, or a phase's own invalid arguments.
        TypeError: ``phases`` is not a list of mappings, or a phase's unknown keyword.
        UnknownNameError: a phase names no registered schedule.
    """
    n = validate.steps("num_training_steps", num_training_steps)
    if isinstance(phases, (str, bytes, Mapping)) or not isinstance(phases, Sequence):
        raise TypeError(
            "`phases` must be a list of phase mappings ({'name': ..., 'steps': ...}), got "
            f"{type(phases).__name__}: {phases!r:.80}"
        )
    if not phases:
        raise ValueError("`phases` must hold at least one phase, got []")
    for i, phase in enumerate(phases):
        if not isinstance(phase, Mapping) or "name" not in phase or "steps" not in phase:
            raise TypeError(
                f"`phases[{i}]` must be a mapping with 'name' and 'steps' (and the schedule's "
                f"own arguments), got {phase!r:.80}"
            )
    lengths = _lengths(phases, n)
    if sum(lengths) != n:
        raise ValueError(
            "the phase lengths must add up to num_training_steps: "
            f"{' + '.join(map(str, lengths))} = {sum(lengths)} != {n}"
        )
    starts = (0, *itertools.accumulate(lengths[:-1]))
    per_phase = [_phase_functions(i, p, lengths[i], optimizer) for i, p in enumerate(phases)]
    groups = len(optimizer.param_groups)
    functions: list[Callable[[int], float]] = [
        partial(
            _sequence,
            starts=starts,
            lengths=lengths,
            functions=tuple(fns[g] if len(fns) == groups else fns[0] for fns in per_phase),
        )
        for g in range(groups)
    ]
    return ScheduleLR(optimizer, functions, last_epoch)
