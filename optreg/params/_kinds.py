"""What a parameter is: an embedding, part of an output head, a norm weight; and whether
``params`` are ``(name, tensor)`` pairs.

One home for these heuristics. muon_adamw's routing, the rules' ``module`` selector and
layer decay, the default no-decay split and the dry run (``optreg groups``) all ask here,
so they decide alike. With the ``nn.Module`` a parameter's module type counts as well as
its name; with ``(name, tensor)`` pairs only the name can, so pass the module where a
module type matters (an ``nn.Embedding`` named ``shared``, say, is caught by name too).

- **embedding**: the weight of an ``nn.Embedding`` / ``nn.EmbeddingBag``, or a name with a
  part containing ``embed`` (``embed_tokens``, ``pos_embed``, ``patch_embed``,
  ``tok_embeddings``, ``word_embeddings``) or a part in `EMBEDDING_NAMES`
  (GPT-2's ``wte`` / ``wpe``, T5 / BART's ``shared``, ViT's ``cls_token``, T5's
  ``relative_attention_bias``).
- **output head**: a name with a part in `HEAD_NAMES` (``lm_head``, ``classifier``,
  ``head``...) before any numeric part: ``classifier.out_proj.weight`` and ``head.fc.weight``
  are in a head, ``encoder.layer.0.output.dense.weight`` (a block's own ``output``) is not.
- **norm weight**: a parameter of a module in `NORM_LAYERS` or whose class name ends
  in ``Norm`` (a model's own RMSNorm).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from torch import Tensor, nn

__all__ = [
    "EMBEDDING_MODULES",
    "EMBEDDING_NAMES",
    "HEAD_NAMES",
    "NORM_LAYERS",
    "is_embedding",
    "is_head",
    "is_named_pairs",
    "is_norm",
    "named_parameters",
    "one_walk",
    "owners",
]

# The walks of a module's parameters during one build (see one_walk): id(model) -> pairs.
_WALKS: contextvars.ContextVar[dict[int, list[tuple[str, Tensor]]] | None] = contextvars.ContextVar(
    "optreg_walks", default=None
)

#: Name parts (exact) that mark an embedding, besides any part containing ``embed``.
EMBEDDING_NAMES = frozenset({"wte", "wpe", "shared", "cls_token", "relative_attention_bias"})
#: Name parts that mark an output head (when no numeric part comes before them).
HEAD_NAMES = frozenset({"lm_head", "head", "classifier", "score", "qa_outputs", "fc_out", "output"})
#: Module types whose weights are embeddings.
EMBEDDING_MODULES: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)

NORM_LAYERS: tuple[type[nn.Module], ...] = tuple(
    t
    for t in (
        getattr(nn, n, None)
        for n in (
            "LayerNorm",
            "GroupNorm",
            "LocalResponseNorm",
            "RMSNorm",
            "BatchNorm1d",
            "BatchNorm2d",
            "BatchNorm3d",
            "SyncBatchNorm",
            "InstanceNorm1d",
            "InstanceNorm2d",
            "InstanceNorm3d",
        )
    )
    if isinstance(t, type)
)
"""Module types whose weights are norm weights (never decayed by the default rule)."""


def is_embedding(name: str, module: nn.Module | None = None) -> bool:
    """True for an embedding: by ``module``'s type when given, else (or also) by name."""
    if module is not None and isinstance(module, EMBEDDING_MODULES):
        return True
    return any("embed" in part or part in EMBEDDING_NAMES for part in name.split("."))


def is_head(name: str) -> bool:
    """True for a parameter of an output head (see the module docstring)."""
    for part in name.split("."):
        if part.isdigit():
            return False  # inside a block: its ``output`` is a hidden layer
        if part in HEAD_NAMES:
            return True
    return False


def is_norm(module: nn.Module | None) -> bool:
    """True for a normalisation module (its weights are norm weights)."""
    return module is not None and (
        isinstance(module, NORM_LAYERS) or type(module).__name__.endswith("Norm")
    )


def is_named_pairs(items: Any) -> bool:
    """True when ``items`` is a non-empty list or tuple of ``(str, tensor)`` pairs."""
    return (
        isinstance(items, (list, tuple))
        and bool(items)
        and all(
            isinstance(x, tuple)
            and len(x) == 2
            and isinstance(x[0], str)
            and isinstance(x[1], Tensor)
            for x in items
        )
    )


def owners(model: nn.Module) -> dict[int, tuple[str, nn.Module]]:
    """``id(parameter) -> (module name, module)`` of the module that holds each one
    (the first, for a parameter shared by several)."""
    out: dict[int, tuple[str, nn.Module]] = {}
    for module_name, module in model.named_modules():
        for p in module.parameters(recurse=False):
            out.setdefault(id(p), (module_name, module))
    return out


def named_parameters(model: nn.Module) -> list[tuple[str, Tensor]]:
    """``model.named_parameters()`` as a list: walked once per build inside
    `one_walk()` (the grouping, the rules, the routing and the record all ask)."""
    memo = _WALKS.get()
    if memo is None:
        return list(model.named_parameters())
    if id(model) not in memo:
        memo[id(model)] = list(model.named_parameters())
    return memo[id(model)]


@contextlib.contextmanager
def one_walk() -> Iterator[None]:
    """Within the block, `named_parameters()` walks each module once (per thread and
    task: a context variable)."""
    token = _WALKS.set({})
    try:
        yield
    finally:
        _WALKS.reset(token)
