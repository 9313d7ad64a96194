"""One home for "embedding / head / norm": muon routing, rules, layer decay and the dry
run decide alike, on a zoo of the module shapes real models have."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import optreg
from optreg.params._kinds import is_embedding, is_head, is_named_pairs, is_norm  # under test

pytestmark = pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="needs torch.optim.Muon")

D = 8


class ViT(nn.Module):
    """timm's VisionTransformer names: a 2-D ``pos_embed`` Parameter, ``head`` Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(5, D))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Linear(12, D)
        self.blocks = nn.ModuleList([nn.Module()])
        self.blocks[0].norm1 = nn.LayerNorm(D)
        self.blocks[0].qkv = nn.Linear(D, 3 * D)
        self.norm = nn.LayerNorm(D)
        self.head = nn.Linear(D, 3)


class T5(nn.Module):
    """T5 / BART: the embedding is ``shared``; T5's relative attention bias an Embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Embedding(11, D)
        self.encoder = nn.Module()
        self.encoder.block = nn.ModuleList([nn.Module()])
        attn = nn.Module()
        attn.q = nn.Linear(D, D, bias=False)
        attn.relative_attention_bias = nn.Embedding(6, 2)
        self.encoder.block[0].SelfAttention = attn
        self.lm_head = nn.Linear(D, 11, bias=False)


class RoBERTaClassifier(nn.Module):
    """A head built from submodules (``classifier.dense`` / ``classifier.out_proj``) and a
    block's own ``output.dense``, which is a hidden layer."""

    def __init__(self) -> None:
        super().__init__()
        self.roberta = nn.Module()
        self.roberta.embeddings = nn.Module()
        self.roberta.embeddings.word_embeddings = nn.Embedding(11, D)
        self.roberta.encoder = nn.Module()
        self.roberta.encoder.layer = nn.ModuleList([nn.Module()])
        self.roberta.encoder.layer[0].output = nn.Module()
        self.roberta.encoder.layer[0].output.dense = nn.Linear(D, D)
        self.classifier = nn.Module()
        self.classifier.dense = nn.Linear(D, D)
        self.classifier.out_proj = nn.Linear(D, 2)


class GPT2(nn.Module):
    """A head tied to the token embedding (listed once, as the embedding)."""

    def __init__(self) -> None:
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(11, D)
        self.transformer.wpe = nn.Embedding(7, D)
        self.transformer.h = nn.ModuleList([nn.Module()])
        self.transformer.h[0].c_fc = nn.Linear(D, 4 * D)
        self.transformer.ln_f = nn.LayerNorm(D)
        self.lm_head = nn.Linear(D, 11, bias=False)
        self.lm_head.weight = self.transformer.wte.weight


class TimmHead(nn.Module):
    """timm's ``head.fc``."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Module()])
        self.blocks[0].fc1 = nn.Linear(D, D)
        self.head = nn.Module()
        self.head.fc = nn.Linear(D, 4)


#: The 2-D weights that belong on Muon; every other trainable parameter goes to AdamW.
ZOO = {
    ViT: {"blocks.0.qkv.weight"},  # patch_embed.proj is the input layer: AdamW
    T5: {"encoder.block.0.SelfAttention.q.weight"},
    RoBERTaClassifier: {"roberta.encoder.layer.0.output.dense.weight"},
    GPT2: {"transformer.h.0.c_fc.weight"},
    TimmHead: {"blocks.0.fc1.weight"},
}


@pytest.mark.parametrize("cls", list(ZOO), ids=lambda c: c.__name__)
def test_module_and_named_pairs_route_alike(cls: type[nn.Module]) -> None:
    from optreg.builtin.muon import route

    model = cls()
    expected = {n: "muon" if n in ZOO[cls] else "adamw" for n, _ in model.named_parameters()}
    assert route(model) == expected
    assert route(list(model.named_parameters())) == expected


@pytest.mark.parametrize("cls", list(ZOO), ids=lambda c: c.__name__)
def test_the_optimizer_and_the_dry_run_agree(cls: type[nn.Module]) -> None:
    model = cls()
    report = optreg.explain_groups("muon_adamw", model)
    sides = {row.param: row.optimizer for row in report.rows}
    assert sides == {n: "muon" if n in ZOO[cls] else "adamw" for n, _ in model.named_parameters()}
    assert not [w for w in report.warnings if "goes to the 'muon' side" in w], report.warnings
    opt = optreg.get_optimizer("muon_adamw", list(model.named_parameters()))
    assert opt.routes == sides


def test_the_dry_run_flags_an_embedding_or_head_sent_to_muon_by_a_rule() -> None:
    model = RoBERTaClassifier()
    report = optreg.explain_groups(
        "muon_adamw",
        model,
        rules=[
            {"match": "classifier.out_proj.weight", "optimizer": "muon"},
            {"match": "roberta.embeddings.*", "optimizer": "muon"},
        ],
    )
    assert report.warnings == (
        "roberta.embeddings.word_embeddings.weight is an embedding and goes to the 'muon' side, "
        "which updates whole matrices (route it to 'adamw')",
        "classifier.out_proj.weight is an output head and goes to the 'muon' side, which "
        "updates whole matrices (route it to 'adamw')",
    )


@pytest.mark.parametrize(
    ("name", "embedding", "head"),
    [
        ("pos_embed", True, False),
        ("model.embed_tokens.weight", True, False),
        ("shared.weight", True, False),
        ("mlp.shared_experts.0.up.weight", False, False),  # an MoE's shared experts: hidden
        ("lm_head.weight", False, True),
        ("classifier.out_proj.weight", False, True),
        ("encoder.layer.0.output.dense.weight", False, False),
        ("layers.3.feed_forward.w1.weight", False, False),
        ("output.weight", False, True),  # Meta Llama's head
    ],
)
def test_by_name(name: str, embedding: bool, head: bool) -> None:
    assert (is_embedding(name), is_head(name)) == (embedding, head)


def test_module_types_count_too() -> None:
    assert is_embedding("anything.weight", nn.Embedding(2, 2))
    assert is_norm(nn.LayerNorm(2)) and not is_norm(nn.Linear(2, 2)) and not is_norm(None)

    class MyRMSNorm(nn.Module):
        pass

    assert is_norm(MyRMSNorm())
    assert is_named_pairs([("a", torch.zeros(1))])
    assert not is_named_pairs([]) and not is_named_pairs([("a", 1)]) and not is_named_pairs("ab")


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("adamw", {}),
        ("adamw", {"rules": [{"match": "pos_embed", "lr_scale": 0.1}], "layer_decay": 0.8}),
        ("muon_adamw", {"rules": [{"match": "head", "optimizer": "adamw"}]}),
    ],
    ids=["grouped", "rules-and-layer-decay", "routed"],
)
def test_a_build_walks_the_models_parameters_once(
    name: str, kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    if name == "muon_adamw" and not hasattr(torch.optim, "Muon"):
        pytest.skip("torch.optim.Muon needs torch >= 2.9")
    model = ViT()
    walks = []
    original = type(model).named_parameters

    def counting(self: nn.Module, prefix: str = "", recurse: bool = True, **kw: Any) -> Any:
        if self is model and recurse:
            walks.append(1)
        return original(self, prefix, recurse, **kw)

    monkeypatch.setattr(type(model), "named_parameters", counting)
    opt = optreg.get_optimizer(name, model, **kwargs)
    assert len(walks) == 1
    record = optreg.state_dict(opt)  # the names the record keeps came from that walk
    assert record["optimizer"]["groups"][0]["params"][0] is not None
