"""The grouping keywords as one value, checked once: `Grouping`, and the one grouping
function, [optreg.group_parameters][].

[optreg.get_optimizer][], [optreg.group_parameters][] and ``muon_adamw`` take five
keywords that say how parameters are grouped: ``no_decay``, ``overrides``, ``rules``,
``layer_decay`` and ``layer_pattern``. Each caller turns them into a `Grouping` with
`Grouping.of()` (where everything that does not depend on the parameters is checked:
shapes, types, regexes, ranges, "rules or overrides, not both") and reads them from it
alone: the option sets a factory checks (`Grouping.option_sets()`: each override and each
rule, one list), the record (`Grouping.given()`), the groups (`Grouping.groups()`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from optreg.params._rules import RULE_KEYS, assign, check_rules, layer_regex, named_of
from optreg.params._split import param_groups

__all__ = ["Grouping", "group_parameters"]


@dataclass(frozen=True)
class Grouping:
    """How parameters are split into param groups: the five grouping keywords, checked.

    Attributes:
        no_decay: name patterns exempt from weight decay (None: the default rule).
        overrides: ``{pattern: options}``; the first pattern a name matches wins.
        rules: declarative rules (every rule that selects a parameter applies).
        layer_decay: layer-wise lr decay.
        layer_pattern: the regex finding a name's layer index.
    """

    no_decay: tuple[str, ...] | None = None
    overrides: Mapping[str, Mapping[str, Any]] | None = None
    rules: tuple[Mapping[str, Any], ...] | None = None
    layer_decay: float | None = None
    layer_pattern: str | None = None

    @classmethod
    def of(
        cls,
        *,
        no_decay: Iterable[str] | str | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        rules: Sequence[Mapping[str, Any]] | None = None,
        layer_decay: float | None = None,
        layer_pattern: str | None = None,
        where: str = "group_parameters",
    ) -> Grouping:
        """The keywords as one `Grouping`, checked as far as they can be without the
        parameters (which patterns match and which modules rules select are checked when
        the groups are made).

        Args:
            no_decay: one pattern or an iterable of them (a generator is read once).
            overrides: ``{pattern: {option: value}}``.
            rules: a list of rule dicts.
            layer_decay: a number in (0, 1].
            layer_pattern: a regex with a group; only with ``layer_decay``.
            where: how errors name the call (``"optimizer 'adamw' (...)"``).

        Raises:
            TypeError: a keyword of the wrong type (overrides that are not
                ``{str: dict}``, a rule that is not a dict, a selector of the wrong type).
            ValueError: a value out of range, a regex that does not compile, a rule that
                selects nothing or sets nothing, ``layer_pattern`` without
                ``layer_decay``, or ``rules`` / ``layer_decay`` with ``overrides``.
        """
        patterns = None
        if no_decay is not None:  # one pattern, not its characters; a generator read once
            patterns = (no_decay,) if isinstance(no_decay, str) else tuple(no_decay)
        if overrides is not None:
            _check_overrides(where, overrides)
        if rules is not None:
            check_rules(rules)
            rules = tuple(rules)
        if layer_decay is not None and (
            isinstance(layer_decay, bool)
            or not isinstance(layer_decay, (int, float))
            or not 0 < layer_decay <= 1
        ):
            raise ValueError(f"layer_decay must be a number in (0, 1], got {layer_decay!r}")
        if layer_pattern is not None:
            if layer_decay is None:
                raise ValueError(
                    f"{where}: layer_pattern={layer_pattern!r} is read only with layer_decay "
                    "(it finds each parameter's layer); give layer_decay too, or drop it"
                )
            layer_regex(layer_pattern)
        if overrides and (rules or layer_decay is not None):
            raise ValueError(
                f"{where}: give rules= or overrides=, not both (a rule does what an override does)"
            )
        return cls(patterns, overrides or None, rules, layer_decay, layer_pattern)

    @property
    def ruled(self) -> bool:
        """Rules or layer decay: options assigned per parameter by name."""
        return self.rules is not None or self.layer_decay is not None

    def given(self) -> dict[str, Any]:
        """The keywords given, as [optreg.get_optimizer][] takes them (a record keeps them)."""
        given = {
            "no_decay": None if self.no_decay is None else list(self.no_decay),
            "overrides": self.overrides,
            "rules": None if self.rules is None else list(self.rules),
            "layer_decay": self.layer_decay,
            "layer_pattern": self.layer_pattern,
        }
        return {k: v for k, v in given.items() if v is not None}

    def option_sets(self) -> list[tuple[str, Mapping[str, Any]]]:
        """``(where, options)`` for each override and each rule, in order: every group
        option the grouping sets, as one list (a rule's selectors and ``lr_scale`` left
        out), for the optimizer to check as it checks its keywords."""
        out: list[tuple[str, Mapping[str, Any]]] = [
            (f"overrides[{pattern!r}]", options)
            for pattern, options in (self.overrides or {}).items()
        ]
        for i, rule in enumerate(self.rules or ()):
            named = f"rule {rule['name']!r}" if "name" in rule else f"rules[{i}]"
            out.append((named, {k: v for k, v in rule.items() if k not in RULE_KEYS}))
        return out

    def with_options(self, checked: Sequence[Mapping[str, Any]]) -> Grouping:
        """This grouping with the option sets as an optimizer checked them (numbers as
        Python numbers), in `option_sets()`' order."""
        overrides = self.overrides
        count = len(overrides or {})
        if overrides:
            overrides = {p: dict(o) for p, o in zip(overrides, checked[:count], strict=True)}
        rules = self.rules
        if rules is not None:
            rules = tuple(
                {**rule, **options} for rule, options in zip(rules, checked[count:], strict=True)
            )
        return replace(self, overrides=overrides, rules=rules)

    def groups(
        self, params: Any, *, weight_decay: float | None = None, lr: Any = None
    ) -> list[dict[str, Any]]:
        """The param groups of ``params`` (see [optreg.group_parameters][]).

        Raises:
            TypeError / ValueError: bad ``params``; a pattern or rule that matches no
                parameter; rules that conflict; rules or layer decay without names.
        """
        return param_groups(
            params,
            weight_decay=weight_decay,
            no_decay=self.no_decay,
            overrides=self.overrides,
            options=self.assigned(params),
            lr=lr,
        )

    def assigned(self, params: Any) -> dict[str, dict[str, Any]] | None:
        """``{parameter name: options}`` the rules and layer decay give (None: neither
        was given).

        Raises:
            ValueError: no names in ``params``; a rule that matches nothing; conflicts.
        """
        if not self.ruled:
            return None
        named, model = named_of(params)
        return assign(
            named,
            self.rules,
            model=model,
            layer_decay=self.layer_decay,
            layer_pattern=self.layer_pattern,
        )


