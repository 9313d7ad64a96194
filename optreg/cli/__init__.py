"""The ``optreg`` command (also ``python -m optreg``): ``list`` / ``info`` / ``check``
(`._main`), ``groups``, ``plot`` and ``compare``; see `main()`."""

from __future__ import annotations

from optreg._core.errors import UsageError
from optreg.cli._args import parse_kw
from optreg.cli._main import main

__all__ = ["UsageError", "main", "parse_kw"]
