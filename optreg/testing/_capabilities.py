"""Measured capabilities: what each optimizer name does under ``torch.compile`` and in bf16.

Each check runs on the kit's fixed problem and gives a `Verdict` (pass, fail with
the message, or n/a with the reason):

* ``compile``: the step under ``torch.compile`` (TorchDynamo's graph capture, with a
  counting backend that runs the captured graphs: it measures capture and recompiles, not
  a code generator) runs; after `COMPILE_STEPS` steps the parameters equal eager's
  within ``rtol=1e-5, atol=1e-6``; with the builtin ``cosine`` schedule changing the lr
  every step for `SCHEDULED_STEPS` steps, nothing recompiles after the first step
  (the lr is a 0-dim tensor where the name takes one, so the schedule fills it in place).
* ``bf16``: bfloat16 parameters step `BF16_STEPS` times with no error or NaN, the
  loss falls, and the dtypes of the state are recorded ("state bfloat16" or "float32").

`measure_capabilities()` measures one name; `capability_table()` every builtin;
``python -m optreg.testing --capabilities`` writes the builtins' table into the package
(`optreg.builtin.capabilities` reads it for ``optreg info`` and ``optreg list
--supports``), and a test re-measures it and fails when it is stale.
"""

from __future__ import annotations

import contextlib
import math
import platform
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from optreg._core.errors import UnknownNameError
from optreg.builtin.capabilities import CAPABILITIES, Verdict
from optreg.testing._common import Problem, draws, max_diff, plan, provided, raised, seeded

if TYPE_CHECKING:
    from optreg._core.entry import Entry

__all__ = [
    "LOCAL",
    "capability_table",
    "measure_capabilities",
    "measure_local",
    "stale_rows",
]

#: The capabilities measured in this process.
LOCAL = ("compile", "bf16")
RUNTIME = "registered at runtime: worker processes cannot see it (pass setup=)"

COMPILE_STEPS = 10
SCHEDULED_STEPS = 30
BF16_STEPS = 10
RTOL, ATOL = 1e-5, 1e-6


@contextlib.contextmanager
def _quiet_dynamo() -> Iterator[None]:
    """Dynamo's graph-break warnings go to its logger; a verdict carries what matters."""
    import logging

    import torch

    torch._dynamo.reset()
    logger = logging.getLogger("torch._dynamo")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
        torch._dynamo.reset()


def _build(
    factory: Any, params: list[Any], kwargs: dict[str, Any], tensor_lr: bool
) -> tuple[Any, bool]:
    """The optimizer, with a 0-dim tensor lr where the factory takes one."""
    import torch

    from optreg._core.signature import default, takes

    lr = kwargs.get("lr", default(factory, "lr"))
    if tensor_lr and takes(factory, "lr") == "named" and isinstance(lr, (int, float)):
        try:
            with seeded():
                return factory(params, **{**kwargs, "lr": torch.tensor(float(lr))}), True
        except (TypeError, ValueError):
            pass
    with seeded():
        return factory(params, **kwargs), False


def _train(
    problem: Problem, units: list[list[Any]], opt: Any, step: Any, steps: int
) -> list[float]:
    """``steps`` steps, each with the same random numbers from one run to the next (an
    optimizer that draws them, as Kron does, compares with itself)."""
    losses = []
    for i in range(steps):
        opt.zero_grad()
        loss = problem.loss(units)
        loss.backward()  # type: ignore[no-untyped-call]
        with draws(1000 + i):
            step()
        losses.append(float(loss.detach()))
    return losses


#: Graph breaks torch makes around every optimizer's step, not counted as the step's own:
#: torch.optim breaks on purpose around its body, and an LR scheduler's wrapper of
#: ``step`` (in a file dynamo never traces) breaks before it.
TORCH_BREAKS = ("Call to `torch._dynamo.graph_break()`", "lr_scheduler.py")


