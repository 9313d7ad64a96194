"""optreg._build.config: build(model, config) from plain data, the same from JSON, YAML, TOML, OmegaConf."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import Net

import optreg

pytestmark = pytest.mark.usefixtures("fresh_registry")

CONFIG: dict[str, Any] = {
    "optimizer": {
        "name": "adamw",
        "lr": 3e-4,
        "weight_decay": 0.1,
        "betas": [0.9, 0.95],
        "overrides": {"embed": {"lr": 1e-4}},
    },
    "scheduler": {
        "name": "sequence",
        "phases": [
            {"name": "constant_with_warmup", "steps": 0.1, "num_warmup_steps": 1.0},
            {"name": "cosine", "steps": 0.9},
        ],
    },
    "num_training_steps": 100,
}

TOML = """
num_training_steps = 100

[optimizer]
name = "adamw"
lr = 3e-4
weight_decay = 0.1
betas = [0.9, 0.95]

[optimizer.overrides.embed]
lr = 1e-4

[scheduler]
name = "sequence"

[[scheduler.phases]]
name = "constant_with_warmup"
steps = 0.1
num_warmup_steps = 1.0

[[scheduler.phases]]
name = "cosine"
steps = 0.9
"""


def _run(optimizer: torch.optim.Optimizer, scheduler: Any, steps: int = 100) -> list[list[float]]:
    out = []
    for _ in range(steps):
        out.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return out


def _direct(model: torch.nn.Module) -> tuple[torch.optim.Optimizer, Any]:
    opt = optreg.get_optimizer(
        "adamw",
        model,
        lr=3e-4,
        weight_decay=0.1,
        betas=(0.9, 0.95),
        overrides={"embed": {"lr": 1e-4}},
    )
    sched = optreg.get_scheduler(
        "sequence", opt, num_training_steps=100, phases=CONFIG["scheduler"]["phases"]
    )
    return opt, sched


def test_build_is_get_optimizer_and_get_scheduler() -> None:
    opt, sched = optreg.build(Net(), CONFIG)
    ref_opt, ref_sched = _direct(Net())
    assert type(opt) is type(ref_opt) and opt.param_groups[0]["betas"] == (0.9, 0.95)
    assert _run(opt, sched) == _run(ref_opt, ref_sched)


def _from_yaml(tmp_path: Path) -> Any:
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return optreg.load_config(path)


def _from_json(tmp_path: Path) -> Any:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(CONFIG))
    return optreg.load_config(path)


def _from_toml(tmp_path: Path) -> Any:
    path = tmp_path / "c.toml"
    path.write_text(TOML)
    return optreg.load_config(path)


def _from_omegaconf(tmp_path: Path) -> Any:
    omegaconf = pytest.importorskip("omegaconf")
    return omegaconf.OmegaConf.create(CONFIG)  # DictConfig / ListConfig all the way down


def _inline(tmp_path: Path) -> Any:
    return optreg.load_config(json.dumps(CONFIG))  # what a command line passes


@pytest.mark.parametrize("source", [_from_yaml, _from_json, _from_toml, _from_omegaconf, _inline])
def test_the_same_config_from_every_format(source: Any, tmp_path: Path) -> None:
    loaded = source(tmp_path)
    assert optreg._build.config.plain_config(loaded) == CONFIG  # round-trips unchanged
    opt, sched = optreg.build(Net(), loaded)
    ref = _direct(Net())
    assert _run(opt, sched) == _run(*ref)


def test_plain_config_is_json_serialisable_plain_data() -> None:
    omegaconf = pytest.importorskip("omegaconf")
    plain = optreg._build.config.plain_config(omegaconf.OmegaConf.create(CONFIG))
    assert json.loads(json.dumps(plain)) == plain == CONFIG


def test_names_alone_and_no_scheduler() -> None:
    opt, sched = optreg.build([torch.nn.Parameter(torch.zeros(2))], {"optimizer": "adamw"})
    assert isinstance(opt, torch.optim.AdamW) and sched is None
    opt, sched = optreg.build(Net(), {"optimizer": "sgd", "scheduler": "constant"})
    assert sched is not None


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"optimiser": "adamw"}, ValueError, "config: unknown key 'optimiser'; did you mean 'optimizer'?"),
        ({"scheduler": "cosine"}, ValueError, "config needs an 'optimizer' section"),
        ({"optimizer": {"name": "adamw", "lrr": 1}}, TypeError, "unexpected keyword argument 'lrr'; did you mean 'lr'?"),
        ({"optimizer": "adamw", "scheduler": {"name": "cosine", "num_warmup_steps": 1, "num_cycle": 1}, "num_training_steps": 10},
         TypeError, "did you mean 'num_cycles'?"),
        ({"optimizer": {"lr": 1}}, TypeError, "config['optimizer'] must be a name or a mapping with a 'name'"),
        ({"optimizer": "adamw", "scheduler": "cosine"}, ValueError, "cosine requires `num_warmup_steps`"),
        ({"optimizer": "adamw", "scheduler": {"name": "cosine", "num_warmup_steps": 0.1}}, ValueError,
         "`num_warmup_steps` 0.1 is a fraction of `num_training_steps`, which was not given"),
    ],
)  # fmt: skip
def test_bad_configs_are_named(config: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error) as info:
        optreg.build(Net(), config)
    assert message in str(info.value)


def test_an_inline_json_error_points_at_the_position() -> None:
    with pytest.raises(ValueError) as info:
        optreg.load_config('{"optimizer": "adamw",}')
    message = str(info.value)
    assert message.startswith(
        "the inline config: Expecting property name enclosed in double quotes at line 1 column 23"
    )
    assert message.splitlines()[-1] == "  " + " " * 22 + "^"


def test_a_missing_file_and_a_bad_suffix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        optreg.load_config(tmp_path / "nope.yaml")
    (tmp_path / "c.ini").write_text("x")
    with pytest.raises(ValueError, match=r"use a \.json, \.yaml, \.yml or \.toml file"):
        optreg.load_config(tmp_path / "c.ini")


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    """~500 bytes of nested aliases stand for 9**9 values: build hung for minutes."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    lines.append("optimizer: {name: adamw, lr: 0.001}")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert len(path.read_bytes()) < 600
    for source in (path, str(path)):
        with pytest.raises(
            ValueError, match=r"holds more than 100,000 values once its YAML aliases"
        ):
            optreg.build(torch.nn.Linear(2, 2), source)
    import yaml

    with pytest.raises(ValueError, match="more than 100,000 values"):
        optreg.build(torch.nn.Linear(2, 2), yaml.safe_load(path.read_text()))


