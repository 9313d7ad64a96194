"""optreg.Catalog: one object owns the names and what was learnt of them; a restricted one
offers only the plugins it lists; ``with catalog:`` scopes it to the block."""

from __future__ import annotations

import threading

import pytest
import torch

import optreg
from optreg import OptregPluginWarning, UnknownNameError

pytestmark = pytest.mark.usefixtures("fresh_registry")

VETTED = ["optreg:torch_optim", "optreg:schedules"]


def test_a_restricted_catalog_offers_the_names_of_its_plugins_alone() -> None:
    with optreg.Catalog(plugins=VETTED) as vetted:
        names = optreg.list_optimizers()
        assert "adamw" in names and "sgd" in names
        assert "adafactor" not in names and "adamw_8bit" not in names
        assert "cosine" in optreg.list_schedulers()
        opt = optreg.get_optimizer("adamw", torch.nn.Linear(2, 2), lr=1e-3)
        with pytest.raises(UnknownNameError, match="'adamw_8bit'"):
            optreg.get_optimizer("adamw_8bit", torch.nn.Linear(2, 2))
    assert isinstance(opt, torch.optim.AdamW)
    assert "adafactor" in optreg.list_optimizers()  # the default catalog, after the block
    assert "optreg:torch_optim" in repr(vetted) and "discovered" in repr(vetted)


def test_an_optimizer_built_in_a_catalog_is_saved_and_loaded_outside_it() -> None:
    model = torch.nn.Linear(3, 2)
    with optreg.Catalog(plugins=VETTED):
        opt = optreg.get_optimizer("adamw", model, lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    saved = optreg.state_dict(opt)
    assert saved["optimizer"]["name"] == "optreg:adamw"
    again, scheduler = optreg.from_state_dict(saved, model)
    assert isinstance(again, torch.optim.AdamW) and scheduler is None
    assert float(again.state_dict()["state"][0]["step"]) == 1.0


def test_names_registered_in_a_catalog_stay_in_it(fresh_registry: optreg.Catalog) -> None:
    optreg.register_optimizer("outside_sgd", torch.optim.SGD)
    with optreg.Catalog(plugins=[]) as bare:
        assert optreg.list_optimizers() == []  # no plugin, not even a builtin one
        optreg.register_optimizer("inside_sgd", torch.optim.SGD)
        assert optreg.list_optimizers() == ["inside_sgd"]
        optreg.prefer("acme-one")
    assert "inside_sgd" not in optreg.list_optimizers()
    assert "outside_sgd" in optreg.list_optimizers()
    assert bare.preferred == ["acme_one"] and fresh_registry.preferred == []  # stayed in it


def test_a_catalog_entered_in_one_thread_is_not_current_in_another() -> None:
    seen: list[bool] = []
    entered, checked = threading.Event(), threading.Event()

    def other() -> None:
        entered.wait(10)
        seen.append("adafactor" in optreg.list_optimizers())
        checked.set()

    thread = threading.Thread(target=other)
    thread.start()
    with optreg.Catalog(plugins=VETTED):
        entered.set()
        checked.wait(10)
        assert "adafactor" not in optreg.list_optimizers()
    thread.join(10)
    assert seen == [True]  # the other thread kept the default catalog


def test_nested_blocks_restore_the_catalog_around_them() -> None:
    inner, outer = optreg.Catalog(plugins=[]), optreg.Catalog(plugins=VETTED)
    with outer:
        with inner:
            assert optreg.list_optimizers() == []
        assert "adamw" in optreg.list_optimizers()
        with inner:  # a catalog may be entered again, its names kept
            optreg.register_optimizer("kept", torch.optim.SGD)
        with inner:
            assert optreg.list_optimizers() == ["kept"]
    assert "adafactor" in optreg.list_optimizers()


def test_a_listed_plugin_that_matches_nothing_is_named() -> None:
    with (
        optreg.Catalog(plugins=["optreg:torch_optim", "optreg:shedules"]),
        pytest.warns(
            OptregPluginWarning,
            match=r"Catalog\(plugins=...\): 'optreg:shedules' matches no installed plugin "
            r".*did you mean 'optreg:schedules'",
        ),
    ):
        assert "adamw" in optreg.list_optimizers()


@pytest.mark.parametrize(
    ("plugins", "message"),
    [
        ("optreg:bnb", r"takes a list of plugin names, got the str 'optreg:bnb'; write plugins=\["),
        (["optreg:bnb", 3], r"takes plugin names \(non-empty str: .*got 3"),
        ([""], r"got ''"),
    ],
)
def test_plugins_that_are_not_names_are_refused(plugins: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        optreg.Catalog(plugins=plugins)  # type: ignore[arg-type]


def test_isolated_registry_is_a_fresh_catalog_put_back_after() -> None:
    from optreg.testing import isolated_registry

    optreg.register_optimizer("before", torch.optim.SGD)
    with isolated_registry() as fresh:
        assert isinstance(fresh, optreg.Catalog)
        assert "before" not in optreg.list_optimizers()
        optreg.register_optimizer("during", torch.optim.SGD)
    names = optreg.list_optimizers()
    assert "before" in names and "during" not in names
