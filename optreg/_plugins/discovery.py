"""Discovery: the builtin catalogue, the entry-point scan and the pluggy PluginManager.

The first registry access calls `ensure_discovered()`, which, once per catalog
([optreg.Catalog][]: the discovery's state is the catalog's) and under
`optreg._core.registry.LOCK`:

* registers the builtin plugins of `optreg.builtin.CATALOGUE` with pluggy
  (as ``optreg:<plugin>``); they exist without install metadata;
* scans installed distributions a single time (``importlib_metadata.entry_points()``)
  and adds every ``optreg.optimizers`` / ``optreg.schedulers`` entry point as a lazy
  ``"module:attr"`` entry (its module is not imported);
* imports the modules of the ``optreg`` group and registers them with pluggy;
* runs pluggy's ``check_pending()``: a plugin implementing a hook that has no
  specification (a misspelled ``optreg_add_optimiser``) is unregistered and reported;
* calls ``optreg_add_optimizers`` / ``optreg_add_schedulers`` through pluggy one
  plugin at a time, each with a [PluginRegistry][optreg.PluginRegistry] bound to that
  plugin's distribution, so that a broken plugin loses only its own names.

Autoload controls, read at discovery time (like pytest's); a catalog made with
``Catalog(plugins=[...])`` replaces the first two with its list:

* ``OPTREG_DISABLE_PLUGIN_AUTOLOAD=1``: builtins only;
* ``OPTREG_PLUGINS=dist1,dist2:ep``: builtins plus just these distributions (or, in
  ``dist:entry-point`` form, that entry point of one);
* ``OPTREG_BLOCK_PLUGINS=dist1,dist2:entry``: skip these distributions, or single
  entry points / builtin plugins given as ``dist:name`` (``optreg:bnb``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optreg._core.catalog import current, plugin_key
from optreg._core.entry import BUILTIN_DIST, make_entry, normalize_dist
from optreg._core.errors import OptregError, OptregPluginWarning, close_matches
from optreg._core.registry import LOCK, Registry, optimizers, schedulers

if TYPE_CHECKING:
    import pluggy

__all__ = [
    "PluginProblem",
    "call_hook",
    "ensure_discovered",
    "implementers",
    "plugin_manager",
    "problems",
]

GROUP_OPTIMIZERS = "optreg.optimizers"
GROUP_SCHEDULERS = "optreg.schedulers"
GROUP_HOOKS = "optreg"
GROUPS = (GROUP_OPTIMIZERS, GROUP_SCHEDULERS, GROUP_HOOKS)


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that failed during discovery or in a hook."""

    dist: str
    entry_point: str
    error: str

    def __str__(self) -> str:
        return f"{self.dist} ({self.entry_point}): {self.error}"


def ensure_discovered() -> None:
    """Run discovery once per catalog (thread-safe, cached).

    A hook that reads the registry during discovery (same thread, re-entering the
    lock) sees the names registered so far instead of starting a nested scan.
    """
    catalog = current()
    state = catalog.discovery
    if state.done:
        return
    with LOCK:
        if state.done or state.running:
            return
        state.running = True
        try:
            _discover()
            state.done = True
        except BaseException:
            # all or nothing: an interrupted discovery (Ctrl-C in a slow plugin) leaves
            # no half-filled registry behind; the next access starts afresh
            catalog.restart()
            raise
        finally:
            state.running = False


def problems() -> list[PluginProblem]:
    """Plugins that failed to load, failed pluggy's validation, or whose hooks raised."""
    ensure_discovered()
    return list(current().discovery.problems)


def implementers(hookname: str) -> list[str]:
    """The plugins (pluggy names) that implement ``hookname``, in call order."""
    ensure_discovered()
    return [name for name, _ in _callers(hookname)]


def plugin_manager() -> pluggy.PluginManager:
    """The pluggy PluginManager holding every hook plugin (after discovery)."""
    ensure_discovered()
    pm = current().discovery.pm
    if pm is None:  # pragma: no cover - set by _discover
        raise OptregError("plugin discovery did not complete")
    return pm  # type: ignore[no-any-return]


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None or not raw.strip():
        return None
    return {plugin_key(x) for x in raw.split(",") if x.strip()}


def _dist_name(dist: Any) -> str:
    # PathDistribution knows its normalised name from the directory name, which
    # avoids parsing METADATA for every distribution (the slow part of a scan).
    name = getattr(dist, "_normalized_name", None) or getattr(dist, "name", None) or "unknown"
    return normalize_dist(str(name))


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


