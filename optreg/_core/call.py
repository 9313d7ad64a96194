"""An optimizer's call checked once: its name resolved and loaded, then every keyword and
every group option (overrides, rules) against its factory and contract.

[optreg.get_optimizer][] enters here with the name and leaves with a `CheckedCall`:
what a name reaches and what it is called with is decided in this one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optreg._core import loading, signature, validate
from optreg._core.contract import FactoryContract
from optreg._core.entry import Entry
from optreg._core.registry import optimizers

__all__ = [
    "CheckedCall",
    "check_rule_options",
    "checked_kwargs",
    "checked_overrides",
    "label",
    "optimizer_call",
]


def label(entry: Entry) -> str:
    """How errors name an entry: ``optimizer 'adamw' (optreg.builtin.torch_optim:adamw)``."""
    return f"{entry.kind} {entry.name!r} ({entry.target_ref})"


@dataclass(frozen=True)
class CheckedCall:
    """A name resolved and its arguments checked, ready to build.

    Attributes:
        entry: what the name reaches.
        factory: its loaded target.
        contract: what the factory declares.
        label: how errors name it.
        kwargs: the hyperparameters, checked (numbers as Python numbers).
        overrides: the overrides, each pattern's options checked; None when none.
    """

    entry: Entry
    factory: Any
    contract: FactoryContract
    label: str
    kwargs: dict[str, Any]
    overrides: dict[str, dict[str, Any]] | None


def optimizer_call(
    name: str,
    kwargs: dict[str, Any],
    *,
    overrides: Mapping[str, Any] | None,
    rules: Sequence[Mapping[str, Any]] | None,
    rule_keys: Sequence[str],
) -> CheckedCall:
    """Resolve and load ``name``, then check its keywords, overrides and rule options.

    Args:
        name: the optimizer's name.
        kwargs: its hyperparameters.
        overrides: ``{pattern: options}``, or None.
        rules: the rules, or None (their shape is checked where they are applied).
        rule_keys: the keys of a rule that are not options (its selectors, ``lr_scale``).

    Returns:
        The `CheckedCall`.

    Raises:
        UnknownNameError, AmbiguousNameError, MissingDependencyError, PluginLoadError:
            what resolving and loading the name raise.
        TypeError: a keyword or option the optimizer does not take.
        ValueError: a value of the wrong kind.
    """
    entry = optimizers.resolve(name)
    factory = optimizers.load(entry)
    contract = loading.contract(entry)
    where = label(entry)
    kwargs = checked_kwargs(where, factory, contract, kwargs)
    checked = (
        checked_overrides(where, factory, overrides, contract.group_options) if overrides else None
    )
    if rules is not None:
        check_rule_options(where, factory, rules, contract, rule_keys)
    return CheckedCall(entry, factory, contract, where, kwargs, checked)


def checked_kwargs(
    label: str, factory: Any, contract: FactoryContract, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The hyperparameters, checked against the factory (its own check where it has one).

    Raises:
        TypeError: a keyword it does not take (``optreg_prepare`` included).
        ValueError: a value of the wrong kind.
    """
    if "optreg_prepare" in kwargs:
        raise TypeError(
            f"{label}: optreg_prepare is what optreg passes a factory that splits the "
            "parameters itself (see optreg.hookspecs), not an option"
        )
    if contract.check_keywords is not None:  # a factory that says more (bnb)
        contract.check_keywords(kwargs)
    else:
        signature.check_keywords(label, factory, kwargs)
    return validate.hyperparameters(label, factory, kwargs)


def check_rule_options(
    label: str,
    factory: Any,
    rules: Sequence[Mapping[str, Any]],
    contract: FactoryContract,
    rule_keys: Sequence[str],
) -> None:
    """Every option a rule sets is one the optimizer takes (or lr_scale / optimizer).

    Raises:
        TypeError: an option the optimizer does not take, or ``optimizer`` for one that
            does not route its parameters.
    """
    if not isinstance(rules, (list, tuple)):
        return  # assign() says what is wrong with it
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            continue
        where = f"{label} rules[{i}]"
        skip = (*rule_keys, *contract.group_options)
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