def test_a_config_nested_too_deep_is_refused_by_name(tmp_path: Path) -> None:
    """5,000 levels raised a bare RecursionError; depth is bounded as size is."""
    deep: Any = 1
    for _ in range(5000):
        deep = {"x": deep}
    with pytest.raises(ValueError, match="nests mappings or lists more than 100 levels deep"):
        optreg.build(torch.nn.Linear(2, 2), {"optimizer": {"name": "adamw", "lr": deep}})
    text = '{"optimizer": ' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(ValueError, match="the inline config nests mappings or lists more than"):
        optreg.load_config(text)
    path = tmp_path / "deep.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="deep.json nests mappings or lists more than"):
        optreg.build(torch.nn.Linear(2, 2), path)


def test_a_null_num_training_steps_in_the_section_takes_the_top_level_one() -> None:
    config = {
        "optimizer": "sgd",
        "scheduler": {"name": "linear", "num_warmup_steps": 0, "num_training_steps": None},
        "num_training_steps": 10,
    }
    _, scheduler = optreg.build(torch.nn.Linear(2, 2), config)
    assert scheduler.lr_lambdas[0](5) == 0.5  # linear over the top-level 10 steps


@pytest.mark.parametrize(
    ("section", "key"), [("optimizer", "params"), ("scheduler", "optimizer")]
)
def test_a_reserved_key_in_a_section_is_a_config_error(section: str, key: str) -> None:
    config: dict[str, Any] = {"optimizer": {"name": "sgd", "lr": 0.1}, "scheduler": "constant"}
    config[section] = {**({"name": "sgd"} if section == "optimizer" else {"name": "constant"})}
    config[section][key] = "x"
    with pytest.raises(ValueError) as info:
        optreg.build(torch.nn.Linear(2, 2), config)
    assert str(info.value).startswith(
        f"config[{section!r}]: {key!r} cannot be given in a config ("
    )
    assert f"remove {key!r} from the {section!r} section" in str(info.value)