def _check_overrides(where: str, overrides: Any) -> None:
    """Raises: TypeError: overrides that are not ``{str: options dict}``, or an options
    dict giving ``params``."""
    shape = (
        f"{where}: overrides must map name patterns to option dicts, e.g. "
        "{'embed': {'lr': 1e-4}}; got "
    )
    if not isinstance(overrides, Mapping):
        raise TypeError(f"{shape}{type(overrides).__name__}: {overrides!r:.80}")
    for pattern, options in overrides.items():
        if not isinstance(pattern, str) or not isinstance(options, Mapping):
            raise TypeError(f"{shape}{pattern!r}: {options!r:.80}")
        if "params" in options:
            raise TypeError(
                f"{where} overrides[{pattern!r}]: 'params' is not an option; the pattern "
                "selects them"
            )


def group_parameters(
    params: Any,
    *,
    rules: Sequence[Mapping[str, Any]] | None = None,
    layer_decay: float | None = None,
    layer_pattern: str | None = None,
    weight_decay: float | None = None,
    no_decay: Any = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    lr: Any = None,
) -> list[dict[str, Any]]:
    """The param groups [optreg.get_optimizer][] gives an optimizer, without building one.

    For a plugin whose factory splits the parameters itself (``FactoryContract.routes_params``)
    and for anyone who wants optreg's grouping for an optimizer built by hand::

        groups = optreg.group_parameters(
            model, rules=[{"module": "embedding", "lr_scale": 0.1}], weight_decay=0.1, lr=1e-3
        )
        opt = torch.optim.AdamW(groups, lr=1e-3, weight_decay=0.1)

    Args:
        params: an ``nn.Module``, ``(name, tensor)`` pairs, tensors or param-group dicts.
        rules: declarative rules (selectors and the options they set); need names.
        layer_decay: layer-wise lr decay; needs names.
        layer_pattern: a regex whose first group is the layer index.
        weight_decay: with a value > 0, the no-decay parameters get a 0.0 group.
        no_decay: name patterns exempt from weight decay (default: biases, norms, 1-D).
        overrides: ``{pattern: {option: value}}``; not together with ``rules``.
        lr: the optimizer's lr, which a rule's ``lr_scale`` multiplies.

    Returns:
        Fresh param-group dicts.

    Raises:
        TypeError: a keyword of the wrong type, or bad ``params``.
        ValueError: what `Grouping.of()` refuses, a pattern or rule that matches no
            parameter, conflicting rules, or names missing where they are needed.
    """
    grouping = Grouping.of(
        no_decay=no_decay,
        overrides=overrides,
        rules=rules,
        layer_decay=layer_decay,
        layer_pattern=layer_pattern,
    )
    return grouping.groups(params, weight_decay=weight_decay, lr=lr)
