"""optreg plugin: the optimizers and LR schedulers of pytorch_optimizer, by name.

Importing this package (or its hook module) does not import pytorch_optimizer:
the names come from a frozen list (``_names.py``) and each target is a lazy
``"pytorch_optimizer:Attr"`` string, imported the first time a name is used.
"""

from __future__ import annotations

__all__: list[str] = []
