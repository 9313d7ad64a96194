"""Thread safety: one discovery under a stampede, registration racing resolution."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
import torch
from conftest import rediscover

import optreg

if TYPE_CHECKING:
    from conftest import ScanCounter

THREADS = 16


def _stampede(fn: Callable[[int], Any], threads: int = THREADS) -> list[Any]:
    """Run ``fn(i)`` in ``threads`` threads released at the same instant; return results."""
    barrier = threading.Barrier(threads)

    def run(i: int) -> Any:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, range(threads)))  # re-raises the first exception


@pytest.mark.parametrize(
    "first_access",
    [
        pytest.param(lambda i: optreg.list_optimizers(), id="list_optimizers"),
        pytest.param(lambda i: optreg.list_schedulers(), id="list_schedulers"),
        pytest.param(lambda i: optreg.get_optimizer_cls("adamw").__name__, id="get_optimizer_cls"),
        pytest.param(lambda i: "sgd" in optreg.optimizers, id="contains"),
        pytest.param(lambda i: len(optreg.schedulers), id="len"),
        pytest.param(
            lambda i: optreg.list_optimizers() if i % 2 else optreg.list_schedulers(),
            id="mixed",
        ),
    ],
)
def test_first_access_from_16_threads_discovers_once(
    scans: ScanCounter, fresh_registry: None, first_access: Callable[[int], Any]
) -> None:
    before = scans.count
    results = _stampede(first_access)
    assert scans.count == before + 1
    # every thread saw the complete registry, not a half-discovered one
    if isinstance(results[0], list):
        expected = {tuple(optreg.list_optimizers()), tuple(optreg.list_schedulers())}
        assert {tuple(r) for r in results} <= expected
    else:
        assert len(set(results)) == 1, results
    assert "adamw" in optreg.list_optimizers()
    assert scans.count == before + 1


def test_get_optimizer_from_16_threads_on_a_cold_registry(scans: ScanCounter) -> None:
    before = scans.count

    def build(i: int) -> float:
        p = torch.nn.Parameter(torch.full((3,), float(i)))
        opt = optreg.get_optimizer("sgd", [p], lr=0.5)
        p.grad = torch.ones(3)
        opt.step()
        return float(p.detach()[0])

    results = _stampede(build)
    assert scans.count == before + 1
    assert results == [i - 0.5 for i in range(THREADS)]


def test_reset_then_stampede_discovers_once_more(scans: ScanCounter) -> None:
    _stampede(lambda i: optreg.list_optimizers())
    first = scans.count
    rediscover()
    _stampede(lambda i: optreg.list_schedulers())
    assert scans.count == first + 1


def _factory(tag: int) -> Callable[..., Any]:
    def factory(params: Any, **kwargs: Any) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, **kwargs)

    factory.__doc__ = f"factory {tag}"
    return factory


def test_register_while_others_resolve(fresh_registry: None) -> None:
    """Writers register names while readers resolve, list and build: no errors, no loss."""
    writers, per_writer = 8, 25
    builtins_before = set(optreg.list_optimizers())
    stop = threading.Event()
    barrier = threading.Barrier(writers + 8)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        barrier.wait()
        for j in range(per_writer):
            optreg.register_optimizer(f"thread_{w}_{j}", _factory(w * 1000 + j))
            optreg.register_scheduler(
                f"thread_{w}_{j}",
                lambda opt, **kw: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0),
            )

    def reader(r: int) -> None:
        barrier.wait()
        p = torch.nn.Parameter(torch.zeros(2))
        while not stop.is_set():
            names = optreg.list_optimizers()
            assert builtins_before <= set(names)
            assert names == sorted(set(names))
            opt = optreg.get_optimizer("adamw" if r % 2 else "sgd", [p], lr=0.1)
            assert isinstance(opt, torch.optim.Optimizer)
            for name in names:
                if name.startswith("thread_"):
                    # a name visible in a listing must resolve and build at once
                    assert optreg.optimizers.resolve(name).name == name
                    optreg.get_optimizer(name, [p], lr=0.1)
                    break

    def guard(fn: Callable[[int], None], i: int) -> None:
        try:
            fn(i)
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=guard, args=(writer, w)) for w in range(writers)]
    threads += [threading.Thread(target=guard, args=(reader, r)) for r in range(8)]
    for t in threads:
        t.start()
    for t in threads[:writers]:
        t.join()
    stop.set()
    for t in threads[writers:]:
        t.join()
    if errors:
        raise errors[0]

    added = {f"thread_{w}_{j}" for w in range(writers) for j in range(per_writer)}
    assert set(optreg.list_optimizers()) == builtins_before | added
    assert added <= set(optreg.list_schedulers())
    for name in sorted(added)[::per_writer]:
        tag = int(name.split("_")[1]) * 1000 + int(name.split("_")[2])
        assert optreg.optimizer_info(name).description == f"factory {tag}"


def test_concurrent_duplicate_registration_has_one_winner(fresh_registry: None) -> None:
    """16 threads register the same name: exactly one succeeds, 15 get DuplicateNameError."""
    optreg.list_optimizers()

    def register(i: int) -> str:
        try:
            optreg.register_optimizer("contested", _factory(i))
        except optreg.DuplicateNameError as e:
            return "duplicate" if "'contested'" in str(e) else f"bad message: {e}"
        return "won"

    results = _stampede(register)
    assert sorted(results).count("won") == 1
    assert results.count("duplicate") == THREADS - 1


def test_concurrent_override_keeps_a_single_entry(fresh_registry: None) -> None:
    optreg.register_optimizer("contested", _factory(-1))
    _stampede(lambda i: optreg.register_optimizer("contested", _factory(i), override=True))
    entries = [e for e in optreg.optimizers.entries() if e.name == "contested"]
    assert len(entries) == 1
    assert entries[0].description.startswith("factory ")
