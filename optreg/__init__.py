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
from optreg._core.contract import ClipPolicy, FactoryContract
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
from optreg._core.traits import Traits
from optreg._policies.clip import clip_grad_norm_
from optreg._policies.modes import eval_mode
from optreg.optim import get_optimizer_cls

__all__ = [
    "AmbiguousNameError",
    "CheckpointMismatchError",
    "CheckpointMismatchWarning",
    "ClipPolicy",
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

    from optreg.hookspecs import PluginRegistry
    from optreg.params._rules import group_parameters

    hookimpl: pluggy.HookimplMarker
    """The marker a hook plugin puts on its ``optreg_add_optimizers`` /
    ``optreg_add_schedulers`` implementations (pluggy's, for project ``"optreg"``)."""
    __version__: str
    """optreg's version, from its install metadata (``"0+unknown"`` in a bare tree)."""


def __getattr__(name: str) -> Any:
    # hookimpl and PluginRegistry need pluggy, __version__ importlib.metadata,
    # group_parameters torch:
    # they are resolved on first use so that `import optreg` stays cheap.
    if name == "hookimpl":
        import pluggy

        value: Any = pluggy.HookimplMarker("optreg")
    elif name == "group_parameters":  # imports torch
        from optreg.params._rules import group_parameters as value
    elif name == "PluginRegistry":
        from optreg.hookspecs import PluginRegistry as value
    elif name == "__version__":
        from optreg._core.entry import optreg_version

        value = optreg_version()
    else:
        raise AttributeError(f"module 'optreg' has no attribute {name!r}")
    globals()[name] = value
    return value
