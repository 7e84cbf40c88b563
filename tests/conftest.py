"""Shared test settings: small, deterministic and offline."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch, tmp_path):
    torch.manual_seed(0)
    # Never reach for the network or the user's cache: torch.hub looks under TORCH_HOME.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
