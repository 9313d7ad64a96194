"""Distributed Muon: each matrix orthogonalised once across the process group, by plan.

Muon's update needs the whole matrix, so without this every rank runs Newton-Schulz on
every matrix (under FSDP2, on sharded DTensors whose matmuls gather them). Here a param
group gets a `Plan` the first time it is stepped: its matrices in buckets (same
dtype, at most `BUCKET_VALUES` values each), each matrix an owner rank balanced by
Newton-Schulz cost (``rows * cols * min(rows, cols)``, largest first to the least loaded
rank). The plan is checked across the ranks once (a mismatch is an error naming the first
differing matrix) and reused. Then, per bucket:

* under FSDP2 (DTensor parameters sharded on dim 0 of a 1-D mesh) one all-to-all brings
  every owner its matrices' momentum-updated row shards, the owner orthogonalises the
  full matrices, and one all-to-all sends each rank its rows back;
* with replicated parameters (stated: ``ns_distributed=True``, verified at plan time
  from the values, which DDP makes equal on every rank) every owner orthogonalises its
  matrices and one all-gather hands every rank the results.

Transfers are asynchronous: an owner orthogonalises its next bucket while the previous
one travels. Everything else of the step (momentum, weight decay, the update) is
element-wise and stays on each rank's own rows. The owner runs the same Newton-Schulz on
the same full matrix one process would, so the update equals the one-process update for
the same gradient bit for bit.

What ``"auto"`` decides, from facts only: DTensor parameters row-sharded on one 1-D mesh
(FSDP2) are distributed; plain tensors stay on the one-process path, since whether other
ranks hold the same matrices cannot be known without a collective nobody asked for.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

__all__ = [
    "BUCKET_VALUES",
    "NS_DTYPE",
    "Distribution",
    "Plan",
    "assign_owners",
    "check_plans",
    "ns_cost",
    "orthogonalise",
    "plan_for",
]

Distribution = bool | Literal["auto"]
#: The dtype Muon's Newton-Schulz returns (torch's runs in bfloat16): what travels back.
NS_DTYPE = torch.bfloat16
#: The most values (of the full matrices) one bucket holds; a larger matrix is a bucket
#: of its own. 2**24 values: 64 MiB of float32 gathered per bucket at most.
BUCKET_VALUES = 1 << 24


def ns_cost(shape: Sequence[int]) -> int:
    """Newton-Schulz flops of one iteration on a ``rows x cols`` matrix, up to a constant."""
    rows, cols = int(shape[0]), int(shape[1])
    return rows * cols * min(rows, cols)


def assign_owners(shapes: Sequence[Sequence[int]], world: int) -> list[int]:
    """The rank that orthogonalises each matrix: largest first, to the least loaded rank
    (ties to the lower rank and the earlier matrix), the same on every rank."""
    load = [0] * world
    owners = [0] * len(shapes)
    for i in sorted(range(len(shapes)), key=lambda i: (-ns_cost(shapes[i]), i)):
        owner = min(range(world), key=lambda r: (load[r], r))
        owners[i] = owner
        load[owner] += ns_cost(shapes[i])
    return owners


def _rows(n: int, world: int) -> tuple[int, list[int]]:
    """``(padded rows per rank, each rank's rows)`` of a dim-0 shard (torch.chunk's split)."""
    chunk = math.ceil(n / world) if n else 0
    return chunk, [max(0, min(chunk, n - r * chunk)) for r in range(world)]


@dataclass(frozen=True)
class Plan:
    """How one param group's matrices are orthogonalised across the ranks: built once.

    Attributes:
        kind: ``"fsdp"`` (row shards of a 1-D mesh) or ``"replicated"`` (every rank
            holds every matrix).
        group: the process group.
        rank, world: this rank's index in ``group`` and its size.
        shapes: each matrix's full shape, in the group's order.
        owners: the rank (of ``group``) that orthogonalises each matrix.
        dtypes: each matrix's dtype.
        device: where this rank's values are.
        buckets: the matrices moved together, as indices into ``shapes``.
        signature: what every rank must agree on (kind, shapes, dtypes and, replicated,
            each matrix's fingerprint).
    """

    kind: Literal["fsdp", "replicated"]
    group: Any
    rank: int
    world: int
    shapes: tuple[tuple[int, int], ...]
    dtypes: tuple[torch.dtype, ...]
    device: torch.device
    owners: tuple[int, ...]
    buckets: tuple[tuple[int, ...], ...]
    signature: tuple[Any, ...]

    def global_rank(self, rank: int) -> int:
        """The global rank of ``rank`` of this plan's group."""
        return int(torch.distributed.get_global_rank(self.group, rank))


def _is_dtensor(t: Tensor) -> bool:
    return type(t).__name__ == "DTensor" and hasattr(t, "device_mesh")


def _fingerprint(t: Tensor) -> str:
    """The bytes of ``t``'s values, hashed: equal on ranks that hold the same matrix."""
    data = t.detach().contiguous().cpu().reshape(-1).view(torch.uint8)
    return hashlib.blake2b(data.numpy().tobytes(), digest_size=16).hexdigest()


def _where(
    params: Sequence[Tensor], mode: Distribution
) -> tuple[Literal["fsdp", "replicated"], Any, int, int] | None:
    """``(kind, group, rank, world)`` for ``params``, or None for one process's path."""
    if mode not in (True, False, "auto"):
        raise ValueError(f"`ns_distributed` must be True, False or 'auto', got {mode!r}")
    if mode is False or not params:
        return None
    if any(_is_dtensor(p) for p in params):
        from torch.distributed.tensor import Shard

        meshes = {id(p.device_mesh) for p in params if _is_dtensor(p)}  # type: ignore[attr-defined]
        first: Any = params[0]
        fits = (
            all(_is_dtensor(p) for p in params)
            and len(meshes) == 1
            and first.device_mesh.ndim == 1
            and all(tuple(p.placements) == (Shard(0),) for p in params)  # type: ignore[attr-defined]
        )
        if not fits:
            if mode is True:
                raise ValueError(
                    "ns_distributed=True needs every Muon parameter row-sharded (Shard(0)) "
                    "on one 1-D device mesh, as FSDP2's fully_shard makes them; use "
                    "ns_distributed='auto' to orthogonalise these on every rank"
                )
            return None
        mesh = first.device_mesh
        return "fsdp", mesh.get_group(), mesh.get_local_rank(), mesh.size()
    if mode != True:  # noqa: E712 - "auto": plain tensors stay local (see the module)
        return None
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return "replicated", dist.group.WORLD, dist.get_rank(), dist.get_world_size()
    return None


def plan_for(
    params: Sequence[Tensor], mode: Distribution, *, bucket_values: int | None = None
) -> Plan | None:
    """The plan to orthogonalise ``params`` (one param group) across ranks, or None for
    one process's path. Runs no collective: `check_plans()` compares the plans.

    ``"auto"``: DTensor parameters row-sharded on one 1-D mesh (FSDP2). ``False``: never.
    ``True``: as ``"auto"``, and plain tensors with an initialised process group of more
    than one rank are stated replicated (DDP), which `check_plans()` verifies.

    Args:
        params: the group's matrices.
        mode: ``ns_distributed``.
        bucket_values: the most values of full matrices in one bucket (default
            `BUCKET_VALUES`).

    Raises:
        ValueError: ``mode`` of another value, or True where the parameters are sharded
            in a way it does not handle (another placement, a mesh of more dimensions).
    """
    where = _where(params, mode)
    if where is None:
        return None
    kind, group, rank, world = where
    cap = BUCKET_VALUES if bucket_values is None else bucket_values
    shapes = tuple((int(p.shape[0]), int(p.shape[1])) for p in params)
    buckets: list[tuple[int, ...]] = []
    for dtype in dict.fromkeys(p.dtype for p in params):  # each bucket of one dtype
        current: list[int] = []
        size = 0
        for i, p in enumerate(params):
            if p.dtype != dtype:
                continue
            if current and size + p.numel() > cap:
                buckets.append(tuple(current))
                current, size = [], 0
            current.append(i)
            size += p.numel()
        if current:
            buckets.append(tuple(current))
    owners = [0] * len(params)
    for bucket in buckets:  # balanced within each bucket: the transfers pad the least
        for i, owner in zip(bucket, assign_owners([shapes[i] for i in bucket], world), strict=True):
            owners[i] = owner
    facts: list[Any] = [kind, shapes, tuple(str(p.dtype) for p in params)]
    if kind == "replicated":
        facts.append(tuple(_fingerprint(p) for p in params))
    first: Any = params[0]
    device = first.to_local().device if kind == "fsdp" else first.device
    dtypes = tuple(p.dtype for p in params)
    return Plan(
        kind,
        group,
        rank,
        world,
        shapes,
        dtypes,
        device,
        tuple(owners),
        tuple(buckets),
        tuple(facts),
    )


def check_plans(plans: Sequence[Plan | None]) -> None:
    """Compare one optimizer's plans across the ranks (one collective, once per set).

    Raises:
        ValueError: a rank's plans differ from rank 0's: the message names the first
            differing param group and matrix (another shape, dtype, or for a stated
            replication, other values).
    """
    first = next((p for p in plans if p is not None), None)
    if first is None:
        return
    mine = [None if p is None else p.signature for p in plans]
    everyone: list[Any] = [None] * first.world
    torch.distributed.all_gather_object(everyone, mine, group=first.group)
    for rank, theirs in enumerate(everyone):
        if theirs == mine:
            continue
        if len(theirs) != len(mine):
            raise ValueError(
                f"distributed Muon: rank {rank} has {len(theirs)} Muon param groups, rank "
                f"{first.rank} has {len(mine)}; every rank must step the same groups "
                "(use ns_distributed=False for ranks that train different parameters)"
            )
        for g, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            if a != b:
                raise ValueError(_difference(g, first.rank, a, rank, b))


def _difference(group: int, me: int, mine: Any, rank: int, theirs: Any) -> str:
    """The message for the first difference between two ranks' plans of one group."""
    where = f"distributed Muon: param group {group}"
    if mine is None or theirs is None or mine[0] != theirs[0]:
        kinds = ("one process" if s is None else s[0] for s in (mine, theirs))
        return f"{where} is {next(kinds)} on rank {me} but {next(kinds)} on rank {rank}"
    fields = ("shape", "dtype", "values")
    for what, ours, other in zip(fields, mine[1:], theirs[1:], strict=False):
        if len(ours) != len(other):
            return (
                f"{where} holds {len(ours)} matrices on rank {me} but {len(other)} on rank "
                f"{rank}; every rank must step the same matrices"
            )
        for i, (a, b) in enumerate(zip(ours, other, strict=True)):
            if a != b:
                if what == "values":
                    return (
                        f"{where}: matrix {i} (shape {list(mine[1][i])}) holds other values "
                        f"on rank {rank} than on rank {me}. ns_distributed=True states that "
                        "every rank holds the same matrices (DDP); ranks that train "
                        "different parameters need ns_distributed=False or 'auto'"
                    )
                return (
                    f"{where}: matrix {i} has {what} {a} on rank {me} but {b} on rank {rank}"
                    "; every rank must step the same matrices"
                )
    return f"{where} differs between rank {me} and rank {rank}"  # pragma: no cover


def orthogonalise(
    updates: Sequence[Tensor | None],
    plan: Plan,
    ns: Callable[[Tensor], Tensor],
    work: dict[str, int],
) -> list[Tensor | None]:
    """Each matrix's orthogonalisation, computed once, on its owner, bucket by bucket.

    Args:
        updates: per matrix of the plan, the momentum-updated gradient (DTensors under
            ``"fsdp"``, full tensors else), or None for a matrix without a gradient on
            this step (skipped, as torch's Muon skips it; DDP and FSDP2 give every rank
            the same gradients, so the ranks skip the same matrices).
        plan: from `plan_for()`.
        ns: Newton-Schulz on one full matrix.
        work: counters this adds to: ``matrices`` and ``cost`` orthogonalised here,
            ``bytes_sent`` and ``collectives`` launched.

    Returns:
        Per matrix, in `NS_DTYPE`: this rank's rows (``"fsdp"``) or the whole
        matrix (``"replicated"``); None where ``updates`` has None.
    """
    if plan.kind == "replicated":
        return _replicated(updates, plan, ns, work)
    return _sharded(updates, plan, ns, work)


def _orthogonalised(
    i: int, full: Tensor | None, plan: Plan, ns: Callable[[Tensor], Tensor], work: dict[str, int]
) -> Tensor:
    """Matrix ``i`` orthogonalised on its owner (zeros, never used, without a gradient)."""
    if full is None:
        return torch.zeros(plan.shapes[i], dtype=NS_DTYPE, device=plan.device)
    work["matrices"] += 1
    work["cost"] += ns_cost(plan.shapes[i])
    return ns(full).to(NS_DTYPE).contiguous()


def _replicated(
    updates: Sequence[Tensor | None],
    plan: Plan,
    ns: Callable[[Tensor], Tensor],
    work: dict[str, int],
) -> list[Tensor | None]:
    dist = torch.distributed
    device = plan.device
    launched = []
    for bucket in plan.buckets:
        sizes = [0] * plan.world
        for i in bucket:
            sizes[plan.owners[i]] += math.prod(plan.shapes[i])
        mine = [
            _orthogonalised(i, updates[i], plan, ns, work).reshape(-1)
            for i in bucket
            if plan.owners[i] == plan.rank
        ]
        flat = torch.zeros(max(sizes), dtype=NS_DTYPE, device=device)
        if mine:
            torch.cat(mine, out=flat[: sizes[plan.rank]])
        into = [torch.empty_like(flat) for _ in range(plan.world)]
        launched.append(
            (bucket, into, dist.all_gather(into, flat, group=plan.group, async_op=True))
        )
        work["collectives"] += 1
        work["bytes_sent"] += flat.numel() * flat.element_size() * (plan.world - 1)
    out: list[Tensor | None] = [None] * len(updates)
    for bucket, into, handle in launched:
        handle.wait()
        offsets = [0] * plan.world
        for i in bucket:
            owner, n = plan.owners[i], math.prod(plan.shapes[i])
            if updates[i] is not None:
                out[i] = into[owner][offsets[owner] : offsets[owner] + n].view(plan.shapes[i])
            offsets[owner] += n
    return out


def _sharded(
    updates: Sequence[Tensor | None],
    plan: Plan,
    ns: Callable[[Tensor], Tensor],
    work: dict[str, int],
) -> list[Tensor | None]:
    dist = torch.distributed
    world, rank = plan.world, plan.rank
    splits = [_rows(shape[0], world) for shape in plan.shapes]

    def padded(i: int) -> int:  # values of one rank's padded row chunk of matrix i
        return splits[i][0] * plan.shapes[i][1]

    def gather(bucket: tuple[int, ...]) -> tuple[Tensor, Any]:
        """Launch the all-to-all that brings each owner its matrices' row chunks."""
        ordered = sorted(bucket, key=lambda i: plan.owners[i])  # grouped by destination
        local = [_local(updates[i], i) for i in ordered]
        dtype = plan.dtypes[bucket[0]]
        send = (
            torch.cat([t.reshape(-1) for t in local])
            if local
            else torch.empty(0, dtype=dtype, device=plan.device)
        )
        out_size = sum(padded(i) for i in bucket if plan.owners[i] == rank)
        received = send.new_empty(out_size * world)
        in_splits = [sum(padded(i) for i in bucket if plan.owners[i] == r) for r in range(world)]
        handle = dist.all_to_all_single(
            received, send, [out_size] * world, in_splits, group=plan.group, async_op=True
        )
        work["collectives"] += 1
        work["bytes_sent"] += (
            send.numel() * send.element_size() - in_splits[rank] * send.element_size()
        )
        return received, handle

    def _local(update: Tensor | None, i: int) -> Tensor:
        chunk, rows = splits[i]
        shape = (chunk, plan.shapes[i][1])
        if update is None:
            return torch.zeros(shape, dtype=plan.dtypes[i], device=plan.device)
        local: Tensor = update.to_local()  # type: ignore[attr-defined]
        if local.shape[0] != rows[rank]:
            raise RuntimeError(
                f"a Muon matrix of shape {list(plan.shapes[i])} has {local.shape[0]} rows on "
                f"rank {rank}, not the {rows[rank]} of a dim-0 chunk"
            )
        if local.shape[0] == chunk:
            return local.contiguous()
        out = local.new_zeros(shape)
        out[: local.shape[0]] = local
        return out

    scatters = []
    out: list[Tensor | None] = [None] * len(updates)
    if not plan.buckets:
        return out
    pending = gather(plan.buckets[0])
    for b, bucket in enumerate(plan.buckets):
        received, handle = pending
        handle.wait()
        if b + 1 < len(plan.buckets):  # the next bucket travels while this one is computed
            pending = gather(plan.buckets[b + 1])
        owned = [i for i in bucket if plan.owners[i] == rank]
        out_size = sum(padded(i) for i in owned)
        pieces = received.view(world, out_size) if out_size else received.view(world, 0)
        results = []
        offset = 0
        for i in owned:
            chunk = splits[i][0]
            full = pieces[:, offset : offset + padded(i)].reshape(world * chunk, -1)
            offset += padded(i)
            ortho = _orthogonalised(
                i, None if updates[i] is None else full[: plan.shapes[i][0]], plan, ns, work
            )
            whole = ortho.new_zeros((world * chunk, plan.shapes[i][1]))
            whole[: plan.shapes[i][0]] = ortho
            results.append(whole.view(world, -1))
        send = (
            torch.cat(results, dim=1).reshape(-1)
            if results
            else torch.empty(0, dtype=NS_DTYPE, device=received.device)
        )
        in_sizes = [sum(padded(i) for i in bucket if plan.owners[i] == r) for r in range(world)]
        back = torch.empty(sum(in_sizes), dtype=NS_DTYPE, device=received.device)
        handle = dist.all_to_all_single(
            back, send, in_sizes, [out_size] * world, group=plan.group, async_op=True
        )
        work["collectives"] += 1
        work["bytes_sent"] += (send.numel() - out_size) * send.element_size()
        scatters.append((bucket, in_sizes, back, handle))
    for bucket, in_sizes, back, handle in scatters:
        handle.wait()
        starts = [sum(in_sizes[:r]) for r in range(world)]
        for i in sorted(bucket, key=lambda i: plan.owners[i]):
            owner, n = plan.owners[i], padded(i)
            if updates[i] is not None:
                rows = back[starts[owner] : starts[owner] + n].view(splits[i][0], -1)
                out[i] = rows[: splits[i][1][rank]]
            starts[owner] += n
    return out
