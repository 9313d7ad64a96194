"""The grouping a build asks for, as one spec checked once: no-decay patterns, overrides,
rules and layer decay, against the optimizer's factory and contract.

[optreg.get_optimizer][] takes them as keywords, [optreg.build][] from a config,
and the checkpoint record stores `Grouping.ruling()` with ``no_decay`` / ``overrides``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optreg._core import signature

from optreg._core import validate
from optreg._core.contract import FactoryContract

__all__ = ["Grouping", "check_grouping", "check_rule_options", "checked_overrides"]


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
    factory: Any,
    contract: FactoryContract,
    *,
    no_decay: Iterable[str] | str | None,
    overrides: Mapping[str, Mapping[str, Any]] | None,
    rules: Sequence[Mapping[str, Any]] | None,
    layer_decay: float | None,
    layer_pattern: str | None,
) -> Grouping:
    """The grouping keywords, checked against the factory, as one `Grouping`.

    Raises:
        TypeError: an override or rule option the optimizer does not take.
        ValueError: ``layer_pattern`` without ``layer_decay`` or not a regex with a
            group, ``rules`` / ``layer_decay`` with ``overrides``, a bad option value.
    """
    from optreg.params._rules import layer_regex

    if no_decay is not None:  # one pattern, not its characters; a generator read once
        no_decay = [no_decay] if isinstance(no_decay, str) else list(no_decay)
    if overrides:
        overrides = checked_overrides(label, factory, overrides, contract.group_options)
    if rules is not None:
        check_rule_options(label, factory, rules, contract)
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


def check_rule_options(
    label: str, factory: Any, rules: Sequence[Mapping[str, Any]], contract: FactoryContract
) -> None:
    """Every option a rule sets is one the optimizer takes (or lr_scale / optimizer).

    Raises:
        TypeError: an option the optimizer does not take, or ``optimizer`` for one that
            does not route its parameters.
    """
    from optreg.params._rules import SELECTORS

    if not isinstance(rules, (list, tuple)):
        return  # assign() says what is wrong with it
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            continue
        where = f"{label} rules[{i}]"
        skip = (*SELECTORS, "lr_scale", *contract.group_options)
        options = [k for k in rule if k not in skip]
        if "optimizer" in options:
            if not contract.routes_params:
                raise TypeError(
                    f"{where} sets 'optimizer', which only a composite optimizer "
                    "(such as 'muon_adamw') takes"
                )
            options.remove("optimizer")
        signature.check_keywords(where, factory, options)
        validate.hyperparameters(where, factory, {k: rule[k] for k in options}, group=True)


def checked_overrides(
    label: str, factory: Any, overrides: Mapping[str, Any], group_options: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """Check ``overrides`` like keyword arguments: every option one the optimizer takes.

    Raises:
        TypeError: a pattern that is not a str, options that are not a mapping, or an
            option the optimizer does not take (``params`` included).
        ValueError: an option value of the wrong kind (see `optreg._core.validate`).
    """
    shape = (
        f"{label}: overrides must map name patterns to option dicts, e.g. "
        "{'embed': {'lr': 1e-4}}; got "
    )
    if not isinstance(overrides, Mapping):
        raise TypeError(f"{shape}{type(overrides).__name__}: {overrides!r:.80}")
    out: dict[str, dict[str, Any]] = {}
    for pattern, options in overrides.items():
        where = f"{label} overrides[{pattern!r}]"
        if not isinstance(pattern, str) or not isinstance(options, Mapping):
            raise TypeError(f"{shape}{pattern!r}: {options!r:.80}")
        if "params" in options:
            raise TypeError(f"{where}: 'params' is not an option; the pattern selects them")
        signature.check_keywords(where, factory, [k for k in options if k not in group_options])
        out[pattern] = validate.hyperparameters(where, factory, options, group=True)
    return out
