"""optreg's builtin plugins: a catalogue in code.

Like pytest's ``default_plugins``, the builtins are listed here, in code, so they
exist wherever optreg's source does (installed, vendored, a zipapp, ``PYTHONPATH``),
without install metadata. Each `BuiltinPlugin` is a pluggy hook plugin
registered under the name ``optreg:<plugin>`` (block one with
``OPTREG_BLOCK_PLUGINS=optreg:bnb``) and adds its names through
[optreg.PluginRegistry][], the same path a third party's hooks take. Every
name is a lazy ``"module:attr"`` target: this module imports neither torch nor any
implementation module, so listing names costs no ``import torch``.

What the conformance kit needs to check a name ([optreg.testing][]) is declared
here, in each name's metadata under ``"conformance"``, as a plugin declares it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pluggy

from optreg._core.traits import Traits

if TYPE_CHECKING:
    from optreg.hookspecs import PluginRegistry

__all__ = ["BNB_OPTIMIZERS", "CATALOGUE", "BnbName", "BuiltinPlugin", "Name"]

hookimpl = pluggy.HookimplMarker("optreg")


@dataclass(frozen=True)
class Name:
    """One builtin name: what `optreg.PluginRegistry.register()` receives."""

    name: str
    target: str
    description: str
    aliases: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    extra: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    traits: Traits | None = None


@dataclass(frozen=True, eq=False)  # identity hash: pluggy keeps plugins in sets
class BuiltinPlugin:
    """A builtin hook plugin: a name for blocking and the names it registers."""

    name: str
    optimizers: tuple[Name, ...] = ()
    schedulers: tuple[Name, ...] = ()

    @hookimpl
    def optreg_add_optimizers(self, registry: PluginRegistry) -> None:
        """Register this plugin's optimizer names (lazy targets)."""
        _register(registry, self.optimizers)

    @hookimpl
    def optreg_add_schedulers(self, registry: PluginRegistry) -> None:
        """Register this plugin's scheduler names (lazy targets)."""
        _register(registry, self.schedulers)


def _register(registry: PluginRegistry, names: tuple[Name, ...]) -> None:
    for n in names:
        registry.register(
            n.name,
            n.target,
            aliases=n.aliases,
            description=n.description,
            requires=n.requires,
            extra=n.extra,
            metadata=n.metadata,
            traits=n.traits,
        )


def _needs(**needs: Any) -> Mapping[str, Any]:
    """Metadata declaring what the conformance kit needs for a name."""
    return MappingProxyType({"conformance": MappingProxyType(needs)})


# ----------------------------------------------------------------------- schedules
_S = "optreg.builtin.schedules:"
SCHEDULES = BuiltinPlugin(
    "schedules",
    schedulers=(
        Name("constant", _S + "get_constant_schedule", "constant learning rate"),
        Name(
            "constant_with_warmup",
            _S + "get_constant_schedule_with_warmup",
            "linear warmup, then constant",
        ),
        Name(
            "linear",
            _S + "get_linear_schedule_with_warmup",
            "linear warmup, then linear decay to 0",
        ),
        Name(
            "cosine",
            _S + "get_cosine_schedule_with_warmup",
            "linear warmup, then cosine decay to 0",
        ),
        Name(
            "cosine_with_restarts",
            _S + "get_cosine_with_hard_restarts_schedule_with_warmup",
            "linear warmup, then num_cycles cosine decays with hard restarts",
        ),
        Name(
            "polynomial",
            _S + "get_polynomial_decay_schedule_with_warmup",
            "linear warmup, then polynomial decay to lr_end",
        ),
        Name(
            "inverse_sqrt",
            _S + "get_inverse_sqrt_schedule",
            "linear warmup, then inverse square-root decay",
        ),
        Name(
            "reduce_lr_on_plateau",
            "optreg.builtin.plateau:get_reduce_on_plateau_schedule",
            "torch ReduceLROnPlateau: cut the lr when a metric stops improving",
            traits=Traits(metric_driven=True),
        ),
        Name(
            "cosine_with_min_lr",
            _S + "get_cosine_with_min_lr_schedule_with_warmup",
            "linear warmup, then cosine decay to min_lr",
            metadata=_needs(kwargs={"min_lr_rate": 0.1}),
        ),
        Name(
            "cosine_warmup_with_min_lr",
            _S + "get_cosine_with_min_lr_schedule_with_warmup_lr_rate",
            "warmup from warmup_lr_rate, then cosine decay to min_lr",
            metadata=_needs(kwargs={"min_lr_rate": 0.1}),
        ),
        Name(
            "warmup_stable_decay",
            _S + "get_wsd_schedule",
            "warmup, stable phase, then linear/cosine/1-sqrt decay (WSD)",
            aliases=("wsd",),
            metadata=_needs(kwargs={"num_decay_steps": 5}),
        ),
        Name(
            "sequence",
            "optreg.builtin.sequence:get_sequence_schedule",
            "phases of any registered schedules, each exact at its local step",
            metadata=_needs(
                kwargs={
                    "phases": [
                        {"name": "constant_with_warmup", "steps": 0.25, "num_warmup_steps": 0.5},
                        {"name": "cosine", "steps": 0.75},
                    ]
                }
            ),
        ),
        Name(
            "greedy",
            "optreg.builtin.greedy:GreedyLR",
            "GreedyLR: raise the lr while a metric improves, cut it on plateaus",
            traits=Traits(metric_driven=True),
        ),
    ),
)

