"""Discovery against real installed distributions (``*.dist-info`` on sys.path): the scan,
the autoload controls, lazy targets, and broken plugins contained and reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
from conftest import MakeDist, ScanCounter, rediscover

import optreg
from optreg import AmbiguousNameError, OptregPluginWarning, PluginLoadError
from optreg._plugins import discovery as _discovery  # the module under test

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
    assert (info.provider, info.version, info.target) == ("acme-lion", "2.3", "acme_lion_mod:Lion")
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
    assert all(n in optreg.optimizers for n in names)
    assert dict(optreg.optimizers.items()) == dict(optreg.optimizers)
    assert len(optreg.optimizers) == len(names)


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
        ({"OPTREG_PLUGINS": "acme-one:one"}, {"one", "adamw"}),  # dist:entry-point form
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
    rediscover()
    names = set(optreg.list_optimizers())
    assert names & {"one", "two", "adamw"} == expected


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


# --------------------------------------------------------- plugin safety


# A third-party distribution with every kind of entry point. Its target module
# raises when imported, so any import of a target shows up as an error.
ACME_EPS = {
    "optreg": {"acme": "acme_hooks"},
    "optreg.optimizers": {"acme_opt": "acme_target:Opt"},
    "optreg.schedulers": {"acme_sched": "acme_target:make_schedule"},
}
ACME_MODULES = {
    "acme_hooks": """
        from optreg import hookimpl

        @hookimpl
        def optreg_add_optimizers(registry):
            registry.register("acme_lazy", "acme_target:Opt", description="lazy")
    """,
    "acme_target": """
        raise RuntimeError("acme_target must never be imported by listing")
    """,
}


def _run(script: str, site: Path, **env: str) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter (``-W error``) with ``site`` on the path."""
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith("OPTREG_") and k != "PYTHONWARNINGS"
    }
    full_env["PYTHONPATH"] = os.pathsep.join([str(site), full_env.get("PYTHONPATH", "")])
    full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


_PROBE = """
import json, os, sys
import torch
before = set(sys.modules)
import optreg
p = torch.nn.Parameter(torch.zeros(2))
opt = optreg.get_optimizer("adamw", [p], lr=0.1)
sched = optreg.get_scheduler("linear", opt, num_warmup_steps=1, num_training_steps=3)
out = {
    "optimizers": optreg.list_optimizers(),
    "schedulers": optreg.list_schedulers(),
    "problems": [str(x) for x in optreg._plugins.discovery.problems()],
    "acme": sorted(m for m in sys.modules if m.startswith("acme")),
    "optional": sorted(
        m for m in ("bitsandbytes", "matplotlib", "tqdm") if m in set(sys.modules) - before
    ),
}
# every module any installed third-party distribution names in an optreg entry point
import importlib_metadata
tops = {}
for group in ("optreg", "optreg.optimizers", "optreg.schedulers"):
    for ep in importlib_metadata.entry_points(group=group):
        dist = (ep.dist.name if ep.dist else "?").lower()
        if dist != "optreg":
            tops[ep.value.partition(":")[0].split(".")[0].strip()] = dist
out["plugin_dists"] = sorted(set(tops.values()))
out["plugin_modules"] = sorted(m for m in sys.modules if m.partition(".")[0] in tops)
site = os.environ["PYTHONPATH"].split(os.pathsep)[0]
out["from_site"] = sorted(
    name for name, m in list(sys.modules.items())
    if (getattr(m, "__file__", None) or "").startswith(site)
)
print(json.dumps(out))
"""


def test_disable_autoload_imports_no_third_party_module(make_dist: MakeDist) -> None:
    site = make_dist("acme-plugin", entry_points=ACME_EPS, modules=ACME_MODULES)
    out = _run(_PROBE, site, OPTREG_DISABLE_PLUGIN_AUTOLOAD="1")
    assert out["acme"] == []
    assert out["problems"] == []
    for name in ("acme_opt", "acme_lazy"):
        assert name not in out["optimizers"]
    assert "acme_sched" not in out["schedulers"]
    assert "adamw" in out["optimizers"]
    assert out["optional"] == []
    # no module of any third-party optreg plugin installed here (the throwaway one and
    # whatever else declares optreg entry points), nothing from the throwaway site dir
    assert "acme-plugin" in out["plugin_dists"]
    assert out["plugin_modules"] == []
    assert out["from_site"] == []


