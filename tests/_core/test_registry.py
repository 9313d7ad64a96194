"""Registry: names, aliases, precedence, decorators, lazy targets."""

from __future__ import annotations

import sys

import pytest
import torch

import optreg
from optreg import (
    AmbiguousNameError,
    DuplicateNameError,
    Entry,
    MissingDependencyError,
    PluginLoadError,
    UnknownNameError,
)

pytestmark = pytest.mark.usefixtures("fresh_registry")


def test_register_and_build() -> None:
    def make(params: object, lr: float = 0.1) -> torch.optim.SGD:
        """My SGD.

        Long description.
        """
        return torch.optim.SGD(params, lr=lr)  # type: ignore[arg-type]

    entry = optreg.register_optimizer("My-SGD", make, aliases=["msgd"])
    assert entry.name == "my_sgd"
    assert entry.aliases == ("msgd",)
    assert entry.description == "My SGD."
    assert entry.source == "runtime"
    assert "my_sgd" in optreg.list_optimizers()
    assert "msgd" not in optreg.list_optimizers()  # aliases are not canonical names
    p = torch.nn.Parameter(torch.ones(2))
    opt = optreg.get_optimizer("MSGD", [p], lr=0.5)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.param_groups[0]["lr"] == 0.5
    assert optreg.optimizers["my-sgd"] is entry
    assert "msgd" in optreg.optimizers


def test_register_as_decorator() -> None:
    @optreg.register_scheduler("flat", description="flat")
    def flat(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)

    assert callable(flat)  # the decorator returns the function unchanged
    assert optreg.schedulers.resolve("flat").target is flat
    assert optreg.scheduler_info("flat").description == "flat"


def test_duplicate_needs_override() -> None:
    optreg.register_optimizer("dup", "torch.optim:SGD")
    with pytest.raises(DuplicateNameError, match=r"'dup' is already registered .*override=True"):
        optreg.register_optimizer("dup", "torch.optim:Adam")
    optreg.register_optimizer("dup", "torch.optim:Adam", override=True)
    assert optreg.optimizers.resolve("dup").target == "torch.optim:Adam"
    assert len([e for e in optreg.optimizers.entries() if e.name == "dup"]) == 1


def test_runtime_override_of_builtin_keeps_qualified_builtin() -> None:
    with pytest.raises(DuplicateNameError, match="optreg:adamw"):
        optreg.register_optimizer("adamw", "torch.optim:SGD")
    optreg.register_optimizer("adamw", "torch.optim:SGD", override=True)
    assert optreg.optimizers.resolve("adamw").source == "runtime"
    assert optreg.optimizers.resolve("optreg:adamw").source == "builtin"


