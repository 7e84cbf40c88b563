"""Training in bf16: step time and loss-curve match against fp32, and whether loading keeps up.

    python bench/train_bf16.py --root ../shared/data/camvid --steps 40 --threads 2

For each model, the modes (``--modes``; by default fp32, fp32+channels_last, bf16,
bf16+channels_last; also ``+compile``: torch.compile of the model) train from the same seed
on the same batches. Everything comes from fcnlab's own training
code: ``fcnlab.engine.setup.prepare`` builds model, loss (median-frequency weights),
optimiser and data from the CamVid bench recipe (``configs/camvid_bench_*.yaml``), and each
step is ``fcnlab.engine.train``'s: forward under its autocast, loss, backward,
``_optimizer_step`` (poly learning rate, optimiser, zero_grad). The batches are drawn once
through the real training loader (seeded augmentation) and replayed to every mode, so the
step time excludes loading and the loss curves differ only by precision and layout.

Loading is measured on its own: time per batch of the training loader (decode + augment)
with 0 and 2 workers, against the step time. Without CamVid (``--root`` missing) the
synthetic dataset stands in. Writes the "train_bf16" section of docs/benchmarks.md and a
plot of the loss curves (``--doc``, ``--plot``).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchdoc import DOC, machine_line, table, write_section
from fcnlab.cli import parse_size
from fcnlab.config import ExperimentConfig, apply_overrides, load_config
from fcnlab.engine.distributed import Context
from fcnlab.engine.evaluate import autocast
from fcnlab.engine.runstate import TrainState
from fcnlab.engine.setup import Run, prepare
from fcnlab.engine.train import _optimizer_step  # the real step: lr schedule, step, zero_grad

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "camvid_bench_{}.yaml"
MODES = {  # name -> (train.precision, train.channels_last, torch.compile the model)
    "fp32": ("fp32", False, False),
    "fp32+channels_last": ("fp32", True, False),
    "bf16": ("bf16", False, False),
    "bf16+channels_last": ("bf16", True, False),
    "fp32+compile": ("fp32", False, True),
    "fp32+channels_last+compile": ("fp32", True, True),
}
DEFAULT_MODES = ["fp32", "fp32+channels_last", "bf16", "bf16+channels_last"]
COMPILED = (
    "A `+compile` mode wraps the model in `torch.compile` (inductor); its first step "
    "includes the compilation (the first-step column); a median over the steps is robust to it. "
)
Batch = tuple[torch.Tensor, torch.Tensor]


def base_config(model: str, args: argparse.Namespace) -> ExperimentConfig:
    """The CamVid bench recipe for ``model`` (or the mobilenet one), shrunk to this bench."""
    recipe = RECIPE.with_name(RECIPE.name.format(model))
    if not recipe.is_file():
        recipe = RECIPE.with_name(RECIPE.name.format("deeplabv3plus_mobilenet_v2"))
    camvid = args.root is not None and args.root.is_dir()
    overrides = [
        f"model.name={model}",
        f"data.name={'camvid' if camvid else 'synthetic'}",
        f"data.root={args.root if camvid else 'null'}",
        f"data.crop_size=[{args.size[0]}, {args.size[1]}]",
        f"data.batch_size={args.batch}",
        "data.workers=0",
        f"train.steps={args.steps}",
        f"train.warmup_steps={max(1, args.steps // 10)}",
        "train.report_samples=0",
        "train.device=cpu",
    ]
    if not camvid:
        overrides += ["data.scale=1.0", "train.class_weights=null"]
    return apply_overrides(load_config(recipe), overrides)


def with_mode(cfg: ExperimentConfig, mode: str) -> ExperimentConfig:
    cfg = copy.deepcopy(cfg)
    cfg.train.precision, cfg.train.channels_last, _ = MODES[mode]
    return cfg


def prepared(cfg: ExperimentConfig, folder: str, mode: str = "fp32") -> Run:
    run = prepare(cfg, Context(), Path(folder))
    if MODES[mode][2]:  # inductor on the CPU: the forward and backward graphs, fixed shapes
        run.model = torch.compile(run.model, dynamic=False)
    return run


def draw_batches(run: Run, steps: int) -> list[Batch]:
    """``steps`` batches from the run's training loader, epoch after epoch as training does."""
    batches: list[Batch] = []
    for epoch in itertools.count():
        run.sampler.set_epoch(epoch)
        run.train_set.epoch = epoch
        batches += itertools.islice(run.loader(epoch, 0), steps - len(batches))
        if len(batches) >= steps:
            return batches
    raise AssertionError("unreachable")