# --------------------------------------------------------------------- torch.optim
_T = "optreg.builtin.torch_optim:"
TORCH_OPTIM = BuiltinPlugin(
    "torch_optim",
    optimizers=(
        Name(
            "adamw",
            _T + "adamw",
            "torch.optim.AdamW (decoupled weight decay), fused kernel when supported",
            aliases=("adamw_torch",),
        ),
        Name("adamw_torch_fused", _T + "adamw_torch_fused", "torch.optim.AdamW with fused=True"),
        Name("adam", _T + "adam", "torch.optim.Adam, fused kernel when supported"),
        Name("sgd", "torch.optim:SGD", "torch.optim.SGD: stochastic gradient descent, momentum"),
        Name("adagrad", "torch.optim:Adagrad", "torch.optim.Adagrad: per-coordinate adaptive lr"),
        Name("rmsprop", "torch.optim:RMSprop", "torch.optim.RMSprop: scaled by a running RMS"),
        Name("nadam", _T + "nadam", "torch.optim.NAdam: Adam with Nesterov momentum"),
        Name("radam", "torch.optim:RAdam", "torch.optim.RAdam: Adam with variance rectification"),
        Name("adamax", "torch.optim:Adamax", "torch.optim.Adamax: Adam with the infinity norm"),
        Name("adadelta", "torch.optim:Adadelta", "torch.optim.Adadelta: lr-free adaptive steps"),
        Name("asgd", "torch.optim:ASGD", "torch.optim.ASGD: averaged stochastic gradient descent"),
        Name("rprop", "torch.optim:Rprop", "torch.optim.Rprop: resilient backpropagation"),
        Name(
            "sparse_adam",
            "torch.optim:SparseAdam",
            "torch.optim.SparseAdam: lazy Adam for sparse gradients",
            metadata=_needs(sparse_grad=True),
        ),
        Name(
            "lbfgs",
            "torch.optim:LBFGS",
            "torch.optim.LBFGS: quasi-Newton, step(closure)",
            metadata=_needs(requires_closure=True, param_groups=False),
        ),
        Name(
            "muon",
            "optreg.builtin.torch_optim:muon",
            "torch.optim.Muon: orthogonalised momentum for 2-D weight matrices",
            requires=("torch>=2.9",),
            metadata=_needs(matrices_only=True),
        ),
        Name(
            "muon_adamw",
            "optreg.builtin.muon:MuonAdamW",
            "Muon for hidden 2-D matrices, AdamW for embeddings, heads, norms, biases: one optimizer",
            aliases=("muon_with_adamw",),
            requires=("torch>=2.9",),
            metadata=_needs(matrices_only=True, kwargs={"route": "ndim"}),
        ),
        Name(
            "adafactor_torch",
            "torch.optim:Adafactor",
            "torch.optim.Adafactor (torch's own variant, not transformers')",
            requires=("torch>=2.5",),
        ),
    ),
)

# ---------------------------------------------------------------- adamw_hf, adafactor
ADAMW = BuiltinPlugin(
    "adamw",
    optimizers=(
        Name(
            "adamw_hf",
            "optreg.builtin.adamw:ClassicAdamW",
            "classic transformers AdamW (correct_bias, eps 1e-6), multi-tensor",
        ),
    ),
)
ADAFACTOR = BuiltinPlugin(
    "adafactor",
    optimizers=(
        Name(
            "adafactor",
            "optreg.builtin.adafactor:Adafactor",
            "Adafactor (transformers semantics): factored second moment, fast",
        ),
    ),
    schedulers=(
        Name(
            "adafactor",
            "optreg.builtin.adafactor_schedule:get_adafactor_schedule",
            "AdafactorSchedule: reports Adafactor's own relative-step lr",
            # it reports the lr Adafactor computes, instead of scaling a numeric one
            metadata=_needs(optimizer="adafactor"),
            traits=Traits(own_lr=True),
        ),
    ),
)


# -------------------------------------------------------------------- bitsandbytes
@dataclass(frozen=True)
class BnbName:
    """One bitsandbytes name: the class it builds and the state it keeps."""

    name: str
    class_name: str
    bits: int
    paged: bool
    description: str
    aliases: tuple[str, ...] = ()
    fixed: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    conformance: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


