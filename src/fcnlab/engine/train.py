"""Training: the loop, visible top to bottom.

forward -> loss -> backward (accumulated) -> step -> schedule -> log -> validate -> checkpoint.
``last.pt`` (with optimizer, scaler, RNG and data position) is written at every validation
and every ``checkpoint_every`` steps, atomically, so a run killed at any moment keeps its
last checkpoint and ``--resume`` continues exactly where it stopped. ``best.pt`` follows val
mIoU. With ``train.ema`` the weight average is what is validated and saved as the model (the
trained weights travel in ``last.pt``'s training state). Held-out sequences
(``data.holdout_sequences``) are evaluated beside val at every validation; they never choose
``best.pt``. At the end: ``eval.json`` (with BF, and the held-out metrics), sample
predictions and the report.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from fcnlab.config import ExperimentConfig, save_config
from fcnlab.engine import distributed
from fcnlab.engine.checkpoint import save_checkpoint
from fcnlab.engine.evaluate import autocast, evaluate, sample_predictions
from fcnlab.engine.guards import batches, count_nonfinite, steps_per_epoch
from fcnlab.engine.metrics import format_metrics, format_summary
from fcnlab.engine.optim import poly_lr, set_lr
from fcnlab.engine.report import save_samples, write_report
from fcnlab.engine.runstate import TrainState, checkpoint_of, claim_run_dir, restore, save_last
from fcnlab.engine.setup import Run, prepare
from fcnlab.errors import FcnlabError
from fcnlab.models.backbones.weights import describe_source

console = Console()


def run_dir_for(cfg: ExperimentConfig, out: Path | None) -> Path:
    return out if out is not None else Path("runs") / cfg.experiment


def train(
    cfg: ExperimentConfig,
    out: Path | None = None,
    resume: bool = False,
    stop_after: int | None = None,
) -> Path:
    """Train ``cfg`` into its run folder; ``stop_after`` ends early (resumable) at that step."""
    ctx = distributed.setup(cfg.train.device)
    # train.deterministic switches torch's deterministic mode on for the run, not for the caller
    deterministic = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    try:
        run_dir = run_dir_for(cfg, out)
        fresh = not run_dir.exists()
        claim_run_dir(run_dir, resume, ctx.is_main)
        try:
            run = prepare(cfg, ctx, run_dir)
            data = cfg.data
            steps_per_epoch(
                len(run.train_set), data.batch_size, ctx.world_size, cfg.train.grad_accum
            )
        except FcnlabError:
            if fresh and ctx.is_main and not any(run_dir.iterdir()):
                run_dir.rmdir()  # a refused run leaves no folder behind
            raise
        state = restore(run) if resume else TrainState()
        if ctx.is_main:
            save_config(cfg, run_dir / "config.yaml")
            _announce(run)
        if _loop(run, state, stop_after) and ctx.is_main:
            _finish(run, state)
        return run_dir
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        distributed.teardown()


def _loop(run: Run, state: TrainState, stop_after: int | None) -> bool:
    """Train until ``train.steps`` or the time budget; False when stopped by ``stop_after``."""
    cfg, ctx = run.cfg.train, run.ctx
    accum, micro = cfg.grad_accum, 0
    window = _Window()
    losses, seen, tick = [], 0, time.perf_counter()
    started, elapsed_before = time.perf_counter(), state.elapsed_s
    if state.step and run.budget.exhausted(state.elapsed_s):
        raise FcnlabError(
            f"the run already used its {run.budget.describe()} ({state.elapsed_s:.0f} s, "
            f"{state.step} steps); raise train.time_budget to continue it."
        )
    run.train_mode()
    with _progress(run, state) as (progress, task):
        while state.step < cfg.steps:
            run.sampler.set_epoch(state.epoch)
            run.train_set.epoch = state.epoch
            skip = state.batch_in_epoch * run.cfg.data.batch_size
            seen_in_epoch = 0
            for images, masks in batches(run.loader(state.epoch, skip)):
                seen_in_epoch += 1
                images = images.to(ctx.device, non_blocking=True)
                masks = masks.to(ctx.device, non_blocking=True)
                if cfg.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                micro += 1
                last_micro = micro == accum
                sync = nullcontext() if last_micro or not ctx.distributed else run.model.no_sync()
                with sync:
                    with autocast(ctx.device, run.precision.precision):
                        out = run.model(images)
                    loss = run.loss_fn(out, masks)
                    run.scaler.scale(window.share(run, loss, masks, accum)).backward()
                run.guard.observe(loss, state.step + 1)
                losses.append(loss.detach())
                seen += len(images)
                state.batch_in_epoch += 1
                if not last_micro:
                    continue
                micro = 0
                window.rescale(run)
                elapsed, out_of_time = _clock(run, elapsed_before + time.perf_counter() - started)
                _optimizer_step(run, state, elapsed)
                if run.ema is not None:
                    run.ema.update(run.net)
                state.elapsed_s = elapsed_before + time.perf_counter() - started
                final = state.step >= cfg.steps or out_of_time
                progress.update(task, advance=1)
                if state.step % cfg.log_every == 0 or final:
                    # The only host sync for the loss: once per log interval, not per step.
                    check_finite(run, state, weights=False)  # the loss flag; weights at saves
                    rate = seen * ctx.world_size / (time.perf_counter() - tick)
                    loss = _log_train(run, state, losses, rate)
                    progress.update(task, loss=f"{loss:.3f}")
                    losses, seen, tick = [], 0, time.perf_counter()
                _validate_and_save(run, state, final)
                if final:
                    state.elapsed_s = elapsed_before + time.perf_counter() - started
                    return True
                if stop_after is not None and state.step >= stop_after:
                    _save_last(run, state)
                    return False
            if seen_in_epoch == 0 and skip == 0:  # steps_per_epoch rules it out; never spin
                raise FcnlabError(
                    f"epoch {state.epoch} of the train split yielded no batch; check the data."
                )
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
    return True


def check_finite(run: Run, state: TrainState, weights: bool = True) -> None:
    """Stop, saving nothing, once a loss (or, with ``weights``, a weight: a pass over all of
    them, done before saves only) is not finite; name the last good checkpoint."""
    bad = run.guard.first_bad_step()
    what = f"the training loss became NaN or infinite at step {bad}"
    if bad is None and not weights:
        return
    if bad is None:
        count = count_nonfinite(run.net)
        if not count:
            return
        what = f"{count} weights became NaN or infinite by step {state.step}"
    raise FcnlabError(f"{what}; stopped without saving. {_last_good(run)}")


def _last_good(run: Run) -> str:
    advice = "lower train.lr or set train.grad_clip"
    if run.saved_step is None:
        return f"No checkpoint was written before it; {advice} and start again."
    best = " and best.pt the best one so far" if (run.run_dir / "best.pt").is_file() else ""
    return (
        f"{run.run_dir / 'last.pt'} (step {run.saved_step}) is the last good checkpoint"
        f"{best}; {advice} and continue with --resume."
    )


def _save_last(run: Run, state: TrainState, metrics=None) -> None:
    check_finite(run, state)
    save_last(run, state, metrics)
    run.saved_step = state.step


def _clock(run: Run, elapsed: float) -> tuple[float, bool]:
    """(elapsed seconds, budget exhausted), the same on every process (rank 0's clock)."""
    if run.budget.seconds is None:
        return elapsed, False
    out_of_time = run.budget.exhausted(elapsed)
    if run.ctx.distributed:
        elapsed, flag = distributed.broadcast_floats([elapsed, float(out_of_time)])
        out_of_time = flag > 0.5
    return elapsed, out_of_time


class _Window:
    """Makes k accumulated micro-batches give one k-times batch's gradient, exactly.

    Each micro-batch's loss is a mean over its own valid (non-ignored, class-weighted) pixels,
    so plain ``loss / k`` would weigh every micro-batch alike, not every pixel. Each one is
    backpropagated as ``loss * W_i / c`` instead (``W_i`` its valid weight, ``c`` the window's
    pixel count, so the scale stays that of ``loss / k``) and before the step the gradients are
    multiplied by ``c / sum(W_i)`` (summed over every process): the mean over the window's
    pixels. Without ignored pixels or class weights the factor is 1. With ``grad_accum`` 1 the
    loss is already that mean and nothing is done (no extra pass over the gradients, and under
    torchrun each process's mean counts alike, as in plain DDP).
    """

    def __init__(self) -> None:
        self.weight: torch.Tensor | float = 0.0
        self.pixels = 0

    def share(self, run: Run, loss: torch.Tensor, masks: torch.Tensor, accum: int):
        if accum == 1:
            return loss
        weight = run.loss_fn.total_weight(masks)
        if not self.pixels:
            self.pixels = masks.numel() * accum
        self.weight = self.weight + weight
        return loss * weight / self.pixels

    def rescale(self, run: Run) -> None:
        if not self.pixels:  # grad_accum 1: share() weighed nothing
            return
        weight = self.weight
        if run.ctx.distributed:
            weight = distributed.all_reduce_mean(weight)
        factor = self.pixels / weight.clamp_min(1e-12)
        torch._foreach_mul_([p.grad for p in run.net.parameters() if p.grad is not None], factor)
        self.weight, self.pixels = 0.0, 0


def _optimizer_step(run: Run, state: TrainState, elapsed: float) -> None:
    cfg = run.cfg.train
    run.lr = poly_lr(state.step, cfg, run.budget.fraction(elapsed))
    set_lr(run.optimizer, run.lr)
    if cfg.grad_clip is not None:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.net.parameters(), cfg.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.optimizer.zero_grad(set_to_none=True)
    state.step += 1


def _log_train(run: Run, state: TrainState, losses: list, rate: float) -> float:
    """Log the mean loss since the last record (over all processes) and return it."""
    loss = distributed.all_reduce_mean(torch.stack(losses).float().mean()).item()
    record = {
        "step": state.step,
        "epoch": state.epoch,
        "train_loss": round(loss, 5),
        "lr": run.lr,
        "images_per_s": round(rate, 2),
        "elapsed_s": round(state.elapsed_s, 1),
    }
    if run.log is not None:
        run.log.write(record)
        if not console.is_terminal:
            console.print(
                f"step {state.step}: loss {loss:.4f}, lr {record['lr']:.2e}, {rate:.1f} images/s",
                highlight=False,
            )
    return loss


def _validate_and_save(run: Run, state: TrainState, final: bool) -> None:
    cfg = run.cfg.train
    if final or state.step % cfg.val_every == 0:
        distributed.broadcast_buffers(run.eval_net)  # every rank evaluates what rank 0 saves
        check_finite(run, state)
        began = time.perf_counter()
        metrics = _evaluate(run, run.val_set, final, loss=True)
        if run.holdout_set is not None:
            metrics["holdout"] = _evaluate(run, run.holdout_set, final)
        state.val_s = run.budget.reserve_s = time.perf_counter() - began  # the final one's need
        if not math.isfinite(metrics["loss"]):
            raise FcnlabError(
                f"the validation loss became {metrics['loss']} at step {state.step}; stopped "
                f"without saving. {_last_good(run)}"
            )
        improved = metrics["miou"] > state.best_miou
        state.best_miou = max(state.best_miou, metrics["miou"])
        if run.ctx.is_main:
            run.log.write(
                {
                    "step": state.step,
                    "epoch": state.epoch,
                    **_summary("val", metrics),
                    **_summary("holdout", metrics.get("holdout")),
                }
            )
            console.print(
                f"step {_where(run, state)} val: {format_summary(metrics)}", highlight=False
            )
            if "holdout" in metrics:
                console.print(
                    f"step {_where(run, state)} held-out sequences "
                    f"({', '.join(run.cfg.data.holdout_sequences)}): "
                    f"{format_summary(metrics['holdout'])}",
                    highlight=False,
                )
            if improved:
                save_checkpoint(checkpoint_of(run, metrics), run.run_dir / "best.pt")
            run.last_metrics = metrics
        _save_last(run, state, run.last_metrics)
        run.train_mode()  # evaluation left every module in training mode
    elif state.step % cfg.checkpoint_every == 0:
        _save_last(run, state, run.last_metrics)


def _evaluate(run: Run, dataset, final: bool, loss: bool = False) -> dict:
    """Metrics of the evaluated model (the weight average if any); BF at the final one."""
    return evaluate(
        run.eval_net,
        dataset,
        run.ctx,
        scale=run.cfg.data.scale,
        batch_size=run.cfg.data.eval_batch_size,
        workers=run.cfg.data.workers,
        precision=run.precision.precision,
        loss_fn=run.loss_fn if loss else None,
        boundary=final,
    )


def _summary(prefix: str, metrics: dict | None) -> dict:
    """The headline metrics as metrics.jsonl columns (``val_miou``, ``holdout_miou``, ...)."""
    if metrics is None:
        return {}
    keys = ("loss", "miou", "pixel_acc", "mean_acc", "fwiou")
    return {f"{prefix}_{k}": round(metrics[k], 5) for k in keys if k in metrics}


def _announce(run: Run) -> None:
    data, train = run.cfg.data, run.cfg.train
    effective = data.batch_size * run.ctx.world_size * train.grad_accum
    console.print(
        f"[bold]{run.cfg.experiment}[/]: {run.cfg.model.name} on {data.name} "
        f"({len(run.train_set)} train / {len(run.val_set)} val images{_held_out(run)}, "
        f"{run.info.num_classes} classes) -> {run.run_dir}\n"
        f"backbone weights: {describe_source(run.net.weights_source)}; input normalised with "
        f"mean {_triple(run.info.mean)}, std {_triple(run.info.std)}\n"
        f"batch {data.batch_size} x {run.ctx.world_size} processes x {train.grad_accum} "
        f"accumulation = {effective} images per step; lr {train.lr} ({train.optimizer}), "
        f"{_length(run)} on {run.ctx.device}; {run.precision.line()}"
        + _batchnorm_note(run)
        + (f"; weight average (EMA) decay {train.ema}" if run.ema is not None else ""),
        highlight=False,
    )


def _triple(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _held_out(run: Run) -> str:
    if run.holdout_set is None:
        return ""
    names = ", ".join(run.cfg.data.holdout_sequences)
    return f" / {len(run.holdout_set)} held-out ({names})"


def _where(run: Run, state: TrainState) -> str:
    """``120/150`` (steps), or ``1500 (20.1 of 30 min)`` for a time-budgeted run."""
    if run.budget.seconds is None:
        return f"{state.step}/{run.cfg.train.steps}"
    return f"{state.step} ({state.elapsed_s / 60:.1f} of {run.budget.seconds / 60:g} min)"


def _length(run: Run) -> str:
    steps = run.cfg.train.steps
    if run.budget.seconds is None:
        return f"{steps} steps"
    return f"{run.budget.describe()} (at most {steps} steps)"


def _batchnorm_note(run: Run) -> str:
    if not run.ctx.distributed:
        return ""
    if run.ctx.device.type == "cuda":
        return "; BatchNorm synchronised across processes (SyncBatchNorm)"
    return "; BatchNorm per process (SyncBatchNorm needs CUDA)"


@contextmanager
def _progress(run: Run, state: TrainState):
    progress = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not run.ctx.is_main or not console.is_terminal,
    )
    with progress:
        task = progress.add_task("train", total=run.cfg.train.steps, completed=state.step, loss="-")
        yield progress, task


def _finish(run: Run, state: TrainState) -> None:
    metrics = run.last_metrics
    if metrics is not None:
        payload = {
            **metrics,
            "checkpoint": str(run.run_dir / "last.pt"),
            "split": run.cfg.data.val_split,
            "best_miou": state.best_miou,
            "steps": state.step,
            "elapsed_s": round(state.elapsed_s, 1),
            "time_budget_s": run.budget.seconds,
            "ema": run.cfg.train.ema or None,
            "backbone_weights": run.net.weights_source,
        }
        if "holdout" in metrics:
            payload["holdout"] = {
                **metrics["holdout"],
                "split": run.cfg.data.train_split,
                "sequences": list(run.cfg.data.holdout_sequences),
                "images": len(run.holdout_set),
            }
        (run.run_dir / "eval.json").write_text(json.dumps(payload, indent=1))
        console.print(format_metrics(metrics))
        if "holdout" in metrics:
            console.print("held-out sequences:")
            console.print(format_metrics(metrics["holdout"]))
    if run.cfg.train.report_samples > 0:
        samples = sample_predictions(
            run.eval_net,
            run.val_set,
            run.cfg.train.report_samples,
            run.ctx.device,
            run.cfg.data.scale,
        )
        save_samples(run.run_dir, *samples, run.info.palette, run.info.ignore_index)
    if run.log is not None:
        run.log.close()
    console.print(f"report: {write_report(run.run_dir)}")
