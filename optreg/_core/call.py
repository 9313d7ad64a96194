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
    "checked_group_options",
    "checked_kwargs",
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
        group_options: each option set the grouping gives (an override's, a rule's),
            checked, in the order given.
    """

    entry: Entry
    factory: Any
    contract: FactoryContract
    label: str
    kwargs: dict[str, Any]
    group_options: tuple[dict[str, Any], ...]


def optimizer_call(
    name: str,
    kwargs: dict[str, Any],
    group_options: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> CheckedCall:
    """Resolve and load ``name``, then check its keywords and every group option set.

    Args:
        name: the optimizer's name.
        kwargs: its hyperparameters.
        group_options: ``(where, options)`` of each override and rule, in order (what
            ``optreg.params._grouping.Grouping.option_sets()`` lists).

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
    checked = tuple(
        checked_group_options(f"{where} {at}", factory, contract, options)
        for at, options in group_options
    )
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


def checked_group_options(
    where: str, factory: Any, contract: FactoryContract, options: Mapping[str, Any]
) -> dict[str, Any]:
    """One override's or rule's options, checked like keyword arguments: each one the
    optimizer takes (or its contract's group options; a composite's side key and the
    options one side takes, as its `optreg.Sides` declares them).

    Raises:
        TypeError: an option the optimizer does not take, or ``optimizer`` for one that
            does not route its parameters.
        ValueError: an option value of the wrong kind (see `optreg._core.validate`).
    """
    sides = contract.sides
    side_options = () if sides is None else (sides.key, *(k for o in sides.own.values() for k in o))
    names = [k for k in options if k not in contract.group_options and k not in side_options]
    if "optimizer" in names:
        if not contract.routes_params:
            raise TypeError(
                f"{where} sets 'optimizer', which only a composite optimizer "
                "(such as 'muon_adamw') takes"
            )
        names.remove("optimizer")
    signature.check_keywords(where, factory, names)
    checked = validate.hyperparameters(where, factory, {k: options[k] for k in names}, group=True)
    return {**options, **checked}
