"""Learning-rate curves of schedules, and the figures ``optreg plot`` / ``compare`` save.

Computing a curve needs only torch; drawing it needs matplotlib (the ``plot``
extra), imported on first use and driven through its Agg canvas, so no display
and no global pyplot state are involved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optreg._core.errors import MissingDependencyError
from optreg._core.signature import step_needs_metric, step_scheduler, takes

__all__ = [
    "DPI",
    "FIGSIZE",
    "LrCurve",
    "lr_curve",
    "require_matplotlib",
    "save_loss_figure",
    "save_lr_figure",
    "synthetic_loss",
]

#: Figure size in inches and resolution: PNGs are 800 x 450 pixels.
FIGSIZE = (8.0, 4.5)
DPI = 100
#: A schedule longer than this is drawn from this many exactly computed steps.
MAX_POINTS = 4000
#: Schedules that must be stepped one step at a time (metric-driven ones) are refused
#: beyond this many steps, so that a plot never runs for minutes.
MAX_STEPPED = 200_000
#: Line styles and markers, so that curves lying on top of each other stay visible.
STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
PLOT_HINT = 'pip install "optreg[plot]"'


@dataclass(frozen=True)
class LrCurve:
    """The learning rate a schedule gives at each step.

    Attributes:
        name: the scheduler name as given.
        lrs: learning rate used at each step of ``steps``.
        metric_driven: the scheduler's ``step()`` takes a metric; it was fed
            `synthetic_loss()`.
        kwargs: the schedule arguments passed, sorted by name.
        steps: the steps ``lrs`` belong to: every step ``0 .. num_training_steps - 1``,
            or, for a long schedule, at most `MAX_POINTS` of them (first and last
            included), each value exact at its step. Empty means every step.
        boundaries: the steps where a ``sequence`` schedule's phases begin (but the first).
    """

    name: str
    lrs: tuple[float, ...]
    metric_driven: bool
    kwargs: tuple[tuple[str, Any], ...] = ()
    steps: tuple[int, ...] = ()
    boundaries: tuple[int, ...] = ()

    @property
    def xs(self) -> tuple[int, ...] | range:
        """The step of each value of ``lrs``."""
        return self.steps or range(len(self.lrs))

    @property
    def label(self) -> str:
        """Legend label: the name, the schedule arguments given, and whether the
        curve depends on a synthetic loss."""
        notes = ["fed a synthetic plateauing loss"] if self.metric_driven else []
        notes += [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.name} ({', '.join(notes)})" if notes else self.name


def require_matplotlib() -> Any:
    """Import and return ``matplotlib.figure``.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    try:
        import matplotlib.figure
    except ImportError as e:
        raise MissingDependencyError(
            f"plotting needs matplotlib, which is not installed; install it with: {PLOT_HINT}"
        ) from e
    return matplotlib.figure


def synthetic_loss(step: int, num_training_steps: int) -> float:
    """A deterministic loss that falls during the first half of training, then plateaus.

    ``0.1 + 0.9 * (1 - min(1, 2 * step / num_training_steps)) ** 2``: it reaches 0.1
    at half the steps and stays there, so plateau detectors react in the second half.
    """
    progress = min(1.0, 2.0 * step / max(1, num_training_steps))
    return 0.1 + 0.9 * (1.0 - progress) ** 2


