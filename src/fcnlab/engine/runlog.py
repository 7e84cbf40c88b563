"""The run's metrics log: JSON lines (always: the report reads them), optionally CSV and
TensorBoard.

Only rank 0 writes. Every record is flushed at once so a killed run keeps its history.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from fcnlab.errors import FcnlabError


class MetricsLog:
    def __init__(self, run_dir: Path, fmt: str = "jsonl", tensorboard: bool = False) -> None:
        self.path = run_dir / "metrics.jsonl"
        self.csv_path = run_dir / "metrics.csv" if fmt == "csv" else None
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise FcnlabError(
                    "train.tensorboard needs the tensorboard package: "
                    "pip install 'fcnlab[tensorboard]'."
                ) from err
            self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        record = {k: finite_or_none(v) for k, v in record.items()}  # always valid JSON
        with self.path.open("a") as f:
            f.write(json.dumps(record, allow_nan=False) + "\n")
        if self.csv_path is not None:
            self._write_csv(record)
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, int | float) and key not in ("step", "epoch"):
                    self.writer.add_scalar(key, value, record["step"])
            self.writer.flush()

    def _write_csv(self, record: dict[str, Any]) -> None:
        # CSV needs one header: keep a fixed column set, blank where a record lacks a value.
        columns = [
            "step",
            "epoch",
            "train_loss",
            "lr",
            "images_per_s",
            "val_loss",
            "val_miou",
            "val_pixel_acc",
            "val_mean_acc",
            "val_fwiou",
        ]
        new = not self.csv_path.exists()
        with self.csv_path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(record)

    def truncate(self, step: int) -> None:
        """Keep only the records up to ``step`` (resuming from a checkpoint of that step)."""
        _keep_lines(self.path, lambda line: _step_of_json(line) <= step)
        if self.csv_path is not None:
            _keep_lines(self.csv_path, lambda line: _step_of_csv(line) <= step, header=True)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def finite_or_none(value: Any) -> Any:
    """NaN and inf become None (JSON null): the log stays valid JSON."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _step_of_json(line: str) -> float:
    try:
        return float(json.loads(line).get("step", math.inf))
    except (ValueError, AttributeError, TypeError):
        return math.inf  # a line cut short by a kill: drop it


def _step_of_csv(line: str) -> float:
    try:
        return float(line.split(",", 1)[0])
    except ValueError:
        return math.inf


def _keep_lines(path: Path, keep, header: bool = False) -> None:
    """Rewrite ``path`` atomically with the lines ``keep`` accepts (and its header line)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    head, body = (lines[:1], lines[1:]) if header else ([], lines)
    kept = head + [line for line in body if line.strip() and keep(line)]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(kept))
    os.replace(tmp, path)
