"""Every public name has a docstring: the site's API reference is generated from them
(mkdocstrings), and a name without one would be an empty entry there."""

from __future__ import annotations

import contextlib
import importlib
import inspect

import pytest

#: The modules whose ``__all__`` the API reference documents.
PUBLIC = ("optreg", "optreg.params", "optreg.testing", "optreg.hookspecs")
INTEGRATIONS = ("optreg.integrations.lightning", "optreg.integrations.transformers")
#: Public names that are data, not code: documented by the module that holds them.
DATA = {
    "__version__",
    "METADATA_KEY",
    "OPTIMIZER_CHECKS",
    "SCHEDULER_CHECKS",
    "hookimpl",
    "hookspec",
}


def _names() -> list[tuple[str, str]]:
    out = []
    for module in PUBLIC:
        out += [(module, n) for n in importlib.import_module(module).__all__]
    for module in INTEGRATIONS:
        with contextlib.suppress(ImportError):  # its framework is not installed here
            out += [(module, n) for n in importlib.import_module(module).__all__]
    return out


def test_the_public_modules_have_docstrings() -> None:
    for module in (*PUBLIC, "optreg.optim"):
        assert inspect.getdoc(importlib.import_module(module)), module


@pytest.mark.parametrize(("module", "name"), _names(), ids=[f"{m}.{n}" for m, n in _names()])
def test_every_public_name_has_a_docstring(module: str, name: str) -> None:
    if name in DATA:
        return
    try:
        obj = getattr(importlib.import_module(module), name)
    except ImportError:  # built on first use from a framework not installed here
        pytest.skip(f"{module}.{name} needs its framework")
    doc = inspect.getdoc(obj)
    assert doc and doc.strip(), f"{module}.{name} has no docstring"
    if inspect.isclass(obj) and doc == inspect.getdoc(obj.__mro__[1]):
        pytest.fail(f"{module}.{name} only inherits its base class's docstring")
