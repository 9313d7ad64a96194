"""Shared by the optimizer and scheduler checks: the fixed problem, seeds, round trips, needs."""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from optreg._core.entry import Entry

__all__ = [
    "METADATA_KEY",
    "OPTIMIZER_CHECKS",
    "SCHEDULER_CHECKS",
    "Problem",
    "Report",
    "check_skip_names",
    "clone_units",
    "draws",
    "fsdp2_missing",
    "max_diff",
    "needs",
    "no_grad",
    "pick",
    "plan",
    "provided",
    "raised",
    "reachable_name",
    "resolve_target",
    "roundtrip",
    "seeded",
]

METADATA_KEY = "conformance"
"""The metadata key under which an entry declares what its checks need."""

OPTIMIZER_CHECKS = (
    "build_from_params",
    "build_from_param_groups",
    "per_group_lr",
    "no_grad_untouched",
    "closure_returns_loss",
    "loss_decreases",
    "resume_bit_identical",
)
"""The optimizer checks, in the order they run (names for ``skip_checks``)."""
SCHEDULER_CHECKS = (
    "build",
    "finite_non_negative_lr",
    "resume_bit_identical",
    "picklable",
)
"""The scheduler checks, in the order they run (names for ``skip_checks``)."""

SEED = 0
DEFAULT_LR = 0.01  # for factories whose ``lr`` has no default
RESUME_BEFORE = 3
RESUME_AFTER = 3
DESCENT_STEPS = 20
SCHED_WARMUP = 3
SCHED_TRAINING = 20
SCHED_STEPS = 24
SCHED_SPLIT = 10


@dataclass
class Report:
    """What a check run did: the checks that passed and the ones skipped, with reasons."""

    name: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------
