"""GaLore and APOLLO by transformers' names: target modules, low-rank options, layer-wise.

transformers (``Trainer`` with ``optim="galore_adamw"``, ``optim_target_modules=[...]``)
puts the weights of the ``nn.Linear`` modules that ``optim_target_modules`` names in a
group carrying the projection options (``rank``, ``update_proj_gap``, ``scale``,
``proj_type``; APOLLO has ``proj`` and ``scale_type`` too), and everything else in a plain
group. These factories do the same from ``target_modules=`` (the same matching: a string
is a regex the module name must fully match, a list holds names, substrings or regexes,
``"all-linear"`` takes every linear layer), or from optreg rules: a rule that sets
``rank`` marks its 2-D parameters for projection (it gets ``"ndim": 2`` unless it says
otherwise), so ``rules=[{"module": "linear", "match":
["attn", "mlp"], "rank": 64}]`` says what ``optim_target_modules`` says, and can say more.

The ``*_layerwise`` names step each parameter as soon as its gradient is accumulated
(transformers' layer-wise GaLore, which saves the memory of all gradients at once):
see :class:`LayerwiseOptimizer`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

import optreg
from optreg import FactoryContract

__all__ = [
    "LayerwiseOptimizer",
    "apollo_adamw",
    "apollo_adamw_layerwise",
    "galore_adafactor",
    "galore_adafactor_layerwise",
    "galore_adamw",
    "galore_adamw_8bit",
    "galore_adamw_8bit_layerwise",
    "galore_adamw_layerwise",
    "target_parameter_names",
]

#: transformers' defaults for the projection options (``optim_args`` it reads)
GALORE_OPTIONS: Mapping[str, Any] = {
    "rank": 128,
    "update_proj_gap": 200,
    "scale": 0.25,
    "proj_type": "std",
}
APOLLO_OPTIONS: Mapping[str, Any] = {
    "rank": 128,
    "proj": "random",
    "scale_type": "channel",
    "update_proj_gap": 200,
    "scale": 1.0,
    "proj_type": "std",
}
_GROUPING = ("target_modules", "no_decay", "overrides", "rules", "layer_decay", "layer_pattern")


def _matches(target_modules: str | Sequence[str], module_name: str) -> bool:
    """transformers' ``check_target_module_exists``: a str is a full-match regex; a list
    holds exact names, substrings or full-match regexes."""
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, module_name) is not None
    return (
        module_name in target_modules
        or any(t in module_name for t in target_modules)
        or any(re.fullmatch(t, module_name) is not None for t in target_modules)
    )


def target_parameter_names(
    model: nn.Module, target_modules: str | Sequence[str], *, label: str = "target_modules"
) -> list[str]:
    """The weights of the ``nn.Linear`` modules ``target_modules`` selects, as transformers
    selects them for ``optim_target_modules``.

    Raises:
        TypeError: ``target_modules`` is neither a string nor a list of strings.
        ValueError: no linear module matches.
    """
    if isinstance(target_modules, tuple):
        target_modules = list(target_modules)
    if not (
        isinstance(target_modules, str)
        or (isinstance(target_modules, list) and all(isinstance(t, str) for t in target_modules))
    ):
        raise TypeError(
            f"{label}: target_modules must be a list of strings, a regex string or "
            f"'all-linear'; got {type(target_modules).__name__}: {target_modules!r:.80}"
        )
    all_linear = (
        isinstance(target_modules, str) and target_modules.replace("_", "-") == "all-linear"
    )
    names = [
        f"{name}.weight"
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and (all_linear or _matches(target_modules, name))
    ]
    if not names:
        linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        raise ValueError(
            f"{label}: no nn.Linear module matches target_modules={target_modules!r}; "
            + (
                f"the linear modules are {', '.join(linear[:6])}"
                + (f" and {len(linear) - 6} more" if len(linear) > 6 else "")
                if linear
                else f"{type(model).__name__} has no nn.Linear module"
            )
        )
    return names


class LayerwiseOptimizer(torch.optim.Optimizer):
    """An optimizer stepped from each parameter's post-accumulate-grad hook, as soon as
    that gradient exists, which is then freed (transformers' layer-wise GaLore: the
    gradients of the whole model never exist at once).

    It wraps one inner optimizer and shares its ``param_groups``, ``defaults`` and
    ``state``: an LR schedule built on it scales the inner lrs, and ``state_dict()`` /
    ``load_state_dict()`` are the inner optimizer's. In a hook only the parameter just
    accumulated has a gradient, so the inner ``step()`` updates that one alone.
    ``step()`` itself only runs the closure: the updates happened during ``backward()``,
    so gradients cannot be accumulated over several backward passes.
    :meth:`remove_hooks` detaches it from the parameters.

    Args:
        inner: the optimizer to step parameter by parameter.
    """

    def __init__(self, inner: torch.optim.Optimizer) -> None:
        self.inner = inner
        # torch's checks and hooks, then the inner optimizer's groups and state
        super().__init__([p for g in inner.param_groups for p in g["params"]], {})
        self._link()
        self._handles = [
            p.register_post_accumulate_grad_hook(self._hook)
            for g in inner.param_groups
            for p in g["params"]
            if p.requires_grad
        ]

    def _link(self) -> None:
        self.param_groups = self.inner.param_groups
        self.defaults = self.inner.defaults
        self.state = self.inner.state

    def _hook(self, param: torch.Tensor) -> None:
        if param.grad is not None:
            self.inner.step()
            param.grad = None

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Run the closure (with grad) and return its loss; the updates ran in backward."""
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()

    def state_dict(self) -> dict[str, Any]:
        """The inner optimizer's."""
        return self.inner.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Into the inner optimizer, whose new groups and state this one then shares."""
        self.inner.load_state_dict(state_dict)
        self._link()

    def remove_hooks(self) -> None:
        """Stop stepping: remove the hooks from the parameters."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