def test_autoload_control_the_same_probe_sees_the_plugin(make_dist: MakeDist) -> None:
    """Without the switch the hook module is imported (so the test above can fail),
    but the target module still is not: listing never imports a target."""
    site = make_dist("acme-plugin", entry_points=ACME_EPS, modules=ACME_MODULES)
    out = _run(_PROBE, site)
    assert out["acme"] == ["acme_hooks"]
    assert out["plugin_modules"] != []
    assert out["from_site"] == ["acme_hooks"]
    assert {"acme_opt", "acme_lazy"} <= set(out["optimizers"])
    assert "acme_sched" in out["schedulers"]
    assert out["problems"] == []


def test_block_plugins_skips_the_distribution(make_dist: MakeDist) -> None:
    site = make_dist("acme-plugin", entry_points=ACME_EPS, modules=ACME_MODULES)
    out = _run(_PROBE, site, OPTREG_BLOCK_PLUGINS="acme_plugin")
    assert out["acme"] == []
    assert "acme_opt" not in out["optimizers"]


_LISTING_PROBE = """
import contextlib, io, json, sys
import optreg
optreg.list_optimizers()  # discovery: imports the hook-plugin modules only
after_discovery = set(sys.modules)
names = optreg.list_optimizers() + optreg.list_schedulers()
for reg in (optreg.optimizers, optreg.schedulers):
    for entry in reg.entries():
        reg.status(entry)
    len(reg), list(reg), "acme_opt" in reg
    for name in reg:
        reg[name]
from optreg import cli
with contextlib.redirect_stdout(io.StringIO()) as buf:
    rc = cli.main(["list"])
print(json.dumps({
    "rc": rc,
    "listed": buf.getvalue(),
    "imported": sorted(
        m for m in set(sys.modules) - after_discovery
        if m.partition(".")[0] not in sys.stdlib_module_names
        and m not in ("optreg.cli", "optreg.__main__")
    ),
    "bnb": "bitsandbytes" in sys.modules,
    "acme": sorted(m for m in sys.modules if m.startswith("acme")),
}))
"""


def test_listing_never_imports_an_entry_point_target(make_dist: MakeDist) -> None:
    """`optreg list`, status(), iteration and lookup import no target, builtin or third-party."""
    site = make_dist("acme-plugin", entry_points=ACME_EPS, modules=ACME_MODULES)
    out = _run(_LISTING_PROBE, site)
    assert out["rc"] == 0
    assert "acme_opt" in out["listed"]
    assert "acme_lazy" in out["listed"]
    assert out["acme"] == ["acme_hooks"]
    assert out["bnb"] is False
    # the CLI may import its own helpers; no optimizer / scheduler target module
    # (reading a plugin's version parses its METADATA with importlib_metadata's helpers)
    assert [
        m for m in out["imported"] if not m.startswith(("optreg.", "importlib_metadata."))
    ] == [], out["imported"]


def test_listing_in_process_keeps_targets_unimported(make_dist: MakeDist) -> None:
    make_dist("acme-plugin", entry_points=ACME_EPS, modules=ACME_MODULES)
    assert {"acme_opt", "acme_lazy"} <= set(optreg.list_optimizers())
    entry = optreg.optimizers.resolve("acme_opt")
    assert optreg.optimizers.status(entry) == (True, None)
    assert "acme_target" not in sys.modules
    assert "acme_hooks" in sys.modules


# --------------------------------------------------------------------------- broken plugins


def test_plugin_raising_at_import_is_reported_and_contained(make_dist: MakeDist) -> None:
    make_dist(
        "broken-hooks",
        entry_points={"optreg": {"broken": "broken_hooks"}},
        modules={"broken_hooks": "raise RuntimeError('boom at import')"},
    )
    make_dist(
        "good-hooks",
        entry_points={"optreg": {"good": "good_hooks"}},
        modules={
            "good_hooks": """
                import torch
                from optreg import hookimpl

                @hookimpl
                def optreg_add_optimizers(registry):
                    registry.register("good_sgd", torch.optim.SGD)
            """
        },
    )
    problems = _discovery.problems()
    assert len(problems) == 1
    (problem,) = problems
    assert isinstance(problem, _discovery.PluginProblem)
    assert problem.dist == "broken_hooks"
    assert "broken = broken_hooks" in problem.entry_point
    assert problem.error == "RuntimeError: boom at import"
    assert "broken_hooks" in str(problem)
    assert "boom at import" in str(problem)
    # everyone else is unaffected
    p = torch.nn.Parameter(torch.ones(2))
    assert isinstance(optreg.get_optimizer("good_sgd", [p], lr=0.1), torch.optim.SGD)
    assert isinstance(optreg.get_optimizer("adamw", [p], lr=0.1), torch.optim.AdamW)


