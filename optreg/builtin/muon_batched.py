"""torch's Muon step with same-shape matrices orthogonalised in one batched call.

Newton-Schulz is most of a Muon step, and for many small matrices most of that is the
per-matrix overhead of each small matmul (a kernel launch on a GPU). `BatchedMuon`
is ``torch.optim.Muon`` whose step stacks the momentum-updated gradients of a param
group's matrices that share a shape, device and dtype, and runs the same quintic
iteration on the stack (``baddbmm`` for ``addmm``); everything else is torch's step,
operation for operation, and its state (``momentum_buffer``), param groups and
checkpoints are torch's.

``batch`` chooses, by a static rule (as torch chooses its foreach and fused kernels):

* ``"auto"``: batched on CUDA; on the CPU batched for stacks of at least two matrices of
  at most `BATCHED_UP_TO` values each, outside ``torch.compile``; looped otherwise.
  The range is where ``benchmarks/bench_muon.py`` measures batching faster on the CPU
  (it prints the rule beside its figures); above it a matrix's own matmuls dwarf the
  per-call overhead batching removes. The same choice in every run and on every rank.
* ``True``: batched everywhere; ``False``: torch's loop.
* ``"measure"``: on the CPU, each stack in the ``"auto"`` range is timed once both ways
  on its first step (which keeps the loop's numbers) and batched from then on only where
  the batched results equal the looped ones bit for bit and took at most
  `BATCH_PAYS` of the loop's time. The choices live on the optimizer
  (`BatchedMuon.measured`, shown in its ``repr``), never in a checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from optreg.builtin.muon_dist import (
    Distribution,
    Plan,
    check_plans,
    ns_cost,
    orthogonalise,
    plan_for,
)

__all__ = ["BatchedMuon", "newton_schulz_batched"]

Batch = bool | Literal["auto", "measure"]

#: the most values of one matrix for which ``batch="auto"`` batches a stack on the CPU
#: (and ``"measure"`` measures it): above it a matrix's own matmuls dwarf the per-call
#: overhead batching removes (``benchmarks/bench_muon.py``).
BATCHED_UP_TO = 128 * 512
#: ``batch="measure"``: the largest share of the loop's time at which batching is chosen.
BATCH_PAYS = 0.9


def newton_schulz_batched(
    grads: Tensor, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
) -> Tensor:
    """The orthogonalisation of ``torch.optim.Muon`` on a stack of same-shape matrices.

    Args:
        grads: ``(n, rows, cols)``.
        ns_coefficients, ns_steps, eps: Muon's.

    Returns:
        ``(n, rows, cols)`` in bfloat16: each matrix as torch's per-matrix iteration
        computes it (in bf16, the tall ones transposed, each scaled by its own norm).
    """
    a, b, c = ns_coefficients
    ortho = grads.bfloat16()
    tall = grads.size(-2) > grads.size(-1)
    if tall:
        ortho = ortho.mT
    ortho = ortho / ortho.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    for _ in range(ns_steps):
        gram = ortho @ ortho.mT
        gram_update = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        ortho = torch.baddbmm(ortho, gram_update, ortho, beta=a)
    return ortho.mT if tall else ortho


def _one(
    grad: Tensor, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
) -> Tensor:
    """One matrix: torch's own iteration (its private function where this torch has it,
    so the looped path is torch's step exactly), else the batched one on a stack of one."""
    try:
        from torch.optim._muon import _zeropower_via_newtonschulz
    except ImportError:  # pragma: no cover - a torch that moved it
        return newton_schulz_batched(grad[None], ns_coefficients, ns_steps, eps)[0]
    result: Tensor = _zeropower_via_newtonschulz(grad, ns_coefficients, ns_steps, eps)
    return result


def _looped(
    stack: Tensor, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
) -> list[Tensor]:
    """Each matrix of the stack by torch's own iteration, one after another."""
    return [_one(m, ns_coefficients, ns_steps, eps) for m in stack.unbind(0)]


def _measure(
    stack: Tensor, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
) -> tuple[list[Tensor], bool]:
    """``batch="measure"``: the stack's orthogonalisations, looped (torch's numbers), and
    whether to batch this kind of stack from now on: only where batched equals looped
    bit for bit and is faster."""

    def looped() -> list[Tensor]:
        return _looped(stack, ns_coefficients, ns_steps, eps)

    def batched() -> Tensor:
        return newton_schulz_batched(stack, ns_coefficients, ns_steps, eps)

    result = looped()
    same = all(map(torch.equal, result, batched().unbind(0)))  # also the warm-up
    pays = False
    if same:
        times: dict[Callable[[], Any], list[float]] = {looped: [], batched: []}
        for _ in range(3):  # interleaved; the fastest of three runs each
            for run, took in times.items():
                start = time.perf_counter()
                run()
                took.append(time.perf_counter() - start)
        pays = min(times[batched]) <= BATCH_PAYS * min(times[looped])
    return result, pays


def _measured_key(
    stack: Tensor, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
) -> tuple[Any, ...]:
    return (
        tuple(stack.shape),
        str(stack.dtype).removeprefix("torch."),
        torch.get_num_threads(),
        tuple(ns_coefficients),
        ns_steps,
        eps,
    )