def lr_curve(
    name: str,
    *,
    lr: float,
    num_warmup_steps: int | None,
    num_training_steps: int,
    kwargs: Mapping[str, Any] | None = None,
) -> LrCurve:
    """Simulate ``num_training_steps`` steps of the scheduler ``name``.

    A one-parameter SGD optimizer with learning rate ``lr`` is scheduled; the
    recorded value for a step is the learning rate the optimizer uses at it.
    Metric-driven schedulers receive `synthetic_loss()` as their metric.

    Raises:
        UnknownNameError: no scheduler has that name.
        ValueError: a missing or invalid step count or schedule argument.
        TypeError: a keyword the schedule does not accept.
    """
    pure = _pure_curve(name, lr, num_warmup_steps, num_training_steps, kwargs)
    if pure is not None:  # a schedule's declared pure form: no optimizer needed
        return pure

    import torch

    from optreg._build.api import get_scheduler

    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=lr)
    scheduler = get_scheduler(
        name,
        optimizer,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        **dict(kwargs or {}),
    )
    metric = step_needs_metric(scheduler)
    given = tuple(sorted((k, _short(v)) for k, v in (kwargs or {}).items()))
    lambdas = getattr(scheduler, "lr_lambdas", None)
    starts = getattr(lambdas[0], "keywords", {}).get("starts", ()) if lambdas else ()
    boundaries = tuple(int(s) for s in starts[1:])
    if num_training_steps > MAX_POINTS and lambdas and not metric:
        # a LambdaLR's lr at step s is base_lr * f(s): exact without stepping through
        w = num_warmup_steps or 0
        steps = sample_steps(num_training_steps, MAX_POINTS, keep=(w - 1, w, w + 1))
        f, base = lambdas[0], scheduler.base_lrs[0]
        steps = tuple(sorted(set(steps) | {b for b in boundaries if b < num_training_steps}))
        lrs = tuple(float(base * f(s)) for s in steps)
        return LrCurve(
            name=name,
            lrs=lrs,
            metric_driven=False,
            kwargs=given,
            steps=steps,
            boundaries=boundaries,
        )
    if num_training_steps > MAX_STEPPED:
        raise ValueError(
            f"{name} is stepped one step at a time (it is "
            f"{'metric-driven' if metric else 'not a LambdaLR'}); plotting "
            f"{num_training_steps:,} steps would take minutes: at most {MAX_STEPPED:,}"
        )
    values: list[float] = []
    for step in range(num_training_steps):
        values.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.step()
        step_scheduler(scheduler, synthetic_loss(step, num_training_steps), metric_driven=metric)
    return LrCurve(
        name=name, lrs=tuple(values), metric_driven=metric, kwargs=given, boundaries=boundaries
    )


def _pure_curve(
    name: str,
    lr: float,
    num_warmup_steps: int | None,
    num_training_steps: int,
    kwargs: Mapping[str, Any] | None,
) -> LrCurve | None:
    """The curve from the schedule's pure form (``FactoryContract.multiplier``, every
    builtin LambdaLR schedule): ``lr * f(step)``, what its ``LambdaLR`` writes, with no
    optimizer built; None for a schedule without one.

    Raises:
        ValueError, TypeError: the schedule's arguments, as get_scheduler checks them.
    """
    from optreg._core import validate
    from optreg._core.loading import contract
    from optreg._core.registry import schedulers

    entry = schedulers.resolve(name)
    factory = schedulers.load(entry)
    pure = contract(entry).multiplier
    if pure is None:
        return None
    label = f"scheduler {entry.name!r}"
    call = validate.schedule_arguments(
        entry.name, label, factory, num_warmup_steps, num_training_steps, dict(kwargs or {})
    )
    call.pop("last_epoch", None)
    if takes(pure, "base_lr") == "named":
        call["base_lr"] = lr
    f = pure(**call)
    given = tuple(sorted((k, _short(v)) for k, v in (kwargs or {}).items()))
    steps: tuple[int, ...] = ()
    if num_training_steps > MAX_POINTS:
        w = num_warmup_steps or 0
        steps = sample_steps(num_training_steps, MAX_POINTS, keep=(w - 1, w, w + 1))
    xs = steps or range(num_training_steps)
    lrs = tuple(float(lr * f(s)) for s in xs)
    return LrCurve(name=name, lrs=lrs, metric_driven=False, kwargs=given, steps=steps)


