"""torch's Muon step with same-shape matrices orthogonalised in one batched call.

Newton-Schulz is most of a Muon step, and for many small matrices most of that is the
per-matrix overhead of each small matmul (a kernel launch on a GPU). :class:`BatchedMuon`
is ``torch.optim.Muon`` whose step stacks the momentum-updated gradients of a param
group's matrices that share a shape, device and dtype, and runs the same quintic
iteration on the stack (``baddbmm`` for ``addmm``); everything else is torch's step,
operation for operation, and its state (``momentum_buffer``), param groups and
checkpoints are torch's.

``batch`` chooses: ``"auto"`` batches on CUDA (where launch overhead makes it pay most);
on the CPU it measures, once per process for each stack of small matrices (shape, count,
dtype, threads), both ways on the first step's own matrices, and batches that stack from
then on only where the batched results equal the looped ones bit for bit and the batched
call took at most :data:`BATCH_PAYS` of the loop's time (so the choice never changes a
number, only the time; larger matrices and a compiled step loop, as torch does).
``True`` batches everywhere (on this project's CPU: identical results, faster for
matrices up to about 128 x 512, see ``benchmarks/bench_muon.py``); ``False`` loops.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from optreg.builtin.muon_dist import Distribution, Layout, layout_of, ns_cost, orthogonalise

__all__ = ["BatchedMuon", "newton_schulz_batched"]

Batch = bool | Literal["auto"]

#: the most values in one matrix for which ``batch="auto"`` measures batching on the CPU:
#: above it a matrix's own matmuls dwarf the per-call overhead batching removes.
MEASURED_UP_TO = 128 * 512
#: the largest share of the loop's time at which the measured batched call is chosen.
BATCH_PAYS = 0.9
#: ``batch="auto"``'s measured choices on the CPU, per stack: (shape, count, dtype,
#: threads, Newton-Schulz settings) -> batched (this process; never saved).
_MEASURED: dict[tuple[Any, ...], bool] = {}


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
) -> list[Tensor]:
    """``batch="auto"`` on the CPU: the stack's orthogonalisations, looped (torch's
    numbers), and whether to batch this kind of stack from now on, recorded in
    :data:`_MEASURED`: only where batched equals looped bit for bit and is faster."""

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
    _MEASURED[_measured_key(stack, ns_coefficients, ns_steps, eps)] = pays
    return result


def _measured_key(
    stack: Tensor, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
) -> tuple[Any, ...]:
    return (
        tuple(stack.shape),
        stack.dtype,
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
        batch: ``"auto"`` (CUDA batched; CPU measured per stack of small matrices, see
            the module), True or False.
        distributed: orthogonalise each matrix once across the process group
            (:mod:`optreg.builtin.muon_dist`): ``"auto"`` under FSDP2 (row-sharded
            DTensors) and with an active process group where every rank holds the same
            matrices (DDP); True (an error where it cannot); False never.
        **kwargs: ``torch.optim.Muon``'s hyperparameters.

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
        if batch not in (True, False, "auto"):
            raise ValueError(f"`batch` must be True, False or 'auto', got {batch!r}")
        layout_of([], distributed)  # checks the value
        super().__init__(params, **kwargs)
        self.batch: Batch = batch
        self.distributed: Distribution = distributed
        #: what the last step orthogonalised on this rank (distributed: its share)
        self.work: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        """torch's state, and the batching choices (copies and pickles keep them)."""
        state: dict[str, Any] = super().__getstate__()
        state["batch"] = self.__dict__.get("batch", "auto")
        state["distributed"] = self.__dict__.get("distributed", "auto")
        state.pop("_replicated", None)  # re-checked in the process that steps
        return state

    def _replicated_everywhere(self) -> bool:
        """Whether every rank steps the same matrices (DDP), asked of the process group
        once per set of param groups: ranks holding different parameters (ZeRO, pipeline
        stages) orthogonalise their own, as one process does."""
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return False
        shapes = tuple(tuple(tuple(p.shape) for p in g["params"]) for g in self.param_groups)
        known: dict[Any, bool] = self.__dict__.setdefault("_replicated", {})
        if shapes not in known:
            everyone: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(everyone, shapes)
            known[shapes] = all(s == shapes for s in everyone)
        return known[shapes]

    def _batches(self, device: torch.device, shape: tuple[int, ...] | None = None) -> bool:
        """Whether stacks of ``shape`` matrices on ``device`` may run batched (``"auto"``
        on the CPU: where small enough to measure, outside ``torch.compile``)."""
        batch = self.__dict__.get("batch", "auto")  # a copy restored by torch has none
        if batch != "auto":
            return bool(batch)
        if device.type == "cuda":
            return True
        return (
            device.type == "cpu"
            and shape is not None
            and math.prod(shape) <= MEASURED_UP_TO
            and not torch.compiler.is_compiling()
        )

    def _stack(
        self, stack: Tensor, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
    ) -> list[Tensor]:
        """A stack of same-shape matrices orthogonalised, batched or (``"auto"`` on the
        CPU, until measured, and where it does not pay) looped."""
        if self.__dict__.get("batch", "auto") == "auto" and stack.device.type == "cpu":
            choice = _MEASURED.get(_measured_key(stack, ns_coefficients, ns_steps, eps))
            if choice is None:
                return _measure(stack, ns_coefficients, ns_steps, eps)
            if not choice:
                return _looped(stack, ns_coefficients, ns_steps, eps)
        return list(newton_schulz_batched(stack, ns_coefficients, ns_steps, eps).unbind(0))

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One Muon step (torch's), same-shape matrices orthogonalised together."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        mode = self.__dict__.get("distributed", "auto")
        self.work = {"matrices": 0, "cost": 0, "bytes_sent": 0}
        # asked of every rank before any group (a rank may hold an empty group)
        replicated = mode != "auto" or self._replicated_everywhere()
        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            bufs: list[Tensor] = []
            self._init_group(group, params, grads, bufs)
            layout = layout_of(group["params"], mode)
            if layout is not None and layout.kind == "replicated" and not replicated:
                layout = None
            if layout is not None:
                self._step_distributed(group, params, grads, bufs, layout)
            else:
                self._step_group(group, params, grads, bufs)
        return loss

    def _step_distributed(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        bufs: list[Tensor],
        layout: Layout,
    ) -> None:
        """Each matrix orthogonalised once, on its owner rank (:mod:`.muon_dist`)."""
        if len(params) != len(group["params"]):
            raise RuntimeError(
                "distributed Muon needs a gradient for every matrix on every rank (the "
                "ranks orthogonalise them together); use ns_distributed=False"
            )
        lr = _scalar(group["lr"])
        updates = [self._momentum(group, g, b) for g, b in zip(grads, bufs, strict=True)]
        ortho = orthogonalise(
            updates,
            layout,
            lambda u: _one(u, group["ns_coefficients"], group["ns_steps"], group["eps"]),
        )
        for param, update in zip(params, ortho, strict=True):
            own: Tensor = param.to_local() if layout.kind == "fsdp" else param  # type: ignore[attr-defined]
            own.mul_(1 - lr * group["weight_decay"])
            own.add_(update, alpha=-_adjusted_lr(lr, group["adjust_lr_fn"], param.shape))
        for key, value in layout.work.items():
            self.work[key] += value

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