@pytest.mark.parametrize(
    ("source", "cause", "message"),
    [
        ("raise RuntimeError('boom at import')", RuntimeError, "boom at import"),
        ("import not_a_module_anywhere_xyz", ModuleNotFoundError, "not_a_module_anywhere_xyz"),
        ("def broken(:\n    pass", SyntaxError, "broken_target"),
        ("Opt = None\ndel Opt", AttributeError, "Opt"),
    ],
    ids=["raises", "missing-import", "syntax-error", "missing-attr"],
)
def test_target_failing_to_load_raises_plugin_load_error(
    make_dist: MakeDist, source: str, cause: type[BaseException], message: str
) -> None:
    make_dist(
        "broken-target",
        entry_points={"optreg.optimizers": {"boomopt": "broken_target:Opt"}},
        modules={"broken_target": source},
    )
    assert "boomopt" in optreg.list_optimizers()  # listed: nothing imported yet
    p = torch.nn.Parameter(torch.ones(2))
    for _ in range(2):  # a failure is not cached as a success; the second call fails alike
        with pytest.raises(optreg.PluginLoadError) as info:
            optreg.get_optimizer("boomopt", [p], lr=0.1)
        err = info.value
        assert isinstance(err, ImportError)
        text = str(err)
        assert "boomopt" in text
        assert "broken_target" in text  # the distribution
        assert "boomopt = broken_target:Opt" in text  # the entry point
        assert isinstance(err.__cause__, cause)
        assert message in text
    available, reason = optreg.optimizers.status(optreg.optimizers.resolve("boomopt"))
    assert available is False
    assert reason is not None
    assert "broken_target" in reason
    assert isinstance(optreg.get_optimizer("sgd", [p], lr=0.1), torch.optim.SGD)
    sys.modules.pop("broken_target", None)


def test_hook_raising_is_reported_and_other_plugins_keep_their_names(make_dist: MakeDist) -> None:
    make_dist(
        "bad-hook",
        entry_points={"optreg": {"bad": "bad_hook"}},
        modules={
            "bad_hook": """
                import torch
                from optreg import hookimpl

                @hookimpl
                def optreg_add_optimizers(registry):
                    registry.register("bad_first", torch.optim.SGD)
                    raise ValueError("hook exploded")

                @hookimpl
                def optreg_add_schedulers(registry):
                    registry.register("a:b", "x:y")  # malformed name: ValueError
            """
        },
    )
    make_dist(
        "fine-hook",
        entry_points={"optreg": {"fine": "fine_hook"}},
        modules={
            "fine_hook": """
                import torch
                from optreg import hookimpl

                @hookimpl
                def optreg_add_optimizers(registry):
                    registry.register("fine_sgd", torch.optim.SGD)
            """
        },
    )
    names = optreg.list_optimizers()
    assert "fine_sgd" in names
    assert "adamw" in names
    problems = {p.entry_point: p for p in _discovery.problems()}
    assert len(problems) == 2, problems
    add_opt = next(p for k, p in problems.items() if "optreg_add_optimizers" in k)
    add_sched = next(p for k, p in problems.items() if "optreg_add_schedulers" in k)
    assert add_opt.dist == add_sched.dist == "bad_hook"
    assert add_opt.error == "ValueError: hook exploded"
    assert add_sched.error.startswith("ValueError:")
    assert "'a:b'" in add_sched.error
    assert "linear" in optreg.list_schedulers()


