"""Distributed Muon: each matrix orthogonalised once across the process group.

Muon's update needs the whole matrix, so without this every rank runs Newton-Schulz on
every matrix (under FSDP2, on sharded DTensors whose matmuls gather them). Here the
matrices of a param group get owner ranks, balanced by Newton-Schulz cost
(``rows * cols * min(rows, cols)``, largest first to the least loaded rank), and:

* under FSDP2 (DTensor parameters sharded on dim 0 of a 1-D mesh) each owner gathers
  its matrices' momentum-updated shards (``gather``), orthogonalises the full matrix,
  and sends each rank its rows back (``scatter``);
* with replicated parameters and an active process group (DDP) each owner
  orthogonalises its matrices and ``broadcast``\\ s the result.

The collectives are asynchronous: an owner orthogonalises its next matrix while the
previous results travel. Everything else of the step (momentum, weight decay, the
update) is element-wise and stays on each rank's own rows. The owner runs the same
Newton-Schulz on the same full matrix a single process would, so the update equals the
single-process update for the same gradient bit for bit; only the gradient's reduction
across ranks differs (see the README's Muon section for the measured tolerance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

__all__ = [
    "NS_DTYPE",
    "Distribution",
    "Layout",
    "assign_owners",
    "layout_of",
    "ns_cost",
    "orthogonalise",
]

Distribution = bool | Literal["auto"]
#: The dtype Muon's Newton-Schulz returns (torch's runs in bfloat16): what travels back.
NS_DTYPE = torch.bfloat16


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


@dataclass
class Layout:
    """How a group's parameters sit across ranks: ``"fsdp"`` (row shards of a 1-D mesh)
    or ``"replicated"`` (every rank holds every matrix)."""

    kind: Literal["fsdp", "replicated"]
    group: Any  # the ProcessGroup
    rank: int
    world: int
    #: what the last step did on this rank: matrices and Newton-Schulz cost it
    #: orthogonalised, and bytes it sent
    work: dict[str, int] = field(default_factory=dict)

    def global_rank(self, rank: int) -> int:
        return int(torch.distributed.get_global_rank(self.group, rank))


def _is_dtensor(t: Tensor) -> bool:
    return type(t).__name__ == "DTensor" and hasattr(t, "device_mesh")


def layout_of(params: Sequence[Tensor], mode: Distribution) -> Layout | None:
    """The layout to orthogonalise ``params`` across, or None for one process's path.

    ``"auto"``: DTensor parameters row-sharded on a 1-D mesh, or plain parameters with
    an initialised process group of more than one rank (DDP: every rank holds the same
    matrices). ``False``: never. ``True``: as ``"auto"``, and an error where it cannot.

    Raises:
        ValueError: ``mode`` of another value, or True where the parameters are sharded
            in a way it does not handle (another placement, a mesh of more dimensions).
    """
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
        return Layout("fsdp", mesh.get_group(), mesh.get_local_rank(), mesh.size())
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Layout("replicated", dist.group.WORLD, dist.get_rank(), dist.get_world_size())
    return None


def _rows(n: int, world: int) -> tuple[int, list[int]]:
    """``(padded rows per rank, each rank's rows)`` of a dim-0 shard (torch.chunk's split)."""
    chunk = math.ceil(n / world) if n else 0
    return chunk, [max(0, min(chunk, n - r * chunk)) for r in range(world)]


def orthogonalise(
    updates: Sequence[Tensor], layout: Layout, ns: Callable[[Tensor], Tensor]
) -> list[Tensor]:
    """Each matrix's orthogonalisation, computed once, on its owner.

    Args:
        updates: the momentum-updated gradients: DTensors (``"fsdp"``) or full tensors.
        layout: from :func:`layout_of`.
        ns: Newton-Schulz on one full matrix.

    Returns:
        Per matrix, in :data:`NS_DTYPE`: this rank's rows (``"fsdp"``) or the whole
        matrix (``"replicated"``).
    """
    dist = torch.distributed
    shapes = [tuple(u.shape) for u in updates]
    owners = assign_owners(shapes, layout.world)
    mine = [i for i, o in enumerate(owners) if o == layout.rank]
    layout.work = {
        "matrices": len(mine),
        "cost": sum(ns_cost(shapes[i]) for i in mine),
        "bytes_sent": 0,
    }
    if layout.kind == "replicated":
        out: list[Tensor] = []
        pending = []
        for i, update in enumerate(updates):
            if owners[i] == layout.rank:
                result = ns(update).to(NS_DTYPE).contiguous()
                layout.work["bytes_sent"] += (
                    result.numel() * result.element_size() * (layout.world - 1)
                )
            else:
                result = torch.empty(shapes[i], dtype=NS_DTYPE, device=update.device)
            pending.append(
                dist.broadcast(
                    result, layout.global_rank(owners[i]), group=layout.group, async_op=True
                )
            )
            out.append(result)
        for work in pending:
            work.wait()
        return out
    # fsdp: gather each matrix's rows on its owner, orthogonalise, scatter the rows back
    gathered: list[list[Tensor] | None] = []
    pending = []
    for i, update in enumerate(updates):
        local: Tensor = update.to_local()  # type: ignore[attr-defined]
        chunk, rows = _rows(shapes[i][0], layout.world)
        if local.shape[0] != rows[layout.rank]:
            raise RuntimeError(
                f"a Muon matrix of shape {list(shapes[i])} has {local.shape[0]} rows on rank "
                f"{layout.rank}, not the {rows[layout.rank]} of a dim-0 chunk"
            )
        padded = local.new_zeros((chunk, *shapes[i][1:]))
        padded[: local.shape[0]] = local
        if owners[i] != layout.rank:
            layout.work["bytes_sent"] += padded.numel() * padded.element_size()
        into = (
            [torch.empty_like(padded) for _ in range(layout.world)]
            if owners[i] == layout.rank
            else None
        )
        gathered.append(into)
        pending.append(
            dist.gather(
                padded, into, dst=layout.global_rank(owners[i]), group=layout.group, async_op=True
            )
        )
    results: list[Tensor] = []
    sends = []
    for i, update in enumerate(updates):
        pending[i].wait()
        chunk, rows = _rows(shapes[i][0], layout.world)
        received = torch.empty((chunk, *shapes[i][1:]), dtype=NS_DTYPE, device=update.device)
        pieces = None
        into = gathered[i]
        if into is not None:
            full = torch.cat(into)[: shapes[i][0]]
            ortho = ns(full).to(NS_DTYPE)
            padded = ortho.new_zeros((chunk * layout.world, *shapes[i][1:]))
            padded[: shapes[i][0]] = ortho
            pieces = list(torch.split(padded, chunk)) if chunk else [padded] * layout.world
            layout.work["bytes_sent"] += sum(
                p.numel() * p.element_size() for r, p in enumerate(pieces) if r != layout.rank
            )
        sends.append(
            dist.scatter(
                received,
                pieces,
                src=layout.global_rank(owners[i]),
                group=layout.group,
                async_op=True,
            )
        )
        results.append(received[: rows[layout.rank]])
    for work in sends:
        work.wait()
    return results
