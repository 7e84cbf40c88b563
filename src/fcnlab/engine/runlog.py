"""The run's metrics log: JSON lines (always: the report reads them), optionally CSV and
TensorBoard.

Only rank 0 writes. Every record is flushed at once so a killed run keeps its history.
"""

from __future__ import annotations

import csv
import json
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
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
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

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
