"""bitsandbytes 8-bit, 32-bit and paged optimizers, registered by name.

Every name is a lazy ``"optreg.builtin.bnb:<name>"`` target: a
`BnbOptimizerFactory` that imports bitsandbytes only when it is called
(or asked for its signature), never when optreg starts or lists names. Without
bitsandbytes the names are listed as unavailable, with the extra to install
(``pip install "optreg[bnb]"``).

A name fixes what bitsandbytes calls ``optim_bits`` and ``is_paged``, so it
builds exactly what it says: ``adamw_8bit`` keeps uint8 state for every
parameter with at least ``min_8bit_size`` (4096) elements, ``paged_lion_32bit``
keeps paged fp32 state, and so on. Per-parameter settings that bitsandbytes
reads from its ``GlobalOptimManager`` rather than from param groups
(`BNB_PARAM_OPTIONS`, e.g. ``optim_bits``) may appear in param groups or in
``get_optimizer(..., overrides=...)``; the factory hands them to
``GlobalOptimManager.override_config`` for those parameters.
"""

from __future__ import annotations

import inspect
import warnings
from collections import ChainMap
from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

import torch

from optreg._core import signature as _signature
from optreg._core import validate
from optreg._core.contract import FactoryContract
from optreg._core.errors import MissingDependencyError, PagedFallbackWarning, user_stacklevel
from optreg._core.loading import import_heavy
from optreg._core.locks import fork_safe_lock
from optreg.builtin import BNB_OPTIMIZERS
from optreg.builtin.bnb_state import layout

__all__ = [
    "BNB_PARAM_OPTIONS",
    "FACTORIES",
    "BnbOptimizerFactory",
    "PagedFallbackWarning",
]

#: Options bitsandbytes reads per parameter from its ``GlobalOptimManager`` (not from
#: param groups). optreg takes them out of the param groups and registers them with
#: ``GlobalOptimManager.override_config`` for the group's parameters.
BNB_PARAM_OPTIONS = ("optim_bits", "min_8bit_size", "max_unorm", "skip_zeros")

#: Constructor arguments a name fixes: accepting them would let ``adamw_8bit`` build a
#: 32-bit or a paged optimizer (``args`` carries ``optim_bits`` too).
_FIXED_BY_NAME = frozenset({"optim_bits", "is_paged", "args"})

_INSTALL_HINT = 'pip install "optreg[bnb]"'


class _Once:
    """Process-wide flag: the paged-on-CPU note is shown once per process."""

    lock = fork_safe_lock(reentrant=False)
    shown = False


def _bnb_optim() -> Any:
    """Import and return ``bitsandbytes.optim``.

    Raises:
        MissingDependencyError: bitsandbytes is not installed (or cannot be imported).
    """
    try:
        return import_heavy("bitsandbytes.optim")
    except ImportError as e:
        raise MissingDependencyError(
            f"the bitsandbytes optimizers need bitsandbytes, which is not installed "
            f"({type(e).__name__}: {e}); install it with: {_INSTALL_HINT}"
        ) from e
    except Exception as e:  # installed but broken (a CUDA library it cannot load, ...)
        raise MissingDependencyError(
            f"the bitsandbytes optimizers need bitsandbytes, which is installed but cannot "
            f"be imported ({type(e).__name__}: {e}); reinstall it with: {_INSTALL_HINT}"
        ) from e


