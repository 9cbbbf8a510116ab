"""Stacked trials (``hydra/launcher=stacked``): a sweep's compatible jobs trained as one grouped model,
each still a complete run: the same metrics as alone, its own files, status and resume."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, run_main, start
from lenet_exp import compose, files
from lenet_exp import checkpoints
from lenet_exp.files import LOCK_FILE, read_json
from lenet_exp.loop import Run
from lenet_exp.stack.grouping import Job, plan
from tensorboard_events import card, load_events, scalar_values, session_status

STACKED = ["-m", "hydra/launcher=stacked"]
EXACT = ["trainer.epochs=2", "trainer.deterministic=true", "trainer.log_images=false"]
PER_TRIAL_KEYS = ("optimizer.lr=", "seed=", "optimizer.weight_decay=", "optimizer.nesterov=", "optimizer.momentum=",
                  "trainer.ema_decay=", "trainer.tta_shift=", "trainer.early_stop_patience=", "trainer.grad_clip_norm=",
                  "trainer.monitor=", "+trial=")
# Three trials that differ in learning rate, seed and weight decay at once (a command-line sweep would take
# the product of the values): options of a `trial` group in a config folder of the test's own
TRIALS = {"a": (1e-3, 0, 0.0), "b": (3e-3, 1, 1e-4), "c": (5e-4, 2, 5e-4)}


def trial_options(folder: Path) -> list[str]:
    """Writes the :data:`TRIALS` into ``folder``; the overrides that put it on Hydra's search path."""
    for name, (lr, seed, weight_decay) in TRIALS.items():
        (folder / "trial").mkdir(parents=True, exist_ok=True)
        (folder / "trial" / f"{name}.yaml").write_text(
            f"# @package _global_\noptimizer: {{lr: {lr}, weight_decay: {weight_decay}}}\nseed: {seed}\n")
    return [f"hydra.searchpath=[file://{folder}]"]


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=lambda p: int(p.name.split("_")[0]))


def alone_dir(job_dir: Path) -> Path:
    return job_dir.parent.parent / "alone" / job_dir.name.split("_")[0]


