"""optreg: optimizers and learning-rate schedulers by name, from any installed plugin.

```python
import optreg

opt = optreg.get_optimizer("adamw", model, lr=3e-4, weight_decay=0.01)
sched = optreg.get_scheduler("cosine", opt, num_warmup_steps=100, num_training_steps=1000)
```

Importing this package loads no plugin and imports neither torch, pluggy nor
importlib_metadata; the first registry access discovers plugins once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Every public name is imported on first use (``__getattr__`` below): `import optreg`
# itself imports no module of the package's rooms, so it costs next to nothing after torch.
_LAZY = {
    "AmbiguousNameError": "optreg._core.errors",
    "Catalog": "optreg._core.catalog",
    "CheckpointMismatchError": "optreg._core.errors",
    "CheckpointMismatchWarning": "optreg._core.errors",
    "ClipPolicy": "optreg._core.contract",
    "Conformance": "optreg._core.traits",
    "DuplicateNameError": "optreg._core.errors",
    "Entry": "optreg._core.entry",
    "EntryInfo": "optreg._core.entry",
    "FactoryContract": "optreg._core.contract",
    "GroupReport": "optreg._build.explain",
    "MissingDependencyError": "optreg._core.errors",
    "OptregError": "optreg._core.errors",
    "OptregPluginWarning": "optreg._core.errors",
    "PagedFallbackWarning": "optreg._core.errors",
    "PluginLoadError": "optreg._core.errors",
    "Registry": "optreg._core.registry",
    "ScheduleFightsOptimizerWarning": "optreg._core.errors",
    "SchedulerType": "optreg._core.names",
    "Sides": "optreg._core.contract",
    "StateLayout": "optreg._core.contract",
    "Traits": "optreg._core.traits",
    "UnknownNameError": "optreg._core.errors",
    "UsageError": "optreg._core.errors",
    "WarmupLongerThanTrainingWarning": "optreg._core.errors",
    "build": "optreg._build.spec",
    "clip_grad_norm_": "optreg._policies.clip",
    "convert_state_dict": "optreg._checkpoint.convert",
    "eval_mode": "optreg._policies.modes",
    "explain_groups": "optreg._build.explain",
    "from_state_dict": "optreg._checkpoint.state",
    "get_optimizer": "optreg._build.api",
    "get_optimizer_cls": "optreg.optim",
    "get_scheduler": "optreg._build.api",
    "list_optimizers": "optreg._build.api",
    "list_schedulers": "optreg._build.api",
    "load_config": "optreg._build.config",
    "load_state_dict": "optreg._checkpoint.state",
    "optimizer_info": "optreg._build.api",
    "optimizers": "optreg._core.registry",
    "prefer": "optreg._core.prefer",
    "register_optimizer": "optreg._build.api",
    "register_scheduler": "optreg._build.api",
    "scheduler_info": "optreg._build.api",
    "schedulers": "optreg._core.registry",
    "state_dict": "optreg._checkpoint.state",
    "PluginRegistry": "optreg.hookspecs",
    "group_parameters": "optreg.params._grouping",
    "group_sides": "optreg.params._sides",
}

__all__ = [
    "AmbiguousNameError",
    "Catalog",
    "CheckpointMismatchError",
    "CheckpointMismatchWarning",
    "ClipPolicy",
    "Conformance",
    "DuplicateNameError",
    "Entry",
    "EntryInfo",
    "FactoryContract",
    "GroupReport",
    "MissingDependencyError",
    "OptregError",
    "OptregPluginWarning",
    "PagedFallbackWarning",
    "PluginLoadError",
    "PluginRegistry",
    "Registry",
    "ScheduleFightsOptimizerWarning",
    "SchedulerType",
    "Sides",
    "StateLayout",
    "Traits",
    "UnknownNameError",
    "UsageError",
    "WarmupLongerThanTrainingWarning",
    "__version__",
    "build",
    "clip_grad_norm_",
    "convert_state_dict",
    "eval_mode",
    "explain_groups",
    "from_state_dict",
    "get_optimizer",
    "get_optimizer_cls",
    "get_scheduler",
    "group_parameters",
    "group_sides",
    "hookimpl",
    "list_optimizers",
    "list_schedulers",
    "load_config",
    "load_state_dict",
    "optimizer_info",
    "optimizers",
    "prefer",
    "register_optimizer",
    "register_scheduler",
    "scheduler_info",
    "schedulers",
    "state_dict",
]


if TYPE_CHECKING:  # resolved lazily by __getattr__ at run time
    import pluggy

    from optreg._build.api import (
        get_optimizer,
        get_scheduler,
        list_optimizers,
        list_schedulers,
        optimizer_info,
        register_optimizer,
        register_scheduler,
        scheduler_info,
    )
    from optreg._build.config import load_config
    from optreg._build.explain import GroupReport, explain_groups
    from optreg._build.spec import build
    from optreg._checkpoint.convert import convert_state_dict
    from optreg._checkpoint.state import from_state_dict, load_state_dict, state_dict
    from optreg._core.catalog import Catalog
    from optreg._core.contract import ClipPolicy, FactoryContract, Sides, StateLayout
    from optreg._core.entry import Entry, EntryInfo
    from optreg._core.errors import (
        AmbiguousNameError,
        CheckpointMismatchError,
        CheckpointMismatchWarning,
        DuplicateNameError,
        MissingDependencyError,
        OptregError,
        OptregPluginWarning,
        PagedFallbackWarning,
        PluginLoadError,
        ScheduleFightsOptimizerWarning,
        UnknownNameError,
        UsageError,
        WarmupLongerThanTrainingWarning,
    )
    from optreg._core.names import SchedulerType
    from optreg._core.prefer import prefer
    from optreg._core.registry import Registry, optimizers, schedulers
    from optreg._core.traits import Conformance, Traits
    from optreg._policies.clip import clip_grad_norm_
    from optreg._policies.modes import eval_mode
    from optreg.hookspecs import PluginRegistry
    from optreg.optim import get_optimizer_cls
    from optreg.params._grouping import group_parameters
    from optreg.params._sides import group_sides

    hookimpl: pluggy.HookimplMarker
    """The marker a hook plugin puts on its ``optreg_add_optimizers`` /
    ``optreg_add_schedulers`` implementations (pluggy's, for project ``"optreg"``)."""
    __version__: str
    """optreg's version, from its install metadata (``"0+unknown"`` in a bare tree)."""


def __getattr__(name: str) -> Any:
    # resolved on first use so that `import optreg` stays cheap (hookimpl and
    # PluginRegistry need pluggy, __version__ importlib.metadata, group_parameters torch)
    if name == "hookimpl":
        import pluggy

        value: Any = pluggy.HookimplMarker("optreg")
    elif name == "__version__":
        from optreg._core.entry import optreg_version

        value = optreg_version()
    elif name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'optreg' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
