"""The factory contract: what a factory declares beyond its signature.

Most factories need nothing here: optreg reads their signature for keywords and
defaults. A factory that does more says so with one attribute, ``optreg_contract``, a
`FactoryContract` (re-exported as ``optreg.FactoryContract`` and documented with
the hooks in `optreg.hookspecs`). optreg reads it once, when the name is loaded
(`optreg._core.loading.contract()`), and uses it from there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "DEFAULT",
    "ClipPolicy",
    "DeclaresContract",
    "FactoryContract",
    "Sides",
    "StateLayout",
    "contract_of",
]


@dataclass(frozen=True)
class ClipPolicy:
    """Which of an optimizer's param groups gradient-norm clipping takes part in
    ([optreg.clip_grad_norm_][]): their gradients make the norm and are scaled; the
    others are left as they are.

    Attributes:
        clips: a param group -> whether it is clipped.
        reason: why, in one sentence, for ``optreg info`` and the guides.
    """

    clips: Callable[[Mapping[str, Any]], bool]
    reason: str


@dataclass(frozen=True)
class Sides:
    """How a composite optimizer splits its parameters between sides (``muon_adamw``: Muon
    for hidden matrices, AdamW for the rest), declared once so that one implementation,
    [optreg.group_sides][], routes, groups and tags them for it.

    Attributes:
        key: the param-group key naming a group's side, as the optimizer reads it
            (``"optimizer"``; pytorch_optimizer's Muon family: ``"use_muon"``). A rule
            setting it sends the parameters it selects to that side.
        values: side -> the value of ``key`` in its groups (``{"muon": True, "adamw":
            False}``); groups are made side by side in this order.
        route: ``(params, forced, hyperparameters) -> ({name: side}, [(name, tensor)])``:
            where each trainable parameter goes, and the parameters by name (bare tensors
            as ``params[i]``); ``forced`` is ``{name: side}`` from rules, which wins.
            Raises ``TypeError`` / ``ValueError`` for what it cannot route.
        lr: side -> the hyperparameter holding the side's lr where it is not ``lr``
            (``{"adamw": "adamw_lr"}``; where it is None, ``lr``): the base a rule's
            ``lr_scale`` multiplies.
        weight_decay: side -> the hyperparameter holding its weight decay where it is not
            ``weight_decay``: a side that decays gets the no-decay split.
        own: side -> ``{option as a rule or override spells it: the side's group option}``
            for options only that side takes (``{"adamw": {"adamw_betas": "betas"}}``);
            an option in no side's ``own`` applies on every side, and one that reaches
            no parameter of its side is refused.
        matrices: the sides whose update treats every parameter as one matrix (Muon's
            orthogonalised update), each mapped to the side an embedding or an output
            head belongs on instead; [optreg.explain_groups][] warns where one is routed
            to such a side.
        label: how errors name the optimizer.
    """

    key: str
    values: Mapping[str, Any]
    route: Callable[[Any, Mapping[str, str], Mapping[str, Any]], tuple[dict[str, str], list[Any]]]
    lr: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    weight_decay: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    own: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    matrices: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    label: str = "the optimizer"

    def side_of(self, group: Mapping[str, Any]) -> str | None:
        """The side a param group is tagged with (None: untagged, or another value)."""
        if self.key not in group:
            return None
        return next((s for s, v in self.values.items() if v == group[self.key]), None)


@dataclass(frozen=True)
class StateLayout:
    """How an optimizer stores one algorithm's per-parameter state, so that
    [optreg.convert_state_dict][] can move it to another name's layout of that algorithm
    (bitsandbytes' 8-bit Adam to torch's fp32 AdamW and back).

    Attributes:
        algorithm: the state's algorithm (``"adam"``: a first moment and its square;
            ``"lion"``: one moment); names whose layouts share it convert into each other.
        label: the layout in one word, for listings (``"torch"``, ``"8-bit"``).
        read: one parameter's saved state and a description of it for messages ->
            ``([moment in fp32, ...], step)``; raises ``ValueError`` naming the
            description where the state is not of this layout.
        write: ``(moments, step, optimizer, position)`` -> one parameter's state in this
            layout; ``optimizer`` is the optimizer that will load it (None when the
            target was given by name) and ``position`` the parameter's
            ``(group index, index in group)`` there (None then too).
    """

    algorithm: str
    label: str
    read: Callable[[Mapping[str, Any], str], tuple[list[Any], int]]
    write: Callable[[list[Any], int, Any, tuple[int, int] | None], dict[str, Any]]


@dataclass(frozen=True)
class FactoryContract:
    """What a factory declares to [optreg.get_optimizer][] beyond its signature.

    Attributes:
        routes_params: the factory splits the parameters itself (``muon_adamw``): it is
            given what the user gave (the ``nn.Module``, ``(name, tensor)`` pairs or
            tensors) with ``no_decay=``, ``overrides=`` and, when given, ``rules=`` /
            ``layer_decay=`` / ``layer_pattern=``, instead of optreg's param groups;
            an ``optreg_prepare`` keyword in its signature receives the
            ``optreg_prepare_optimizer`` hook to run on the groups it makes.
        group_options: options a param group, a rule or an override may set although
            the signature does not name them (bitsandbytes' ``optim_bits``; AdamW's
            ``betas`` on ``muon_adamw``'s AdamW side).
        check_keywords: called with the keyword arguments before anything else, instead
            of optreg's "unexpected keyword" check, for a factory that can say more (a
            bitsandbytes name refusing ``optim_bits``, which the name fixes); it raises
            ``TypeError``.
        multiplier: a schedule's pure form: called with the factory's arguments (without
            the optimizer and ``last_epoch``; ``base_lr=``, the optimizer's default lr,
            where its signature names it), it returns the step -> multiplier function the
            factory wraps in a ``LambdaLR``. ``sequence`` joins these, and they need no
            optimizer.
        clip: which param groups gradient clipping takes part in (`ClipPolicy`);
            None: all, as ``torch.nn.utils.clip_grad_norm_`` over every parameter.
        state: how the optimizer stores its state (`StateLayout`), for names whose
            state [optreg.convert_state_dict][] converts; None: it converts none.
        sides: a composite's sides (`Sides`), which its factory groups with
            [optreg.group_sides][]; None: not a composite.
    """

    routes_params: bool = False
    group_options: tuple[str, ...] = ()
    check_keywords: Callable[[Mapping[str, Any]], None] | None = None
    multiplier: Callable[..., Callable[[int], float]] | None = None
    clip: ClipPolicy | None = None
    state: StateLayout | None = None
    sides: Sides | None = None


#: What a factory without ``optreg_contract`` declares: nothing beyond its signature.
DEFAULT = FactoryContract()


@runtime_checkable
class DeclaresContract(Protocol):
    """A factory declaring a `FactoryContract` (class or instance attribute)."""

    optreg_contract: FactoryContract


def contract_of(factory: Any) -> FactoryContract:
    """The factory's declared contract, or `DEFAULT`.

    Raises:
        TypeError: ``optreg_contract`` is there but is not a `FactoryContract`.
    """
    if not isinstance(factory, DeclaresContract):
        return DEFAULT
    declared = factory.optreg_contract
    if not isinstance(declared, FactoryContract):
        raise TypeError(
            f"{factory!r:.80}: optreg_contract must be an optreg.FactoryContract, got "
            f"{type(declared).__name__}: {declared!r:.80}"
        )
    return declared
