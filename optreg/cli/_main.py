"""The ``optreg`` command (also ``python -m optreg``).

::

    optreg list [optimizers|schedulers] [--json] [--supports compile,fsdp2]
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
import os
import sys
from collections.abc import Sequence

from optreg._core.errors import (
    AmbiguousNameError,
    MissingDependencyError,
    PluginLoadError,
    UnknownNameError,
    UsageError,
)
from optreg._core.table import one_line
from optreg.cli import _groups, _names, _plot
from optreg.cli._args import (
    COMPARE_STEPS,
    MAX_COMPARE_STEPS,
    PROG,
    TRAINING_STEPS,
    WARMUP_STEPS,
    Parser,
    parse_kw,
    positive_float,
    seed,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``optreg`` command."""
    parser = Parser(
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
    p.add_argument(
        "--supports",
        metavar="CAP[,CAP]",
        help="only optimizers measured to pass these capabilities (compile, bf16, ddp, fsdp2)",
    )
    p.add_argument(
        "--conflicts",
        action="store_true",
        help="list every shadowed, preferred or ambiguous name (default: one summary line)",
    )
    p.set_defaults(func=_names.cmd_list)

    p = sub.add_parser("info", help="signature, defaults, required arguments, provider, doc")
    p.add_argument("name", metavar="NAME", help="a name, alias or qualified name (dist:name)")
    p.add_argument("--kind", choices=("optimizer", "scheduler"), help="look in one registry only")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_names.cmd_info)

    p = sub.add_parser("check", help="load every entry; exit 1 if any plugin is broken")
    p.add_argument(
        "--strict", action="store_true", help="also exit 1 on shadowed or ambiguous names"
    )
    p.set_defaults(func=_names.cmd_check)

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
        "--lr",
        type=positive_float,
        default=1.0,
        help="base value of what is plotted: the lr, or the --hyperparameter (default 1.0)",
    )
    p.add_argument(
        "--hyperparameter",
        choices=("lr", "weight_decay", "momentum"),
        default=None,
        help="what the schedule drives (default lr; a config's scheduler may say it)",
    )
    p.add_argument("--kw", type=parse_kw, action="append", metavar="KEY=VALUE", help=kw_help)
    p.add_argument("--log-y", action="store_true", help="logarithmic axis")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png", help="image to write")
    p.set_defaults(func=_plot.cmd_plot, step_count=TRAINING_STEPS)

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
        "--lr", type=positive_float, help="learning rate (default: each optimizer's own)"
    )
    p.add_argument(
        "--seed",
        type=seed,
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
    p.set_defaults(func=_plot.cmd_compare, step_count=COMPARE_STEPS)

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
    p.add_argument("--layer-decay", type=positive_float, metavar="D", help="layer-wise lr decay")
    p.add_argument(
        "--kw",
        type=parse_kw,
        action="append",
        metavar="KEY=VALUE",
        help="optimizer argument, repeatable (lr=0.02, weight_decay=0.1, adamw_lr=3e-4)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_groups.cmd_groups)
    return parser


def _version() -> str:
    from optreg._core.entry import optreg_version

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
