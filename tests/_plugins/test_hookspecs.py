"""optreg.hookspecs: the plugin contract, called through pluggy's own machinery."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import torch

import optreg
from optreg import hookspecs
from optreg._plugins import discovery as _discovery  # the hooks' caller, its problems
from optreg.cli import main

if TYPE_CHECKING:
    from conftest import MakeDist

ORDER_PLUGIN = """
import acme_log
from optreg import PluginRegistry, hookimpl

@hookimpl{marker}
def optreg_add_optimizers(registry):
    assert isinstance(registry, PluginRegistry), type(registry)
    acme_log.calls.append(("{name}", registry.provider))
    registry.register("{name}_sgd", "torch.optim:SGD")
"""
LOG = {"acme_log": "calls = []"}


def test_plugin_registry_is_public_and_what_hooks_receive(make_dist: MakeDist) -> None:
    assert optreg.PluginRegistry is hookspecs.PluginRegistry
    assert "PluginRegistry" in optreg.__all__
    make_dist(
        "acme-order",
        entry_points={"optreg": {"one": "acme_one_hooks"}},
        modules={"acme_one_hooks": ORDER_PLUGIN.format(marker="", name="one"), **LOG},
    )
    assert optreg.optimizers["one_sgd"].provider == "acme_order"
    import acme_log  # type: ignore[import-not-found]

    assert acme_log.calls == [("one", "acme_order")]


def test_call_order_is_pluggys(make_dist: MakeDist) -> None:
    """Plugins are called in pluggy's order: tryfirst first, trylast last, else the last
    registered first."""
    make_dist(
        "acme-a",
        entry_points={"optreg": {"a": "acme_a_hooks"}},
        modules={"acme_a_hooks": ORDER_PLUGIN.format(marker="(trylast=True)", name="a"), **LOG},
    )
    for name, marker in (("b", ""), ("c", ""), ("d", "(tryfirst=True)")):
        make_dist(
            f"acme-{name}",
            entry_points={"optreg": {name: f"acme_{name}_hooks"}},
            modules={f"acme_{name}_hooks": ORDER_PLUGIN.format(marker=marker, name=name)},
        )
    optreg.list_optimizers()
    import acme_log  # type: ignore[import-not-found]

    called = [name for name, _ in acme_log.calls]
    pm = _discovery.plugin_manager()
    pluggy_order = [
        impl.plugin_name.partition(":")[2]
        for impl in reversed(pm.hook.optreg_add_optimizers.get_hookimpls())
        if impl.plugin_name.startswith("acme")
    ]
    assert called == pluggy_order
    assert called[0] == "d" and called[-1] == "a"
    assert {"a_sgd", "b_sgd", "c_sgd", "d_sgd"} <= set(optreg.list_optimizers())


WRAPPER_PLUGIN = """
from optreg import hookimpl

events = []

@hookimpl(wrapper=True)
def optreg_add_optimizers(registry):
    events.append("before")
    registry.register("wrapped_sgd", "torch.optim:SGD")
    result = yield
    events.append("after")
    return result

@hookimpl(wrapper=True)
def optreg_optimizer_created(name, optimizer):
    events.append(f"created {name}")
    return (yield)
"""


def test_wrapper_implementations_run(make_dist: MakeDist) -> None:
    """A ``wrapper=True`` hook is a generator: pluggy runs it around the call (it is not
    called as a plain function whose generator nobody runs)."""
    make_dist(
        "acme-wrap",
        entry_points={"optreg": {"w": "acme_wrap_hooks"}},
        modules={"acme_wrap_hooks": WRAPPER_PLUGIN},
    )
    import torch

    assert "wrapped_sgd" in optreg.optimizers
    optreg.get_optimizer("wrapped_sgd", [torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    import acme_wrap_hooks  # type: ignore[import-not-found]

    assert acme_wrap_hooks.events == ["before", "after", "created wrapped_sgd"]
    assert _discovery.problems() == []


TYPO_PLUGIN = """
from optreg import hookimpl

@hookimpl
def optreg_add_optimiser(registry):
    registry.register("typo_sgd", "torch.optim:SGD")