class _Filter:
    """The autoload controls, read from the environment once per discovery; a restricted
    catalog's list (``Catalog(plugins=[...])``) in place of the first two."""

    def __init__(self, listed: frozenset[str] | None) -> None:
        self.block = _env_list("OPTREG_BLOCK_PLUGINS") or set()
        self.listed = listed
        self.only = _env_list("OPTREG_PLUGINS") if listed is None else set(listed)
        self.seen: set[str] = set()  # distributions and dist:entry-point names met
        flag = os.environ.get("OPTREG_DISABLE_PLUGIN_AUTOLOAD", "").strip().lower()
        self.disabled = flag in _TRUE and listed is None
        if listed is None and flag not in _TRUE + _FALSE:
            warnings.warn(
                f"OPTREG_DISABLE_PLUGIN_AUTOLOAD={flag!r} is neither true (1, true, yes, "
                "on) nor false (0, false, no, off, empty); third-party plugins are loaded",
                OptregPluginWarning,
                stacklevel=4,
            )

    def allowed(self, dist: str, ep_name: str) -> bool:
        self.seen |= {dist, plugin_key(f"{dist}:{ep_name}")}
        if dist in self.block or (self.block and plugin_key(f"{dist}:{ep_name}") in self.block):
            return False
        if dist == BUILTIN_DIST and self.listed is None:
            return True
        if self.disabled:
            return False
        return (
            self.only is None or dist in self.only or plugin_key(f"{dist}:{ep_name}") in self.only
        )

    def warn_unmatched(self) -> None:
        """Say which ``OPTREG_PLUGINS`` / ``OPTREG_BLOCK_PLUGINS`` entries matched nothing."""
        first = "OPTREG_PLUGINS" if self.listed is None else "Catalog(plugins=...)"
        for var, wanted in ((first, self.only), ("OPTREG_BLOCK_PLUGINS", self.block)):
            for name in sorted((wanted or set()) - self.seen):
                hint = close_matches(name, sorted(self.seen), n=1)
                warnings.warn(
                    f"{var}: {name!r} matches no installed plugin distribution (or "
                    "dist:entry-point)" + (f"; did you mean {hint[0]!r}?" if hint else ""),
                    OptregPluginWarning,
                    stacklevel=5,
                )


def _discover() -> None:
    import importlib_metadata
    import pluggy

    from optreg import hookspecs
    from optreg.builtin import CATALOGUE

    catalog = current()
    state = catalog.discovery
    pm = pluggy.PluginManager("optreg")
    pm.add_hookspecs(hookspecs)
    state.pm = pm
    allow = _Filter(catalog.only)
    for builtin in CATALOGUE:
        if allow.allowed(BUILTIN_DIST, builtin.name):
            state.plugins[pm.register(builtin, name=f"{BUILTIN_DIST}:{builtin.name}") or ""] = (
                BUILTIN_DIST,
                None,
            )
    # the builtins' names first, so that they are there before any plugin module runs:
    # one rule for register_optimizer("adafactor") whenever a plugin calls it
    _call_add_hooks()
    registries = {GROUP_OPTIMIZERS: optimizers, GROUP_SCHEDULERS: schedulers}
    dist_names: dict[int, str] = {}
    # one pass over the scan (EntryPoints.select would walk it once per group)
    for ep in sorted(
        (ep for ep in importlib_metadata.entry_points() if ep.group in GROUPS),
        key=lambda ep: GROUPS.index(ep.group),
    ):
        dist = ep.dist
        dist_name = dist_names.get(id(dist))
        if dist_name is None:
            dist_name = dist_names[id(dist)] = _dist_name(dist) if dist is not None else "unknown"
        # optreg's builtins come from the catalogue above; entry points an older
        # optreg install left in its metadata would only duplicate them
        if dist_name == BUILTIN_DIST or not allow.allowed(dist_name, ep.name):
            continue
        where = f"{ep.group}: {ep.name} = {ep.value}"
        try:
            if ep.group == GROUP_HOOKS:
                plugin_name = f"{dist_name}:{ep.name}"
                pm.register(ep.load(), name=plugin_name)
                state.plugins[plugin_name] = (dist_name, dist)
            else:
                registries[ep.group]._add(
                    make_entry(
                        registries[ep.group].kind,
                        ep.name,
                        ep.value,
                        provider=dist_name,
                        description="",
                        entry_point=where,
                        dist=dist,
                    )
                )
        except (Exception, SystemExit) as e:  # a plugin's sys.exit() is contained too
            _problem(dist_name, where, e)
    allow.warn_unmatched()
    _check_pending(pm)
    _call_add_hooks(skip=BUILTIN_DIST)