def _short(value: Any) -> Any:
    """A legend-sized stand-in for a long argument (a sequence's phase list)."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
        return " > ".join(str(v.get("name", "?")) for v in value)
    return value


def sample_steps(n: int, points: int, keep: Sequence[int] = ()) -> tuple[int, ...]:
    """About ``points`` steps of ``0 .. n - 1``, evenly spread, first and last included,
    plus the steps in ``keep`` (the end of the warmup, say) that lie in range."""
    if n <= points:
        return tuple(range(n))
    spread = {round(i * (n - 1) / (points - 1)) for i in range(points)}
    return tuple(sorted(spread | {s for s in keep if 0 <= s < n}))


def _new_figure() -> Any:
    figure_mod = require_matplotlib()
    fig = figure_mod.Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    return fig, fig.add_subplot()


def _legend(fig: Any, ax: Any) -> None:
    # below the axes, so that no curve hides behind it
    n = len([line for line in ax.get_lines() if not line.get_label().startswith("_")])
    if n == 0:
        return
    fig.legend(loc="outside lower center", ncols=min(3, max(1, n)), fontsize="small", frameon=False)


def _style(index: int, n: int, count: int) -> dict[str, Any]:
    """Colour, line style and markers for curve ``index`` of ``count``: curves that
    coincide (adamw and adamw_hf, say) stay visible, their markers at other steps."""
    every = max(1, n // 8)
    return {
        "color": f"C{index % 10}",
        "linestyle": STYLES[index % len(STYLES)],
        "linewidth": 2.4 - 1.4 * index / max(1, count - 1),  # the first drawn widest
        "marker": MARKERS[index % len(MARKERS)],
        "markevery": (index * every // max(1, count), every),
        "markersize": 5,
    }


def formats() -> list[str]:
    """File formats matplotlib can write (``png``, ``svg``, ``pdf``...).

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    require_matplotlib()
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def _save(fig: Any, path: Path) -> None:
    fmt = path.suffix[1:].lower() or "png"
    # no "Software: matplotlib x.y" (or date) in the file: the same command, the same bytes
    metadata: dict[str, Any] = {
        "png": {"Software": None},
        "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
        "svg": {"Creator": None, "Date": None},
    }.get(fmt, {})
    fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata)


def save_lr_figure(
    curves: Sequence[LrCurve],
    path: Path,
    *,
    title: str,
    log_y: bool = False,
    ylabel: str = "learning rate",
) -> None:
    """Draw every curve on one labelled axis (``ylabel``) and save the figure to ``path``.

    Raises:
        MissingDependencyError: matplotlib is not installed.
        ValueError: matplotlib cannot write that file format.
        OSError: ``path`` cannot be written.
    """
    fig, ax = _new_figure()
    for index, curve in enumerate(curves):
        style = _style(index, len(curve.lrs), len(curves))
        ax.plot(curve.xs, curve.lrs, label=curve.label, **style)
        for boundary in curve.boundaries:  # where a sequence's next phase begins
            ax.axvline(boundary, color=style["color"], linestyle=":", linewidth=1.0, alpha=0.7)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    _legend(fig, ax)
    _save(fig, path)


def _ema(values: Sequence[float], alpha: float = 0.1) -> list[float]:
    out: list[float] = []
    acc: float | None = None
    for v in values:
        acc = v if acc is None else (1 - alpha) * acc + alpha * v
        out.append(acc)
    return out


def save_loss_figure(losses: Mapping[str, Sequence[float]], path: Path, *, title: str) -> None:
    """Draw training-loss curves (raw, faint, and smoothed) and save them to ``path``.

    Raises:
        MissingDependencyError: matplotlib is not installed.
        ValueError: matplotlib cannot write that file format.
        OSError: ``path`` cannot be written.
    """
    fig, ax = _new_figure()
    for index, (label, values) in enumerate(losses.items()):
        style = _style(index, len(values), len(losses))
        steps = range(1, len(values) + 1)
        ax.plot(steps, values, color=style["color"], alpha=0.15, linewidth=0.7)
        ax.plot(steps, _ema(values), label=label, **style)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (minibatch; line: EMA 0.1)")
    ax.set_yscale("log")
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    # labelled ticks at 1, 1.5, 2, 3, 5 and 7 times each power of ten: a loss between
    # 0.3 and 1.7 gets labels above 1 as well as below
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both")
    _legend(fig, ax)
    _save(fig, path)
