"""optreg._core.describe: what optimizer_info / scheduler_info / optreg info report about a name."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from conftest import rediscover

import optreg

if TYPE_CHECKING:
    from conftest import MakeDist

pytestmark = pytest.mark.usefixtures("fresh_registry")


def test_info() -> None:
    info = optreg.optimizer_info("AdamW_Torch")
    assert info.name == "adamw"
    assert "adamw_torch" in info.aliases
    assert info.provider == "optreg"
    assert info.available is True and info.reason is None
    assert info.signature is not None and "lr" in info.signature
    assert info.qualified_name == "optreg:adamw"
    sinfo = optreg.scheduler_info("linear")
    assert set(sinfo.required_args) == {"num_warmup_steps", "num_training_steps"}


def test_runtime_info_provider() -> None:
    optreg.register_optimizer("mine", "torch.optim:SGD", description="mine")
    assert optreg.optimizer_info("mine").provider == "(registered at run time)"
    assert optreg.optimizer_info("mine").description == "mine"


def test_an_entry_point_class_without_a_docstring_shows_no_inherited_text(
    make_dist: MakeDist,
) -> None:
    site = make_dist(
        "acme-quiet",
        entry_points={"optreg.optimizers": {"quiet": "acme_quiet:Quiet"}},
        modules={"acme_quiet": "import torch\nclass Quiet(torch.optim.SGD):\n    pass\n"},
    )
    info = optreg.optimizer_info("quiet")
    assert info.doc == "" and info.description == ""  # not "Base class for all optimizers."
    meta = next(site.glob("acme_quiet-*.dist-info")) / "METADATA"
    meta.write_text(meta.read_text() + "Summary: Quiet optimizers for acme\n")
    rediscover()
    info = optreg.optimizer_info("quiet")
    assert info.description == info.doc == "Quiet optimizers for acme"  # the distribution's
    assert info.provider == "acme-quiet"


def test_an_entry_points_description_is_its_factorys_docstring(make_dist: MakeDist) -> None:
    """Not the distribution's summary, which every name of the plugin shares."""
    site = make_dist(
        "acme-loud",
        entry_points={
            "optreg.optimizers": {"loud": "acme_loud:Loud", "louder": "acme_loud:Louder"}
        },
        modules={
            "acme_loud": (
                "import torch\n"
                "class Loud(torch.optim.SGD):\n    '''SGD that shouts.\n\n    More.'''\n"
                "class Louder(torch.optim.SGD):\n    '''SGD that shouts louder.'''\n"
            )
        },
    )
    meta = next(site.glob("acme_loud-*.dist-info")) / "METADATA"
    meta.write_text(meta.read_text() + "Summary: Loud optimizers for acme\n")
    rediscover()
    assert optreg.optimizer_info("loud").description == "SGD that shouts."
    assert optreg.optimizer_info("louder").description == "SGD that shouts louder."
