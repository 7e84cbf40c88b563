"""Validation during training loads with ``data.workers`` loader processes, as training does."""

from __future__ import annotations

import fcnlab.engine.evaluate as evaluate_module
from fcnlab.config import ExperimentConfig, apply_overrides
from fcnlab.engine.train import train

EVALUATION_LOADER = evaluate_module.evaluation_loader


def test_validation_uses_the_configured_workers(tmp_path, monkeypatch):
    # evaluate() defaults to workers=0, so seeing 1 shows the setting is passed through.
    seen = []

    def loader(dataset, ctx, batch_size, workers):
        built = EVALUATION_LOADER(dataset, ctx, batch_size, workers)
        seen.append((batch_size, workers, built.num_workers))
        return built

    monkeypatch.setattr(evaluate_module, "evaluation_loader", loader)
    cfg = apply_overrides(
        ExperimentConfig(),
        [
            "model.name=fcn32s_vgg11",
            "model.fc_width=16",
            "data.options={length: 4, size: [32, 32]}",
            "data.crop_size=[32, 32]",
            "data.batch_size=2",
            "data.eval_batch_size=2",
            "data.workers=1",
            "train.optimizer=sgd",
            "train.steps=2",
            "train.val_every=1",
            "train.report_samples=0",
            "train.precision=fp32",
            "train.device=cpu",
        ],
    )
    train(cfg, tmp_path / "run")
    # Step 1's periodic validation and step 2's final one, each with one loader process.
    assert seen == [(2, 1, 1)] * 2
