"""The conformance kit's pytest plugin (the ``pytest11`` entry point): imports nothing heavy.

``--optreg-conformance`` adds one test item per installed name; torch, the registry and
the checks are imported only when such an item runs.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

try:
    import pytest
except ImportError:  # pragma: no cover - pytest is in optreg[test]
    pytest = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Iterator

    from optreg._core.entry import Entry

__all__ = ["isolated_registry", "pytest_addoption", "pytest_collection_modifyitems"]


# --------------------------------------------------------------------------
# the pytest plugin
# --------------------------------------------------------------------------
def _wanted(config: Any) -> bool:
    return bool(
        config.getoption("optreg_conformance")
        or config.getoption("optreg_names")
        or config.getoption("optreg_provider")
    )


def _split(raw: str | None) -> list[str]:
    return [x.strip() for x in (raw or "").split(",") if x.strip()]


def _selected_entries(config: Any) -> list[Entry]:
    from optreg._core.entry import normalize_dist
    from optreg._core.errors import OptregError, close_matches
    from optreg._core.registry import optimizers, schedulers

    names = _split(config.getoption("optreg_names"))
    providers = {normalize_dist(p) for p in _split(config.getoption("optreg_provider"))}
    entries: list[Entry] = []
    if names:
        for name in names:
            found = []
            errors = []
            for registry in (optimizers, schedulers):
                try:
                    found.append(registry.resolve(name))
                except (OptregError, KeyError, ValueError) as e:
                    errors.append(str(e))
            if not found:
                raise pytest.UsageError(f"--optreg-names: {name!r}: " + "; ".join(errors))
            entries.extend(found)
    else:
        entries = [*optimizers.entries(), *schedulers.entries()]
    if providers:
        known = {e.provider for e in entries}
        for provider in sorted(providers - known):
            hint = close_matches(provider, sorted(known), n=1)
            raise pytest.UsageError(
                f"--optreg-provider: no installed distribution {provider!r} provides an "
                "optimizer or scheduler"
                + (f"; did you mean {hint[0].replace('_', '-')!r}?" if hint else "")
                + f" (providers: {', '.join(sorted(known))})"
            )
        entries = [e for e in entries if e.provider in providers]
    unique = {(e.kind, e.qualified_name): e for e in entries}
    return [unique[k] for k in sorted(unique)]


if pytest is not None:

    def pytest_addoption(parser: pytest.Parser) -> None:
        """Add the ``--optreg-*`` options."""
        group = parser.getgroup("optreg", "optreg conformance checks (optreg.testing)")
        group.addoption(
            "--optreg-conformance",
            action="store_true",
            default=False,
            help="add a conformance test for every installed optimizer and scheduler name",
        )
        group.addoption(
            "--optreg-names",
            default=None,
            metavar="NAMES",
            help="comma-separated names (plain or DIST:name) to check; implies "
            "--optreg-conformance",
        )
        group.addoption(
            "--optreg-provider",
            default=None,
            metavar="DISTS",
            help="check only names provided by these comma-separated distributions; "
            "implies --optreg-conformance",
        )

    class ConformanceItem(pytest.Item):
        """One conformance test: every check of one optimizer or scheduler entry."""

        def __init__(self, *, entry: Entry, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.entry = entry

        def runtest(self) -> None:
            """Skip unavailable or opted-out names; otherwise run the checks."""
            from optreg import testing
            from optreg._core.registry import optimizers, schedulers

            entry = self.entry
            registry = optimizers if entry.kind == "optimizer" else schedulers
            available, reason = registry.status(entry)
            if not available:
                pytest.skip(f"{entry.qualified_name} unavailable: {reason}")
            needs = testing.needs(entry)
            if needs.get("skip"):
                pytest.skip(f"{entry.qualified_name}: {needs['skip']}")
            # a warning (e.g. "paged optimizers fall back on CPU") is reported in
            # pytest's warnings summary, not turned into a failure by -W error
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                if entry.kind == "optimizer":
                    testing.check_optimizer(entry)
                else:
                    testing.check_scheduler(entry)

        def repr_failure(self, excinfo: Any, style: Any = None) -> Any:
            """Show the contract violation's message without a traceback."""
            if isinstance(excinfo.value, AssertionError):
                return str(excinfo.value)
            return super().repr_failure(excinfo, style=style)

        def reportinfo(self) -> tuple[Any, int | None, str]:
            """Where the test comes from, for pytest's report."""
            return (
                self.path,
                None,
                f"optreg conformance: {self.entry.kind} {self.entry.qualified_name}",
            )

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Append one conformance item per selected entry when asked to."""
        if not _wanted(config):
            return
        for entry in _selected_entries(config):
            test_name = f"{entry.kind}[{entry.qualified_name}]"
            items.append(
                ConformanceItem.from_parent(
                    session,
                    name=test_name,
                    nodeid=f"optreg-conformance::{test_name}",
                    entry=entry,
                )
            )


if pytest is not None:

    @pytest.fixture
    def isolated_registry() -> Iterator[None]:
        """A registry of the test's own (see `optreg.testing.isolated_registry()`):
        ``pytestmark = pytest.mark.usefixtures("isolated_registry")``."""
        from optreg.testing._isolation import isolated_registry as isolated

        with isolated():
            yield
