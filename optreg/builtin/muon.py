"""``muon`` (torch.optim.Muon) and ``muon_adamw``: Muon for hidden matrices, AdamW for the rest.

Muon takes only 2-D parameters, so every user writes the same split by hand
(`optreg.builtin.muon_routing` decides it). `MuonAdamW` is that split as ONE
``torch.optim.Optimizer``: one ``step()`` / ``zero_grad()``, every param group tagged
``"optimizer": "muon"`` or ``"adamw"``, one state dict, every LR schedule scaling every
group. It runs ``torch.optim.Muon`` and ``torch.optim.AdamW`` themselves, so its updates
equal theirs built by hand on the same split, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from optreg._core.contract import ClipPolicy, FactoryContract
from optreg.builtin.muon_routing import HEAD_MODULES, MUON_SIDES, SIDES, route
from optreg.builtin.torch_optim import adamw_for, keep_kernel_choice, muon
from optreg.params._grouping import Grouping
from optreg.params._sides import side_groups

__all__ = ["HEAD_MODULES", "MuonAdamW", "muon", "route"]


def _adamw_side(group: Mapping[str, Any]) -> bool:
    """muon_adamw's clip policy: a group of the AdamW side."""
    return group.get("optimizer") == "adamw"


class MuonAdamW(torch.optim.Optimizer):
    """Muon for hidden 2-D weight matrices, AdamW for everything else, as one optimizer.

    Args:
        params: an ``nn.Module``, ``(name, tensor)`` pairs, param-group dicts each tagged
            ``"optimizer": "muon"`` or ``"adamw"``, or (with ``route="ndim"``) tensors.
        lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps,
            adjust_lr_fn: Muon's (``torch.optim.Muon``'s defaults).
        adamw_lr: AdamW's lr; default: ``lr``.
        adamw_betas, adamw_eps, adamw_weight_decay: AdamW's (torch's defaults).
        adamw_foreach, adamw_fused: AdamW's kernel; by default the one ``adamw`` chooses
            (fused where every AdamW-side parameter is contiguous on CPU / CUDA).
        ns_batch: orthogonalise a group's same-shape matrices in one batched call
            (`BatchedMuon`): ``"auto"`` on CUDA, and
            on the CPU for stacks of matrices of at most 65,536 values (a static rule);
            True everywhere, False never; ``"measure"`` times each small CPU stack once
            and keeps the choice on the optimizer.
        ns_distributed: orthogonalise each matrix once across the process group
            (`muon_dist`): ``"auto"`` under FSDP2 (row-sharded
            DTensors) only; True also for plain tensors that every rank holds alike
            (DDP), verified at the first step; False never.
        route: ``"auto"`` (by name and module type) or ``"ndim"``; see `route()`.
        adamw_params, muon_params: name patterns (substring or glob) sent to that side.
        no_decay: name patterns exempt from weight decay; default: biases, norm weights
            and every 1-D parameter.
        overrides: per-name-pattern group options, e.g. ``{"layers.0": {"lr": 1e-4}}``.
        rules, layer_decay, layer_pattern: as [optreg.get_optimizer][] takes them.
        optreg_prepare: what [optreg.get_optimizer][] passes a factory that splits the
            parameters itself: called with the param groups (each tagged with its side)
            and the hyperparameters before either side is built; it runs the
            ``optreg_prepare_optimizer`` hook, whose edits count.

    Attributes:
        routes: ``{parameter name: "muon" | "adamw"}``, in the model's order.
        hyperparameters: every argument, AdamW's as ``adamw_lr`` and so on; ``defaults``
            holds only the keys both sides' groups carry (``lr``, ``weight_decay``).
        muon, adamw: the inner ``torch.optim.Muon`` / ``AdamW`` (None when empty).

    Raises:
        TypeError: no names to route by (see `route()`).
        ValueError: a bad ``route`` or pattern, a group tagged with another optimizer,
            and what Muon / AdamW raise for their hyperparameters.
    """

    #: optreg.get_optimizer passes the module, not its groups; a rule or override may give
    #: AdamW's ``betas`` by their own name
    optreg_contract = FactoryContract(
        routes_params=True,
        group_options=("betas",),
        clip=ClipPolicy(
            _adamw_side,
            "only the AdamW side is clipped: Muon orthogonalises its update, so the "
            "gradient's norm never sets the update's size, and a norm taken over the "
            "matrices would scale the AdamW side by the Muon side's gradients",
        ),
        sides=MUON_SIDES,
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        *,
        adamw_lr: float | None = None,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.01,
        adamw_foreach: bool | None = None,
        adamw_fused: bool | None = None,
        ns_batch: bool | Literal["auto", "measure"] = "auto",
        ns_distributed: bool | Literal["auto"] = "auto",
        route: str = "auto",
        adamw_params: Sequence[str] = (),
        muon_params: Sequence[str] = (),
        no_decay: Iterable[str] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        rules: Sequence[Mapping[str, Any]] | None = None,
        layer_decay: float | None = None,
        layer_pattern: str | None = None,
        optreg_prepare: Callable[[list[dict[str, Any]], dict[str, Any]], None] | None = None,
    ) -> None:
        if not isinstance(params, nn.Module):
            params = list(params)
        if optreg_prepare is not None:
            # optreg's optreg_prepare_optimizer hook, once the groups are made (below):
            # it may edit them and these hyperparameters, as for any other name
            given: dict[str, Any] = {
                "lr": lr,
                "weight_decay": weight_decay,
                "momentum": momentum,
                "nesterov": nesterov,
                "ns_coefficients": ns_coefficients,
                "eps": eps,
                "ns_steps": ns_steps,
                "adjust_lr_fn": adjust_lr_fn,
                "adamw_lr": adamw_lr,
                "adamw_betas": adamw_betas,
                "adamw_eps": adamw_eps,
                "adamw_weight_decay": adamw_weight_decay,
            }
        muon_options: dict[str, Any] = {
            "lr": lr,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_coefficients": tuple(ns_coefficients),
            "eps": eps,
            "ns_steps": ns_steps,
            "adjust_lr_fn": adjust_lr_fn,
        }
        adamw_options: dict[str, Any] = {
            "lr": lr if adamw_lr is None else adamw_lr,
            "betas": tuple(adamw_betas),
            "eps": adamw_eps,
            "weight_decay": adamw_weight_decay,
        }
        grouping = Grouping.of(
            no_decay=no_decay,
            overrides=overrides,
            rules=rules,
            layer_decay=layer_decay,
            layer_pattern=layer_pattern,
            where="muon_adamw",
        )
        groups = self._groups(
            params,
            grouping,
            {
                **muon_options,
                **{f"adamw_{k}": v for k, v in adamw_options.items()},
                "route": route,
                "adamw_params": adamw_params,
                "muon_params": muon_params,
            },
        )
        if optreg_prepare is not None:
            optreg_prepare(groups, given)
            lr, weight_decay = given["lr"], given["weight_decay"]
            muon_options = {k: given[k] for k in muon_options}
            muon_options["ns_coefficients"] = tuple(muon_options["ns_coefficients"])
            adamw_options = {
                "lr": lr if given["adamw_lr"] is None else given["adamw_lr"],
                "betas": tuple(given["adamw_betas"]),
                "eps": given["adamw_eps"],
                "weight_decay": given["adamw_weight_decay"],
            }
        muon_groups = [g for g in groups if g["optimizer"] == "muon"]
        adamw_groups = [g for g in groups if g["optimizer"] == "adamw"]
        from optreg.builtin.muon_batched import BatchedMuon  # needs torch.optim.Muon

        self.muon: Any = (
            BatchedMuon(muon_groups, batch=ns_batch, distributed=ns_distributed, **muon_options)
            if muon_groups
            else None
        )
        self.adamw: Any = (
            adamw_for(
                "muon_adamw",
                adamw_groups,
                foreach=adamw_foreach,
                fused=adamw_fused,
                **adamw_options,
            )
            if adamw_groups
            else None
        )
        super().__init__([*muon_groups, *adamw_groups], {})
        #: every argument it was built with (Muon's, then AdamW's as ``adamw_*``)
        self.hyperparameters = {
            **muon_options,
            **{f"adamw_{k}": v for k, v in adamw_options.items()},
            "adamw_foreach": adamw_foreach,
            "adamw_fused": adamw_fused,
            "ns_batch": ns_batch,
            "ns_distributed": ns_distributed,
        }
        # torch's contract: every group carries every key of defaults; the sides share these
        self.defaults = {"lr": lr, "weight_decay": weight_decay}
        self._share()
        keep_kernel_choice(self)  # a checkpoint of another kernel loads; this one's stays
        self._built = True

    def _groups(
        self,
        params: Any,
        grouping: Grouping,
        hyperparameters: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        """Every param group, tagged with its side, in the order Muon's, then AdamW's."""
        if (
            not isinstance(params, nn.Module)
            and params
            and all(isinstance(g, Mapping) for g in params)
        ):
            return self._tagged(params, hyperparameters["route"])
        groups, self.routes = side_groups(params, MUON_SIDES, hyperparameters, grouping)
        return groups

    def _tagged(self, groups: Sequence[Mapping[str, Any]], route_by: str) -> list[dict[str, Any]]:
        """Param-group dicts: each tagged with its side, or (``route="ndim"``) split by shape
        into a Muon and an AdamW group that keep its options."""
        out = []
        self.routes = {}
        for i, group in enumerate(groups):
            side = group.get("optimizer")
            tensors = group["params"]
            tensors = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)
            if side in SIDES:
                parts = {str(side): tensors}
            elif side is None and route_by == "ndim":
                parts = {
                    "muon": [p for p in tensors if p.ndim == 2],
                    "adamw": [p for p in tensors if p.ndim != 2],
                }
            else:
                raise ValueError(
                    f"param group {i} of muon_adamw needs 'optimizer': 'muon' or 'adamw', "
                    f"got {side!r} (or route='ndim' to split untagged groups by shape)"
                )
            for part_side, part in parts.items():
                if part:
                    out.append({**group, "params": part, "optimizer": part_side})
            to_muon = {id(p) for p in parts.get("muon", [])}
            for j, p in enumerate(tensors):
                self.routes[f"group{i}[{j}]"] = "muon" if id(p) in to_muon else "adamw"
        return sorted(out, key=lambda g: SIDES.index(g["optimizer"]))

    def _share(self) -> None:
        """Point the inner optimizers at this one's group dicts and state (one state
        dict: the sides hold disjoint parameters)."""
        for side in SIDES:
            inner = getattr(self, side)
            if inner is not None:
                inner.param_groups = [g for g in self.param_groups if g["optimizer"] == side]
                inner.state = self.state

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        """One Muon step and one AdamW step (``closure`` re-evaluates the loss first)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for side in SIDES:
            inner = getattr(self, side)
            if inner is not None:
                inner.step()
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a `state_dict()`; each saved group must be of the same side.

        Raises:
            ValueError: the saved groups' sides differ from this optimizer's.
        """
        saved = [g.get("optimizer") for g in state_dict["param_groups"]]
        here = [g["optimizer"] for g in self.param_groups]
        if saved != here:
            raise ValueError(
                f"muon_adamw: the state's param groups are {saved}, this optimizer's {here} "
                "(another split of the parameters between Muon and AdamW)"
            )
        super().load_state_dict(state_dict)
        self._share()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group tagged ``"optimizer": "muon" | "adamw"`` to that side."""
        if not getattr(self, "_built", False):  # torch's __init__ adding the first groups
            super().add_param_group(param_group)
            return
        side = param_group.get("optimizer")
        inner = getattr(self, side) if side in SIDES else None
        if inner is None:
            raise ValueError(
                f"muon_adamw.add_param_group needs 'optimizer': 'muon' or 'adamw' (of a side "
                f"this optimizer has), got {side!r}"
            )
        tensors = param_group.get("params")
        tensors = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors or ())
        held = {id(p): g["optimizer"] for g in self.param_groups for p in g["params"]}
        for p in tensors:
            if id(p) in held:
                raise ValueError(
                    f"muon_adamw.add_param_group: a parameter of shape {tuple(p.shape)} is "
                    f"already in a param group (of the {held[id(p)]} side); a parameter may "
                    "be in one group only"
                )
        inner.add_param_group({**param_group, "params": tensors})
        self.param_groups.append(inner.param_groups[-1])

    def __getstate__(self) -> dict[str, Any]:
        """Everything, for copy / pickle: torch's keeps only ``defaults``, ``state`` and
        ``param_groups``, and a copy without its sides failed at its first step. An
        LR scheduler's wrapper of ``step`` is left out, as torch leaves it out."""
        state = dict(self.__dict__)
        state.pop("step", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore (torch's ``load_state_dict`` passes only ``state`` and
        ``param_groups``), and point the sides at this object's groups and state."""
        defaults = dict(state.get("defaults", self.__dict__.get("defaults", {})))
        super().__setstate__(state)
        self.defaults = defaults  # torch's adds "differentiable", which no group carries
        self._share()