def train_steps(run: Run, batches: list[Batch]) -> tuple[list[float], list[float]]:
    """(loss per step, ms per step): fcnlab's training step on each batch in turn.

    The first step of a compiled model includes its compilation; the median is robust to it.
    """
    cfg, state, losses, times = run.cfg.train, TrainState(), [], []
    run.model.train()
    for images, masks in batches:
        start = time.perf_counter()
        if cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(run.ctx.device, cfg.precision):
            out = run.model(images)
        loss = run.loss_fn(out, masks)
        run.scaler.scale(loss).backward()
        _optimizer_step(run, state, 0.0)  # no time budget here: the schedule follows steps
        losses.append(loss.item())  # the host sync ends the step
        times.append((time.perf_counter() - start) * 1e3)
    return losses, times


def loader_ms(run: Run, workers: int, count: int) -> tuple[float, float]:
    """(first batch ms, median ms per later batch) of the training loader with ``workers``."""
    run.cfg.data.workers = workers
    times, start = [], time.perf_counter()
    for _ in itertools.islice(run.loader(0, 0), count + 1):
        times.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
    run.cfg.data.workers = 0
    return times[0], statistics.median(times[1:] or times)


def bench_model(model: str, args: argparse.Namespace) -> dict:
    cfg = base_config(model, args)
    result: dict = {"losses": {}, "step_ms": {}, "first_ms": {}, "loader": {}}
    result["data"] = cfg.data.name
    with tempfile.TemporaryDirectory() as tmp:
        run = prepared(with_mode(cfg, "fp32"), tmp)
        batches = draw_batches(run, args.steps)
        for workers in args.workers:
            result["loader"][workers] = loader_ms(run, workers, args.loader_batches)
        for mode in args.modes:
            run = prepared(with_mode(cfg, mode), tmp, mode)
            losses, times = train_steps(run, batches)
            run.log.close()
            result["losses"][mode], result["step_ms"][mode] = losses, statistics.median(times)
            result["first_ms"][mode] = times[0]
            print(f"{model} {mode}: {result['step_ms'][mode]:.0f} ms/step, loss {losses[-1]:.4f}")
    return result


