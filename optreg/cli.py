"""The ``optreg`` command (placeholder until the CLI issue lands)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the ``optreg`` command line."""
    from optreg import list_optimizers, list_schedulers

    args = sys.argv[1:] if argv is None else argv
    what = args[1] if len(args) > 1 else None
    if not args or args[0] != "list":
        print("usage: optreg list [optimizers|schedulers]", file=sys.stderr)
        return 2
    if what in (None, "optimizers"):
        print("\n".join(list_optimizers()))
    if what in (None, "schedulers"):
        print("\n".join(list_schedulers()))
    return 0
