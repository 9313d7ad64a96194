"""optreg._build.records: what get_optimizer / get_scheduler remember, weakly."""

from __future__ import annotations

import gc
import weakref

import torch

import optreg
from optreg._build import records as _records  # the module under test
from optreg._build.spec import OptimizerSpec, Spec  # what a record is read back into


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
    assert optreg.state_dict(opt, sched)["scheduler"]["name"] == "optreg:constant"  # recorded
    refs = [weakref.ref(opt), weakref.ref(sched)]
    del opt, sched
    gc.collect()
    assert [ref() for ref in refs] == [None, None]  # the records did not keep them


def test_a_record_keeps_values_not_references() -> None:
    """A schedule fills a tensor lr in place: the record keeps the lr given (0.01), so a
    resume neither warns falsely nor rebuilds with the scheduled lr."""
    model = torch.nn.Linear(2, 2)
    lr = torch.tensor(0.01)
    opt = optreg.get_optimizer("adamw", model, lr=lr)
    sched = optreg.get_scheduler("linear", opt, num_warmup_steps=0, num_training_steps=10)
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    sched.step()
    record = optreg.state_dict(opt, sched)
    assert lr.item() < 0.01  # the schedule filled the tensor in place
    assert record["optimizer"]["kwargs"]["lr"].item() == torch.tensor(0.01).item()
    spec = Spec.from_record(record)
    assert spec.optimizer is not None
    assert spec.optimizer.kwargs["lr"].item() == torch.tensor(0.01).item()
    rebuilt, _ = optreg.from_state_dict(record, model)
    assert rebuilt.param_groups[0]["initial_lr"].item() == torch.tensor(0.01).item()


def test_a_single_no_decay_pattern_is_recorded_as_one_pattern() -> None:
    spec = OptimizerSpec("adamw", {"lr": 0.1, "weight_decay": 0.1}, {"no_decay": "bias"})
    assert spec.record()["no_decay"] == ["bias"]  # not ['b', 'i', 'a', 's']
    opt = spec.build(torch.nn.Linear(2, 2))
    record = optreg.state_dict(opt)
    assert record["optimizer"]["no_decay"] == ["bias"]


def test_a_record_round_trips_through_plain_data_with_one_grouping() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = optreg.get_optimizer(
        "adamw",
        model,
        lr=1e-3,
        weight_decay=0.1,
        no_decay="bias",
        rules=[{"match": "0.*", "lr_scale": 0.5}],
    )
    data = optreg.state_dict(opt)["optimizer"]
    # the published layout: no_decay / overrides beside kwargs, the rest under grouping
    assert (data["no_decay"], data["overrides"]) == (["bias"], None)
    assert data["grouping"] == {"rules": [{"match": "0.*", "lr_scale": 0.5}]}
    record = _records.OptimizerRecord.from_data(data)
    assert (record.name, record.qualified_name) == ("adamw", "optreg:adamw")
    assert record.grouping == {"no_decay": ["bias"], "rules": [{"match": "0.*", "lr_scale": 0.5}]}
    assert {k: data[k] for k in record.to_data()} == record.to_data()  # the same plain data
    assert _records.optimizer_record_of(opt) is not None
    assert _records.optimizer_record_of(torch.optim.SGD(model.parameters(), lr=0.1)) is None


def test_records_of_every_version_migrate_to_one_grouping() -> None:
    """0.1 kept only no_decay / overrides; 0.2 on, the rest under "grouping"."""
    v01 = {"name": "optreg:adamw", "provider": "optreg", "kwargs": {"lr": 0.1},
           "no_decay": ["bias"], "overrides": None}  # fmt: skip
    v02 = {**v01, "provider_version": "0.2.0", "overrides": {"0.": {"lr": 0.2}},
           "grouping": {"layer_decay": 0.5}}  # fmt: skip
    assert _records.migrate(v01)["grouping"] == {"no_decay": ["bias"]}
    assert _records.migrate(v02)["grouping"] == {
        "no_decay": ["bias"],
        "overrides": {"0.": {"lr": 0.2}},
        "layer_decay": 0.5,
    }
    old = _records.OptimizerRecord.from_data(v01)
    assert (old.provider_version, old.kwargs) == (None, {"lr": 0.1})
    spec = OptimizerSpec.from_record(v02)
    assert spec.grouping == {
        "no_decay": ["bias"],
        "overrides": {"0.": {"lr": 0.2}},
        "layer_decay": 0.5,
    }
