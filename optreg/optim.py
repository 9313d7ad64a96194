"""Every optimizer name as a ``torch.optim.Optimizer`` subclass, for APIs that want a class.

``optreg.optim.adamw`` (what [optreg.get_optimizer_cls][] returns) is a real subclass
of ``torch.optim.Optimizer``; calling it builds exactly what
``optreg.get_optimizer("adamw", params, **kwargs)`` builds (a fast-by-default
``torch.optim.AdamW``, with the same errors). So a name works wherever the ecosystem
takes an optimizer class:

* transformers' ``Trainer(optimizer_cls_and_kwargs=(optreg.optim.adamw_8bit, {...}))``;
* ``ZeroRedundancyOptimizer(params, optimizer_class=optreg.optim.adamw, lr=...)``;
* Hydra: ``{"_target_": "optreg.optim.adamw", "_partial_": True, "betas": [0.9, 0.95]}``;
* a Lightning CLI / jsonargparse ``class_path: optreg.optim.adamw`` (the class's
  signature is the factory's).

The classes are made on first access (listing or importing this module builds none) and
pickle by reference. A name shadowed by a builtin, or one two plugins share, is
``optreg.optim.<dist>__<name>`` (``optreg.get_optimizer_cls("dist:name")``).
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

from optreg._core.catalog import current
from optreg._core.locks import fork_safe_lock

if TYPE_CHECKING:
    import torch

    from optreg._core.entry import Entry

__all__ = ["get_optimizer_cls"]

_lock = fork_safe_lock(reentrant=False)


def class_for(entry: Entry, attribute: str) -> type[torch.optim.Optimizer]:
    """The ``Optimizer`` subclass standing for ``entry``, as ``optreg.optim.<attribute>``."""
    classes = current().classes
    with _lock:
        cls = classes.get(attribute)
        if cls is None or cls._optreg_name != entry.qualified_name:
            cls = classes[attribute] = _make(entry, attribute)
        return cls


def _new(cls: type[Any], params: Any, *args: Any, **kwargs: Any) -> Any:
    """``cls(params, ...)``: ``get_optimizer`` with the class's name; hyperparameters given
    positionally, as torch's classes allow, are mapped onto the factory's keywords."""
    from optreg._build.api import get_optimizer
    from optreg._core.registry import optimizers
    from optreg._core.signature import parameters

    if args:
        # only what the factory takes positionally: torch's own classes refuse a surplus
        # positional rather than map it onto a keyword-only parameter (``maximize``)
        names = [
            name
            for name, p in list((parameters(optimizers.load(cls._optreg_name)) or {}).items())[1:]
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(args) > len(names):
            raise TypeError(
                f"{cls.__qualname__}() takes at most {len(names) + 1} positional "
                f"arguments, got {len(args) + 1}"
            )
        for key, value in zip(names, args, strict=False):
            if key in kwargs:
                raise TypeError(f"{cls.__qualname__}() got multiple values for {key!r}")
            kwargs[key] = value
    return get_optimizer(cls._optreg_name, params, **kwargs)


class _Signed:
    """A class's ``__new__`` or ``__init__`` whose signature is the factory's, read on
    first use (reading it may import the plugin's library: bitsandbytes for the 8-bit
    names), not when the class is made.

    jsonargparse, and so a Lightning CLI ``class_path``, reads a class's parameters from
    these two methods and not from the class. ``__new__`` builds (see `_new()`);
    ``__init__`` never runs (``__new__`` returns the factory's optimizer, of another class).
    """

    def __init__(self, name: str, attribute: str, method: str, first: str) -> None:
        self.__name__ = method
        self.__qualname__ = f"{attribute}.{method}"
        self._name = name
        self._first = first

    def __call__(self, cls_or_self: Any, params: Any, *args: Any, **kwargs: Any) -> Any:
        if self._first == "cls":
            return _new(cls_or_self, params, *args, **kwargs)
        return None  # pragma: no cover  (an __init__ that never runs)

    @functools.cached_property
    def __signature__(self) -> inspect.Signature | None:
        from optreg._core.registry import optimizers

        try:
            signature = inspect.signature(optimizers.load(self._name))
        except (TypeError, ValueError, ImportError):  # then (params, **kwargs)
            return None
        bound = inspect.Parameter(self._first, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return signature.replace(
            parameters=[bound, *signature.parameters.values()], return_annotation=None
        )


def _make(entry: Entry, attribute: str) -> type[Any]:
    from torch.optim import Optimizer

    doc = (
        f"optreg's {entry.name!r} optimizer ({entry.description or entry.target_ref}) as a "
        f"class: ``{attribute}(params, **kwargs)`` is ``optreg.get_optimizer("
        f"{entry.qualified_name!r}, params, **kwargs)``."
    )
    return type(
        attribute,
        (Optimizer,),
        {
            "__new__": _Signed(entry.qualified_name, attribute, "__new__", "cls"),
            "__init__": _Signed(entry.qualified_name, attribute, "__init__", "self"),
            "__module__": __name__,
            "__qualname__": attribute,
            "__doc__": doc,
            "_optreg_name": entry.qualified_name,
        },
    )


def get_optimizer_cls(name: str) -> type[torch.optim.Optimizer]:
    """Return ``name`` as a ``torch.optim.Optimizer`` subclass (``optreg.optim.<name>``).

    Calling it with ``(params, **kwargs)`` builds exactly what
    ``get_optimizer(name, params, **kwargs)`` builds, so it works where a class is
    expected: transformers' ``optimizer_cls_and_kwargs``, ``ZeroRedundancyOptimizer(params,
    optimizer_class=get_optimizer_cls("adamw"))``, a Lightning CLI ``class_path``. It
    pickles by reference.

    Raises:
        UnknownNameError: no optimizer has that name.
        AmbiguousNameError: two third-party plugins provide it.
        MissingDependencyError: the name needs an extra that is not installed.
        PluginLoadError: the plugin providing it cannot be imported.
    """
    from optreg._core.errors import AmbiguousNameError
    from optreg._core.registry import optimizers

    entry = optimizers.resolve(name)
    optimizers.load(entry)  # a missing extra or a broken plugin is an error now, not later
    try:
        plain = optimizers.resolve(entry.name) is entry
    except AmbiguousNameError:
        plain = False
    return class_for(entry, attribute_for(entry, plain=plain))


def attribute_for(entry: Entry, *, plain: bool) -> str:
    """The attribute of this module that stands for ``entry``."""
    from optreg._core.entry import normalize_dist

    return entry.name if plain else f"{normalize_dist(entry.provider)}__{entry.name}"


def __getattr__(name: str) -> type[Any]:
    """``optreg.optim.<name>`` (or ``<dist>__<name>``): the class of that optimizer.

    Raises:
        AttributeError: no optimizer has that name (the error suggests close names).
    """
    from optreg._core.errors import OptregError
    from optreg._core.registry import optimizers

    if name.startswith("__"):
        raise AttributeError(name)
    try:
        entry = optimizers.resolve(name)
    except (OptregError, ValueError, TypeError) as e:
        dist, sep, plain = name.partition("__")
        if not sep:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}: {e}") from e
        try:
            entry = optimizers.resolve(f"{dist}:{plain}")
        except (OptregError, ValueError, TypeError) as e2:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}: {e2}") from e2
    return class_for(entry, name)


def __dir__() -> list[str]:
    from optreg._core.registry import optimizers

    return sorted(n for n in optimizers.names() if ":" not in n)
