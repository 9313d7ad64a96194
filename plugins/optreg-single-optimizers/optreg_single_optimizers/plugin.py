"""The optreg hook plugin (entry-point group ``optreg``): a catalogue in code.

Each name is a lazy ``"module:attr"`` target; nothing is imported to list them. A name
whose package is missing is listed as unavailable, and the reason says what to install:
``pip install "optreg-single-optimizers[<its pip distribution>]"`` (every package has an
extra named after its distribution), or, for the hardware-only names, the package of
that hardware.

Names are the package's own class names, lower-cased, except where transformers' Trainer
has a name for the optimizer (``galore_adamw``, ``apollo_adamw``, ``lomo``, ``adalomo``,
``grokadamw``, ``stable_adamw``, ``adamw_torch_xla``, ``adamw_torch_npu_fused``,
``adamw_anyprecision``): then it is transformers' name, with transformers' defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optreg import PluginRegistry, hookimpl

__all__ = ["NAMES", "NOT_REGISTERED", "Name", "optreg_add_optimizers"]

_HERE = "optreg_single_optimizers"
_FIRST_GROUP_LR = (
    "upstream: the adaptive step size uses param_groups[0]['lr'] for every group "
    "(as in the D-Adaptation / Prodigy reference code)"
)
_CUDA = "upstream: builds CUDA tensors whatever the parameters' device"
_LOMO = (
    "trains through optimizer.fused_backward(loss, lr), which updates each parameter "
    "inside backward; step() is not its update (tests/test_single_optimizers_plugin.py "
    "trains it that way)"
)


@dataclass(frozen=True)
class Name:
    """One catalogue entry.

    Attributes:
        target: ``"module:attr"``.
        dist: the pip distribution that provides it (the extra), or None (hardware).
        requires: modules checked without importing them (default: the target's).
        description: one line for listings.
        conformance: what optreg.testing needs to check it.
        metadata: more facts for a trainer.
    """

    target: str
    dist: str | None
    description: str
    requires: tuple[str, ...] = ()
    conformance: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)


def _lowrank(stem: str, dist: str, module: str, what: str, **more: Any) -> dict[str, Name]:
    requires = (module, *more.pop("requires", ()))
    layerwise_note = {
        "note": "each parameter steps in its post-accumulate-grad hook, during backward(): "
        "no gradient accumulation; step() only runs the closure",
        "layerwise": True,
    }
    base: Mapping[str, Any] = {"target_modules": True}
    return {
        stem: Name(
            f"{_HERE}._lowrank:{stem}",
            dist,
            f"{what} (transformers' {stem}: target_modules or rules with rank=)",
            requires=requires,
            conformance=more.get("conformance", {}),
            metadata=base,
        ),
        f"{stem}_layerwise": Name(
            f"{_HERE}._lowrank:{stem}_layerwise",
            dist,
            f"{what}, layer-wise: each parameter steps in its gradient hook",
            requires=requires,
            conformance=more.get("conformance", {}),
            metadata={**base, **layerwise_note},
        ),
    }


#: name -> entry; one dict per package, in the order of the README
NAMES: dict[str, Name] = {
    "lion": Name("lion_pytorch:Lion", "lion-pytorch", "Lion (Chen et al., 2023), lucidrains"),
    "came": Name(
        "came_pytorch:CAME",
        "came-pytorch",
        "CAME: confidence-guided Adafactor (Luo et al., 2023)",
        conformance={"kwargs": {"lr": 0.01}},
    ),
    "adan": Name("adan_pytorch:Adan", "adan-pytorch", "Adan: adaptive Nesterov momentum"),
    "prodigy": Name(
        "prodigyopt:Prodigy",
        "prodigyopt",
        "Prodigy: D-Adaptation that estimates the step size",
        conformance={"skip_checks": {"per_group_lr": _FIRST_GROUP_LR}},
    ),
    **{
        cls.lower(): Name(
            f"dadaptation:{cls}",
            "dadaptation",
            f"{cls}: learning-rate-free {cls[6:]} (Defazio & Mishchenko)",
            conformance={
                "skip_checks": {"per_group_lr": _FIRST_GROUP_LR},
                # with their default lr=1.0 the estimate overshoots the kit's small problem
                # (the loss rises in 20 steps); lr=0.5 descends
                **({"kwargs": {"lr": 0.5}} if cls in ("DAdaptAdam", "DAdaptAdan") else {}),
            },
        )
        for cls in ("DAdaptAdaGrad", "DAdaptAdam", "DAdaptAdan", "DAdaptLion", "DAdaptSGD")
    },
    "kron": Name(
        "kron_torch:Kron",
        "kron-torch",
        "PSGD Kron (Evan Walters)",
        conformance={
            "skip_checks": {
                "resume_bit_identical": "upstream: state_dict() holds objects that "
                "torch.load(weights_only=True) refuses"
            }
        },
    ),
    "distributedkron": Name(
        "kron_torch:DistributedKron",
        "kron-torch",
        "PSGD Kron, sharded across ranks",
        conformance={"device": "cuda", "skip": _CUDA},
    ),
    "distributedonesidedkron": Name(
        "kron_torch:DistributedOneSidedKron",
        "kron-torch",
        "one-sided PSGD Kron, sharded across ranks",
        conformance={"device": "cuda", "skip": _CUDA},
    ),
    "adamatan2": Name(
        "adam_atan2_pytorch:AdamAtan2", "adam-atan2-pytorch", "Adam with atan2 instead of eps"
    ),
    "adamatan2clipgrok": Name(
        "adam_atan2_pytorch:AdamAtan2ClipGrok",
        "adam-atan2-pytorch",
        "AdamAtan2 with grokking-oriented gradient clipping",
    ),
    "adoptatan2": Name(
        "adam_atan2_pytorch:AdoptAtan2", "adam-atan2-pytorch", "ADOPT with atan2 instead of eps"
    ),
    **_lowrank(
        "galore_adamw",
        "galore-torch",
        "galore_torch",
        "GaLore AdamW: gradient low-rank projection",
    ),
    **_lowrank(
        "galore_adamw_8bit",
        "galore-torch",
        "galore_torch",
        "GaLore with bitsandbytes 8-bit AdamW",
        requires=("bitsandbytes",),
        conformance={
            "device": "cuda",
            "skip": _CUDA + " (galore_torch calls bitsandbytes' CUDA path)",
        },
    ),
    **_lowrank(
        "galore_adafactor",
        "galore-torch",
        "galore_torch",
        "GaLore Adafactor (relative_step off, as in transformers)",
    ),
    **_lowrank(
        "apollo_adamw",
        "apollo-torch",
        "apollo_torch",
        "APOLLO: AdamW-like memory with SGD-like state (random projection)",
    ),
    "lomo": Name(
        f"{_HERE}._factories:lomo",
        "lomo-optim",
        "LOMO: fused backward and update (takes the model)",
        requires=("lomo_optim",),
        conformance={"skip": _LOMO},
        metadata={"needs_model": True, "note": "train with optimizer.fused_backward(loss, lr)"},
    ),
    "adalomo": Name(
        f"{_HERE}._factories:adalomo",
        "lomo-optim",
        "AdaLomo: LOMO with Adafactor-style scaling (takes the model)",
        requires=("lomo_optim",),
        conformance={"device": "cuda", "skip": _CUDA + "; and " + _LOMO},
        metadata={"needs_model": True, "note": "train with optimizer.fused_backward(loss, lr)"},
    ),
    "grokadamw": Name(
        "grokadamw:GrokAdamW",
        "grokadamw",
        "GrokAdamW: AdamW tuned for grokking",
        conformance={
            "skip_checks": {
                "resume_bit_identical": "upstream: the moments live in "
                "param_groups[i]['state'], not optimizer.state, and are lost by "
                "state_dict()"
            }
        },
    ),
    "stable_adamw": Name(
        "optimi:StableAdamW",
        "torch-optimi",
        "StableAdamW (AdamW with update clipping), from torch-optimi",
        # upstream: with triton installed (kron-torch installs it) and no GPU, step()
        # raises "0 active drivers"; triton=False keeps it on the PyTorch path
        conformance={"kwargs": {"triton": False}},
    ),
    # hardware-only: listed so that the name resolves, unavailable without the hardware's
    # torch package (none of them installs on this CPU machine)
    "adamw_torch_xla": Name(
        "torch_xla.amp.syncfree:AdamW",
        None,
        "torch_xla's sync-free AdamW (TPU / XLA devices)",
        requires=("torch_xla",),
        conformance={"device": "xla"},
        metadata={"hardware": "an XLA device (TPU); needs torch_xla"},
    ),
    "adamw_torch_npu_fused": Name(
        "torch_npu.optim:NpuFusedAdamW",
        None,
        "torch_npu's fused AdamW (Ascend NPU)",
        requires=("torch_npu",),
        conformance={"device": "npu"},
        metadata={"hardware": "an Ascend NPU; needs torch_npu"},
    ),
    "adamw_anyprecision": Name(
        f"{_HERE}._factories:adamw_anyprecision",
        None,
        "torchdistx's AnyPrecisionAdamW (Kahan summation, low-precision state)",
        requires=("torchdistx",),
        metadata={
            "hardware": "torchdistx, which is not on PyPI",
            "install": "pip install git+https://github.com/pytorch/torchdistx",
        },
    ),
}

#: classes of these packages that are not registered, and why
NOT_REGISTERED: dict[str, str] = {
    "adam_atan2_pytorch.MuonAdamAtan2": "takes (muon_params, params): two parameter lists, "
    "not a (params, **kwargs) factory",
    "adam_atan2_pytorch.PolarAdamAtan2": "takes (polar_params, params): two parameter lists, "
    "not a (params, **kwargs) factory",
    "adam_atan2_pytorch.Adam / Adopt": "plain Adam and ADOPT: 'adam' is a builtin and 'adopt' "
    "is pytorch_optimizer's and heavyball's",
    "apollo_torch.GaLore*": "copies of galore_torch's classes (the galore_* names use those)",
    "apollo_torch.QAPOLLOAdamW": "quantised APOLLO needs quantised weights (Q-GaLore style)",
    "optimi (Adam, AdamW, Lion, ...)": "torch-optimi's other optimizers repeat names other "
    "providers have; only StableAdamW (transformers' stable_adamw) is registered",
}


@hookimpl
def optreg_add_optimizers(registry: PluginRegistry) -> None:
    """Register the catalogue (no package is imported)."""
    for name, spec in NAMES.items():
        metadata = dict(spec.metadata)
        if spec.conformance:
            metadata["conformance"] = dict(spec.conformance)
        registry.register(
            name,
            spec.target,
            description=spec.description,
            requires=spec.requires,
            extra=spec.dist,
            metadata=metadata,
        )
