"""optreg._core.loading: targets imported once and only when used; availability without importing."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

import pytest

import optreg
from optreg import Entry, MissingDependencyError, PluginLoadError
from optreg._core import loading  # the module under test

if TYPE_CHECKING:
    from conftest import MakeDist

    from optreg import Catalog
    from optreg._core.entry import Kind  # a Literal, for the type checker only


def make_entry(kind: Kind, name: str, target: str, **fields: Any) -> Entry:
    """An entry as discovery makes one (``requires`` as a list, like a plugin gives it)."""
    if "requires" in fields:
        fields["requires"] = tuple(fields["requires"])
    return Entry(name=name, kind=kind, target=target, source="plugin", **fields)


def test_load_imports_once_and_caches(make_dist: MakeDist) -> None:
    make_dist("acme-x", modules={"acme_x": "import torch\nclass Opt(torch.optim.SGD): pass\n"})
    entry = make_entry("optimizer", "x", "acme_x:Opt", provider="acme_x")
    assert loading.status(entry) == (True, None)
    assert "acme_x" not in sys.modules  # status() imports nothing
    first = loading.load(entry)
    assert first.__name__ == "Opt" and "acme_x" in sys.modules
    assert loading.load(entry) is first


def test_a_broken_target_is_a_chained_plugin_load_error(make_dist: MakeDist) -> None:
    make_dist("acme-y", modules={"acme_y": "raise RuntimeError('no luck')\n"})
    entry = make_entry(
        "optimizer", "y", "acme_y:Opt", provider="acme_y", entry_point="optreg.optimizers: y"
    )
    with pytest.raises(PluginLoadError) as info:
        loading.load(entry)
    message = str(info.value)
    assert message == (
        "optimizer 'y' from distribution 'acme_y' (entry point optreg.optimizers: y): "
        "cannot load 'acme_y:Opt': RuntimeError: no luck"
    )
    assert isinstance(info.value.__cause__, RuntimeError)
    assert loading.status(entry) == (False, message)  # remembered for listings


def test_missing_requirement_names_the_extra() -> None:
    entry = make_entry(
        "optimizer", "z", "nope_mod:Z", provider="optreg", requires=["nope_mod"], extra="nope"
    )
    reason = "optimizer 'z' needs nope_mod, which is not installed; install it with: pip install \"optreg[nope]\""
    assert loading.status(entry) == (False, reason)
    with pytest.raises(MissingDependencyError, match="optreg\\[nope\\]"):
        loading.load(entry)


def test_minimum_version_requirement() -> None:
    from importlib.metadata import version

    too_new = make_entry("optimizer", "w", "torch.optim:SGD", requires=["torch>=999.0"])
    available, reason = loading.status(too_new)
    assert not available
    assert reason == f"optimizer 'w' needs torch>=999.0, but torch {version('torch')} is installed"
    assert loading.status(make_entry("optimizer", "v", "torch.optim:SGD", requires=["torch>=2.4"]))[
        0
    ]


def test_missing_target_module_is_unavailable() -> None:
    entry = make_entry("scheduler", "q", "not_installed_pkg.mod:f", provider="acme")
    assert loading.status(entry) == (
        False,
        "module 'not_installed_pkg' of target 'not_installed_pkg.mod:f' is not installed; "
        "install it with: pip install not_installed_pkg",
    )


# ---------------------------------------------------------------- hardening (issue 15)


def test_dotted_requirements_run_no_plugin_code(make_dist: MakeDist) -> None:
    """Probing ``requires=("dep.sub",)`` must not import ``dep`` (finding a submodule
    imports its parent): availability never runs plugin code."""
    make_dist("acme-dep", modules={"acme_dep": "raise RuntimeError('ran')\n", "acme_dep.sub": ""})
    entry = make_entry(
        "optimizer", "d", "torch.optim:SGD", provider="acme", requires=["acme_dep.sub"]
    )
    assert loading.status(entry) == (True, None)
    assert "acme_dep" not in sys.modules
    missing = make_entry("optimizer", "m", "torch.optim:SGD", requires=["nope_pkg.sub"])
    assert loading.status(missing)[0] is False


def test_a_target_that_is_not_callable_names_its_plugin() -> None:
    entry = make_entry("optimizer", "pi", "math:pi", provider="acme_math")
    with pytest.raises(PluginLoadError) as info:
        loading.load(entry)
    assert str(info.value) == (
        "optimizer 'pi' from distribution 'acme_math': target 'math:pi' is float "
        "3.141592653589793, not a callable factory"
    )


def test_install_hint_names_the_distribution(make_dist: MakeDist) -> None:
    """The hint names what to pip install: the plugin's own requirement that provides the
    module (``lion-pytorch>=0.1`` for ``lion_pytorch``), or its extra."""
    site = make_dist("acme-lion-plug")
    meta = next(site.glob("acme_lion_plug-*.dist-info")) / "METADATA"
    meta.write_text(
        meta.read_text() + "Requires-Dist: Lion-PyTorch>=0.1\nRequires-Dist: tqdm; extra == 'bar'\n"
    )
    import importlib_metadata

    dist = importlib_metadata.distribution("acme-lion-plug")
    lion = make_entry(
        "optimizer",
        "lion",
        "lion_pytorch:Lion",
        provider="acme_lion_plug",
        requires=["lion_pytorch"],
        dist=dist,
    )
    assert loading.status(lion) == (
        False,
        "optimizer 'lion' needs lion_pytorch, which is not installed; install it with: "
        'pip install "Lion-PyTorch>=0.1"',
    )
    extra = make_entry(
        "optimizer",
        "x",
        "nope_x:X",
        provider="acme_lion_plug",
        requires=["nope_x"],
        extra="bar",
        dist=dist,
    )
    assert loading.status(extra)[1] == (
        "optimizer 'x' needs nope_x, which is not installed; install it with: "
        'pip install "acme-lion-plug[bar]"'
    )


THREAD_RACE = """
import sys, threading, warnings
import torch
import optreg
warnings.simplefilter("ignore")
names = ["adamw_8bit", "adamw", "lion_8bit", "sgd", "paged_adamw_8bit", "adam", "adagrad_8bit", "rmsprop"]
errors = []
barrier = threading.Barrier(32)

