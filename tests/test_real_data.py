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


@needs_data
@pytest.mark.slow
def test_another_data_sets_files_in_a_folder_are_said_to_be_so(tmp_path):
    """FashionMNIST's four files in MNIST/raw trained as digits, normalised with MNIST's mean and recorded as mnist,
    without a word (helper dataroot60)."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for file in (SHARED_DATA / "FashionMNIST" / "raw").glob("*-ubyte"):
        (raw / file.name).symlink_to(file)
    result = run_main([f"dataset.root={tmp_path / 'data'}", "dataset.download=false", "trainer.epochs=1",
                       "trainer.limit_batches=2", "trainer.progress=false"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (f"The train images in {raw} have a mean pixel of 0.28" in result.stderr
            and "where MNIST's have 0.1307: are they another data set's files?" in result.stderr), result.stderr
    genuine = run_main([f"dataset.root={SHARED_DATA}", "dataset.download=false", "trainer.epochs=1",
                        "trainer.limit_batches=2", "trainer.progress=false"], cwd=tmp_path / "data")
    assert genuine.returncode == 0 and "mean pixel" not in genuine.stderr, genuine.stderr[-2000:]
