"""``python -m optreg.testing FILE --provider DIST [--check]``: the kit's table into FILE;
``python -m optreg.testing --capabilities [--check]``: the builtins' measured capabilities
into the package (`optreg.builtin.capabilities`);
``python -m optreg.testing FILE --provider DIST --capabilities [--check]``: a
distribution's into FILE (an adapter's README).

Exit status: 0 written (or current with ``--check``),
1 the table is out of date (``--check``), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from optreg.testing._table import conformance_rows, render, replace_section, stale


def main(argv: list[str] | None = None) -> int:
    """Run the checks over the providers' names and write (or compare) the table."""
    parser = argparse.ArgumentParser(
        prog="python -m optreg.testing",
        description="write the conformance kit's verdict on every name of a provider "
        "between the optreg-kit-table markers of a Markdown file",
    )
    parser.add_argument(
        "file", type=Path, nargs="?", help="the Markdown file (an adapter's README)"
    )
    parser.add_argument("--provider", action="append", help="distribution")
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    parser.add_argument(
        "--capabilities",
        action="store_true",
        help="measure capabilities (compile, bf16, ddp, fsdp2): the builtins' into the "
        "package, or with FILE and --provider a distribution's into FILE",
    )
    args = parser.parse_args(argv)
    if args.capabilities and args.file is None:
        if args.provider:
            parser.error(
                "--capabilities --provider DIST needs the FILE to write the table into (the "
                "distribution's README); without --provider it measures the builtins"
            )
        return _capabilities(check=args.check)
    if args.capabilities and args.provider:
        return _provider_capabilities(args.file, args.provider, check=args.check)
    if args.file is None or not args.provider:
        parser.error("give FILE and --provider DIST (or --capabilities)")
    text = args.file.read_text(encoding="utf-8")
    try:
        rows = conformance_rows(args.provider)
        new = replace_section(text, render(rows))
    except ValueError as e:
        print(f"python -m optreg.testing: {e}", file=sys.stderr)
        return 2
    if args.check:
        diff = stale(text, rows)
        if diff:
            print(f"{args.file}: the kit table is out of date: {diff[:6]}", file=sys.stderr)
            return 1
        return 0
    args.file.write_text(new, encoding="utf-8")
    print(f"{args.file}: {len(rows)} names")
    return 0


def _provider_capabilities(path: Path, providers: list[str], *, check: bool) -> int:
    from optreg.testing._capabilities import capability_table
    from optreg.testing._table import (
        CAP_END,
        CAP_START,
        parse_capabilities,
        render_capabilities,
    )

    text = path.read_text(encoding="utf-8")
    try:
        measured = capability_table(providers)
        new = replace_section(text, render_capabilities(measured), (CAP_START, CAP_END))
    except ValueError as e:
        print(f"python -m optreg.testing: {e}", file=sys.stderr)
        return 2
    if check:
        old, now = parse_capabilities(text), parse_capabilities(new)
        diff = sorted(n for n in set(old) | set(now) if old.get(n) != now.get(n))
        if diff:
            print(f"{path}: the capability table is out of date for {diff[:6]}", file=sys.stderr)
            return 1
        return 0
    path.write_text(new, encoding="utf-8")
    print(f"{path}: {len(measured['optimizers'])} optimizers, torch {measured['torch']}")
    return 0


def _capabilities(*, check: bool) -> int:
    import json

    from optreg.builtin.capabilities import TABLE, table
    from optreg.testing._capabilities import capability_table, stale_rows

    measured = capability_table()
    if check:
        diff = stale_rows(table(), measured)
        if diff:
            print(f"{TABLE}: the capability table is out of date: {diff[:6]}", file=sys.stderr)
            return 1
        return 0
    TABLE.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{TABLE}: {len(measured['optimizers'])} names, torch {measured['torch']}")
    return 0