"""


def test_unknown_hook_is_a_plugin_problem(
    make_dist: MakeDist, capsys: pytest.CaptureFixture[str]
) -> None:
    """pluggy's check_pending(): a misspelled hook is reported, not silently ignored."""
    make_dist(
        "acme-typo",
        entry_points={"optreg": {"t": "acme_typo_hooks"}},
        modules={"acme_typo_hooks": TYPO_PLUGIN},
    )
    problems = _discovery.problems()
    assert len(problems) == 1
    assert problems[0].dist == "acme_typo"
    assert "optreg_add_optimiser" in problems[0].error
    assert "acme_typo:t" in str(problems[0])
    assert "typo_sgd" not in optreg.optimizers
    assert "adamw" in optreg.optimizers  # the others are unaffected
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "BROKEN" in out and "optreg_add_optimiser" in out


def test_a_raising_add_hook_loses_only_its_plugins_names(make_dist: MakeDist) -> None:
    make_dist(
        "acme-bad",
        entry_points={"optreg": {"bad": "acme_bad_hooks"}},
        modules={
            "acme_bad_hooks": """
                from optreg import hookimpl

                @hookimpl
                def optreg_add_optimizers(registry):
                    registry.register("half_sgd", "torch.optim:SGD")
                    raise RuntimeError("boom")
            """
        },
    )
    make_dist(
        "acme-good",
        entry_points={"optreg": {"good": "acme_good_hooks"}},
        modules={"acme_good_hooks": ORDER_PLUGIN.format(marker="", name="good"), **LOG},
    )
    assert "good_sgd" in optreg.optimizers
    [problem] = _discovery.problems()
    assert problem.dist == "acme_bad" and "RuntimeError: boom" in problem.error


# ---------------------------------------------------------------- hardening (issue 15)


def test_a_read_only_prepare_hook_cannot_exhaust_group_generators(make_dist: MakeDist) -> None:
    make_dist(
        "acme-count",
        entry_points={"optreg": {"count": "acme_count_hooks"}},
        modules={
            "acme_count_hooks": """
                from optreg import hookimpl

                seen = []

                @hookimpl
                def optreg_prepare_optimizer(name, param_groups, kwargs):
                    seen.append(sum(len(list(g["params"])) for g in param_groups))
            """
        },
    )
    import torch

    model = torch.nn.Linear(3, 2)
    opt = optreg.get_optimizer("sgd", [{"params": model.parameters()}], lr=0.1)
    import acme_count_hooks  # type: ignore[import-not-found]

    assert acme_count_hooks.seen == [2]
    assert len(opt.param_groups[0]["params"]) == 2  # the torch idiom keeps both


def test_a_hook_that_raises_halfway_keeps_none_of_its_names(make_dist: MakeDist) -> None:
    make_dist(
        "acme-half",
        entry_points={"optreg": {"half": "acme_half_hooks"}},
        modules={
            "acme_half_hooks": """
                from optreg import hookimpl

                @hookimpl
                def optreg_add_optimizers(registry):
                    registry.register("half_one", "torch.optim:SGD")
                    registry.register("half_two", "torch.optim:SGD")
                    raise RuntimeError("stopped halfway")
            """
        },
    )
    names = optreg.list_optimizers()
    assert "half_one" not in names and "half_two" not in names
    [problem] = _discovery.problems()
    assert "RuntimeError: stopped halfway" in problem.error


def test_runtime_registration_at_plugin_import_follows_the_one_rule(make_dist: MakeDist) -> None:
    """register_optimizer("adafactor") from a plugin module raises DuplicateNameError
    as it does after discovery: the builtins are registered before any plugin runs."""
    make_dist(
        "acme-grab",
        entry_points={"optreg": {"grab": "acme_grab_hooks"}},
        modules={
            "acme_grab_hooks": """
                import torch
                import optreg

                optreg.register_optimizer("adafactor", torch.optim.SGD)
            """
        },
    )
    assert optreg.optimizers["adafactor"].provider == "optreg"
    [problem] = _discovery.problems()
    assert problem.dist == "acme_grab"
    assert "DuplicateNameError: optimizer name 'adafactor' is already registered" in problem.error


@pytest.mark.usefixtures("fresh_registry")
def test_a_plugin_registered_later_through_the_plugin_manager_is_called() -> None:
    """The per-plugin hook callers are cached; a plugin added after discovery (through
    optreg's PluginManager) is called from the next build on, and one removed no more."""
    seen: list[str] = []

    class Late:
        @optreg.hookimpl
        def optreg_optimizer_created(self, name: str, optimizer: Any) -> None:
            seen.append(name)

    params = [torch.nn.Parameter(torch.zeros(2))]
    optreg.get_optimizer("sgd", params, lr=0.1)  # the callers are cached here
    pm = _discovery.plugin_manager()
    late = Late()
    pm.register(late, name="late")
    try:
        optreg.get_optimizer("sgd", params, lr=0.1)
        assert seen == ["sgd"]
    finally:
        pm.unregister(late)
    optreg.get_optimizer("sgd", params, lr=0.1)
    assert seen == ["sgd"]


