"""The CLI through Typer's runner: output, files and one-line errors with exit code 2."""

from __future__ import annotations

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
