"""The command line's argument types: ``KEY=VALUE`` pairs, step counts, seeds, and a
parser whose errors are one line (exit 2)."""

from __future__ import annotations

import argparse
import ast
from typing import Any, NoReturn

from optreg._core import validate
from optreg._core.table import one_line

__all__ = [
    "COMPARE_STEPS",
    "MAX_COMPARE_STEPS",
    "MAX_SEED",
    "PROG",
    "TRAINING_STEPS",
    "WARMUP_STEPS",
    "Parser",
    "StepCount",
    "parse_kw",
    "positive_float",
    "seed",
]

PROG = "optreg"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: ...``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)\n")


def parse_kw(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE``; VALUE is a Python literal when it parses as one, else a str.

    KEY may be scoped to one schedule as ``NAME.KEY`` (e.g. ``cosine.num_cycles=2``).

    >>> parse_kw("num_cycles=2"), parse_kw("mode=max")
    (('num_cycles', 2), ('mode', 'max'))

    Raises:
        argparse.ArgumentTypeError: no ``=``, or KEY is not a Python identifier.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    scope, dot, attr = key.rpartition(".")
    if not sep or not attr.isidentifier() or (dot and not scope.strip()):
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE or NAME.KEY=VALUE with KEY a Python identifier, got {text!r}"
        )
    try:
        value: Any = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = raw
    return key, value


def number(text: str) -> object:
    """A flag's text as an int, else a float, else the text (for the check to name)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class StepCount:
    """One check of a step count, however it arrives: a flag's text (an argparse type)
    or a config's value (`check()`); both go through `optreg._core.validate.steps()`."""

    def __init__(self, what: str, *, low: int, high: int = validate.MAX_STEPS) -> None:
        self.what, self.low, self.high = what, low, high

    def check(self, value: object, what: str | None = None) -> int:
        """The count ``value`` stands for.

        Raises:
            argparse.ArgumentTypeError: what `optreg._core.validate.steps()` refuses.
        """
        if isinstance(value, str):
            value = number(value)
        try:
            return validate.steps(what or self.what, value, low=self.low, high=self.high)
        except (TypeError, ValueError) as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    def __call__(self, text: str) -> int:
        return self.check(text)


#: compare trains for real: a run this long takes hours on a CPU.
MAX_COMPARE_STEPS = 100_000
#: torch seeds are 64-bit; compare derives a few seeds from the one given.
MAX_SEED = 2**63 - 16

WARMUP_STEPS = StepCount("num_warmup_steps", low=0)
TRAINING_STEPS = StepCount("num_training_steps", low=1)
COMPARE_STEPS = StepCount("steps", low=1, high=MAX_COMPARE_STEPS)


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is 0 to {MAX_SEED:,}, got {value:,}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


# -- list -------------------------------------------------------------------
