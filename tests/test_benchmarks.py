"""The benchmarks run end to end (on tiny data: their numbers are not checked, only their reports).

speed.py and profile_step.py run in this process (conftest.run_main); ab.py, which starts run.py in two
checkouts, in a process of its own."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import REPO, as_a_new_command, run_main


def run_benchmark(script: str, args: list[str], cwd):
    """`python benchmarks/SCRIPT ARGS`, in this process."""
    return run_main(args, cwd=cwd, script=REPO / "benchmarks" / script)


@pytest.mark.long
def test_speed_benchmark_reports_both_pipelines_and_their_ratio(tiny_root, tmp_path):
    out = tmp_path / "speed.json"
    result = run_benchmark("speed.py", [
        "--device", "cpu", "--epochs", "2", "--data-root", str(tiny_root), "--override", "dataset.val_size=100",
        "--json-out", str(out), "--variant", "ema: trainer.ema_decay=0.9",
        "--variant", "graphs: trainer.cuda_graphs=true", "--variant", "unfused: trainer.fused_cpu_kernels=false"],
        tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    tutorial, ours, ema = report["tutorial"], report["ours"]["ours"], report["ours"]["ema"]
    assert (tutorial["samples_per_epoch"], ours["samples_per_epoch"], ema["samples_per_epoch"]) == (600, 500, 500)
    for side in (tutorial, ours, ema):
        assert len(side["epoch_s"]) == 2 and side["median_samples_per_s"] > 0 and 0 <= side["test_acc"] <= 1
        assert side["memory"]["peak_rss_mib"] > 0
    ratio = report["comparison"]["throughput_ratio_ours_over_tutorial"]
    assert ratio == ours["median_samples_per_s"] / tutorial["median_samples_per_s"]
    assert report["comparison"]["variants_throughput_over_tutorial"]["ema"] == (
        ema["median_samples_per_s"] / tutorial["median_samples_per_s"])
    assert report["ours_overrides"]["ema"] == ["dataset.val_size=100", "trainer.ema_decay=0.9"]
    assert ours["fused_cpu_kernels"] is True and report["ours"]["unfused"]["fused_cpu_kernels"] is False
    # a knob this device cannot run is reported, and the other variants still run
    assert "graphs" not in report["ours"] and "trainer.cuda_graphs" in report["failed_variants"]["graphs"]
    assert "ours / tutorial samples/s" in result.stdout and "graphs: FAILED" in result.stdout


def test_interleaved_pipelines_take_turns_epoch_by_epoch(tiny_root, tmp_path):
    out = tmp_path / "speed.json"
    result = run_benchmark("speed.py", [
        "--device", "cpu", "--epochs", "3", "--interleave", "--data-root", str(tiny_root),
        "--override", "dataset.val_size=100", "--json-out", str(out),
        "--variant", "unfused: trainer.fused_cpu_kernels=false device.threads=1"], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    tutorial, ours, unfused = report["tutorial"], report["ours"]["ours"], report["ours"]["unfused"]
    # each pipeline kept its own threads through the turns: the variant's one did not leak into the others
    assert unfused["threads"] == 1 and tutorial["threads"] == ours["threads"] == report["threads"]
    ends = sorted((t, name) for name, side in (("tutorial", tutorial), ("ours", ours), ("unfused", unfused))
                  for t in side["epoch_ended_at_s"])
    assert [name for _, name in ends] == ["tutorial", "ours", "unfused"] * 3  # one epoch each, in turn
    # ours over the tutorial in samples/s, epoch 2 against epoch 2 and 3 against 3
    paired = [ours["epoch_samples_per_s"][e] / tutorial["epoch_samples_per_s"][e] for e in (1, 2)]
    assert report["comparison"]["paired_throughput_ratios"] == pytest.approx(paired, rel=1e-3)
    assert report["interleaved"] is True and not ours["memory"]["peak_rss_is_own"]
    assert "paired, median over epochs" in result.stdout and "ran interleaved" in result.stdout


def test_speed_benchmark_rejects_a_bad_override(tiny_root, tmp_path):
    result = run_benchmark("speed.py", ["--data-root", str(tiny_root), "--override", "trainer.epochz=1"], tmp_path)
    assert result.returncode != 0 and "epochz" in result.stderr and "Traceback" not in result.stderr


def test_step_profiler_prints_its_table(tiny_root, tmp_path):
    result = run_benchmark("profile_step.py", [
        "--device", "cpu", "--steps", "3", "--data-root", str(tiny_root), "--override", "dataset.val_size=100",
        "--rows", "15"], tmp_path)
    assert result.returncode == 0, result.stderr
    # the fused kernel's op, among 15 rows: on a busy machine it can fall out of the top 5
    assert "Self CPU" in result.stdout and "BatchNormMaxPoolReLU" in result.stdout
    summary = next(line for line in result.stdout.splitlines() if line.startswith("=== default:"))
    assert "graph False" in summary and "fused_cpu_kernels True" in summary and "ms_per_step_profiled" in summary
    stacked = run_benchmark("profile_step.py", [
        "--device", "cpu", "--steps", "3", "--data-root", str(tiny_root), "--override", "dataset.val_size=100",
        "--stack", "2"], tmp_path)
    assert stacked.returncode == 0, stacked.stderr
    summary = next(line for line in stacked.stdout.splitlines() if line.startswith("=== default:"))
    times = {key: float(value) for key, value in re.findall(r"ms_(step|gradients|update) ([0-9.]+)", summary)}
    assert set(times) == {"step", "gradients", "update"} and all(value > 0 for value in times.values()), summary


def test_the_stack_kernel_study_checks_each_variant_and_prints_its_table(tmp_path):
    # each variant's logits and gradients are checked against the grouped model's before it is timed
    variants = ["grouped_nchw", "grouped_cl", "bmm_wgrad", "dense_first+bmm_wgrad", "dense", "unfold+tuned"]
    result = run_benchmark("stack_kernels.py", ["--device", "cpu", "--ns", "2", "--reps", "1", "--rounds", "1",
                                                "--variants", *variants, "--json-out", str(tmp_path / "kernels.json")],
                           tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "kernels.json").read_text())
    times = report["ms_per_step"]["2"]
    assert list(times) == variants and all(t["ms_per_step"] > 0 for t in times.values())
    assert report["reference"] == "grouped_nchw" and "speed vs grouped_nchw" in result.stdout
    assert re.search(r"^2 +dense_first\+bmm_wgrad +[0-9.]+ ", result.stdout, re.MULTILINE), result.stdout
    bad = run_benchmark("stack_kernels.py", ["--variants", "grouped_nchw+dense_last"], tmp_path)
    assert bad.returncode == 2 and "unknown feature 'dense_last'" in bad.stderr


def test_a_stack_kernel_that_computes_other_gradients_is_refused(tmp_path):
    script = (REPO / "benchmarks" / "stack_kernels.py").read_text()
    off_by_a_thousandth = script.replace('torch.einsum("bgol,bgkl->gok", grads, cols)',
                                         '1.001 * torch.einsum("bgol,bgkl->gok", grads, cols)')
    assert off_by_a_thousandth != script
    (tmp_path / "stack_kernels.py").write_text(off_by_a_thousandth)
    (tmp_path / "common.py").write_text((REPO / "benchmarks" / "common.py").read_text())  # what it imports
    result = run_main(["--device", "cpu", "--ns", "2", "--reps", "1", "--rounds", "1", "--variants", "grouped_nchw",
                       "bmm_wgrad"], cwd=tmp_path, script=tmp_path / "stack_kernels.py")
    assert result.returncode == 1 and "bmm_wgrad computes other logits or gradients" in result.stderr


def test_step_profiler_rejects_a_bad_override(tiny_root, tmp_path):
    result = run_benchmark("profile_step.py", ["--data-root", str(tiny_root), "--override", "trainer.epochz=1"],
                           tmp_path)
    assert result.returncode != 0 and "epochz" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.long
@pytest.mark.skipif(not (REPO / ".git").exists(), reason="ab.py compares git commits: needs a git checkout")
def test_ab_runs_both_checkouts_and_pairs_their_throughput(tiny_root, tmp_path):
    out = tmp_path / "ab.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "ab.py"), "--base", "HEAD", "--rounds", "1", "--epochs", "1",
         "--warmup", "0", "--device", "cpu", "--data-root", str(tiny_root), "--override", "dataset.val_size=100",
         "--override", "trainer.fused_cpu_kernels=false", "--override", "trainer.log_images=false", "--json-out", str(out)],
        capture_output=True, text=True, timeout=300, preexec_fn=as_a_new_command)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert (report["base"]["commit"], report["base"]["rev"], report["new"]["rev"]) == (head, "HEAD", "working tree")
    (only,) = report["rounds"]
    for side in (only["base"], only["new"]):  # both completed a whole run.py, read from its metrics.json
        assert side["status"] == "completed" and side["exit"] == 0 and 0 <= side["test_acc"] <= 1
        assert side["samples_per_s"] > 0 and side["median_epoch_s"] > 0 and 0 < side["startup_s"] < side["wall_time_s"]
    assert only["ratio_samples_per_s"] == pytest.approx(only["new"]["samples_per_s"] / only["base"]["samples_per_s"])
    assert report["median_ratio_samples_per_s"] == only["ratio_samples_per_s"] and report["completed"] is True
    assert "median new/base samples/s" in result.stdout and "completed" in result.stdout
    worktrees = subprocess.run(["git", "-C", str(REPO), "worktree", "list"], capture_output=True, text=True).stdout
    assert "lenet_exp-ab-" not in worktrees  # the base checkout is removed again


@pytest.mark.long
@pytest.mark.skipif(not (REPO / ".git").exists(), reason="stacked_optimizer.py compares git commits: needs a git checkout")
def test_stacked_optimizer_times_each_checkouts_own_update(tmp_path):
    out = tmp_path / "optimizer.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "stacked_optimizer.py"), "--base", "HEAD", "--ns", "1", "3",
         "--rounds", "2", "--steps", "2", "--json-out", str(out)],
        capture_output=True, text=True, timeout=300, preexec_fn=as_a_new_command)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert (report["base"]["rev"], report["new"]["rev"]) == ("HEAD", "working tree") and len(report["rounds"]) == 2
    for n in ("1", "3"):  # each side's own package ran (the script checks it), and was timed and profiled
        figures = report["by_n"][n]
        assert all(ms > 0 for ms in figures["ms_per_step"].values()) and min(figures["operators_per_step"].values()) > 0
        assert figures["base_over_new"] == pytest.approx(figures["ms_per_step"]["base"] / figures["ms_per_step"]["new"])
    assert re.search(r"^3 +[\d.]+ +[\d.]+ +[\d.]+x +\d+ +\d+$", result.stdout, re.M), result.stdout
    worktrees = subprocess.run(["git", "-C", str(REPO), "worktree", "list"], capture_output=True, text=True).stdout
    assert "lenet_exp-optimizer-" not in worktrees


@pytest.mark.parametrize("measured", ["training", "evaluation"])
def test_stack_layouts_prints_each_layouts_cost_per_trial(measured, tmp_path):
    out = tmp_path / "layouts.json"
    result = run_benchmark("stack_layouts.py", ["--ns", "1", "2", "--rounds", "1", "--reps", "1", "--warmup", "1",
                                                "--batch", "16", "--json-out", str(out),
                                                *(["--eval"] if measured == "evaluation" else [])], tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["measured"] == measured and set(report["ms_per_trial"]) == {"1", "2"}
    rows = report["ms_per_trial"].values()
    assert all(row[name] > 0 for row in rows for name in ("separate", "grouped", "vmap"))
    unit = "trial-step" if measured == "training" else "trial-batch (evaluation)"
    assert f"ms per {unit}, batch 16" in result.stdout and "(1.00x)" in result.stdout


def test_stacked_step_times_the_launchers_own_step_per_trial(tiny_root, tmp_path):
    out = tmp_path / "step.json"
    result = run_benchmark("stacked_step.py", ["--ns", "2", "--rounds", "1", "--steps", "2", "--data-root",
                                               str(tiny_root), "--override", "dataset.val_size=100",
                                               "--json-out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    row = json.loads(out.read_text())["ms_per_trial_step"]["2"]
    assert all(row[name] > 0 for name in ("single", "stacked", "one_order"))
    assert "ms per trial-step, batch 64" in result.stdout and "one_order" in result.stdout


@pytest.mark.long
def test_stacked_sweeps_times_each_launcher_on_the_same_trials(tiny_root, tmp_path):
    out = tmp_path / "sweeps.json"
    result = run_benchmark("stacked_sweeps.py", [
        "--device", "cpu", "--ns", "2", "--epochs", "1", "--launchers", "stacked", "basic", "--data-root",
        str(tiny_root), "--override", "dataset.val_size=100", "--override", "trainer.log_images=false",
        "--json-out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    stacked, basic = json.loads(out.read_text())["results"]
    for row in (stacked, basic):  # two seeds of one learning rate, each a whole sweep of run.py
        assert (row["n"], row["completed"], row["exit"]) == (2, 2, 0) and row["wall_s"] > 0
        assert row["trial_samples_per_s"] > 0 and 0 <= row["test_acc_mean"] <= 1
        assert all(0 < row[part] < row["wall_s"] for part in ("startup_s", "epochs_s", "test_s"))
    assert stacked["test_acc_mean"] == pytest.approx(basic["test_acc_mean"], abs=0.02)  # the same trials
    assert basic["wall_over_stacked"] == pytest.approx(basic["wall_s"] / stacked["wall_s"])
    assert "wall/stacked" in result.stdout


def test_stacked_sweeps_compares_named_sweeps_with_one_trial_over_rounds(tiny_root, tmp_path):
    out = tmp_path / "sweeps.json"
    result = run_benchmark("stacked_sweeps.py", [
        "--device", "cpu", "--sweeps", "basic:1", "stacked:2", "stacked:2:optimizer.lr=-1", "--rounds", "2",
        "--epochs", "1", "--data-root", str(tiny_root), "--override", "dataset.val_size=100",
        "--override", "trainer.log_images=false", "--override", "trainer.limit_batches=2", "--json-out", str(out)],
        tmp_path)
    assert result.returncode == 1, result.stderr  # the sweep with its own override (a refused lr) failed
    alone, stacked, refused = json.loads(out.read_text())["results"]
    assert [(r["launcher"], r["n"], r["completed"]) for r in (alone, stacked)] == [("basic", 1, 1), ("stacked", 2, 2)]
    assert (refused["overrides"], refused["completed"], stacked["overrides"]) == (["optimizer.lr=-1"], 0, [])
    assert refused["wall_over_stacked"] == pytest.approx(refused["wall_s"] / stacked["wall_s"])
    assert re.search(r"^2 +stacked optimizer.lr=-1 +0/2 ", result.stdout, re.MULTILINE), result.stdout
    for row in (alone, stacked):  # the median of two rounds: the faster one's
        assert len(row["walls_s"]) == 2 and row["wall_s"] == min(row["walls_s"])
    assert stacked["wall_over_one_trial"] == pytest.approx(stacked["wall_s"] / alone["wall_s"])
    assert alone["wall_over_one_trial"] == pytest.approx(1) and alone["wall_over_stacked"] is None
    assert "median of 2 round(s)" in result.stdout
    for typo in ("stacked16", "stacked:16:cudnn_benchmark"):
        bad = run_benchmark("stacked_sweeps.py", ["--sweeps", typo], tmp_path)
        assert bad.returncode == 2 and "expected LAUNCHER:N" in bad.stderr
