"""A run's persistent state: the run folder, ``last.pt``/``best.pt`` and resuming.

``last.pt`` holds, besides the model, everything the loop needs to continue exactly: the step,
epoch and position in the epoch, the best mIoU so far, the optimizer and grad-scaler states
and every rank's RNG state (its dropout masks). With ``train.ema`` the model entry is the
weight average and the trained weights are in the training state (``trained_state_dict``).
Writes are atomic (see ``checkpoint``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from fcnlab.config import config_to_dict
from fcnlab.engine import distributed
from fcnlab.engine.checkpoint import load_checkpoint, load_weights, make_checkpoint, save_checkpoint
from fcnlab.engine.setup import Run
from fcnlab.errors import FcnlabError


@dataclass
class TrainState:
    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of this epoch already consumed
    best_miou: float = -1.0
    elapsed_s: float = 0.0  # training wall time, across resumes
    val_s: float = 0.0  # the last validation's duration (a time budget's final reserve)


def checkpoint_of(run: Run, metrics=None, train_state=None) -> dict:
    return make_checkpoint(
        run.eval_net,
        run.info,
        config_to_dict(run.cfg),
        run.cfg.data.scale,
        metrics=metrics,
        train_state=train_state,
    )


def save_last(run: Run, state: TrainState, metrics=None) -> None:
    # Every rank's RNG (its dropout masks), so a resumed DDP run continues exactly; collective.
    rngs = distributed.all_gather_object(torch.get_rng_state())
    if not run.ctx.is_main:
        return
    train_state = {
        **asdict(state),
        "optimizer": run.optimizer.state_dict(),
        "scaler": run.scaler.state_dict(),
        "rng": rngs[0],
        "rng_per_rank": rngs,
    }
    if run.ema is not None:  # the model entry holds the average; training goes on from these
        train_state["trained_state_dict"] = run.net.state_dict()
        train_state["ema_updates"] = run.ema.updates
    save_checkpoint(checkpoint_of(run, metrics, train_state), run.run_dir / "last.pt")


def restore(run: Run) -> TrainState:
    path = run.run_dir / "last.pt"
    if not path.is_file():
        raise FcnlabError(f"cannot resume: {path} does not exist; start without --resume.")
    checkpoint = load_checkpoint(path)
    saved = checkpoint.get("train_state")
    if not saved:
        raise FcnlabError(f"cannot resume from {path}: it holds no training state.")
    if run.ema is not None:
        if "trained_state_dict" not in saved:
            raise FcnlabError(
                f"cannot resume {path} with train.ema: the run was started without it; resume "
                "with the config it was started with."
            )
        load_weights(run.net, saved["trained_state_dict"], str(path))
        run.ema.load(checkpoint["state_dict"], saved["ema_updates"])
    elif "trained_state_dict" in saved:
        raise FcnlabError(
            f"cannot resume {path} without train.ema: the run was started with it; resume "
            "with the config it was started with."
        )
    else:
        load_weights(run.net, checkpoint["state_dict"], str(path))
    run.optimizer.load_state_dict(saved["optimizer"])
    run.scaler.load_state_dict(saved["scaler"])
    rngs = saved.get("rng_per_rank") or [saved["rng"]]
    if run.ctx.rank < len(rngs):  # a rank the saved run did not have keeps its fresh seed
        torch.set_rng_state(rngs[run.ctx.rank])
    fields = TrainState.__dataclass_fields__
    state = TrainState(**{k: saved[k] for k in fields if k in saved})
    run.saved_step = state.step
    run.budget.reserve_s = state.val_s
    if run.log is not None:
        run.log.truncate(state.step)  # rows after the checkpoint will be written again
    return state


def claim_run_dir(run_dir: Path, resume: bool, is_main: bool) -> None:
    if not resume and (run_dir / "last.pt").exists():
        raise FcnlabError(
            f"{run_dir} already holds a run; continue it with --resume or choose another "
            "folder with --out."
        )
    if is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FcnlabError(f"cannot create run folder {run_dir}: {err.strerror}.") from err
        remove_stale_temporaries(run_dir)


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes a killed run left behind."""
    stale = [p for name in ("last.pt", "best.pt") for p in run_dir.glob(f".{name}.*")]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
