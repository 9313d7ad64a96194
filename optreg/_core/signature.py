"""Reading factories' signatures: the one place optreg calls `inspect.signature()`.

Used by the API (unknown keywords, step counts a schedule declares), by ``optreg
info`` (signature and required arguments), by the CLI (which schedule takes a
``--kw``) and by the conformance kit (does ``lr`` have a default, does ``step``
need a metric or a closure).
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from optreg._core.errors import close_matches

__all__ = [
    "accepted_keywords",
    "check_keywords",
    "default",
    "describe",
    "needs_closure",
    "parameters",
    "requires",
    "signature",
    "step_needs_metric",
    "step_scheduler",
    "takes",
    "with_defaults",
]

_EMPTY = inspect.Parameter.empty


# Signatures read, by callable (weakly: a factory dropped from the registry is dropped
# here): a build asks several questions of one factory's signature.
_READ: weakref.WeakKeyDictionary[Any, inspect.Signature] = weakref.WeakKeyDictionary()


def signature(fn: Any) -> inspect.Signature | None:
    """``inspect.signature(fn)``, read once per callable; None when it has no readable
    signature (asked again next time). Anything else reading it raises propagates.
    """
    try:
        return _READ[fn]
    except (KeyError, TypeError):  # not read yet, or not weakly referable / hashable
        pass
    try:
        read = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    with contextlib.suppress(TypeError):
        _READ[fn] = read
    return read


def parameters(fn: Any) -> Mapping[str, inspect.Parameter] | None:
    """The parameters of ``fn``, or None when it has no readable signature."""
    sig = signature(fn)
    return None if sig is None else sig.parameters


def _after_first(params: Mapping[str, inspect.Parameter]) -> list[inspect.Parameter]:
    """Every parameter but the first positional one (``params`` / ``optimizer``, optreg's)."""
    values = list(params.values())
    if values and values[0].kind in (values[0].POSITIONAL_ONLY, values[0].POSITIONAL_OR_KEYWORD):
        return values[1:]
    return values


def accepted_keywords(fn: Any) -> list[str] | None:
    """Keywords ``fn`` accepts after its first argument; None when it takes ``**kwargs``
    or has no readable signature (anything goes)."""
    params = parameters(fn)
    if params is None or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return [
        p.name for p in _after_first(params) if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def takes(fn: Any, key: str) -> str | None:
    """``"named"`` if ``fn`` names ``key``, ``"var"`` if it only has ``**kwargs`` (or no
    readable signature), else None."""
    params = parameters(fn)
    if params is None:
        return "var"
    if key in params:
        return "named"
    return "var" if any(p.kind is p.VAR_KEYWORD for p in params.values()) else None


def default(fn: Any, arg: str) -> Any:
    """The default of ``fn``'s argument ``arg``; None when it has none or is not named."""
    params = parameters(fn)
    if params is None or arg not in params or params[arg].default is _EMPTY:
        return None
    return params[arg].default


def with_defaults(fn: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the defaults of ``fn``'s other keyword arguments filled in: what a
    call effectively gets, so two spellings of one call compare equal."""
    params = parameters(fn)
    out: dict[str, Any] = {}
    for p in _after_first(params) if params is not None else ():
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not _EMPTY:
            out[p.name] = p.default
    out.update(kwargs)
    return out


def requires(fn: Any, arg: str) -> bool:
    """True when ``fn`` names ``arg`` and gives it no default."""
    params = parameters(fn)
    return params is not None and arg in params and params[arg].default is _EMPTY


def describe(fn: Any) -> tuple[str | None, tuple[str, ...]]:
    """``(signature text, required argument names after the first)`` of a factory."""
    params = parameters(fn)
    if params is None:
        return None, ()
    required = tuple(
        p.name
        for p in _after_first(params)
        if p.default is _EMPTY and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    )
    return str(signature(fn)), required


def check_keywords(
    label: str, fn: Any, kwargs: Iterable[str], *, reserved: Iterable[str] = ()
) -> None:
    """Reject keywords ``fn`` does not accept, naming ``label``, a close match and the rest.

    Raises:
        TypeError: ``got an unexpected keyword argument 'lrr'; did you mean 'lr'? ...``.
    """
    accepted = accepted_keywords(fn)
    if accepted is None:
        return
    accepted = [a for a in accepted if a not in set(reserved)]
    for key in kwargs:
        if key not in accepted:
            habit = HABITS.get(key)
            if habit is not None and habit[0] in accepted:
                did = f"; did you mean {habit[0]!r} ({habit[1]})?"
            else:
                hint = close_matches(key, accepted, n=1)
                did = f"; did you mean {hint[0]!r}?" if hint else "."
            raise TypeError(
                f"{label} got an unexpected keyword argument {key!r}{did} "
                f"Accepted keywords: {', '.join(accepted) or '(none)'}"
            )


#: Keywords other libraries spell another way: ours, and whose habit it is.
HABITS: dict[str, tuple[str, str]] = {
    "learning_rate": ("lr", "transformers' learning_rate"),
    "adam_beta1": ("betas", "transformers' adam_beta1: betas=(beta1, beta2)"),
    "adam_beta2": ("betas", "transformers' adam_beta2: betas=(beta1, beta2)"),
    "beta1": ("betas", "betas=(beta1, beta2)"),
    "beta2": ("betas", "betas=(beta1, beta2)"),
    "adam_epsilon": ("eps", "transformers' adam_epsilon"),
    "epsilon": ("eps", "Keras' epsilon"),
    "warmup_steps": ("num_warmup_steps", "transformers' warmup_steps"),
    "max_steps": ("num_training_steps", "the Trainer's max_steps"),
}


def step_needs_metric(scheduler: Any) -> bool:
    """Whether ``scheduler.step`` needs a metric (like ``ReduceLROnPlateau.step(metrics)``);
    ``scheduler`` may be the class (its ``step``'s ``self`` is not counted)."""
    params = parameters(getattr(scheduler, "step", None))
    if params is None:
        return False
    values = _after_first(params) if isinstance(scheduler, type) else list(params.values())
    return any(
        p.default is _EMPTY and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in values
    )


def needs_closure(optimizer: Any) -> bool:
    """Whether ``optimizer.step`` requires a closure (like ``torch.optim.LBFGS``).

    Read from the class: an LR scheduler wraps the instance's ``step`` in a
    ``(*args, **kwargs)`` counter on older torch releases (2.4)."""
    params = parameters(getattr(type(optimizer), "step", None))
    closure = None if params is None else params.get("closure")
    return closure is not None and closure.default is _EMPTY


def step_scheduler(scheduler: Any, metric: float, *, metric_driven: bool | None = None) -> None:
    """Step ``scheduler``: with ``metric`` if it is metric-driven, else without.

    Args:
        scheduler: an LR scheduler.
        metric: the value a metric-driven scheduler watches (e.g. a loss).
        metric_driven: known already; default: `step_needs_metric()`.
    """
    if step_needs_metric(scheduler) if metric_driven is None else metric_driven:
        scheduler.step(metric)
    else:
        scheduler.step()
