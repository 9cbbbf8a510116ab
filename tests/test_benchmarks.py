"""The speed benchmark runs end to end (on tiny data: its numbers are not checked, only its report)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_speed_benchmark_reports_both_pipelines_and_their_ratio(tiny_root, tmp_path):
    out = tmp_path / "speed.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "speed.py"), "--device", "cpu", "--epochs", "2",
         "--data-root", str(tiny_root), "--override", "dataset.val_size=100", "--json-out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    tutorial, ours = report["tutorial"], report["ours"]
    assert (tutorial["samples_per_epoch"], ours["samples_per_epoch"]) == (600, 500)
    for side in (tutorial, ours):
        assert len(side["epoch_s"]) == 2 and side["median_samples_per_s"] > 0 and 0 <= side["test_acc"] <= 1
        assert side["memory"]["peak_rss_mib"] > 0
    ratio = report["comparison"]["throughput_ratio_ours_over_tutorial"]
    assert ratio == ours["median_samples_per_s"] / tutorial["median_samples_per_s"]
    assert "throughput ours / tutorial" in result.stdout


def test_speed_benchmark_rejects_a_bad_override(tiny_root):
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "speed.py"), "--data-root", str(tiny_root),
         "--override", "trainer.epochz=1"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "epochz" in result.stderr and "Traceback" not in result.stderr
