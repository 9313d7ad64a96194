"""Every ``transformers.training_args.OptimizerNames`` value resolves in optreg.

With the plugins/ adapters this env installs (optreg-schedulefree, optreg-torchao,
optreg-single-optimizers), each of the installed transformers' names reaches an entry:
a builtin, or an adapter's name; a name whose package (or hardware) is missing is listed
as unavailable, with what to install. That the adapters build what transformers builds
is checked in the plugins env, next to their packages.

The names are resolved in a catalog of optreg's builtins and those three adapters alone:
where more adapters are installed (optreg-pytorch-optimizer also offers ``lomo``), a
plain name two of them share is ambiguous by design, and a trainer that wants these
providers says so the same way.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

import optreg

transformers = pytest.importorskip("transformers")
from transformers.training_args import OptimizerNames  # noqa: E402

ADAPTERS = ("optreg_schedulefree", "optreg_torchao", "optreg_single_optimizers")
pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ADAPTERS),
    reason=f"needs the plugins/ adapters {', '.join(ADAPTERS)} installed (tox -e integrations)",
)
HARDWARE = {"adamw_torch_xla", "adamw_torch_npu_fused", "adamw_anyprecision"}


@pytest.fixture(scope="module")
def adapters_catalog() -> optreg.Catalog:
    return optreg.Catalog(plugins=["optreg", *ADAPTERS])


@pytest.fixture
def in_adapters_catalog(adapters_catalog: optreg.Catalog) -> Iterator[None]:
    with adapters_catalog:
        yield


@pytest.mark.usefixtures("in_adapters_catalog")
@pytest.mark.parametrize("name", [n.value for n in OptimizerNames])
def test_every_transformers_optimizer_name_resolves(name: str) -> None:
    entry = optreg.optimizers.resolve(name)
    assert entry.name == name or name in entry.aliases
    available, reason = optreg.optimizers.status(entry)
    if name in HARDWARE:
        assert not available and reason is not None and "install it with: " in reason
    elif not available:
        # an adapter whose package this env does not install: the reason says what to do
        assert reason is not None and "install it with: pip install" in reason, reason


def test_the_names_are_transformers_names_not_a_stale_list() -> None:
    values = {n.value for n in OptimizerNames}
    assert len(values) >= 41
    assert {"galore_adamw_layerwise", "adamw_torch_4bit", "stable_adamw", "lomo"} <= values