# the problem: convex least squares, fixed data
# --------------------------------------------------------------------------
class Problem:
    """``mean((X @ W + b - Y) ** 2)`` per unit ``(W, b)``; sparse: two embedding tables;
    matrices: ``b`` a 1 x 3 matrix (for optimizers that take only 2-D parameters); device:
    where its tensors live (drawn on the CPU, so every device starts from the same values)."""

    def __init__(self, *, sparse: bool, matrices: bool = False, device: str = "cpu") -> None:
        import torch

        self.sparse = sparse
        self.matrices = matrices
        gen = torch.Generator().manual_seed(SEED)
        self.x = torch.randn(8, 4, generator=gen)
        self.y = torch.randn(8, 3, generator=gen)
        self.w0 = torch.randn(4, 3, generator=gen) * 0.5
        self.b0 = torch.randn(3, generator=gen) * 0.5
        if matrices:
            self.b0 = self.b0.reshape(1, 3)
        self.e0 = torch.randn(6, 3, generator=gen) * 0.5
        self.f0 = torch.randn(5, 3, generator=gen) * 0.5
        self.idx_e = torch.tensor([0, 1, 2, 3, 4, 5, 0, 2])
        self.idx_f = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
        if device != "cpu":
            for key in ("x", "y", "w0", "b0", "e0", "f0", "idx_e", "idx_f"):
                setattr(self, key, getattr(self, key).to(device))

    def unit(self) -> list[torch.Tensor]:
        """Fresh leaf tensors holding the initial values of one unit."""
        first, second = (self.e0, self.f0) if self.sparse else (self.w0, self.b0)
        return [first.clone().requires_grad_(True), second.clone().requires_grad_(True)]

    def frozen(self) -> torch.Tensor:
        """A parameter that no loss uses: its ``.grad`` stays None."""
        return self.b0.clone().add_(1.0).requires_grad_(True)

    def loss(self, units: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
        import torch.nn.functional as F

        total = None
        for first, second in units:
            if self.sparse:
                pred = F.embedding(self.idx_e, first, sparse=True) + F.embedding(
                    self.idx_f, second, sparse=True
                )
            else:
                pred = self.x @ first + second
            term = ((pred - self.y) ** 2).mean()
            total = term if total is None else total + term
        if total is None:  # pragma: no cover - callers always pass a unit
            raise ValueError("no unit to compute a loss for")
        return total


@contextlib.contextmanager
def seeded() -> Iterator[None]:
    """Fixed seeds and one intra-op thread: a check compares runs bit for bit, and a
    multi-threaded reduction may add in another order from one run to the next (seen:
    pytorch_optimizer's Kron differing by 5e-10 under load)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with draws(SEED):
            yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def draws(seed: int) -> Iterator[None]:
    """The CPU's random numbers from ``seed``: torch's generator and the process-wide ones
    of Python's ``random`` and numpy (pytorch_optimizer's Kron draws its rebalancing from
    ``numpy.random``), each restored after. Two runs that draw (Kron, stochastic rounding)
    compare with each other, not two draws."""
    import importlib
    import random

    import torch

    np_random: Any
    try:  # by name: numpy is optional (torch does not require it), and untyped where absent
        np_random = importlib.import_module("numpy.random")
    except ImportError:  # nothing of it to seed
        np_random = None
    python_state = random.getstate()
    numpy_state = np_random.get_state() if np_random is not None else None
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            if np_random is not None:
                np_random.seed(seed)
            yield
    finally:
        random.setstate(python_state)
        if np_random is not None:
            np_random.set_state(numpy_state)


def provided(providers: Iterable[str], kinds: Sequence[str], noun: str) -> list[Entry]:
    """The entries of ``kinds`` (``"optimizer"``, ``"scheduler"``) whose distribution is one
    of ``providers`` (``"__runtime__"`` for run-time names).

    Raises:
        ValueError: a provider that provides no installed ``noun``.
    """
    from optreg._core.entry import normalize_dist
    from optreg._core.registry import optimizers, schedulers

    registries = {"optimizer": optimizers, "scheduler": schedulers}
    given = list(providers)
    wanted = {normalize_dist(p) for p in given} | set(given)  # "__runtime__" as it is
    entries = [e for k in kinds for e in registries[k].entries() if e.provider in wanted]
    missing = [p for p in given if not {p, normalize_dist(p)} & {e.provider for e in entries}]
    if missing:
        raise ValueError(f"no installed {noun} is provided by {', '.join(sorted(missing))}")
    return entries


def roundtrip(state: Any, label: str, what: str) -> Any:
    import torch

    buf = io.BytesIO()
    try:
        torch.save(state, buf)
        buf.seek(0)
        return torch.load(buf, weights_only=True)
    except Exception as e:
        raise AssertionError(
            f"{label}: {what}.state_dict() does not survive torch.save -> "
            f"torch.load(weights_only=True): {type(e).__name__}: {e}. Keep only tensors, "
            "numbers, strings, None, lists, tuples and dicts in the state "
            "(no functions, lambdas or custom objects)"
        ) from e


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    import torch

    if a.is_sparse:
        a = a.to_dense()
    if b.is_sparse:
        b = b.to_dense()
    return float(torch.max(torch.abs(a.detach().double() - b.detach().double())))


def clone_units(units: Sequence[Sequence[torch.Tensor]]) -> list[list[torch.Tensor]]:
    return [[p.detach().clone().requires_grad_(True) for p in unit] for unit in units]


def needs(entry: Entry) -> dict[str, Any]:
    """What checking ``entry`` needs: its declared [optreg.Conformance][] (typed, checked
    when the name was registered), as a mapping of the fields it sets.

    The entry's traits count too (``needs_train_eval``: `train_eval`;
    ``metric_driven``). A ``device`` (``"cuda"``, ...) makes the name a whole-name ``skip`` saying so.

    Raises:
        TypeError: an entry made without `make_entry` whose ``metadata["conformance"]``
            is not a mapping or holds a value of the wrong type.
        ValueError: the same, with a key the kit does not read.
    """
    from optreg._core.traits import Conformance

    conformance = entry.traits.conformance
    declared = (entry.metadata or {}).get(METADATA_KEY)
    if conformance == Conformance() and declared is not None:  # an Entry made by hand
        conformance = Conformance.from_mapping(declared)
    out: dict[str, Any] = conformance.declared()
    traits = entry.traits
    if traits.train_eval:
        out.setdefault("needs_train_eval", True)
    if traits.metric_driven:
        out.setdefault("metric_driven", True)
    device = out.get("device")
    if device is not None:
        reason = f"needs {device.upper()} hardware (the kit's problem runs on the CPU)"
        out["skip"] = f"{reason}: {out['skip']}" if out.get("skip") else reason
    return out


def plan(name: str | Entry) -> tuple[str | None, Any, dict[str, Any], bool]:
    """How the kit steps a name: ``(why not, factory, kwargs, matrices only)``; ``why
    not`` is None where it can (a closure-only, sparse, second-derivative or unavailable
    name is not applicable, with the reason). A train/eval name's factory returns the
    optimizer in train mode.

    Raises:
        UnknownNameError: no optimizer has that name.
    """
    from optreg._core.registry import optimizers
    from optreg._core.signature import requires

    entry = name if not isinstance(name, str) else optimizers.resolve(name)
    need = needs(entry)
    why = (
        need.get("skip")
        or ("it steps only with a closure" if need.get("requires_closure") else None)
        or ("it takes sparse gradients; the problem is dense" if need.get("sparse_grad") else None)
        or (
            "it needs backward(create_graph=True) (second derivatives)"
            if need.get("create_graph")
            else None
        )
    )
    available, reason = optimizers.status(entry)
    if not available:
        why = f"not available here: {reason}"
    if why:
        return why, None, {}, False
    factory = optimizers.load(entry)
    kwargs = dict(need.get("kwargs") or {})
    if "lr" not in kwargs and requires(factory, "lr"):
        kwargs["lr"] = DEFAULT_LR
    if need.get("needs_train_eval"):  # stepped for real: in train mode, as a trainer does
        factory = _in_train_mode(factory)
    return None, factory, kwargs, bool(need.get("matrices_only"))


def _in_train_mode(factory: Callable[..., Any]) -> Callable[..., Any]:
    """``factory``, returning a train/eval optimizer switched to train mode (schedule-free
    ones are built in eval mode, where ``step()`` raises); its signature is the factory's."""

    @functools.wraps(factory)
    def build(params: Any, **kwargs: Any) -> Any:
        optimizer = factory(params, **kwargs)
        optimizer.train()
        return optimizer

    return build