def _call_add_hooks(*, skip: str | None = None) -> None:
    """Call both ``add`` hooks: of the builtins only, or (``skip``) of everyone else."""
    for hookname, registry in (
        ("optreg_add_optimizers", optimizers),
        ("optreg_add_schedulers", schedulers),
    ):
        _call_add_hook(hookname, registry, builtins=skip is None)


def _check_pending(pm: pluggy.PluginManager) -> None:
    """pluggy's ``check_pending()``; each plugin it rejects is reported and unregistered."""
    import pluggy

    while True:
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as e:
            name = pm.get_name(e.plugin) or "?"
            dist = current().discovery.plugins.pop(name, ("unknown", None))[0]
            pm.unregister(e.plugin)
            message = str(e).replace(repr(e.plugin), repr(name))
            _problem(dist, f"{name}: unknown hook", OptregError(message))
        else:
            return


def _callers(hookname: str) -> list[tuple[str, Callable[..., Any]]]:
    """One caller per plugin implementing ``hookname``, in pluggy's call order.

    Each caller is pluggy's own (``subset_hook_caller``) restricted to one plugin,
    so wrappers, ``tryfirst`` / ``trylast`` and argument selection are pluggy's,
    while one plugin's exception does not stop the others.
    """
    state = current().discovery
    pm = state.pm
    if pm is None:  # pragma: no cover - discovery sets it
        return []
    impls = tuple(getattr(pm.hook, hookname).get_hookimpls())
    cached = state.callers.get(hookname)
    if cached is not None and cached[0] == impls:  # the same plugins implement it
        return cached[1]
    plugins = pm.get_plugins()
    out: list[tuple[str, Callable[..., Any]]] = []
    for impl in reversed(impls):
        others = [p for p in plugins if p is not impl.plugin]
        out.append((impl.plugin_name, pm.subset_hook_caller(hookname, remove_plugins=others)))
    state.callers[hookname] = (impls, out)
    return out


def _call_add_hook(hookname: str, registry: Registry, *, builtins: bool) -> None:
    """Call one ``add`` hook plugin by plugin; a hook that raises keeps none of its names."""
    from optreg.hookspecs import PluginRegistry

    for plugin_name, caller in _callers(hookname):
        dist_name, dist = current().discovery.plugins.get(plugin_name, ("unknown", None))
        if (dist_name == BUILTIN_DIST) != builtins:
            continue
        view = PluginRegistry(registry, dist_name, dist, plugin_name)
        try:
            caller(registry=view)
        except (Exception, SystemExit) as e:
            view._withdraw()  # all of a hook's names or none
            _problem(dist_name, f"{plugin_name} {hookname}()", e)


def _problem(dist: str, where: str, error: BaseException) -> None:
    """Record a plugin's failure once per plugin and place: a hook raising at every build
    (each time with another message) adds no more; the first message is kept."""
    found = current().discovery.problems
    if not any(p.dist == dist and p.entry_point == where for p in found):
        found.append(PluginProblem(dist, where, f"{type(error).__name__}: {error}"))


def _snapshot(value: Any) -> Any:
    """A copy of a hook argument deep enough to undo a hook's edits: lists of dicts and
    dicts, their list values copied (a param group's ``params``)."""
    if isinstance(value, list):
        return [_snapshot(v) for v in value]
    if isinstance(value, dict):
        return {k: list(v) if isinstance(v, list) else v for k, v in value.items()}
    return value


def _restore(target: Any, saved: Any) -> None:
    if isinstance(target, list):
        target[:] = saved
    elif isinstance(target, dict):
        target.clear()
        target.update(saved)


def call_hook(hookname: str, *, undo: bool = False, **kwargs: Any) -> None:
    """Call a hook on every plugin; a plugin that raises is warned about and skipped.

    Args:
        hookname: the hook.
        undo: the hook edits its arguments in place (``optreg_prepare_optimizer``): a
            plugin that raises has its edits undone, so the next one, and the build, see
            the arguments as they were before it ran.
        **kwargs: the hook's arguments.
    """
    ensure_discovered()
    for plugin_name, caller in _callers(hookname):
        saved = {k: _snapshot(v) for k, v in kwargs.items()} if undo else {}
        try:
            caller(**kwargs)
        except Exception as e:
            for key, value in saved.items():
                _restore(kwargs[key], value)
            dist = current().discovery.plugins.get(plugin_name, (plugin_name, None))[0]
            with LOCK:
                _problem(dist, f"{plugin_name} {hookname}()", e)
            warnings.warn(
                f"optreg plugin {plugin_name!r} (distribution {dist!r}) raised in "
                f"{hookname}: {type(e).__name__}: {e}; "
                + ("its changes were undone and the build goes on" if undo else "ignored"),
                OptregPluginWarning,
                stacklevel=3,
            )