def test_construction_error_propagates_unchanged_and_registry_stays_usable(
    make_dist: MakeDist,
) -> None:
    make_dist(
        "ctor-fail",
        entry_points={"optreg.optimizers": {"ctor_fail": "ctor_fail_mod:Opt"}},
        modules={
            "ctor_fail_mod": """
                calls = []

                class Opt:
                    def __init__(self, params, lr=0.1):
                        calls.append(lr)
                        raise RuntimeError(f"cannot build with lr={lr}")
            """
        },
    )
    p = torch.nn.Parameter(torch.ones(2))
    for lr in (0.1, 0.2):
        with pytest.raises(RuntimeError, match=rf"^cannot build with lr={lr}$"):
            optreg.get_optimizer("ctor_fail", [p], lr=lr)
    assert sys.modules["ctor_fail_mod"].calls == [0.1, 0.2]
    assert _discovery.problems() == []  # a caller's failed build is not a broken plugin
    assert isinstance(optreg.get_optimizer("adamw", [p], lr=0.1), torch.optim.AdamW)


NOTIFY_HOOKS = """
    from optreg import hookimpl

    @hookimpl
    def optreg_prepare_optimizer(name, param_groups, kwargs):
        raise RuntimeError("prepare failed")

    @hookimpl
    def optreg_optimizer_created(name, optimizer):
        raise RuntimeError("optimizer notification failed")

    @hookimpl
    def optreg_scheduler_created(name, scheduler):
        raise RuntimeError("scheduler notification failed")
"""


def test_notification_hooks_that_raise_warn_and_are_skipped(make_dist: MakeDist) -> None:
    make_dist(
        "noisy-plugin",
        entry_points={"optreg": {"noisy": "noisy_plugin"}},
        modules={"noisy_plugin": NOTIFY_HOOKS},
    )
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.warns(OptregPluginWarning) as record:
        opt = optreg.get_optimizer("sgd", [p], lr=0.1)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.param_groups[0]["lr"] == 0.1
    messages = [str(w.message) for w in record]
    assert len(messages) == 2, messages
    for msg, what in zip(
        messages, ("prepare failed", "optimizer notification failed"), strict=True
    ):
        assert "noisy_plugin" in msg
        assert what in msg
        assert "RuntimeError" in msg
    with pytest.warns(OptregPluginWarning, match="scheduler notification failed") as record:
        sched = optreg.get_scheduler("constant", opt)
    assert len(record) == 1
    assert sched.get_last_lr() == [0.1]
    errors = sorted(p.error for p in _discovery.problems())
    assert errors == [
        "RuntimeError: optimizer notification failed",
        "RuntimeError: prepare failed",
        "RuntimeError: scheduler notification failed",
    ]


def test_hook_using_the_public_api_during_discovery(
    scans: ScanCounter, make_dist: MakeDist
) -> None:
    """A hook that reads the registry while discovery runs must not recurse or rescan."""
    make_dist(
        "curious-plugin",
        entry_points={"optreg": {"curious": "curious_plugin"}},
        modules={
            "curious_plugin": """
                import torch
                import optreg
                from optreg import hookimpl

                seen = []

                @hookimpl
                def optreg_add_optimizers(registry):
                    seen.append(sorted(registry))
                    if "sgd" in registry:
                        registry.register("curious_sgd", torch.optim.SGD)
            """
        },
    )
    before = scans.count
    names = optreg.list_optimizers()
    assert scans.count == before + 1
    assert _discovery.problems() == []
    assert sys.modules["curious_plugin"].seen  # the hook ran once
    assert len(sys.modules["curious_plugin"].seen) == 1
    assert "adamw" in names


# ---------------------------------------------------------------- hardening (issue 15)


def test_a_plugin_calling_sys_exit_is_contained(
    make_dist: MakeDist, capsys: pytest.CaptureFixture[str]
) -> None:
    from optreg.cli import main

    make_dist(
        "acme-exit",
        entry_points={
            "optreg": {"bye": "acme_exit_hooks"},
            "optreg.optimizers": {"bye_opt": "acme_exit_target:Opt"},
        },
        modules={
            "acme_exit_hooks": "import sys\nsys.exit(3)\n",
            "acme_exit_target": "import sys\nsys.exit(4)\n",
        },
    )
    assert "adamw" in optreg.optimizers
    [problem] = _discovery.problems()
    assert problem.error == "SystemExit: 3"
    with pytest.raises(PluginLoadError, match="cannot load 'acme_exit_target:Opt': SystemExit: 4"):
        optreg.get_optimizer("bye_opt", _p())
    assert main(["check"]) == 1
    assert "BROKEN       plugin acme_exit (optreg: bye = acme_exit_hooks): SystemExit: 3" in (
        capsys.readouterr().out
    )


