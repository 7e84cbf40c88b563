"""Memory plans: header sizes, the estimate (checked against a real peak RSS), the plans."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from PIL import Image

from fcnlab.errors import FcnlabError
from fcnlab.infer import TTA, Predictor
from fcnlab.infer.activations import LiveTensors, activation_cost
from fcnlab.infer.memory import (
    MAX_TILES,
    MIB,
    ImageHeader,
    estimate_bytes,
    image_size,
    is_out_of_memory,
    max_pixels_for,
    plan_image,
    set_decode_limit,
)
from fcnlab.infer.tiling import check_tiling
from tests.infer.pngs import solid_png, write_solid_png

RGB = "RGB"


def test_image_size_reads_the_header_only(tmp_path, monkeypatch):
    path = write_solid_png(tmp_path / "big.png", 9000, 7000)
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("pixels were decoded"))
    assert image_size(path) == ImageHeader(9000, 7000, RGB)
    assert image_size(solid_png(300, 200, "L")) == ImageHeader(300, 200, "L")


def test_image_size_names_bad_files(tmp_path, monkeypatch):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(FcnlabError, match=r"notes\.png is not an image"):
        image_size(tmp_path / "notes.png")
    with pytest.raises(FcnlabError, match="does not exist"):
        image_size(tmp_path / "missing.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(FcnlabError, match=r"bomb.png has too many pixels \(40000 pixels, over"):
        image_size(solid_png(200, 200), "bomb.png")


def test_the_decode_limit_refuses_what_could_not_even_be_decoded():
    set_decode_limit(256 * MIB)
    assert Image.MAX_IMAGE_PIXELS == 256 * MIB // 8  # PIL refuses over twice this: limit / 4
    with pytest.raises(FcnlabError, match="too many pixels"):
        image_size(solid_png(10000, 7000, "L"), "wide.png")  # 70 Mpx: RGBA alone is 280 MB
    assert image_size(solid_png(8000, 8000, "L")).width == 8000  # 64 Mpx: left to the plan


def test_live_tensors_tracks_the_peak_of_tensors_alive():
    with torch.inference_mode(), LiveTensors() as live:
        a = torch.zeros(1000)  # 4000 bytes
        b = torch.zeros(500)  # 2000 bytes, peak 6000
        view = a.view(10, 100)  # same storage: not counted again
        del a, b, view
        c = torch.zeros(250)  # 1000 bytes alive, after 6000 at peak
    assert live.peak == 6000
    assert live.live == 1000
    del c


def test_activation_cost_is_measured_once_and_scales_with_the_model(predictor):
    first = activation_cost(predictor)
    assert first is activation_cost(predictor)
    assert first.method == "dispatch"
    # a 3-class width-0.25 MobileNetV2: hundreds of bytes per pixel, not kilobytes
    assert 50 < first.bytes_per_pixel < 2000


def test_estimate_grows_with_pixels_views_and_outputs(predictor):
    small, big = ImageHeader(100, 100, RGB), ImageHeader(200, 200, RGB)
    assert estimate_bytes(predictor, big) > 3.5 * estimate_bytes(predictor, small)
    tta = Predictor(predictor.runner, predictor.card, TTA(flip=True, scales=(1.0, 1.5)))
    assert estimate_bytes(tta, big) > 1.8 * estimate_bytes(predictor, big)
    assert estimate_bytes(predictor, big, keep_probs=True) >= estimate_bytes(predictor, big)
    tiled = estimate_bytes(predictor, ImageHeader(2000, 2000, RGB), (256, 256))
    assert tiled < estimate_bytes(predictor, ImageHeader(2000, 2000, RGB)) / 3


def test_plan_runs_whole_when_it_fits(predictor):
    plan = plan_image(predictor, ImageHeader(64, 48, RGB), 512 * MIB, "a.png")
    assert plan.tile is None
    assert plan.estimate <= plan.limit
    assert "a.png (64x48) runs whole" in plan.describe()


def test_plan_tiles_to_fit_and_the_tile_fits(predictor):
    header = ImageHeader(1500, 1200, RGB)
    limit = estimate_bytes(predictor, header) // 3
    plan = plan_image(predictor, header, limit, "big.png")
    assert plan.tile is not None and plan.tile[0] < 1500
    assert plan.estimate <= limit
    bigger = (plan.tile[0] * 2, plan.tile[1] * 2)
    assert estimate_bytes(predictor, header, bigger) > limit  # the largest tile that fits


def test_plan_refuses_by_name_size_estimate_and_limit(predictor):
    with pytest.raises(FcnlabError) as caught:
        plan_image(predictor, ImageHeader(9000, 9000, RGB), 64 * MIB, "huge.png")
    message = str(caught.value)
    assert message.startswith("huge.png is 9000x9000 and needs about ")
    assert "MiB even tiled, over the limit of 64 MiB" in message
    assert ". " not in message and message.endswith("--max-memory-mb.")  # one sentence


def test_plan_keeps_a_users_tile_and_bounds_the_tile_count(predictor):
    tiled = Predictor(predictor.runner, predictor.card, tile=(64, 64))
    plan = plan_image(tiled, ImageHeader(300, 200, RGB), 512 * MIB, "a.png")
    assert plan.tile == (64, 64)
    with pytest.raises(FcnlabError, match=f"tiles of 32x32, more than {MAX_TILES}"):
        tiny = Predictor(predictor.runner, predictor.card, tile=(32, 32))
        plan_image(tiny, ImageHeader(9000, 9000, RGB), 64 * 2**30, "wide.png")


def test_max_pixels_for_is_the_largest_image_that_fits(predictor):
    limit = 128 * MIB
    pixels = max_pixels_for(predictor, limit)
    side = int(pixels**0.5)
    plan_image(predictor, ImageHeader(side, side, "RGBA"), limit, "ok")
    with pytest.raises(FcnlabError):
        side = int((pixels * 1.05) ** 0.5) + 1
        plan_image(predictor, ImageHeader(side, side, "RGBA"), limit, "too big")


def test_out_of_memory_is_recognised():
    assert is_out_of_memory(MemoryError())
    message = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 bytes"
    assert is_out_of_memory(RuntimeError(message))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


@pytest.mark.parametrize(
    ("tile", "overlap", "message"),
    [
        ((1, 1), 0.25, "--tile 1x1 is too small; each side must be at least 32."),
        ((64, 16), 0.25, "each side must be at least 32"),
        (None, 0.9, "--overlap 0.9 must be between 0 and 0.75."),
        (None, -0.1, "--overlap -0.1 must be between 0 and 0.75."),
    ],
)
def test_check_tiling_names_the_valid_range(tile, overlap, message):
    with pytest.raises(FcnlabError, match=message.replace(".", r"\.")):
        check_tiling(tile, overlap)


MEASURE = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch
    from PIL import Image
    from fcnlab.infer import Predictor
    from fcnlab.infer.activations import read_status
    from fcnlab.infer.memory import ImageHeader, estimate_bytes

    torch.set_num_threads(1)
    predictor = Predictor.load(sys.argv[1], backend=sys.argv[2])
    side, tile = int(sys.argv[3]), int(sys.argv[4]) or None
    tile = (tile, tile) if tile else None
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    estimate = estimate_bytes(predictor, ImageHeader(side, side, "RGB"), tile)
    predictor.predict(image.resize((64, 64)), tile=tile)  # warm-up: kernels, caches
    before = read_status("VmRSS")
    predictor.predict(image, tile=tile)
    print(json.dumps({"estimate": estimate, "peak": read_status("VmHWM") - before}))
    """
)


@pytest.mark.parametrize(("backend", "side", "tile"), [("eager", 1024, 0), ("eager", 1536, 256)])
def test_the_estimate_bounds_the_measured_peak_rss(model_file, backend, side, tile):
    """Peak resident memory (VmHWM) of a fresh process against the estimate: the estimate
    must cover it, and not by more than 2.5x (measured: 1.4-1.6x)."""
    args = [sys.executable, "-c", MEASURE, str(model_file), backend, str(side), str(tile)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=240, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    ratio = result["estimate"] / result["peak"]
    print(f"{backend} {side}px tile {tile}: estimate/measured = {ratio:.2f}")
    assert 1.0 <= ratio <= 2.5, result
