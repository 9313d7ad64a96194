"""ScheduleLR: the ``LambdaLR`` the builtin schedules return, with a checked ``load_state_dict``."""

from __future__ import annotations

from typing import Any

from torch.optim.lr_scheduler import LambdaLR

__all__ = ["ScheduleLR", "check_group_count"]


class ScheduleLR(LambdaLR):
    """The ``LambdaLR`` every builtin schedule returns: one pure step function per group.

    A plain ``LambdaLR`` in everything it computes and stores; its
    ``load_state_dict`` first checks that the state was saved for as many param
    groups as the optimizer has (``LambdaLR`` would fail with an ``IndexError``, or
    load lrs for the wrong groups).
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by :meth:`state_dict`.

        Raises:
            ValueError: the state holds a different number of param groups.
        """
        check_group_count(self, state_dict, "base_lrs")
        super().load_state_dict(state_dict)


def check_group_count(scheduler: Any, state_dict: Any, key: str) -> None:
    groups = len(scheduler.optimizer.param_groups)
    saved = state_dict.get(key) if isinstance(state_dict, dict) else None
    if not isinstance(saved, list) or len(saved) != groups:
        count = len(saved) if isinstance(saved, list) else "no"
        raise ValueError(
            f"{type(scheduler).__name__}.load_state_dict: the state was saved for {count} "
            f"param group{'' if count == 1 else 's'} ({key!r}), but the optimizer has {groups}; "
            "build the optimizer with the same param groups as the run that saved it"
        )
