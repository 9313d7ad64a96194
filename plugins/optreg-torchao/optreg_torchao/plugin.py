"""The optreg hook plugin (entry-point group ``optreg``): torchao.optim by name.

torchao's class names, lower-cased (``adamw8bit``, ``adam4bit``, ``adamwfp8``, ...), and
transformers' ``adamw_torch_4bit`` / ``adamw_torch_8bit``. Listing them imports nothing;
torchao (about 2.5 s to import) is imported when a name is used. The low-bit state is
quantised only for tensors of at least 4096 elements whose size the block size divides;
smaller ones keep fp32 state, as torchao does.
"""

from __future__ import annotations

from typing import Any

from optreg import PluginRegistry, hookimpl

__all__ = ["OPTIMIZERS", "optreg_add_optimizers"]

_CPU_OFFLOAD = (
    "wraps another optimizer class (optimizer_class=) and moves the parameters between "
    "a CUDA device and the CPU"
)

#: name -> (target, description, conformance needs)
OPTIMIZERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "adamw_torch_4bit": (
        "optreg_torchao.factories:adamw_torch_4bit",
        "torchao AdamW with 4-bit state, as transformers' adamw_torch_4bit (block size 256)",
        {},
    ),
    "adamw_torch_8bit": (
        "optreg_torchao.factories:adamw_torch_8bit",
        "torchao AdamW with 8-bit state, as transformers' adamw_torch_8bit",
        {},
    ),
    **{
        cls.lower(): (f"torchao.optim:{cls}", f"torchao {cls}: {what}", {})
        for cls, what in (
            ("Adam4bit", "Adam with 4-bit state"),
            ("Adam8bit", "Adam with 8-bit state"),
            ("AdamFp8", "Adam with FP8 state"),
            ("AdamW4bit", "AdamW with 4-bit state"),
            ("AdamW8bit", "AdamW with 8-bit state"),
            ("AdamWFp8", "AdamW with FP8 state"),
        )
    },
    "cpuoffloadoptimizer": (
        "torchao.optim:CPUOffloadOptimizer",
        "torchao CPUOffloadOptimizer: optimizer state and step on the CPU",
        {"device": "cuda", "skip": _CPU_OFFLOAD},
    ),
}


@hookimpl
def optreg_add_optimizers(registry: PluginRegistry) -> None:
    """Register torchao's optimizers (torchao is not imported)."""
    for name, (target, description, needs) in OPTIMIZERS.items():
        registry.register(
            name,
            target,
            description=description,
            requires=("torchao",),
            metadata={"conformance": needs} if needs else {},
        )