def _scalar(lr: float | Tensor) -> float | Tensor:
    """A tensor lr stays a 0-dim tensor, as torch's Muon keeps it: a schedule filling it
    in place changes no Python value, so a compiled step does not recompile."""
    return lr.squeeze() if isinstance(lr, Tensor) and lr.dim() != 0 else lr


def _adjusted_lr(lr: Any, adjust_lr_fn: str | None, shape: torch.Size) -> Any:
    """torch's Muon learning-rate adjustment for a ``shape`` matrix."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


# torch < 2.9 has no Muon: the module still imports (the kit walks every module), and
# the names that build this class declare torch>=2.9, so the registry refuses them there.
_Muon: Any = getattr(torch.optim, "Muon", torch.optim.Optimizer)


class BatchedMuon(_Muon):  # type: ignore[misc]
    """``torch.optim.Muon`` whose Newton-Schulz runs batched per shape (see the module).

    Args:
        params: as ``torch.optim.Muon``.
        batch: ``"auto"`` (a static rule: CUDA batched; on the CPU stacks of small
            matrices), True, False or ``"measure"`` (see the module).
        distributed: orthogonalise each matrix once across the process group
            (`optreg.builtin.muon_dist`): ``"auto"`` under FSDP2 (row-sharded
            DTensors) only; True also for plain tensors, stated replicated on every
            rank (DDP), which the first step verifies; False never.
        **kwargs: ``torch.optim.Muon``'s hyperparameters.

    Attributes:
        work: what the last step did on this rank: ``matrices`` and ``cost``
            (Newton-Schulz) orthogonalised here, ``bytes_sent`` and ``collectives``.
        plans_built: how many times the distributed plans were built (once, and again
            after ``add_param_group`` or ``load_state_dict``).
        measured: ``batch="measure"``'s choices: (shape, dtype, threads, Newton-Schulz
            settings) -> batched.

    Raises:
        ValueError: ``batch`` of another value, and what ``torch.optim.Muon`` raises.
        RuntimeError: torch has no ``torch.optim.Muon`` (before 2.9).
    """

    def __init__(
        self,
        params: Any,
        *,
        batch: Batch = "auto",
        distributed: Distribution = "auto",
        **kwargs: Any,
    ) -> None:
        if _Muon is torch.optim.Optimizer:
            raise RuntimeError(
                f"BatchedMuon needs torch.optim.Muon (torch>=2.9), torch {torch.__version__} has none"
            )
        if batch not in (True, False, "auto", "measure"):
            raise ValueError(f"`batch` must be True, False, 'auto' or 'measure', got {batch!r}")
        plan_for([], distributed)  # checks the value
        super().__init__(params, **kwargs)
        self.batch: Batch = batch
        self.distributed: Distribution = distributed
        self.work: dict[str, int] = {}
        self.plans_built = 0
        self.measured: dict[tuple[Any, ...], bool] = {}

    def __repr__(self) -> str:
        """torch's, with the batching rule (and what ``"measure"`` chose)."""
        choice = f"batch={self.__dict__.get('batch', 'auto')!r}"
        measured = self.__dict__.get("measured")
        if measured:
            choice += ", measured: " + ", ".join(
                f"{'x'.join(map(str, key[0]))}: {'batched' if pays else 'looped'}"
                for key, pays in measured.items()
            )
        text: str = super().__repr__()
        return text.replace(" (", f" ({choice}; ", 1) if " (" in text else f"{text} ({choice})"

    def __getstate__(self) -> dict[str, Any]:
        """torch's state, and the batching choices (copies and pickles keep them); the
        distributed plans are built again in the process that steps."""
        state: dict[str, Any] = super().__getstate__()
        for key, default in (("batch", "auto"), ("distributed", "auto"), ("measured", {})):
            state[key] = self.__dict__.get(key, default)
        state.pop("_plan_cache", None)
        return state

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's; the distributed plans are built again at the next step."""
        super().add_param_group(param_group)
        self.__dict__.pop("_plan_cache", None)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's; the distributed plans are built again at the next step."""
        super().load_state_dict(state_dict)
        self.__dict__.pop("_plan_cache", None)

    def _plans(self) -> list[Plan | None]:
        """Each group's distributed plan (None: one process's path), built and checked
        across the ranks the first time these groups are stepped, then reused."""
        mode = self.__dict__.get("distributed", "auto")
        key = (mode, tuple(tuple(map(id, g["params"])) for g in self.param_groups))
        cached = self.__dict__.get("_plan_cache")
        if cached is not None and cached[0] == key:
            plans: list[Plan | None] = cached[1]
            return plans
        plans = [plan_for(g["params"], mode) for g in self.param_groups]
        check_plans(plans)  # one collective, only where a plan is distributed
        self.__dict__["_plan_cache"] = (key, plans)
        self.plans_built = self.__dict__.get("plans_built", 0) + 1
        return plans

    def _batches(self, device: torch.device, shape: tuple[int, ...] | None = None) -> bool:
        """Whether stacks of ``shape`` matrices on ``device`` run batched (the rule)."""
        batch = self.__dict__.get("batch", "auto")  # a copy restored by torch has none
        if batch in (True, False):
            return bool(batch)
        if device.type == "cuda":
            return True
        return (
            device.type == "cpu"
            and shape is not None
            and math.prod(shape) <= BATCHED_UP_TO
            and not torch.compiler.is_compiling()
        )

    def _stack(
        self, stack: Tensor, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
    ) -> list[Tensor]:
        """A stack of same-shape matrices orthogonalised batched (``"measure"`` on the
        CPU: looped until measured, and where batching did not pay)."""
        if self.__dict__.get("batch") == "measure" and stack.device.type == "cpu":
            measured = self.__dict__.setdefault("measured", {})
            key = _measured_key(stack, ns_coefficients, ns_steps, eps)
            if key not in measured:
                result, measured[key] = _measure(stack, ns_coefficients, ns_steps, eps)
                return result
            if not measured[key]:
                return _looped(stack, ns_coefficients, ns_steps, eps)
        return list(newton_schulz_batched(stack, ns_coefficients, ns_steps, eps).unbind(0))

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One Muon step (torch's), same-shape matrices orthogonalised together."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.work = {"matrices": 0, "cost": 0, "bytes_sent": 0, "collectives": 0}
        for group, plan in zip(self.param_groups, self._plans(), strict=True):
            params: list[Tensor] = []
            grads: list[Tensor] = []
            bufs: list[Tensor] = []
            self._init_group(group, params, grads, bufs)
            if plan is not None:
                self._step_distributed(group, params, grads, bufs, plan)
            else:
                self._step_group(group, params, grads, bufs)
        return loss

    def _step_distributed(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        bufs: list[Tensor],
        plan: Plan,
    ) -> None:
        """Each matrix orthogonalised once, on its owner rank (`.muon_dist`); a
        matrix without a gradient is skipped, as torch's Muon skips it."""
        lr = _scalar(group["lr"])
        stepped = {
            id(p): self._momentum(group, g, b) for p, g, b in zip(params, grads, bufs, strict=True)
        }
        updates = [stepped.get(id(p)) for p in group["params"]]
        ortho = orthogonalise(
            updates,
            plan,
            lambda u: _one(u, group["ns_coefficients"], group["ns_steps"], group["eps"]),
            self.work,
        )
        for param, update in zip(group["params"], ortho, strict=True):
            if update is None:
                continue
            own: Tensor = param.to_local() if plan.kind == "fsdp" else param
            own.mul_(1 - lr * group["weight_decay"])
            own.add_(update, alpha=-_adjusted_lr(lr, group["adjust_lr_fn"], param.shape))

    def _step_group(
        self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], bufs: list[Tensor]
    ) -> None:
        self.work["matrices"] += len(params)
        self.work["cost"] += sum(ns_cost(p.shape) for p in params)
        lr = _scalar(group["lr"])
        coefficients = group["ns_coefficients"]
        if not any(self._batches(p.device, tuple(p.shape)) for p in params):
            # torch's loop, matrix by matrix (its memory locality: no update waits)
            for param, grad, buf in zip(params, grads, bufs, strict=True):
                update = self._momentum(group, grad, buf)
                self._apply(
                    group, lr, param, _one(update, coefficients, group["ns_steps"], group["eps"])
                )
            return
        updates = [self._momentum(group, g, b) for g, b in zip(grads, bufs, strict=True)]
        buckets: dict[tuple[Any, ...], list[int]] = {}
        for i, update in enumerate(updates):
            buckets.setdefault((update.shape, update.device, update.dtype), []).append(i)
        ortho: list[Tensor] = list(updates)  # each replaced by its orthogonalisation
        for (shape, device, _), members in buckets.items():
            if len(members) > 1 and self._batches(device, tuple(shape)):
                stacked = torch.stack([updates[i] for i in members])
                done = self._stack(stacked, coefficients, group["ns_steps"], group["eps"])
                for i, matrix in zip(members, done, strict=True):
                    ortho[i] = matrix
            else:
                for i in members:
                    ortho[i] = _one(updates[i], coefficients, group["ns_steps"], group["eps"])
        for param, update in zip(params, ortho, strict=True):
            self._apply(group, lr, param, update)

    @staticmethod
    def _momentum(group: dict[str, Any], grad: Tensor, buf: Tensor) -> Tensor:
        """torch's momentum: the buffer updated in place, the (Nesterov) update returned."""
        if grad.ndim != 2:
            raise ValueError("Param gradient must be a 2D matrix")
        buf.lerp_(grad, 1 - group["momentum"])
        return grad.lerp(buf, group["momentum"]) if group["nesterov"] else buf

    @staticmethod
    def _apply(group: dict[str, Any], lr: float | Tensor, param: Tensor, ortho: Tensor) -> None:
        """torch's decoupled weight decay, then the orthogonalised update."""
        param.mul_(1 - lr * group["weight_decay"])
        param.add_(ortho, alpha=-_adjusted_lr(lr, group["adjust_lr_fn"], param.shape))
