"""The default recipe on the genuine data sets in ../shared/data (skipped, with the reason, without them)."""

from __future__ import annotations

import pytest

from conftest import SHARED_DATA, only_run_dir, run_main
from lenet_exp.files import read_json

needs_data = pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(),
                                reason=f"the real data sets are not in {SHARED_DATA}")


@needs_data
@pytest.mark.slow
def test_one_epoch_of_the_default_recipe_reaches_97_5_percent_on_mnist(tmp_path):
    result = run_main([f"dataset.root={SHARED_DATA}", "dataset.download=false", "trainer.epochs=1",
                       "trainer.progress=false"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = read_json(only_run_dir(tmp_path) / "metrics.json")
    assert metrics["history"][0]["train/acc"] > 0.9
    assert metrics["test"]["acc"] >= 0.975, metrics["test"]
    assert sum(1 for _ in (tmp_path / "outputs").rglob("events.out.tfevents*")) == 1
