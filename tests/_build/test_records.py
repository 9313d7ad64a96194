"""optreg._build.records: what get_optimizer / get_scheduler remember, weakly."""

from __future__ import annotations

import gc
import weakref

import torch

import optreg
from optreg._build import records as _records


def test_names_come_from_a_module_or_named_pairs_only() -> None:
    model = torch.nn.Linear(2, 2)
    assert _records.parameter_names(model) == {
        id(model.weight): "weight",
        id(model.bias): "bias",
    }
    pairs = list(model.named_parameters())
    assert _records.parameter_names(pairs) == {id(p): n for n, p in pairs}
    assert _records.parameter_names(list(model.parameters())) == {}
    assert _records.parameter_names([{"params": [model.weight]}]) == {}


def test_a_record_keeps_nothing_alive() -> None:
    opt = optreg.get_optimizer("sgd", torch.nn.Linear(2, 2), lr=0.1)
    sched = optreg.get_scheduler("constant", opt)
    assert opt in _records.optimizers and sched in _records.schedulers
    refs = [weakref.ref(opt), weakref.ref(sched)]
    del opt, sched
    gc.collect()
    assert [ref() for ref in refs] == [None, None]  # the records did not keep them