def _compile(factory: Any, kwargs: dict[str, Any], matrices: bool, device: str) -> Verdict:
    import torch
    from torch._dynamo.testing import CompileCounter

    problem = Problem(sparse=False, matrices=matrices, device=device)
    eager_units, compiled_units = [problem.unit()], [problem.unit()]
    with _quiet_dynamo():
        try:
            eager, _ = _build(factory, [p for u in eager_units for p in u], kwargs, False)
            compiled, _ = _build(factory, [p for u in compiled_units for p in u], kwargs, False)
            counter = CompileCounter()
            _train(problem, eager_units, eager, eager.step, COMPILE_STEPS)
            _train(
                problem,
                compiled_units,
                compiled,
                torch.compile(compiled.step, backend=counter),
                COMPILE_STEPS,
            )
        except Exception as e:
            return Verdict("fail", f"the step under torch.compile raised {raised(e)}")
        diff = max(
            max_diff(a.detach(), b.detach())
            for a, b in zip(
                [p for u in eager_units for p in u],
                [p for u in compiled_units for p in u],
                strict=True,
            )
        )
        if not all(
            torch.allclose(a, b, rtol=RTOL, atol=ATOL)
            for ue, uc in zip(eager_units, compiled_units, strict=True)
            for a, b in zip(ue, uc, strict=True)
        ):
            return Verdict(
                "fail",
                f"after {COMPILE_STEPS} steps the parameters differ from eager by {diff:.3g}",
            )
    with _quiet_dynamo():
        from optreg._build.api import get_scheduler

        units = [problem.unit()]
        try:
            opt, tensor_lr = _build(factory, [p for u in units for p in u], kwargs, True)
            lr = "tensor lr" if tensor_lr else "float lr: the name takes no tensor lr"
            try:
                schedule: Any = get_scheduler(
                    "cosine", opt, num_warmup_steps=3, num_training_steps=SCHEDULED_STEPS
                )
            except ValueError as e:  # Adafactor's relative step: its own lr
                message = raised(e).partition(": ")[2]
                schedule, lr = None, f"no schedule: {message}"
            from torch._dynamo.utils import counters

            counter = CompileCounter()
            step = torch.compile(opt.step, backend=counter)
            first = breaks = 0
            counters["graph_break"].clear()
            for i in range(SCHEDULED_STEPS):
                _train(problem, units, opt, step, 1)
                if schedule is not None:
                    schedule.step()
                if i == 0:
                    first = counter.frame_count
                    breaks = sum(
                        n
                        for reason, n in counters["graph_break"].items()
                        if not any(marker in reason for marker in TORCH_BREAKS)
                    )
        except Exception as e:
            return Verdict("fail", f"a scheduled compiled step raised {raised(e)}")
        recompiles = counter.frame_count - first
        if recompiles:
            return Verdict(
                "fail",
                f"{recompiles} recompile{'s' if recompiles != 1 else ''} in {SCHEDULED_STEPS} steps of a schedule changing the lr ({lr})",
            )
        graphs = (
            f"{first} graph{'s' if first != 1 else ''}"
            if first
            else "no graph captured (runs eagerly)"
        )
        if first:  # fullgraph=True would refuse a step with a break
            graphs += (
                f", {breaks} graph break{'s' if breaks != 1 else ''} in the step"
                if breaks
                else ", no graph break in the step"
            )
        return Verdict(
            "pass", f"{graphs}, 0 recompiles in {SCHEDULED_STEPS} scheduled steps ({lr})"
        )


def _bf16(factory: Any, kwargs: dict[str, Any], matrices: bool, device: str) -> Verdict:
    import torch

    problem = Problem(sparse=False, matrices=matrices, device=device)
    problem.x, problem.y = problem.x.bfloat16(), problem.y.bfloat16()
    units = [[t.detach().bfloat16().requires_grad_(True) for t in problem.unit()]]
    params = [p for u in units for p in u]
    try:
        opt, _ = _build(factory, params, kwargs, False)
        losses = _train(problem, units, opt, opt.step, BF16_STEPS)
    except Exception as e:
        return Verdict("fail", f"bf16 parameters: {raised(e)}")
    if not all(torch.isfinite(p).all() for p in params) or not all(map(math.isfinite, losses)):
        return Verdict("fail", "bf16 parameters: NaN or inf after the steps")
    if params[0].dtype != torch.bfloat16:
        return Verdict("fail", f"bf16 parameters became {params[0].dtype}")
    if not losses[-1] < losses[0]:
        return Verdict(
            "fail", f"bf16 parameters: the loss did not fall ({losses[0]:.4g} -> {losses[-1]:.4g})"
        )
    dtypes = sorted(
        {
            str(v.dtype).removeprefix("torch.")
            for state in opt.state.values()
            if isinstance(state, Mapping)  # not a counter or tensor kept beside them
            for v in state.values()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and v.dim() > 0
        }
    )
    return Verdict("pass", f"state {', '.join(dtypes)}" if dtypes else "no per-parameter state")


