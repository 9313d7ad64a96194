"""The torch.optim family, registered by name."""

from __future__ import annotations

from typing import Any

from optreg import hookimpl

_OPTIMIZERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "adamw": ("torch.optim:AdamW", ("adamw_torch",), "AdamW (decoupled weight decay), torch.optim"),
    "sgd": ("torch.optim:SGD", (), "stochastic gradient descent with momentum, torch.optim"),
}


@hookimpl
def optreg_add_optimizers(registry: Any) -> None:
    for name, (target, aliases, description) in _OPTIMIZERS.items():
        registry.register(name, target, aliases=aliases, description=description)
