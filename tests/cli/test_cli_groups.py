"""``optreg groups``: the dry run from the command line (table, --json, errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optreg.cli import main


def test_the_table_on_the_example_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["groups", "adamw", "--kw", "lr=1e-3", "--kw", "weight_decay=0.1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["parameter", "shape", "group", "optimizer", "lr", "weight_decay"]
    assert lines[2].split() == ["embed.weight", "64x16", "0", "adamw", "0.001", "0.1"]
    assert lines[3].split() == ["layers.0.norm1.weight", "16", "1", "adamw", "0.001", "0"]
    assert not any(line.startswith("warning:") for line in lines)


def test_rules_inline_and_from_a_file_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = '[{"match": "norm.bias", "weight_decay": 0.1}]'
    assert (
        main(["groups", "sgd", "--kw", "lr=0.1", "--kw", "weight_decay=0.1", "--rules", rules]) == 0
    )
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "warning: norm.bias is a bias and is decayed (weight_decay=0.1)"
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [{"match": "layers.*", "lr_scale": 0.5}]}))
    assert main(["groups", "sgd", "--kw", "lr=0.1", "--rules", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    lrs = {row["param"]: row["lr"] for row in report["rows"]}
    assert lrs["layers.1.attn.weight"] == 0.05 and lrs["embed.weight"] == 0.1
    assert main(["groups", "sgd", "--kw", "lr=1.0", "--layer-decay", "0.5", "--json"]) == 0
    lrs = {r["param"]: r["lr"] for r in json.loads(capsys.readouterr().out)["rows"]}
    assert (lrs["embed.weight"], lrs["layers.0.attn.weight"], lrs["norm.weight"]) == (
        0.125,
        0.25,
        1.0,
    )


def test_a_model_of_your_own(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["groups", "sgd", "--model", "torch.nn:Identity"]) == 2  # no parameters
    assert "has no trainable parameters" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            ["--model", "nope"],
            2,
            "--model must be 'example' or module:attr of a callable, got 'nope'",
        ),
        (["--model", "no_such_module:x"], 2, "--model 'no_such_module:x': cannot import it"),
        (["--model", "json:dumps"], 2, "--model 'json:dumps': calling it with no arguments raised"),
        (
            ["--model", "json:decoder"],
            2,
            "--model 'json:decoder' gave module, not a torch.nn.Module",
        ),
        (["--rules", "[not json"], 2, "--rules: not JSON"),
        (["--rules", '{"x": 1}'], 2, "no 'rules' key in it"),
        (["--rules", '[{"match": "zzz", "lr": 1}]'], 2, "rules[0] matches no parameter"),
        (["--rules", "no-such-rules.yaml"], 2, "--rules: config 'no-such-rules.yaml': no such"),
        (
            ["--rules", '[{"shape": 8, "lr": 1}]'],
            2,
            "rules[0]: selector 'shape' must be a list of ints, got int: 8",
        ),
        (["--kw", "lrr=1"], 2, "got an unexpected keyword argument 'lrr'; did you mean 'lr'?"),
        (["--layer-decay", "2"], 2, "layer_decay must be a number in (0, 1], got 2.0"),
    ],
)
def test_errors(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["groups", "sgd", "--kw", "lr=0.1", *argv]) == code
    err = capsys.readouterr().err
    assert message in err
    # a usage error says what to fix, not which exception said it
    assert not err.partition("error: ")[2].startswith(("ValueError", "TypeError", "FileNotFound"))


def test_verbose_shows_the_traceback_of_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["groups", "sgd", "--model", "torch.nn:Identity"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["-v", "groups", "sgd", "--model", "torch.nn:Identity"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert 'optreg/params/_split.py", line' in err  # where it was raised
    assert err.rstrip().endswith("optreg groups: error: Identity has no trainable parameters")
