"""Shared fixtures: tiny generated data sets and a helper that runs the real `python run.py` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from idx import write_dataset

REPO = Path(__file__).resolve().parents[1]
RUN_PY = REPO / "run.py"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A data root holding tiny MNIST and FashionMNIST (600 train / 200 test images each)."""
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, "MNIST", seed=0)
    write_dataset(root, "FashionMNIST", seed=1)
    return root


def fast_overrides(root: Path) -> list[str]:
    """Overrides for a seconds-long CPU run on the tiny data in ``root``."""
    return [f"dataset.root={root}", "dataset.download=false", "dataset.val_size=100", "trainer.epochs=1",
            "trainer.eval_batch_size=200", "device=cpu", "trainer.progress=false"]


@pytest.fixture
def fast(tiny_root) -> list[str]:
    return fast_overrides(tiny_root)


def run_cli(args: list[str], cwd: Path, timeout: float = 300, env: dict | None = None, script: Path | None = RUN_PY,
            **kwargs):
    """`python run.py ARGS` in ``cwd`` (so outputs/ lands there); returns the CompletedProcess.

    ``script=None`` passes ARGS to the interpreter as they are (for interpreter flags)."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "LENET_EXP_DATA")}
    full_env = {**inherited, "PYTHONUNBUFFERED": "1", **(env or {})}
    command = [sys.executable, *([str(script)] if script else []), *args]
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def only_run_dir(cwd: Path) -> Path:
    """The single run directory a `python run.py` in ``cwd`` created."""
    runs = sorted((cwd / "outputs" / "runs").glob("*/*"))
    assert len(runs) == 1, runs
    return runs[0]
