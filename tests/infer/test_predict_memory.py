"""fcnlab predict under a memory limit: huge images tiled or refused by name, the rest written."""

from __future__ import annotations

import resource
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fcnlab.cli import app
from fcnlab.infer import Predictor
from fcnlab.infer.files import gather_inputs, predict_files
from fcnlab.infer.memory import MIB
from tests.infer.pngs import write_solid_png

runner = CliRunner()


def good_images(folder, count=2):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"good{i}.png")


def predict(model_file, folder, out, *options):
    args = ["predict", str(model_file), str(folder), "--out", str(out), "--backend", "eager"]
    return runner.invoke(app, [*args, *options])


def test_a_huge_tiny_file_is_refused_by_name_and_the_others_are_written(tmp_path, model_file):
    folder = tmp_path / "in"
    good_images(folder)
    write_solid_png(folder / "huge.png", 9000, 9000)  # 81 Mpx in 250 KB
    out = tmp_path / "out"
    result = predict(model_file, folder, out, "--max-memory-mb", "1024")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    skipped = [line for line in result.output.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1
    assert "huge.png is 9000x9000 and needs about" in skipped[0]
    assert "even tiled, over the limit of 1024 MiB" in skipped[0]
    assert (out / "good0.png").is_file() and (out / "good1.png").is_file()
    assert not (out / "huge.png").exists()
    assert "2 of 3 images segmented" in result.output


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, model_file):
    folder = tmp_path / "in"
    good_images(folder, 1)
    write_solid_png(folder / "bomb.png", 20000, 20000, "L")  # 400 Mpx in 440 KB
    result = predict(model_file, folder, tmp_path / "out", "--max-memory-mb", "256")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "bomb.png has too many pixels (400000000 pixels, over the decoder's limit" in (
        result.output
    )
    assert "1 of 2 images segmented" in result.output


def test_an_image_too_big_to_run_whole_is_tiled_and_says_so(tmp_path, model_file, predictor):
    folder = tmp_path / "in"
    good_images(folder, 1)
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (700, 800, 3), dtype=np.uint8)
    Image.fromarray(big).save(folder / "big.png")
    out = tmp_path / "out"
    result = predict(model_file, folder, out, "--max-memory-mb", "128")
    assert result.exit_code == 0, result.output
    tiled = [line for line in result.output.splitlines() if "runs tiled" in line]
    assert len(tiled) == 1 and "big.png (800x700) runs tiled" in tiled[0], result.output
    mask = np.asarray(Image.open(out / "big.png"))
    assert mask.shape == (700, 800)
    whole = predictor.predict(Image.fromarray(big)).mask
    assert (mask == whole).mean() > 0.95  # tiles agree with the whole image almost everywhere


def test_out_of_memory_in_one_image_skips_only_that_image(tmp_path, predictor, monkeypatch):
    folder = tmp_path / "in"
    good_images(folder, 3)
    real = Predictor.predict_batch

    def fail_on_second(self, images, *args, **kwargs):
        fail_on_second.calls += 1
        if fail_on_second.calls == 2:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB")
        return real(self, images, *args, **kwargs)

    fail_on_second.calls = 0
    monkeypatch.setattr(Predictor, "predict_batch", fail_on_second)
    out = tmp_path / "out"
    summary = predict_files(predictor, gather_inputs([folder]), out, max_bytes=256 * MIB)
    assert [p.name for p, _ in summary.failed] == ["good1.png"]
    assert "ran out of memory" in summary.failed[0][1]
    assert sorted(p.name for p in summary.written) == ["good0.png", "good2.png"]


def test_a_memory_error_in_the_cli_is_one_skipped_line(tmp_path, model_file, monkeypatch):
    folder = tmp_path / "in"
    good_images(folder, 2)

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(torch.Tensor, "softmax", no_memory)
    result = predict(model_file, folder, tmp_path / "out", "--max-memory-mb", "256")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.count("ran out of memory") == 2


def test_skipped_lines_do_not_wrap_when_piped(tmp_path, model_file):
    folder = tmp_path / "in" / ("a-very-long-folder-name-" * 4)
    folder.mkdir(parents=True)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    good_images(folder, 1)
    result = predict(model_file, folder, tmp_path / "out")
    assert result.exit_code == 1
    line = next(li for li in result.output.splitlines() if li.startswith("skipped"))
    assert str(folder / "broken.png") in line and line.rstrip().endswith(".")


@pytest.mark.parametrize("batch", ["2", "3"])
def test_batches_respect_the_memory_limit(tmp_path, model_file, batch):
    folder = tmp_path / "in"
    good_images(folder, 3)
    result = predict(model_file, folder, tmp_path / "out", "--batch", batch)
    assert result.exit_code == 0, result.output
    assert "3 of 3 images segmented" in result.output


def test_under_an_address_space_cap_the_default_limit_refuses_the_huge_image(tmp_path, model_file):
    """The users' report: a 9000x9000 PNG among good images under an 8 GiB cap (ulimit -v)."""
    folder = tmp_path / "in"
    good_images(folder)
    write_solid_png(folder / "huge.png", 9000, 9000)
    out = tmp_path / "out"
    cap = 8 * 2**30
    command = [sys.executable, "-m", "fcnlab", "predict", str(model_file), str(folder)]
    done = subprocess.run(
        [*command, "--out", str(out), "--backend", "eager"],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)),
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert "huge.png is 9000x9000 and needs about" in output
    assert (out / "good0.png").is_file() and (out / "good1.png").is_file()


def test_available_memory_sees_an_address_space_cap():
    script = "from fcnlab.infer.memory import available_memory; print(available_memory())"
    cap = 6 * 2**30
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)),
    )
    assert 0 < int(done.stdout) < cap
