"""The ``optreg`` command (also ``python -m optreg``).

::

    optreg list [optimizers|schedulers] [--json]
    optreg info NAME [--kind optimizer|scheduler] [--json]
    optreg check [--strict]
    optreg [-v] [--version] COMMAND
    optreg plot [NAME...] [--config CONFIG] --num-warmup-steps W --num-training-steps T [--lr LR]
                [--kw [NAME.]KEY=VALUE ...] [--log-y] -o FILE.png
    optreg groups NAME [--model MODULE:ATTR|example] [--rules RULES] [--layer-decay D]
                [--kw KEY=VALUE ...] [--json]
    optreg compare [OPT...] [--config CONFIG] [--scheduler NAME] [--steps N] [--lr LR] [--seed S]
                [--num-warmup-steps W] [--kw [NAME.]KEY=VALUE ...] [--[no-]progress]
                -o FILE.png

Exit status: 0 on success; 1 when ``check`` finds a broken plugin or a
``compare`` run fails; 2 for usage errors (unknown name, bad ``KEY=VALUE``,
missing step count, missing optional dependency). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from optreg import _cli_groups, _cli_plot, _loading, _validate
from optreg._errors import (
    AmbiguousNameError,
    MissingDependencyError,
    PluginLoadError,
    UnknownNameError,
    UsageError,
)
from optreg._table import one_line, printable, text_table

__all__ = ["UsageError", "main", "parse_kw"]

PROG = "optreg"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: ...``), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)\n")


def parse_kw(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE``; VALUE is a Python literal when it parses as one, else a str.

    KEY may be scoped to one schedule as ``NAME.KEY`` (e.g. ``cosine.num_cycles=2``).

    >>> parse_kw("num_cycles=2"), parse_kw("mode=max")
    (('num_cycles', 2), ('mode', 'max'))

    Raises:
        argparse.ArgumentTypeError: no ``=``, or KEY is not a Python identifier.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    scope, dot, attr = key.rpartition(".")
    if not sep or not attr.isidentifier() or (dot and not scope.strip()):
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE or NAME.KEY=VALUE with KEY a Python identifier, got {text!r}"
        )
    try:
        value: Any = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        value = raw
    return key, value


def _number(text: str) -> object:
    """A flag's text as an int, else a float, else the text (for the check to name)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class StepCount:
    """One check of a step count, however it arrives: a flag's text (an argparse type)
    or a config's value (:meth:`check`); both go through :func:`optreg._validate.steps`."""

    def __init__(self, what: str, *, low: int, high: int = _validate.MAX_STEPS) -> None:
        self.what, self.low, self.high = what, low, high

    def check(self, value: object, what: str | None = None) -> int:
        """The count ``value`` stands for.

        Raises:
            argparse.ArgumentTypeError: what :func:`optreg._validate.steps` refuses.
        """
        if isinstance(value, str):
            value = _number(value)
        try:
            return _validate.steps(what or self.what, value, low=self.low, high=self.high)
        except (TypeError, ValueError) as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    def __call__(self, text: str) -> int:
        return self.check(text)


#: compare trains for real: a run this long takes hours on a CPU.
MAX_COMPARE_STEPS = 100_000
#: torch seeds are 64-bit; compare derives a few seeds from the one given.
MAX_SEED = 2**63 - 16

WARMUP_STEPS = StepCount("num_warmup_steps", low=0)
TRAINING_STEPS = StepCount("num_training_steps", low=1)
COMPARE_STEPS = StepCount("steps", low=1, high=MAX_COMPARE_STEPS)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is 0 to {MAX_SEED:,}, got {value:,}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


# -- list -------------------------------------------------------------------


def _registries(kind: str | None) -> list[tuple[str, Any]]:
    from optreg._registry import optimizers, schedulers

    pairs = [("optimizers", optimizers), ("schedulers", schedulers)]
    return [(label, reg) for label, reg in pairs if kind in (None, label)]


