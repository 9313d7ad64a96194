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

from optreg._errors import MissingDependencyError
from optreg._signature import step_needs_metric, step_scheduler

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
PLOT_HINT = 'pip install "optreg[plot]"'


@dataclass(frozen=True)
class LrCurve:
    """The learning rate a schedule gives at each step.

    Attributes:
        name: the scheduler name as given.
        lrs: learning rate used at step ``0 .. num_training_steps - 1``.
        metric_driven: the scheduler's ``step()`` takes a metric; it was fed
            :func:`synthetic_loss`.
        kwargs: the schedule arguments passed, sorted by name.
    """

    name: str
    lrs: tuple[float, ...]
    metric_driven: bool
    kwargs: tuple[tuple[str, Any], ...] = ()

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
    Metric-driven schedulers receive :func:`synthetic_loss` as their metric.

    Raises:
        UnknownNameError: no scheduler has that name.
        ValueError: a missing or invalid step count or schedule argument.
        TypeError: a keyword the schedule does not accept.
    """
    import torch

    from optreg._api import get_scheduler

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
    lrs: list[float] = []
    for step in range(num_training_steps):
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.step()
        step_scheduler(scheduler, synthetic_loss(step, num_training_steps), metric_driven=metric)
    return LrCurve(
        name=name,
        lrs=tuple(lrs),
        metric_driven=metric,
        kwargs=tuple(sorted((kwargs or {}).items())),
    )


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


def _save(fig: Any, path: Path) -> None:
    fmt = path.suffix[1:].lower() or "png"
    fig.savefig(path, format=fmt, dpi=DPI)


def save_lr_figure(
    curves: Sequence[LrCurve], path: Path, *, title: str, log_y: bool = False
) -> None:
    """Draw every curve on one labelled axis and save the figure to ``path``.

    Raises:
        MissingDependencyError: matplotlib is not installed.
        ValueError: matplotlib cannot write that file format.
        OSError: ``path`` cannot be written.
    """
    fig, ax = _new_figure()
    for curve in curves:
        ax.plot(range(len(curve.lrs)), curve.lrs, label=curve.label, linewidth=1.8)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
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
        color = f"C{index % 10}"
        steps = range(1, len(values) + 1)
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(steps, _ema(values), color=color, label=label, linewidth=1.8)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (minibatch; line: EMA 0.1)")
    ax.set_yscale("log")
    from matplotlib.ticker import FormatStrFormatter

    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both")
    _legend(fig, ax)
    _save(fig, path)