def train_alone(job_dir: Path, base: list[str], cwd: Path) -> dict:
    """The job's run, trained by itself (the basic path, in :func:`alone_dir`) with the same overrides."""
    overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())
    own = [o for o in overrides if o.startswith(PER_TRIAL_KEYS)]
    result = run_main([*base, *own, f"hydra.run.dir={alone_dir(job_dir)}"], cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    return read_json(alone_dir(job_dir) / "metrics.json")


def assert_same_run(stacked: dict, alone: dict, tolerance: float = 1e-4) -> None:
    """Epoch by epoch the same losses and accuracies (to float rounding), the same best epoch and test."""
    assert len(stacked["history"]) == len(alone["history"]) == stacked["epochs_done"]
    for ours, theirs in zip(stacked["history"], alone["history"]):
        for key in ("train/loss", "train/acc", "train/lr", "val/loss", "val/acc"):
            assert ours[key] == pytest.approx(theirs[key], rel=tolerance, abs=tolerance), key
    assert stacked["best_epoch"] == alone["best_epoch"]
    assert stacked["test"]["acc"] == pytest.approx(alone["test"]["acc"], abs=1e-9)
    assert stacked["test"]["loss"] == pytest.approx(alone["test"]["loss"], rel=tolerance)


@pytest.mark.parametrize("optimizer", [
    # the CPU's layouts: NCHW here, channels_last (the default with the fused kernel) in the others
    ["optimizer=adam", "trainer.channels_last=false"],
    ["optimizer=adamw", "scheduler=onecycle", "trainer.ema_decay=0.9", "trainer.label_smoothing=0.1",
     "model.dropout=0.2"],
    ["optimizer=sgd", "optimizer.nesterov=true", "scheduler=cosine", "augment=affine"],
    # the trials' seeds differ, their data order and augmentation do not: they share each batch
    ["optimizer=adam", "augment=affine", "data_seed=7"],
], ids=["adam-nchw", "adamw-onecycle-ema-smoothing-dropout", "sgd-nesterov-cosine-augment",
        "adam-augment-one-data-order"])
def test_a_stacked_trial_ends_where_it_would_alone(optimizer, fast, tmp_path):
    import torch

    base = [*fast, *EXACT, *optimizer, *trial_options(tmp_path / "configs")]
    result = run_main([*STACKED, *base, "+trial=" + ",".join(TRIALS), "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    one_order = "data_seed=7" in optimizer
    assert f"Training jobs 0, 1, 2 stacked: 3 trials in one model on cpu{', one data order' * one_order}\n" in result.stderr
    jobs = job_dirs(tmp_path / "sweep")
    assert [job.name for job in jobs] == ["0_+trial=a", "1_+trial=b", "2_+trial=c"]  # named by what each ran
    assert [read_json(job / "metrics.json")["stacked_with"] for job in jobs] == [[0, 1, 2]] * 3
    # lr <= 1e-3 in the trials compared: Adam at 2e-3 - 3e-3 can amplify the grouped convolution's other
    # rounding (~1e-7) to ~1e-4 within 2 epochs on these 500 images (it did for seed 2)
    for job in (jobs[0], jobs[-1]):
        assert_same_run(read_json(job / "metrics.json"), train_alone(job, base, tmp_path))
        # its data order, augmentation and dropout go on from where they would alone: a resumed run draws
        # as it would
        stacked, alone = (torch.load(run / "checkpoints" / "last.pt", weights_only=True)["rng"]
                          for run in (job, alone_dir(job)))
        assert torch.equal(stacked["generator"], alone["generator"]) and torch.equal(stacked["torch"], alone["torch"])


@pytest.mark.parametrize("trials", [["optimizer=sgd", "optimizer.nesterov=true,false", "trainer.ema_decay=0.9,null"],
                                    ["trainer.tta_shift=0,1"]], ids=["nesterov-ema", "test-time-augmentation"])
def test_trials_that_differ_in_how_they_step_or_are_evaluated_share_a_group(trials, fast, tmp_path):
    """They split into groups before; each trial's update, and what it evaluates, is still its own."""
    base = [*fast, *EXACT, "scheduler=cosine"]
    result = run_main([*STACKED, *base, *trials, "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    n = 2 ** sum("," in override for override in trials)
    assert f"Training jobs {', '.join(map(str, range(n)))} stacked: {n} trials in one model on cpu" in result.stderr
    base += [override for override in trials if "," not in override]
    for job in job_dirs(tmp_path / "sweep"):
        assert_same_run(read_json(job / "metrics.json"), train_alone(job, base, tmp_path))


def test_trials_that_differ_in_smoothing_betas_schedule_and_dropout_end_where_they_would_alone(fast, tmp_path):
    """The per-trial settings that no other equivalence test sets apart within a group, all at once."""
    trial = tmp_path / "configs" / "trial"
    trial.mkdir(parents=True)
    for name, (smoothing, betas, pct_start, dropout) in {"a": (0.0, [0.9, 0.999], 0.3, 0.0),
                                                         "b": (0.1, [0.8, 0.99], 0.5, 0.3)}.items():
        (trial / f"{name}.yaml").write_text(
            f"# @package _global_\ntrainer: {{label_smoothing: {smoothing}}}\noptimizer: {{betas: {betas}}}\n"
            f"scheduler: {{pct_start: {pct_start}}}\nmodel: {{dropout: {dropout}}}\n")
    base = [*fast, *EXACT, "scheduler=onecycle", f"hydra.searchpath=[file://{trial.parent}]"]
    result = run_main([*STACKED, *base, "+trial=a,b", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 0 and "Training jobs 0, 1 stacked" in result.stderr, result.stderr[-2000:]
    a, b = (read_json(job / "metrics.json") for job in job_dirs(tmp_path / "sweep"))
    assert (b["config"]["trainer"]["label_smoothing"], b["config"]["model"]["dropout"]) == (0.1, 0.3)
    assert a["history"][0]["train/loss"] != pytest.approx(b["history"][0]["train/loss"], rel=1e-3)
    for job in job_dirs(tmp_path / "sweep"):
        assert_same_run(read_json(job / "metrics.json"), train_alone(job, base, tmp_path))


@pytest.mark.parametrize("optimizer", ["optimizer=adam", "optimizer=sgd"])
def test_a_trials_gradients_are_clipped_to_its_own_norm_as_they_would_be_alone(optimizer, fast, tmp_path):
    """trainer.grad_clip_norm is each trial's own: its gradients' norm over the trial's own parameters, as
    torch's clip_grad_norm_ takes a single model's. One seed: the clipping alone sets the trials apart."""
    base = [*fast, *EXACT, optimizer]
    result = run_main([*STACKED, *base, "trainer.grad_clip_norm=0.05,null", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 0 and "Training jobs 0, 1 stacked" in result.stderr, result.stderr[-2000:]
    clipped, free = (read_json(job / "metrics.json") for job in job_dirs(tmp_path / "sweep"))
    assert clipped["history"][0]["train/loss"] != pytest.approx(free["history"][0]["train/loss"], rel=1e-3)
    # the unclipped SGD trial falls from a val loss of 2.08 to 0.27 in its second epoch, which grows float rounding
    # (summation order, the CPU's vector width) to 0.4% of it on an AVX-512 Xeon; the clipped one stays within 1e-6
    for job, tolerance in zip(job_dirs(tmp_path / "sweep"), (1e-4, 1e-2 if optimizer == "optimizer=sgd" else 1e-4)):
        assert_same_run(read_json(job / "metrics.json"), train_alone(job, base, tmp_path), tolerance=tolerance)


def test_a_stacked_sgd_trial_without_momentum_keeps_no_momentum_buffer_and_resumes_as_alone(fast, tmp_path):
    """torch's SGD keeps no state at momentum 0: such a trial's checkpoint has none either, as its lone run's
    (it held the group's last gradients); resumed, it and the trial with momentum train on as they would alone."""
    import torch

    def optimizer_state(run: Path) -> dict:
        return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["optimizer"]["state"]

    # lr 0.01: at sgd's 0.05 the trial with momentum amplifies the grouped convolution's rounding past the tolerance
    base = [*fast, "trainer.deterministic=true", "optimizer=sgd", "optimizer.lr=0.01"]
    sweep = [*STACKED, *base, "optimizer.momentum=0,0.9", "hydra.sweep.dir=sweep"]
    first = run_main(sweep, cwd=tmp_path)  # fast: 1 epoch
    assert first.returncode == 0 and "Training jobs 0, 1 stacked" in first.stderr, first.stderr[-2000:]
    without, with_momentum = jobs = job_dirs(tmp_path / "sweep")
    assert optimizer_state(without) == {}
    assert {name for state in optimizer_state(with_momentum).values() for name in state} == {"momentum_buffer"}
    resumed = run_main([*sweep, "trainer.epochs=2"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.stderr.count("Resuming") == 2 and "Training jobs 0, 1 stacked" in resumed.stderr
    for job in jobs:
        assert_same_run(read_json(job / "metrics.json"), train_alone(job, [*base, "trainer.epochs=2"], tmp_path))
        assert optimizer_state(job).keys() == optimizer_state(alone_dir(job)).keys()
    assert optimizer_state(without) == {}


def one_trial_in_two_groups(base: list[str], cwd: Path) -> tuple[dict, dict]:
    """The metrics of the trial of seed 0, stacked first with seed 1, then with seed 2 (one data order)."""
    runs = []
    for other in (1, 2):
        result = run_main([*STACKED, *base, "data_seed=0", f"seed=0,{other}", f"hydra.sweep.dir=with_{other}"], cwd=cwd)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "2 trials in one model" in result.stderr and "one data order" in result.stderr
        runs.append(read_json(job_dirs(cwd / f"with_{other}")[0] / "metrics.json"))
    assert runs[0]["seed"] == runs[1]["seed"] == 0
    return runs[0], runs[1]


def test_a_trials_dropout_masks_are_its_own_whatever_it_is_stacked_with(fast, tmp_path):
    """They come from the trial's own seed, not from torch's RNG, which the group's last-built trial seeds."""
    with_1, with_2 = one_trial_in_two_groups([*fast, *EXACT, "model.dropout=0.3"], tmp_path)
    assert_same_run(with_1, with_2)


@pytest.mark.long
def test_a_stacked_sweep_gives_each_job_a_complete_run(fast, tmp_path):
    sweep_dir = tmp_path / "sweep"
    command = [*STACKED, *fast, "trainer.epochs=2", "trainer.log_images=true", "model=lenet5,lenet5_classic",
               "optimizer.lr=1e-3,3e-3", f"hydra.sweep.dir={sweep_dir}"]
    result = run_main(command, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    # the classic LeNet-5 (tanh, average pooling, no BatchNorm) cannot share the others' step: its own group
    assert "[hydra] Job 2 starts a new group: it differs in model=lenet5_classic." in result.stdout  # Hydra's lines
    # what the group shares, on lines of its own
    for group in ("0, 1", "2, 3"):
        assert f"[stack] Training jobs {group} stacked" in result.stderr
    jobs = job_dirs(sweep_dir)
    assert [job.name for job in jobs] == ["0_model=lenet5,optimizer.lr=0.001", "1_model=lenet5,optimizer.lr=0.003",
                                          "2_model=lenet5_classic,optimizer.lr=0.001",
                                          "3_model=lenet5_classic,optimizer.lr=0.003"]
    for number, job in enumerate(jobs):
        metrics = read_json(job / "metrics.json")
        assert metrics["status"] == "completed" and metrics["epochs_done"] == 2
        assert metrics["stacked_with"] == ([0, 1] if number < 2 else [2, 3])
        assert {p.name for p in (job / ".hydra").iterdir()} == {"config.yaml", "hydra.yaml", "overrides.yaml"}
        # its own lines in its own run.log, as the console shows them with [job N]
        log = (job / "run.log").read_text()
        assert log.count("epoch 1/2") == 1 and log.count("epoch 2/2") == 1 and str(job) in log
        assert f"[job {number}] epoch 2/2" in result.stderr
        # its own TensorBoard run, which agrees with metrics.json
        events = load_events(job)
        assert scalar_values(events, "val/acc") == {row["epoch"]: pytest.approx(row["val/acc"])
                                                   for row in metrics["history"]}
        assert scalar_values(events, "test/acc") == {metrics["best_epoch"]: pytest.approx(metrics["test"]["acc"])}
        assert "test/confusion_matrix" in events.Tags()["images"]
        if number in (1, 2):  # a checkpoint of each group, which task=eval takes as it takes any run's,
            # named as the log names it: a folder with '=' and ',' in its name, which run.py quotes for Hydra
            evaluated = run_main([*fast, "task=eval", f"ckpt={job / 'checkpoints' / 'best.pt'}",
                                  f"hydra.run.dir={tmp_path / 'eval' / str(number)}"], cwd=tmp_path)
            assert evaluated.returncode == 0, evaluated.stderr[-2000:]
            assert read_json(tmp_path / "eval" / str(number) / "metrics.json")["test"]["acc"] == metrics["test"]["acc"]
    summary = read_json(sweep_dir / "summary.json")
    assert summary["counts"] == {"completed": 4} and [row["job"] for row in summary["jobs"]] == [0, 1, 2, 3]
    # a group's epochs end together and its trials are tested together: each one's wall time is its start-up,
    # its epochs and its test (its figures drawn by workers meanwhile)
    for group in ((0, 1), (2, 3)):
        first, second = (read_json(jobs[number] / "metrics.json") for number in group)
        assert second["timings"]["epochs_s"] == pytest.approx(first["timings"]["epochs_s"], abs=0.1)
        # and it starts as a group: each trial's wall time is the group's from its start (the first one's had the
        # imports too, in a process of its own: 11 s against 6 s), up to the order in which the trials finish
        assert second["timings"]["startup_s"] == pytest.approx(first["timings"]["startup_s"], abs=0.3)
        for m in (first, second):
            t = m["timings"]
            assert t["test_s"] > 0 and set(t) == {"startup_s", "imports_s", "data_s", "setup_s", "epochs_s", "test_s"}
            assert t["startup_s"] + t["epochs_s"] + t["test_s"] == pytest.approx(m["wall_time_s"], abs=0.5)

    again = run_main(command, cwd=tmp_path)  # re-running the sweep into its folder: nothing left to do
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stderr.count("Already completed") == 4


def test_a_group_draws_one_progress_bar_on_a_terminal(fast, tmp_path):
    result = run_main([*STACKED, *fast, "trainer.progress=true", "trainer.epochs=2", "seed=0,1",
                       f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path, on_terminal=True)
    assert result.returncode == 0, result.stdout[-2000:]
    # one tqdm bar an epoch, over the group's 8 steps (drawn after a carriage return), gone before the epoch's lines
    for epoch in (1, 2):
        assert len(re.findall(rf"\repoch {epoch}/2: +0%\|[^\r\n]*\| 0/8 ", result.stdout)) == 1, result.stdout
        assert re.search(rf"\r +\r\[job 0\] epoch {epoch}/2 ", result.stdout), result.stdout
    # none on a terminal that cannot redraw a line (TERM=dumb: Emacs' shell), which showed each of its updates
    dumb = run_main([*STACKED, *fast, "trainer.progress=true", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'dumb'}"],
                    cwd=tmp_path, env={"TERM": "dumb"}, on_terminal=True)
    assert dumb.returncode == 0 and "[job 0] epoch 1/1 " in dumb.stdout and "\r" not in dumb.stdout, dumb.stdout


def test_a_diverging_or_failing_trial_leaves_the_others_untouched(fast, tmp_path):
    base = [*fast, *EXACT]
    result = run_main([*STACKED, *base, "optimizer.lr=1e-3,1e30,-1", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 1  # the summary's: a job did not complete
    good, diverged, failed = (read_json(job / "metrics.json") for job in job_dirs(tmp_path / "sweep"))
    assert diverged["status"] == "diverged" and "diverged at epoch 1" in diverged["message"]
    assert failed["status"] == "failed" and "optimizer.lr" in failed["message"]
    # said in its run.log and on the console, as the basic launcher says it (only the summary did)
    said = f"Error: {diverged['message']}"
    assert said in (job_dirs(tmp_path / "sweep")[1] / "run.log").read_text() and f"[job 1] {said}" in result.stderr
    # and at the epoch it diverged in, not only once the group had ended
    at_once = f"[job 1] epoch 1/2  {diverged['message']} Its group trains on without it."
    assert at_once in result.stderr and result.stderr.index(at_once) < result.stderr.index("[job 0] Done:")
    assert good["status"] == "completed" and good["stacked_with"] == [0, 1]
    # the diverged trial was frozen: the one stacked with it trained exactly as it would alone
    assert_same_run(good, train_alone(job_dirs(tmp_path / "sweep")[0], base, tmp_path))


def test_a_trial_frozen_before_its_group_ends_times_its_own_epochs_and_test(fast, tmp_path):
    """A trial that diverged at epoch 1 of 3 recorded the group's 3 epochs as its own, and the others' test as
    its test (untested); a trial stopped early, the epochs it waited through as its test."""
    result = run_main([*STACKED, *fast, *EXACT, "trainer.epochs=3", "optimizer.lr=1e-3,1e30", "hydra.sweep.dir=sweep"],
                      cwd=tmp_path)
    good, diverged = (read_json(job / "metrics.json") for job in job_dirs(tmp_path / "sweep"))
    assert result.returncode == 1 and (good["status"], diverged["status"]) == ("completed", "diverged")
    assert diverged["timings"]["epochs_s"] < good["timings"]["epochs_s"] * 2 / 3  # 1 epoch of 3, the first the slowest
    assert diverged["timings"]["test_s"] < good["timings"]["test_s"]  # no test: only its records written
    from lenet_exp.record import Stopwatch

    watch = Stopwatch(started=0.0)
    watch.marks = {"loaded": 1.0, "data": 2.0, "setup": 3.0, "epochs": 5.0, "testing": 9.0, "test": 10.0}
    watch.mark("epochs", again=False)  # its group's end: not its own
    assert (watch.timings()["epochs_s"], watch.timings()["test_s"]) == (2.0, 1.0)


def test_a_job_that_fails_its_checks_in_a_group_leaves_what_it_would_alone(fast, tmp_path):
    """Its run.log ends at its error, as the basic launcher's does: it took the group's later lines (data,
    kernels, the stack it never joined). Its folder is not taken (no .lock), and its first line is logged
    under the name the basic launcher's is."""
    sweep = [*fast, "trainer.label_smoothing=0,1.5"]  # 1.5 is refused
    stacked = run_main([*STACKED, *sweep, "hydra.sweep.dir=stacked"], cwd=tmp_path)
    basic = run_main(["-m", *sweep, "hydra.sweep.dir=basic"], cwd=tmp_path)
    assert stacked.returncode == basic.returncode == 1  # the summary's: a job did not complete
    assert "Training job 0 stacked" in stacked.stderr, stacked.stderr[-2000:]

    def left_by_failed_job(sweep_dir: str) -> tuple[list[str], list[str]]:
        """Its run.log's lines without their times, and its files but TensorBoard's (named by time and pid)."""
        job = job_dirs(tmp_path / sweep_dir)[1]
        log = (job / "run.log").read_text().replace(str(tmp_path / sweep_dir), "<sweep>")
        return ([re.sub(r"^\[[^]]*\]", "", line) for line in log.splitlines()],
                sorted(path.name for path in job.iterdir() if not path.name.startswith("events.out.tfevents.")))

    stacked_lines, stacked_files = left_by_failed_job("stacked")
    basic_lines, basic_files = left_by_failed_job("basic")
    assert stacked_lines[-1].startswith("[lenet_exp][ERROR] - Error: Invalid config value trainer.label_smoothing")
    assert stacked_lines == basic_lines
    assert stacked_files == basic_files == [".hydra", "metrics.json", "run.log"]


def test_a_job_whose_config_cannot_be_read_fails_alone_and_the_environment_is_hydras(fast, tmp_path):
    """An interpolation that names no key ended the whole stacked sweep in a traceback while it planned the
    groups; hydra.job.env_set, which Hydra sets around each job, was not set around a group."""
    unreadable = run_main([*STACKED, *fast, "optimizer=sgd,adam", "optimizer.weight_decay=${optimizer.momentum}",
                           "hydra.sweep.dir=unreadable"], cwd=tmp_path)
    assert unreadable.returncode == 1 and "Traceback" not in unreadable.stderr, unreadable.stderr[-2000:]
    assert "Job 1 trains alone: its config cannot be read (InterpolationKeyError)." in unreadable.stdout
    sgd, adam = (read_json(job / "metrics.json") for job in job_dirs(tmp_path / "unreadable"))
    assert sgd["status"] == "completed" and adam["status"] == "failed" and "optimizer.momentum" in adam["message"]
    root = [o for o in fast if o.startswith("dataset.root=")][0].split("=", 1)[1]
    from_env = run_main([*STACKED, *[o for o in fast if not o.startswith("dataset.root=")], "seed=0,1",
                         f"+hydra.job.env_set.LENET_EXP_DATA={root}", "hydra.sweep.dir=env"], cwd=tmp_path,
                        env={"LENET_EXP_DATA": str(tmp_path / "nowhere")})
    assert from_env.returncode == 0 and "Training jobs 0, 1 stacked" in from_env.stderr, from_env.stderr[-2000:]


def no_space_for_job_1_checkpoints(monkeypatch) -> None:
    """Job 1's checkpoint cannot be written (a full disk, as ``files.write_atomic`` finds it)."""
    save_checkpoint = checkpoints.save_checkpoint

    def save_or_fail(path: Path, state: dict, copies=()) -> None:
        if path.parent.parent.name.startswith("1_"):  # <sweep>/1_.../checkpoints/last.pt
            def write_on_a_full_disk(file):
                raise OSError(errno.ENOSPC, "No space left on device")

            return files.write_atomic(path, write_on_a_full_disk)
        return save_checkpoint(path, state, copies)

    monkeypatch.setattr(checkpoints, "save_checkpoint", save_or_fail)


def no_space_for_job_1_tensorboard(monkeypatch) -> None:
    """Job 1's TensorBoard writer cannot be opened, before its first epoch."""
    tensorboard = Run.tensorboard

    def open_or_fail(self, state, parts):
        if self.dir.name.startswith("1_"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return tensorboard(self, state, parts)

    monkeypatch.setattr(Run, "tensorboard", open_or_fail)


@pytest.mark.parametrize("failing", [no_space_for_job_1_checkpoints, no_space_for_job_1_tensorboard])
def test_a_trial_whose_files_fail_fails_alone(failing, fast, tmp_path, monkeypatch):
    """It fails, and the trial stacked with it trains on exactly as it would alone."""
    failing(monkeypatch)
    base = [*fast, *EXACT]
    result = run_main([*STACKED, *base, "optimizer.lr=1e-3,3e-3", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]  # the summary's: a job did not complete
    good, failed = (read_json(job / "metrics.json") for job in job_dirs(tmp_path / "sweep"))
    assert failed["status"] == "failed" and "No space left on" in failed["message"]
    if failing is no_space_for_job_1_checkpoints:  # its first checkpoint: there is no earlier one to keep
        assert "previous version" not in failed["message"]
        events = [load_events(job) for job in job_dirs(tmp_path / "sweep")]
        assert [session_status(e) for e in events] == ["STATUS_SUCCESS", "STATUS_FAILURE"]  # HParams' Status column
        assert f"| why | {failed['message']} |" in card(events[1])  # and why, on its card
    assert good["status"] == "completed" and [row["epoch"] for row in good["history"]] == [1, 2]
    monkeypatch.undo()
    assert_same_run(good, train_alone(job_dirs(tmp_path / "sweep")[0], base, tmp_path))


def test_a_group_that_cannot_fit_is_refused_before_allocating_and_says_how_many_would(fast, tmp_path):
    """A group needs about N times one trial's memory (one trial's fitting said nothing of N): each of 4
    trials here needs 40 % of the memory free now, so 2 would fit and 4 do not."""
    import torch

    from lenet_exp.device import free_bytes
    from lenet_exp.parts import footprint

    sized = [*fast, "dataset.image_size=512"]  # 800 images of 512x512: 0.8 GB; the layers' outputs grow 256x
    parameters, per_image = footprint(compose(*sized, "trainer.batch_size=1"), 1)
    batch = int((0.4 * free_bytes(torch.device("cpu")) - parameters * 20) / (per_image * 8))
    if not 1 <= batch <= 500:  # the 500 images of the tiny train split
        pytest.skip(f"free memory {free_bytes(torch.device('cpu')) / 2**30:.1f} GiB: no batch size of 1-500 fits")
    sweep_dir = tmp_path / "sweep"
    result = run_main([*STACKED, *sized, f"trainer.batch_size={batch}", "seed=0,1,2,3",
                       f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    jobs = read_json(sweep_dir / "summary.json")["jobs"]
    assert [job["status"] for job in jobs] == ["failed"] * 4
    assert re.match(r"Training 4 stacked trials of the model \(.* would need about .* GiB, but .* GiB is free on "
                    r"CPU .*\. Stack at most [12] \(hydra.launcher.max_stack=[12]\), or choose smaller layers",
                    jobs[0]["message"]), jobs[0]["message"]
    assert not list(sweep_dir.glob("*/checkpoints/*.pt"))


def test_a_trial_whose_schedule_cannot_be_built_fails_alone(fast, tmp_path):
    """Its one-cycle warm-up is too short for the run (found only as the schedule is built)."""
    result = run_main([*STACKED, *fast, "scheduler=onecycle", "scheduler.pct_start=0.01,0.5", "hydra.sweep.dir=sweep"],
                      cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr  # the summary's: a job did not complete
    failed, good = (read_json(job / "metrics.json") for job in job_dirs(tmp_path / "sweep"))
    assert failed["status"] == "failed" and "scheduler.pct_start" in failed["message"]
    assert good["status"] == "completed"


def stopped_once_all_have_a_checkpoint(command: list[str], sweep_dir: Path, cwd: Path) -> list[Path]:
    """Run the stacked sweep and stop it (SIGTERM, as `kill` would) once each of its 3 jobs has saved an
    epoch; returns the job folders. The signal is sent as the third checkpoint is written, in the main thread:
    the next step sees it (a thread that looked for the files every 20 ms came after epoch 2 on a fast machine)."""
    save_checkpoint, sent = checkpoints.save_checkpoint, []

    def stop_after_the_third_checkpoint(*args, **kwargs):
        save_checkpoint(*args, **kwargs)
        if not sent and len(list(sweep_dir.glob("*/checkpoints/last.pt"))) == 3:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    checkpoints.save_checkpoint = stop_after_the_third_checkpoint
    try:
        stopped = run_main(command, cwd=cwd)
    finally:
        checkpoints.save_checkpoint = save_checkpoint
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    return job_dirs(sweep_dir)


def three_epochs_of_three_jobs(fast: list[str], sweep_dir: Path) -> list[str]:
    return [*STACKED, *fast, "trainer.epochs=3", "trainer.batch_size=8", "trainer.limit_batches=20",
            "trainer.log_images=false", "optimizer.lr=1e-3,3e-3,2e-3", f"hydra.sweep.dir={sweep_dir}"]


def test_a_trial_that_stops_early_is_frozen_and_its_group_trains_on_as_each_would_alone(fast, tmp_path):
    """trainer.early_stop_patience is each trial's own. One val image: its accuracy is 0 or 1, so the trial
    with patience 1 stops within two epochs of its first, and the other trains all four."""
    # lr 3e-4: at 1e-3, 4 epochs grew the grouped convolution's rounding past the tolerance (a val loss 1.2e-4 apart)
    base = [*fast, *EXACT, "trainer.epochs=4", "dataset.val_size=1", "optimizer.lr=3e-4", "trainer.ema_decay=0.9"]
    sweep = [*STACKED, *base, "trainer.early_stop_patience=1,null", "hydra.sweep.dir=sweep"]
    result = run_main(sweep, cwd=tmp_path)
    assert result.returncode == 0 and "Training jobs 0, 1 stacked" in result.stderr, result.stderr[-2000:]
    early, whole = jobs = job_dirs(tmp_path / "sweep")
    stopped, trained = (read_json(job / "metrics.json") for job in jobs)
    assert stopped["status"] == trained["status"] == "completed" and trained["epochs_done"] == 4
    assert stopped["epochs_done"] < 4 and stopped["epochs_done"] - stopped["best_epoch"] == 1
    assert stopped["message"].startswith(f"Stopped early after epoch {stopped['epochs_done']} of 4")
    assert f"[job 0] {stopped['message']}" in result.stderr
    # the summary's table: the stopped one complete, not cut short
    assert re.search(rf"\n0 +completed .* {stopped['epochs_done']}/4 \(early stop\) ", result.stdout), result.stdout
    assert re.search(r"\n1 +completed .* 4/4 +[0-9.]+\n", result.stdout), result.stdout
    for job in jobs:
        assert_same_run(read_json(job / "metrics.json"), train_alone(job, base, tmp_path))
    again = run_main(sweep, cwd=tmp_path)  # both are complete: neither trains again
    assert again.returncode == 0 and "Launching 2 jobs: completed already, skipped" in again.stdout, \
        again.stdout[-2000:]


def test_each_trial_is_selected_by_its_own_monitor(fast, tmp_path):
    """trainer.monitor is each trial's own: one group, and each trial's best epoch (and test) as alone, where the
    highest val accuracy and the lowest val loss came at different epochs."""
    base = [*fast, *EXACT, "trainer.epochs=5", "optimizer.lr=1e-3"]
    result = run_main([*STACKED, *base, "trainer.monitor=val_acc,val_loss", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 0 and "Training jobs 0, 1 stacked" in result.stderr, result.stderr[-2000:]
    by_acc, by_loss = (read_json(job / "metrics.json") for job in job_dirs(tmp_path / "sweep"))
    assert by_acc["best_epoch"] != by_loss["best_epoch"]
    for job in job_dirs(tmp_path / "sweep"):
        assert_same_run(read_json(job / "metrics.json"), train_alone(job, base, tmp_path))


def test_a_stopped_group_resumes_where_it_stopped(fast, tmp_path):
    sweep_dir = tmp_path / "sweep"
    command = three_epochs_of_three_jobs(fast, sweep_dir)
    jobs = stopped_once_all_have_a_checkpoint(command, sweep_dir, tmp_path)
    for job in jobs:
        metrics = read_json(job / "metrics.json")
        assert metrics["status"] == "interrupted" and "Interrupted by signal 15" in metrics["message"]
        assert (job / "checkpoints" / "last.pt").exists() and metrics["message"] in (job / "run.log").read_text()
    # the sweep's summary so far, as a joblib sweep's
    assert [job["status"] for job in read_json(sweep_dir / "summary.json")["jobs"]] == ["interrupted"] * 3

    (jobs[2] / "checkpoints" / "last.pt").write_bytes(b"damaged")  # that job fails; the others resume
    resumed = run_main(command, cwd=tmp_path)
    assert resumed.returncode == 1, resumed.stderr[-2000:]  # the summary's: a job did not complete
    assert resumed.stderr.count("Resuming") == 2 and "Training jobs 0, 1 stacked" in resumed.stderr
    for job in jobs[:2]:
        metrics = read_json(job / "metrics.json")
        assert metrics["status"] == "completed" and [row["epoch"] for row in metrics["history"]] == [1, 2, 3]
    # as with any launcher: the error is reported, and the job fails, told to start over (it stayed "interrupted",
    # told to continue from the checkpoint that cannot be read: helper stackfail60)
    assert "[job 2] Error:" in resumed.stderr and "the checkpoint to resume from, cannot be used" in resumed.stderr
    damaged = read_json(jobs[2] / "metrics.json")
    assert damaged["status"] == "failed" and "Continue with" not in damaged["message"], damaged["message"]


def test_a_signal_while_the_group_imports_torch_stops_the_sweep_cleanly(fast, tmp_path):
    """The group's process imports torch once it has planned the groups: seconds in which torch's C
    start-up would swallow a stop (launch.stops_held). Re-running the sweep then trains it."""
    command = [*STACKED, *fast, "optimizer.lr=1e-3,3e-3", "hydra.sweep.dir=sweep"]
    process = start(command, cwd=tmp_path)
    for line in process.stdout:  # the launcher's plan, printed just before the imports
        if "Launching 2 jobs in 1 group" in line:
            break
    time.sleep(0.5)  # into the imports (2-3 s)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "Interrupted by signal 15; running the same command with hydra.sweep.dir=sweep continues the sweep." in out + err
    assert "Traceback" not in out + err and "No job directories" not in err
    # no job had started: the summary lists them as the basic launcher's does (there was none)
    assert [job["status"] for job in read_json(tmp_path / "sweep" / "summary.json")["jobs"]] == ["not started"] * 2
    again = run_main(command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [read_json(job / "metrics.json")["status"] for job in job_dirs(tmp_path / "sweep")] == ["completed"] * 2


def test_a_stop_while_the_group_writes_its_jobs_records_lists_the_started_ones_as_interrupted(fast, tmp_path,
                                                                                               monkeypatch):
    """The launcher writes each job's folder and .hydra/ before the group trains: a stop between two jobs'
    records leaves the ones written as interrupted (they were listed as failed, without a metrics.json), the
    rest not started; the sweep run again trains them all."""
    import hydra.core.utils
    from hydra_plugins.lenet_exp_stacked_launcher import stacked_launcher

    command = [*STACKED, *fast, "optimizer.lr=1e-3,2e-3,3e-3", "hydra.sweep.dir=sweep"]
    save_config, records = hydra.core.utils._save_config, []

    def stopped_after_the_second_jobs_records(cfg, filename, output_dir):
        save_config(cfg, filename, output_dir)
        records.append(filename)
        if records.count("overrides.yaml") == 2 and filename == "overrides.yaml":
            os.kill(os.getpid(), signal.SIGTERM)

    # the launcher's, and Hydra's: the launcher's module runs again where Hydra loads its plugins anew
    monkeypatch.setattr(stacked_launcher, "_save_config", stopped_after_the_second_jobs_records)
    monkeypatch.setattr(hydra.core.utils, "_save_config", stopped_after_the_second_jobs_records)
    stopped = run_main(command, cwd=tmp_path)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stdout + stopped.stderr
    summary = read_json(tmp_path / "sweep" / "summary.json")["jobs"]
    assert [job["status"] for job in summary] == ["interrupted", "interrupted", "not started"], summary
    monkeypatch.undo()
    again = run_main(command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [read_json(job / "metrics.json")["status"] for job in job_dirs(tmp_path / "sweep")] == ["completed"] * 3


def test_a_second_stop_while_the_group_writes_an_epochs_records_waits_until_they_are_whole(fast, tmp_path,
                                                                                          monkeypatch):
    """A second signal between a job's checkpoint and its metrics.json left the record an epoch behind the
    checkpoint: the resume planned that job from the beginning and trained it apart from the others, which a
    group of them would have trained alike to about 1e-5 only."""
    from lenet_exp.launch import ECHO_S

    command = [*STACKED, *fast, "trainer.epochs=2", "optimizer.lr=1e-3,3e-3", "hydra.sweep.dir=sweep"]
    save_checkpoint, saved = checkpoints.save_checkpoint, []

    def stopped_twice_after_the_first_checkpoint(*args, **kwargs):
        save_checkpoint(*args, **kwargs)
        saved.append(args[0])
        if len(saved) == 1:  # SIGTERM: a suite started in the background ignores SIGINT
            for _ in range(2):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(ECHO_S + 0.05)  # the second is no echo of the first: the user means it

    monkeypatch.setattr(checkpoints, "save_checkpoint", stopped_twice_after_the_first_checkpoint)
    stopped = run_main(command, cwd=tmp_path)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    jobs = job_dirs(tmp_path / "sweep")
    for job in jobs:  # each as its checkpoint stands
        metrics = read_json(job / "metrics.json")
        assert metrics["status"] == "interrupted" and metrics["epochs_done"] == 1, metrics
        assert checkpoints.checkpoint_epoch(checkpoints.load_checkpoint(job / "checkpoints" / "last.pt")) == 1
    monkeypatch.undo()
    resumed = run_main(command, cwd=tmp_path)
    assert resumed.returncode == 0 and "Training jobs 0, 1 stacked" in resumed.stderr, resumed.stderr[-2000:]
    assert resumed.stderr.count("Resuming") == 2 and "new group" not in resumed.stderr


def test_a_stop_during_one_resumed_cohorts_final_tests_leaves_the_next_cohort_for_a_rerun(fast, tmp_path, monkeypatch):
    """Jobs saved at different epochs train apart, one cohort after the other. A stop that comes while the
    first cohort runs its final tests lets that cohort complete; the next one does not start."""
    sweep_dir = tmp_path / "sweep"
    command = three_epochs_of_three_jobs(fast, sweep_dir)
    jobs = stopped_once_all_have_a_checkpoint(command, sweep_dir, tmp_path)
    shutil.rmtree(jobs[2] / "checkpoints")  # job 2 starts again from epoch 0: a cohort before jobs 0 and 1
    finish = Run.finish

    def stopped_while_testing(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # as Ctrl-C or `kill` would, during the final test
        return finish(self, *args, **kwargs)

    monkeypatch.setattr(Run, "finish", stopped_while_testing)
    resumed = run_main(command, cwd=tmp_path)
    assert resumed.returncode == 128 + signal.SIGTERM, resumed.stderr[-2000:]
    first = read_json(jobs[2] / "metrics.json")
    assert first["status"] == "completed" and [row["epoch"] for row in first["history"]] == [1, 2, 3]
    for job in jobs[:2]:  # still as the first stop left them: after epoch 1, for a re-run to continue
        metrics = read_json(job / "metrics.json")
        assert metrics["status"] == "interrupted" and [row["epoch"] for row in metrics["history"]] == [1]
    assert "Job 2 starts from the beginning, apart from jobs 0, 1" in resumed.stderr
    assert "Training jobs 0, 1 stacked" not in resumed.stderr


def test_a_cohort_that_waits_for_another_does_not_count_the_wait_as_its_start_up(fast, tmp_path):
    """Jobs 0 and 1 go on after epoch 1 once job 2, whose checkpoint is gone (planned with them, as its
    metrics.json says epoch 1), has trained from the beginning: their start-up (data_s) and wall time held job
    2's whole training."""
    sweep_dir = tmp_path / "sweep"
    command = three_epochs_of_three_jobs(fast, sweep_dir)
    jobs = stopped_once_all_have_a_checkpoint(command, sweep_dir, tmp_path)
    shutil.rmtree(jobs[2] / "checkpoints")
    resumed = run_main(command, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Launching 3 jobs in 1 group" in resumed.stdout
    assert "Jobs 0, 1 continue after epoch 1, apart from job 2" in resumed.stderr
    first, *waited = (read_json(job / "metrics.json") for job in reversed(jobs))
    for metrics in waited:
        assert metrics["timings"]["data_s"] < first["timings"]["epochs_s"] / 2, (metrics["timings"], first["timings"])
    # each cohort's shared lines in its own jobs' run.logs only
    *waiting, ahead = ((job / "run.log").read_text() for job in jobs)
    assert "Training job 2 stacked" in ahead and "Jobs 0, 1 continue" not in ahead
    for log in waiting:
        assert "Jobs 0, 1 continue" in log and "Training job 2 stacked" not in log


def test_a_sweep_run_again_groups_only_the_jobs_left_to_train_by_where_they_go_on(fast, tmp_path):
    """Its completed jobs took places in the planned groups (seed=0,1 then 0,...,5 at 4 a group: jobs 2, 3
    trained as one group, 4, 5 as another), and jobs that went on from different epochs were planned as one
    group ("Launching 3 jobs in 1 group"), which then trained as two."""
    sweep = [*STACKED, *fast, "hydra.launcher.max_stack=4", "trainer.limit_batches=20", "hydra.sweep.dir=sweep"]
    assert run_main([*sweep, "seed=0,1"], cwd=tmp_path).returncode == 0  # fast: 1 epoch
    extended = run_main([*sweep, "seed=0,1,2,3,4,5"], cwd=tmp_path)
    assert extended.returncode == 0, extended.stderr[-2000:]
    assert "Launching 6 jobs (2 completed already, skipped) in 1 group " in extended.stdout
    assert "Training jobs 2, 3, 4, 5 stacked: 4 trials" in extended.stderr
    longer = run_main([*sweep, "seed=0,1,2,3,4,5,6,7", "trainer.epochs=2"], cwd=tmp_path)
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert "Launching 8 jobs in 3 groups " in longer.stdout
    assert "Job 6 starts a new group: it starts from the beginning, unlike the others." in longer.stdout
    for group in ("0, 1, 2, 3", "4, 5", "6, 7"):
        assert f"Training jobs {group} stacked" in longer.stderr
    assert ", apart from job" not in longer.stderr
    again = run_main([*sweep, "seed=0,1,2,3,4,5,6,7", "trainer.epochs=2"], cwd=tmp_path)
    assert again.returncode == 0 and "Launching 8 jobs: completed already, skipped" in again.stdout  # "in 0 groups"
    assert [read_json(job / "metrics.json")["epochs_done"] for job in job_dirs(tmp_path / "sweep")] == [2] * 8


@pytest.mark.long
def test_optuna_batches_train_stacked(fast, tmp_path):
    sweep_dir = tmp_path / "optuna"
    study = [*STACKED, "sweep=optuna", "hydra.sweeper.n_jobs=2", "scheduler=none", "trainer.batch_size=64", *fast,
             f"hydra.sweep.dir={sweep_dir}"]
    result = run_main([*study, "hydra.sweeper.n_trials=4"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    # what the group shares, on lines of its own
    for group in ("0, 1", "2, 3"):
        assert f"[stack] Training jobs {group} stacked" in result.stderr
    jobs = [read_json(job / "metrics.json") for job in job_dirs(sweep_dir)]
    assert [m["status"] for m in jobs] == ["completed"] * 4
    # Optuna drew dropout and label smoothing per trial: stacked, each trial kept its own
    assert len({m["config"]["model"]["dropout"] for m in jobs}) == 4
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(max(m["val"]["acc"] for m in jobs))
    # run again into its folder: every job skipped, and the study's own lines are the sweep's, not a job's
    again = run_main([*study, "hydra.sweeper.n_trials=2"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Launching 2 jobs: completed already, skipped" in again.stdout
    assert re.search(r"^\[hydra\] Best value: ", again.stdout, re.MULTILINE), again.stdout


@pytest.mark.parametrize("channels_last, shared_input", [(False, False), (True, False), (True, True)],
                         ids=["nchw", "channels_last", "channels_last-shared-input"])
def test_the_grouped_model_computes_each_trials_own_model(channels_last, shared_input):
    """Trial i of the group gives model i's logits, before and after a step, and hands back its weights
    (also in the channels_last layout a group trains in on the CPU, where its first layer runs depthwise,
    and where all trials read one batch, whose first layer is one convolution with 3 x 6 outputs)."""
    import torch
    import torch.nn.functional as F

    from lenet_exp.models.lenet5 import LeNet5
    from lenet_exp.stack.model import (GroupedModel, OneChannelGroupsConv2d, channel_stacked, stack_into,
                                       stacked_loss, unstack_into)

    torch.manual_seed(0)
    models = [LeNet5() for _ in range(3)]
    grouped = GroupedModel(LeNet5(), 3, [0.0] * 3, shared_input)
    convs = [m for m in grouped.modules() if isinstance(m, torch.nn.Conv2d)]
    # only a first layer of separate inputs reads 1 channel each
    assert [type(c) is OneChannelGroupsConv2d for c in convs] == [not shared_input, False]
    assert [(c.in_channels, c.out_channels, c.groups) for c in convs] == [
        (1, 18, 1) if shared_input else (3, 18, 3), (18, 48, 3)]
    stack_into(grouped, models)
    if channels_last:
        grouped = grouped.to(memory_format=torch.channels_last)
    images, labels = torch.randn(3, 16, 1, 32, 32), torch.randint(0, 10, (3, 16))
    if shared_input:
        images = images[:1].expand(3, -1, -1, -1, -1)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in models]
    grouped_optimizer = torch.optim.SGD(grouped.parameters(), lr=0.1)
    for _ in range(2):  # a step, then the logits after it
        logits = grouped(images[0] if shared_input else channel_stacked(images))
        separate = [m(x) for m, x in zip(models, images)]
        assert torch.allclose(logits, torch.stack(separate), atol=1e-5)
        stacked_loss(logits, labels, None).sum().backward()
        grouped_optimizer.step()
        for optimizer, trial_logits, y in zip(optimizers, separate, labels):
            F.cross_entropy(trial_logits, y).backward()
            optimizer.step()
    fresh = [LeNet5() for _ in range(3)]
    unstack_into(grouped, fresh)
    for model, back in zip(models, fresh):
        for (name, ours), theirs in zip(model.state_dict().items(), back.state_dict().values()):
            assert torch.allclose(ours, theirs, atol=1e-5), name


def torch_optimizers():
    """(name, make(params, trial)): three trials' own torch optimizers, each with hyperparameters of its own."""
    import torch

    return [("adam", lambda params, i: torch.optim.Adam(params, lr=1e-3 * (i + 1), betas=(0.9, 0.99 + 0.004 * i),
                                                      weight_decay=1e-3 * i)),
            ("adamw", lambda params, i: torch.optim.AdamW(params, lr=2e-3, weight_decay=0.05 * i, eps=1e-8 * 10 ** i)),
            ("sgd-nesterov-or-not", lambda params, i: torch.optim.SGD(params, lr=0.05 / (i + 1), momentum=0.9,
                                                                      nesterov=i != 1, weight_decay=1e-4 * i))]


def check_the_stacked_optimizer(make, device: str) -> None:
    """Three trials with their own hyperparameters, in the channels_last layout a group trains in: the
    group's update (all parameters at once) leaves each trial's weights and optimizer state where its own
    torch optimizer does, and that state loads back. A parameter without a gradient is refused: torch's
    optimizers would skip it, and the trials would no longer be their own runs."""
    import copy

    import torch

    from lenet_exp.models.lenet5 import LeNet5
    from lenet_exp.stack.model import GroupedModel, stack_into, stateful_parameters, trial_block, unstack_into
    from lenet_exp.stack.optim import StackedOptimizer

    torch.manual_seed(0)
    models = [LeNet5().to(device) for _ in range(3)]
    alone = copy.deepcopy(models)
    alone_optimizers = [make(m.parameters(), i) for i, m in enumerate(alone)]
    grouped = GroupedModel(LeNet5(), 3, [0.0] * 3, False).to(device)
    stack_into(grouped, models)
    grouped = grouped.to(memory_format=torch.channels_last)
    optimizers = [make(m.parameters(), i) for i, m in enumerate(models)]  # hold each trial's settings and state
    stacked = StackedOptimizer(grouped, models, optimizers)
    group_params = stateful_parameters(grouped)
    for _ in range(3):
        for j, group_param in enumerate(group_params):
            group_param.grad = torch.zeros_like(group_param)
            for i, model in enumerate(alone):
                param = stateful_parameters(model)[j]
                param.grad = torch.randn_like(param)
                trial_block(group_param.grad, 3, i, param.shape).copy_(param.grad)
        stacked.step()
        for optimizer in alone_optimizers:
            optimizer.step()
    trained = [LeNet5().to(device) for _ in range(3)]
    unstack_into(grouped, trained)
    for i, (ours, theirs) in enumerate(zip(trained, alone)):
        stacked.store_trial_state(i)
        for j, (mine, own) in enumerate(zip(stateful_parameters(ours), stateful_parameters(theirs))):
            assert torch.allclose(mine, own, rtol=1e-5, atol=1e-7), (i, j)
            state, own_state = optimizers[i].state[stateful_parameters(models[i])[j]], alone_optimizers[i].state[own]
            assert state.keys() >= own_state.keys() - {"step"}
            for name, value in state.items():
                assert torch.allclose(value.float().cpu(), own_state[name].float().cpu(), rtol=1e-5, atol=1e-7), \
                    (i, j, name)
    again = StackedOptimizer(grouped, models, optimizers)  # a resumed group: the trials' states into its own
    again.load_trial_states()
    assert again.step_count == stacked.step_count or stacked.rule == "sgd"
    for name, state in stacked.state.items():
        assert torch.equal(again.state[name], state), name
    group_params[1].grad = None
    with pytest.raises(ValueError, match=r"parameters \[1\] of the stacked model got no gradient"):
        again.step()


def test_a_group_evaluates_its_trials_at_once_as_each_would_alone():
    """One pass of the grouped model (all trials reading the same images, in batches of a third as many
    images for 3 trials) gives each trial the loss, accuracy, predictions and confidences of its own
    evaluation, with test-time views averaged and limit_batches' part of the split as alone."""
    import torch

    from lenet_exp.data import Split
    from lenet_exp.engine import evaluate, evaluate_trials
    from lenet_exp.models.lenet5 import LeNet5
    from lenet_exp.stack.model import GroupedModel, stack_into

    torch.manual_seed(0)
    models = [LeNet5() for _ in range(3)]
    for scale, model in enumerate(models, 1):  # statistics of their own, which eval mode uses
        model.train()(torch.randn(32, 1, 32, 32) * scale)
    grouped = GroupedModel(LeNet5(), 3, [0.0] * 3, shared_input=True).to(memory_format=torch.channels_last)
    stack_into(grouped, models)
    split = Split(torch.randn(130, 1, 32, 32), torch.randint(0, 10, (130,)))
    for views, max_batches in [(None, None), ([lambda x: x, lambda x: x.flip(-1)], 2)]:
        together = evaluate_trials(grouped, 3, split, 50, views=views, max_batches=max_batches)
        for model, ours in zip(models, together):
            alone = evaluate(model, split, 50, views=views, max_batches=max_batches)
            assert len(ours.predictions) == len(alone.predictions) == (100 if max_batches else 130)
            assert ours.loss == pytest.approx(alone.loss, rel=1e-5) and ours.acc == alone.acc
            assert torch.equal(ours.predictions, alone.predictions)
            assert torch.allclose(ours.confidences, alone.confidences, atol=1e-5)
        assert len({result.loss for result in together}) == 3  # each its own


@pytest.mark.parametrize("name", [name for name, _ in torch_optimizers()])
def test_the_stacked_optimizer_steps_each_trial_as_its_own_torch_optimizer(name):
    check_the_stacked_optimizer(dict(torch_optimizers())[name], "cpu")


def test_a_first_layers_grouped_convolution_runs_depthwise_with_the_same_results():
    """A stack's first convolution (groups of one input channel), channels_last on the CPU, runs depthwise
    and computes F.conv2d's output and gradients; in NCHW it is the standard layer."""
    import torch
    import torch.nn.functional as F

    from lenet_exp.stack.model import OneChannelGroupsConv2d

    torch.manual_seed(0)
    conv = OneChannelGroupsConv2d(3, 12, 5, stride=2, padding=1, groups=3)
    images = torch.randn(3, 4, 13, 13).transpose(0, 1)  # trial-major, as a stack's batch arrives
    assert "Depthwise" not in type(conv(images).grad_fn).__name__
    conv = conv.to(memory_format=torch.channels_last)
    grad = torch.randn(4, 12, 6, 6)
    results = []
    for forward in (conv, lambda x: F.conv2d(x, conv.weight, conv.bias, 2, 1, groups=3)):
        x = images.clone().requires_grad_()
        out = forward(x)
        out.backward(grad)
        results.append([out.detach(), x.grad, conv.weight.grad.clone(), conv.bias.grad.clone()])
        conv.zero_grad()
        if forward is conv:
            assert type(out.grad_fn).__name__ == "DepthwiseForwardBackward"
    for name, ours, reference in zip(("output", "input grad", "weight grad", "bias grad"), *results):
        assert torch.allclose(ours, reference, rtol=1e-5, atol=1e-5), name
    # under bf16 autocast, the standard layer (the depthwise backward mixed bf16 and float32: oneDNN failed)
    x = images.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(x)
    out.float().backward(grad)
    assert "Depthwise" not in type(out.grad_fn).__name__ and torch.isfinite(x.grad).all()


def test_each_job_is_composed_once_and_most_are_derived(fast, tmp_path, monkeypatch):
    """Hydra's sweeper composes every job to check it, and the basic launcher composes it again; the
    stacked launcher takes the sweeper's configs, and Hydra composes only the first of the jobs that
    differ in values alone (the others are derived from it: ~0.1 s a job here, 0.45 s on a GPU host)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    composed = []
    load_configuration = ConfigLoaderImpl.load_configuration

    def counted(self, *args, **kwargs):
        composed.append(kwargs.get("overrides"))
        return load_configuration(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    result = run_main([*STACKED, *fast, "trainer.limit_batches=20", "seed=0,1,2", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(composed) == 2 + 1  # the command's (its mode, then the sweep's), then the first job's
    for number, job in enumerate(job_dirs(tmp_path / "sweep")):  # each job's own config all the same
        assert yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["seed"] == number
        assert yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())[-1] == f"seed={number}"
        assert read_json(job / "metrics.json")["stacked_with"] == [0, 1, 2]


@pytest.mark.parametrize("hydra_overrides, sweep, derived", [
    ([], {"optimizer.lr": ["1e-3", "3e-3"], "seed": ["0", "1"], "trainer.ema_decay": ["null", "0.9"]}, 7),
    # a config group splits the jobs into two forms: each composed once, the others derived
    ([], {"optimizer": ["adam", "sgd"], "optimizer.lr": ["1e-3", "${optimizer.weight_decay}"]}, 2),
    # additions and Hydra settings per job: every job composed
    ([], {"+extra": ["1", "2"]}, 0),
    ([], {"hydra.job.chdir": ["true", "false"]}, 0),
    (["hydra.job.config.override_dirname.exclude_keys=[seed]", "hydra.sweep.subdir=${hydra.job.override_dirname}"],
     {"seed": ["0", "1"], "trainer.label_smoothing": ["0.0", "0.1"]}, 3),
])
def test_a_derived_job_config_is_the_one_hydra_composes(hydra_overrides, sweep, derived):
    """Derived or composed, each job's config, its Hydra node included, is exactly what Hydra composes."""
    import itertools

    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from hydra_plugins.lenet_exp_stacked_launcher.job_configs import JobConfigs
    from lenet_exp import CONFIGS
    from lenet_exp.config import register_configs

    register_configs()
    jobs = [[f"{key}={value}" for key, value in zip(sweep, values)] for values in itertools.product(*sweep.values())]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", overrides=hydra_overrides, run_mode=RunMode.MULTIRUN)
        hydras = loader.load_sweep_config
        composed = []
        loader.load_sweep_config = lambda master, job: composed.append(job) or hydras(master, job)
        configs = JobConfigs(loader)
        ours = [configs.load_sweep_config(master, job) for job in jobs]
        for job, config in zip(jobs, ours):
            assert OmegaConf.to_yaml(config) == OmegaConf.to_yaml(hydras(master, job)), job
    assert len(jobs) - len(composed) == derived


def test_groups_split_on_what_cannot_be_shared_and_say_so(tiny_root):
    def job(number: int, *overrides: str) -> Job:
        cfg = compose(f"dataset.root={tiny_root}", *overrides)
        return Job(number, cfg)

    jobs = [job(0), job(1, "seed=1", "optimizer.lr=0.01", "trainer.label_smoothing=0.1", "scheduler=cosine",
                    "+optimizer.eps=1e-6", "trainer.ema_decay=0.9", "trainer.tta_shift=1", "trainer.eval_batch_size=100",
                    "trainer.checkpoint_every=2", "trainer.log_images=false",
                    "model.dropout=0.3", "model.name=lenet5_drop"),  # an option of one's own: its name labels it only
            job(2, "trainer.batch_size=32"), job(3, "optimizer._target_=torch.optim.RMSprop"),
            job(4, "task=eval"), job(5, "seed=2"), job(6, "+optimizer.amsgrad=true"),
            job(7, "trainer.batch_size=32", "trainer.epochs=3"), job(8, "+optimizer.decoupled_weight_decay=true"),
            job(9, "augment=elastic")]
    groups, notes = plan(jobs, max_stack=2)
    assert [[j.number for j in group] for group in groups] == [[0, 1], [2], [3], [4], [5], [6], [7], [8], [9]]
    assert notes == ["Job 2 starts a new group: it differs in trainer.batch_size.",
                     "Job 3 trains alone: optimizer._target_=torch.optim.RMSprop has no stacked update.",
                     "Job 4 runs alone: task=eval.",  # an evaluation "trained alone"
                     "Job 5 starts a new group: at most 2 trials per group (hydra.launcher.max_stack).",
                     "Job 6 trains alone: optimizer.amsgrad=true has no stacked update.",
                     # said against the closest group, job 2's
                     "Job 7 starts a new group: it differs in trainer.epochs.",
                     "Job 8 trains alone: optimizer.decoupled_weight_decay=true has no stacked update.",
                     # the option chosen first, and how many more settings differ
                     "Job 9 starts a new group: it differs in augment.name, augment.degrees, augment.elastic_alpha, "
                     "augment.elastic_sigma and 7 more."]


def test_a_note_of_the_plan_is_said_once_for_all_the_jobs_it_is_said_of(tiny_root):
    """A 200-job sweep said "at most 8 trials per group" 24 times (helper scale55)."""
    jobs = [Job(number, compose(f"dataset.root={tiny_root}", f"seed={number}")) for number in range(5)]
    evaluations = [Job(number, compose(f"dataset.root={tiny_root}", "task=eval")) for number in (5, 6)]
    groups, notes = plan([*jobs, *evaluations], max_stack=2)
    assert [[j.number for j in group] for group in groups] == [[0, 1], [2, 3], [4], [5], [6]]
    assert notes == ["Jobs 2, 4 start new groups: at most 2 trials per group (hydra.launcher.max_stack).",
                     "Jobs 5, 6 run alone: task=eval."]


def test_every_trainer_setting_is_a_trials_own_or_its_groups(tiny_root):
    """The stacked step reads each trial's own settings (PER_TRIAL) and the group's shared ones; a trainer setting
    added without its stacked form was silently left out where a group's trials shared it (helper contrib55)."""
    import dataclasses

    from omegaconf import open_dict

    from lenet_exp.config import TrainerConfig
    from lenet_exp.stack.grouping import PER_TRIAL, SHARED_TRAINER_SETTINGS, why_alone

    settings = [f"trainer.{setting.name}" for setting in dataclasses.fields(TrainerConfig)]
    own = [key for key in settings if key.startswith(PER_TRIAL)]
    assert sorted([*own, *SHARED_TRAINER_SETTINGS]) == sorted(settings)  # each in one list
    new = compose(f"dataset.root={tiny_root}")
    with open_dict(new.trainer):
        new.trainer.confidence_penalty = 0.3
    assert why_alone(Job(0, new)) == "trainer.confidence_penalty has no stacked form"
    assert why_alone(Job(0, compose(f"dataset.root={tiny_root}"))) is None


def test_a_group_split_by_a_config_groups_option_names_the_option(tiny_root):
    """optimizer=adam,sgd split its jobs "in optimizer._target_": the option chosen says it as it was typed."""
    def job(number: int, optimizer: str, augment: str = "none") -> Job:
        cfg = compose(f"dataset.root={tiny_root}", f"optimizer={optimizer}", f"augment={augment}")
        return Job(number, cfg, options={"optimizer": optimizer, "augment": augment, "model": "lenet5"})

    groups, notes = plan([job(0, "adam"), job(1, "sgd"), job(2, "sgd", "affine")], max_stack=8)
    assert [[j.number for j in group] for group in groups] == [[0], [1], [2]]
    assert notes == ["Job 1 starts a new group: it differs in optimizer=sgd.",
                     "Job 2 starts a new group: it differs in augment=affine."]


def test_a_group_holds_at_most_8_trials_on_the_cpu_and_32_on_a_gpu(tiny_root):
    import torch

    from hydra_plugins.lenet_exp_stacked_launcher.stacked_launcher import StackedLauncher

    def config(device: str):
        return compose(f"dataset.root={tiny_root}", f"device={device}")

    default, on_slurm_gpus = StackedLauncher(), StackedLauncher(submitit={"cluster": "slurm", "gpus_per_node": 1})
    assert [default._cap(config(device)) for device in ("cpu", "cuda")] == [8, 32]
    assert default._cap(config("auto")) == (32 if torch.cuda.is_available() else 8)  # as device=auto trains
    assert on_slurm_gpus._cap(config("auto")) == 32 and on_slurm_gpus._cap(config("cpu")) == 8
    assert StackedLauncher(max_stack=5)._cap(config("cuda")) == 5
    groups, notes = plan([Job(number, config("cpu")) for number in range(10)], default._cap)
    assert [len(group) for group in groups] == [8, 2]
    assert notes == ["Job 8 starts a new group: at most 8 trials per group (hydra.launcher.max_stack)."]


def test_the_launcher_is_listed_and_checks_its_settings(fast, tmp_path):
    info = run_main(["--info", "plugins"], cwd=tmp_path)
    assert "StackedLauncher" in info.stdout
    bad = run_main([*STACKED, *fast, "hydra.launcher.max_stack=0", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert bad.returncode == 1 and "hydra.launcher.max_stack=0: give an integer >= 1" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "sweep").exists()  # it left its multirun.yaml and lock
    bad = run_main([*STACKED, *fast, "hydra.launcher.submitit.cluster=slrum", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert bad.returncode == 1 and "hydra.launcher.submitit.cluster='slrum': expected one of [local, slurm]" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_trial_tested_alone_at_the_re_run_keeps_the_group_it_trained_in(fast, tmp_path, monkeypatch):
    """Job 1's final test fails (a full disk, say) after the group trained; the re-run tests it alone: its
    metrics.json said it was stacked with [1], its own number, and lost the group that trained it."""
    command = [*STACKED, *fast, "trainer.limit_batches=2", "seed=0,1", "hydra.sweep.dir=sweep"]
    start_test = Run.start_test

    def failing_for_job_1(self, *args):
        if self.dir.name.startswith("1_"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return start_test(self, *args)

    with monkeypatch.context() as patched:
        patched.setattr(Run, "start_test", failing_for_job_1)
        first = run_main(command, cwd=tmp_path)
    assert first.returncode == 1 and "No space left on device" in first.stderr, first.stderr[-2000:]
    jobs = job_dirs(tmp_path / "sweep")
    assert [read_json(job / "metrics.json")["status"] for job in jobs] == ["completed", "failed"]

    again = run_main(command, cwd=tmp_path)
    assert again.returncode == 0 and "[job 1] Resuming" in again.stderr, again.stderr[-2000:]
    assert [read_json(job / "metrics.json")["stacked_with"] for job in jobs] == [[0, 1], [0, 1]]


def test_a_trial_whose_first_epoch_moved_no_weight_is_told_so(fast, tmp_path):
    """optimizer.lr=1e-30 trained at chance accuracy to the end without a word: Adam's steps of 1e-30 are below
    float32's rounding of weights of 0.1 (a zero bias did move to 1e-30). Said of that trial, not its group's."""
    result = run_main([*STACKED, *fast, "trainer.limit_batches=3", "optimizer.lr=1e-30,1e-3", "hydra.sweep.dir=sweep"],
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    said = "Epoch 1 changed none of the model's weights: the steps of optimizer.lr=1e-30 were too small for float32"
    assert result.stderr.count(said) == 1 and f"[job 0] {said}" in result.stderr, result.stderr[-2000:]
    assert said in (job_dirs(tmp_path / "sweep")[0] / "run.log").read_text()


def test_a_stack_of_at_most_one_trains_each_job_alone_and_says_so(fast, tmp_path):
    result = run_main([*STACKED, *fast, "trainer.limit_batches=20", "hydra.launcher.max_stack=1", "seed=0,1",
                       "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Job 1 starts a new group: at most 1 trial per group (hydra.launcher.max_stack).\n" in result.stdout
    assert [read_json(job / "metrics.json").get("stacked_with") for job in job_dirs(tmp_path / "sweep")] == [None] * 2


@contextlib.contextmanager
def group_killed_once_it_has_a_checkpoint(sweep_dir: Path, pattern: str):
    """SIGKILL (as Slurm's OOM killer or scancel would send) to the submitit job that trains the jobs whose
    folders match ``pattern``, once one of them has a checkpoint; yields a list that receives its pid."""
    killed = []

    def kill():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for job in sweep_dir.glob(pattern):
                if (job / "checkpoints" / "last.pt").exists():
                    killed.append(int((job / LOCK_FILE).read_text().split()[1]))  # "pid N": its submitit job
                    os.kill(killed[0], signal.SIGKILL)
                    break
            time.sleep(0.02)

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        yield killed
    finally:
        killed.append(None)  # stops the thread if it found nothing
        killer.join()
    assert killed[0] is not None, "the group ended before it could be killed"


@pytest.mark.long
def test_each_group_can_be_one_submitit_job(fast, tmp_path, monkeypatch):
    """Two groups, each a submitit job of its own; the second is killed once it has a checkpoint: its jobs
    fail, the first group's complete, the sweep says so."""
    import submitit

    # submitit gives a dead job's result file 15 s to appear (on a network file system); this one is local
    monkeypatch.setattr(submitit.core.core.Job, "_results_timeout_s", 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # gpus_per_node=1: a GPU for each group (which trains on the CPU)
    sweep_dir = tmp_path / "sweep"
    with group_killed_once_it_has_a_checkpoint(sweep_dir, "2_*"):
        result = run_main([*STACKED, *fast, "trainer.epochs=12", "model=lenet5,lenet5_classic",
                           "optimizer.lr=1e-3,3e-3", "hydra.launcher.submitit.cluster=local",
                           "hydra.launcher.submitit.cpus_per_task=1", "hydra.launcher.submitit.gpus_per_node=1",
                           f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr[-2000:]
    assert "Submitted 2 submitit jobs (local), one on each of GPUs [0, 1]" in result.stdout
    assert re.search(r"Submitit job \S+ \(jobs 2, 3\) failed: its process died without a result: out of memory, "
                     r"killed, or crashed\n", result.stdout), result.stdout[-2000:]  # not its log's last line
    for number, job in enumerate(job_dirs(sweep_dir)[:2]):
        metrics = read_json(job / "metrics.json")
        assert metrics["status"] == "completed" and metrics["stacked_with"] == [0, 1]
        assert metrics["device"] == "CPU (1 thread)"  # the job's cpus_per_task
    # each group ran in a submitit job of its own, which logged its jobs' lines
    logs = [log.read_text() for log in (sweep_dir / ".submitit").glob("*/*_log.err")]  # in folders named by pid
    assert len(logs) == 2 and any("[job 0]" in log and "[job 1] epoch 12/12" in log for log in logs), logs
    summary = read_json(sweep_dir / "summary.json")
    assert summary["counts"] == {"completed": 2, "failed": 2}
    assert all("killed" in job["message"] for job in summary["jobs"] if job["job"] in (2, 3))


def test_local_groups_trained_at_once_share_the_cores(fast, tmp_path):
    """Each group's submitit_local job took every core, while all of them trained at once."""
    result = run_main([*STACKED, *fast, "model=lenet5,lenet5_classic", "hydra.launcher.submitit.cluster=local",
                       "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    assert f"2 groups train at once here: {threads} of the" in result.stdout
    assert {read_json(job / "metrics.json")["device"] for job in job_dirs(tmp_path / "sweep")} == {
        f"CPU ({threads} thread{'s' if threads > 1 else ''})"}


@pytest.mark.long
def test_an_optuna_study_goes_on_when_a_groups_submitit_job_dies(fast, tmp_path, monkeypatch):
    """The dead group's trials are told to Optuna as failed (optuna 2.10 rejects NaN, which crashed the study)."""
    import submitit

    monkeypatch.setattr(submitit.core.core.Job, "_results_timeout_s", 1)
    sweep_dir = tmp_path / "optuna"
    with group_killed_once_it_has_a_checkpoint(sweep_dir, "0_*"):
        result = run_main([*STACKED, "sweep=optuna", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
                           "scheduler=none", "trainer.batch_size=64", *fast, "trainer.epochs=12",
                           "hydra.launcher.submitit.cluster=local", "hydra.launcher.submitit.cpus_per_task=1",
                           f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr[-2000:]
    assert re.search(r"Submitit job \S+ \(jobs 0, 1\) failed", result.stdout), result.stdout[-2000:]
    summary = read_json(sweep_dir / "summary.json")
    assert summary["counts"] == {"completed": 2, "failed": 2}  # the study went on to its second batch


def test_local_gpus_are_the_visible_gpus_by_number(monkeypatch, caplog):
    from hydra_plugins.lenet_exp_stacked_launcher.stacked_launcher import local_gpus

    for visible, expected in (("3,5", [3, 5]), (" 1 ", [1]), ("", []), ("-1", []), ("0,-1,1", [0])):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert local_gpus() == expected
    assert not caplog.text
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-5d3c0b1e,GPU-8f2a9c4d")  # submitit takes numbers only
    assert local_gpus() == [] and "Set it to GPU numbers (e.g. 0,1) for one group per GPU" in caplog.text


def test_local_groups_take_one_gpu_each_in_waves():
    from hydra_plugins.lenet_exp_stacked_launcher.stacked_launcher import gpu_waves

    assert gpu_waves(5, [0, 1]) == [[(0, 0), (1, 1)], [(2, 0), (3, 1)], [(4, 0)]]
    assert gpu_waves(2, [3, 5, 7]) == [[(0, 3), (1, 5)]]
    assert gpu_waves(3, []) == [[(0, None), (1, None), (2, None)]]  # no GPUs: all at once, as submitit does


def test_jobs_whose_config_names_hydras_own_values_stack_each_with_its_own(fast, tiny_root, tmp_path):
    """${hydra:…} did not resolve as the launcher planned the groups: every such job trained alone ("its config
    cannot be read"). Stacked, each trial must take its own job's value, not the last job's."""
    (tmp_path / "data").symlink_to(tiny_root, target_is_directory=True)
    result = run_main([*STACKED, *fast, "seed=0,1", "dataset.root=${hydra:runtime.cwd}/data",
                       "data_seed=${hydra:job.num}", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 0 and "cannot be read" not in result.stderr, result.stderr[-2000:]
    metrics = [read_json(job / "metrics.json") for job in job_dirs(tmp_path / "sweep")]
    assert [m["stacked_with"] for m in metrics] == [[0, 1], [0, 1]]
    assert [m["config"]["data_seed"] for m in metrics] == [0, 1]  # the group's last job's was 1 for both
    assert {m["config"]["dataset"]["root"] for m in metrics} == {str(tmp_path / "data")}


def test_each_job_reads_its_own_environment_and_jobs_of_another_train_apart(fast, tmp_path):
    """hydra.job.env_set was set around a group as its first job's, resolved as its last job's: a job whose config
    reads the environment trained with another's value. Planned without it, ${oc.env:…} of a variable that it
    sets could not be read, and every job trained alone."""
    root = [o for o in fast if o.startswith("dataset.root=")][0].split("=", 1)[1]
    without_root = [o for o in fast if not o.startswith("dataset.root=")]
    result = run_main([*STACKED, *without_root, "seed=0,1", "+hydra.job.env_set.ORDER=${hydra:job.num}",
                       "data_seed=${oc.env:ORDER}", f"+hydra.job.env_set.ROOT={root}", "dataset.root=${oc.env:ROOT}",
                       "hydra.sweep.dir=sweep"], cwd=tmp_path, env={"ORDER": "7"})
    assert result.returncode == 0 and "cannot be read" not in result.stdout + result.stderr, result.stderr[-2000:]
    assert "Job 1 starts a new group: it differs in hydra.job.env_set.ORDER." in result.stdout, result.stdout
    metrics = [read_json(job / "metrics.json") for job in job_dirs(tmp_path / "sweep")]
    assert [m["config"]["data_seed"] for m in metrics] == [0, 1]  # job 0's was job 1's
    assert [m.get("stacked_with") for m in metrics] == [None, None]
    shared = run_main([*STACKED, *without_root, "seed=0,1", f"+hydra.job.env_set.ROOT={root}",
                       "dataset.root=${oc.env:ROOT}", "hydra.sweep.dir=shared"], cwd=tmp_path)
    assert shared.returncode == 0 and "Training jobs 0, 1 stacked" in shared.stderr, shared.stderr[-2000:]
    # one of a variable set before it, as Hydra's run_job sets them in order (its ${…} was set as written)
    chained = run_main([*STACKED, *fast, "seed=0,1", "+hydra.job.env_set.A=5", "+hydra.job.env_set.B=${oc.env:A}",
                        "data_seed=${oc.env:B}", "hydra.sweep.dir=chained"], cwd=tmp_path)
    assert chained.returncode == 0 and "Training jobs 0, 1 stacked" in chained.stderr, chained.stderr[-2000:]
    assert [read_json(job / "metrics.json")["config"]["data_seed"] for job in job_dirs(tmp_path / "chained")] == [5, 5]
    # a variable that cannot be set ends the sweep at its job, as under Hydra's basic launcher (it trained with it
    # unset, or its jobs failed in a group while a lone one ended the sweep)
    unset = run_main([*STACKED, *fast, "seed=0,1", "+hydra.job.env_set.B=${oc.env:LENET_EXP_TEST_UNSET}",
                      "hydra.sweep.dir=unset"], cwd=tmp_path)
    assert unset.returncode == 1 and "Error: hydra.job.env_set.B cannot be resolved" in unset.stderr, \
        unset.stderr[-2000:]
    assert "Job 0 trains alone: its hydra.job.env_set cannot be resolved." in unset.stdout, unset.stdout[-2000:]


def test_each_job_reads_its_own_folder_and_hydra_config_as_a_lone_job_does(fast, tiny_root, tmp_path):
    """As Hydra's basic launcher runs each job: ${hydra:runtime.output_dir} was unset as the groups were planned
    (two jobs of one data folder by it, and job 1 trained on job 0's data); hydra.job.chdir=true left a relative
    dataset.root as written; a callback's HydraConfig at on_job_end was the group's last job's; a log file named
    by ${hydra.job.num} was job 0's name in every job's folder."""
    without_root = [o for o in fast if not o.startswith("dataset.root=")]
    first = tmp_path / "own" / "0_optimizer.lr=0.001"
    first.mkdir(parents=True)
    (first / "data").symlink_to(tiny_root, target_is_directory=True)  # job 0's folder alone holds the data
    own = run_main([*STACKED, *without_root, "optimizer.lr=1e-3,3e-3", "dataset.root=${hydra:runtime.output_dir}/data",
                    "hydra.sweep.dir=own"], cwd=tmp_path)
    assert own.returncode == 1, own.stderr[-2000:]
    assert [read_json(job / "metrics.json")["status"] for job in job_dirs(tmp_path / "own")] == ["completed", "failed"]

    (tmp_path / "data").symlink_to(tiny_root, target_is_directory=True)
    (tmp_path / "callbacks.py").write_text(
        "from pathlib import Path\nfrom hydra.core.hydra_config import HydraConfig\nfrom hydra.experimental.callback "
        "import Callback\n\nclass Seen(Callback):\n    def on_job_end(self, config, job_return, **kwargs):\n"
        "        Path(config.hydra.runtime.output_dir, 'seen').write_text(str(HydraConfig.get().job.num))\n")
    moved = run_cli([*STACKED, *without_root, "optimizer.lr=1e-3,3e-3", "dataset.root=data", "hydra.job.chdir=true",
                     "+hydra.callbacks.seen._target_=callbacks.Seen", "hydra.sweep.dir=moved",
                     "hydra.job_logging.handlers.file.filename=${hydra.runtime.output_dir}/log_${hydra.job.num}.txt"],
                    cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert moved.returncode == 0 and "Training jobs 0, 1 stacked" in moved.stderr, moved.stderr[-2000:]
    for number, job in enumerate(job_dirs(tmp_path / "moved")):
        assert read_json(job / "metrics.json")["config"]["dataset"]["root"] == str(tmp_path / "data")
        assert (job / "seen").read_text() == str(number)
        assert "Training" in (job / f"log_{number}.txt").read_text()
    # one log file that every job's config names: each job's lines, and the group's once (they were there twice)
    pooled = run_main([*STACKED, *fast, "optimizer.lr=1e-3,3e-3", "hydra.sweep.dir=pooled",
                       f"hydra.job_logging.handlers.file.filename={tmp_path / 'all.log'}"], cwd=tmp_path)
    assert pooled.returncode == 0, pooled.stderr[-2000:]
    lines = (tmp_path / "all.log").read_text()
    assert lines.count("Training jobs 0, 1 stacked") == 1 and lines.count("] - Run in ") == 2, lines
    # a relative name under hydra.job.chdir: in each job's folder, where a lone job runs (one file where run.py ran)
    relative = run_main([*STACKED, *fast, "optimizer.lr=1e-3,3e-3", "hydra.sweep.dir=relative", "hydra.job.chdir=true",
                         "hydra.job_logging.handlers.file.filename=job.log"], cwd=tmp_path)
    assert relative.returncode == 0 and not (tmp_path / "job.log").exists(), relative.stderr[-2000:]
    assert all("Training jobs 0, 1 stacked" in (job / "job.log").read_text() for job in job_dirs(tmp_path / "relative"))


def test_a_jobs_task_config_leaves_the_hydra_node_out_and_the_jobs_config_whole():
    """The launcher copies a job's config without its hydra node (most of the copy's time): the copy has every
    other setting, and the job's own config keeps its hydra node, still its child (${hydra:…} resolves by it).
    (The run.py callback's check of a run's config before its folder is made uses the same copy.)"""
    import copy

    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import OmegaConf

    from conftest import RUN_PY
    from lenet_exp.config import register_configs, without_hydra

    register_configs()
    with initialize_config_dir(config_dir=str(RUN_PY.parent / "configs"), version_base="1.3"):
        config = hydra_compose("config", overrides=["hydra/launcher=stacked", "seed=3"], return_hydra_config=True)
    before = copy.deepcopy(config)
    task = without_hydra(config)
    assert "hydra" not in task and OmegaConf.to_yaml(task) == OmegaConf.to_yaml(
        OmegaConf.masked_copy(before, [key for key in before if key != "hydra"]))
    assert OmegaConf.get_type(task) is OmegaConf.get_type(config) and OmegaConf.is_struct(task)
    assert config._get_node("hydra")._get_parent() is config
    assert OmegaConf.to_yaml(config) == OmegaConf.to_yaml(before)
