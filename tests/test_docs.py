"""The documentation site: generated reference pages up to date and complete, and the build.

The reference pages (docs/reference/cli.md, config.md, models.md) are generated from the code
by docs/gen_reference.py and committed; these tests regenerate them in memory (the model zoo
on the meta device: shapes only, no arithmetic) and compare, and check independently that
every Typer command and option and every config key appears. ``mkdocs build --strict`` runs
when MkDocs is installed (the ``docs`` extra, part of ``dev``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
REGENERATE = "run `python docs/gen_reference.py` and commit docs/reference/"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen():
    return _load("gen_reference")


@pytest.fixture(scope="module")
def pages(gen):
    return gen.render_all()


def _committed(name: str) -> str:
    path = DOCS / "reference" / name
    assert path.is_file(), f"docs/reference/{name} is missing; {REGENERATE}"
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["cli.md", "config.md", "models.md"])
def test_committed_reference_pages_are_up_to_date(pages, name):
    assert _committed(name) == pages[name], f"docs/reference/{name} is stale; {REGENERATE}"


def _click_commands():
    """(path, command) for every command and group of the ``fcnlab`` app, walked from click."""
    import typer.main

    from fcnlab.cli import app

    found = []

    def walk(group, path):
        for name, command in group.commands.items():
            found.append(((*path, name), command))
            if hasattr(command, "commands"):
                walk(command, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def test_cli_reference_lists_every_command_and_option():
    text = _committed("cli.md")
    commands = _click_commands()
    assert len(commands) >= 10
    for path, command in commands:
        heading = f"## fcnlab {' '.join(path)}"
        assert re.search(rf"^{re.escape(heading)}$", text, re.M), f"{heading} missing"
        section = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
        for param in command.params:
            if getattr(param, "hidden", False) or "--help" in param.opts:
                continue
            if type(param).__name__.endswith("Argument"):
                assert f"`{param.name.upper()}" in section, (path, param.name)
            else:
                for opt in (*param.opts, *param.secondary_opts):
                    assert f"`{opt}`" in section, (path, opt)


def test_cli_reference_leaves_out_hidden_options():
    text = _committed("cli.md")
    assert "`--path`" not in text  # the deprecated alias of --backend is hidden


def test_config_reference_lists_every_key():
    from fcnlab.config import SECTIONS, ExperimentConfig

    text = _committed("config.md")
    keys = [
        f.name
        for f in dataclasses.fields(ExperimentConfig)
        if f.name not in SECTIONS  # the sections themselves are headings
    ]
    keys += [
        f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)
    ]
    assert len(keys) > 40
    for key in keys:
        assert re.search(rf"^\| `{re.escape(key)}` \|", text, re.M), f"config key {key} missing"
    for section in SECTIONS:
        assert f"\n## {section}\n" in text


def test_config_reference_types_defaults_and_comments(gen):
    rows = {k.key: k for keys in gen.config_keys().values() for k in keys}
    assert rows["train.optimizer"].type == "one of sgd, adamw"
    assert rows["train.optimizer"].default == "adamw"
    assert rows["data.crop_size"].type == "a list of 2 integers >= 1"
    assert rows["data.crop_size"].default == "[96, 128]"
    assert rows["model.output_stride"].default == "null"
    # comments come from the source: a "#:" block above the field, or a trailing "# ..."
    assert rows["data.scale"].comment.startswith("The resolution the model works at")
    assert rows["data.workers"].comment.startswith("Loader processes")
    assert rows["model.fc_width"].comment.startswith("Channels of fc6/fc7")
    assert all(k.comment for k in rows.values()), [k.key for k in rows.values() if not k.comment]


def test_model_zoo_lists_every_registered_model():
    from fcnlab.models import list_models

    text = _committed("models.md")
    for name in list_models():
        assert f"| `{name}` |" in text, name


def test_metrics_page_worked_example_matches_compute_metrics():
    from fcnlab.engine.metrics import compute_metrics

    text = (DOCS / "concepts" / "metrics.md").read_text(encoding="utf-8")
    m = compute_metrics([[50, 3, 2], [5, 30, 0], [2, 1, 7]], ["background", "road", "car"])
    for key in ("pixel_acc", "mean_acc", "miou", "fwiou"):
        assert f"**{m[key]:.4f}**" in text, key
    for row in m["per_class"]:
        assert f"= {row['iou']:.4f}" in text and f"= {row['acc']:.4f}" in text, row["name"]
    bike = [[49, 3, 2, 1], [5, 30, 0, 0], [2, 1, 7, 0], [0, 0, 0, 0]]
    m4 = compute_metrics(bike)
    assert f"**{m4['miou']:.4f}**" in text and f"{m4['mean_acc']:.4f}" in text


def test_figures_are_small_and_present():
    figures = DOCS / "figures"
    names = {"bilinear_kernel.png", "transposed_conv.png", "atrous.png", "unpooling.png"}
    assert names <= {p.name for p in figures.glob("*.png")}
    for path in figures.glob("*.png"):
        assert path.stat().st_size < 150 * 1024, path.name


def test_every_page_in_docs_is_in_the_nav():
    import yaml

    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())

    def flatten(nav):
        for item in nav:
            for value in item.values() if isinstance(item, dict) else [item]:
                if isinstance(value, list):
                    yield from flatten(value)
                else:
                    yield value

    in_nav = set(flatten(config["nav"]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages == in_nav


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed (the docs extra)"
)
def test_mkdocs_build_strict(tmp_path):
    command = [sys.executable, "-m", "mkdocs", "build", "--strict"]
    result = subprocess.run(
        [*command, "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    site = tmp_path / "site"
    assert (site / "reference" / "cli" / "index.html").is_file()
    assert (site / "figures" / "bilinear_kernel.png").is_file()
    assert not list(site.rglob("*.py")), "generator scripts must not be published"
    api = (site / "reference" / "api" / "models" / "index.html").read_text(encoding="utf-8")
    assert "create_model" in api  # mkdocstrings rendered the registry
