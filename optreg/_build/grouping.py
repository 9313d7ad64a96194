"""The grouping a build asks for, as one spec: no-decay patterns, overrides, rules and
layer decay (their options were checked against the factory by `optreg._core.call`).

[optreg.get_optimizer][] takes them as keywords, [optreg.build][] from a config,
and the checkpoint record stores `Grouping.ruling()` with ``no_decay`` / ``overrides``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Grouping", "check_grouping"]


@dataclass(frozen=True)
class Grouping:
    """How the parameters are split into param groups (all optional)."""

    no_decay: list[str] | None = None
    overrides: Mapping[str, Mapping[str, Any]] | None = None
    rules: Sequence[Mapping[str, Any]] | None = None
    layer_decay: float | None = None
    layer_pattern: str | None = None

    @property
    def ruled(self) -> bool:
        """Rules or layer decay: options assigned per parameter by name."""
        return self.rules is not None or self.layer_decay is not None

    def given(self) -> dict[str, Any]:
        """The grouping keywords given (as [optreg.get_optimizer][] takes them)."""
        given = {"no_decay": self.no_decay, "overrides": self.overrides, **self.ruling()}
        return {k: v for k, v in given.items() if v is not None}

    def ruling(self) -> dict[str, Any]:
        """``rules`` / ``layer_decay`` / ``layer_pattern``, those given."""
        given: dict[str, Any] = {
            "rules": self.rules,
            "layer_decay": self.layer_decay,
            "layer_pattern": self.layer_pattern,
        }
        return {k: v for k, v in given.items() if v is not None}


def check_grouping(
    label: str,
    *,
    no_decay: Iterable[str] | str | None,
    overrides: Mapping[str, Mapping[str, Any]] | None,
    rules: Sequence[Mapping[str, Any]] | None,
    layer_decay: float | None,
    layer_pattern: str | None,
) -> Grouping:
    """The grouping keywords as one `Grouping` (``overrides`` as `optreg._core.call`
    checked them).

    Raises:
        ValueError: ``layer_pattern`` without ``layer_decay`` or not a regex with a
            group, ``rules`` / ``layer_decay`` with ``overrides``.
    """
    from optreg.params._rules import layer_regex

    if no_decay is not None:  # one pattern, not its characters; a generator read once
        no_decay = [no_decay] if isinstance(no_decay, str) else list(no_decay)
    if layer_pattern is not None:
        if layer_decay is None:
            raise ValueError(
                f"{label}: layer_pattern={layer_pattern!r} is read only with layer_decay "
                "(it finds each parameter's layer); give layer_decay too, or drop it"
            )
        layer_regex(layer_pattern)
    if overrides and (rules or layer_decay is not None):
        raise ValueError(
            f"{label}: give rules= or overrides=, not both (a rule does what an override does)"
        )
    return Grouping(no_decay, overrides, rules, layer_decay, layer_pattern)
