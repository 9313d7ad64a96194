"""Entry-point discovery and the pluggy PluginManager.

The first registry access calls :func:`ensure_discovered`, which, once per process
and under :data:`optreg._registry.LOCK`:

* scans installed distributions a single time (``importlib_metadata.entry_points()``);
* adds every ``optreg.optimizers`` / ``optreg.schedulers`` entry point as a lazy
  ``"module:attr"`` entry (its module is not imported);
* imports the modules of the ``optreg`` group, registers them with pluggy and calls
  their ``optreg_add_optimizers`` / ``optreg_add_schedulers`` hooks one plugin at a
  time, so that a broken plugin only loses its own names.

Autoload controls, read at discovery time (like pytest's):

* ``OPTREG_DISABLE_PLUGIN_AUTOLOAD=1``: builtins only;
* ``OPTREG_PLUGINS=dist1,dist2``: builtins plus just these distributions;
* ``OPTREG_BLOCK_PLUGINS=dist1,dist2:entry``: skip these distributions, or single
  entry points given as ``dist:entry-point-name`` (builtins can be blocked too).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from optreg._errors import OptregError
from optreg._registry import (
    BUILTIN_DIST,
    LOCK,
    Entry,
    Registry,
    normalize_dist,
    normalize_name,
)

if TYPE_CHECKING:
    import pluggy

__all__ = [
    "OptregPluginWarning",
    "PluginProblem",
    "ensure_discovered",
    "optimizers",
    "plugin_manager",
    "problems",
    "reset",
]

GROUP_OPTIMIZERS = "optreg.optimizers"
GROUP_SCHEDULERS = "optreg.schedulers"
GROUP_HOOKS = "optreg"
GROUPS = (GROUP_OPTIMIZERS, GROUP_SCHEDULERS, GROUP_HOOKS)


class OptregPluginWarning(UserWarning):
    """A plugin misbehaved; optreg contained it and carried on."""


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that failed during discovery or in a hook."""

    dist: str
    entry_point: str
    error: str

    def __str__(self) -> str:
        return f"{self.dist} ({self.entry_point}): {self.error}"


class _State:
    discovered = False
    pm: pluggy.PluginManager | None = None
    problems: ClassVar[list[PluginProblem]] = []
    #: hook-plugin name -> distribution name
    plugin_dists: ClassVar[dict[str, str]] = {}
    discoveries = 0  # how many scans ran (tests assert it is one)
    discovering = False  # set while _discover() runs (re-entrant calls return early)


def ensure_discovered() -> None:
    """Run discovery once per process (thread-safe, cached).

    A hook that reads the registry during discovery (same thread, re-entering the
    lock) sees the names registered so far instead of starting a nested scan.
    """
    if _State.discovered:
        return
    with LOCK:
        if _State.discovered or _State.discovering:
            return
        _State.discovering = True
        try:
            _discover()
            _State.discovered = True
        finally:
            _State.discovering = False


optimizers = Registry("optimizer", ensure_discovered)
schedulers = Registry("scheduler", ensure_discovered)


def reset() -> None:
    """Forget everything discovered or registered; the next access rescans."""
    with LOCK:
        optimizers._clear()
        schedulers._clear()
        _State.discovered = False
        _State.pm = None
        _State.problems = []
        _State.plugin_dists = {}


def problems() -> list[PluginProblem]:
    """Plugins that failed to load or whose hooks raised."""
    ensure_discovered()
    return list(_State.problems)


def plugin_manager() -> pluggy.PluginManager:
    """The pluggy PluginManager holding every hook plugin (after discovery)."""
    ensure_discovered()
    if _State.pm is None:  # pragma: no cover - set by _discover
        raise OptregError("plugin discovery did not complete")
    return _State.pm


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None or not raw.strip():
        return None
    return {normalize_dist(x) if ":" not in x else _norm_ep(x) for x in raw.split(",") if x.strip()}


def _norm_ep(spec: str) -> str:
    dist, _, ep = spec.partition(":")
    return f"{normalize_dist(dist)}:{ep.strip().lower().replace('-', '_')}"


def _dist_name(dist: Any) -> str:
    # PathDistribution knows its normalised name from the directory name, which
    # avoids parsing METADATA for every distribution (the slow part of a scan).
    name = getattr(dist, "_normalized_name", None) or getattr(dist, "name", None) or "unknown"
    return normalize_dist(str(name))


class _Filter:
    """The autoload controls, read from the environment once per discovery."""

    def __init__(self) -> None:
        self.block = _env_list("OPTREG_BLOCK_PLUGINS") or set()
        self.only = _env_list("OPTREG_PLUGINS")
        flag = os.environ.get("OPTREG_DISABLE_PLUGIN_AUTOLOAD", "").strip()
        self.disabled = flag not in ("", "0")

    def allowed(self, dist: str, ep_name: str) -> bool:
        if dist in self.block or (self.block and _norm_ep(f"{dist}:{ep_name}") in self.block):
            return False
        if dist == BUILTIN_DIST:
            return True
        if self.disabled:
            return False
        return self.only is None or dist in self.only


