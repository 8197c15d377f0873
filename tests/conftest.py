"""Shared fixtures. Real data lives in ``../shared/data`` beside the repository (as in CI)."""

import os
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
# The dataset presets (configs/data/raccoon.yaml, coco128.yaml, ...) find their files under
# ${YOLOKIT_DATA_ROOT}; the tests point it at ../shared/data unless the caller chose another folder.
if SHARED.is_dir():
    os.environ.setdefault("YOLOKIT_DATA_ROOT", str(SHARED))
GET_DATA = ("real data not found at {path}: these tests read the project's test-data folder ../shared/data "
            "(snapshots of public repositories, each named with its commit in a PROVENANCE.txt); put it beside the "
            "clone. Public datasets for your own runs: `yolokit data get raccoon|coco128|voc|coco` "
            "(README, section 'Get data')")

# Decode verdicts (yolokit.data.load.verified_cache_dir) go to a folder of this test session, not ~/.cache.
os.environ.setdefault("YOLOKIT_CACHE_DIR", tempfile.mkdtemp(prefix="yolokit-test-cache-"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Every skip for missing ``../shared`` is reported at this file, so ``-ra`` folds them into ONE line
    (``SKIPPED [198] tests/conftest.py: real data not found ...``) instead of one line per test file."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and GET_DATA[:20] in str(report.longrepr[2]):
        report.longrepr = (str(Path(__file__)), None, report.longrepr[2])


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path to ``../shared/data``; tests that need it are skipped where it is absent."""
    if not SHARED.is_dir():
        pytest.skip(GET_DATA.format(path=SHARED))
    return SHARED


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Run a test on the CPU and, where CUDA exists, on the GPU."""
    return request.param
