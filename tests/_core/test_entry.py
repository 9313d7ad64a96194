"""optreg._core.entry: name normalisation, qualified names and make_entry, where every entry is built."""

from __future__ import annotations

import pytest

from optreg._core.entry import (  # the module under test
    is_ref,
    make_entry,
    normalize_dist,
    normalize_name,
    split_qualified,
)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("AdamW", "adamw"),
        (" adam-w\t", "adam_w"),
        ("Paged-AdamW_8bit", "paged_adamw_8bit"),
        ("ADAMW-Torch", "adamw_torch"),
        ("lion.v2", "lion.v2"),
    ],
)
def test_normalize_name(given: str, canonical: str) -> None:
    assert normalize_name(given) == canonical


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (3, TypeError, "name must be a str, got int: 3"),
        ("  ", ValueError, "name must be a non-empty string, got '  '"),
        ("a:b", ValueError, "contains ':', which is reserved for qualified names"),
        ("adam w", ValueError, "invalid name 'adam w': use letters, digits"),
        ("", ValueError, "non-empty"),
        ("é", ValueError, "'é'"),
        (None, TypeError, "got NoneType: None"),
    ],
)
def test_normalize_name_errors(given: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        normalize_name(given)


def test_split_qualified() -> None:
    assert split_qualified("My-Dist:Adam-W") == ("my_dist", "adam_w")
    assert split_qualified("adamw") == (None, "adamw")
    with pytest.raises(ValueError, match=r"invalid qualified name 'optreg:' \('dist:name'\)"):
        split_qualified("optreg:")
    assert normalize_dist("Acme.Opt--Plugin") == "acme_opt_plugin"
    assert normalize_dist("Optreg-Pytorch.Optimizer") == "optreg_pytorch_optimizer"


def test_is_ref() -> None:
    assert is_ref("torch.optim:SGD")
    assert not any(is_ref(x) for x in ("torch.optim", ":SGD", "torch.optim:", "a b:c", 3))


def _factory(params: object) -> None:
    """Builds nothing.

    More text.
    """


def test_make_entry_normalises_everything() -> None:
    entry = make_entry(
        "optimizer",
        " Fancy-Opt ",
        "pkg.mod:Fancy",
        provider="acme_opt",
        aliases=["FANCY", "fancy-opt", "fo"],
        requires=["pkg", "torch>=2.9"],
        metadata={"k": 1},
    )
    assert entry.name == "fancy_opt"
    assert entry.aliases == ("fancy", "fo")  # the name itself is not an alias of itself
    assert entry.source == "plugin"
    assert entry.requires == ("pkg", "torch>=2.9")
    assert entry.qualified_name == "acme_opt:fancy_opt"
    with pytest.raises(TypeError):
        entry.metadata["k"] = 2  # type: ignore[index]


def test_make_entry_source_follows_the_provider() -> None:
    assert make_entry("optimizer", "a", _factory).source == "runtime"
    assert make_entry("optimizer", "a", _factory, provider="optreg").source == "builtin"
    assert make_entry("optimizer", "a", _factory).description == "Builds nothing."
    assert make_entry("optimizer", "a", "m:f").description == ""  # lazy: nothing imported


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"target": 3}, TypeError, "factory for 'x' must be a callable or a 'module:attr' string, got int: 3"),
        ({"target": "no_colon"}, TypeError, "got str: 'no_colon'"),
        ({"requires": ["torch >= two"]}, ValueError, "requirement 'torch >= two' must be a module name"),
        ({"aliases": ["a:b"]}, ValueError, "optimizer alias 'a:b' contains ':'"),
        ({"metadata": [1]}, TypeError, "metadata must be a mapping, got list"),
    ],
)  # fmt: skip
def test_make_entry_errors(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    call: dict[str, object] = {"target": _factory, **kwargs}
    target = call.pop("target")
    with pytest.raises(error, match=message):
        make_entry("optimizer", "x", target, **call)  # type: ignore[arg-type]


# ---------------------------------------------------------------- hardening (issue 15)


def test_aliases_none_or_one_string() -> None:
    assert make_entry("optimizer", "sgd2", _factory, aliases=None).aliases == ()  # type: ignore[arg-type]
    assert make_entry("optimizer", "sgd2", _factory, aliases="sgd_two").aliases == ("sgd_two",)


def test_a_description_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="optimizer 'x': description must be a str, got int: 3"):
        make_entry("optimizer", "x", _factory, description=3)  # type: ignore[arg-type]


def test_a_target_with_surrounding_blanks_is_stripped() -> None:
    assert make_entry("optimizer", "x", "torch.optim:SGD\n").target == "torch.optim:SGD"


class _Undocumented:
    def __init__(self, params: object) -> None: ...


class _Base:
    """Base class for all optimizers."""


class _Child(_Base):
    pass


def test_descriptions_come_from_the_targets_own_docstring() -> None:
    assert make_entry("optimizer", "x", _Child).description == ""  # not the base class's
    assert make_entry("optimizer", "x", _Undocumented).description == ""
    assert make_entry("optimizer", "x", _Base).description == "Base class for all optimizers."


def test_a_relative_requirement_is_refused_at_registration() -> None:
    with pytest.raises(ValueError, match="requirement '.rel' must be a module name"):
        make_entry("optimizer", "r", "torch.optim:SGD", requires=[".rel"])
