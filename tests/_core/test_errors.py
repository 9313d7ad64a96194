"""optreg._core.errors: every error and warning optreg raises lives here and is exported."""

from __future__ import annotations

import inspect

import pytest

import optreg
from optreg._core import errors  # the module under test


def test_every_class_is_exported_and_documented_in_the_tree() -> None:
    classes = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and obj.__module__ == errors.__name__
    }
    assert classes == set(errors.__all__) - {"close_matches"}
    assert classes <= set(optreg.__all__)
    doc = errors.__doc__ or ""
    for name in classes:
        assert name in doc, f"{name} missing from the tree in optreg._core.errors' docstring"


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (optreg.UnknownNameError, (optreg.OptregError, KeyError, ValueError)),
        (optreg.DuplicateNameError, (optreg.OptregError, ValueError)),
        (optreg.AmbiguousNameError, (optreg.OptregError, ValueError)),
        (optreg.PluginLoadError, (optreg.OptregError, ImportError)),
        (optreg.MissingDependencyError, (optreg.OptregError, ImportError)),
        (optreg.UsageError, (optreg.OptregError,)),
        (optreg.OptregPluginWarning, (UserWarning,)),
        (optreg.PagedFallbackWarning, (UserWarning,)),
    ],
)
def test_hierarchy(cls: type, bases: tuple[type, ...]) -> None:
    assert all(issubclass(cls, b) for b in bases)


def test_no_error_or_warning_class_outside_the_errors_module() -> None:
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(optreg.__path__, "optreg."):
        if info.name in ("optreg.__main__", "optreg._core.errors"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ModuleNotFoundError as e:  # optreg.integrations.transformers without it
            if info.name.startswith("optreg.integrations.") and e.name == "transformers":
                continue
            raise
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, (Exception, Warning))
                and obj.__module__ == info.name
            ):
                raise AssertionError(f"{info.name}.{name} belongs in optreg._core.errors")


def test_unknown_name_error_reads_well() -> None:
    error = optreg.UnknownNameError("optimizer", "adamx", ["adamw", "adam", "sgd"])
    assert (
        str(error)
        == "unknown optimizer 'adamx'; did you mean 'adam' or 'adamw'? (see `optreg list optimizers`)"
    )


@pytest.mark.parametrize(
    "error",
    [
        optreg.UnknownNameError("optimizer", "adamx", ["adamw", "adam", "sgd"]),
        optreg.DuplicateNameError("optimizer name 'x' is already registered"),
        optreg.AmbiguousNameError("optimizer name 'lion' is provided by several plugins"),
        optreg.PluginLoadError("optimizer 'y' from distribution 'acme': cannot load"),
        optreg.MissingDependencyError("needs bitsandbytes"),
        optreg.UsageError("--kw given twice"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_pickles_and_copies(error: Exception) -> None:
    """An error raised in a multiprocessing worker must reach the parent intact."""
    import copy
    import pickle

    for again in (pickle.loads(pickle.dumps(error)), copy.deepcopy(error), copy.copy(error)):
        assert type(again) is type(error)
        assert str(again) == str(error)
        assert again.args == error.args
    if isinstance(error, optreg.UnknownNameError):
        again = pickle.loads(pickle.dumps(error))
        assert (again.kind, again.name, again.suggestions) == (
            "optimizer",
            "adamx",
            ["adam", "adamw"],
        )


def test_unknown_name_error_crosses_a_process_pool() -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1) as pool:
        future = pool.submit(optreg.get_optimizer, "adamx", [])
        with pytest.raises(
            optreg.UnknownNameError, match="unknown optimizer 'adamx'; did you mean"
        ):
            future.result(timeout=120)
