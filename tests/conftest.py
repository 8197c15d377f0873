"""Shared fixtures. Real data lives in ``../shared/data`` beside the repository (as in CI)."""

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path to ``../shared/data``; tests that need it are skipped where it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED}")
    return SHARED


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Run a test on the CPU and, where CUDA exists, on the GPU."""
    return request.param
