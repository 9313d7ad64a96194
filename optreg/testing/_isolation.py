"""A registry of its own for a test: what a plugin's test suite uses instead of optreg's privates."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["isolated_registry"]


@contextlib.contextmanager
def isolated_registry() -> Iterator[None]:
    """Forget every discovered or run-time-registered name, before and after the block.

    Everything optreg keeps for the process is reset in one call, on entry and on exit:
    both registries (the next access rediscovers the installed plugins), the loaded
    targets and load failures, the recorded plugin problems, the pluggy manager, and a
    run-time [optreg.prefer][]. So a test that registers a name, or installs a
    distribution on ``sys.path``, neither sees nor leaves anything behind::

        from optreg.testing import isolated_registry

        def test_my_name():
            with isolated_registry():
                optreg.register_optimizer("mine", Mine)
                ...

    As a pytest fixture (optreg's pytest plugin provides it):
    ``pytestmark = pytest.mark.usefixtures("isolated_registry")``.
    """
    from optreg._plugins import discovery

    discovery.reset()
    try:
        yield
    finally:
        discovery.reset()
