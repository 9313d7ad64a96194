"""optreg-single-optimizers: the optimizers that come one package at a time, by name.

Importing this package imports nothing else: each name is a lazy ``"module:attr"``
target (see :mod:`optreg_single_optimizers.plugin`), imported when the name is used.
"""

from __future__ import annotations

__all__: list[str] = []