def _listing(registry: Any) -> list[dict[str, Any]]:
    """Rows for ``list``: one per entry, shadowed/ambiguous ones under their qualified name."""
    rows: list[dict[str, Any]] = []
    for entry in registry.entries():
        shadowed_by = preferred_by = None
        try:
            reached = registry.resolve(entry.name)
        except AmbiguousNameError:
            state = "ambiguous"
        else:
            state = "ok" if reached is entry else "shadowed"
            if reached is not entry:
                shadowed_by = reached.qualified_name
            preferred_by = registry.preferred_by(entry.name)
        available, reason = registry.status(entry)
        rows.append(
            {
                "name": entry.name if state == "ok" else entry.qualified_name,
                "canonical_name": entry.name,
                "qualified_name": entry.qualified_name,
                "aliases": list(entry.aliases),
                "provider": entry.project,
                "version": entry.version,
                "source": entry.source,
                "target": entry.target_ref,
                "description": entry.description or entry.summary,
                "available": available,
                "reason": reason,
                "extra": entry.extra,
                "status": state,
                "shadowed_by": shadowed_by,
                "preferred_by": preferred_by,
            }
        )
    return rows


def _provider_text(row: dict[str, Any]) -> str:
    if row["source"] == "runtime":
        return "(run time)"
    return f"{row['provider']} {row['version']}" if row["version"] else row["provider"]


def _available_text(row: dict[str, Any]) -> str:
    if row["available"]:
        return "yes"
    return f"no (optreg[{row['extra']}])" if row["extra"] else "no"


def cmd_list(args: argparse.Namespace) -> int:
    """``optreg list``: every name, its provider, availability and description."""
    listings = {label: _listing(reg) for label, reg in _registries(args.kind)}
    if args.json:
        print(json.dumps(listings, indent=2, default=str))
        return 0
    blocks = []
    for label, rows in listings.items():
        notes = []
        for row in rows:
            why = f" (preferred by {row['preferred_by']})" if row["preferred_by"] else ""
            if row["status"] == "shadowed":
                notes.append(f"  {row['name']}: shadowed by {row['shadowed_by']}{why}")
            elif why:
                notes.append(f"  {row['canonical_name']}: reaches {row['qualified_name']}{why}")
            elif row["status"] == "ambiguous":
                notes.append(
                    f"  {row['name']}: {row['canonical_name']!r} is ambiguous; use the qualified "
                    "name, or prefer a provider (optreg.prefer, OPTREG_PREFER, [tool.optreg] "
                    "prefer in pyproject.toml)"
                )
        table = text_table(
            ("name", "provider", "available", "description"),
            [(r["name"], _provider_text(r), _available_text(r), r["description"]) for r in rows],
        )
        blocks.append(
            f"{label} ({len(rows)})\n{table}" + ("\n" + "\n".join(notes) if notes else "")
        )
    print("\n\n".join(blocks))
    return 0


# -- info -------------------------------------------------------------------


def _infos(name: str, kind: str | None) -> dict[str, Any]:
    from optreg._api import optimizer_info, scheduler_info

    found: dict[str, Any] = {}
    unknown: list[UnknownNameError] = []
    lookups: list[tuple[str, Callable[[str], Any]]] = [
        ("optimizer", optimizer_info),
        ("scheduler", scheduler_info),
    ]
    for label, lookup in lookups:
        if kind not in (None, label):
            continue
        try:
            found[label] = lookup(name)
        except UnknownNameError as e:
            unknown.append(e)
        except (ValueError, TypeError) as e:  # a malformed name ('', 'a b')
            raise UsageError(str(e)) from e
    if found:
        return found
    if kind is not None:
        other = "scheduler" if kind == "optimizer" else "optimizer"
        registry = _registries(f"{other}s")[0][1]
        if name in registry:
            raise UsageError(
                f"unknown {kind} {name!r}; {name!r} is a{'n' if other[0] == 'o' else ''} "
                f"{other}: `optreg info {name} --kind {other}` (or leave --kind out)"
            )
    if len(unknown) == 1:
        raise unknown[0]
    suggestions = list(dict.fromkeys(s for e in unknown for s in e.suggestions))[:3]
    hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
    raise UsageError(f"unknown optimizer or scheduler {name!r}{hint} (see `optreg list`)")