def test_interrupted_discovery_leaves_nothing_half_done(make_dist: MakeDist) -> None:
    make_dist(
        "acme-slow",
        entry_points={"optreg": {"slow": "acme_slow_hooks"}},
        modules={
            "acme_slow_hooks": """
                from optreg import hookimpl

                interrupt = [True]

                @hookimpl
                def optreg_add_optimizers(registry):
                    if interrupt.pop():
                        raise KeyboardInterrupt  # the user pressed Ctrl-C here
                    registry.register("slow_sgd", "torch.optim:SGD")
            """
        },
    )
    with pytest.raises(KeyboardInterrupt):
        optreg.list_optimizers()
    sys.modules["acme_slow_hooks"].interrupt.append(False)
    names = optreg.list_optimizers()  # a fresh, complete discovery
    assert "slow_sgd" in names and "adamw" in names
    assert _discovery.problems() == []


def test_a_squatting_optreg_distribution_cannot_replace_the_builtins(make_dist: MakeDist) -> None:
    """A stale checkout's or a squatter's optreg-*.dist-info declaring optreg's names:
    the builtins come from the catalogue in code, whatever metadata says."""
    make_dist(
        "optreg",
        version="9.9",
        entry_points={
            "optreg.optimizers": {"adamw": "torch.optim:SGD"},
            "optreg": {"builtin": "acme_squat_hooks"},
        },
        modules={"acme_squat_hooks": "raise RuntimeError('imported')\n"},
    )
    assert optreg.optimizers["adamw"].target == "optreg.builtin.torch_optim:adamw"
    assert isinstance(optreg.get_optimizer("adamw", _p()), torch.optim.AdamW)
    assert "acme_squat_hooks" not in sys.modules
    assert _discovery.problems() == []


@pytest.mark.parametrize(
    ("value", "disabled", "warns"),
    [("1", True, False), ("TRUE", True, False), ("yes", True, False), ("false", False, False),
     ("0", False, False), ("", False, False), ("maybe", False, True)],
)  # fmt: skip
def test_disable_autoload_values(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch, value: str, disabled: bool, warns: bool
) -> None:
    make_dist("acme-env", entry_points={"optreg.optimizers": {"env_sgd": "torch.optim:SGD"}})
    monkeypatch.setenv("OPTREG_DISABLE_PLUGIN_AUTOLOAD", value)
    rediscover()
    if warns:
        with pytest.warns(OptregPluginWarning, match="'maybe' is neither true"):
            names = optreg.list_optimizers()
    else:
        names = optreg.list_optimizers()
    assert ("env_sgd" not in names) is disabled


def test_plugin_filters_that_match_nothing_warn(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dist("acme-env", entry_points={"optreg.optimizers": {"env_sgd": "torch.optim:SGD"}})
    monkeypatch.setenv("OPTREG_PLUGINS", "acme-evn")
    rediscover()
    with pytest.warns(
        OptregPluginWarning,
        match="OPTREG_PLUGINS: 'acme_evn' matches no installed plugin .*did you mean 'acme_env'",
    ):
        assert "env_sgd" not in optreg.list_optimizers()
    monkeypatch.setenv("OPTREG_PLUGINS", "acme-env:env_sdg")  # a misspelt entry point
    rediscover()
    with pytest.warns(
        OptregPluginWarning,
        match="OPTREG_PLUGINS: 'acme_env:env_sdg' matches no installed plugin .*did you mean "
        "'acme_env:env_sgd'",
    ):
        assert "env_sgd" not in optreg.list_optimizers()
    monkeypatch.setenv("OPTREG_PLUGINS", "acme-env:env_sgd")
    rediscover()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "env_sgd" in optreg.list_optimizers()


def test_a_prepare_hook_that_raises_halfway_has_its_edits_undone(make_dist: MakeDist) -> None:
    make_dist(
        "halfway-plugin",
        entry_points={"optreg": {"halfway": "halfway_plugin"}},
        modules={
            "halfway_plugin": """
                import sys
                from optreg import hookimpl

                halfway_plugin = sys.modules[__name__]
                calls = 0

                @hookimpl
                def optreg_prepare_optimizer(name, param_groups, kwargs):
                    del param_groups[0]["params"][1:]  # keeps 1 of 4
                    param_groups.append({"params": [], "lr": 9.0})
                    kwargs["lr"] = 123.0
                    halfway_plugin.calls += 1
                    raise RuntimeError(f"half-way (call {halfway_plugin.calls})")
            """
        },
    )
    params = [torch.nn.Parameter(torch.ones(2)) for _ in range(4)]
    with pytest.warns(OptregPluginWarning, match=r"half-way \(call 1\); its changes were undone"):
        opt = optreg.get_optimizer("sgd", params, lr=0.1)
    assert len(opt.param_groups) == 1
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in params]
    assert opt.param_groups[0]["lr"] == 0.1
    for _ in range(3):  # one problem record, however many builds (each message differs)
        with pytest.warns(OptregPluginWarning):
            optreg.get_optimizer("sgd", params, lr=0.1)
    [problem] = _discovery.problems()
    assert problem.error == "RuntimeError: half-way (call 1)"