def test_alias_clash_with_builtin_alias() -> None:
    with pytest.raises(DuplicateNameError, match="'adamw_torch'"):
        optreg.register_optimizer("mine", "torch.optim:SGD", aliases=["adamw-torch"])


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (42, "got int: 42"),
        ("torch.optim.SGD", "got str: 'torch.optim.SGD'"),
        ("no_colon", "'module:attr'"),
        (":SGD", "got str: ':SGD'"),
    ],
)
def test_register_rejects_bad_factory(factory: object, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        optreg.register_optimizer("bad", factory)  # type: ignore[call-overload]
    assert "bad" not in optreg.optimizers


def test_register_rejects_qualified_name() -> None:
    with pytest.raises(ValueError, match="reserved for qualified names"):
        optreg.register_optimizer("a:b", "torch.optim:SGD")


def test_unknown_name_error_is_keyerror_and_valueerror() -> None:
    with pytest.raises(UnknownNameError) as info:
        optreg.optimizers.resolve("adamww")
    err = info.value
    assert isinstance(err, KeyError)
    assert isinstance(err, ValueError)
    assert err.suggestions[0] == "adamw"
    assert str(err).startswith("unknown optimizer 'adamww'; did you mean 'adamw'")
    assert str(err).endswith("? (see `optreg list optimizers`)")


def test_unknown_without_suggestion() -> None:
    with pytest.raises(UnknownNameError, match=r"^unknown scheduler 'zzzzzz' \(see"):
        optreg.schedulers.resolve("zzzzzz")


def test_unknown_qualified_name_suggests_qualified() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'optreg:adamw'"):
        optreg.optimizers.resolve("optreg:adamww")
    with pytest.raises(UnknownNameError, match="'nodist:adamw'"):
        optreg.optimizers.resolve("nodist:adamw")


def test_mapping_protocol() -> None:
    reg = optreg.optimizers
    names = list(reg)
    assert names == sorted(names)
    assert len(reg) == len(names)
    assert "adamw" in reg
    assert "ADAMW" in reg
    assert "nope" not in reg
    assert 3 not in reg
    assert isinstance(reg["adamw"], Entry)
    with pytest.raises(KeyError):
        reg["nope"]
    assert reg.get("nope") is None


def test_unregister() -> None:
    optreg.register_optimizer("tmp", "torch.optim:SGD", aliases=["tmp2"])
    optreg.optimizers.unregister("tmp")
    assert "tmp" not in optreg.optimizers
    assert "tmp2" not in optreg.optimizers
    with pytest.raises(UnknownNameError):
        optreg.optimizers.unregister("adamw")  # builtins are not runtime entries


def test_lazy_target_import_error_is_plugin_load_error() -> None:
    optreg.register_optimizer("ghost", "optreg_no_such_module_xyz:Opt")
    available, reason = optreg.optimizers.status(optreg.optimizers.resolve("ghost"))
    assert not available
    assert reason is not None and "optreg_no_such_module_xyz" in reason
    with pytest.raises(
        PluginLoadError, match="cannot load 'optreg_no_such_module_xyz:Opt'"
    ) as info:
        optreg.get_optimizer("ghost", [torch.nn.Parameter(torch.ones(1))])
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_lazy_target_missing_attribute() -> None:
    optreg.register_optimizer("noattr", "torch.optim:NoSuchOptimizer")
    with pytest.raises(PluginLoadError, match="NoSuchOptimizer") as info:
        optreg.get_optimizer_cls("noattr")
    assert isinstance(info.value.__cause__, AttributeError)
    available, reason = optreg.optimizers.status(optreg.optimizers.resolve("noattr"))
    assert not available and reason is not None and "AttributeError" in reason


def test_requires_missing_dependency() -> None:
    with optreg.Catalog(plugins=[]):  # a catalog offering no plugin's names
        reg = optreg.optimizers
        entry = reg._add(
            Entry(
                name="needs_dep",
                kind="optimizer",
                target="torch.optim:SGD",
                requires=("optreg_absent_dep_xyz",),
                extra="absent",
                source="builtin",
                provider="optreg",
            )
        )
        assert reg.status(entry) == (
            False,
            "optimizer 'needs_dep' needs optreg_absent_dep_xyz, which is not installed; "
            'install it with: pip install "optreg[absent]"',
        )
        with pytest.raises(MissingDependencyError, match=r'pip install "optreg\[absent\]"'):
            reg.load("needs_dep")
        assert "optreg_absent_dep_xyz" not in sys.modules


def test_ambiguous_and_shadowed_entries_in_a_bare_registry() -> None:
    with optreg.Catalog(plugins=[]):  # a catalog offering no plugin's names
        reg = optreg.optimizers
        for dist in ("alpha", "beta"):
            reg._add(
                Entry(
                    name="lion",
                    kind="optimizer",
                    target="torch.optim:SGD",
                    provider=dist,
                    source="plugin",
                )
            )
        reg._add(
            Entry(
                name="adamw",
                kind="optimizer",
                target="torch.optim:AdamW",
                provider="optreg",
                source="builtin",
            )
        )
        reg._add(
            Entry(
                name="adamw",
                kind="optimizer",
                target="torch.optim:SGD",
                provider="gamma",
                source="plugin",
            )
        )
        with pytest.raises(AmbiguousNameError, match="alpha:lion, beta:lion"):
            reg.resolve("lion")
        assert reg.resolve("beta:lion").provider == "beta"
        assert reg.resolve("adamw").provider == "optreg"
        assert reg.resolve("gamma:adamw").provider == "gamma"
        shadowed, ambiguous = reg.conflicts()
        assert [(w.qualified_name, lo.qualified_name) for w, lo in shadowed] == [
            ("optreg:adamw", "gamma:adamw")
        ]
        assert [(k, [e.qualified_name for e in es]) for k, es in ambiguous] == [
            ("lion", ["alpha:lion", "beta:lion"])
        ]
        # iteration yields only what [] accepts: the ambiguous plain name is replaced by its
        # qualified names, so dict(reg) works
        assert reg.names() == ["adamw", "alpha:lion", "beta:lion"]
        assert sorted(dict(reg)) == reg.names()


def test_load_caches_factory() -> None:
    assert optreg.get_optimizer_cls("adamw") is optreg.get_optimizer_cls("optreg:adamw_torch")


def test_entry_is_frozen() -> None:
    entry = optreg.optimizers.resolve("adamw")
    with pytest.raises(AttributeError):
        entry.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        entry.metadata["x"] = 1  # type: ignore[index]


def test_runtime_entry_reachable_by_qualified_name() -> None:
    entry = optreg.register_optimizer("rt_only", "torch.optim:SGD")
    assert optreg.optimizers.resolve(entry.qualified_name) is entry
    assert optreg.optimizers.resolve("__runtime__:RT-only") is entry
