"""``optreg plot`` and ``optreg compare``: the commands that build schedules or train.

Both write a figure (matplotlib, imported only here) and take ``--kw KEY=VALUE``
arguments, which `_scoped()` and `_route()` send to the right schedule.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optreg._core.errors import OptregError, UsageError, close_matches
from optreg._core.signature import accepted_keywords, takes
from optreg._core.table import one_line

if TYPE_CHECKING:
    from optreg._build.spec import Spec

__all__ = ["cmd_compare", "cmd_plot"]


def _scoped(registry: Any, kw: dict[str, Any], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Split ``NAME.KEY`` arguments by schedule: ``{canonical name: {KEY: value}}``.

    Raises:
        UsageError: NAME is not one of ``names``.
    """
    canonical = {registry.resolve(n).name for n in names}
    out: dict[str, dict[str, Any]] = {}
    for key, value in kw.items():
        scope, dot, attr = key.rpartition(".")
        if not dot:
            continue
        try:
            target = registry.resolve(scope.strip()).name
        except (OptregError, ValueError, TypeError):
            target = None
        if target not in canonical:
            raise UsageError(
                f"--kw {key}: {scope!r} is not among the schedules given ({', '.join(names)})"
            )
        out.setdefault(target, {})[attr] = value
    return out


def _kw_dict(pairs: Sequence[tuple[str, Any]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs or ():
        if key in out:
            raise UsageError(f"--kw {key} given twice ({out[key]!r} and {value!r})")
        out[key] = value
    return out


# -- plot -------------------------------------------------------------------


def _output_path(text: str) -> Path:
    from optreg.cli._curves import formats

    path = Path(text)
    if path.is_dir():
        raise UsageError(f"-o {text!r} is a directory; give a file name like lr.png")
    if not path.parent.is_dir():
        raise UsageError(f"-o {text!r}: directory {str(path.parent)!r} does not exist")
    fmt = path.suffix[1:].lower() or "png"
    if fmt not in formats():
        raise UsageError(
            f"-o {text!r}: matplotlib cannot write .{fmt} files; use one of "
            + ", ".join("." + f for f in formats())
        )
    return path


def _nobody_takes(key: str, what: str, factories: Sequence[Any]) -> UsageError:
    """The error for a ``--kw KEY`` no factory takes, with the closest keyword."""
    known = sorted({k for f in factories for k in accepted_keywords(f) or ()})
    hint = close_matches(key, known, n=1)
    return UsageError(
        f"--kw {key}: no {what} takes {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
    )


def _route(factories: dict[str, Any], key: str) -> list[str]:
    """The schedules an unscoped ``--kw KEY`` goes to: those naming KEY in their
    signature, else those taking ``**kwargs``."""
    named = [n for n, f in factories.items() if takes(f, key) == "named"]
    return named or [n for n, f in factories.items() if takes(f, key) == "var"]


def _config_spec(args: argparse.Namespace) -> Spec | None:
    """``--config`` (a file or inline JSON) as a `Spec`; its training length fills
    in the step count the command line did not give, with the check that flag gets."""
    from optreg._build.spec import Spec

    if args.config is None:
        return None
    try:
        spec = Spec.from_config(args.config)
    except (OSError, ValueError, TypeError) as e:
        raise UsageError(f"--config: {e}") from e
    steps = spec.num_training_steps
    if spec.scheduler is not None and spec.scheduler.num_training_steps is not None:
        steps = spec.scheduler.num_training_steps
    if steps is not None:  # the check its flag gets
        try:
            steps = args.step_count.check(steps, "num_training_steps")
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"--config: {e}") from None
    if steps is not None and getattr(args, "num_training_steps", 0) is None:
        args.num_training_steps = steps
    if steps is not None and getattr(args, "steps", 0) is None:
        args.steps = steps
    return spec


def cmd_plot(args: argparse.Namespace) -> int:
    """``optreg plot``: learning-rate curves of schedules, on one labelled axis."""
    from optreg._core.registry import schedulers
    from optreg._core.signature import takes
    from optreg.cli._curves import lr_curve, require_matplotlib, save_lr_figure

    require_matplotlib()
    path = _output_path(args.output)
    spec = _config_spec(args)
    from_config = None if spec is None else spec.scheduler
    if spec is not None and from_config is None:
        raise UsageError("--config: the config has no 'scheduler' section to plot")
    if from_config is not None:
        args.names = [*args.names, from_config.name]
    if not args.names:
        raise UsageError("give a schedule NAME to plot, or --config with a scheduler")
    if args.num_training_steps is None:
        raise UsageError("--num-training-steps is required (it sets how many steps are plotted)")
    kw = _kw_dict(args.kw)
    factories = {name: schedulers.load(name) for name in args.names}
    scoped = _scoped(schedulers, kw, args.names)
    drives = args.hyperparameter
    if from_config is not None:  # the config's schedule arguments go to its curve only
        own = scoped.setdefault(schedulers.resolve(from_config.name).name, {})
        own.update(from_config.kwargs)
        drives = drives or own.pop("hyperparameter", None)
        if from_config.num_warmup_steps is not None:
            own["num_warmup_steps"] = from_config.num_warmup_steps
    common = {k: v for k, v in kw.items() if "." not in k}
    routes = {key: _route(factories, key) for key in common}
    for key, takers in routes.items():
        if not takers:
            raise _nobody_takes(
                key, f"schedule among {', '.join(args.names)}", list(factories.values())
            )
    curves = []
    for name in factories:
        mine = {k: v for k, v in common.items() if name in routes[k]}
        mine.update(scoped.get(schedulers.resolve(name).name, {}))
        warmup = mine.pop("num_warmup_steps", args.num_warmup_steps)
        try:
            curves.append(
                lr_curve(
                    name,
                    lr=args.lr,
                    num_warmup_steps=warmup,
                    num_training_steps=args.num_training_steps,
                    kwargs=mine,
                )
            )
        except (ValueError, TypeError) as e:
            raise UsageError(f"scheduler {name!r}: {e}") from e
    drives = drives or "lr"  # the same multipliers drive any hyperparameter
    title = f"{drives} {args.lr:g}, {args.num_training_steps} steps"
    warms = all(takes(f, "num_warmup_steps") for f in factories.values())
    if args.num_warmup_steps is not None and warms:  # said only of schedules that warm up
        title += f", {args.num_warmup_steps} warmup"
    label = "learning rate" if drives == "lr" else drives
    save_lr_figure(curves, path, title=title, log_y=args.log_y, ylabel=label)
    print(f"saved {path} ({len(curves)} schedule{'s' if len(curves) > 1 else ''})")
    return 0


# -- compare ----------------------------------------------------------------


def _compare_kw(
    kw: dict[str, Any], names: Sequence[str], scheduler: str | None
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Route ``--kw`` for ``compare``: ``{optimizer name: kwargs}`` and the schedule's kwargs.

    ``NAME.KEY`` goes to that optimizer (or the scheduler, by its name); a plain ``KEY``
    to the scheduler when it names KEY, else to every optimizer naming it, else to
    those taking ``**kwargs``.

    Raises:
        UsageError: NAME is neither one of the optimizers nor the scheduler, or no one
            takes KEY (with the closest keyword).
    """
    from optreg._core.registry import optimizers, schedulers

    def canonical(registry: Any, name: str) -> str | None:
        try:
            return str(registry.resolve(name).name)
        except (OptregError, ValueError, TypeError):
            return None

    loaded: dict[str, Any] = {}
    for n in names:
        with contextlib.suppress(OptregError, ValueError, TypeError):
            loaded[n] = optimizers.load(n)  # else that row fails with its own message
    by_canonical = {canonical(optimizers, n): n for n in names}
    sched_factory = schedulers.load(scheduler) if scheduler is not None else None
    sched_name = canonical(schedulers, scheduler) if scheduler is not None else None
    opt_kw: dict[str, dict[str, Any]] = {n: {} for n in names}
    sched_kw: dict[str, Any] = {}
    for key, value in kw.items():
        scope, dot, attr = key.rpartition(".")
        if dot:
            target = by_canonical.get(canonical(optimizers, scope.strip()))
            if target is not None:
                opt_kw[target][attr] = value
            elif sched_name is not None and canonical(schedulers, scope.strip()) == sched_name:
                sched_kw[attr] = value
            else:
                among = ", ".join([*names, *([scheduler] if scheduler else [])])
                raise UsageError(f"--kw {key}: {scope!r} is not among the names given ({among})")
            continue
        if sched_factory is not None and takes(sched_factory, key) == "named":
            sched_kw[key] = value
            continue
        takers = _route(loaded, key)  # the optimizers naming KEY, else those with **kwargs
        for n in takers:
            opt_kw[n][key] = value
        if takers:
            continue
        if sched_factory is not None and takes(sched_factory, key) == "var":
            sched_kw[key] = value
        else:
            everyone = [*([sched_factory] if sched_factory is not None else []), *loaded.values()]
            raise _nobody_takes(key, "optimizer or schedule given", everyone)
    return opt_kw, sched_kw


def _train_all(
    task: Any,
    names: Sequence[str],
    args: argparse.Namespace,
    opt_kw: dict[str, dict[str, Any]],
    sched_kw: dict[str, Any],
) -> list[Any]:
    """Train every optimizer; a name that fails to build or train is a failed row."""
    from optreg.cli import _task

    results = []
    for name in names:
        try:
            result = _task.train(
                name,
                task,
                steps=args.steps,
                lr=args.lr,
                scheduler=args.scheduler,
                num_warmup_steps=args.num_warmup_steps,
                optimizer_kwargs=opt_kw.get(name, {}),
                scheduler_kwargs=sched_kw,
                progress=args.progress,
            )
        except Exception as e:  # a run that fails is reported in the table
            result = _task.RunResult(optimizer=name, error=one_line(f"{type(e).__name__}: {e}"))
        results.append(result)
    return results


def _resolve_up_front(names: Sequence[str], scheduler: str | None) -> None:
    """Every name given, before any row trains: a misspelt one is a usage error (exit 2,
    with the did-you-mean), not a failed row after minutes of training.

    Raises:
        UnknownNameError, AmbiguousNameError: a name that does not resolve.
    """
    from optreg._core.registry import optimizers, schedulers

    for name in names:
        optimizers.resolve(name)
    if scheduler is not None:
        schedulers.resolve(scheduler)


def cmd_compare(args: argparse.Namespace) -> int:
    """``optreg compare``: train the built-in task with each optimizer; table and plot."""
    import torch

    from optreg.cli import _task
    from optreg.cli._curves import require_matplotlib, save_loss_figure

    require_matplotlib()
    path = _output_path(args.output)
    spec = _config_spec(args)
    opt_config = None if spec is None else spec.optimizer
    sched_config = None if spec is None else spec.scheduler
    if args.steps is None:
        args.steps = 300
    names = list(args.optimizers)
    if opt_config is not None:
        names.append(opt_config.name)
    names = list(dict.fromkeys(names))
    if not names:
        raise UsageError("give an optimizer OPT to compare, or --config with an optimizer")
    if sched_config is not None and args.scheduler is None:
        args.scheduler = sched_config.name
        if sched_config.num_warmup_steps is not None:
            args.num_warmup_steps = sched_config.num_warmup_steps
    _resolve_up_front(names, args.scheduler)
    opt_kw, sched_kw = _compare_kw(_kw_dict(args.kw), names, args.scheduler)
    if opt_config is not None:  # the config's row trains with the config's arguments
        opt_kw[opt_config.name].update({**opt_config.kwargs, **opt_config.grouping})
    if sched_config is not None and args.scheduler is not None:
        sched_kw = {**sched_config.kwargs, **sched_kw}
    # the task is tiny: one thread is faster than several fighting over a busy machine,
    # and it keeps the numbers the same from one machine to the next
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        task = _task.make_task(args.seed)
        results = _train_all(task, names, args, opt_kw, sched_kw)
    finally:
        torch.set_num_threads(threads)
    lr = "each optimizer's default lr" if args.lr is None else f"lr {args.lr:g}"
    schedule = f"scheduler {args.scheduler}" if args.scheduler else "no scheduler"
    print(task.describe())
    print(f"{args.steps} steps, {lr}, {schedule}, torch {torch.__version__}, 1 thread")
    print()
    print(_task.format_table(results))
    curves = {r.optimizer: r.losses for r in results if r.error is None}
    save_loss_figure(curves, path, title=f"{args.steps} steps, {lr}, {schedule}, seed {args.seed}")
    print(f"\nloss curves saved to {path}")
    return 1 if any(r.error for r in results) else 0
