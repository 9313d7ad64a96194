"""Declarative parameter-group rules and layer-wise lr decay, as plain data.

A rule is a dict: *selectors* say which parameters it takes, every other key is a group
option it sets for them::

    rules = [
        {"module": "embedding", "lr_scale": 0.1},               # nn.Embedding weights
        {"match": "*.bias", "weight_decay": 0.0},               # glob or substring
        {"regex": r"layers\\.(0|1)\\.", "lr": 1e-4},             # re.search on the name
        {"ndim": 1, "weight_decay": 0.0},                        # 1-D parameters
        {"shape": [768, 768], "betas": [0.9, 0.95]},
        {"match": "head.*", "optimizer": "adamw"},               # a composite's side
    ]

Selectors (all given must hold): ``match`` (a pattern or list: substring or glob),
``regex``, ``module`` (``embedding``, ``norm``, ``linear``, ``conv`` or a class name such as
``"LayerNorm"``; needs the ``nn.Module``), ``ndim`` (int or list), ``shape`` (list of ints).
Options: any hyperparameter of the optimizer, ``lr_scale`` (multiplies the lr) and, for a
composite optimizer (``muon_adamw``), ``optimizer``. A rule may say ``"name"`` for errors.

``layer_decay=0.75`` scales each parameter's lr by ``layer_decay ** (L + 1 - layer)``: the
layer index is read from names like ``layers.3.`` / ``blocks.3.`` / ``layer.3.`` / ``h.3.``
(or ``layer_pattern``, a regex whose first group is the index); embeddings are layer 0 and
everything after the last block (final norm, head) layer ``L + 1``, as BEiT and timm do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from optreg.params._kinds import (
    EMBEDDING_MODULES,
    NORM_LAYERS,
    is_embedding,
    is_named_pairs,
    is_norm,
)
from optreg.params._kinds import named_parameters as walk
from optreg.params._split import matches

__all__ = [
    "RULE_KEYS",
    "SELECTORS",
    "assign",
    "check_rules",
    "layer_ids",
    "layer_regex",
    "named_of",
]

SELECTORS = frozenset({"match", "regex", "module", "ndim", "shape", "name"})
#: The keys of a rule that are not options for the optimizer: its selectors and lr_scale.
RULE_KEYS = (*sorted(SELECTORS), "lr_scale")
_LAYER = re.compile(r"(?:^|\.)(?:layers|layer|blocks|block|h)\.(\d+)(?:\.|$)")
_MODULE_KINDS: Mapping[str, tuple[type[nn.Module], ...]] = {
    "embedding": EMBEDDING_MODULES,
    "norm": NORM_LAYERS,
    "linear": (nn.Linear,),
    "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d),
}


def named_of(params: Any) -> tuple[list[tuple[str, Any]], nn.Module | None]:
    """``(trainable named parameters, the module or None)`` of what a user passed.

    Raises:
        ValueError: ``params`` says no names (bare tensors or param-group dicts).
    """
    if isinstance(params, nn.Module):
        return [(n, p) for n, p in walk(params) if p.requires_grad], params
    if is_named_pairs(params):
        return [(n, p) for n, p in params if p.requires_grad], None
    raise ValueError(
        "rules= and layer_decay= select parameters by name: pass the nn.Module or "
        "(name, tensor) pairs instead of bare tensors or param-group dicts"
    )


def _label(rule: Mapping[str, Any], index: int) -> str:
    return f"rule {rule['name']!r}" if "name" in rule else f"rules[{index}]"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _owners(model: nn.Module | None) -> dict[int, nn.Module]:
    if model is None:
        return {}
    out: dict[int, nn.Module] = {}
    for module in model.modules():
        for p in module.parameters(recurse=False):
            out.setdefault(id(p), module)
    return out


def _module_matches(module: nn.Module | None, kinds: list[str]) -> bool:
    if module is None:
        return False
    for kind in kinds:
        types = _MODULE_KINDS.get(str(kind).lower())
        if types is not None and isinstance(module, types):
            return True
        if type(module).__name__ == kind or (kind == "norm" and is_norm(module)):
            return True
    return False


def check_rules(rules: Any) -> None:
    """Check the rules' shape (what needs no parameters), naming the rule at fault.

    Raises:
        TypeError: not a list of dicts, or a selector of the wrong type.
        ValueError: a rule that selects nothing or sets nothing, a regex that does not
            compile, an ``lr_scale`` that is not a finite number >= 0.
    """
    if not isinstance(rules, (list, tuple)):
        raise TypeError(f"rules must be a list of dicts, got {type(rules).__name__}: {rules!r:.80}")
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            raise TypeError(f"rules[{i}] must be a dict, got {type(rule).__name__}: {rule!r:.80}")
        label = _label(rule, i)
        if not SELECTORS & set(rule) - {"name"}:
            raise ValueError(
                f"{label} selects nothing: give one of match, regex, module, ndim, shape; "
                f"got keys {sorted(rule)}"
            )
        if not set(rule) - SELECTORS:
            raise ValueError(f"{label} sets no option (lr, lr_scale, weight_decay, ...)")
        _check_selector_types(label, rule)
        if "regex" in rule:
            try:
                re.compile(rule["regex"])
            except re.error as e:
                raise ValueError(f"{label}: regex {rule['regex']!r} does not compile: {e}") from e
        scale = rule.get("lr_scale", 1.0)
        if (
            isinstance(scale, bool)
            or not isinstance(scale, (int, float))
            or not 0 <= scale < float("inf")
        ):
            raise ValueError(f"{label}: lr_scale must be a finite number >= 0, got {scale!r}")


#: What each selector takes: (the type of one item, its form, what the message says).
#: Form: "one" value, "one or list" of values, or a "list" only.
_SELECTOR_TYPES: Mapping[str, tuple[type, str, str]] = {
    "match": (str, "one or list", "a name pattern (str) or a list of them"),
    "regex": (str, "one", "a regular expression (str)"),
    "module": (str, "one or list", "a module kind or class name (str) or a list of them"),
    "ndim": (int, "one or list", "an int or a list of ints"),
    "shape": (int, "list", "a list of ints"),
    "name": (str, "one", "a str"),
}


def _check_selector_types(label: str, rule: Mapping[str, Any]) -> None:
    """Raises: TypeError: a selector of the wrong type (``shape: 8``, ``match: 5``)."""
    for key, (kind, form, allowed) in _SELECTOR_TYPES.items():
        if key not in rule:
            continue
        value = rule[key]
        is_list = isinstance(value, (list, tuple))
        items = list(value) if is_list and form != "one" else [value]
        if (
            (form == "list" and not is_list)
            or not items
            or any(isinstance(x, bool) or not isinstance(x, kind) for x in items)
        ):
            raise TypeError(
                f"{label}: selector {key!r} must be {allowed}, got "
                f"{type(value).__name__}: {value!r:.80}"
            )


def _selects(rule: Mapping[str, Any], name: str, p: Any, owner: nn.Module | None) -> bool:
    if "match" in rule and not any(matches(name, pat) for pat in _as_list(rule["match"])):
        return False
    if "regex" in rule and not re.search(rule["regex"], name):
        return False
    if "ndim" in rule and p.ndim not in _as_list(rule["ndim"]):
        return False
    if "shape" in rule and list(p.shape) != [int(n) for n in rule["shape"]]:
        return False
    return "module" not in rule or _module_matches(owner, _as_list(rule["module"]))


def layer_regex(pattern: object) -> re.Pattern[str]:
    """``layer_pattern`` compiled (the default when None): a regex with a group.

    Raises:
        TypeError: not a str.
        ValueError: not a regular expression, or one without a group for the index.
    """
    if pattern is None:
        return _LAYER
    if not isinstance(pattern, str):
        raise TypeError(
            f"layer_pattern must be a regex str, got {type(pattern).__name__}: {pattern!r:.80}"
        )
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"layer_pattern {pattern!r} is not a regular expression: {e}") from e
    if regex.groups < 1:
        raise ValueError(
            f"layer_pattern {pattern!r} has no group: its first group must capture the "
            r"layer index, e.g. r'layers\.(\d+)\.'"
        )
    return regex


def layer_ids(names: Sequence[str], pattern: str | None = None) -> tuple[dict[str, int], int]:
    """``({name: layer index}, number of blocks)``: embeddings 0, block ``i`` ``i + 1``, the
    rest ``L + 1``.

    Raises:
        ValueError: no name shows a layer index (give ``layer_pattern``).
    """
    regex = layer_regex(pattern)
    found = {}
    for name in names:
        m = regex.search(name)
        if m:
            index = m.group(1)
            if index is None or not index.isdigit():
                raise ValueError(
                    f"layer_pattern {regex.pattern!r}: its first group matched {index!r} in "
                    f"{name!r}, not a layer index (digits)"
                )
            found[name] = int(index)
    if not found:
        raise ValueError(
            "layer_decay needs the layer of each parameter, and no name shows one "
            f"(like 'layers.3.' or 'blocks.3.'; names look like {', '.join(names[:3])}): "
            "give layer_pattern, a regex whose first group is the index"
        )
    count = max(found.values()) + 1
    out = {}
    for name in names:
        if name in found:
            out[name] = found[name] + 1
        elif is_embedding(name):
            out[name] = 0
        else:
            out[name] = count + 1
    return out, count


def assign(
    named: Sequence[tuple[str, Any]],
    rules: Sequence[Mapping[str, Any]] | None,
    *,
    model: nn.Module | None = None,
    layer_decay: float | None = None,
    layer_pattern: str | None = None,
) -> dict[str, dict[str, Any]]:
    """``{name: options}`` for every parameter: what the rules set (and ``lr_scale``, layer
    decay included). The rules and ``layer_decay`` are as `optreg.params._grouping.Grouping`
    checked them.

    Raises:
        ValueError: a rule selecting by module without the module; a rule that matches no
            parameter; two rules giving one parameter different values for one option
            (both named); names without a layer index.
    """
    rules = list(rules or ())
    for i, rule in enumerate(rules):
        if "module" in rule and model is None:
            raise ValueError(
                f"{_label(rule, i)} selects by module type: pass the nn.Module as params"
            )
    owners = _owners(model)
    used = [False] * len(rules)
    out: dict[str, dict[str, Any]] = {}
    conflicts = []
    for name, p in named:
        options: dict[str, Any] = {}
        source: dict[str, int] = {}
        for i, rule in enumerate(rules):
            if not _selects(rule, name, p, owners.get(id(p))):
                continue
            used[i] = True
            for key, value in rule.items():
                if key in SELECTORS:
                    continue
                value = tuple(value) if isinstance(value, list) else value
                if key in options and options[key] != value:
                    conflicts.append(
                        f"parameter {name!r}: {key}={options[key]!r} from "
                        f"{_label(rules[source[key]], source[key])}, {key}={value!r} from "
                        f"{_label(rule, i)}"
                    )
                    continue
                options[key], source[key] = value, i
        out[name] = options
    if conflicts:
        more = f"; and {len(conflicts) - 4} more" if len(conflicts) > 4 else ""
        raise ValueError("conflicting rules: " + "; ".join(conflicts[:4]) + more)
    unused = [_label(r, i) for i, r in enumerate(rules) if not used[i]]
    if unused:
        raise ValueError(
            f"{', '.join(unused)} match{'es' if len(unused) == 1 else ''} no parameter; "
            f"names look like {', '.join(n for n, _ in named[:3])}"
        )
    if layer_decay is not None:
        ids, count = layer_ids([n for n, _ in named], layer_pattern)
        for name, options in out.items():
            scale = float(layer_decay) ** (count + 1 - ids[name])
            options["lr_scale"] = options.get("lr_scale", 1.0) * scale
    return out