def build(i):
    try:
        p = torch.nn.Parameter(torch.zeros(4096 + i))
        barrier.wait()
        opt = optreg.get_optimizer(names[i % len(names)], [p], lr=1e-3)
        p.grad = torch.ones_like(p)
        opt.step()
    except BaseException as e:
        errors.append(f"{names[i % len(names)]}: {type(e).__name__}: {e}")

threads = [threading.Thread(target=build, args=(i,)) for i in range(32)]
for t in threads: t.start()
for t in threads: t.join()
print("\\n".join(errors) or "ok")
"""


def test_32_threads_mixing_8bit_and_other_names_on_first_use() -> None:
    """Importing bitsandbytes while another thread builds its first torch optimizer
    breaks torch 2.13 ('partially initialized module torch._inductor.utils'); through
    optreg those first uses are serialised."""
    import subprocess

    if not optreg.optimizers.status(optreg.optimizers["adamw_8bit"])[0]:
        pytest.skip("needs bitsandbytes")
    out = subprocess.run(
        [sys.executable, "-c", THREAD_RACE], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_unregistered_or_replaced_runtime_factories_are_not_kept(fresh_registry: Catalog) -> None:
    import gc
    import weakref

    import torch

    refs = []
    for i in range(50):
        ballast = bytearray(1 << 20)  # a closure holding memory, as a real factory may

        def factory(params: object, lr: float = 0.1, _b: bytearray = ballast) -> object:
            return torch.optim.SGD(params, lr=lr)  # type: ignore[arg-type]

        refs.append(weakref.ref(factory))
        optreg.register_optimizer(f"runtime_{i % 5}", factory, override=True)
        optreg.get_optimizer(f"runtime_{i % 5}", [torch.nn.Parameter(torch.zeros(1))])
        if i % 2:
            optreg.optimizers.unregister(f"runtime_{i % 5}")
        del factory, ballast
    gc.collect()
    alive = [r for r in refs if r() is not None]
    assert len(alive) <= 5  # only what the registry still holds
    assert len(fresh_registry.slots) <= 5  # a slot per entry the catalog still holds


SIGNATURE_FROM_A_BROKEN_LIBRARY = """
import functools
import torch


class Factory:
    @functools.cached_property
    def __signature__(self):
        raise RuntimeError("operator torchvision::nms does not exist")

    def __call__(self, params, **kwargs):
        return torch.optim.SGD(params, lr=0.1)


sig_opt = Factory()
"""


def test_a_factory_whose_signature_raises_is_a_plugin_load_error_everywhere(
    make_dist: MakeDist, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from optreg.cli import main

    make_dist(
        "acme-sig",
        entry_points={"optreg.optimizers": {"sig_opt": "acme_sig:sig_opt"}},
        modules={"acme_sig": SIGNATURE_FROM_A_BROKEN_LIBRARY},
    )
    expected = (
        r"optimizer 'sig_opt' from distribution 'acme_sig' \(entry point .*\): the signature "
        r"of acme_sig:sig_opt cannot be read: RuntimeError: operator torchvision::nms"
    )
    with pytest.raises(PluginLoadError, match=expected) as info:
        optreg.get_optimizer("sig_opt", [torch.nn.Parameter(torch.zeros(1))])
    assert isinstance(info.value.__cause__, RuntimeError)
    info_ = optreg.optimizer_info("sig_opt")
    assert info_.available is False and re.search(expected, str(info_.reason))
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "BROKEN       optimizer acme_sig:sig_opt: PluginLoadError:" in out
    assert "the signature of acme_sig:sig_opt cannot be read" in out
    assert optreg.optimizers.status(optreg.optimizers.resolve("sig_opt"))[0] is False