@cache
def _cpu_safe_paged_ademamix(base_name: str) -> type[Any]:
    """Subclass ``bitsandbytes.optim.<base_name>`` whose paged state also works on CPU.

    bitsandbytes (0.50.2) falls back to ordinary state for CPU parameters in
    ``get_state_buffer`` but not in AdEMAMix's ``_get_state_double_buffer``, which
    asks the CUDA runtime for paged memory for every CPU parameter of 1e5 elements or
    more and fails. This subclass gives CPU parameters the same ordinary buffer
    bitsandbytes' non-paged AdEMAMix uses; CUDA parameters are untouched.
    """
    base = getattr(_bnb_optim(), base_name)

    def _get_state_double_buffer(
        self: Any, p: torch.Tensor, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        if p.device.type == "cpu":
            return torch.zeros((2, *p.size()), dtype=dtype, device=p.device)
        return base._get_state_double_buffer(self, p, dtype=dtype)  # type: ignore[no-any-return]

    return type(
        base.__name__,
        (base,),
        {
            "__module__": __name__,
            # where pickle finds the class again: this module's __getattr__ builds it
            "__qualname__": _CPU_SAFE + base_name,
            "__doc__": (base.__doc__ or "")
            + "\n\n(optreg: CPU parameters get ordinary, non-paged state.)",
            "_get_state_double_buffer": _get_state_double_buffer,
        },
    )


_CPU_SAFE = "CpuSafe"


def __getattr__(name: str) -> Any:
    """``CpuSafePagedAdEMAMix8bit`` and friends: the classes pickled optimizers name."""
    if name.startswith(_CPU_SAFE + "PagedAdEMAMix"):
        return _cpu_safe_paged_ademamix(name[len(_CPU_SAFE) :])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class BnbOptimizerFactory:
    """Builds one bitsandbytes optimizer with the bits and paging its name fixes.

    Calling it as ``factory(params, **kwargs)`` returns an instance of the
    bitsandbytes class (for the paged AdEMAMix names, of a subclass that also
    works on CPU). It accepts the keyword arguments of that class except the ones
    the name fixes (``optim_bits``, ``is_paged``, ``args``).

    Args:
        name: the optreg name, e.g. ``"adamw_8bit"``.
        class_name: the class in ``bitsandbytes.optim``, e.g. ``"AdamW8bit"``.
        bits: 8 or 32, the state precision the name stands for.
        paged: whether the name stands for a paged optimizer.
        description: one line for listings.
        aliases: other optreg names for the same optimizer.
        fixed: keyword arguments always passed to the class (e.g. ``optim_bits=32``).
    """

    def __init__(
        self,
        name: str,
        class_name: str,
        *,
        bits: int,
        paged: bool,
        description: str,
        aliases: tuple[str, ...] = (),
        fixed: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.class_name = class_name
        self.bits = bits
        self.paged = paged
        self.description = description
        self.aliases = aliases
        self.fixed: Mapping[str, Any] = MappingProxyType(dict(fixed or {}))
        #: a param group, rule or override may set bitsandbytes' per-parameter options;
        #: a keyword the name fixes is refused by name, not as "unexpected"
        self.optreg_contract = FactoryContract(
            group_options=BNB_PARAM_OPTIONS,
            check_keywords=self.check_keywords,
            state=layout(class_name, bits),
        )
        self.__doc__ = (
            f"{description}.\n\nBuilds ``bitsandbytes.optim.{class_name}`` "
            f"({bits}-bit state{', paged' if paged else ''})."
        )

    def __repr__(self) -> str:
        return f"<optreg factory {self.name!r}: bitsandbytes.optim.{self.class_name}>"

    def optimizer_class(self) -> type[Any]:
        """The class this name builds (imports bitsandbytes).

        Raises:
            MissingDependencyError: bitsandbytes is not installed.
        """
        if self.paged and self.class_name.startswith("PagedAdEMAMix"):
            return _cpu_safe_paged_ademamix(self.class_name)
        return getattr(_bnb_optim(), self.class_name)  # type: ignore[no-any-return]

    @property
    def __signature__(self) -> inspect.Signature | None:
        """The class's signature without the arguments the name fixes."""
        try:
            sig = inspect.signature(self.optimizer_class())
        except (MissingDependencyError, TypeError, ValueError):
            return None
        return sig.replace(
            parameters=[p for p in sig.parameters.values() if p.name not in _FIXED_BY_NAME]
        )

    def __call__(self, params: Any, **kwargs: Any) -> Any:
        """Build the optimizer.

        Args:
            params: tensors or param-group dicts, as for any torch optimizer. A group
                may carry `BNB_PARAM_OPTIONS` (e.g. ``"optim_bits": 32``).
            **kwargs: keyword arguments of the bitsandbytes class (``lr``, ``betas``...).

        Returns:
            The bitsandbytes optimizer.

        Raises:
            MissingDependencyError: bitsandbytes is not installed.
            TypeError: a keyword the class does not accept or the name fixes, or a
                value of the wrong type.
            ValueError: an invalid per-parameter option or hyperparameter, or one that
                bitsandbytes does not support (it raises NotImplementedError for
                e.g. SGD without momentum; optreg reports it as a ValueError).
        """
        cls = self.optimizer_class()
        self.check_keywords(kwargs)
        params, per_param = self._split_options(params)
        try:
            optimizer = cls(params, **self.fixed, **kwargs)
        except (NotImplementedError, ValueError, TypeError) as e:
            raise self._explain(e, kwargs) from e
        view = _OptimizerOverrides(_bnb_optim().GlobalOptimManager.get_instance())
        for tensors, options in per_param:
            for p in tensors:
                view.pid2config[id(p)] = dict(options)  # one dict per param
        optimizer.mng = view
        if self.paged:
            self._note_cpu_fallback(optimizer)
        return optimizer

    # -- helpers ------------------------------------------------------------
    def _explain(self, error: Exception, kwargs: Mapping[str, Any]) -> Exception:
        """bitsandbytes' error, naming the optreg name and the values given."""
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no keyword arguments"
        where = f"optimizer {self.name!r} (bitsandbytes.optim.{self.class_name})"
        if isinstance(error, NotImplementedError):
            return ValueError(f"{where} does not support these settings: {error} (got {given})")
        kind = TypeError if isinstance(error, TypeError) else ValueError
        return kind(f"{where}: {error} (got {given})")

    def check_keywords(self, kwargs: Mapping[str, Any]) -> None:
        """Reject keywords this name does not take; say so when the name fixes them.

        Raises:
            TypeError: ``optim_bits`` / ``is_paged`` / ``args``, or an unknown keyword.
        """
        for key in kwargs:
            if key in _FIXED_BY_NAME:
                what = f"{self.bits}-bit{', paged' if self.paged else ', not paged'}"
                raise TypeError(
                    f"optimizer {self.name!r} fixes {key!r} (it is {what}); pick the name "
                    "that says what you want (`optreg list optimizers`), or set optim_bits "
                    "for some parameters with overrides={pattern: {'optim_bits': 32}}"
                )
        _signature.check_keywords(
            f"optimizer {self.name!r} (bitsandbytes.optim.{self.class_name})", self, kwargs
        )

    def _split_options(self, params: Any) -> tuple[Any, list[tuple[list[Any], dict[str, Any]]]]:
        """Take `BNB_PARAM_OPTIONS` out of param-group dicts."""
        if isinstance(params, (torch.Tensor, Mapping)) or not isinstance(params, Iterable):
            return params, []  # torch's own error message explains what params may be
        items = list(params)
        if not items or not all(isinstance(g, Mapping) for g in items):
            return items, []
        groups: list[dict[str, Any]] = []
        per_param: list[tuple[list[Any], dict[str, Any]]] = []
        for group in items:
            group = dict(group)
            options = {k: group.pop(k) for k in BNB_PARAM_OPTIONS if k in group}
            if options:
                tensors = group.get("params")
                tensors = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors or ())
                group["params"] = tensors
                for key, value in options.items():
                    _check_option(self.name, key, value)
                per_param.append((tensors, options))
            groups.append(group)
        return groups, per_param

    def _note_cpu_fallback(self, optimizer: Any) -> None:
        on_cpu = any(p.device.type == "cpu" for g in optimizer.param_groups for p in g["params"])
        if not on_cpu:
            return
        # bitsandbytes warns once per optimizer, at its first step; optreg says it
        # once per process, at construction, instead.
        optimizer._cpu_paged_warned = True
        with _Once.lock:
            if _Once.shown:
                return
            _Once.shown = True
        warnings.warn(
            f"{self.name}: paged optimizers are not supported on CPU by bitsandbytes; "
            "CPU parameters get ordinary (non-paged) optimizer state, everything else is "
            "unchanged. Paging needs CUDA parameters. (optreg says this once per process.)",
            PagedFallbackWarning,
            stacklevel=user_stacklevel(),
        )


def _check_option(name: str, key: str, value: Any) -> None:
    """Validate one per-parameter bitsandbytes option.

    Raises:
        ValueError: the value is not allowed for ``key``.
    """
    try:
        if key == "optim_bits" and (isinstance(value, bool) or value not in (8, 32)):
            raise ValueError(f"`{key}` must be 8 or 32, got {value!r}")
        if key == "min_8bit_size":
            validate.count(key, value)
        elif key == "max_unorm":
            validate.real(key, value, low=0)
        elif key == "skip_zeros" and not isinstance(value, bool):
            raise ValueError(f"`{key}` must be True or False, got {value!r}")
    except (TypeError, ValueError) as e:
        raise ValueError(f"optimizer {name!r}: per-parameter option {e}") from None


class _OptimizerOverrides:
    """One optimizer's view of bitsandbytes' process-wide ``GlobalOptimManager``.

    bitsandbytes reads per-parameter options from ``optimizer.mng``: ``pid2config``
    (keyed by ``id(param)``), ``index2config`` (keyed by ``(group, index)`` *positions*,
    filled at the first step) and ``module_weight_config_triple``. The shared manager
    keeps them for the rest of the process, so options given to one optimizer leaked
    into the next one built over the same parameters, or over others at the same
    positions. This view keeps the options optreg was given, and the positions, to
    its optimizer, over what other code registers with the shared manager (such as
    transformers' ``register_module_override`` for embeddings), which still applies.
    """

    def __init__(self, shared: Any) -> None:
        self._shared = shared
        self.pid2config: ChainMap[int, Any] = ChainMap({}, shared.pid2config)
        self.index2config: dict[tuple[int, int], Any] = {}

    @property
    def module_weight_config_triple(self) -> list[Any]:
        return self._shared.module_weight_config_triple  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:  # anything else bitsandbytes may ask for
        if name.startswith("_"):  # pickle and copy probe dunders before __dict__ is set
            raise AttributeError(name)
        return getattr(self._shared, name)


# --------------------------------------------------------------------------- names
#: Every factory, by optreg name (the names are declared in `optreg.builtin.BNB_OPTIMIZERS`);
#: each is also a module attribute, the catalogue's lazy ``"optreg.builtin.bnb:<name>"`` target.
FACTORIES: Mapping[str, BnbOptimizerFactory] = MappingProxyType(
    {
        b.name: BnbOptimizerFactory(
            b.name,
            b.class_name,
            bits=b.bits,
            paged=b.paged,
            description=b.description,
            aliases=b.aliases,
            fixed=b.fixed,
        )
        for b in BNB_OPTIMIZERS
    }
)
globals().update(FACTORIES)