def _info_text(info: Any) -> str:
    provider = f"{info.provider} {info.version}" if info.version else info.provider
    available = "yes" if info.available else f"no: {info.reason}"
    fields = [
        ("qualified name", info.qualified_name),
        ("aliases", ", ".join(info.aliases) or "(none)"),
        ("provider", provider),
        ("target", info.target),
        ("available", available),
        ("signature", info.signature or "(unknown until the target can be imported)"),
        ("required", ", ".join(info.required_args) or "(none)"),
    ]
    fields.extend((f"metadata.{k}", repr(v)) for k, v in sorted(info.metadata.items()))
    width = max(len(k) for k, _ in fields) + 1
    lines = [f"{info.name}  ({info.kind})"]
    lines += [f"  {(k + ':').ljust(width)} {one_line(v)}" for k, v in fields]
    if info.doc:
        lines += ["", *(f"  {line}" for line in printable(info.doc).splitlines())]
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    """``optreg info NAME``: signature, defaults, required arguments, provider, doc."""
    infos = _infos(args.name, args.kind)
    if args.json:
        out = {
            kind: {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
            for kind, info in infos.items()
        }
        for item in out.values():
            item["metadata"] = dict(item["metadata"])
        print(json.dumps(out, indent=2, default=repr))
    else:
        print("\n\n".join(_info_text(info) for info in infos.values()))
    return 0


# -- check ------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    """``optreg check``: load every entry; exit 1 if a plugin or an entry is broken."""
    from optreg._discovery import problems

    broken: list[str] = [f"plugin {p}" for p in problems()]
    unavailable: list[str] = []
    warnings: list[str] = []
    counts: dict[str, int] = {}
    for label, registry in _registries(None):
        entries = registry.entries()
        counts[label] = len(entries)
        for entry in entries:
            where = f"{registry.kind} {entry.qualified_name}"
            try:
                # loads it and reads its signature and contract: a target that is not
                # callable, or whose signature raises, is a PluginLoadError
                _loading.contract(entry)
            except MissingDependencyError as e:
                unavailable.append(f"{where}: {one_line(str(e))}")
            except Exception as e:
                broken.append(f"{where}: {one_line(f'{type(e).__name__}: {e}')}")
        shadowed, ambiguous = registry.conflicts()
        for winner, loser in shadowed:
            warnings.append(
                f"{registry.kind} {loser.name!r} from {loser.provider} is shadowed by "
                f"{winner.qualified_name}; reachable only as {loser.qualified_name!r}"
            )
        for name, entries_ in ambiguous:
            warnings.append(
                f"{registry.kind} name {name!r} is ambiguous (provided by "
                + ", ".join(sorted(e.qualified_name for e in entries_))
                + "); use a qualified name"
            )
    for line in broken:
        print(f"BROKEN       {line}")
    for line in warnings:
        print(f"WARNING      {line}")
    for line in unavailable:
        print(f"UNAVAILABLE  {line}")
    total = sum(counts.values())
    summary = ", ".join(f"{n} {label}" for label, n in counts.items())
    print(
        f"checked {total} entries ({summary}): {len(broken)} broken, "
        f"{len(warnings)} warning{'' if len(warnings) == 1 else 's'}, {len(unavailable)} unavailable (optional dependency missing)"
    )
    if broken or (args.strict and warnings):
        return 1
    return 0


# -- parser and entry point ---------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``optreg`` command."""
    parser = _Parser(
        prog=PROG,
        description="Optimizers and learning-rate schedulers by name, from any installed plugin.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show what libraries log while optreg works (bitsandbytes' import notes, ...) "
        "and, on an error, its traceback",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="list optimizer and scheduler names (imports no plugin target)")
    p.add_argument("kind", nargs="?", choices=("optimizers", "schedulers"), help="only this kind")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="signature, defaults, required arguments, provider, doc")
    p.add_argument("name", metavar="NAME", help="a name, alias or qualified name (dist:name)")
    p.add_argument("--kind", choices=("optimizer", "scheduler"), help="look in one registry only")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("check", help="load every entry; exit 1 if any plugin is broken")
    p.add_argument(
        "--strict", action="store_true", help="also exit 1 on shadowed or ambiguous names"
    )
    p.set_defaults(func=cmd_check)

    kw_help = (
        "schedule argument, repeatable; VALUE is read as a Python literal, else as a string; "
        "NAME.KEY=VALUE sets it for one schedule, KEY=VALUE for every schedule whose "
        "signature names KEY (else those taking **kwargs)"
    )
    config_help = (
        "a config (a .json / .yaml / .toml file, or inline JSON) as optreg.build() takes: "
        "{optimizer: ..., scheduler: ..., num_training_steps: N}"
    )
    p = sub.add_parser("plot", help="plot learning-rate curves of schedules")
    p.add_argument("names", nargs="*", metavar="NAME", help="scheduler names")
    p.add_argument("--config", metavar="CONFIG", help=config_help + "; its scheduler is plotted")
    p.add_argument("--num-warmup-steps", type=WARMUP_STEPS, metavar="W")
    p.add_argument("--num-training-steps", type=TRAINING_STEPS, metavar="T")
    p.add_argument(
        "--lr", type=_positive_float, default=1.0, help="base learning rate (default 1.0)"
    )
    p.add_argument("--kw", type=parse_kw, action="append", metavar="KEY=VALUE", help=kw_help)
    p.add_argument("--log-y", action="store_true", help="logarithmic learning-rate axis")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png", help="image to write")
    p.set_defaults(func=_cli_plot.cmd_plot, step_count=TRAINING_STEPS)

    p = sub.add_parser("compare", help="train a small built-in task with each optimizer")
    p.add_argument("optimizers", nargs="*", metavar="OPT", help="optimizer names")
    p.add_argument(
        "--config",
        metavar="CONFIG",
        help=config_help + "; its optimizer is one more row, its scheduler drives every row",
    )
    p.add_argument("--scheduler", metavar="NAME", help="scheduler for every run (default: none)")
    p.add_argument(
        "--steps",
        type=COMPARE_STEPS,
        default=None,
        help=f"optimizer steps (default: the config's num_training_steps, else 300; at most "
        f"{MAX_COMPARE_STEPS:,})",
    )
    p.add_argument(
        "--lr", type=_positive_float, help="learning rate (default: each optimizer's own)"
    )
    p.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="data/init seed (default 0)",
    )
    p.add_argument("--num-warmup-steps", type=WARMUP_STEPS, default=0, metavar="W")
    p.add_argument("--kw", type=parse_kw, action="append", metavar="KEY=VALUE", help=kw_help)
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tqdm progress bar on stderr (default: only on a terminal)",
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE.png", help="loss-curve image")
    p.set_defaults(func=_cli_plot.cmd_compare, step_count=COMPARE_STEPS)

    p = sub.add_parser("groups", help="dry run: each parameter's group, optimizer, lr, decay")
    p.add_argument("name", metavar="NAME", help="an optimizer name")
    p.add_argument(
        "--model",
        default="example",
        help="module:attr of a callable returning an nn.Module, or 'example' (optreg's tiny LM)",
    )
    p.add_argument(
        "--rules",
        metavar="RULES",
        help="param-group rules: inline JSON (a list), or a .json / .yaml / .toml file "
        "holding {rules: [...]}",
    )
    p.add_argument("--layer-decay", type=_positive_float, metavar="D", help="layer-wise lr decay")
    p.add_argument(
        "--kw",
        type=parse_kw,
        action="append",
        metavar="KEY=VALUE",
        help="optimizer argument, repeatable (lr=0.02, weight_decay=0.1, adamw_lr=3e-4)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cli_groups.cmd_groups)
    return parser


def _version() -> str:
    from optreg._entry import optreg_version

    return optreg_version()


def _quiet_libraries(*, verbose: bool) -> None:
    """Keep what dependencies log (bitsandbytes' "Failed to load CPU gemm_4bit_forward
    from kernels-community ..." at import) out of the command's output, unless ``-v``."""
    import logging

    root = logging.getLogger()
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    elif not root.handlers:
        root.addHandler(logging.NullHandler())  # no "last resort" printing to stderr


def _traceback(verbose: bool) -> None:
    """With ``-v``, the traceback of the error being handled, before its one-line summary."""
    if verbose:
        import traceback

        traceback.print_exc(file=sys.stderr)


def _fail(command: str | None, message: str, code: int) -> int:
    prog = f"{PROG} {command}" if command else PROG
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``optreg`` command line and return its exit status."""
    parser = build_parser()
    command: str | None = None
    verbose = False
    try:
        args = parser.parse_args(argv)
        command, verbose = args.command, args.verbose
        _quiet_libraries(verbose=verbose)
        code: int = args.func(args)
        sys.stdout.flush()
        return code
    except SystemExit as e:  # argparse: --help (0) or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    except (UsageError, UnknownNameError, AmbiguousNameError, MissingDependencyError) as e:
        _traceback(verbose)
        return _fail(command, str(e), 2)
    except PluginLoadError as e:
        _traceback(verbose)
        return _fail(command, str(e), 1)
    except KeyboardInterrupt:
        return _fail(command, "interrupted", 130)
    except BrokenPipeError:
        # the reader went away (`optreg list | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as e:
        _traceback(verbose)
        return _fail(command, f"{type(e).__name__}: {e}", 1)
