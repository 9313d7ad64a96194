"""A composite optimizer's param groups: [optreg.group_sides][], the one implementation
that routes, groups and tags parameters for every composite (``muon_adamw``, the adapters'
Muon family), from the `optreg.Sides` the composite declares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from optreg._core.contract import Sides
from optreg.params._grouping import Grouping
from optreg.params._split import check_overrides, matches, param_groups

__all__ = ["group_sides", "side_groups"]


class _Translate:
    """Group options from rules and overrides, each given to the side it belongs to (its
    ``own`` name there); remembers which reached their side, for `check()`."""

    def __init__(self, sides: Sides) -> None:
        self.sides = sides
        self.owner = {option: side for side, own in sides.own.items() for option in own}
        self.given: dict[tuple[str, str], list[str]] = {}  # (source, option) -> names
        self.applied: set[tuple[str, str]] = set()

    def __call__(
        self, side: str, source: str, names: Sequence[str], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        out = {}
        for key, value in options.items():
            owner = self.owner.get(key)
            if owner is None:
                out[key] = value
                continue
            self.given.setdefault((source, key), []).extend(names)
            if owner == side:
                out[self.sides.own[side][key]] = value
                self.applied.add((source, key))
        return out

    def check(self) -> None:
        """Raises: ValueError: an option that reached no parameter of its side."""
        for (source, key), names in self.given.items():
            if (source, key) in self.applied:
                continue
            side = self.owner[key]
            others = [s for s in self.sides.values if s != side]
            shown = ", ".join(repr(n) for n in dict.fromkeys(names)) if names else "none"
            raise ValueError(
                f"{self.sides.label}: {source} sets {key!r}, an option of the {side} side, but "
                f"every parameter it selects goes to {' / '.join(others)} ({shown}): it would "
                f"be ignored; select {side}-side parameters, or set the other side's own option"
            )


def side_groups(
    params: Any, sides: Sides, hyperparameters: Mapping[str, Any], grouping: Grouping
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """``(param groups tagged with their side, {parameter name: side})``; see
    [optreg.group_sides][].

    Raises:
        TypeError / ValueError: what ``sides.route`` and the grouping raise; an option of
            one side that reaches none of its parameters.
    """
    if not isinstance(params, nn.Module):
        params = list(params)  # read more than once below
        if params and all(isinstance(g, Mapping) for g in params):
            return _tag_groups(params, sides, hyperparameters, grouping)
    options = grouping.assigned(params)
    by_value = {_hashable(v): side for side, v in sides.values.items()}
    forced = {
        n: by_value.get(_hashable(o[sides.key]), o[sides.key])
        for n, o in (options or {}).items()
        if sides.key in o
    }
    for o in (options or {}).values():
        o.pop(sides.key, None)
    routes, named = sides.route(params, forced, hyperparameters)
    patterns = dict(grouping.overrides or {})
    check_overrides(named, patterns)
    translate = _Translate(sides)
    out: list[dict[str, Any]] = []
    for side, value in sides.values.items():
        part = [(n, p) for n, p in named if routes[n] == side]
        if not part:
            continue
        mine = {}
        for pattern, opts in patterns.items():
            hit = [n for n, _ in part if matches(n, pattern)]
            if hit:
                mine[pattern] = translate(side, f"overrides[{pattern!r}]", hit, opts)
        ruled = None
        if options is not None:
            ruled = {n: translate(side, "a rule", [n], options[n]) for n, _ in part}
        for group in param_groups(
            part,
            weight_decay=hyperparameters.get(sides.weight_decay.get(side, "weight_decay")),
            no_decay=grouping.no_decay,
            overrides=mine,
            options=ruled,
            lr=_side_lr(sides, side, hyperparameters),
        ):
            group[sides.key] = value
            out.append(group)
    translate.check()
    return out, routes


def _tag_groups(
    groups: list[Mapping[str, Any]],
    sides: Sides,
    hyperparameters: Mapping[str, Any],
    grouping: Grouping,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Param-group dicts: one tagged with its side stays as given; one without is split
    by the route (its parameters named ``group{i}[{j}]``) into a group per side, each
    with its options.

    Raises:
        ValueError: grouping keywords, which need names.
    """
    if grouping.ruled:
        raise ValueError(
            f"{sides.label}: rules= and layer_decay= select parameters by name: pass the "
            "nn.Module or (name, tensor) pairs instead of param-group dicts"
        )
    out: list[dict[str, Any]] = []
    routes: dict[str, str] = {}
    given = param_groups(groups, no_decay=grouping.no_decay, overrides=grouping.overrides)
    for i, group in enumerate(given):
        side = sides.side_of(group)
        named = [(f"group{i}[{j}]", p) for j, p in enumerate(group["params"])]
        if side is not None:
            out.append(group)
            routes.update(dict.fromkeys((n for n, _ in named), side))
            continue
        routed, _ = sides.route(named, {}, hyperparameters)
        routes.update(routed)
        for part_side, value in sides.values.items():
            part = [p for n, p in named if routed[n] == part_side]
            if part:
                out.append({**group, "params": part, sides.key: value})
    return out, routes


def _side_lr(sides: Sides, side: str, hyperparameters: Mapping[str, Any]) -> Any:
    own = hyperparameters.get(sides.lr.get(side, "lr"))
    return hyperparameters.get("lr") if own is None else own


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def group_sides(
    params: Any,
    sides: Sides,
    hyperparameters: Mapping[str, Any],
    *,
    no_decay: Any = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    rules: Sequence[Mapping[str, Any]] | None = None,
    layer_decay: float | None = None,
    layer_pattern: str | None = None,
) -> list[dict[str, Any]]:
    """A composite optimizer's param groups, each tagged with its side.

    Each trainable parameter goes to the side ``sides.route`` says, or a rule setting
    ``sides.key`` says; then each side is grouped as [optreg.group_parameters][] groups,
    with that side's weight decay (the no-decay split where it decays) and lr (the base
    of ``lr_scale``), and every group gets ``{sides.key: that side's value}``. Rules and
    overrides are matched over all the parameters, then applied side by side, an option
    of one side's own (``sides.own``) under its name there::

        groups = optreg.group_sides(model, MY_SIDES, {"lr": 0.02, "adamw_lr": 3e-4})
        opt = MyComposite(groups)

    Args:
        params: an ``nn.Module``, ``(name, tensor)`` pairs or tensors (as the route takes).
        sides: what the composite declares (`optreg.Sides`).
        hyperparameters: the optimizer's arguments as it will use them (each side's lr
            and weight decay, and whatever the route reads).
        no_decay: as [optreg.get_optimizer][] takes it.
        overrides: as [optreg.get_optimizer][] takes it.
        rules: as [optreg.get_optimizer][] takes it.
        layer_decay: as [optreg.get_optimizer][] takes it.
        layer_pattern: as [optreg.get_optimizer][] takes it.

    Returns:
        Fresh param-group dicts, side by side in ``sides.values``' order.

    Raises:
        TypeError / ValueError: what ``sides.route`` and [optreg.group_parameters][]
            raise; an option of one side that reaches none of its parameters.
    """
    grouping = Grouping.of(
        no_decay=no_decay,
        overrides=overrides,
        rules=rules,
        layer_decay=layer_decay,
        layer_pattern=layer_pattern,
        where=sides.label,
    )
    return side_groups(params, sides, hyperparameters, grouping)[0]
