"""The small model ``optreg groups --model example`` reports on."""

from __future__ import annotations

from torch import nn

__all__ = ["ExampleLM", "example_model"]


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Linear(width, width)


class ExampleLM(nn.Module):
    """A tiny language model with the usual parts: token embedding, ``layers.N`` blocks
    (norms, attention and MLP matrices, biases), a final norm and a tied ``lm_head``."""

    def __init__(self, vocab: int = 64, width: int = 16, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.layers = nn.ModuleList(_Block(width) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.embed.weight


def example_model() -> nn.Module:
    """The model ``optreg groups --model example`` reports on: an `ExampleLM`."""
    return ExampleLM()