class LowRankFactory:
    """A factory: ``name(model, target_modules=..., lr=..., **options)`` -> optimizer.

    It splits the parameters itself (its ``optreg_contract``): ``get_optimizer`` hands
    it the model with the rules, and its signature is the upstream class's plus the
    projection options, read when first asked (that imports the upstream package).
    """

    def __init__(
        self,
        name: str,
        target: str,
        options: Mapping[str, Any],
        *,
        layerwise: bool = False,
        fixed: Mapping[str, Any] | None = None,
        lr_required: bool = False,
    ) -> None:
        self.__name__ = self.__qualname__ = name
        self.__doc__ = (
            f"{target.replace(':', '.')} with transformers' {name!r} semantics: the "
            "linear layers target_modules names (or the parameters a rule with rank= "
            "selects) are projected"
            + ("; each parameter steps in its gradient hook" if layerwise else "")
            + "."
        )
        self._target = target
        self.options = dict(options)
        # the projection options may be set per parameter by a rule
        self.optreg_contract = FactoryContract(routes_params=True, group_options=tuple(options))
        self._layerwise = layerwise
        self._fixed = dict(fixed or {})
        self._lr_required = lr_required

    def _cls(self) -> type[torch.optim.Optimizer]:
        module, _, attr = self._target.partition(":")
        cls: type[torch.optim.Optimizer] = getattr(importlib.import_module(module), attr)
        return cls

    @functools.cached_property
    def __signature__(self) -> inspect.Signature:
        kw = inspect.Parameter.KEYWORD_ONLY
        upstream = inspect.signature(self._cls()).parameters
        params = [inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        for name, p in upstream.items():
            if name in ("params", "self") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            default = self._fixed.get(name, p.default)
            if name == "lr" and self._lr_required:
                default = inspect.Parameter.empty
            params.append(p.replace(kind=kw, default=default))
        params.append(inspect.Parameter("target_modules", kw, default=None))
        params += [inspect.Parameter(k, kw, default=v) for k, v in self.options.items()]
        params += [inspect.Parameter(k, kw, default=None) for k in _GROUPING[1:]]
        params.append(inspect.Parameter("optreg_prepare", kw, default=None))
        return inspect.Signature(params)

    def __call__(
        self,
        params: Any,
        *,
        target_modules: str | Sequence[str] | None = None,
        no_decay: Any = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        rules: Sequence[Mapping[str, Any]] | None = None,
        layer_decay: float | None = None,
        layer_pattern: str | None = None,
        optreg_prepare: Callable[[list[dict[str, Any]], dict[str, Any]], None] | None = None,
        **kwargs: Any,
    ) -> torch.optim.Optimizer:
        """Build the optimizer on ``params`` (an ``nn.Module`` or ``(name, tensor)`` pairs);
        optreg's ``optreg_prepare_optimizer`` hook (``optreg_prepare``) runs on the groups.

        Raises:
            TypeError: an unknown keyword, or ``target_modules`` without an ``nn.Module``.
            ValueError: nothing to project (no ``target_modules`` and no rule setting
                ``rank``), or a target / rule that matches nothing.
        """
        name = self.__name__
        signature = self.__signature__
        unknown = sorted(set(kwargs) - set(signature.parameters))
        if unknown:
            raise TypeError(
                f"{name}: unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
                f"it takes {', '.join(list(signature.parameters)[1:])}"
            )
        if self._lr_required and "lr" not in kwargs:
            raise TypeError(f"{name}: lr is required (relative_step is off, as in transformers)")
        options = {k: kwargs.pop(k, v) for k, v in self.options.items()}
        upstream = {**self._fixed, **kwargs}
        all_rules = [dict(r) for r in rules or ()]
        if target_modules is not None:
            if not isinstance(params, nn.Module):
                raise TypeError(
                    f"{name}: target_modules names modules, so pass the nn.Module "
                    f"(got {type(params).__name__}); with (name, tensor) pairs, select "
                    "the projected parameters by a rule setting rank="
                )
            names = target_parameter_names(params, target_modules, label=name)
            pattern = "^(?:" + "|".join(re.escape(n) for n in names) + ")$"
            all_rules.append({"name": "target_modules", "regex": pattern, **options})
        cls = self._cls()
        if not _named(params):  # tensors or groups: GaLore's own API (a group with rank=)
            if all_rules or layer_decay is not None:
                raise ValueError(f"{name}: rules= need names: pass the nn.Module")
            groups = optreg.group_parameters(params, no_decay=no_decay, overrides=overrides)
            if optreg_prepare is not None:
                optreg_prepare(groups, upstream)
            inner = cls(groups, **upstream)
            return LayerwiseOptimizer(inner) if self._layerwise else inner
        marked = [r for r in all_rules if "rank" in r]
        if not marked:
            raise ValueError(
                f"{name} projects the gradients of the parameters you choose: give "
                "target_modules (transformers' optim_target_modules, e.g. ['attn', 'mlp'] "
                "or 'all-linear') or a rule that sets rank=, e.g. "
                "rules=[{'module': 'linear', 'match': 'attn', 'rank': 64}]"
            )
        for rule in marked:  # the group needs every projection option; only matrices project
            for key, value in options.items():
                rule.setdefault(key, value)
            rule.setdefault("ndim", 2)
        groups = optreg.group_parameters(
            params,
            rules=all_rules,
            layer_decay=layer_decay,
            layer_pattern=layer_pattern,
            weight_decay=upstream.get("weight_decay", signature.parameters["weight_decay"].default),
            no_decay=no_decay,
            overrides=overrides,
            lr=upstream.get("lr", signature.parameters["lr"].default),
        )
        if optreg_prepare is not None:
            optreg_prepare(groups, upstream)  # each projected group carries rank=...
        inner = cls(groups, **upstream)
        return LayerwiseOptimizer(inner) if self._layerwise else inner


def _named(params: Any) -> bool:
    if isinstance(params, nn.Module):
        return True
    if not isinstance(params, (list, tuple)):
        return False
    return bool(params) and all(
        isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in params
    )


def _family(
    stem: str, target: str, options: Mapping[str, Any], **extra: Any
) -> tuple[LowRankFactory, LowRankFactory]:
    return (
        LowRankFactory(stem, target, options, **extra),
        LowRankFactory(f"{stem}_layerwise", target, options, layerwise=True, **extra),
    )


galore_adamw, galore_adamw_layerwise = _family(
    "galore_adamw", "galore_torch:GaLoreAdamW", GALORE_OPTIONS
)
galore_adamw_8bit, galore_adamw_8bit_layerwise = _family(
    "galore_adamw_8bit", "galore_torch:GaLoreAdamW8bit", GALORE_OPTIONS
)
# transformers turns Adafactor's own step size off (and so needs the lr it is given)
galore_adafactor, galore_adafactor_layerwise = _family(
    "galore_adafactor",
    "galore_torch:GaLoreAdafactor",
    GALORE_OPTIONS,
    fixed={"scale_parameter": False, "relative_step": False},
    lr_required=True,
)
apollo_adamw, apollo_adamw_layerwise = _family(
    "apollo_adamw", "apollo_torch:APOLLOAdamW", APOLLO_OPTIONS
)