def test_muon_adamw_runs_the_prepare_hook_on_the_groups_it_makes(make_dist: MakeDist) -> None:
    if not hasattr(torch.optim, "Muon"):
        pytest.skip("torch.optim.Muon needs torch >= 2.9")
    make_dist(
        "muon-prep",
        entry_points={"optreg": {"prep": "muon_prep"}},
        modules={
            "muon_prep": """
                from optreg import hookimpl

                SEEN = []

                @hookimpl
                def optreg_prepare_optimizer(name, param_groups, kwargs):
                    SEEN.append((name, [g["optimizer"] for g in param_groups], dict(kwargs)))
                    for group in param_groups:
                        if group["optimizer"] == "adamw":
                            group["lr"] = 0.5
                    kwargs["momentum"] = 0.8
                    kwargs["adamw_betas"] = (0.8, 0.9)
            """
        },
    )
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = optreg.get_optimizer("muon_adamw", model, lr=0.02)
    import muon_prep  # type: ignore[import-not-found]

    [(name, sides, kwargs)] = muon_prep.SEEN
    assert name == "muon_adamw" and sides == ["muon", "adamw"]
    assert kwargs["lr"] == 0.02 and kwargs["adamw_lr"] is None
    assert [g["lr"] for g in opt.param_groups] == [0.02, 0.5]  # the hook's edit counts
    assert opt.muon.defaults["momentum"] == 0.8 and opt.adamw.defaults["betas"] == (0.8, 0.9)
    assert opt.hyperparameters["momentum"] == 0.8


def test_a_muon_adamw_prepare_hook_that_raises_is_undone(make_dist: MakeDist) -> None:
    if not hasattr(torch.optim, "Muon"):
        pytest.skip("torch.optim.Muon needs torch >= 2.9")
    make_dist(
        "muon-bad",
        entry_points={"optreg": {"bad": "muon_bad"}},
        modules={
            "muon_bad": """
                from optreg import hookimpl

                @hookimpl
                def optreg_prepare_optimizer(name, param_groups, kwargs):
                    param_groups.pop()
                    kwargs["lr"] = 9.0
                    raise RuntimeError("muon half-way")
            """
        },
    )
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    with pytest.warns(OptregPluginWarning, match="muon half-way; its changes were undone"):
        opt = optreg.get_optimizer("muon_adamw", model, lr=0.02)
    assert [g["optimizer"] for g in opt.param_groups] == ["muon", "adamw"]
    assert opt.defaults["lr"] == 0.02
    assert sum(len(g["params"]) for g in opt.param_groups) == 4


def test_a_listing_parses_each_distributions_metadata_once(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import collections

    import importlib_metadata

    from optreg.cli import main

    make_dist(
        "acme-meta",
        entry_points={"optreg.optimizers": {f"meta_{i}": "torch.optim:SGD" for i in range(6)}},
    )
    parses: collections.Counter[int] = collections.Counter()
    alive: list[Any] = []  # held, so that no id is reused by another distribution object
    original = importlib_metadata.Distribution.metadata

    def counting(self: Any) -> Any:
        parses[id(self)] += 1
        alive.append(self)
        return original.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(importlib_metadata.Distribution, "metadata", property(counting))
    rediscover()
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    assert main(["list", "--json"]) == 0
    assert "acme-meta 1.0" in text and '"version": "1.0"' in capsys.readouterr().out
    assert parses and max(parses.values()) == 1  # six names, two listings: one parse