def measure_local(name: str | Entry, device: str = "cpu") -> dict[str, Verdict]:
    """``compile`` and ``bf16`` of one optimizer name with the problem on ``device``
    (``"cuda"``: the kit's same checks on a GPU).

    Raises:
        UnknownNameError: no optimizer has that name.
    """
    try:
        why, factory, kwargs, matrices = plan(name)
    except UnknownNameError:
        raise  # the caller's mistake, not the plugin's
    except Exception as e:  # a plugin whose metadata or target is broken
        return {c: Verdict("fail", f"loading it raised {raised(e)}") for c in LOCAL}
    if why:
        return {c: Verdict("n/a", why) for c in LOCAL}
    out = {}
    for cap, check in (("compile", _compile), ("bf16", _bf16)):
        try:
            out[cap] = check(factory, kwargs, matrices, device)
        except Exception as e:  # what a check's own comparisons meet (a sparse result, ...)
            out[cap] = Verdict("fail", f"checking it raised {raised(e)}")
    return out


def _measure(entries: list[Entry], setup: str | None = None) -> dict[str, dict[str, Verdict]]:
    """Every capability of each entry, by reachable name; the distributed ones from one
    launch of worker processes (which see a runtime name only through ``setup``)."""
    from optreg.testing._common import reachable_name
    from optreg.testing._distributed import DISTRIBUTED, measure_distributed

    out = {reachable_name(e): measure_local(e) for e in entries}
    # a name the kit cannot step is n/a everywhere for the same reason (no workers for it)
    why = {n: v["compile"].detail for n, v in out.items() if v["compile"].status == "n/a"}
    seen = [
        n
        for e, n in zip(entries, out, strict=True)
        if n not in why and (e.source != "runtime" or setup is not None)
    ]
    distributed = measure_distributed(seen, setup=setup)
    for name, verdicts in out.items():
        reason = why.get(name, RUNTIME)
        verdicts.update(distributed.get(name, {c: Verdict("n/a", reason) for c in DISTRIBUTED}))
    return out


def measure_capabilities(name: str | Entry, *, setup: str | None = None) -> dict[str, Verdict]:
    """Measure every capability of one optimizer name (see the module); ``ddp`` and
    ``fsdp2`` in worker processes, which import ``setup`` first (``"module:function"``
    registering a runtime name; without it a runtime name's are n/a).

    Raises:
        UnknownNameError: no optimizer has that name.
    """
    from optreg._core.registry import optimizers

    entry = name if not isinstance(name, str) else optimizers.resolve(name)
    return next(iter(_measure([entry], setup).values()))


def capability_table(providers: list[str] | None = None) -> dict[str, Any]:
    """The capabilities of every optimizer of ``providers`` (distribution names; default
    the builtins), with the torch version and machine.

    Raises:
        ValueError: a provider that provides no installed optimizer.
    """
    import torch

    from optreg._core.entry import BUILTIN_DIST

    entries = sorted(
        provided(providers or [BUILTIN_DIST], ("optimizer",), "optimizer"), key=lambda e: e.name
    )
    measured = _measure(entries)
    return {
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "optimizers": {
            e.name: {c: [v.status, v.detail] for c, v in measured[key].items()}
            for e, key in zip(entries, measured, strict=True)
        },
    }


def stale_rows(stored: dict[str, Any], measured: dict[str, Any]) -> list[str]:
    """Where a stored table's statuses differ from a fresh measurement (details hold
    figures and messages that may vary; a status may not): ``name.capability: stored ->
    measured``, and names one holds and the other lacks."""
    old, new = stored.get("optimizers", {}), measured["optimizers"]
    out = [f"{n}: not in the stored table" for n in sorted(set(new) - set(old))]
    out += [f"{n}: no longer a builtin" for n in sorted(set(old) - set(new))]
    for name in sorted(set(old) & set(new)):
        for cap in CAPABILITIES:
            was, now = old[name].get(cap, ["?"])[0], new[name][cap][0]
            if was != now:
                out.append(f"{name}.{cap}: {was} -> {now} ({new[name][cap][1]})")
    return out
