"""The optreg exception tree.

::

    OptregError
     ├── UnknownNameError(OptregError, KeyError, ValueError)
     ├── DuplicateNameError(OptregError, ValueError)
     ├── AmbiguousNameError(OptregError, ValueError)
     ├── PluginLoadError(OptregError, ImportError)
     ├── MissingDependencyError(OptregError, ImportError)
     ├── CheckpointMismatchError(OptregError, ValueError)   a record that does not fit
     └── UsageError(OptregError)             a command-line mistake (``optreg``, exit 2)

    UserWarning
     ├── CheckpointMismatchWarning           a record's hyperparameters differ; they continue
     ├── OptregPluginWarning                 a plugin misbehaved; optreg contained it
     ├── PagedFallbackWarning                a paged bitsandbytes optimizer got CPU parameters
     ├── ScheduleFightsOptimizerWarning      a decaying lr schedule on a schedule-free optimizer
     └── WarmupLongerThanTrainingWarning     num_warmup_steps > num_training_steps

Every error names the thing, shows the value and says what is allowed. The
multiple inheritance keeps code written for ``transformers.get_scheduler`` (which
raises ``ValueError``) or for a plain mapping (``KeyError``) working.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable

__all__ = [
    "AmbiguousNameError",
    "CheckpointMismatchError",
    "CheckpointMismatchWarning",
    "DuplicateNameError",
    "MissingDependencyError",
    "OptregError",
    "OptregPluginWarning",
    "PagedFallbackWarning",
    "PluginLoadError",
    "ScheduleFightsOptimizerWarning",
    "UnknownNameError",
    "UsageError",
    "WarmupLongerThanTrainingWarning",
    "close_matches",
]


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates that look like ``word``, best first."""
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)


class OptregError(Exception):
    """Base class of every error optreg raises on purpose."""


class UnknownNameError(OptregError, KeyError, ValueError):
    """A name that no registered optimizer or scheduler answers to.

    Attributes:
        kind: ``"optimizer"`` or ``"scheduler"``.
        name: the name as the caller gave it.
        suggestions: close registered names, best first.
        elsewhere: the other kind (``"scheduler"``) when the name is one of those.
    """

    def __init__(
        self, kind: str, name: object, known: Iterable[str], elsewhere: str | None = None
    ) -> None:
        self.kind = kind
        self.name = name
        self.elsewhere = elsewhere
        known = sorted(known)
        self.suggestions = close_matches(str(name).strip().lower().replace("-", "_"), known)
        # the args rebuild the error when it is unpickled (in a multiprocessing parent,
        # say): the suggestions stand in for the known names
        super().__init__(kind, name, tuple(self.suggestions), elsewhere)

    def __str__(self) -> str:  # KeyError would repr() the args otherwise
        msg = f"unknown {self.kind} {self.name!r}"
        if self.elsewhere is not None:
            call = "get_scheduler" if self.elsewhere == "scheduler" else "get_optimizer"
            return (
                f"{msg}: {self.name!r} is a{'n' if self.elsewhere[0] == 'o' else ''} "
                f"{self.elsewhere} name; build it with optreg.{call}({self.name!r}, ...) "
                f"(see `optreg list {self.kind}s` for the {self.kind}s)"
            )
        if self.suggestions:
            msg += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        return msg + f" (see `optreg list {self.kind}s`)"


class DuplicateNameError(OptregError, ValueError):
    """A name registered twice without ``override=True``."""


class AmbiguousNameError(OptregError, ValueError):
    """Two third-party distributions provide the same plain name."""


class PluginLoadError(OptregError, ImportError):
    """A plugin's entry point or hook failed; chained to the original error."""


class MissingDependencyError(OptregError, ImportError):
    """A name needs an optional dependency that is not installed."""


class CheckpointMismatchError(OptregError, ValueError):
    """A checkpoint record that does not fit the objects it is loaded into (another
    optimizer or schedule, other parameter groups or shapes, other schedule arguments);
    raised before anything is loaded."""


class UsageError(OptregError):
    """A command-line mistake: ``optreg`` reports it in one line and exits with 2."""


class CheckpointMismatchWarning(UserWarning):
    """A checkpoint saved with other hyperparameters than the optimizer it is loaded into
    was built with: the checkpoint's values continue (torch's ``load_state_dict``
    restores every group's options)."""


class OptregPluginWarning(UserWarning):
    """A plugin misbehaved (a notification hook raised); optreg contained it and carried on."""


class PagedFallbackWarning(UserWarning):
    """A paged bitsandbytes optimizer got CPU parameters: their state is not paged."""


class WarmupLongerThanTrainingWarning(UserWarning):
    """``num_warmup_steps > num_training_steps`` (a smoke test's ``--max_steps 10`` under
    a config's ``warmup_steps=500``): the schedule computes what transformers computes
    there, the warmup never finishing, and says so once per schedule built."""


class ScheduleFightsOptimizerWarning(UserWarning):
    """A decaying lr schedule given to an optimizer that schedules itself: a schedule-free
    optimizer (a train/eval name) averages its iterates in place of a decay, and a decay
    on top shrinks the steps it averages (use ``constant`` or ``constant_with_warmup``)."""


def user_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` that points at the first frame outside
    optreg (the user's call), from the function that calls ``warnings.warn``."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module != "optreg" and not module.startswith("optreg."):
            break
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level
