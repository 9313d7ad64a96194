"""A catalog of its own for a test: what a plugin's test suite uses instead of optreg's privates."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optreg._core.catalog import Catalog

__all__ = ["isolated_registry"]


@contextlib.contextmanager
def isolated_registry() -> Iterator[Catalog]:
    """A fresh [optreg.Catalog][] as the process's default for the block; the one before
    it is put back after.

    Everything optreg keeps lives in a catalog: both registries (the fresh one discovers
    the installed plugins on first access), the loaded targets and load failures, the
    recorded plugin problems, the pluggy manager, and a run-time [optreg.prefer][]. So a
    test that registers a name, or installs a distribution on ``sys.path``, neither sees
    nor leaves anything behind, and threads the test starts see the same catalog::

        from optreg.testing import isolated_registry

        def test_my_name():
            with isolated_registry():
                optreg.register_optimizer("mine", Mine)
                ...

    As a pytest fixture (optreg's pytest plugin provides it):
    ``pytestmark = pytest.mark.usefixtures("isolated_registry")``.

    Yields:
        The fresh catalog.
    """
    from optreg._core.catalog import Catalog, install

    fresh = Catalog()
    previous = install(fresh)
    try:
        yield fresh
    finally:
        install(previous)