# The transformers names (adamw_bnb_8bit, paged_adamw_32bit, rmsprop_bnb, ademamix...)
# mean what transformers builds for them; sgd/adagrad/lamb/lars 8-bit are optreg's.
# AdEMAMix32bit / PagedAdEMAMix32bit of bitsandbytes 0.50.2 lack AdEMAMix's second EMA
# buffer and fail on the first step; transformers builds AdEMAMix(optim_bits=32) instead.
_MOMENTUM = MappingProxyType({"kwargs": {"momentum": 0.9}})  # SGD8bit / LARS8bit refuse 0
BNB_OPTIMIZERS: tuple[BnbName, ...] = (
    BnbName("adamw_8bit", "AdamW8bit", 8, False, "AdamW with 8-bit state (bitsandbytes)", ("adamw_bnb_8bit",)),
    BnbName("adam_8bit", "Adam8bit", 8, False, "Adam with 8-bit state (bitsandbytes)"),
    BnbName("paged_adamw_32bit", "PagedAdamW32bit", 32, True, "AdamW with paged 32-bit state (bitsandbytes)", ("paged_adamw",)),
    BnbName("paged_adamw_8bit", "PagedAdamW8bit", 8, True, "AdamW with paged 8-bit state (bitsandbytes)"),
    BnbName("paged_adam_8bit", "PagedAdam8bit", 8, True, "Adam with paged 8-bit state (bitsandbytes)"),
    BnbName("lion_8bit", "Lion8bit", 8, False, "Lion with 8-bit state (bitsandbytes)"),
    BnbName("lion_32bit", "Lion32bit", 32, False, "Lion with 32-bit state (bitsandbytes)"),
    BnbName("paged_lion_8bit", "PagedLion8bit", 8, True, "Lion with paged 8-bit state (bitsandbytes)"),
    BnbName("paged_lion_32bit", "PagedLion32bit", 32, True, "Lion with paged 32-bit state (bitsandbytes)"),
    BnbName("rmsprop_bnb", "RMSprop32bit", 32, False, "RMSprop with 32-bit state (bitsandbytes; transformers' rmsprop_bnb)"),
    BnbName("rmsprop_bnb_8bit", "RMSprop8bit", 8, False, "RMSprop with 8-bit state (bitsandbytes)"),
    BnbName("rmsprop_bnb_32bit", "RMSprop32bit", 32, False, "RMSprop with 32-bit state (bitsandbytes)"),
    BnbName("sgd_8bit", "SGD8bit", 8, False, "SGD with 8-bit momentum (bitsandbytes; needs momentum > 0)", conformance=_MOMENTUM),
    BnbName("adagrad_8bit", "Adagrad8bit", 8, False, "Adagrad with 8-bit state (bitsandbytes)"),
    BnbName("lamb_8bit", "LAMB8bit", 8, False, "LAMB with 8-bit state (bitsandbytes)"),
    BnbName("lars_8bit", "LARS8bit", 8, False, "LARS with 8-bit momentum (bitsandbytes; needs momentum > 0)", conformance=_MOMENTUM),
    BnbName("ademamix", "AdEMAMix", 32, False, "AdEMAMix with 32-bit state (bitsandbytes)", fixed=MappingProxyType({"optim_bits": 32, "is_paged": False})),
    BnbName("ademamix_8bit", "AdEMAMix8bit", 8, False, "AdEMAMix with 8-bit state (bitsandbytes)"),
    BnbName("paged_ademamix_32bit", "PagedAdEMAMix", 32, True, "AdEMAMix with paged 32-bit state (bitsandbytes)", fixed=MappingProxyType({"optim_bits": 32})),
    BnbName("paged_ademamix_8bit", "PagedAdEMAMix8bit", 8, True, "AdEMAMix with paged 8-bit state (bitsandbytes)"),
)  # fmt: skip

BNB = BuiltinPlugin(
    "bnb",
    optimizers=tuple(
        Name(
            b.name,
            f"optreg.builtin.bnb:{b.name}",
            b.description,
            aliases=b.aliases,
            requires=("bitsandbytes",),
            extra="bnb",
            metadata=MappingProxyType(
                {
                    "state_bits": b.bits,
                    "paged": b.paged,
                    "bitsandbytes_class": b.class_name,
                    **({"conformance": b.conformance} if b.conformance else {}),
                }
            ),
        )
        for b in BNB_OPTIMIZERS
    ),
)

#: Every builtin plugin, in registration order.
CATALOGUE: tuple[BuiltinPlugin, ...] = (SCHEDULES, TORCH_OPTIM, ADAMW, ADAFACTOR, BNB)