PREPARE_AND_ROUTE = """
import torch
from optreg import FactoryContract, hookimpl

seen = []


@hookimpl
def optreg_prepare_optimizer(name, param_groups, kwargs):
    seen.append(name)


@hookimpl
def optreg_add_optimizers(registry):
    registry.register("routes_alone", "acme_prep:routes_alone")
    registry.register("routes_with_hook", "acme_prep:routes_with_hook")


def routes_alone(params, lr=0.1, no_decay=None, overrides=None):
    return torch.optim.SGD(list(params), lr=lr)


def routes_with_hook(params, lr=0.1, no_decay=None, overrides=None, optreg_prepare=None):
    groups = [{"params": list(params), "optimizer": "only"}]
    optreg_prepare(groups, {"lr": lr})
    return torch.optim.SGD(groups, lr=lr)


routes_alone.optreg_contract = FactoryContract(routes_params=True)
routes_with_hook.optreg_contract = FactoryContract(routes_params=True)
"""


def test_a_routing_factory_that_cannot_run_the_prepare_hook_says_so(make_dist: MakeDist) -> None:
    make_dist(
        "acme-prep",
        entry_points={"optreg": {"prep": "acme_prep"}},
        modules={"acme_prep": PREPARE_AND_ROUTE},
    )
    params = [torch.nn.Parameter(torch.zeros(2))]
    optreg.get_optimizer("routes_with_hook", params)  # runs the hook: no warning
    import acme_prep  # type: ignore[import-not-found]

    assert acme_prep.seen == ["routes_with_hook"]
    with pytest.warns(
        optreg.OptregPluginWarning,
        match=r"optimizer 'routes_alone' \(acme_prep:routes_alone\) splits the parameters "
        r"itself and takes no optreg_prepare, so the optreg_prepare_optimizer hooks of "
        r"acme_prep:prep did not run for it; its provider \(acme_prep\) can accept",
    ):
        optreg.get_optimizer("routes_alone", params)
    assert acme_prep.seen == ["routes_with_hook"]


SIDED = """
import torch
import optreg
from optreg import FactoryContract, Sides, hookimpl

seen = []


@hookimpl
def optreg_prepare_optimizer(name, param_groups, kwargs):
    seen.append((name, [g["kind"] for g in param_groups]))
    for g in param_groups:
        if g["kind"] == "vector":
            g["lr"] = 0.5  # the hook's edit


@hookimpl
def optreg_add_optimizers(registry):
    registry.register("sided", "acme_sided:sided")


def route(params, forced, hyperparameters):
    named = list(params.named_parameters())
    return {**{n: "matrix" if p.ndim == 2 else "vector" for n, p in named}, **forced}, named


SIDES = Sides(key="kind", values={"matrix": "matrix", "vector": "vector"}, route=route)
received = []


def sided(params, lr=0.1, weight_decay=0.0):
    received.append([dict(g, params=len(g["params"])) for g in params])
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)


sided.optreg_contract = FactoryContract(sides=SIDES)
"""


def test_optreg_routes_a_composite_that_declares_its_sides_and_runs_the_hook_there(
    make_dist: MakeDist,
) -> None:
    """A factory declaring Sides (and not routes_params) receives the groups optreg made:
    routed, grouped and tagged, after the prepare hook ran on them and edited them."""
    make_dist(
        "acme-sided",
        entry_points={"optreg": {"sided": "acme_sided"}},
        modules={"acme_sided": SIDED},
    )
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))
    opt = optreg.get_optimizer(
        "sided", model, weight_decay=0.1, rules=[{"match": "1.weight", "kind": "matrix"}]
    )
    import acme_sided  # type: ignore[import-not-found]

    assert acme_sided.seen == [("sided", ["matrix", "matrix", "vector"])]
    assert acme_sided.received == [
        [
            {"params": 1, "kind": "matrix"},  # 0.weight: decays
            {"params": 1, "weight_decay": 0.0, "kind": "matrix"},  # 1.weight, by the rule
            {"params": 2, "weight_decay": 0.0, "lr": 0.5, "kind": "vector"},  # the hook's lr
        ]
    ]
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.1, 0.5]