def _discover() -> None:
    import importlib_metadata
    import pluggy

    from optreg import hookspecs

    _State.discoveries += 1
    pm = pluggy.PluginManager("optreg")
    pm.add_hookspecs(hookspecs)
    _State.pm = pm
    registries = {GROUP_OPTIMIZERS: optimizers, GROUP_SCHEDULERS: schedulers}
    eps = importlib_metadata.entry_points()
    allow = _Filter()
    dist_names: dict[int, str] = {}
    hook_dists: dict[str, Any] = {}  # hook-plugin name -> its Distribution
    # one pass over the scan (EntryPoints.select would walk it once per group)
    for ep in sorted(
        (ep for ep in eps if ep.group in GROUPS), key=lambda ep: GROUPS.index(ep.group)
    ):
        group = ep.group
        dist = ep.dist
        key = id(dist)
        dist_name = dist_names.get(key)
        if dist_name is None:
            dist_name = dist_names[key] = _dist_name(dist) if dist is not None else "unknown"
        if not allow.allowed(dist_name, ep.name):
            continue
        where = f"{group}: {ep.name} = {ep.value}"
        if group == GROUP_HOOKS:
            try:
                module = ep.load()
                pm.register(module, name=f"{dist_name}:{ep.name}")
            except Exception as e:
                _problem(dist_name, where, e)
                continue
            _State.plugin_dists[f"{dist_name}:{ep.name}"] = dist_name
            hook_dists[f"{dist_name}:{ep.name}"] = dist
            continue
        try:
            registries[group]._add(
                Entry(
                    name=normalize_name(ep.name),
                    kind=registries[group].kind,
                    target=ep.value.strip(),
                    provider=dist_name,
                    source="builtin" if dist_name == BUILTIN_DIST else "plugin",
                    entry_point=where,
                    dist=dist,
                )
            )
        except Exception as e:
            _problem(dist_name, where, e)
    for hookname, registry in (
        ("optreg_add_optimizers", optimizers),
        ("optreg_add_schedulers", schedulers),
    ):
        caller = getattr(pm.hook, hookname)
        for impl in caller.get_hookimpls():
            dist_name = _State.plugin_dists.get(impl.plugin_name, "unknown")
            view = PluginRegistry(
                registry, dist_name, hook_dists.get(impl.plugin_name), impl.plugin_name
            )
            try:
                impl.function(**{a: view for a in impl.argnames})
            except Exception as e:
                _problem(dist_name, f"{impl.plugin_name} {hookname}()", e)


def _problem(dist: str, where: str, error: BaseException) -> None:
    problem = PluginProblem(dist, where, f"{type(error).__name__}: {error}")
    _State.problems.append(problem)


class PluginRegistry:
    """What a hook plugin's ``optreg_add_*`` receives: a registry bound to its distribution.

    ``register(name, target, ...)`` adds an entry provided by the plugin's
    distribution; a ``"module:attr"`` target is imported only when the name is used.
    """

    def __init__(self, registry: Registry, dist_name: str, dist: Any, plugin: str) -> None:
        self._registry = registry
        self._dist_name = dist_name
        self._dist = dist
        self._plugin = plugin
        self.kind = registry.kind

    def register(
        self,
        name: str,
        target: Callable[..., Any] | str,
        *,
        aliases: tuple[str, ...] | list[str] = (),
        description: str = "",
        requires: tuple[str, ...] | list[str] = (),
        extra: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Entry:
        """Register a name for this plugin's distribution.

        Args:
            name: plain name (normalised).
            target: callable or ``"module:attr"`` string (preferred: lazy).
            aliases: other names for the entry.
            description: one line for listings.
            requires: top-level modules the target needs; checked without import.
            extra: pip extra of ``optreg`` that installs ``requires``.
            metadata: facts a trainer may need, shown by ``optreg info``.

        Raises:
            ValueError: a malformed name.
            TypeError: a target that is neither callable nor "module:attr".
            DuplicateNameError: this distribution already registered the name.
        """
        return self._registry._add(
            Entry(
                name=normalize_name(name, what=f"{self.kind} name"),
                kind=self._registry.kind,
                target=target,
                provider=self._dist_name,
                source="builtin" if self._dist_name == BUILTIN_DIST else "plugin",
                aliases=tuple(
                    dict.fromkeys(normalize_name(a, what=f"{self.kind} alias") for a in aliases)
                ),
                description=description,
                requires=tuple(requires),
                extra=extra,
                metadata=MappingProxyType(dict(metadata or {})),
                entry_point=f"{GROUP_HOOKS}: {self._plugin}",
                dist=self._dist,
            )
        )

    def __contains__(self, name: object) -> bool:
        return name in self._registry

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry)


def call_hook(hookname: str, **kwargs: Any) -> None:
    """Call a notification hook on every plugin; a plugin that raises is warned about and skipped."""
    pm = plugin_manager()
    for impl in getattr(pm.hook, hookname).get_hookimpls():
        try:
            impl.function(**{a: kwargs[a] for a in impl.argnames})
        except Exception as e:
            dist = _State.plugin_dists.get(impl.plugin_name, impl.plugin_name)
            with LOCK:
                _problem(dist, f"{impl.plugin_name} {hookname}()", e)
            warnings.warn(
                f"optreg plugin {impl.plugin_name!r} (distribution {dist!r}) raised in "
                f"{hookname}: {type(e).__name__}: {e}; ignored",
                OptregPluginWarning,
                stacklevel=3,
            )