def resolve_target(
    kind: str, name_or_factory: Any
) -> tuple[str, Callable[..., Any], dict[str, Any]]:
    from optreg._core.entry import Entry

    if isinstance(name_or_factory, (str, Entry)):
        from optreg._core.registry import optimizers, schedulers

        registry = optimizers if kind == "optimizer" else schedulers
        entry = (
            name_or_factory
            if isinstance(name_or_factory, Entry)
            else registry.resolve(name_or_factory)
        )
        return f"{kind} {entry.qualified_name!r}", registry.load(entry), needs(entry)
    if not callable(name_or_factory):
        raise TypeError(
            f"check_{kind}() takes a {kind} name or a factory callable, got "
            f"{type(name_or_factory).__name__}: {name_or_factory!r}"
        )
    qual = getattr(name_or_factory, "__qualname__", type(name_or_factory).__qualname__)
    return f"{kind} factory {qual}", name_or_factory, {}


def raised(e: BaseException, limit: int = 160) -> str:
    """``Type: message`` of an exception on one line, cut at ``limit`` characters of
    message (``(no message)`` where it has none, as a bare ``assert`` gives)."""
    text = " ".join(str(e).split()) or "(no message)"
    return f"{type(e).__name__}: {text if len(text) <= limit else text[: limit - 3] + '...'}"


def reachable_name(name: str | Entry) -> str:
    if isinstance(name, str):
        return name
    # runtime names have no distribution to qualify them with
    return name.name if name.source == "runtime" else name.qualified_name


def pick(given: bool | None, needs: Mapping[str, Any], key: str) -> bool:
    return bool(needs.get(key, False)) if given is None else given


def check_skip_names(skips: Mapping[str, str], allowed: Sequence[str]) -> None:
    for key in skips:
        if key not in allowed:
            raise TypeError(
                f"unknown check name {key!r} in skip_checks; the checks are: {', '.join(allowed)}"
            )


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    import torch

    with torch.no_grad():
        yield


def fsdp2_missing() -> str | None:
    """Why this torch cannot run the ``fsdp2`` check (no public ``fully_shard``, which
    torch 2.4 kept in ``torch.distributed._composable``); None where it can."""
    import torch
    import torch.distributed.fsdp

    if hasattr(torch.distributed.fsdp, "fully_shard"):
        return None
    return f"torch {torch.__version__} has no torch.distributed.fsdp.fully_shard (FSDP2)"
