"""Discovery against real installed distributions (``*.dist-info`` on sys.path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

import optreg
from optreg import AmbiguousNameError, OptregPluginWarning, PluginLoadError, _discovery

if TYPE_CHECKING:
    from conftest import MakeDist, ScanCounter

LAZY_OPT = """
import torch

class Lion(torch.optim.SGD):
    '''Lion stand-in for tests.'''
"""

HOOKS = """
from optreg import hookimpl

CALLS = []

@hookimpl
def optreg_add_optimizers(registry):
    registry.register("hooked_sgd", "torch.optim:SGD", aliases=["hsgd"],
                      description="SGD from a hook", metadata={"needs_train_eval": True})

@hookimpl
def optreg_add_schedulers(registry):
    registry.register("hooked_const", "optreg.builtin.schedules:get_constant_schedule")

@hookimpl
def optreg_prepare_optimizer(name, param_groups, kwargs):
    if name == "hooked_sgd":
        kwargs["momentum"] = 0.5

@hookimpl
def optreg_optimizer_created(name, optimizer):
    CALLS.append(("optimizer", name))

@hookimpl
def optreg_scheduler_created(name, scheduler):
    CALLS.append(("scheduler", name))
"""


def _p() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.ones(3))]


def test_lazy_entry_point_not_imported_until_used(make_dist: MakeDist) -> None:
    make_dist(
        "acme-lion",
        version="2.3",
        entry_points={"optreg.optimizers": {"lion": "acme_lion_mod:Lion"}},
        modules={"acme_lion_mod": LAZY_OPT},
    )
    assert "lion" in optreg.list_optimizers()
    entry = optreg.optimizers.resolve("lion")
    assert entry.provider == "acme_lion"
    assert entry.source == "plugin"
    assert entry.entry_point == "optreg.optimizers: lion = acme_lion_mod:Lion"
    assert optreg.optimizers.status(entry) == (True, None)
    assert "acme_lion_mod" not in sys.modules  # listing, resolving, status: no import
    opt = optreg.get_optimizer("lion", _p(), lr=0.1)
    assert "acme_lion_mod" in sys.modules
    assert type(opt).__name__ == "Lion"
    info = optreg.optimizer_info("acme-lion:lion")
    assert (info.provider, info.version, info.target) == ("acme_lion", "2.3", "acme_lion_mod:Lion")
    assert info.doc == "Lion stand-in for tests."
    assert info.required_args == ()


def test_hook_plugin(make_dist: MakeDist) -> None:
    make_dist(
        "acme-hooks",
        entry_points={"optreg": {"acme": "acme_hooks_mod"}},
        modules={"acme_hooks_mod": HOOKS},
    )
    assert "hooked_sgd" in optreg.list_optimizers()
    assert "hooked_const" in optreg.list_schedulers()
    entry = optreg.optimizers.resolve("HSGD")
    assert entry.name == "hooked_sgd"
    assert entry.provider == "acme_hooks"
    assert entry.metadata["needs_train_eval"] is True
    assert optreg.optimizer_info("hooked_sgd").metadata == {"needs_train_eval": True}
    opt = optreg.get_optimizer("hooked_sgd", _p(), lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0.5  # set by optreg_prepare_optimizer
    optreg.get_scheduler("hooked_const", opt)
    mod = sys.modules["acme_hooks_mod"]
    assert mod.CALLS == [("optimizer", "hooked_sgd"), ("scheduler", "hooked_const")]


def test_plugin_that_fails_to_import_breaks_nothing_else(make_dist: MakeDist) -> None:
    make_dist(
        "acme-broken",
        entry_points={"optreg": {"broken": "acme_broken_mod"}},
        modules={"acme_broken_mod": "raise ImportError('needs libfoo')"},
    )
    make_dist(
        "acme-lion",
        entry_points={"optreg.optimizers": {"lion": "acme_lion_mod:Lion"}},
        modules={"acme_lion_mod": LAZY_OPT},
    )
    assert "lion" in optreg.list_optimizers()
    assert "adamw" in optreg.list_optimizers()
    problems = _discovery.problems()
    assert [(p.dist, p.entry_point) for p in problems] == [
        ("acme_broken", "optreg: broken = acme_broken_mod")
    ]
    assert "needs libfoo" in problems[0].error


def test_lazy_entry_whose_module_raises(make_dist: MakeDist) -> None:
    make_dist(
        "acme-bad",
        entry_points={"optreg.optimizers": {"badopt": "acme_bad_mod:Opt"}},
        modules={"acme_bad_mod": "raise RuntimeError('boom at import')"},
    )
    with pytest.raises(PluginLoadError) as info:
        optreg.get_optimizer("badopt", _p())
    msg = str(info.value)
    assert "'acme_bad'" in msg
    assert "optreg.optimizers: badopt = acme_bad_mod:Opt" in msg
    assert "boom at import" in msg
    assert isinstance(info.value.__cause__, RuntimeError)
    assert isinstance(info.value, ImportError)
    available, reason = optreg.optimizers.status(optreg.optimizers.resolve("badopt"))
    assert not available and reason == msg
    assert optreg.get_optimizer("sgd", _p(), lr=0.1) is not None


def test_lazy_entry_with_missing_attribute(make_dist: MakeDist) -> None:
    make_dist(
        "acme-noattr",
        entry_points={"optreg.schedulers": {"sched": "acme_noattr_mod:missing"}},
        modules={"acme_noattr_mod": "x = 1"},
    )
    with pytest.raises(PluginLoadError, match="acme_noattr.*has no attribute 'missing'") as info:
        optreg.get_scheduler("sched", optreg.get_optimizer("sgd", _p(), lr=0.1))
    assert isinstance(info.value.__cause__, AttributeError)


def test_hook_that_raises_loses_only_its_names(make_dist: MakeDist) -> None:
    make_dist(
        "acme-raises",
        entry_points={"optreg": {"r": "acme_raises_mod"}},
        modules={
            "acme_raises_mod": """
            from optreg import hookimpl
            @hookimpl
            def optreg_add_optimizers(registry):
                raise RuntimeError("hook exploded")
            """
        },
    )
    make_dist(
        "acme-hooks",
        entry_points={"optreg": {"a": "acme_hooks_mod"}},
        modules={"acme_hooks_mod": HOOKS},
    )
    assert "hooked_sgd" in optreg.list_optimizers()
    assert [p.entry_point for p in _discovery.problems()] == [
        "acme_raises:r optreg_add_optimizers()"
    ]
    assert "hook exploded" in _discovery.problems()[0].error


def test_notification_hook_that_raises_warns(make_dist: MakeDist) -> None:
    make_dist(
        "acme-noisy",
        entry_points={"optreg": {"n": "acme_noisy_mod"}},
        modules={
            "acme_noisy_mod": """
            from optreg import hookimpl
            @hookimpl
            def optreg_optimizer_created(name, optimizer):
                raise ValueError("noisy")
            """
        },
    )
    with pytest.warns(OptregPluginWarning, match=r"'acme_noisy:n'.*acme_noisy.*noisy"):
        opt = optreg.get_optimizer("sgd", _p(), lr=0.1)
    assert isinstance(opt, torch.optim.SGD)


def test_two_third_parties_same_name_is_ambiguous(make_dist: MakeDist) -> None:
    for dist in ("acme-one", "acme-two"):
        make_dist(dist, entry_points={"optreg.optimizers": {"lion": "torch.optim:SGD"}})
    with pytest.raises(AmbiguousNameError, match="acme_one:lion, acme_two:lion"):
        optreg.get_optimizer("lion", _p(), lr=0.1)
    assert optreg.get_optimizer("acme-two:lion", _p(), lr=0.1) is not None
    # listing names only what resolves: the qualified names, never the ambiguous plain one
    names = optreg.list_optimizers()
    assert "lion" not in names
    assert {"acme_one:lion", "acme_two:lion"} <= set(names)
    assert all(optreg.optimizers[n] for n in names)
    assert dict(optreg.optimizers)["acme_two:lion"].provider == "acme_two"


def test_third_party_cannot_shadow_builtin(make_dist: MakeDist) -> None:
    make_dist("acme-shadow", entry_points={"optreg.optimizers": {"ADAMW": "torch.optim:SGD"}})
    assert isinstance(optreg.get_optimizer("adamw", _p()), torch.optim.AdamW)
    assert isinstance(optreg.get_optimizer("acme_shadow:adamw", _p(), lr=0.1), torch.optim.SGD)
    shadowed, ambiguous = optreg.optimizers.conflicts()
    assert [(w.qualified_name, lo.qualified_name) for w, lo in shadowed] == [
        ("optreg:adamw", "acme_shadow:adamw")
    ]
    assert ambiguous == []


def test_same_dist_duplicate_is_a_problem(make_dist: MakeDist) -> None:
    make_dist(
        "acme-dup",
        entry_points={"optreg.optimizers": {"x": "torch.optim:SGD", "X": "torch.optim:Adam"}},
    )
    assert optreg.optimizers.resolve("x").target == "torch.optim:SGD"
    assert "already registered" in _discovery.problems()[0].error


def _two_plugins(make_dist: MakeDist) -> None:
    make_dist("acme-one", entry_points={"optreg.optimizers": {"one": "torch.optim:SGD"}})
    make_dist("acme-two", entry_points={"optreg.optimizers": {"two": "torch.optim:SGD"}})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {"one", "two", "adamw"}),
        ({"OPTREG_DISABLE_PLUGIN_AUTOLOAD": "1"}, {"adamw"}),
        ({"OPTREG_DISABLE_PLUGIN_AUTOLOAD": "0"}, {"one", "two", "adamw"}),
        ({"OPTREG_PLUGINS": "acme-two"}, {"two", "adamw"}),
        ({"OPTREG_PLUGINS": "ACME_one, acme.two"}, {"one", "two", "adamw"}),
        ({"OPTREG_BLOCK_PLUGINS": "acme-one"}, {"two", "adamw"}),
        (
            {"OPTREG_PLUGINS": "acme-one,acme-two", "OPTREG_BLOCK_PLUGINS": "acme-two"},
            {"one", "adamw"},
        ),
        ({"OPTREG_BLOCK_PLUGINS": "optreg:torch_optim"}, {"one", "two"}),
        ({"OPTREG_BLOCK_PLUGINS": "optreg"}, {"one", "two"}),
    ],
)
def test_autoload_controls(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: set[str]
) -> None:
    _two_plugins(make_dist)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    _discovery.reset()
    names = set(optreg.list_optimizers())
    assert names & {"one", "two", "adamw"} == expected


def test_disable_autoload_imports_no_third_party_module(make_dist: MakeDist) -> None:
    site = make_dist(
        "acme-hooks",
        entry_points={"optreg": {"a": "acme_hooks_mod"}},
        modules={"acme_hooks_mod": HOOKS},
    )
    code = (
        "import json, sys, optreg; names = optreg.list_optimizers(); "
        "print(json.dumps(['acme_hooks_mod' in sys.modules, 'hooked_sgd' in names]))"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "OPTREG_DISABLE_PLUGIN_AUTOLOAD": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == [False, False]
    env.pop("OPTREG_DISABLE_PLUGIN_AUTOLOAD")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == [True, True]


def test_discovery_runs_once_across_threads(scans: ScanCounter) -> None:
    before = scans.count
    barrier = threading.Barrier(16)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(optreg.list_optimizers())
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert scans.count == before + 1
    assert len(results) == 16 and all(r == results[0] for r in results)


def test_builtins_come_from_optreg_entry_points(fresh_registry: None) -> None:
    entry = optreg.optimizers.resolve("adamw")
    assert entry.source == "builtin"
    assert entry.provider == "optreg"
    assert entry.entry_point is not None and entry.entry_point.startswith("optreg: ")
    assert Path(optreg.__file__).parent.name == "optreg"
