"""The CLI through Typer's runner: output, files and one-line errors with exit code 2."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from fcnlab.cli import app

runner = CliRunner()


def test_models_lists_parameters_and_gflops():
    result = runner.invoke(app, ["models", "--filter", "fcn8s_vgg16", "--size", "224x224"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "fcn8s_vgg16 " in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    assert cells[0] == "fcn8s_vgg16"
    assert float(cells[1]) > 130  # million parameters, fc6 alone is 102.8M
    assert 30 < float(cells[2]) < 45  # VGG16 is ~31 GFLOPs at 224x224, plus the head
    assert "2 models" in result.output  # fcn8s_vgg16 and fcn8s_vgg16_bn


def test_summary_prints_layers_and_writes_a_diagram(tmp_path):
    diagram = tmp_path / "model.dot"
    result = runner.invoke(
        app,
        [
            "summary",
            "fcn16s_resnet18",
            "--size",
            "97x131",
            "--classes",
            "5",
            "--diagram",
            str(diagram),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "head.score_fr" in result.output and "1x5x4x5" in result.output
    text = diagram.read_text()
    assert text.startswith("digraph")
    assert "head.score_skips.stage4" in text and "add" in text and "pad" in text


def test_errors_are_one_line_with_exit_code_2():
    for args, message in [
        (["summary", "fcn4s_alexnet"], "fcn4s does not work with alexnet"),
        (["summary", "fcn8s_vgg16", "--size", "0x5"], "size must look like HxW"),
        (["models", "--size", "big"], "size must look like HxW"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert message in result.output
        assert "Traceback" not in result.output


def test_diagram_format_is_checked(tmp_path):
    result = runner.invoke(
        app,
        ["summary", "deeplabv3_mobilenet_v2", "--size", "64", "--diagram", str(tmp_path / "x.png")],
    )
    assert result.exit_code == 2
    assert "use .dot, .mmd or .md" in result.output


TINY = [
    "--set",
    "data.options={length: 4, size: [32, 40]}",
    "--set",
    "data.crop_size=[32, 40]",
    "--set",
    "data.batch_size=2",
    "--set",
    "train.steps=2",
    "--set",
    "train.report_samples=1",
    "--set",
    "train.int8_companion=false",  # tested in tests/export/test_companion.py
]


def test_train_eval_report_round_trip(tmp_path):
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", *TINY, "--out", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "best.pt").is_file() and (run_dir / "report.html").is_file()
    assert "images per step" in result.output

    out_json = tmp_path / "metrics.json"
    result = runner.invoke(app, ["eval", str(run_dir / "best.pt"), "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out_json.read_text())
    assert 0 <= metrics["miou"] <= 1 and metrics["split"] == "val"
    assert "mIoU" in result.output

    (run_dir / "report.html").unlink()
    result = runner.invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0 and (run_dir / "report.html").is_file()

    again = runner.invoke(
        app, ["train", *TINY, "--out", str(run_dir), "--resume", "--set", "train.steps=3"]
    )
    assert again.exit_code == 0, again.output
    assert json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 3


def test_train_and_eval_errors(tmp_path):
    cases = [
        (["train", "--set", "train.lrr=1"], "unknown config key 'train.lrr'"),
        (["train", "--set", "train.steps=x"], "must be an integer >= 1"),
        (["train", str(tmp_path / "none.yaml")], "does not exist"),
        (
            [
                "train",
                "--set",
                "data.name=camvid",
                "--set",
                f"data.root={tmp_path / 'no'}",
                "--out",
                str(tmp_path / "r"),
            ],
            "does not exist",
        ),
        (["eval", str(tmp_path / "none.pt")], "checkpoint"),
        (["report", str(tmp_path / "none")], "does not exist"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output

    not_a_checkpoint = tmp_path / "weights.pt"
    torch.save({"a": torch.zeros(1)}, not_a_checkpoint)
    result = runner.invoke(app, ["eval", str(not_a_checkpoint)])
    assert result.exit_code == 2 and "is not an fcnlab checkpoint" in result.output


def test_data_check_reports_every_bad_pair(tmp_path):
    from PIL import Image

    root = tmp_path / "mine"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.yaml").write_text("names: [background, thing]\n")
    for stem, mask_size in (("good", (8, 6)), ("bad", (5, 5))):
        Image.new("RGB", (8, 6)).save(root / "images" / f"{stem}.png")
        Image.new("L", mask_size).save(root / "masks" / f"{stem}.png")
    result = runner.invoke(
        app, ["data", "check", "--data", "folder", "--root", str(root), "--split", "all"]
    )
    assert result.exit_code == 1, result.output
    assert "samples: 2" in result.output and "problems: 1" in result.output
    assert "bad" in result.output

    result = runner.invoke(
        app, ["data", "check", "--data", "synthetic", "--split", "val", "--option", "length=3"]
    )
    assert result.exit_code == 0, result.output
    assert "samples: 3" in result.output and "all good" in result.output


def test_the_commands_are_the_ones_registered_in_fcnlab_cli():
    import typer

    from fcnlab.cli import COMMANDS, GROUPS

    group = typer.main.get_command(app)
    assert list(group.commands) == [name for name, _ in COMMANDS] + [name for name, *_ in GROUPS]
    assert list(group.commands["data"].commands) == ["check"]
    result = runner.invoke(app, ["--help"])
    assert all(name in result.output for name, _ in COMMANDS)
