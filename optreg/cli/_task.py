"""The small deterministic training task behind ``optreg compare``.

A teacher-student classification problem: a random two-layer ``tanh`` teacher
labels Gaussian inputs with the argmax of its logits; a two-layer ReLU MLP
student learns it with cross-entropy. Data, student initialisation and the
minibatch order all derive from one seed, and every optimizer starts from the
same student weights and sees the same batches, so a run is repeatable and
runs are comparable.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from optreg._build.spec import OptimizerSpec, ScheduleSpec, Spec
from optreg._core.signature import needs_closure, step_needs_metric, step_scheduler
from optreg._core.table import text_table

__all__ = [
    "RunResult",
    "Task",
    "format_table",
    "make_student",
    "make_task",
    "state_bytes",
    "train",
]


@dataclass(frozen=True)
class Task:
    """Train/test tensors of the teacher-student problem, and the fixed batch order."""

    seed: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    in_features: int
    hidden: int
    classes: int
    batch_size: int

    def describe(self) -> str:
        """One line saying what is trained."""
        return (
            f"task: {self.in_features}-{self.hidden}-{self.classes} ReLU MLP student, "
            f"random tanh teacher, {len(self.x_train)} train / {len(self.x_test)} test "
            f"samples, batch {self.batch_size}, seed {self.seed}"
        )

    def iter_batches(self, steps: int, chunk: int = 1024) -> Iterator[torch.Tensor]:
        """Row indices of each step's minibatch, drawn ``chunk`` steps at a time (a long
        run never holds all of them)."""
        gen = torch.Generator().manual_seed(self.seed + 2)
        done = 0
        while done < steps:
            n = min(chunk, steps - done)
            yield from torch.randint(len(self.x_train), (n, self.batch_size), generator=gen)
            done += n

    def batches(self, steps: int) -> torch.Tensor:
        """Row indices of the minibatch of each step, shape ``(steps, batch_size)``."""
        rows = list(self.iter_batches(steps))
        return torch.stack(rows) if rows else torch.empty(0, self.batch_size, dtype=torch.long)


def make_task(
    seed: int,
    *,
    in_features: int = 32,
    hidden: int = 128,
    classes: int = 5,
    teacher_hidden: int = 32,
    n_train: int = 4096,
    n_test: int = 1024,
    batch_size: int = 64,
) -> Task:
    """Generate the problem from ``seed`` (independent of torch's global RNG).

    The first student layer has 32 x 128 = 4096 weights: as large as bitsandbytes'
    ``min_8bit_size``, so 8-bit optimizers keep 8-bit state for it.
    """
    gen = torch.Generator().manual_seed(seed)
    w1 = torch.randn(in_features, teacher_hidden, generator=gen) / math.sqrt(in_features)
    w2 = torch.randn(teacher_hidden, classes, generator=gen) / math.sqrt(teacher_hidden)
    x = torch.randn(n_train + n_test, in_features, generator=gen)
    y = (torch.tanh(x @ w1 * 2.0) @ w2).argmax(dim=1)
    return Task(
        seed=seed,
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:],
        y_test=y[n_train:],
        in_features=in_features,
        hidden=hidden,
        classes=classes,
        batch_size=batch_size,
    )


def make_student(task: Task) -> nn.Module:
    """The student MLP, initialised from the task's seed (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(task.seed + 1)
        return nn.Sequential(
            nn.Linear(task.in_features, task.hidden),
            nn.ReLU(),
            nn.Linear(task.hidden, task.classes),
        )


def state_bytes(optimizer: Any) -> int:
    """Bytes held by the tensors in ``optimizer.state`` (each tensor counted once)."""
    seen: set[tuple[int, int, int]] = set()
    total = 0

    def visit(value: Any) -> None:
        nonlocal total
        if isinstance(value, torch.Tensor):
            nbytes = value.numel() * value.element_size()
            key = (value.data_ptr(), nbytes, id(value) if value.data_ptr() == 0 else 0)
            if key not in seen:
                seen.add(key)
                total += nbytes
        elif isinstance(value, Mapping):
            for v in value.values():
                visit(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)

    for per_param in optimizer.state.values():
        visit(per_param)
    return total


@dataclass
class RunResult:
    """One optimizer's run: what the table and the plot show.

    ``final_loss`` is the cross-entropy on the whole training set after the last
    step, ``accuracy`` the fraction of test samples classified right.
    """

    optimizer: str
    losses: list[float] = field(default_factory=list)
    final_loss: float = math.nan
    accuracy: float = math.nan
    seconds_per_step: float = math.nan
    state_bytes: int = 0
    error: str | None = None


def build(
    name: str,
    model: nn.Module,
    *,
    lr: float | None,
    scheduler: str | None,
    num_warmup_steps: int,
    num_training_steps: int,
    scheduler_kwargs: Mapping[str, Any] | None = None,
    optimizer_kwargs: Mapping[str, Any] | None = None,
) -> tuple[Any, Any]:
    """Build the optimizer ``name`` for ``model`` and the optional scheduler.

    Raises:
        UnknownNameError: an unknown optimizer or scheduler name.
        MissingDependencyError: the optimizer needs an extra that is not installed.
        ValueError: an invalid learning rate, step count or schedule argument.
        TypeError: a keyword the optimizer or schedule does not accept.
    """
    kwargs: dict[str, Any] = {} if lr is None else {"lr": lr}
    kwargs.update(optimizer_kwargs or {})
    schedule = None
    if scheduler is not None:
        schedule = ScheduleSpec(
            scheduler, num_warmup_steps, num_training_steps, dict(scheduler_kwargs or {})
        )
    return Spec(OptimizerSpec.from_section({"name": name, **kwargs}), schedule).build(model)


def train(
    name: str,
    task: Task,
    *,
    steps: int,
    lr: float | None = None,
    scheduler: str | None = None,
    num_warmup_steps: int = 0,
    scheduler_kwargs: Mapping[str, Any] | None = None,
    optimizer_kwargs: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> RunResult:
    """Train a fresh student with optimizer ``name`` for ``steps`` steps.

    Args:
        name: optimizer name.
        task: the problem (see `make_task()`).
        steps: number of optimizer steps.
        lr: learning rate; ``None`` keeps the optimizer's default.
        scheduler: optional scheduler name; a metric-driven one is stepped with
            the step's training loss.
        num_warmup_steps: passed to schedules that take it.
        scheduler_kwargs: schedule-specific arguments.
        optimizer_kwargs: optimizer arguments (``lr`` is set by ``lr`` when given).
        progress: show a tqdm bar on stderr; ``None``: only on a terminal.

    Raises:
        UnknownNameError, MissingDependencyError, ValueError, TypeError: see `build()`.
    """
    model = make_student(task)
    optimizer, sched = build(
        name,
        model,
        lr=lr,
        scheduler=scheduler,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=steps,
        scheduler_kwargs=scheduler_kwargs,
        optimizer_kwargs=optimizer_kwargs,
    )
    metric = sched is not None and step_needs_metric(sched)
    with_closure = needs_closure(optimizer)
    loss_fn = nn.CrossEntropyLoss()
    result = RunResult(optimizer=name)
    bar = _progress_bar(name, steps, progress)
    start = time.perf_counter()
    for step, rows in enumerate(task.iter_batches(steps)):
        xb = task.x_train[rows]
        yb = task.y_train[rows]

        def closure(xb: torch.Tensor = xb, yb: torch.Tensor = yb) -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            loss: torch.Tensor = loss_fn(model(xb), yb)
            loss.backward()  # type: ignore[no-untyped-call]
            return loss

        if with_closure:
            loss = optimizer.step(closure)
        else:
            loss = closure()
            optimizer.step()
        value = float(loss.detach())
        result.losses.append(value)
        if sched is not None:
            step_scheduler(sched, value, metric_driven=metric)
        if bar is not None:
            bar.update(1)
            if step % 10 == 0 or step == steps - 1:
                bar.set_postfix(loss=f"{value:.4f}", refresh=False)
    result.seconds_per_step = (time.perf_counter() - start) / steps
    if bar is not None:
        bar.close()
    with torch.no_grad():
        result.final_loss = float(loss_fn(model(task.x_train), task.y_train))
        predicted = model(task.x_test).argmax(dim=1)
        result.accuracy = float((predicted == task.y_test).float().mean())
    result.state_bytes = state_bytes(optimizer)
    return result


def _progress_bar(name: str, steps: int, progress: bool | None) -> Any:
    if progress is False:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    disable = None if progress is None else False  # None: only on a terminal
    return tqdm(total=steps, desc=name, unit="step", file=sys.stderr, disable=disable, leave=True)


def _fmt_loss(x: float) -> str:
    return f"{x:.4f}" if abs(x) < 1e4 else f"{x:.3e}"


def _fmt_bytes(n: int) -> str:
    return f"{n:,}"


def format_table(results: Sequence[RunResult]) -> str:
    """An aligned text table: one row per run; a failed run shows its error."""
    header = ("optimizer", "final loss", "accuracy", "ms/step", "state bytes")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for r in results:
        if r.error is not None:
            rows.append((r.optimizer, "failed", "-", "-", "-"))
            notes.append(f"{r.optimizer}: {r.error}")
            continue
        rows.append(
            (
                r.optimizer,
                _fmt_loss(r.final_loss),
                f"{100 * r.accuracy:.2f}%",
                f"{1000 * r.seconds_per_step:.3f}",
                _fmt_bytes(r.state_bytes),
            )
        )
    lines = [text_table(header, rows, right=range(1, len(header)))]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)
