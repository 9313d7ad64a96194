"""``optreg groups``: the parameter-group dry run on a model (see `optreg._build.explain`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from optreg._core.errors import UsageError

__all__ = ["cmd_groups", "load_model"]


def load_model(spec: str) -> Any:
    """``example`` (optreg's tiny LM) or ``module:attr`` of a callable returning a module.

    Raises:
        UsageError: not ``module:attr``, not importable, or not returning an nn.Module.
    """
    from torch import nn

    from optreg._core.entry import is_ref
    from optreg._core.loading import import_target
    from optreg.cli._example import example_model

    if spec == "example":
        return example_model()
    if not is_ref(spec):
        raise UsageError(f"--model must be 'example' or module:attr of a callable, got {spec!r}")
    try:
        target = import_target(spec)
    except (ImportError, AttributeError, ValueError) as e:
        raise UsageError(f"--model {spec!r}: cannot import it: {type(e).__name__}: {e}") from e
    model = target
    if callable(target) and not isinstance(target, nn.Module):
        try:
            model = target()
        except Exception as e:
            raise UsageError(
                f"--model {spec!r}: calling it with no arguments raised {type(e).__name__}: {e}"
            ) from e
    if not isinstance(model, nn.Module):
        raise UsageError(f"--model {spec!r} gave {type(model).__name__}, not a torch.nn.Module")
    return model


def cmd_groups(args: argparse.Namespace) -> int:
    """Print the report (``--json``: as JSON); exit 0 (warnings do not fail it)."""
    from optreg._build.config import load_config
    from optreg._build.explain import explain_groups

    kwargs: dict[str, Any] = dict(args.kw or [])
    if args.rules is not None:
        if args.rules.lstrip().startswith("["):  # inline JSON: the list itself
            try:
                kwargs["rules"] = json.loads(args.rules)
            except json.JSONDecodeError as e:
                raise UsageError(f"--rules: not JSON: {e}") from e
        else:  # a config file (or inline object) holding {"rules": [...]}
            try:
                config = load_config(args.rules)
            except (OSError, TypeError, ValueError) as e:
                raise UsageError(f"--rules: {e}") from e
            if "rules" not in config:
                raise UsageError(f"--rules {args.rules!r}: no 'rules' key in it")
            kwargs["rules"] = config["rules"]
    if args.layer_decay is not None:
        kwargs["layer_decay"] = args.layer_decay
    model = load_model(args.model)
    try:
        report = explain_groups(args.name, model, **kwargs)
    except (TypeError, ValueError) as e:  # what the command line asked for: a usage error
        raise UsageError(str(e)) from e
    print(json.dumps(report.to_json(), indent=2) if args.json else report.table())
    return 0