def tail_mean(losses: list[float]) -> float:
    """Mean loss over the last quarter of the steps: the curve's level, less step noise."""
    tail = losses[-max(1, len(losses) // 4) :]
    return sum(tail) / len(tail)


def summary_rows(model: str, r: dict, batch: int) -> list[list[str]]:
    fp32 = r["losses"]["fp32"]
    rows = []
    for mode, losses in r["losses"].items():
        worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(losses, fp32, strict=True))
        level = tail_mean(losses) / tail_mean(fp32) - 1
        ms = r["step_ms"][mode]
        rows.append(
            [
                model,
                mode,
                f"{ms:.0f}",
                f"{batch * 1000 / ms:.2f}",
                f"{r['step_ms']['fp32'] / ms:.2f}",
                f"{r['first_ms'][mode] / 1e3:.1f}",
                f"{losses[0]:.4f}",
                f"{tail_mean(losses):.4f}",
                f"{100 * level:+.2f}",
                f"{100 * worst:.2f}",
            ]
        )
    return rows


def loss_rows(model: str, r: dict, every: int) -> list[list[str]]:
    steps = len(r["losses"]["fp32"])
    marks = sorted({*range(every, steps + 1, every), 1, steps})
    return [
        [model, str(s), *(f"{losses[s - 1]:.4f}" for losses in r["losses"].values())] for s in marks
    ]


def loader_rows(model: str, r: dict) -> list[list[str]]:
    fastest = min(r["step_ms"].values())
    return [
        [
            model,
            str(w),
            f"{first:.0f}",
            f"{per:.0f}",
            f"{fastest:.0f}",
            "yes" if per < fastest else "**no**",
        ]
        for w, (first, per) in r["loader"].items()
    ]


def plot(results: dict[str, dict], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, (model, r) in zip(axes[0], results.items(), strict=True):
        for mode, losses in r["losses"].items():
            ax.plot(range(1, len(losses) + 1), losses, label=mode, linewidth=1.2)
        ax.set(title=model, xlabel="step", ylabel="training loss")
        ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def render(args: argparse.Namespace, results: dict[str, dict], image: Path, command: str) -> str:
    data = next(iter(results.values()))["data"]
    every = args.every or max(1, args.steps // 10)
    link = os.path.relpath(image, args.doc.resolve().parent)
    header = ["model", "mode", "median step ms", "images/s", "speed-up vs fp32", "first step s"]
    header += ["first loss", "last-quarter mean loss", "vs fp32 %", "max step diff vs fp32 %"]
    summary = [row for m, r in results.items() for row in summary_rows(m, r, args.batch)]
    losses = [row for m, r in results.items() for row in loss_rows(m, r, every)]
    loading = [row for m, r in results.items() for row in loader_rows(m, r)]
    return "\n\n".join(
        [
            f"## {args.title}",
            f"{data} training data, batch {args.batch}, crops {args.size[0]}x{args.size[1]}, "
            f"{args.steps} steps from seed 0 on the same pre-drawn batches, fcnlab's training "
            f"step (the CamVid bench recipe). Step time excludes loading. The curves cannot "
            f"match exactly even in fp32: nn.Dropout draws its mask in memory order, so "
            f"channels_last drops other units than NCHW from the first step on; the fp32 vs "
            f"fp32+channels_last gap is the noise floor for judging bf16. "
            + (COMPILED if any(MODES[m][2] for m in args.modes) else "")
            + f"Machine: {machine_line()}.",
            f"Command: `{command}`",
            table(header, summary),
            f"Training loss every {every} steps:",
            table(["model", "step", *args.modes], losses),
            f"![loss curves]({link})",
            "Data loading (decode + augment, the training loader) per batch against the "
            "fastest training step; the 'keeps up' test ignores that loader workers and "
            "training share the same cores:",
            table(
                ["model", "workers", "first batch ms", "ms per batch", "step ms", "keeps up"],
                loading,
            ),
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path("../shared/data/camvid"))
    p.add_argument("--models", nargs="+", default=["deeplabv3plus_mobilenet_v2", "fcn8s_resnet18"])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=parse_size, default="180x240", help="crop HxW")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--loader-batches", type=int, default=10)
    p.add_argument("--modes", nargs="+", choices=list(MODES), default=DEFAULT_MODES)
    p.add_argument("--section", default="train_bf16", help="docs/benchmarks.md section name")
    p.add_argument("--title", default="Training in bf16: step time and loss curves vs fp32")
    p.add_argument("--every", type=int, default=0, help="loss table interval (0: steps/10)")
    p.add_argument("--doc", type=Path, default=DOC, help="markdown file to write the section to")
    p.add_argument("--plot", type=Path, default=DOC.parent / "train_bf16_loss.png")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if "fp32" not in args.modes:
        raise SystemExit("error: --modes must include fp32 (every ratio is against it)")
    torch.set_num_threads(args.threads)
    command = shlex.join(["python", "bench/train_bf16.py", *(argv or sys.argv[1:])])
    results = {model: bench_model(model, args) for model in args.models}
    image = plot(results, args.plot)
    written = write_section(args.section, render(args, results, image, command), args.doc)
    print(f"wrote {written} and {image}")


if __name__ == "__main__":
    main()
