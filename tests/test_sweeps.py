"""Sweeps through the real CLI (`python run.py -m ...`) on the tiny generated data sets.

Sweeps whose jobs run in the sweep's own process (the basic launcher, Optuna's) run run.py in this process
(conftest.run_main), and so does a submitit sweep, whose jobs are submitit's processes. A `python run.py`
process (5-8 s of imports) is started where that process is what is tested: a joblib sweep on a terminal,
whose workers write to it. The TensorBoard server is a process of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import csv
import io
import json
import os
import re
import shutil
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import pytest

from conftest import (AS_A_USER, MACHINE_CORES, RUN_PY, a_grid_study, as_a_new_command, as_a_user, fast_overrides,
                      finish_on_terminal, on_every_core, run_cli, run_main, start, start_on_terminal)
from tensorboard_events import card, load_events, logged_hparams, scalar_values, session_status
from lenet_exp import CONFIGS

STATUS_BY_LR = {"0.001": "completed", "0.003": "completed", "1e+30": "diverged", "-1": "failed"}


def read_summary(sweep_dir: Path) -> tuple[list[dict], dict]:
    with open(sweep_dir / "summary.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    return rows, json.loads((sweep_dir / "summary.json").read_text())


def job_dirs(sweep_dir: Path) -> list[Path]:
    """A sweep's job folders in job order (named NUMBER_OVERRIDES)."""
    return sorted((p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml")),
                  key=lambda p: int(p.name.split("_")[0]))


def metrics(job_dir: Path) -> dict:
    return json.loads((job_dir / "metrics.json").read_text())


def event_pids(job_dir: Path) -> set[int]:
    """Process ids in the names of a job's event files (events.out.tfevents.TIME.HOST.PID.N)."""
    return {int(path.name.split(".")[-2]) for path in job_dir.glob("events.out.tfevents.*")}


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


# ------------------------------------------------------------------------------- search space rules
@pytest.mark.parametrize("args, expected", [
    ([], {"optimizer.lr": "3e-4,1e-3,3e-3", "trainer.batch_size": "64,256"}),
    (["sweep=lr_schedule"], {"scheduler": "none,cosine,onecycle", "optimizer.lr": "1e-3,3e-3,1e-2"}),
    (["sweep=seeds"], {"seed": "0,1,2"}),
    (["sweep=optimizers"], {"optimizer": "adam,adamw,sgd", "scheduler": "none,cosine"}),
])
def test_named_study_replaces_the_default_space(tmp_path, args, expected):
    result = run_main([*args, "--cfg", "hydra", "-p", "hydra.sweeper.params"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line and not line.startswith("#"))
    assert shown == expected


def test_a_sweep_folder_named_by_the_jobs_name_is_one_folder_for_every_job(tmp_path):
    """The job's name, the same for every job of a sweep, may name its folder (the job's number may not).
    trainer.epochs=0 fails each job at validation: nothing trains."""
    result = run_main(["-m", "seed=0,1", "trainer.epochs=0", "hydra.sweep.dir=sweeps/${hydra.job.name}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]  # the jobs failed
    rows, _ = read_summary(tmp_path / "sweeps" / "run")
    assert [(row["job"], row["status"]) for row in rows] == [("0", "failed"), ("1", "failed")]
    assert [p.name for p in (tmp_path / "sweeps").iterdir()] == ["run"]


@pytest.mark.parametrize("linked", ["summary", "0_seed=0", "multirun.yaml"])
def test_a_sweep_folder_whose_entries_link_elsewhere_is_refused_before_anything_is_written_there(tmp_path, linked):
    """Run again into its folder, a sweep wrote its summary's TensorBoard run, a job's files or multirun.yaml
    through links to places outside it. trainer.epochs=0 fails each job at validation: nothing trains."""
    command = ["-m", "seed=0,1", "trainer.epochs=0", "hydra.sweep.dir=sweep"]
    assert run_main(command, cwd=tmp_path).returncode == 1  # the jobs failed, as they should
    sweep, outside = tmp_path / "sweep", tmp_path / "outside"
    shutil.move(sweep / linked, outside)
    (sweep / linked).symlink_to(outside)
    before = {path: path.read_bytes() for path in [outside, *outside.rglob("*")] if path.is_file()}
    refused = run_main(command, cwd=tmp_path)
    assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1] == (
        f"Error: sweep/{linked} is a symbolic link (to {outside}), where lenet_exp writes a file of its own: it "
        f"would write there, outside sweep. Put a copy of what it points to in its place (cp -rL), then run the same "
        f"command again, or choose another folder with hydra.sweep.dir=<dir>."), refused.stderr[-2000:]
    assert {path: path.read_bytes() for path in [outside, *outside.rglob("*")] if path.is_file()} == before
    # one that nothing writes through (a folder of notes), or that leads inside the sweep's folder, is no harm
    (sweep / linked).unlink()
    shutil.move(outside, sweep / linked)
    (tmp_path / "notes").mkdir()
    (sweep / "notes").symlink_to(tmp_path / "notes")
    (sweep / "latest").symlink_to(sweep / "1_seed=1" / "checkpoints")
    again = run_main(command, cwd=tmp_path)
    assert again.returncode == 1 and "symbolic link" not in again.stderr, again.stderr[-2000:]  # the jobs fail again


@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_a_job_folder_replaced_by_a_link_out_of_the_sweep_is_refused_before_its_job_runs(launcher, fast, tmp_path):
    """A job's folder that a link leads out of the sweep's, to an empty folder (no .hydra/ of a job there), took
    the job: Hydra wrote its record, metrics.json and events outside, and the summary listed it as not started."""
    command = ["-m", f"hydra/launcher={launcher}", *fast, "seed=0,1", "hydra.sweep.dir=sweep"]
    assert run_main(command, cwd=tmp_path).returncode == 0
    shutil.rmtree(tmp_path / "sweep" / "1_seed=1")
    (tmp_path / "outside").mkdir()
    (tmp_path / "sweep" / "1_seed=1").symlink_to(tmp_path / "outside")
    refused = run_main(command, cwd=tmp_path)
    assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1] == (
        f"Error: sweep/1_seed=1 is a symbolic link (to {tmp_path / 'outside'}), where lenet_exp writes a file of its "
        f"own: it would write there, outside sweep. Put a copy of what it points to in its place (cp -rL), or remove "
        f"the link, then run the same command again."), refused.stderr[-2000:]
    assert list((tmp_path / "outside").iterdir()) == []


def test_a_sweeps_summary_writes_no_event_file_through_a_link_out_of_its_folder(fast, tmp_path):
    """`python -m lenet_exp.sweeps` wrote the summary's TensorBoard run through a link named summary, and deleted
    the event files it found there (another run's, say)."""
    assert run_main(["-m", *fast, "seed=0,1", "hydra.sweep.dir=sweep"], cwd=tmp_path).returncode == 0
    shutil.rmtree(tmp_path / "sweep" / "summary")
    (tmp_path / "other run").mkdir()
    (tmp_path / "other run" / "events.out.tfevents.1.host").write_bytes(b"its events")
    (tmp_path / "sweep" / "summary").symlink_to(tmp_path / "other run")
    for flags in ([], ["--no-tensorboard"]):
        result = run_main([str(tmp_path / "sweep"), *flags], cwd=tmp_path, module="lenet_exp.sweeps")
        said = result.stdout + result.stderr  # what it could not write, with exit status 1
        assert (result.returncode, "sweep/summary is a symbolic link" in said) == ((1, True) if flags == [] else
                                                                                  (0, False)), said[-2000:]
        assert "Traceback" not in said and (tmp_path / "sweep" / "summary.csv").is_file()
        assert [path.name for path in (tmp_path / "other run").iterdir()] == ["events.out.tfevents.1.host"]


def test_a_named_pipe_in_a_sweeps_folder_holds_no_command(fast, tmp_path):
    """A folder is data: a named pipe for a job's hydra.yaml held the summary, and one for the lock of a run still
    training (a checkpoint of an epoch before its last) held task=eval of its checkpoint, until a writer came (for
    ever)."""
    import torch

    assert run_main(["-m", *fast, "seed=0,1", "hydra.sweep.dir=sweep"], cwd=tmp_path).returncode == 0
    first, second = job_dirs(tmp_path / "sweep")
    state = torch.load(first / "checkpoints" / "best.pt", weights_only=True)
    state["config"]["trainer"]["epochs"] = 5  # of epoch 1 of 5: eval asks the folder's lock who trains it
    torch.save(state, first / "checkpoints" / "best.pt")
    (first / ".lock").unlink(missing_ok=True)
    os.mkfifo(first / ".lock")
    evaluated = run_cli(["task=eval", f"ckpt={first / 'checkpoints' / 'best.pt'}", *fast, "hydra.run.dir=eval"],
                        cwd=tmp_path, timeout=60)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    (second / ".hydra" / "hydra.yaml").unlink()
    os.mkfifo(second / ".hydra" / "hydra.yaml")
    summary = run_cli(["-m", "lenet_exp.sweeps", str(tmp_path / "sweep")], cwd=tmp_path, script=None, timeout=60)
    assert summary.returncode == 2 and (f"cannot read {second / '.hydra' / 'hydra.yaml'} (no regular file)"
                                        in summary.stderr), summary.stderr[-2000:]


def test_a_summary_waits_while_another_is_written(fast, tmp_path):
    """`python -m lenet_exp.sweeps` as a sweep wrote its final summary read a job as running, then wrote its
    summary.png and TensorBoard summary over the final ones (helper concur57): it waits, then reads the jobs."""
    from lenet_exp.files import one_process_at_a_time

    assert run_main(["-m", *fast, "seed=0,1", "hydra.sweep.dir=sweep"], cwd=tmp_path).returncode == 0
    sweep, job = tmp_path / "sweep", job_dirs(tmp_path / "sweep")[1]
    ended = (job / "metrics.json").read_text()
    (job / "metrics.json").write_text(json.dumps({**json.loads(ended), "status": "running"}))  # its last moment
    with one_process_at_a_time(sweep):  # as the sweep holds it while it writes its final summary
        summariser = subprocess.Popen([sys.executable, "-m", "lenet_exp.sweeps", str(sweep)], cwd=tmp_path,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        waiting = f":{os.stat(sweep).st_ino} "  # /proc/locks: "2: -> FLOCK ADVISORY WRITE <pid> 08:01:<inode> 0 EOF"
        deadline = time.monotonic() + 60
        while not any("->" in line and waiting in line for line in Path("/proc/locks").read_text().splitlines()):
            assert summariser.poll() is None and time.monotonic() < deadline, summariser.communicate()
            time.sleep(0.05)
        (job / "metrics.json").write_text(ended)  # the job's end, and then the sweep's summary
    out, err = summariser.communicate(timeout=120)
    assert summariser.returncode == 0, err[-2000:]
    assert "2 jobs (2 completed)" in out
    assert [record["status"] for record in read_summary(sweep)[1]["jobs"]] == ["completed"] * 2


@pytest.mark.long
def test_command_line_sweep_runs_exactly_what_it_names(tmp_path):
    """Without the rule Hydra would multiply these with the default study's batch sizes: 8 jobs.

    trainer.epochs=0 fails each job at validation, so the sweep trains nothing.
    """
    result = run_main(["-m", "optimizer.lr=1e-3,3e-3", "model=lenet5,lenet5_classic", "trainer.epochs=0",
                       "hydra.sweep.dir=only_named"], cwd=tmp_path)
    assert "Launching 4 jobs" in result.stdout and "default search space" in result.stdout
    jobs = [set(o for o in (d / ".hydra" / "overrides.yaml").read_text().split() if "=" in o)
            for d in job_dirs(tmp_path / "only_named")]
    assert len(jobs) == 4 and not any("batch_size" in o for overrides in jobs for o in overrides)
    # each job's folder is named by its number and its swept values; trainer.epochs=0, the same in all, is not
    assert [d.name for d in job_dirs(tmp_path / "only_named")] == [
        "0_model=lenet5,optimizer.lr=0.001", "1_model=lenet5_classic,optimizer.lr=0.001",
        "2_model=lenet5,optimizer.lr=0.003", "3_model=lenet5_classic,optimizer.lr=0.003"]
    assert result.returncode == 1  # every job failed validation: the summary says so through the exit status
    rows, summary = read_summary(tmp_path / "only_named")
    assert summary["swept"] == ["optimizer.lr", "model"] and {r["status"] for r in rows} == {"failed"}

    # Naming the study combines it with the command line, Hydra's way: lr replaced, batch sizes multiply.
    combined = run_main(["-m", "sweep=default", "optimizer.lr=1e-3", "model=lenet5,lenet5_classic",
                         "trainer.epochs=0", "hydra.sweep.dir=combined"], cwd=tmp_path)
    assert "Launching 4 jobs" in combined.stdout and "default search space" not in combined.stdout
    _, summary = read_summary(tmp_path / "combined")
    # every key of the study swept with values of one's own: sweep=default would add nothing, and is not suggested
    for prefix in ("", "++"):  # (++ sets a key whether or not the config has it)
        every = run_main(["-m", f"{prefix}optimizer.lr=1e-3,3e-3", f"{prefix}trainer.batch_size=32,64",
                          "trainer.epochs=0", f"hydra.sweep.dir=every{prefix}"], cwd=tmp_path)
        assert (f"Sweeping only what the command line names ({prefix}optimizer.lr, {prefix}trainer.batch_size).\n"
                in every.stdout), every.stdout
    assert {(j["params"]["trainer.batch_size"], j["params"]["model"]) for j in summary["jobs"]} == {
        ("64", "lenet5"), ("64", "lenet5_classic"), ("256", "lenet5"), ("256", "lenet5_classic")}
    assert {j["params"]["optimizer.lr"] for j in summary["jobs"]} == {"0.001"}
    # one value of a key of the study, without naming it: its other keys still sweep, which was said nowhere
    one = run_main(["-m", "optimizer.lr=1e-3", "trainer.epochs=0", "hydra.sweep.dir=one"], cwd=tmp_path)
    assert "Launching 2 jobs" in one.stdout and ("Sweeping the default search space (trainer.batch_size=64,256) with "
                                                 "optimizer.lr=1e-3 in place of its values; ~sweep runs the command "
                                                 "line's values alone.") in one.stdout, one.stdout


def test_callback_module_imports_neither_torch_nor_matplotlib(tmp_path):
    code = ("import sys, lenet_exp.sweeps, lenet_exp.sweeps.__main__; "
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr


# --------------------------------------------------------------------- failures, summary and re-runs
@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_a_job_refused_for_its_folders_run_keeps_that_runs_record(launcher, fast, tmp_path):
    """Hydra rewrites a job's .hydra/ before the job can refuse a folder that holds a run of another config (its
    option's YAML edited since): resume= of it then said its overrides.yaml "was edited after the run was made"."""
    wide = tmp_path / "mine" / "model" / "wide.yaml"
    wide.parent.mkdir(parents=True)
    wide.write_text((CONFIGS / "model" / "lenet5.yaml").read_text().replace("name: lenet5", "name: wide"))
    command = ["--config-dir", str(tmp_path / "mine"), "-m", *fast, "model=lenet5,wide", "trainer.limit_batches=2",
               "hydra.sweep.dir=sweep", *(["hydra/launcher=stacked"] if launcher == "stacked" else [])]
    assert run_main(command, cwd=tmp_path).returncode == 0
    job = tmp_path / "sweep" / "1_model=wide"
    record = {path.name: path.read_bytes() for path in (job / ".hydra").iterdir()}
    wide.write_text(wide.read_text().replace("hidden: [120, 84]", "hidden: [100, 84]"))
    longer = run_main([*command, "trainer.epochs=2"], cwd=tmp_path)  # lenet5's job trains on; wide's is refused
    assert longer.returncode == 1 and "1_model=wide already holds a completed run with another config (model.hidden" \
        in longer.stderr, longer.stderr[-2000:]
    assert {path.name: path.read_bytes() for path in (job / ".hydra").iterdir()} == record
    assert "trainer.epochs=2" in (tmp_path / "sweep" / "0_model=lenet5" / ".hydra" / "overrides.yaml").read_text()
    wide.write_text(wide.read_text().replace("hidden: [100, 84]", "hidden: [120, 84]"))
    again = run_main([*command[:2], f"resume={job}"], cwd=tmp_path)  # --config-dir: a folder chooses no configs
    assert again.returncode == 0 and f"Already completed in {job}" in again.stderr, again.stderr[-2000:]
    # the refusal's record is gone with its cause: it made the job a failure in every summary (helper hydrafeat59)
    from lenet_exp.sweeps.records import LATER_FAILURE, summarize

    assert LATER_FAILURE not in metrics(job) and metrics(job)["status"] == "completed"
    assert [job.status for job in summarize(tmp_path / "sweep").jobs] == ["completed", "completed"]


def test_a_swept_interpolation_is_summarised_by_the_value_it_gave(fast, tmp_path, monkeypatch):
    """`optimizer.lr=${oc.env:LR},0.003`: the table, summary.json and the plot showed "${oc.env:LR}"."""
    from lenet_exp.sweeps.records import summarize

    monkeypatch.setenv("LR", "0.002")
    result = run_main(["-m", *fast, "optimizer.lr=${oc.env:LR},0.003", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(job.params["optimizer.lr"] for job in summarize(tmp_path / "sweep").jobs) == ["0.002", "0.003"]


def test_a_key_that_no_job_has_is_refused_before_the_first_job(fast, tmp_path):
    """It failed every job alike, each leaving a folder; a key that one swept option's class takes failed the
    jobs of the other option once the first had trained (helper docsmsgs61)."""
    typo = run_main(["-m", *fast, "+trainer.epochz=3", "seed=0,1", "hydra.sweep.dir=typo"], cwd=tmp_path)
    assert typo.returncode == 1 and typo.stderr.strip().splitlines()[-1].startswith(
        "Error: Invalid config value trainer.epochz=3 (unknown key; did you mean trainer.epochs?)"), typo.stderr
    assert not (tmp_path / "typo").exists() and "Launching" not in typo.stdout
    # a key added with values to sweep: the sweep's config had none of them (each job failed, in its folder)
    for added, said in (("+trainer.epochz=1,2", "trainer.epochz=1 (unknown key; did you mean trainer.epochs?)"),
                        ("+foo=1,2", "foo=1 (unknown key)")):
        refused = run_main(["-m", *fast, added, "hydra.sweep.dir=added"], cwd=tmp_path)
        assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1].startswith(
            f"Error: Invalid config value {said}"), refused.stderr
        assert not (tmp_path / "added").exists()
    # a group of one's own (hydra.searchpath) added with options to sweep is no key: its jobs run
    (tmp_path / "mine" / "trial").mkdir(parents=True)
    for option, seed in (("a", 3), ("b", 4)):
        (tmp_path / "mine" / "trial" / f"{option}.yaml").write_text(f"# @package _global_\nseed: {seed}\n")
    own = run_main(["-m", *fast, f"hydra.searchpath=[file://{tmp_path / 'mine'}]", "+trial=a,b",
                    "hydra.sweep.dir=own"], cwd=tmp_path)
    assert own.returncode == 0 and [r["status"] for r in read_summary(tmp_path / "own")[0]] == ["completed"] * 2
    # SGD takes dampening, which the sgd option's YAML leaves out, and momentum; Adam takes neither. A class swept:
    # NAdam takes momentum_decay, Adam does not
    for swept, added, said in (
            ("optimizer=sgd,adam", "+optimizer.dampening=0.1", "not a setting of optimizer=adam"),
            ("optimizer=adam,sgd", "++optimizer.momentum=0.9", "not a setting of optimizer=adam"),
            ("optimizer._target_=torch.optim.Adam,torch.optim.NAdam", "+optimizer.momentum_decay=0.004",
             "not a setting of optimizer._target_=torch.optim.Adam")):
        refused = run_main(["-m", *fast, swept, added, "hydra.sweep.dir=swept"], cwd=tmp_path)
        assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1] == (
            f"Error: {added}: {added.lstrip('+').split('=')[0]} is {said}, whose jobs would fail once the others had "
            f"trained: sweep those apart, without {added.split('=')[0]}."), refused.stderr
        assert not (tmp_path / "swept").exists() and "Launching" not in refused.stdout
    # each option that takes it, swept
    both = run_main(["-m", *fast, "optimizer=adam,adamw", "+optimizer.amsgrad=true", "hydra.sweep.dir=both"],
                    cwd=tmp_path)
    assert both.returncode == 0 and [r["status"] for r in read_summary(tmp_path / "both")[0]] == ["completed"] * 2


def test_a_summary_says_how_much_of_the_test_split_its_test_accuracy_is_of(fast, tmp_path):
    """Under trainer.limit_batches a job tests part of the split: its run.log said so, and the summary that
    would be copied into a report did not (helper study61)."""
    result = run_main(["-m", *fast, "trainer.limit_batches=1", "trainer.eval_batch_size=50", "seed=0,1",
                       f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("Every job: dataset=mnist dataset.val_size=100 trainer.epochs=1 trainer.eval_batch_size=50 "
            "trainer.limit_batches=1; test accuracy on 50 of 200 test images (trainer.limit_batches).") \
        in result.stdout.splitlines(), result.stdout
    rows, summary = read_summary(tmp_path / "sweep")
    assert [(row["test_images"], row["test_split_images"]) for row in rows] == [("50", "200")] * 2
    assert summary["shared"] == ["dataset=mnist", "dataset.val_size=100", "trainer.epochs=1",
                                 "trainer.eval_batch_size=50", "trainer.limit_batches=1"]  # nor seed, which it sweeps


def test_what_every_job_shared_is_what_their_records_agree_on():
    """A swept preset (experiment=mnist_best,fashion_best) set each job's data set and epochs: the summary said
    dataset=mnist trainer.epochs=10, the sweep's own config's, of both (helper regress61)."""
    from omegaconf import OmegaConf

    from lenet_exp.sweeps.records import JobRecord, shared_settings

    config = OmegaConf.create({"task": "train", "trainer": {"limit_batches": None}, "hydra": {
        "overrides": {"task": ["experiment=mnist_best,fashion_best", "seed=1"]}, "sweeper": {"params": {}}}})
    jobs = [JobRecord(job=number, status="completed", overrides=[], params={}, run_dir="", dataset=dataset, epochs=30)
            for number, dataset in enumerate(["mnist", "fashion_mnist"])]
    assert shared_settings(config, ["experiment"], jobs) == ["trainer.epochs=30", "seed=1"]
    jobs[1].dataset = "mnist"
    assert shared_settings(config, ["experiment"], jobs) == ["dataset=mnist", "trainer.epochs=30", "seed=1"]


@pytest.mark.long
def test_sweep_with_failed_and_diverged_jobs_then_rerun_skips_completed(fast, tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", *fast, "optimizer.lr=1e-3,3e-3,1e30,-1", f"hydra.sweep.dir={sweep_dir}"]
    result = run_main(args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "2 of 4 jobs did not complete" in result.stderr

    rows, summary = read_summary(sweep_dir)
    assert len(rows) == 4 and summary["n_jobs"] == 4 and summary["swept"] == ["optimizer.lr"]
    assert {row["optimizer.lr"]: row["status"] for row in rows} == STATUS_BY_LR
    assert summary["counts"] == {"completed": 2, "diverged": 1, "failed": 1}
    written = datetime.fromisoformat(summary["written_at"])  # with its UTC offset: a time of another zone is clear
    assert written.tzinfo is not None and abs(written.timestamp() - time.time()) < 600
    for row, job in zip(rows, summary["jobs"]):
        m = metrics(Path(row["run_dir"]))
        assert int(row["job"]) == job["job"] and m["status"] == row["status"]
        if row["status"] == "completed":
            assert float(row["val_acc"]) == pytest.approx(m["val"]["acc"]) == job["val_acc"]
            assert float(row["test_acc"]) == pytest.approx(m["test"]["acc"]) == job["test_acc"]
            assert float(row["test_loss"]) == pytest.approx(m["test"]["loss"]) and row["epochs_done"] == "1"
            assert float(row["wall_time_s"]) > 0
        else:
            assert row["test_acc"] == "" and job["test_acc"] is None and job["message"]
    failed = next(j for j in summary["jobs"] if j["status"] == "failed")
    # fixed by the sweep's values, not by one run's command (helper fixes60)
    assert "Fix it on the command line, e.g. `python run.py -m optimizer.lr=...`" in failed["message"]
    # HParams lists it too, with the value that failed (it had no TensorBoard run at all)
    events = load_events(Path(failed["run_dir"]))
    assert session_status(events) == "STATUS_FAILURE" and logged_hparams(events)["optimizer.lr"] == -1
    assert f"| status | failed |\n| why | {failed['message']} |" in card(events)  # and why, on its card
    diverged = next(j for j in summary["jobs"] if j["status"] == "diverged")
    assert "diverged" in diverged["message"]
    # HParams' Status column: a diverged run is a failure (it was "Unknown", as a run that never ended)
    assert session_status(load_events(Path(diverged["run_dir"]))) == "STATUS_FAILURE"
    assert {session_status(load_events(Path(j["run_dir"]))) for j in summary["jobs"]
            if j["status"] == "completed"} == {"STATUS_SUCCESS"}
    best = max((j for j in summary["jobs"] if j["status"] == "completed"), key=lambda j: j["val_acc"])
    assert summary["best"]["job"] == best["job"]

    # The printed table is sorted by val accuracy, completed jobs first; what its columns leave out above it (as in
    # summary.md): what every job was given, where and how fast they ran aside (helper study61)
    table = result.stdout[result.stdout.index("sorted by val accuracy"):]
    assert table.splitlines()[1] == "Every job: dataset=mnist dataset.val_size=100 trainer.epochs=1."
    assert "\n\nEvery job: dataset=mnist dataset.val_size=100 trainer.epochs=1.\n\n" in (
        sweep_dir / "summary.md").read_text()
    printed = [line.split()[1] for line in table.splitlines()[4:8]]
    assert printed[:2] == ["completed", "completed"] and sorted(printed[2:]) == ["diverged", "failed"]
    assert is_png(sweep_dir / "summary.png")
    assert len(list((sweep_dir / "summary").glob("events.out.tfevents.*"))) == 1

    # The same sweep into the same directory: completed jobs are not trained again.
    completed = [Path(r["run_dir"]) for r in rows if r["status"] == "completed"]
    before = {d: ((d / "metrics.json").read_bytes(), (d / "metrics.json").stat().st_mtime_ns,
                  sorted(p.name for p in d.glob("events.out.tfevents.*"))) for d in completed}
    again = run_main(args, cwd=tmp_path)
    assert again.returncode == 1
    for d in completed:
        assert ((d / "metrics.json").read_bytes(), (d / "metrics.json").stat().st_mtime_ns,
                sorted(p.name for p in d.glob("events.out.tfevents.*"))) == before[d]
        assert "skipped" in (d / "run.log").read_text().splitlines()[-1]
    assert again.stderr.count("Already completed in") == 2
    rows_again, _ = read_summary(sweep_dir)
    assert {row["optimizer.lr"]: row["status"] for row in rows_again} == STATUS_BY_LR
    assert len(list((sweep_dir / "summary").glob("events.out.tfevents.*"))) == 1  # replaced, not added

    # A job that was killed before it wrote metrics.json is listed as failed (standalone summary).
    (completed[0] / "metrics.json").unlink()
    standalone = run_main(["sweep", "--no-plot"], cwd=tmp_path, module="lenet_exp.sweeps")  # named from its parent
    assert standalone.returncode == 1
    _, summary = read_summary(sweep_dir)
    assert summary["sweep_dir"] == str(sweep_dir)  # and its jobs' folders, below: as the sweep's own summary names them
    killed = next(j for j in summary["jobs"] if j["run_dir"] == str(completed[0]))
    assert killed["status"] == "failed" and "no metrics.json" in killed["message"]
    # one cut short is no missing one; a summary.json edited by hand keeps no columns it cannot name
    (completed[0] / "metrics.json").write_text('{"status": "comp')
    (sweep_dir / "summary.json").write_text('{"swept": 5}')
    damaged = run_main(["sweep", "--no-plot"], cwd=tmp_path, module="lenet_exp.sweeps")
    assert damaged.returncode == 1 and "Traceback" not in damaged.stderr, damaged.stderr
    _, summary = read_summary(sweep_dir)
    cut_short = next(j for j in summary["jobs"] if j["run_dir"] == str(completed[0]))
    assert cut_short["message"] == "metrics.json cannot be read as a JSON object (empty, cut short or edited)"
    # a job's own folder is no sweep: its summary would be written among the job's files
    job = run_main([str(completed[1]), "--no-plot"], cwd=tmp_path, module="lenet_exp.sweeps")
    assert job.returncode == 2 and f"is a run's directory, not a sweep's: give the sweep directory that holds it, " \
                                   f"e.g. {sweep_dir}" in job.stderr
    assert not (completed[1] / "summary.csv").exists()
    run = tmp_path / "runs" / "run"  # and a single run's folder is in no sweep
    shutil.copytree(completed[1], run)
    alone = run_main([str(run)], cwd=tmp_path, module="lenet_exp.sweeps")
    assert alone.returncode == 2 and "a single run has no sweep summary (its metrics.json is its record)" in alone.stderr
    shutil.rmtree(run / ".hydra")  # as train() writes it: "No job directories found" (helper api61)
    alone = run_main([str(run)], cwd=tmp_path, module="lenet_exp.sweeps")
    assert alone.returncode == 2 and "a single run has no sweep summary (its metrics.json is its record)" in alone.stderr
    # nor is a folder of single runs a sweep (train()'s too): its runs were numbered as jobs, and a summary written
    runs = run_main([str(run.parent)], cwd=tmp_path, module="lenet_exp.sweeps")
    assert runs.returncode == 2 and f"{run.parent} holds runs but no multirun.yaml, which every sweep writes first" \
        in runs.stderr and not (run.parent / "summary.csv").exists()
    # and a folder of sweeps (outputs/sweeps) is none: "no job directories found" said nothing of them
    sweeps = run_main([str(tmp_path)], cwd=tmp_path, module="lenet_exp.sweeps")
    assert sweeps.returncode == 2 and f"{tmp_path} holds 1 sweep ({sweep_dir}): give the folder of one of them." \
        in sweeps.stderr and not (tmp_path / "summary.csv").exists()
    deep = tmp_path / "checkout" / "outputs" / "sweeps" / "2026-12-06"  # a sweep four levels down (a checkout's)
    deep.mkdir(parents=True)
    (deep / "12-00-00").symlink_to(sweep_dir)
    checkout = run_main([str(tmp_path / "checkout")], cwd=tmp_path, module="lenet_exp.sweeps")
    assert checkout.returncode == 2 and f"holds 1 sweep ({deep / '12-00-00'})" in checkout.stderr, checkout.stderr
    missing = run_main([str(tmp_path / "nope")], cwd=tmp_path, module="lenet_exp.sweeps")
    assert missing.returncode == 2 and f"{tmp_path / 'nope'} does not exist" in missing.stderr
    # a folder without jobs (a mistyped path, a sweep not begun) gets no empty summary
    (tmp_path / "empty").mkdir()
    empty = run_main([str(tmp_path / "empty")], cwd=tmp_path, module="lenet_exp.sweeps")
    assert empty.returncode == 1 and f"No job directories found in {tmp_path / 'empty'}: no summary written." \
        in empty.stderr and not list((tmp_path / "empty").iterdir())


@pytest.mark.parametrize("launcher, output", [("basic", "closed pipe"), ("stacked", "closed pipe"),
                                              ("basic", "full disk")])
def test_a_sweep_whose_output_takes_no_more_still_writes_its_summary_and_exits_as_its_jobs(launcher, output, fast,
                                                                                           tmp_path):
    """`python run.py -m … | head`: each of Hydra's lines printed "--- Logging error ---" and a traceback,
    and the summary's table a BrokenPipeError, which made the completed sweep exit 1. Output sent to a full
    disk (`> file`) did the same, and said the summary could not be written, which it was."""
    if output == "closed pipe":
        reader, writer = os.pipe()
        os.close(reader)  # as `head` does once it has its lines
    else:
        writer = os.open("/dev/full", os.O_WRONLY)
    try:
        result = run_cli(["-m", f"hydra/launcher={launcher}", *fast, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                         cwd=tmp_path, stdout=writer)
    finally:
        os.close(writer)
    assert result.returncode == 0 and "Error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    warned = result.stderr.count("Warning: could not write to the standard output (No space left on device)")
    assert warned == (output == "full disk"), result.stderr
    _, summary = read_summary(tmp_path / "sweep")
    assert [job["status"] for job in summary["jobs"]] == ["completed"] * 2


@pytest.mark.parametrize("closed, sweep", [(2, []), (1, ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                                                            "seed=0,1"])])
def test_a_command_started_with_a_standard_stream_closed_runs_and_writes_nowhere(closed, sweep, fast, tmp_path):
    """`python run.py 2>&-` (a daemon's, a script's) gave run.py a None sys.stderr: every run failed on its
    progress bar's write; a joblib sweep's `>&-` was a traceback of its workers, which inherit the closed stream."""
    open_stream = {1: "stderr", 2: "stdout"}[closed]

    def close_it() -> None:
        as_a_new_command()
        os.close(closed)

    overrides = [o for o in fast if not o.startswith("trainer.progress=")]  # its default: a bar on the stream
    output = tmp_path / "out"
    result = subprocess.run([sys.executable, str(RUN_PY), *overrides, *sweep,
                             f"hydra.{'sweep' if sweep else 'run'}.dir={output}"], cwd=tmp_path, preexec_fn=close_it,
                            **{open_stream: subprocess.PIPE}, text=True, timeout=300)
    said = getattr(result, open_stream)
    assert result.returncode == 0 and "Traceback" not in said, said
    runs = [output] if not sweep else sorted(p.parent for p in output.glob("*/.hydra"))
    assert len(runs) == (2 if sweep else 1)
    assert [metrics(run)["status"] for run in runs] == ["completed"] * len(runs)
    assert not [run for run in runs if "could not" in (run / "run.log").read_text()]  # (the fused kernel compiled)


def test_an_unfinished_job_is_never_the_best_and_one_seed_has_no_spread():
    from lenet_exp.sweeps import JobRecord, best_job, seed_groups

    def job(number, status, seed, val_acc, test_acc=None):
        return JobRecord(job=number, status=status, overrides=[f"seed={seed}"], params={"seed": str(seed)},
                         run_dir=f"/sweep/{number}", val_acc=val_acc, test_acc=test_acc)

    # the interrupted job's partial best val accuracy is the highest, but it has no test result
    jobs = [job(0, "completed", 0, 0.90, 0.89), job(1, "interrupted", 1, 0.95), job(2, "completed", 2, 0.92, 0.91)]
    assert best_job(jobs).job == 2 and best_job(jobs[1:2]) is None
    # nor listed above a completed one in the table (completed jobs first, then by val accuracy)
    from lenet_exp.sweeps.records import Summary
    from lenet_exp.sweeps.table import job_table
    assert [row[0] for row in job_table(Summary("/sweep", jobs, ["seed"], []))[1]] == ["2", "0", "1"]
    groups = seed_groups(jobs, ["seed"])
    assert [(g["n"], g["n_jobs"]) for g in groups] == [(2, 3)]
    assert groups[0]["test_acc_mean"] == pytest.approx(0.90) and groups[0]["test_acc_std"] == pytest.approx(0.01414, abs=1e-5)
    single = seed_groups(jobs[:2], ["seed"])[0]
    assert single["n"] == 1 and single["test_acc_mean"] == 0.89 and single["test_acc_std"] is None


def test_the_settings_over_seeds_are_ranked_by_val_accuracy_not_test():
    """The table of means over seeds was sorted by test accuracy: a setting picked from its top, on the test set."""
    from lenet_exp.sweeps import JobRecord, seed_groups
    from lenet_exp.sweeps.records import Summary
    from lenet_exp.sweeps.table import report_text

    def job(number, lr, seed, val_acc, test_acc):
        return JobRecord(job=number, status="completed", overrides=[f"optimizer.lr={lr}", f"seed={seed}"],
                         params={"optimizer.lr": lr, "seed": str(seed)}, run_dir=f"/sweep/{number}", val_acc=val_acc,
                         test_acc=test_acc)

    jobs = [job(0, "0.1", 0, 0.90, 0.96), job(1, "0.1", 1, 0.91, 0.95), job(2, "0.2", 0, 0.95, 0.90),
            job(3, "0.2", 1, 0.94, 0.91)]
    groups = seed_groups(jobs, ["optimizer.lr", "seed"])
    assert [group["params"]["optimizer.lr"] for group in groups] == ["0.2", "0.1"]  # val 0.945 over 0.905
    text = report_text(Summary("/sweep", jobs, ["optimizer.lr", "seed"], groups, {"completed": 4}, "now"))
    assert "Test accuracy over seeds, grouped by optimizer.lr, sorted by val accuracy:" in text
    evaluations = [dataclasses.replace(job, val_acc=None) for job in jobs]  # an evaluation sweep's: test only
    assert [group["params"]["optimizer.lr"] for group in seed_groups(evaluations, ["optimizer.lr", "seed"])] == \
        ["0.1", "0.2"]


def test_a_large_sweep_prints_the_best_rows_of_its_tables_and_summary_md_holds_them_all():
    """200 jobs printed 240 rows: the terminal's last screen held the worst settings (helper scale55)."""
    from lenet_exp.sweeps import JobRecord, seed_groups
    from lenet_exp.sweeps.records import Summary
    from lenet_exp.sweeps.table import CONSOLE_ROWS, report_text

    jobs = [JobRecord(job=number, status="completed", overrides=[f"optimizer.lr={number // 2}", f"seed={number % 2}"],
                      params={"optimizer.lr": str(number // 2), "seed": str(number % 2)}, run_dir=f"/sweep/{number}",
                      val_acc=number / 100, test_acc=number / 100) for number in range(2 * CONSOLE_ROWS + 6)]
    summary = Summary("/sweep", jobs, ["optimizer.lr", "seed"], seed_groups(jobs, ["optimizer.lr", "seed"]),
                      {"completed": len(jobs)}, "now")
    printed, markdown = report_text(summary), report_text(summary, markdown=True)
    assert f"… and {CONSOLE_ROWS + 6} more (every row: summary.md)" in printed  # of the jobs
    assert "… and 3 more (every row: summary.md)" in printed  # of the settings
    lines = printed.split("\n")
    assert lines[3].split()[:2] == [str(len(jobs) - 1), "completed"]  # the best job first
    assert not [line for line in lines if line.split()[:2] == ["0", "completed"]]  # the worst: in summary.md
    assert all(f"| {number} | completed |" in markdown for number in range(len(jobs))) and "… and" not in markdown


def test_jobs_that_failed_alike_are_listed_once():
    """An Optuna smoke study listed the same 300-character error for each of 20 one-cycle trials."""
    from lenet_exp.sweeps import JobRecord
    from lenet_exp.sweeps.records import Summary
    from lenet_exp.sweeps.table import report_text

    jobs = [JobRecord(job=number, status="failed", overrides=[], params={}, run_dir=f"/sweep/{number}",
                      message="scheduler.pct_start: too short" if number else "no data") for number in range(4)]
    text = report_text(Summary("/sweep", jobs, [], [], {"failed": 4}, "now"))
    assert text.endswith("Jobs that did not complete:\n  job 0 failed: no data [/sweep/0]\n"
                         "  jobs 1, 2, 3 failed: scheduler.pct_start: too short"), text


def test_the_printed_table_shortens_swept_paths_and_says_once_how_interrupted_jobs_go_on():
    """An evaluation sweep's whole checkpoint paths made each row two terminal lines long; each interrupted job's
    message repeated the sweep's command (a stopped group of 8: about 100 lines of it)."""
    from lenet_exp.sweeps import JobRecord
    from lenet_exp.sweeps.records import Summary
    from lenet_exp.sweeps.table import report_text

    ckpts = [f"/home/me/sweeps/s/{job}/checkpoints/best.pt" for job in ("0_optimizer.lr=0.001", "1_optimizer.lr=0.002")]
    stopped = "Interrupted by signal 2 during epoch 1; no checkpoint was written yet, so running again starts over."
    jobs = [JobRecord(job=number, status="interrupted", overrides=[], params={"ckpt": ckpt}, run_dir=f"/sweep/{number}",
                      message=f"{stopped} Continue with the sweep's command and hydra.sweep.dir=/sweep, or this job "
                              f"alone with `python run.py resume=/sweep/{number}`.") for number, ckpt in enumerate(ckpts)]
    summary = Summary("/sweep", jobs, ["ckpt"], [], {"interrupted": 2}, "now")
    printed = report_text(summary)
    assert "\n0    interrupted  …/0_optimizer.lr=0.001/…\n1    interrupted  …/1_optimizer.lr=0.002/…\n" in printed, printed
    assert printed.endswith(f"  jobs 0, 1 interrupted: {stopped}\n  The sweep's command with its hydra.sweep.dir= "
                            f"continues the interrupted jobs (each one's metrics.json says how)."), printed
    recorded = report_text(summary, markdown=True)  # summary.md: the whole paths, and each job's own command
    assert all(ckpt in recorded for ckpt in ckpts) and "`python run.py resume=/sweep/1`" in recorded
    # folders of which one holds the other, or that share only the root, are kept whole
    for roots in (["/data", "/data/fashion"], ["/a/x.png", "/b/y.png"]):
        jobs = [JobRecord(job=number, status="completed", overrides=[], params={"dataset.root": root}, run_dir="")
                for number, root in enumerate(roots)]
        printed = report_text(Summary("/sweep", jobs, ["dataset.root"], [], {"completed": 2}, "now"))
        assert all(f"completed  {root}" in printed for root in roots) and "…" not in printed, printed


def test_long_values_on_the_plot_keep_what_tells_them_apart():
    from lenet_exp.sweeps.plot import short_labels

    checkpoints = [f"/home/me/sweep/{job}/checkpoints/best.pt" for job in ("0_lr=0.001,seed=0", "1_lr=0.003,seed=0")]
    assert short_labels(checkpoints) == ["…0_lr=0.001…", "…1_lr=0.003…"]
    assert short_labels(["none", "cosine"]) == ["none", "cosine"]
    assert all(len(label) <= 24 for label in short_labels(["a" * 30 + "x" * 40, "a" * 30 + "y" * 40]))

def test_a_plot_of_stopped_jobs_shows_each_one_within_its_axes(tmp_path):
    # a Ctrl-C before any job completed: two had a best val accuracy, two had not started
    from lenet_exp.sweeps.plot import val_acc_figure
    from lenet_exp.sweeps.records import summarize

    stopped = {"status": "interrupted", "epochs_done": 1, "val": {"acc": 0.97, "loss": 0.1}}
    fake_sweep(tmp_path, [(["optimizer.lr=0.001"], stopped), (["optimizer.lr=0.003"], {**stopped, "val": None}),
                          (["optimizer.lr=0.01"], None), (["optimizer.lr=0.03"], None)])
    (ax,) = val_acc_figure(summarize(tmp_path)).axes
    (points,) = ax.collections
    assert points.get_offsets().tolist() == [[0.001, 0.97]]
    low, high = ax.get_xlim()
    assert low < 0.001 and high > 0.03  # no job on the frame or beyond it
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["interrupted (best so far)", "interrupted",
                                                                         "failed"]


def test_a_sweep_named_in_characters_the_font_lacks_is_summarised_without_warnings(tmp_path):
    from lenet_exp.sweeps import write_summary

    sweep_dir = tmp_path / "学習率"  # the plot's title; DejaVu Sans has no CJK
    fake_sweep(sweep_dir, [(["optimizer.lr=0.001"], {"status": "interrupted", "val": {"acc": 0.97, "loss": 0.1}})])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_summary(sweep_dir, out=io.StringIO())
    assert is_png(sweep_dir / "summary.png") and load_events(sweep_dir / "summary").Tags()["images"]
    assert [str(w.message) for w in caught] == []


def test_values_too_long_for_a_folder_name_leave_the_jobs_named_by_number(tmp_path):
    long = "x" * 300  # a file system takes names of up to 255 bytes
    result = run_main(["-m", f"dataset.name={long},short", "trainer.epochs=0", "hydra.sweep.dir=long",
                       "hydra.callbacks.sweep_summary.plot=false"], cwd=tmp_path)
    assert "Traceback" not in result.stderr and "named by their number only" in result.stdout
    assert [d.name for d in job_dirs(tmp_path / "long")] == ["0", "1"]


def fake_sweep(sweep_dir: Path, jobs: list[tuple[list[str], dict | None]]) -> None:
    """Job directories as a sweep leaves them, without training: (overrides, metrics.json or None)."""
    for number, (overrides, result) in enumerate(jobs):
        (sweep_dir / str(number) / ".hydra").mkdir(parents=True)
        (sweep_dir / str(number) / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        if result is not None:
            (sweep_dir / str(number) / "metrics.json").write_text(json.dumps(result))


def test_a_summary_of_jobs_whose_records_were_edited_beyond_reading_lists_them_without_a_traceback(tmp_path):
    """A metrics.json nested deeper than Python reads, or with an integer no float holds, ended the summary in a
    RecursionError or OverflowError."""
    fake_sweep(tmp_path / "sweep", [(["seed=0"], {"status": "completed", "val": {"acc": 0.5}}), (["seed=1"], None),
                                    (["seed=2"], None)])
    (tmp_path / "sweep" / "1" / "metrics.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "sweep" / "2" / "metrics.json").write_text(
        '{"status": "completed", "val": {"acc": 0.6}, "wall_time_s": 1' + "0" * 4000 + "}")
    from lenet_exp.sweeps import write_summary

    jobs = {job.job: job for job in write_summary(tmp_path / "sweep", plot=False, tensorboard=False).jobs}
    assert (jobs[1].status, jobs[2].status, jobs[2].val_acc, jobs[2].wall_time_s) == ("failed", "completed", 0.6, None)


def test_a_summary_reads_values_no_run_records_as_missing(tmp_path):
    """A metrics.json edited to an accuracy of 1e308 ranked its job the sweep's best, printed a column of 300
    digits and drew summary.png's axis to it; an epoch count of 400 digits printed as such."""
    fake_sweep(tmp_path / "sweep", [
        (["seed=0"], {"status": "completed", "val": {"acc": 1e308, "loss": -1.0}, "test": {"acc": 1.5},
                      "epochs_done": 10 ** 400, "epochs": 10, "best_epoch": -3, "wall_time_s": -5.0}),
        (["seed=1"], {"status": "completed", "val": {"acc": 0.9, "loss": 0.3}, "test": {"acc": 0.8},
                      "epochs_done": 10, "epochs": 10, "best_epoch": 4, "wall_time_s": 5.0})])
    from lenet_exp.sweeps import write_summary
    from lenet_exp.sweeps.records import best_job

    summary = write_summary(tmp_path / "sweep", tensorboard=False)
    edited, kept = sorted(summary.jobs, key=lambda job: job.job)
    assert (edited.val_acc, edited.val_loss, edited.test_acc, edited.epochs_done, edited.best_epoch,
            edited.wall_time_s) == (None, None, None, None, None, None)
    assert (kept.val_acc, kept.val_loss, kept.test_acc, kept.epochs_done, kept.best_epoch, kept.wall_time_s) == (
        0.9, 0.3, 0.8, 10, 4, 5.0)
    assert best_job(summary.jobs) is kept and not summary.unwritten and (tmp_path / "sweep" / "summary.png").is_file()


def test_a_summary_prints_the_control_characters_of_an_edited_record_as_escapes(tmp_path):
    """A message or status edited to hold a newline and terminal escapes faked a line of the summary, coloured
    it or cleared the screen."""
    from lenet_exp.sweeps import write_summary
    from lenet_exp.sweeps.table import report_text

    fake_sweep(tmp_path, [(["seed=0", '"optimizer.lr=1\\e[31m"'], {"status": "failed\x1b[2J",  # YAML's escape
                                                                 "message": "boom\n[job 1] ok \x1b[31mé"}),
                          (["seed=1", "optimizer.lr=2"], {"status": "completed", "val": {"acc": 0.5}})])
    summary = write_summary(tmp_path, plot=False, tensorboard=False)
    text = report_text(summary)
    assert "\x1b" not in text and "\n[job 1]" not in text
    assert "failed\\x1b[2J" in text and "boom\\n[job 1] ok \\x1b[31mé" in text, text
    assert {job.job: job.params["optimizer.lr"] for job in summary.jobs} == {0: "1\\x1b[31m", 1: "2"}  # a column


@pytest.mark.parametrize("values", [
    ["0", "0.0001", "0.01"], ["0", "0.001", "0.1", "1.0"], ["0", "0.01"],  # a grid's values, each labelled
    # a study's values: labelled by the axis
    ["0.0021234567", "0.0034567891", "0.0061234567", "0.0123456789", "0.0241234567"],
    ["0.0021234567", "0.0034567891", "0.0061234567", "0.0091234567"],
    ["1.234567e-06", "3.4567891e-05", "0.00061234567", "0.0123456789", "0.0941234567"]])
def test_tick_labels_of_a_swept_number_do_not_overlap(tmp_path, values):
    """weight_decay=0,0.0001,0.01 on a linear axis wrote "0" and "0.0001" over each other; a study's learning
    rates over about a decade were labelled 2×10⁻³, 3×10⁻³, 4×10⁻³ … into each other."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lenet_exp.sweeps.plot import val_acc_figure
    from lenet_exp.sweeps.records import summarize

    fake_sweep(tmp_path, [([f"optimizer.weight_decay={value}"], {"status": "completed", "val": {"acc": 0.9}})
                          for value in values])
    figure = val_acc_figure(summarize(tmp_path))
    renderer = FigureCanvasAgg(figure).get_renderer()
    (ax,) = figure.axes
    low, high = ax.get_xlim()
    labels = [label for label in ax.get_xticklabels(which="both")
              if label.get_text() and label.get_visible() and low <= label.get_position()[0] <= high]
    if all(len(value) <= 8 for value in values):
        assert [label.get_text() for label in labels] == values
    assert len(labels) >= 2 and all("×" not in label.get_text() for label in labels)
    boxes = sorted((label.get_window_extent(renderer) for label in labels), key=lambda box: box.x0)
    assert all(left.x1 < right.x0 for left, right in zip(boxes, boxes[1:])), [label.get_text() for label in labels]


def test_seeds_swept_with_a_setting_are_its_repeats_on_the_plot_not_a_panel_of_their_own(tmp_path):
    """lr x seed drew a panel of val accuracy against the seed, and the lr panel showed each job alone: the
    mean ± std over seeds that the table ranks settings by was nowhere on the plot."""
    from matplotlib.collections import PathCollection

    from lenet_exp.sweeps.plot import val_acc_figure
    from lenet_exp.sweeps.records import summarize

    accuracy = {("0.001", "0"): 0.90, ("0.001", "1"): 0.92, ("0.001", "2"): 0.94, ("0.01", "0"): 0.80,
                ("0.01", "1"): 0.84, ("0.01", "2"): None}  # the last one failed: its setting's mean is of two
    fake_sweep(tmp_path, [([f"optimizer.lr={lr}", f"seed={seed}"],
                           {"status": "completed", "val": {"acc": acc}, "test": {"acc": acc}} if acc else
                           {"status": "failed"}) for (lr, seed), acc in accuracy.items()])
    (ax,) = val_acc_figure(summarize(tmp_path)).axes
    assert ax.get_xlabel() == "optimizer.lr"
    points = [point for collection in ax.collections if isinstance(collection, PathCollection)
              for point in collection.get_offsets().tolist()]
    assert len(points) == 5  # each completed job's own point
    means = {}
    for container in ax.containers:  # an errorbar's: its mean's marker, its caps, its bar
        mean_marker, _, (bar,) = container.lines
        (x,), (y,) = mean_marker.get_data()
        (_, (_, top)), = bar.get_segments()
        means[x] = (y, top - y)
    assert means == {0.001: (pytest.approx(0.92), pytest.approx(0.02)),
                     0.01: (pytest.approx(0.82), pytest.approx(0.028284, abs=1e-5))}
    assert "mean ± std over seeds" in [text.get_text() for text in ax.get_legend().get_texts()]
    # a job without the key (its default): its setting's mean stands with its points
    completed = {"status": "completed", "val": {"acc": 0.9}, "test": {"acc": 0.9}}
    fake_sweep(tmp_path / "default", [(overrides, completed) for overrides in (
        ["optimizer=sgd", "seed=0"], ["optimizer=adam", "seed=1"], ["seed=2"])])
    (ax,) = val_acc_figure(summarize(tmp_path / "default")).axes
    assert sorted(container.lines[0].get_data()[0][0] for container in ax.containers) == [0, 1, 2]
    # two keys besides the seed: the settings of one lr would stand at one place on its panel, not to be told
    # apart; a panel of their own shows each setting's mean ± std, best first, as the table ranks them
    fake_sweep(tmp_path / "two", [([f"optimizer.lr={lr}", f"model.dropout={dropout}", f"seed={seed}"],
                                   {"status": "completed", "val": {"acc": acc + seed / 100}, "test": {"acc": acc}})
                                  for (lr, dropout), acc in {("0.001", "0.1"): 0.90, ("0.001", "0.2"): 0.92,
                                                             ("0.01", "0.1"): 0.80, ("0.01", "0.2"): 0.85}.items()
                                  for seed in (0, 1)])
    *panels, settings = val_acc_figure(summarize(tmp_path / "two")).axes
    assert [ax.containers for ax in panels] == [[], []] and settings.get_xlabel() == "optimizer.lr, model.dropout"
    assert [label.get_text() for label in settings.get_xticklabels()] == ["0.001, 0.2", "0.001, 0.1", "0.01, 0.2",
                                                                          "0.01, 0.1"]
    means = [container.lines[0].get_data()[1][0] for container in settings.containers]
    assert means == pytest.approx([0.925, 0.905, 0.855, 0.805])
    # 40 settings: their labels ran into one black band (helper scale55); the best are drawn, and it says so
    fake_sweep(tmp_path / "many", [([f"optimizer.lr={lr}", f"model.dropout={dropout}", f"seed={seed}"],
                                    {"status": "completed", "val": {"acc": lr / 100 + dropout / 1000},
                                     "test": {"acc": 0.5}})
                                   for lr in range(20) for dropout in (0, 1) for seed in (0, 1)])
    *_, settings = val_acc_figure(summarize(tmp_path / "many")).axes
    assert settings.get_xlabel() == "optimizer.lr, model.dropout (the best 15 of 40)"
    assert [label.get_text() for label in settings.get_xticklabels()][:2] == ["19, 1", "19, 0"]
    assert len(settings.containers) == 15
    fake_sweep(tmp_path / "seeds", [([f"seed={seed}"], {"status": "completed", "val": {"acc": 0.9}}) for seed in "01"])
    (ax,) = val_acc_figure(summarize(tmp_path / "seeds")).axes  # seeds alone: how far they spread is the point
    assert ax.get_xlabel() == "seed" and not ax.containers


def test_a_sweep_continued_on_another_device_or_data_path_keeps_each_settings_seeds_together(tmp_path):
    """Seeds 0-1 on the CPU with 1 thread, seed 2 later with 2 threads from another path to the data (as the
    docs allow a continued sweep): the table grouped by lr and the thread count (rows of 2/2 and 1/1), and the
    plot drew panels of both, where each lr is one setting over three seeds."""
    from lenet_exp.sweeps.plot import val_acc_figure
    from lenet_exp.sweeps.records import summarize
    from lenet_exp.sweeps.table import report_text

    def job(lr: str, seed: int) -> tuple[list[str], dict]:
        where = ["device.threads=1", "dataset.root=/data"] if seed < 2 else ["device.threads=2", "dataset.root=/d"]
        acc = 0.9 + seed / 100 + (lr == "0.003") / 20  # (an accuracy above 1 is read as none)
        return [f"seed={seed}", f"optimizer.lr={lr}", *where], {"status": "completed", "val": {"acc": acc},
                                                                "test": {"acc": acc}}

    fake_sweep(tmp_path / "sweep", [job(lr, seed) for seed in range(3) for lr in ("0.001", "0.003")])
    summary = summarize(tmp_path / "sweep")
    assert summary.swept == ["seed", "optimizer.lr", "device.threads", "dataset.root"]  # the jobs' table shows them
    assert [(group["params"], group["n"], group["seeds"]) for group in summary.groups] == [
        ({"optimizer.lr": "0.003"}, 3, ["0", "1", "2"]), ({"optimizer.lr": "0.001"}, 3, ["0", "1", "2"])]
    assert "Test accuracy over seeds, grouped by optimizer.lr, sorted by val accuracy:" in report_text(summary)
    (ax,) = val_acc_figure(summary).axes
    assert ax.get_xlabel() == "optimizer.lr" and len(ax.containers) == 2  # each lr's mean ± std over its seeds
    # seeds swept with the thread count: each seed's two jobs are one run, counted once (it averaged 4 "seeds")
    fake_sweep(tmp_path / "grid", [([f"seed={seed}", f"device.threads={threads}"], job("0.001", seed)[1])
                                   for seed in (0, 1) for threads in (1, 2)])
    (group,) = summarize(tmp_path / "grid").groups
    assert (group["n"], group["n_jobs"], group["seeds"], group["jobs"]) == (2, 2, ["0", "1"], [0, 1, 2, 3])
    assert group["test_acc_mean"] == pytest.approx(0.905) and group["test_acc_std"] == pytest.approx(0.00707, abs=1e-5)
    # the eval batch size is a setting: under trainer.limit_batches it decides which images a job is tested on
    fake_sweep(tmp_path / "capped", [([f"seed={seed}", f"trainer.eval_batch_size={size}"], job("0.001", seed)[1])
                                     for seed in (0, 1) for size in (100, 1000)])
    assert [group["params"] for group in summarize(tmp_path / "capped").groups] == [
        {"trainer.eval_batch_size": "100"}, {"trainer.eval_batch_size": "1000"}]
    # a speed study, which sweeps nothing else: its panel, and no means of one setting run twice
    fake_sweep(tmp_path / "speed", [([f"device.threads={threads}"], job("0.001", 0)[1]) for threads in (1, 2)])
    summary = summarize(tmp_path / "speed")
    assert [ax.get_xlabel() for ax in val_acc_figure(summary).axes] == ["device.threads"]
    assert "Test accuracy" not in report_text(summary)


def test_summary_md_is_written_in_utf8_whatever_the_locale(tmp_path):
    """Its "mean ± std" in the C locale's ASCII: a UnicodeEncodeError, and no summary.md."""
    completed = {"status": "completed", "val": {"acc": 0.9}, "test": {"acc": 0.9}}
    fake_sweep(tmp_path / "sweep", [([f"seed={seed}"], completed) for seed in (0, 1)])
    env = {**os.environ, "PYTHONUTF8": "0", "LC_ALL": "C", "PYTHONIOENCODING": "utf-8"}
    summarise = ("import sys; from lenet_exp.sweeps import write_summary; "
                 "write_summary(sys.argv[1], plot=False, tensorboard=False)")
    result = subprocess.run([sys.executable, "-c", summarise, str(tmp_path / "sweep")], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0 and "Could not write" not in result.stdout, result.stdout + result.stderr
    assert "| 2/2 | 0.9000 ± 0.0000 |" in (tmp_path / "sweep" / "summary.md").read_text(encoding="utf-8")


def test_a_study_drawing_from_a_linear_interval_is_plotted_on_a_linear_axis(tmp_path):
    """Optuna's dropout drawn from interval(0.0, 0.5) spans more than a decade (0.012 to 0.45), which put it on
    a log axis, as a learning rate drawn with tag(log, interval(...)) is."""
    from omegaconf import OmegaConf

    from lenet_exp.sweeps.plot import val_acc_figure
    from lenet_exp.sweeps.records import summarize

    OmegaConf.save({"hydra": {"sweeper": {"params": {"optimizer.lr": "tag(log, interval(1e-4, 1e-2))",
                                                     "model.dropout": "interval(0.0, 0.5)"}}}},
                   tmp_path / "multirun.yaml")
    completed = {"status": "completed", "val": {"acc": 0.9}}
    fake_sweep(tmp_path, [([f"optimizer.lr={lr}", f"model.dropout={dropout}"], completed)
                          for lr, dropout in (("0.000123", "0.0123"), ("0.00456", "0.2345"), ("0.00789", "0.4567"))])
    axes = val_acc_figure(summarize(tmp_path)).axes
    assert {ax.get_xlabel(): ax.get_xscale() for ax in axes} == {"optimizer.lr": "log", "model.dropout": "linear"}


def test_a_parameter_that_some_trials_lack_is_plotted_as_numbers_for_those_that_have_it(tmp_path):
    """A study of a custom search space draws sgd's momentum for its sgd trials alone: the momentum panel was of
    text, the values in the order drawn and the other trials at an empty label among them."""
    from matplotlib.collections import PathCollection

    from lenet_exp.sweeps.plot import val_acc_figure
    from lenet_exp.sweeps.records import summarize

    completed = {"status": "completed", "val": {"acc": 0.9}}
    fake_sweep(tmp_path, [(overrides, completed) for overrides in (
        ["optimizer=sgd", "optimizer.momentum=0.95"], ["optimizer=adam"], ["optimizer=sgd", "optimizer.momentum=0.8"])])
    _, momentum = val_acc_figure(summarize(tmp_path)).axes
    assert momentum.get_xlabel() == "optimizer.momentum (1 job without it)"
    points = [point for collection in momentum.collections if isinstance(collection, PathCollection)
              for point in collection.get_offsets().tolist()]
    assert sorted(points) == [[0.8, 0.9], [0.95, 0.9]]  # at their values, not at the categories 0, 1 and 2


def test_a_summary_written_without_its_plot_or_tensorboard_run_leaves_no_earlier_one_behind(tmp_path):
    """A sweep run again with hydra.callbacks.sweep_summary.plot=false and tensorboard=false kept the first
    run's summary.png and TensorBoard table, of other results, beside its new summary.json."""
    from lenet_exp.sweeps import write_summary
    from lenet_exp.sweeps.report import SUMMARY_RUN

    fake_sweep(tmp_path, [([f"optimizer.lr={lr}"], {"status": "completed", "val": {"acc": acc}})
                          for lr, acc in (("0.001", 0.5), ("0.003", 0.6))])
    write_summary(tmp_path)
    assert is_png(tmp_path / "summary.png") and list((tmp_path / SUMMARY_RUN).glob("events.out.tfevents.*"))
    (tmp_path / "1" / "metrics.json").write_text(json.dumps({"status": "completed", "val": {"acc": 0.9}}))
    write_summary(tmp_path, plot=False, tensorboard=False)
    assert not (tmp_path / "summary.png").exists() and not list((tmp_path / SUMMARY_RUN).glob("events.out.tfevents.*"))
    assert [job["val_acc"] for job in json.loads((tmp_path / "summary.json").read_text())["jobs"]] == [0.5, 0.9]


def test_at_a_sweeps_end_a_running_job_was_killed_and_an_interrupted_one_keeps_its_message(tmp_path):
    from lenet_exp.sweeps import write_summary
    from lenet_exp.sweeps.table import report_text

    stopped = "Interrupted by signal 2 during epoch 2; the last checkpoint is after epoch 1. Continue with ..."
    fake_sweep(tmp_path, [(["seed=0"], {"status": "running", "epochs_done": 1}),
                          (["seed=1"], {"status": "interrupted", "message": stopped, "epochs_done": 1})])
    for final in (False, True):
        summary = write_summary(tmp_path, final=final, plot=False, tensorboard=False)
        jobs = {job.job: job for job in summary.jobs}
        assert (jobs[1].status, jobs[1].message) == ("interrupted", stopped)
        assert jobs[0].status == ("failed" if final else "running")
    assert "stopped while running after epoch 1 (killed?)" in jobs[0].message
    assert "Test accuracy" not in report_text(summary)  # over seeds: there is no test result to average


EARLIER = {"completed": {"status": "completed", "val": {"acc": 0.9}},
           "failed": {"status": "failed", "message": "earlier failure"},
           "interrupted": {"status": "interrupted", "message": "earlier stop"},
           "running": {"status": "running", "epochs_done": 1}}


@pytest.mark.parametrize("earlier, checkpoint, now, expected", [
    (None, False, "failed", ("failed", "now")),
    ("completed", False, "failed", ("completed", None)),  # its results stay, the failure beside them
    ("completed", False, "interrupted", ("completed", None)),
    ("failed", False, "failed", ("failed", "now")),  # the newest failure's message
    ("failed", False, "interrupted", ("interrupted", "now")),
    ("failed", False, "not started", ("failed", "earlier failure")),  # not started this time: its record says more
    ("interrupted", False, "not started", ("interrupted", "earlier stop")),
    ("interrupted", True, "interrupted", ("interrupted", "earlier stop")),  # stopped again before it saved
    # resumable still (a study resumes only stopped trials), and said how (helper mismatch59)
    ("interrupted", True, "failed", ("interrupted", "now. Continue with train(cfg, run_dir={!r}) and the same cfg.")),
    ("interrupted", False, "failed", ("failed", "now")),
    ("running", False, "not started", ("not started", "now")),  # a killed run's "running" says nothing true
])
def test_a_jobs_record_of_a_failure_keeps_what_an_earlier_run_wrote_where_it_says_more(tmp_path, earlier, checkpoint,
                                                                                      now, expected):
    from omegaconf import OmegaConf

    from lenet_exp.app import record_failure
    from lenet_exp.sweeps.records import LATER_FAILURE

    if earlier:
        (tmp_path / "metrics.json").write_text(json.dumps({"task": "train", **EARLIER[earlier]}))
    if checkpoint:
        (tmp_path / "checkpoints").mkdir()
        (tmp_path / "checkpoints" / "last.pt").write_bytes(b"a checkpoint")
    record_failure(tmp_path, OmegaConf.create({"task": "train", "seed": 0}), "now", status=now)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    status, message = expected
    assert (metrics["status"], metrics.get("message")) == (status, message and message.format(str(tmp_path)))
    if earlier == "completed":
        assert metrics["val"] == {"acc": 0.9} and metrics.get(LATER_FAILURE) == ("now" if now == "failed" else None)
    if earlier is None:
        assert metrics["config"] == {"task": "train", "seed": 0}


def test_a_stop_while_the_summary_is_written_lets_it_finish_first(fast, tmp_path, monkeypatch):
    """A Ctrl-C or SIGTERM in the second or so that the summary takes after the last job: run.py died of it,
    without a word, summary.png half written (its temporary file left) and no TensorBoard summary run."""
    import lenet_exp.sweeps.report as report

    write_summary = report.write_summary

    def stopped_as_it_is_written(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # its handler runs here, as the summary begins
        return write_summary(*args, **kwargs)

    monkeypatch.setattr(report, "write_summary", stopped_as_it_is_written)
    sweep_dir = tmp_path / "sweep"
    result = run_main(["-m", *fast, "seed=0,1", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 128 + signal.SIGTERM and "Traceback" not in result.stderr, result.stderr[-2000:]
    # one line: the stop, and that it interrupted nothing
    assert result.stderr.rstrip().endswith("\nStopped by signal 15 after the sweep's jobs ended; every job of the sweep "
                                           "had completed."), result.stderr[-2000:]
    assert [row["status"] for row in read_summary(sweep_dir)[0]] == ["completed"] * 2
    assert is_png(sweep_dir / "summary.png") and load_events(sweep_dir / "summary").Tags()["images"]
    assert not list(sweep_dir.glob(".*.tmp"))


def test_a_summary_printed_where_the_output_cannot_show_its_characters(fast, tmp_path):
    """PYTHONIOENCODING=ascii: the ± of a seed group's mean ± std ended the summary with a traceback (in
    `python -m lenet_exp.sweeps`) or "Could not summarise the sweep" (at the sweep's end)."""
    sweep_dir, ascii_only = tmp_path / "sweep", {"PYTHONIOENCODING": "ascii"}
    result = run_cli(["-m", *fast, "seed=0,1", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path, env=ascii_only)
    again = run_cli(["-m", "lenet_exp.sweeps", str(sweep_dir)], cwd=tmp_path, env=ascii_only, script=None)
    for printed in (result, again):
        assert printed.returncode == 0 and "Traceback" not in printed.stderr, printed.stderr[-2000:]
        assert re.search(r"2/2 +0\.\d{4} \? 0\.\d{4}", printed.stdout), printed.stdout


def test_a_summary_that_fails_says_how_to_write_it_again(fast, tmp_path, monkeypatch):
    """It said only "Could not summarise the sweep in …", and the jobs had completed."""
    import lenet_exp.sweeps.report as report

    def failing(*args, **kwargs):
        raise RuntimeError("a bug in the summary")

    monkeypatch.setattr(report, "write_summary", failing)
    sweep_dir = tmp_path / "sweep"
    result = run_main(["-m", *fast, "seed=0", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 1 and (f"Could not summarise the sweep in {sweep_dir}: RuntimeError: a bug in the "
                                       f"summary. Its jobs' folders hold their results; `python -m lenet_exp.sweeps "
                                       f"{sweep_dir}` summarises them again.") in result.stderr, result.stderr[-2000:]
    monkeypatch.undo()
    again = run_main([str(sweep_dir)], cwd=tmp_path, module="lenet_exp.sweeps")
    assert again.returncode == 0 and read_summary(sweep_dir)[0][0]["status"] == "completed", again.stderr[-2000:]


def test_a_sweep_kept_inside_another_is_no_part_of_its_summary(tmp_path):
    """An evaluation sweep of a sweep's checkpoints, kept in that sweep's folder: its jobs were summed up as
    the outer sweep's own, under the same numbers, with a ckpt column."""
    from lenet_exp.sweeps.records import summarize

    completed = {"status": "completed", "val": {"acc": 0.9, "loss": 0.3}, "test": {"acc": 0.9, "loss": 0.3}}
    fake_sweep(tmp_path, [(["optimizer.lr=0.001"], completed), (["optimizer.lr=0.003"], completed)])
    fake_sweep(tmp_path / "evals", [([f"ckpt={tmp_path / '0' / 'checkpoints' / 'best.pt'}", "task=eval"], completed)])
    (tmp_path / "evals" / "multirun.yaml").write_text("hydra: {}\n")
    summary = summarize(tmp_path)
    assert [job.run_dir for job in summary.jobs] == [str(tmp_path / "0"), str(tmp_path / "1")]
    assert summary.swept == ["optimizer.lr"]


def test_tensorboard_summary_run_reads_back(tmp_path):
    from lenet_exp.sweeps import write_summary
    from lenet_exp.sweeps.table import report_text

    def completed(val_acc, test_acc):
        return {"status": "completed", "val": {"acc": val_acc, "loss": 0.3}, "test": {"acc": test_acc, "loss": 0.3},
                "epochs_done": 1, "epochs": 1, "wall_time_s": 1.0}

    sweep_dir = tmp_path / "sweep"
    fake_sweep(sweep_dir, [(["optimizer.lr=0.001", "seed=0"], completed(0.91, 0.90)),
                           (["optimizer.lr=0.001", "seed=1"], completed(0.93, 0.92)),
                           (["optimizer.lr=0.003", "seed=0"], {"status": "diverged", "message": "loss is nan"}),
                           (["optimizer.lr=0.003", "seed=1"], None)])
    for _ in range(2):  # the second time as a re-launched sweep: its summary replaces the first
        out = io.StringIO()
        summary = write_summary(sweep_dir, out=out)
    assert "Could not write" not in out.getvalue() and is_png(sweep_dir / "summary.png")
    assert len(list((sweep_dir / "summary").glob("events.out.tfevents.*"))) == 1

    events = load_events(sweep_dir / "summary")
    assert events.Tags()["images"] == ["sweep/val_acc_vs_params"] and events.Tags()["tensors"] == ["sweep/summary"]
    (image,) = events.Images("sweep/val_acc_vs_params")
    png = (sweep_dir / "summary.png").read_bytes()
    assert image.step == 0 and image.encoded_image_string[:8] == png[:8]  # a PNG of the plot's size
    assert (image.width, image.height) == (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big"))
    (text,) = events.Tensors("sweep/summary")
    assert events.SummaryMetadata("sweep/summary").plugin_data.plugin_name == "text"
    markdown = text.tensor_proto.string_val[0].decode()
    assert text.step == 0 and markdown == report_text(summary, markdown=True)
    assert "| job | status | optimizer.lr | seed | val_acc |" in markdown
    assert "| 0.001 | 2/2 | 0.9100 ± 0.0141 | 0.9200 ± 0.0141 | 0,1 |" in markdown
    assert "job 2 diverged: loss is nan" in markdown and "job 3 failed: no metrics.json" in markdown

    write_summary(sweep_dir, plot=False, out=io.StringIO())  # no plot: the table alone
    assert len(list((sweep_dir / "summary").glob("events.out.tfevents.*"))) == 1
    events = load_events(sweep_dir / "summary")
    assert events.Tags()["images"] == [] and events.Tags()["tensors"] == ["sweep/summary"]


# ------------------------------------------------------------------------------ parallel launchers
@pytest.fixture(scope="module")
def parallel_sweeps(tiny_root, tmp_path_factory):
    """A joblib and a submitit_local sweep, each of 2 jobs, started at the same moment in one folder: the
    joblib one a process on a terminal, with progress bars asked for; the submitit one in this process
    (:func:`conftest.run_main`), as its jobs are processes of submitit's own."""
    cwd = tmp_path_factory.mktemp("parallel")
    joblib, terminal = start_on_terminal(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1",
                                          *fast_overrides(tiny_root), "trainer.progress=true"], cwd)
    with ThreadPoolExecutor(1) as reader:  # the terminal drained as it is written, while the other sweep runs
        shown = reader.submit(finish_on_terminal, joblib, terminal)
        submitit = run_main(["-m", "hydra/launcher=submitit_local", "optimizer.lr=1e-3,3e-3",
                             *fast_overrides(tiny_root)], cwd)
        results = {"joblib": shown.result(), "submitit_local": submitit}
    dirs = {}
    for sweep_dir in (cwd / "outputs" / "sweeps").glob("*/*"):
        launcher = (sweep_dir / "multirun.yaml").read_text()
        dirs["joblib" if "joblib" in launcher else "submitit_local"] = sweep_dir
    return cwd, results, dirs


# the tests of one worker (pytest-xdist), so that the two sweeps run once
SAME_WORKER = pytest.mark.xdist_group("parallel_sweeps")


@pytest.mark.long  # the sweeps run in the first of these tests
@SAME_WORKER
def test_two_sweeps_started_together_get_their_own_directories(parallel_sweeps):
    cwd, results, dirs = parallel_sweeps
    sweep_dirs = sorted((cwd / "outputs" / "sweeps").glob("*/*"))
    assert len(sweep_dirs) == 2 and set(dirs) == {"joblib", "submitit_local"}, sweep_dirs
    # each job's folder named by its number and the value it was given, the constant overrides left out
    assert [d.name for d in job_dirs(dirs["joblib"])] == ["0_seed=0", "1_seed=1"]
    assert [d.name for d in job_dirs(dirs["submitit_local"])] == ["0_optimizer.lr=0.001", "1_optimizer.lr=0.003"]


@SAME_WORKER
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_launcher_runs_every_job(parallel_sweeps, launcher):
    _, results, dirs = parallel_sweeps
    result, sweep_dir = results[launcher], dirs[launcher]
    assert result.returncode == 0, result.stderr[-3000:]
    rows, summary = read_summary(sweep_dir)
    assert [row["status"] for row in rows] == ["completed", "completed"]
    pids = [event_pids(d) for d in job_dirs(sweep_dir)]
    for d, row in zip(job_dirs(sweep_dir), rows):
        assert metrics(d)["status"] == "completed" and float(row["test_acc"]) == metrics(d)["test"]["acc"]
        assert int(row["best_epoch"]) == metrics(d)["best_epoch"]  # the epoch its test is of
    assert all(len(p) == 1 for p in pids)
    # the jobs run at once and share the cores: each its part of the threads (submitit_local's each took all)
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    for d in job_dirs(sweep_dir):
        assert f"CPU ({threads} thread" in (d / "run.log").read_text()  # thread or threads
    if launcher == "submitit_local":  # one subprocess per job (the sweep itself ran in this process)
        assert pids[0] != pids[1] and os.getpid() not in pids[0] | pids[1]
        assert len(list((sweep_dir / ".submitit").glob("*/*_log.out"))) == 2
        assert summary["swept"] == ["optimizer.lr"]
        assert f"submitit_local runs 2 jobs at once: {threads} of the" in result.stdout
    else:
        # seed is the only swept key: one group, mean ± std of test accuracy over the two seeds
        assert summary["swept"] == ["seed"] and len(summary["groups"]) == 1
        group, tests = summary["groups"][0], [float(row["test_acc"]) for row in rows]
        assert group["n"] == 2 and group["seeds"] == ["0", "1"]
        assert group["test_acc_mean"] == pytest.approx(statistics.fmean(tests))
        assert group["test_acc_std"] == pytest.approx(statistics.stdev(tests))
        assert "Test accuracy over seeds" in result.stdout and "±" in result.stdout
        # the printed tables in markdown, for a report: each setting's mean ± std over its seeds
        mean_std = f"{group['test_acc_mean']:.4f} ± {group['test_acc_std']:.4f}"
        table = "| n | test_acc (mean ± std) | val_acc (mean ± std) | jobs |\n|---|---|---|---|\n"
        assert f"{table}| 2/2 | {mean_std} |" in (sweep_dir / "summary.md").read_text(encoding="utf-8")
        # one terminal for both workers: each job's lines start with its number, and no bar is drawn over them
        shown = result.stdout[:result.stdout.index("\nSweep ")].splitlines()
        assert shown and all(line.startswith(("[hydra] ", "[job 0] ", "[job 1] ")) for line in shown), shown
        assert {line[:8] for line in shown if "epoch 1/1" in line} == {"[job 0] ", "[job 1] "}
        assert "\r" not in result.stdout  # tqdm redraws its bar after a carriage return


@pytest.mark.skipif(len(MACHINE_CORES) < 2, reason="one core: each job has it either way")
def test_joblib_jobs_fewer_than_its_workers_share_the_cores_among_themselves(fast, tmp_path):
    # one job at a time (max_batch_size=1) of n_jobs=-1's one worker per core: each job had 1 core, not all
    with on_every_core():
        result = run_cli(["-m", "hydra/launcher=joblib", "seed=0,1", "hydra.sweeper.max_batch_size=1", *fast],
                         tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    cores = len(MACHINE_CORES)
    assert f"joblib runs 1 job at once: {cores} of the {cores} cores each" in result.stdout
    # worded as the other launchers' (it was "Joblib.Parallel(n_jobs=-1,backend=loky,prefer=processes,…) is
    # launching 1 jobs", 200 characters, and "Launching jobs, sweep output dir : outputs/…")
    assert "[hydra] Launching 1 job with joblib\n" in result.stdout and "Joblib.Parallel" not in result.stdout
    assert "sweep output dir" not in result.stdout
    sweep_dir, = (tmp_path / "outputs" / "sweeps").glob("*/*")
    assert [metrics(d)["device"] for d in job_dirs(sweep_dir)] == [f"CPU ({cores} threads)"] * 2
    # a study of one trial asks for one at a time, whatever its n_jobs
    with on_every_core():
        study = run_cli(["-m", "sweep=optuna", "hydra.sweeper.n_trials=1", "hydra.sweeper.n_jobs=2", "scheduler=none",
                         "hydra/launcher=joblib", *fast, "hydra.sweep.dir=study"], tmp_path)
    assert study.returncode == 0 and f"joblib runs 1 job at once: {cores} of the {cores} cores" in study.stdout
    assert [metrics(d)["device"] for d in job_dirs(tmp_path / "study")] == [f"CPU ({cores} threads)"]
    # the user's own OMP_NUM_THREADS (a shared machine's cap) holds in joblib's workers, which joblib gives its own
    with on_every_core():
        capped = run_cli(["-m", "hydra/launcher=joblib", "seed=0,1", "hydra.sweeper.max_batch_size=1", *fast,
                          "hydra.sweep.dir=capped"], tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert capped.returncode == 0 and f"joblib runs 1 job at once: 1 of the {cores} cores each" in capped.stdout
    assert [metrics(d)["device"] for d in job_dirs(tmp_path / "capped")] == ["CPU (1 thread)"] * 2


# ------------------------------------------------------------------------------------- TensorBoard
def _served_at(server: subprocess.Popen, log: Path, timeout: float = 90) -> str:
    """The address TensorBoard prints once it listens (--port 0: a port the OS picked, so no race for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text())
        if found:
            return found.group(0).rstrip("/")
        time.sleep(0.2)
    raise AssertionError(f"TensorBoard never said where it serves:\n{log.read_text()}")


def _get(url: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def tensorboard_serving(logdir: Path, runs: set[str], tmp_path: Path) -> Iterator[str]:
    """A real TensorBoard on ``logdir`` (its address), once it has read ``runs``; stopped by Ctrl+C after."""
    log = open(tmp_path / "tensorboard.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host",
                               "127.0.0.1", "--port", "0", "--load_fast=false", "--reload_interval=1"],
                              stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, preexec_fn=as_a_new_command)
    try:
        base = _served_at(server, tmp_path / "tensorboard.log")
        deadline, listed, read = time.monotonic() + 90, [], set()
        while time.monotonic() < deadline and not (set(listed) == runs == read):
            assert server.poll() is None, (tmp_path / "tensorboard.log").read_text()
            try:
                listed = _get(f"{base}/data/runs")
                # a run is listed before TensorBoard has read it: until then it has no tags
                read = {run for plugin in ("scalars", "images", "text")
                        for run, tags in _get(f"{base}/data/plugin/{plugin}/tags").items() if tags}
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.5)
        assert set(listed) == runs == read, (listed, read)
        yield base
    finally:
        server.send_signal(signal.SIGINT)  # TensorBoard's Ctrl+C
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            pytest.fail("TensorBoard did not stop on SIGINT")
        log.close()


def hparams_experiment(base: str) -> tuple[list[dict], dict[str, tuple[dict, dict]]]:
    """HParams' columns (differing settings first), and each session's (group, session) by run name."""
    experiment = _get(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
    groups = _get(f"{base}/data/plugin/hparams/session_groups", {
        "experimentName": "", "startIndex": 0, "sliceSize": 100,
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]})
    sessions = {session["name"]: (group, session) for group in groups["sessionGroups"] for session in group["sessions"]}
    return experiment, sessions


@SAME_WORKER
def test_tensorboard_serves_the_sweep(parallel_sweeps, tmp_path):
    sweep_dir = parallel_sweeps[2]["submitit_local"]
    jobs = {"0_optimizer.lr=0.001": 0.001, "1_optimizer.lr=0.003": 0.003}  # run names: what each job ran
    with tensorboard_serving(sweep_dir, {*jobs, "summary"}, tmp_path) as base:
        tags = _get(f"{base}/data/plugin/scalars/tags")
        for run in jobs:  # every tag in a group: no card of ungrouped tags
            assert {"train/loss", "train/acc", "train/lr", "val/loss", "val/acc", "best/val_acc", "best/val_loss",
                    "test/loss", "test/acc"} <= set(tags[run]) and all("/" in tag for tag in tags[run])
        first = next(iter(jobs))
        scalars = _get(f"{base}/data/plugin/scalars/scalars?" + urllib.parse.urlencode({"run": first, "tag": "val/acc"}))
        assert [point[1] for point in scalars] == [1]  # [wall time, step, value]: one epoch
        assert scalars[0][2] == pytest.approx(metrics(sweep_dir / first)["history"][0]["val/acc"])
        assert "sweep/val_acc_vs_params" in _get(f"{base}/data/plugin/images/tags")["summary"]
        assert "sweep/summary" in _get(f"{base}/data/plugin/text/tags")["summary"]

        # HParams: TensorBoard finds optimizer.lr differing and lists it first; only settings that change results
        experiment, sessions = hparams_experiment(base)
        columns = experiment["hparamInfos"]
        assert columns[0]["name"] == "optimizer.lr" and columns[0]["differs"] is True
        assert not [c["name"] for c in columns[1:] if c.get("differs")]
        names = {c["name"] for c in columns}
        assert {"trainer.batch_size", "seed", "model.dropout"} <= names
        assert not names & {"dataset.root", "trainer.progress", "image", "optimizer.momentum"}
        assert "ckpt" in names  # "null": the column of evaluations' checkpoints, which does not differ here
        assert {"best/val_acc", "best/val_loss", "test/acc"} <= {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert set(sessions) == set(jobs)
        for job, lr in jobs.items():
            group, session = sessions[job]
            values = {m["name"]["tag"]: m["value"] for m in session["metricValues"]}
            expected = metrics(sweep_dir / job)
            assert group["hparams"]["optimizer.lr"] == pytest.approx(lr)
            assert values["best/val_acc"] == pytest.approx(expected["val"]["acc"])  # the selected model's
            assert values["best/val_loss"] == pytest.approx(expected["val"]["loss"])
            assert values["test/acc"] == pytest.approx(expected["test"]["acc"])
            assert session["status"] == "STATUS_SUCCESS"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base}/data/runs", timeout=5)


def test_hparams_shows_a_swept_null_as_a_differing_setting(fast, tmp_path):
    """trainer.ema_decay=null,0.9: the null job's value was left out of its session (as a null default is),
    so HParams saw one value, took the setting for one that does not differ, and hid it among the rest."""
    sweep_dir = tmp_path / "sweep"
    result = run_main(["-m", *fast, "trainer.limit_batches=2", "trainer.ema_decay=null,0.9",
                       f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = {"0_trainer.ema_decay=null": 0, "1_trainer.ema_decay=0.9": 0.9}  # no average: a decay of 0
    with tensorboard_serving(sweep_dir, {*jobs, "summary"}, tmp_path) as base:
        experiment, sessions = hparams_experiment(base)
    columns = experiment["hparamInfos"]
    assert columns[0]["name"] == "trainer.ema_decay" and columns[0]["differs"] is True
    # a column of numbers, which TensorBoard sorts and filters by range: "null" among them made it text, whose
    # sort failed ("'<' not supported between 'float' and 'str'")
    assert columns[0]["type"] == "DATA_TYPE_FLOAT64"
    assert columns[0]["domainInterval"] == {"minValue": 0.0, "maxValue": 0.9}
    assert {job: sessions[job][0]["hparams"]["trainer.ema_decay"] for job in jobs} == jobs
    # a null that is off is 0 in every run (left out, a run beside one clipped showed one value)
    assert {c["name"]: c["type"] for c in columns if c["name"] == "trainer.grad_clip_norm"} == {
        "trainer.grad_clip_norm": "DATA_TYPE_FLOAT64"}


@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_a_summary_keeps_each_jobs_values_beside_an_override_that_names_hydras_own(launcher, fast, tmp_path):
    """An override of ``'${hydra:job.num}'`` was resolved as the summary read .hydra/overrides.yaml: without a
    job's Hydra config every value was lost (the two learning rates pooled as one setting's seeds), and under
    the stacked launcher's leftover one each job had the last job's number."""
    sweep_dir = tmp_path / "sweep"
    chosen = [] if launcher == "basic" else ["hydra/launcher=stacked"]
    result = run_main(["-m", *chosen, *fast, "trainer.limit_batches=2", "optimizer.lr=1e-3,3e-3",
                       "dataset.split_seed='${hydra:job.num}'", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert summary["swept"] == ["optimizer.lr"], summary["swept"]
    assert sorted((job["params"]["optimizer.lr"], job["params"]["dataset.split_seed"]) for job in summary["jobs"]) == [
        ("0.001", "${hydra:job.num}"), ("0.003", "${hydra:job.num}")]


# -------------------------------------------------------------------------------------------- Optuna
def test_optuna_sweep_maximises_val_accuracy_and_keeps_its_folder_to_itself(fast, tmp_path):
    sweep_dir = tmp_path / "optuna"
    result = run_main(["-m", "sweep=optuna", "hydra.sweeper.n_trials=3", "scheduler=none", "trainer.batch_size=64",
                       *fast, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows, summary = read_summary(sweep_dir)
    assert len(rows) == 3 and len(job_dirs(sweep_dir)) == 3
    assert [r["status"] for r in rows] == ["completed"] * 3
    # the command line fixed scheduler and batch size; Optuna drew the other keys of configs/sweep/optuna.yaml
    assert set(summary["swept"]) == {"optimizer.lr", "model.dropout", "trainer.label_smoothing"}
    assert {r.get("scheduler") for r in rows} == {None}  # fixed: no column
    lrs = [float(r["optimizer.lr"]) for r in rows]
    assert len(set(lrs)) == 3 and all(1e-4 <= lr <= 1e-2 for lr in lrs)
    results = (sweep_dir / "optimization_results.yaml").read_text()
    best_value = float(re.search(r"best_value: (\S+)", results).group(1))
    assert best_value == pytest.approx(max(float(r["val_acc"]) for r in rows if r["val_acc"]))
    # Optuna's trials run one after another in this process: the second job's start-up is its own, not the first's
    first, second = (metrics(job_dir)["timings"] for job_dir in job_dirs(sweep_dir)[:2])
    assert second["imports_s"] < first["imports_s"] / 4 and second["startup_s"] < first["startup_s"]

    # another study, or a grid, into the study's folder would mix two sweeps' jobs under one set of numbers
    listing = sorted(p.relative_to(sweep_dir) for p in sweep_dir.rglob("*"))
    for other in (["sweep=optuna", "hydra.sweeper.n_trials=1", "scheduler=choice(none,cosine)"],
                  ["optimizer.lr=1e-3,3e-3"]):
        refused = run_main(["-m", *other, *fast, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert f"Error: {sweep_dir} holds another sweep" in refused.stderr, refused.stderr[-2000:]
        assert sorted(p.relative_to(sweep_dir) for p in sweep_dir.rglob("*")) == listing
        # a study has no list to add values to: it takes more trials (it said "add values at the end of …")
        assert "or raise hydra.sweeper.n_trials for more trials, or choose a new hydra.sweep.dir." in refused.stderr
    # the same search space drawn by another sampler seed (or storage, study name): two job 0s, each summarised
    study = ["-m", "sweep=optuna", "hydra.sweeper.n_trials=3", "scheduler=none", "trainer.batch_size=64", *fast]
    reseeded = run_main([*study, "hydra.sweeper.sampler.seed=1", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert reseeded.returncode == 1 and (f"Error: {sweep_dir} holds a study drawn with other settings "
                                         f"(hydra.sweeper.sampler.seed: 0 -> 1): this one would draw other trials "
                                         f"under its jobs' numbers.") in reseeded.stderr, reseeded.stderr[-2000:]
    stored = run_main([*study, f"hydra.sweeper.storage=sqlite:///{tmp_path / 's.db'}", f"hydra.sweep.dir={sweep_dir}"],
                      cwd=tmp_path)  # a study kept nowhere, continued from a storage: drawn anew (one moved: the same)
    assert stored.returncode == 1 and (f"(hydra.sweeper.storage: null -> 'sqlite:///{tmp_path / 's.db'}'): this one "
                                       f"would draw other trials") in stored.stderr, stored.stderr[-2000:]
    assert sorted(p.relative_to(sweep_dir) for p in sweep_dir.rglob("*")) == listing


def test_an_optuna_study_that_draws_a_folder_twice_stops_before_writing_over_it(fast, tmp_path):
    """Two seeds, three trials: a job folder named by the seed alone is drawn twice. Hydra wrote the second
    trial's .hydra/ over the first's before that job refused the folder."""
    sweep_dir = tmp_path / "optuna"
    result = run_main(["-m", "sweep=optuna", "hydra.sweeper.n_trials=3", "scheduler=none", "seed=choice(0,1)",
                       "hydra.sweep.subdir=seed_${seed}", *fast, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.search(r"Error: hydra.sweep.subdir=seed_\$\{seed\} gives jobs (\d) and (\d) one folder \(seed_\d\), where "
                     r"the second would overwrite the first", result.stderr), result.stderr[-2000:]
    folders = list(sweep_dir.glob("seed_*"))
    assert folders  # the trial that first drew the folder's seed
    for folder in folders:  # each folder as its own trial left it
        overrides = (folder / ".hydra" / "overrides.yaml").read_text()
        assert f"seed={metrics(folder)['seed']}" in overrides and metrics(folder)["status"] == "completed"


def test_an_optuna_trial_whose_values_make_no_config_fails_alone(fast, tmp_path):
    """optimizer=choice(sgd,adam) with a momentum drawn for sgd: the first trial that drew adam ended the whole
    study with "optimizer.momentum is not a setting of this optimizer", without its summary."""
    sweep_dir = tmp_path / "optuna"
    result = run_main(["-m", "sweep=optuna", "hydra.sweeper.n_trials=4", "scheduler=none", "trainer.batch_size=64",
                       "optimizer=choice(sgd,adam)", "optimizer.momentum=interval(0.8,0.99)", *fast,
                       f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    rows, _ = read_summary(sweep_dir)
    assert len(rows) == 4 and {row["optimizer"] for row in rows} == {"sgd", "adam"}  # seed 0 draws both
    assert all(row["status"] == ("completed" if row["optimizer"] == "sgd" else "failed") for row in rows), rows
    failed = next(row for row in rows if row["optimizer"] == "adam")
    assert f"Trial {failed['job']} cannot run: optimizer.momentum is not a setting of this optimizer" in result.stdout
    assert "optimizer.momentum is not a setting" in metrics(sweep_dir / failed["job"])["message"]
    assert (sweep_dir / "optimization_results.yaml").is_file()  # the study ended as a study does


@pytest.mark.parametrize("storage", ["null", "sqlite:///study.db"])
def test_an_optuna_study_without_a_completed_trial_ends_with_its_summary(fast, tmp_path, storage):
    # optuna's study.best_trial raises when no trial completed (in words that depend on the storage): the
    # sweep ends as any failed sweep does
    sweep_dir = tmp_path / "optuna"
    result = run_main(["-m", "sweep=optuna", "hydra.sweeper.n_trials=2", *fast, "trainer.label_smoothing=2",
                       f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "No trial of the study completed" in result.stdout  # Hydra's log
    assert "times out of" not in result.stdout  # no error line per batch of failed trials (max_failure_rate)
    assert "Trial 1 has no result (failed): the study counts it as a failed trial" in result.stdout
    assert "float-castable" not in result.stdout  # the sweeper blamed the job's return value
    # optuna's lines are Hydra's, without colour codes in a file or a pipe
    assert "[hydra] A new study created in " in result.stdout and "\x1b[" not in result.stdout + result.stderr
    assert "2 of 2 jobs did not complete" in result.stderr
    assert [row["status"] for row in read_summary(sweep_dir)[0]] == ["failed"] * 2


def test_an_optuna_batch_with_more_failed_trials_than_max_failure_rate_allows_is_told_in_words(fast, tmp_path):
    """The sweeper's error ("Failed [ValueError(\"Return value must be float-castable. Got 'None'.\")] times
    out of 2") was dropped with the warnings that blame a job's return value: max_failure_rate did nothing."""
    result = run_main(["-m", "sweep=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2",
                       "hydra.sweeper.max_failure_rate=0.4", *fast, "trainer.label_smoothing=2", "hydra.sweep.dir=s"],
                      cwd=tmp_path)
    assert result.returncode == 1 and "float-castable" not in result.stdout, result.stdout[-3000:]
    assert ("[hydra] More of the batch's 2 trials failed or diverged than hydra.sweeper.max_failure_rate=0.4 allows "
            "(the summary lists them).") in result.stdout


@pytest.mark.parametrize("settings,expected", [
    ("sweep=optuna hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials=0: give how many trials the study runs"),
    ("sweep=optuna hydra.sweeper.n_jobs=0", "hydra.sweeper.n_jobs=0: give how many trials it asks for at once"),
    ("sweep=optuna hydra.sweeper.direction=up", "hydra.sweeper.direction='up': give maximize"),
    # search spaces that Hydra or Optuna met with a traceback, or that give other values than they say
    ("optimizer=glob(nomatch*)", "optimizer=glob(nomatch*) matches no option of optimizer: choose from adam, adamw, "
                                 "sgd."),  # "Launching 0 jobs", then "No job directories found"
    ("seed=range(0,3,0)", "seed=range(0,3,0): a range() steps by a number other than 0, e.g. seed='range(0,3)'"),
    ("seed=shuffle(range(0,3,0))", "seed=shuffle(range(0,3,0)): a range() steps by a number other than 0"),
    ("model.dropout=range(0.1,0.4,0.1)", "model.dropout=range(0.1,0.4,0.1): Hydra's range() of floats gives 0.1, 0.2, "
                                         "0.30000000000000004, 0.4. List the values instead: model.dropout=0.1,0.2,0.3."),
    ("sweep=optuna optimizer.lr=interval(1e-2,1e-4)", "optimizer.lr=interval(1e-2,1e-4): an interval goes from low to "
                                                      "high: optimizer.lr='interval(0.0001,0.01)'."),
    # the advice left out the log scale, and the integers
    ("sweep=optuna optimizer.lr=tag(log,interval(1e-2,1e-4))", "optimizer.lr=tag(log,interval(1e-2,1e-4)): an "
     "interval goes from low to high: optimizer.lr='tag(log,interval(0.0001,0.01))'."),
    ("sweep=optuna trainer.batch_size=int(interval(128,32))", "trainer.batch_size=int(interval(128,32)): an interval "
     "goes from low to high: trainer.batch_size='int(interval(32,128))'."),
    # drawn on a linear scale without a word
    ("sweep=optuna optimizer.lr=tag(lg,interval(1e-4,1e-2))", "optimizer.lr=tag(lg,interval(1e-4,1e-2)): Optuna's "
     "sweeper reads one tag, log (a log scale), and not lg: optimizer.lr='tag(log,interval(0.0001,0.01))', or the "
     "interval alone for a linear scale."),
    ("sweep=optuna model.dropout=tag(lg,interval(0,0.5))", "model.dropout=tag(lg,interval(0,0.5)): Optuna's sweeper "
     "reads one tag, log (a log scale), and not lg: model.dropout='interval(0,0.5)' (a log scale has no 0)."),
    # a study drew what its trials failed on, one lost trial each (a grid composes each job first)
    ("sweep=optuna scheduler=choice(bogus,none)", "scheduler=choice(bogus,none): bogus is not an option of scheduler: "
                                                  "choose from cosine, none, onecycle, step."),
    ("sweep=optuna trainer.batch_size=interval(16,256)", "trainer.batch_size=interval(16,256): trainer.batch_size "
     "takes integers, and this interval draws fractions: trainer.batch_size='int(interval(16,256))'."),
    # each trial that drew the value failed on it, while the others trained
    ("sweep=optuna optimizer.lr=choice(abc,1e-3)", "optimizer.lr=choice(abc,1e-3): optimizer.lr takes a number, not "
     "'abc': each trial that drew it would fail."),
    # an Enum's refusal was quoted whole: "takes Invalid value 'gelu', expected one of [relu, tanh]"
    ("sweep=optuna model.activation=choice(gelu,relu)", "model.activation=choice(gelu,relu): model.activation takes "
     "one of [relu, tanh], not 'gelu': each trial that drew it would fail."),
    ("sweep=optuna model.dropout=interval(0,1.5)", "model.dropout=interval(0,1.5): model.dropout takes a number in "
     "[0, 1), not 1.5"),
    ("sweep=optuna seed=choice(1,-3)", "seed=choice(1,-3): seed takes an integer in [0, 2**32)"),
    # a key the config lacks, without the + that adds it: refused before a grid's first job, each trial failed on it
    ("sweep=optuna optimizer.eps=tag(log,interval(1e-8,1e-6))", "optimizer.eps=tag(log,interval(1e-8,1e-6)): "
     "optimizer.eps is not a setting of this optimizer's YAML: +optimizer.eps=… passes it to torch.optim.Adam. Each "
     "trial would fail on it."),
    ("sweep=optuna trainer.epochz=choice(1,2)", "trainer.epochz=choice(1,2): trainer.epochz is not a setting (did you "
     "mean trainer.epochs?)"),
    # Optuna's sweeper draws its stop too (seed=2 in 4 of 6 trials), and range(5,0,-1) was a traceback
    ("sweep=optuna seed=range(0,2)", "seed=range(0,2): Optuna's sweeper draws a range() with its stop (2 too). Give "
                                     "the values to draw from: seed='choice(0,1)'."),
    ("sweep=optuna seed=range(0,0)", "seed=range(0,0) gives no value"),
    # the sweeper's bare AssertionError, optuna's ValueError over several lines
    ("sweep=optuna hydra.sweeper.max_failure_rate=2",
     "hydra.sweeper.max_failure_rate=2.0: give the share of a batch's trials that may fail before the study stops, "
     "from 0 to 1"),
    ("sweep=optuna hydra.sweeper.sampler.seed=-1", "hydra.sweeper.sampler.seed=-1: give a seed from 0 to 2**32 - 1"),
    # a sweep as one value of a list: omegaconf's traceback ("Unexpected type annotation: Set[str]"), "model.include
    # is not a setting", "optimizer.lr takes a number, not IntervalSweep(tags=set(), …)"
    ("seed=range(0,2),5", "seed=range(0,2),5: its range() is a sweep of its own, not one value of a list: give seed "
                          "the range() alone, or list every value (seed=a,b,c)."),
    ("model=glob(*),lenet5", "model=glob(*),lenet5: its glob() is a sweep of its own"),
    ("sweep=optuna optimizer.lr=interval(0.1,0.2),0.3", "optimizer.lr=interval(0.1,0.2),0.3: its interval() is a "
                                                        "sweep of its own"),
    # Hydra's "Error in call to target … InstantiationException(…)" in four lines, or a traceback at the first trial
    ("sweep=optuna hydra.sweeper.custom_search_space=no.such.extend",
     "hydra.sweeper.custom_search_space=no.such.extend cannot be imported (No module named 'no'). Give the dotted "
     "path of a function f(config, trial)"),
    ("sweep=optuna hydra.sweeper.custom_search_space=math.pi", "hydra.sweeper.custom_search_space=math.pi is a float, "
                                                               "not a function."),
    ("sweep=optuna hydra.sweeper.custom_search_space=os.path.join", "hydra.sweeper.custom_search_space=os.path.join "
                                                                    "raised TypeError: "),
    # "hydra.sweeper.sampler has _target_, _partial_": optuna.yaml's seed, which the grid sampler lacks
    ("sweep=optuna hydra/sweeper/sampler=grid", "In sweep/optuna.yaml: hydra.sweeper.sampler.seed is not a setting of "
     "Optuna's grid sampler, and sweep=optuna seeds its sampler: a study with the grid sampler is a study file of "
     "your own whose defaults choose it"),
    # the fix named hydra/sweeper=optuna, which leaves out the study's space: Hydra's basic sweeper then
    ("sweep=optuna hydra.sweeper.max_failure_rate=abc", "Invalid config value hydra.sweeper.max_failure_rate='abc': "
     "expected a number. Fix it on the command line, e.g. `python run.py -m sweep=optuna "
     "hydra.sweeper.max_failure_rate=...`"),
    # "expected Cannot assign int to Dict[str, Any]"
    ("hydra/launcher=stacked hydra.launcher.submitit.slurm_additional_parameters=5 seed=0,1",
     "Invalid config value hydra.launcher.submitit.slurm_additional_parameters=5: expected keys of its own, each added "
     "with a +, e.g. +<setting>.<key>=<value>."),
    # each command made a new study, named no-name-<uuid>: the stored one never went on
    ("sweep=optuna hydra.sweeper.storage=sqlite:///optuna.db hydra.sweeper.study_name=null",
     "hydra.sweeper.study_name=null with a storage: give the study a name"),  # (it said None)
    ("sweep=optuna optimizer.lr=tag(log,interval(0,1e-2))", "optimizer.lr=tag(log,interval(0,1e-2)): a log interval "
                                                            "starts above 0"),
    # the study looked for the worst model, while the summary named the best one
    ("sweep=optuna hydra.sweeper.direction=minimize", "hydra.sweeper.direction='minimize': give maximize. Each trial "
                                                      "returns one number, its best val accuracy"),
    ("hydra/launcher=joblib hydra.launcher.n_jobs=0 seed=0,1", "hydra.launcher.n_jobs=0: give how many jobs run at once"),
    # each job failed with "set_num_threads expects a positive integer"
    ("hydra/launcher=submitit_local hydra.launcher.cpus_per_task=-1 seed=0,1",
     "hydra.launcher.cpus_per_task=-1: give how many cores each job reserves"),
    ("hydra/launcher=stacked_slurm hydra.launcher.submitit.cluster=local hydra.launcher.submitit.cpus_per_task=0 seed=0,1",
     "hydra.launcher.submitit.cpus_per_task=0: give how many cores each job reserves"),
    # taken without a word by submitit's local jobs
    ("hydra/launcher=stacked hydra.launcher.submitit.cluster=local hydra.launcher.submitit.mem_gb=-1 seed=0,1",
     "hydra.launcher.submitit.mem_gb=-1: give what each job reserves (0 or more), or null for the launcher's default."),
    ("hydra/launcher=submitit_local hydra.launcher.gpus_per_node=-1 seed=0,1", "hydra.launcher.gpus_per_node=-1: give"),
    # each task would train the same job at once, or fail on its folder in use
    ("hydra/launcher=stacked hydra.launcher.submitit.cluster=local hydra.launcher.submitit.tasks_per_node=2 seed=0,1",
     "hydra.launcher.submitit.tasks_per_node=2: a job trains in one process, so 1 (more would each train the same "
     "job at once). Leave it out."),
    ("hydra/launcher=submitit_local hydra.launcher.tasks_per_node=0 seed=0,1",
     "hydra.launcher.tasks_per_node=0: a job trains in one process, so 1"),
    # submitit killed each job (or group) at once: "killed or crashed before writing" its metrics
    ("hydra/launcher=submitit_local hydra.launcher.timeout_min=0 seed=0,1",
     "hydra.launcher.timeout_min=0: give the minutes each job may run before it is stopped (1 or more)."),
    ("hydra/launcher=stacked hydra.launcher.submitit.cluster=local hydra.launcher.submitit.timeout_min=-3 seed=0,1",
     "hydra.launcher.submitit.timeout_min=-3: give the minutes each group may run before it is stopped"),
])
def test_sweep_settings_that_the_plugins_meet_with_a_traceback_are_refused(fast, tmp_path, settings, expected):
    result = run_main(["-m", *settings.split(), *fast, f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"Error: {expected}" in result.stderr
    assert not (tmp_path / "sweep").exists()  # it left a folder of its multirun.yaml and lock


def test_an_optuna_study_of_ones_own_with_the_grid_sampler_tries_each_combination_once(fast, tmp_path):
    """The grid sampler is made once the sweep knows its search space: the sweeper's hook on the sampler was a
    traceback ('_DeferredTarget' object has no attribute 'infer_relative_search_space'), and an interval
    Optuna's ("GridSampler only supports discrete distributions")."""
    study = ["-m", "--config-dir", str(a_grid_study(tmp_path / "mine")), "sweep=grid", "scheduler=none", *fast]
    drawing = run_main([*study, "model.dropout=interval(0,0.5)", f"hydra.sweep.dir={tmp_path / 'drawn'}"],
                       cwd=tmp_path)
    assert drawing.returncode == 1 and "Traceback" not in drawing.stderr, drawing.stderr[-3000:]
    assert ("Error: model.dropout=interval(0,0.5) is a range to draw values from, which Optuna's grid sampler does "
            "not: give it the values to try, model.dropout='choice(a,b,c)'.") in drawing.stderr
    assert not (tmp_path / "drawn").exists()
    result = run_main([*study, "seed=choice(0,1)", f"hydra.sweep.dir={tmp_path / 'grid'}"], cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    rows, _ = read_summary(tmp_path / "grid")
    assert sorted((row["optimizer.lr"], row["seed"]) for row in rows) == [
        ("0.001", "0"), ("0.001", "1"), ("0.003", "0"), ("0.003", "1")]
    assert all(row["status"] == "completed" for row in rows), rows


def test_an_optuna_interval_to_an_open_end_is_drawn(fast, tmp_path):
    # model.dropout takes [0, 1): Optuna draws a float below its interval's end, so the end itself is no draw
    result = run_main(["-m", "sweep=optuna", "hydra.sweeper.n_trials=1", "scheduler=none", *fast,
                       "model.dropout=interval(0,1)", "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 's'}"],
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows, _ = read_summary(tmp_path / "s")
    assert [row["status"] for row in rows] == ["completed"] and 0 <= float(rows[0]["model.dropout"]) < 1


def test_an_optuna_storage_that_cannot_be_opened_is_refused(fast, tmp_path):
    for storage, reason in [("optuna.db", "Could not parse SQLAlchemy URL"),
                            (f"sqlite:///{tmp_path}/no/such/folder/optuna.db", "unable to open database file")]:
        result = run_main(["-m", "sweep=optuna", *fast, f"hydra.sweeper.storage={storage}",
                           f"hydra.sweep.dir={tmp_path / 'optuna'}"], cwd=tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
        assert f"Error: hydra.sweeper.storage='{storage}' cannot be opened ({reason}" in result.stderr
        assert "Give a database URL such as sqlite:///optuna.db" in result.stderr
    assert not [path for path in (tmp_path / "optuna").glob("*") if path.is_dir()]  # no trial began


def test_an_interval_in_a_grid_sweep_is_refused(fast, tmp_path):
    # only Optuna draws values from an interval; Hydra's basic sweeper failed with a traceback
    for launcher in ("basic", "stacked"):
        result = run_main(["-m", f"hydra/launcher={launcher}", *fast, "optimizer.lr=tag(log,interval(1e-4,1e-2))",
                           f"hydra.sweep.dir={tmp_path / launcher}"], cwd=tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
        assert ("Error: optimizer.lr=tag(log,interval(1e-4,1e-2)) is a range to draw values from, which only an "
                "Optuna study does: `python run.py -m sweep=optuna 'optimizer.lr=tag(log,interval(1e-4,1e-2))'`. "
                "A grid sweep lists its values instead: optimizer.lr=a,b,c") in result.stderr
        assert not (tmp_path / launcher).exists()


def test_a_sweep_without_jobs_is_refused_saying_which_key_has_no_value(fast, tmp_path):
    result = run_main(["-m", *fast, "seed=range(0,0)", "optimizer.lr=1e-3,2e-3", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                      cwd=tmp_path)
    assert result.returncode == 1 and ("Error: the sweep has no jobs: seed=range(0,0) gives no value. Give each "
                                       "swept key one value or more.") in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "sweep").exists()  # it said "No job directories found" after an empty multirun.yaml


@pytest.mark.parametrize("studies, instead", [
    ("sweep=seeds,models", "(`python run.py -m sweep=seeds` then `python run.py -m sweep=models`)"),
    ("sweep=glob(s*)", "(`python run.py -m sweep=seeds`)"),  # the options the glob lists
])
def test_a_sweep_over_studies_is_refused(studies, instead, fast, tmp_path):
    """A study is the sweeper's search space, read once: each job ran the default study's again under another name."""
    result = run_main(["-m", *fast, studies, f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert result.returncode == 1 and (f"Error: {studies} sweeps over studies, and a study is a sweep's whole search "
                                       f"space: run one sweep per study {instead}.") in result.stderr, result.stderr
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_directory_refuses_another_sweep(tiny_root, tmp_path):
    sweep_dir = tmp_path / "sweep"
    first = run_main(["-m", *fast_overrides(tiny_root), "optimizer.lr=1e-3", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = (sweep_dir / "multirun.yaml").read_bytes()
    listing = sorted(p.relative_to(sweep_dir) for p in sweep_dir.rglob("*"))
    other = run_main(["-m", *fast_overrides(tiny_root), "optimizer.lr=3e-3", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert other.returncode != 0 and "Traceback" not in other.stderr
    # what differs, where it showed both lists of overrides in full
    assert ("holds another sweep (it ran optimizer.lr=1e-3; this command gives optimizer.lr=3e-3). Run it with its "
            "own overrides") in other.stderr and "hydra.sweep.dir" in other.stderr, other.stderr
    assert (sweep_dir / "multirun.yaml").read_bytes() == before
    assert sorted(p.relative_to(sweep_dir) for p in sweep_dir.rglob("*")) == listing  # nothing added or removed


def test_a_run_and_a_sweep_never_share_a_folder(fast, tmp_path):
    """A run written into a sweep's folder (or a sweep into a run's) would show in the other's TensorBoard and
    summary as one of its own."""
    run_dir, sweep_dir = tmp_path / "run", tmp_path / "sweep"
    assert run_main([*fast, f"hydra.run.dir={run_dir}"], cwd=tmp_path).returncode == 0
    assert run_main([*fast, "-m", "seed=0,1", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path).returncode == 0
    before = {folder: sorted(folder.rglob("*")) for folder in (run_dir, sweep_dir)}
    run = run_main([*fast, f"hydra.run.dir={sweep_dir}"], cwd=tmp_path)
    assert run.returncode == 1 and f"Error: {sweep_dir} holds a sweep (multirun.yaml). A run needs a folder" in run.stderr
    sweep = run_main([*fast, "-m", "seed=0,1", f"hydra.sweep.dir={run_dir}"], cwd=tmp_path)
    assert sweep.returncode == 1 and f"Error: {run_dir} holds a run (.hydra/). A sweep needs a folder" in sweep.stderr
    # nor a run inside a sweep's folder: in a job's to come (its sweep's job was then refused, or wrote over it)
    inside = run_main([*fast, f"hydra.run.dir={sweep_dir / '2_seed=2'}"], cwd=tmp_path)
    assert inside.returncode == 1 and f"Error: {sweep_dir / '2_seed=2'} is in the folder of the sweep {sweep_dir}, " \
                                      "whose jobs' folders are there: a run needs a folder of its own." in inside.stderr
    # or in a job's that has not trained yet (starting up, before it holds its folder): the single run took it over
    job = next(sweep_dir.glob("0_seed=0"))
    for trained in ("metrics.json", "checkpoints", *(path.name for path in job.glob("events.out.tfevents.*"))):
        shutil.move(job / trained, tmp_path / trained)
    starting = sorted(job.rglob("*"))
    taken = run_main([*fast, "seed=5", f"hydra.run.dir={job}"], cwd=tmp_path)
    assert taken.returncode == 1 and (f"Error: {job} is a job of the sweep {sweep_dir}: the sweep's own command runs "
                                      f"it (hydra.sweep.dir=), or `python run.py resume={shlex.quote(str(job))}` "
                                      f"continues it alone.") in taken.stderr, taken.stderr
    resumed = run_main([f"resume={job}", "seed=5"], cwd=tmp_path)  # resume= with another config: the sweep's job
    message = f"Error: {job} is a job of the sweep {sweep_dir}, with another config (data_seed: 0 -> 5; seed: 0 -> 5)"
    assert resumed.returncode == 1 and f"{message}: the sweep's own command runs it." in resumed.stderr, resumed.stderr
    assert sorted(job.rglob("*")) == starting and "seed=0" in (job / ".hydra" / "overrides.yaml").read_text()
    for trained in ("metrics.json", "checkpoints", *(path.name for path in tmp_path.glob("events.out.tfevents.*"))):
        shutil.move(tmp_path / trained, job / trained)
    assert {folder: sorted(folder.rglob("*")) for folder in (run_dir, sweep_dir)} == before


def test_nothing_runs_inside_a_run_or_a_sweep_but_their_own(fast, tmp_path):
    """A run with a job's own config into its folder ended "Already completed", but Hydra had written its command
    over the job's .hydra/, and the summary lost the job's swept value; a run or sweep deeper inside a sweep's or
    a run's folder was listed as a job of the sweep, or shown in the run's TensorBoard."""
    run_dir, sweep_dir = tmp_path / "run", tmp_path / "sweep"
    assert run_main([*fast, f"hydra.run.dir={run_dir}"], cwd=tmp_path).returncode == 0
    assert run_main([*fast, "-m", "seed=0,1", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path).returncode == 0
    before = {folder: sorted(folder.rglob("*")) for folder in (run_dir, sweep_dir)}
    job = sweep_dir / "1_seed=1"
    record = (job / ".hydra" / "overrides.yaml").read_bytes()
    again = run_main([*fast, "seed=1", f"hydra.run.dir={job}"], cwd=tmp_path)  # the job's own config
    assert again.returncode == 1 and f"Error: {job} is a job of the sweep {sweep_dir}: the sweep's own" in again.stderr
    assert (job / ".hydra" / "overrides.yaml").read_bytes() == record
    (tmp_path / "link").symlink_to(job / "checkpoints")  # no record itself: found as it leads
    for inside, enclosing in [(sweep_dir / "deep" / "er", f"sweep folder {sweep_dir}"),
                              (tmp_path / "link" / "deep", f"run folder {job}"),
                              (job / "checkpoints", f"run folder {job}"), (run_dir / "sub", f"run folder {run_dir}")]:
        run = run_main([*fast, f"hydra.run.dir={inside}"], cwd=tmp_path)
        assert run.returncode == 1 and (f"Error: {inside} is inside the {enclosing}: a run needs a folder of its own. "
                                        f"Choose a hydra.run.dir outside it.") in run.stderr, run.stderr
        if enclosing.startswith("run"):  # a sweep in a sweep's folder is no job of it (an evaluation sweep's)
            sweep = run_main([*fast, "-m", "seed=0,1", f"hydra.sweep.dir={inside}"], cwd=tmp_path)
            assert sweep.returncode == 1 and (f"Error: {inside} is inside the {enclosing}: a sweep needs a folder of "
                                              f"its own.") in sweep.stderr, sweep.stderr
    assert {folder: sorted(folder.rglob("*")) for folder in (run_dir, sweep_dir)} == before
    # a job of a sweep whose subdir nests its jobs continues alone as any job does
    nested = tmp_path / "nested"
    assert run_main([*fast, "-m", "seed=0,1", "hydra.sweep.subdir=s_${seed}/${hydra.job.num}",
                     f"hydra.sweep.dir={nested}"], cwd=tmp_path).returncode == 0
    resumed = run_main([f"resume={nested / 's_1' / '1'}"], cwd=tmp_path)
    assert resumed.returncode == 0 and "Already completed" in resumed.stderr, resumed.stderr[-2000:]
    # and another sweep into its folder is refused as for any sweep's (its jobs' folders were not looked for
    # below the first level: Hydra wrote the other sweep's multirun.yaml over it, and added its jobs)
    record = (nested / "multirun.yaml").read_bytes()
    other = run_main([*fast, "-m", "seed=5", "hydra.sweep.subdir=s_${seed}/${hydra.job.num}",
                      f"hydra.sweep.dir={nested}"], cwd=tmp_path)
    assert other.returncode == 1 and f"Error: {nested} holds another sweep (it ran seed=0,1; this command gives " \
        f"seed=5)" in other.stderr, other.stderr[-2000:]
    assert (nested / "multirun.yaml").read_bytes() == record and not (nested / "s_5").exists()


def test_a_submitit_sweep_run_again_says_what_its_folder_holds(fast, tmp_path):
    """Its jobs log to their own files alone: the console said nothing of the jobs it skips or resumes, which a
    basic or joblib sweep's jobs say there, and a stacked one sums up."""
    sweep = ["-m", "hydra/launcher=submitit_local", *fast, "seed=0,1", "hydra.sweep.dir=sweep"]
    assert run_main(sweep, cwd=tmp_path).returncode == 0
    again = run_main(sweep, cwd=tmp_path)
    assert again.returncode == 0 and ("Sweep sweep holds 2 jobs from before (2 completed): each one's run.log says "
                                      "whether it is skipped or goes on.") in again.stdout, again.stdout[-2000:]


def test_a_sweep_refused_before_its_first_job_leaves_no_folder_and_the_fixed_command_runs(fast, tmp_path):
    """The refused sweep left a folder of its multirun.yaml and lock alone."""
    sweep = [*fast, "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    typo = run_main([*sweep, "optimizer.lr=1e-3,abc"], cwd=tmp_path)  # each job's config is composed first
    assert typo.returncode == 1 and "Error: Invalid config value optimizer.lr='abc': expected a number." in typo.stderr
    assert not (tmp_path / "sweep").exists()
    fixed = run_main([*sweep, "optimizer.lr=1e-3,3e-3"], cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert [job["status"] for job in read_summary(tmp_path / "sweep")[1]["jobs"]] == ["completed"] * 2
    # one refused as it extends a sweep keeps the sweep's own record: its command then continued no more ("holds
    # another sweep (it ran optimizer.lr=1e-3,3e-3,abc; this command gives optimizer.lr=1e-3,3e-3)")
    record = (tmp_path / "sweep" / "multirun.yaml").read_bytes()
    typo = run_main([*sweep, "optimizer.lr=1e-3,3e-3,abc"], cwd=tmp_path)
    assert typo.returncode == 1 and (tmp_path / "sweep" / "multirun.yaml").read_bytes() == record, typo.stderr[-2000:]
    again = run_main([*sweep, "optimizer.lr=1e-3,3e-3"], cwd=tmp_path)
    assert again.returncode == 0 and "Launching 2 jobs" in again.stdout + again.stderr, again.stderr[-2000:]


@pytest.mark.skipif(shutil.which("srun") is not None, reason="a Slurm client is here: the sweep would be submitted")
@pytest.mark.parametrize("launcher, chosen_by", [
    ("slurm", "hydra/launcher=slurm"), ("stacked_slurm", "hydra/launcher=stacked_slurm"),
    ("submitit_slurm", "hydra/launcher=submitit_slurm"),
    # a setting of the stacked launcher: the message named the launcher and suggested it
    ("stacked hydra.launcher.submitit.cluster=slurm", "hydra.launcher.submitit.cluster=slurm"),
    ("submitit_slurm hydra.launcher.partition=gpu", "hydra/launcher=submitit_slurm")])
def test_a_slurm_sweep_where_there_is_no_slurm_says_so_before_writing(launcher, chosen_by, fast, tmp_path):
    """submitit raised "Could not detect srun" with a traceback, after multirun.yaml was written. A Slurm setting
    given was left in the local launcher it suggested, and refused there (helper fixes60)."""
    result = run_main([*fast, "-m", *f"hydra/launcher={launcher}".split(), "seed=0,1",
                       f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Error: {chosen_by} submits the sweep" in result.stderr
    assert "and this machine has no srun (no Slurm client here)." in result.stderr
    assert ("(without hydra.launcher.partition=gpu, which it may not have)." in result.stderr) == (
        "partition" in launcher), result.stderr
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("launcher, setting", [("slurm", "hydra.launcher.partition=gpux"),
                                               ("stacked_slurm", "hydra.launcher.submitit.slurm_partition=gpux")])
def test_a_slurm_submission_that_sbatch_refuses_is_one_line(launcher, setting, fast, tmp_path):
    """submitit's FailedJobError, sbatch's reason at the end of a 50-line traceback."""
    client = tmp_path / "slurm_client"
    client.mkdir()
    for command, script in (("srun", "exit 0"),
                            ("sbatch", 'echo "sbatch: error: invalid partition specified: gpux" >&2; exit 1')):
        (client / command).write_text(f"#!/bin/sh\n{script}\n")
        (client / command).chmod(0o755)
    result = run_main([*fast, "-m", f"hydra/launcher={launcher}", setting, "seed=0,1",
                       f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path,
                      env={"PATH": f"{client}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith(
        "Error: Slurm refused the sweep's jobs: sbatch: error: invalid partition specified: gpux. Fix the launcher's "
        "Slurm settings"), result.stderr[-2000:]


def test_a_shuffled_sweep_numbers_its_jobs_alike_each_time_so_that_it_continues(fast, tmp_path):
    """Hydra's shuffle() ordered the jobs anew each time: the same command was "another sweep"."""
    sweep = [*fast, "-m", "seed=shuffle(0,1,2,3,4)", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    first = run_main(sweep, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    folders = sorted(path.name for path in (tmp_path / "sweep").glob("*_seed=*"))
    again = run_main(sweep, cwd=tmp_path)
    assert again.returncode == 0 and again.stderr.count("Already completed") == 5, again.stderr[-2000:]
    assert sorted(path.name for path in (tmp_path / "sweep").glob("*_seed=*")) == folders
    assert folders != [f"{n}_seed={n}" for n in range(5)]  # shuffled all the same
    # a value added shuffles them anew: the jobs keep their folders' numbers all the same, the new one after them
    more = run_main([*sweep[:-2], "seed=shuffle(0,1,2,3,4,5)", sweep[-1]], cwd=tmp_path)
    assert more.returncode == 0 and more.stderr.count("Already completed") == 5, more.stderr[-2000:]
    assert sorted(path.name for path in (tmp_path / "sweep").glob("*_seed=*")) == sorted([*folders, "5_seed=5"])


def test_a_sweep_given_a_number_written_otherwise_is_told_which_and_left_as_it_was(fast, tmp_path):
    """`model.dropout=0,0.5`, then `0.0,0.5,0.25` (range(0,1,step=0.25) gives 0.0): "holds another sweep", though
    the values were its own. One written otherwise names its job's folder otherwise: refused, and said so."""
    sweep = [*fast, "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_main([*sweep, "model.dropout=0,0.5"], cwd=tmp_path).returncode == 0
    record = (tmp_path / "sweep" / "multirun.yaml").read_bytes()
    respelled = run_main([*sweep, "model.dropout=0.0,0.5,0.25"], cwd=tmp_path)
    assert respelled.returncode == 1 and (
        f"Error: {tmp_path / 'sweep'} holds this sweep with model.dropout=0 where this command gives 0.0: the same "
        f"number, written otherwise, which names its job's folder otherwise") in respelled.stderr, respelled.stderr
    assert (tmp_path / "sweep" / "multirun.yaml").read_bytes() == record and len(job_dirs(tmp_path / "sweep")) == 2


def test_a_sweep_takes_jobs_added_after_its_own_whatever_the_order_of_its_values(fast, tmp_path):
    """Seeds added to a sweep join its summary (its jobs keep their numbers and folders, done ones are
    skipped), to any swept key: it was refused unless they came at the end of the first (Hydra numbers a grid
    with the last key varying fastest), which the README's own `... seed=0,1,2` commands could not do."""
    sweep = [*fast, "-m", f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # -m among the overrides: run.py moves it
    assert run_main([*sweep, "seed=0,1"], cwd=tmp_path).returncode == 0
    mode = run_main([*sweep, "seed=0,1", "--cfg", "job"], cwd=tmp_path)  # Hydra's ValueError was a traceback
    assert mode.returncode == 1 and mode.stderr.startswith("Error: -m cannot go with --help, --run, --cfg, --info")
    for shown in (["--cfg", "job"], ["--help"]):  # "add -m", said Hydra, and our --help
        mode = run_main([*fast, "hydra.mode=MULTIRUN", "seed=0,1", *shown], cwd=tmp_path)
        assert mode.returncode == 1 and mode.stderr.startswith("Error: hydra.mode=MULTIRUN cannot go with --help, "
                                                               "--run, --cfg")
    more = run_main([*sweep, "seed=0,1,2"], cwd=tmp_path)
    assert more.returncode == 0, more.stderr[-2000:]
    assert f"Sweep {tmp_path / 'sweep'} had 2 jobs; this one adds job 2." in more.stdout
    assert more.stderr.count("Already completed") == 2
    _, summary = read_summary(tmp_path / "sweep")
    assert [(job["job"], job["status"]) for job in summary["jobs"]] == [(0, "completed"), (1, "completed"),
                                                                      (2, "completed")]
    folders = sorted(path.name for path in job_dirs(tmp_path / "sweep"))
    renumbered = run_main([*sweep, "seed=2,0,1"], cwd=tmp_path)  # the same jobs, in their folders
    assert renumbered.returncode == 0 and renumbered.stderr.count("Already completed") == 3, renumbered.stderr
    assert sorted(path.name for path in job_dirs(tmp_path / "sweep")) == folders
    # seeds added to the second swept key: the jobs it ran keep their folders, the new ones come after them
    grid = [*fast, "-m", f"hydra.sweep.dir={tmp_path / 'grid'}", "optimizer.lr=1e-3,2e-3"]
    assert run_main([*grid, "seed=0,1"], cwd=tmp_path).returncode == 0
    seeds = run_main([*grid, "seed=0,1,2"], cwd=tmp_path)
    assert seeds.returncode == 0 and seeds.stderr.count("Already completed") == 4, seeds.stderr[-2000:]
    assert f"Sweep {tmp_path / 'grid'} had 4 jobs; this one adds jobs 4 to 5." in seeds.stdout
    assert [path.name for path in job_dirs(tmp_path / "grid")] == [
        "0_optimizer.lr=0.001,seed=0", "1_optimizer.lr=0.001,seed=1", "2_optimizer.lr=0.002,seed=0",
        "3_optimizer.lr=0.002,seed=1", "4_optimizer.lr=0.001,seed=2", "5_optimizer.lr=0.002,seed=2"]
    _, summary = read_summary(tmp_path / "grid")
    assert sorted((group["params"]["optimizer.lr"], group["n"], group["jobs"]) for group in summary["groups"]) == [
        ("0.001", 3, [0, 1, 4]), ("0.002", 3, [2, 3, 5])]
    # stopped before its last job: the summary lists it, not started, under the number it will have
    shutil.rmtree(job_dirs(tmp_path / "grid")[5])
    from lenet_exp.sweeps.records import summarize

    assert [(job.job, job.status, job.params.get("seed")) for job in summarize(tmp_path / "grid").jobs][4:] == [
        (4, "completed", "2"), (5, "not started", "2")]
    # a job folder renamed (or copied) within the sweep's: its job was trained again in the folder it recorded, and
    # listed twice in the summary
    job = job_dirs(tmp_path / "grid")[1]
    shutil.copytree(job, job.with_name("1_copy"))
    copied = run_main(grid + ["seed=0,1,2"], cwd=tmp_path)
    assert copied.returncode == 1 and copied.stderr.strip().splitlines()[-1] == (
        f"Error: {job.with_name('1_copy')} is a copy of the sweep's job folder {job.name}, which its summary would "
        f"list twice. Move the copy out of {tmp_path / 'grid'}, or delete it.")
    assert [job.message for job in summarize(tmp_path / "grid").jobs if job.status == "moved"] == [
        f"a copy of {job.name}: its results are left out. Move it out of the sweep's folder, or delete it"]
    shutil.rmtree(job.with_name("1_copy"))
    job.rename(job.with_name("1_old"))
    renamed = run_main(grid + ["seed=0,1,2"], cwd=tmp_path)
    assert renamed.returncode == 1 and "Traceback" not in renamed.stderr
    assert renamed.stderr.strip().splitlines()[-1] == (
        f"Error: {job.with_name('1_old')} holds a job of the sweep that ran in {job.name}: a job folder renamed, "
        f"whose job this sweep would train again there. Rename it back to {job.name}, or move it out of "
        f"{tmp_path / 'grid'}.")
    assert not job.exists()
    summary = summarize(tmp_path / "grid")
    listed = {record.job: record for record in summary.jobs}
    assert sorted(group["jobs"] for group in summary.groups) == [[0, 4], [2, 3, 5]]  # its seed left out
    assert (listed[1].status, listed[1].run_dir) == ("moved", str(job.with_name("1_old")))
    assert f"its folder was {job.name} when it ran" in listed[1].message


def test_seeds_added_to_a_sweep_of_one_seed_or_to_a_job_whose_overrides_record_is_cut_short(fast, tmp_path):
    """A constant made a swept key (``seed=0`` then ``seed=0,1``) was refused: the constant was left out of the job
    folders' names, which would have changed, and the jobs trained again in new folders. The new jobs are named
    as the old ones were, told apart by their numbers. A job killed as Hydra wrote its overrides.yaml matched no
    job of the grid, so no value could be added to the sweep, which said to add values; its hydra.yaml holds them
    too."""
    grid = [*fast, "-m", f"hydra.sweep.dir={tmp_path / 'grid'}", "optimizer.lr=1e-3,2e-3"]
    assert run_main([*grid, "seed=0"], cwd=tmp_path).returncode == 0
    (job_dirs(tmp_path / "grid")[1] / ".hydra" / "overrides.yaml").write_text("")
    seeds = run_main([*grid, "seed=0,1"], cwd=tmp_path)
    assert seeds.returncode == 0 and seeds.stderr.count("Already completed") == 2, seeds.stderr[-2000:]
    assert (f"Job folders are named as the sweep in {tmp_path / 'grid'} names them: without seed, a constant of"
            in seeds.stdout and f"Sweep {tmp_path / 'grid'} had 2 jobs; this one adds jobs 2 to 3." in seeds.stdout)
    assert [path.name for path in job_dirs(tmp_path / "grid")] == [
        "0_optimizer.lr=0.001", "1_optimizer.lr=0.002", "2_optimizer.lr=0.001", "3_optimizer.lr=0.002"]
    _, summary = read_summary(tmp_path / "grid")
    assert [(job["job"], job["status"], {key: job["params"][key] for key in ("optimizer.lr", "seed")})
            for job in summary["jobs"]] == [
        (number, "completed", {"optimizer.lr": lr, "seed": seed})
        for number, lr, seed in ((0, "0.001", "0"), (1, "0.002", "0"), (2, "0.001", "1"), (3, "0.002", "1"))]
    more = run_main([*grid, "seed=0,1,2"], cwd=tmp_path)  # and on: the naming holds
    assert more.returncode == 0 and more.stderr.count("Already completed") == 4, more.stderr[-2000:]
    assert [path.name for path in job_dirs(tmp_path / "grid")][4:] == ["4_optimizer.lr=0.001", "5_optimizer.lr=0.002"]


def test_hydras_own_basic_sweeper_numbers_a_grid_in_its_order_whatever_the_sweep_folder_holds(fast, tmp_path):
    """Numbered by the folders found, seeds added after lr were let through for Hydra's own sweeper, which
    numbers in its order: it trained the sweep's jobs again in new folders, and the summary counted them twice."""
    grid = [*fast, "-m", f"hydra.sweep.dir={tmp_path / 'grid'}", "optimizer.lr=1e-3,2e-3",
            "hydra.sweeper._target_=hydra._internal.core_plugins.basic_sweeper.BasicSweeper"]
    assert run_main([*grid, "seed=0,1"], cwd=tmp_path).returncode == 0
    folders = sorted(path.name for path in job_dirs(tmp_path / "grid"))
    seeds = run_main([*grid, "seed=0,1,2"], cwd=tmp_path)
    assert seeds.returncode == 1 and "holds another sweep" in seeds.stderr, seeds.stderr[-2000:]
    assert sorted(path.name for path in job_dirs(tmp_path / "grid")) == folders
    rates = run_main([*grid[:-2], "optimizer.lr=1e-3,2e-3,3e-3", grid[-1], "seed=0,1"], cwd=tmp_path)
    assert rates.returncode == 0 and rates.stderr.count("Already completed") == 4, rates.stderr[-2000:]


def test_a_sweep_given_its_keys_in_another_order_is_the_same_sweep(fast, tmp_path):
    """Hydra numbers the jobs by the keys' order: the same sweep was refused as another one, or its jobs would
    have trained again in new folders. Numbered by the folders it holds, each job is found in its own."""
    sweep = ["-m", *fast, f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_main([*sweep, "optimizer.lr=1e-3,2e-3", "seed=0,1"], cwd=tmp_path).returncode == 0
    folders = [path.name for path in job_dirs(tmp_path / "sweep")]
    swapped = run_main([*sweep, "seed=0,1", "optimizer.lr=1e-3,2e-3"], cwd=tmp_path)
    assert swapped.returncode == 0 and swapped.stderr.count("Already completed") == 4, swapped.stderr[-2000:]
    assert [path.name for path in job_dirs(tmp_path / "sweep")] == folders


def test_a_jobs_newest_failure_replaces_the_record_of_an_earlier_one(fast, tmp_path):
    """Run again, a job that had failed and failed otherwise kept the first failure's message in its metrics.json
    and the summary: only the console said what went wrong now."""
    sweep = ["-m", *fast, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    for missing in ("first", "second"):
        failed = run_main([*sweep, f"dataset.root={tmp_path / missing}"], cwd=tmp_path)
        assert failed.returncode == 1, failed.stderr[-2000:]
        assert [metrics(job)["message"].startswith(f"mnist is not in {tmp_path / missing}") for job in
                job_dirs(tmp_path / "sweep")] == [True, True]
        assert f"jobs 0, 1 failed: mnist is not in {tmp_path / missing}" in failed.stdout


def test_a_sweep_continues_with_its_data_folder_or_device_corrected_but_not_with_other_values(tiny_root, tmp_path):
    """As a run resumes elsewhere, a sweep whose jobs failed for a wrong dataset.root (or that moves to
    another device, or shows its progress) continues with the corrected command; what its jobs compute
    may not change."""
    sweep = ["-m", "dataset.download=false", "dataset.val_size=100", "trainer.epochs=1", "trainer.log_images=false",
             "optimizer.lr=1e-3,2e-3", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    wrong = run_main([*sweep, f"dataset.root={tmp_path / 'no data'}"], cwd=tmp_path)
    assert wrong.returncode == 1 and "jobs 0, 1 failed: mnist is not in" in wrong.stdout, wrong.stdout[-2000:]
    fixed = run_main([*sweep, f"dataset.root={tiny_root}", "device=cpu", "trainer.progress=false",
                      "trainer.eval_batch_size=50"], cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    _, summary = read_summary(tmp_path / "sweep")
    assert [(job["job"], job["status"]) for job in summary["jobs"]] == [(0, "completed"), (1, "completed")]
    before = sorted((tmp_path / "sweep").rglob("*"))
    for change in ("trainer.batch_size=32", "seed=5"):  # seed's data_seed too: "no override of this command sets" it
        other = run_main([*sweep, f"dataset.root={tiny_root}", "device=cpu", change], cwd=tmp_path)
        assert other.returncode == 1 and "holds another sweep" in other.stderr and change in other.stderr, other.stderr
    assert sorted((tmp_path / "sweep").rglob("*")) == before
    # under trainer.limit_batches the eval batch size says which images its jobs validate and test on
    capped = [*sweep[:-1], f"dataset.root={tiny_root}", "trainer.limit_batches=1", f"hydra.sweep.dir={tmp_path / 'capped'}"]
    assert run_main(capped, cwd=tmp_path).returncode == 0
    resized = run_main([*capped, "trainer.eval_batch_size=50"], cwd=tmp_path)
    assert resized.returncode == 1 and "holds another sweep" in resized.stderr, resized.stderr[-2000:]
    assert "trainer.eval_batch_size=50" in resized.stderr


@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_a_sweep_given_more_epochs_trains_its_jobs_on(launcher, fast, tmp_path):
    """As `resume=<run> trainer.epochs=N` does for a run, where the schedule does not spread over the epochs."""
    sweep = ["-m", f"hydra/launcher={launcher}", *fast, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_main(sweep, cwd=tmp_path).returncode == 0  # fast: 1 epoch
    longer = run_main([*sweep, "trainer.epochs=2"], cwd=tmp_path)
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert f"Sweep {tmp_path / 'sweep'} was given 1 epoch: its jobs go on to 2, each from where it stopped." \
        in longer.stdout
    assert longer.stderr.count("after epoch 1") == 2  # "Resuming … after epoch 1"
    for job in job_dirs(tmp_path / "sweep"):
        record = metrics(job)
        assert record["status"] == "completed" and [row["epoch"] for row in record["history"]] == [1, 2]
        events = load_events(job)  # TensorBoard keeps a run's first HParams session: the 1-epoch one is gone
        assert logged_hparams(events)["trainer.epochs"] == 2 and len(list(job.glob("events.out.tfevents.*"))) == 2
        assert sorted(scalar_values(events, "val/acc")) == [1, 2]
        # and so are the 1-epoch run's test point and card: the run is tested once, as it ends
        assert list(scalar_values(events, "test/acc")) == [record["best_epoch"]]
        assert len(events.Tensors("run/summary/text_summary")) == 1
    cosine = [*fast, "-m", "seed=0,1", "scheduler=cosine", f"hydra.sweep.dir={tmp_path / 'cosine'}"]
    assert run_main(cosine, cwd=tmp_path).returncode == 0
    refused = run_main([*cosine, "trainer.epochs=2"], cwd=tmp_path)
    assert refused.returncode == 1 and "(this command gives trainer.epochs=2) (scheduler=cosine spreads its learning " \
                                       "rates over trainer.epochs: more epochs make another run)" in refused.stderr
    if launcher == "basic":  # a sweep of schedules: which ones spread over the epochs
        schedules = [*fast, "-m", "seed=0", "scheduler=none,cosine", f"hydra.sweep.dir={tmp_path / 'schedules'}"]
        assert run_main(schedules, cwd=tmp_path).returncode == 0
        refused = run_main([*schedules, "trainer.epochs=2"], cwd=tmp_path)
        assert refused.returncode == 1 and "(its jobs sweep scheduler, and cosine and onecycle spread their " \
                                           "learning rates over trainer.epochs)" in refused.stderr, \
            refused.stderr[-2000:]


def test_a_sweep_given_more_epochs_says_that_its_jobs_stopped_early_stop_again(fast, tmp_path):
    """It said "its jobs go on to 5, each from where it stopped", and each stopped where it had (helper study61)."""
    sweep = ["-m", *fast, "dataset.val_size=1", "trainer.early_stop_patience=1", "seed=0,1",
             f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_main([*sweep, "trainer.epochs=4"], cwd=tmp_path).returncode == 0
    stopped = [metrics(job)["epochs_done"] for job in job_dirs(tmp_path / "sweep")]
    longer = run_main([*sweep, "trainer.epochs=5"], cwd=tmp_path)
    assert longer.returncode == 0 and (f"Sweep {tmp_path / 'sweep'} was given 4 epochs: its jobs go on to 5, each "
                                       f"from where it stopped; the 2 that stopped early stop there again: more "
                                       f"patience trains them on (trainer.early_stop_patience=N, N > 1).") \
        in longer.stdout, longer.stdout[-2000:]
    assert [metrics(job)["epochs_done"] for job in job_dirs(tmp_path / "sweep")] == stopped


@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_a_sweep_given_more_patience_trains_its_jobs_stopped_early_on(launcher, fast, tmp_path):
    """As a run does: a job that trainer.early_stop_patience stopped trained the first epochs of the more patient
    job, which goes on from them. One val image, whose accuracy is 0 or 1: a patience of 1 stops each job by its
    third epoch."""
    sweep = ["-m", f"hydra/launcher={launcher}", *fast, "dataset.val_size=1", "trainer.epochs=4", "seed=0,1",
             f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_main([*sweep, "trainer.early_stop_patience=1"], cwd=tmp_path).returncode == 0
    stopped = {job: metrics(job) for job in job_dirs(tmp_path / "sweep")}
    assert [record["epochs_done"] < 4 for record in stopped.values()] == [True, True]
    patient = run_main([*sweep, "trainer.early_stop_patience=3"], cwd=tmp_path)
    assert patient.returncode == 0, patient.stderr[-2000:]
    assert (f"Sweep {tmp_path / 'sweep'}: its jobs that trainer.early_stop_patience=1 stopped early go on with "
            f"trainer.early_stop_patience=3.") in patient.stdout
    if launcher == "stacked":  # stacked as they go on (they were planned as completed, and trained one by one)
        assert "Launching 2 jobs in 1 group" in patient.stdout, patient.stdout[-2000:]
    for job, record in stopped.items():
        after = metrics(job)
        assert (after["status"], after["epochs_done"]) == ("completed", 4)
        assert after["history"][:record["epochs_done"]] == record["history"]
        events = load_events(job)  # the stop's test is forgotten: the job is tested once, as it ends
        assert sorted(scalar_values(events, "val/acc")) == [1, 2, 3, 4]
        assert list(scalar_values(events, "test/acc")) == [after["best_epoch"]]
    _, summary = read_summary(tmp_path / "sweep")
    assert [(job["status"], job["epochs_done"]) for job in summary["jobs"]] == [("completed", 4)] * 2
    # all their epochs trained: more patience has nothing to train, and each is complete as it is (it was
    # marked running and tested again)
    written = {path: path.stat().st_mtime_ns for job in job_dirs(tmp_path / "sweep")
               for path in [job / "metrics.json", *job.glob("checkpoints/*.pt"), *job.glob("events.out.tfevents.*")]}
    endless = run_main([*sweep, "trainer.early_stop_patience=null"], cwd=tmp_path)
    assert endless.returncode == 0 and endless.stderr.count("it trained all its 4 epochs, as "
                                                            "trainer.early_stop_patience=null does: skipped") == 2, \
        endless.stderr[-2000:]
    assert {path: path.stat().st_mtime_ns for path in written} == written
    impatient = run_main([*sweep, "trainer.early_stop_patience=1"], cwd=tmp_path)
    assert impatient.returncode == 1 and ("holds another sweep (it ran trainer.early_stop_patience=null; this command "
                                          "gives trainer.early_stop_patience=1) (trainer.early_stop_patience: null -> "
                                          "1: less patience might have stopped sooner)") in impatient.stderr, \
        impatient.stderr


@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_a_job_that_cannot_train_on_is_failed_in_the_summary(launcher, fast, tmp_path):
    """A completed job given more epochs whose last.pt was unreadable kept its earlier metrics.json, which the
    summary read as completed: exit status 0. One whose last.pt was deleted failed after Hydra had rewritten the
    sweep's multirun.yaml and the job's .hydra/ for the longer sweep."""
    sweep = ["-m", f"hydra/launcher={launcher}", *fast, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_main(sweep, cwd=tmp_path).returncode == 0  # fast: 1 epoch
    first, second = job_dirs(tmp_path / "sweep")
    last = first / "checkpoints" / "last.pt"
    saved, record = last.read_bytes(), (tmp_path / "sweep" / "multirun.yaml").read_text()
    last.unlink()
    gone = run_main([*sweep, "trainer.epochs=2"], cwd=tmp_path)
    assert gone.returncode == 1 and f"Error: {last}, the checkpoint this run goes on from, is gone" in gone.stderr
    assert (tmp_path / "sweep" / "multirun.yaml").read_text() == record and metrics(second)["epochs_done"] == 1
    last.write_bytes(b"cut short")
    unreadable = run_main([*sweep, "trainer.epochs=2"], cwd=tmp_path)
    assert unreadable.returncode == 1, unreadable.stderr[-2000:]
    _, summary = read_summary(tmp_path / "sweep")
    assert [(job["job"], job["status"]) for job in summary["jobs"]] == [(0, "failed"), (1, "completed")]
    message = summary["jobs"][0]["message"]
    assert message.startswith(f"{last}, the checkpoint to resume from, cannot be used") and "<run dir>" not in message
    assert (metrics(first)["status"], metrics(first)["epochs_done"]) == ("completed", 1)  # its results stay
    last.write_bytes(saved)
    fixed = run_main([*sweep, "trainer.epochs=2"], cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert [job["status"] for job in read_summary(tmp_path / "sweep")[1]["jobs"]] == ["completed"] * 2
    assert metrics(first)["epochs_done"] == 2 and "later_failure" not in metrics(first)


@as_a_user
def test_a_summary_that_cannot_read_a_job_says_so_and_keeps_the_sweeps_summary(fast, tmp_path):
    """Another user's job folder, kept private, was summarised as not started (its metrics.json: failed), and
    the sweep's summary written over with that."""
    sweep_dir = tmp_path / "sweep"
    assert run_main(["-m", *fast, "seed=0,1", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path).returncode == 0
    first, second = job_dirs(sweep_dir)
    before = {name: (sweep_dir / name).read_bytes() for name in ("summary.csv", "summary.json")}
    (second / "checkpoints").chmod(0)  # what the summary never reads may be private
    for private in (second, first / "metrics.json", first / ".hydra" / "hydra.yaml"):
        private.chmod(0)
        try:
            result = subprocess.run([*AS_A_USER, sys.executable, "-m", "lenet_exp.sweeps", str(sweep_dir), "--no-plot"],
                                    cwd=tmp_path, capture_output=True, text=True, timeout=120)
        finally:
            private.chmod(0o755)
        assert result.returncode == 2 and result.stderr.strip().endswith(
            f"error: cannot read {private} (Permission denied): its job would be listed as not started or failed. "
            f"Summarise the sweep as a user who can read all of its folder; its summary is left as it was."
        ), result.stderr[-2000:]
        assert {name: (sweep_dir / name).read_bytes() for name in before} == before
    readable = subprocess.run([*AS_A_USER, sys.executable, "-m", "lenet_exp.sweeps", str(sweep_dir), "--no-plot"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
    (second / "checkpoints").chmod(0o755)
    assert readable.returncode == 0, readable.stderr[-2000:]


def test_a_nested_job_that_cannot_train_on_gets_its_record_back(fast, tmp_path):
    """A sweep put back the .hydra/ of jobs that trained nothing only in folders just inside it: a job of
    hydra.sweep.subdir=s_${seed}/${hydra.job.num} kept the longer sweep's, which its resume= then replayed."""
    sweep = ["-m", *fast, "seed=0,1", "hydra.sweep.subdir=s_${seed}/${hydra.job.num}",
             f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_main(sweep, cwd=tmp_path).returncode == 0  # fast: 1 epoch
    first = tmp_path / "sweep" / "s_0" / "0"
    (first / "checkpoints" / "last.pt").write_bytes(b"cut short")
    record = (first / ".hydra" / "overrides.yaml").read_bytes()
    longer = run_main([*sweep, "trainer.epochs=2"], cwd=tmp_path)
    assert longer.returncode == 1 and "the checkpoint to resume from, cannot be used" in longer.stderr, \
        longer.stderr[-2000:]
    assert (first / ".hydra" / "overrides.yaml").read_bytes() == record
    assert "trainer.epochs=2" in (tmp_path / "sweep" / "s_1" / "1" / ".hydra" / "overrides.yaml").read_text()


def test_a_summary_written_while_the_sweep_runs_lists_its_jobs_to_come_as_no_failure(fast, tmp_path):
    """`python -m lenet_exp.sweeps` on a running sweep said of its jobs to come that the sweep had ended before
    them, and exited 1; and of a job starting up (its folder taken, no epoch recorded) that it had failed."""
    sweep_dir = tmp_path / "sweep"
    assert run_main(["-m", *fast, "seed=0,1,2", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path).returncode == 0
    training, starting, to_come = job_dirs(sweep_dir)
    (training / "metrics.json").write_text(json.dumps({**metrics(training), "status": "running"}))  # training
    (starting / "metrics.json").unlink()  # as if it were starting up
    shutil.rmtree(to_come)  # as if it had not started yet
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from lenet_exp.files import own_folder; "
                               "print([own_folder(folder) for folder in sys.argv[1:]], flush=True); sys.stdin.read()",
                               str(sweep_dir), str(training), str(starting)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "[None, None, None]"  # it holds them, as the sweep's process does
        meanwhile = run_main([str(sweep_dir), "--no-plot"], cwd=tmp_path, module="lenet_exp.sweeps")
    finally:
        holder.kill()
        holder.wait()
    jobs = [(job["status"], job["message"]) for job in read_summary(sweep_dir)[1]["jobs"]]
    assert meanwhile.returncode == 0 and jobs == [("running", f"1 epoch done (pid {holder.pid})"),
                                                  ("running", "starting: no epoch recorded yet"),
                                                  ("not started", f"not yet: the sweep still runs (pid {holder.pid})")]
    after = run_main([str(sweep_dir), "--no-plot"], cwd=tmp_path, module="lenet_exp.sweeps")
    jobs = [(job["status"], job["message"]) for job in read_summary(sweep_dir)[1]["jobs"]]
    assert after.returncode == 1 and jobs == [
        ("running", "after epoch 1 when last recorded (or its process died since)"),  # or runs elsewhere
        ("failed", "no metrics.json: the job was killed or crashed before writing it"),
        ("not started", "the sweep ended first; running the sweep again runs the rest")]


def test_a_sweep_run_again_removes_what_a_killed_summary_left(fast, tmp_path):
    sweep = ["-m", *fast, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_main(sweep, cwd=tmp_path).returncode == 0
    leftover = tmp_path / "sweep" / ".summary.png.k3j_x1.tmp"  # files.write_atomic's, killed before its rename
    leftover.write_bytes(b"\x89PNG half")
    assert run_main(sweep, cwd=tmp_path).returncode == 0 and not leftover.exists()
    assert is_png(tmp_path / "sweep" / "summary.png")


@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_a_job_whose_folder_another_process_holds_writes_nothing_into_it(launcher, fast, tmp_path):
    """A `resume=` of one job while its sweep runs again: the refused job recorded its failure in the other's
    metrics.json (a "later failure" that no re-run cleared, so the summary kept the job failed), and wrote its
    lines (where it ran, its refusal) among the other's in run.log (helper concur57)."""
    sweep = ["-m", f"hydra/launcher={launcher}", *fast, "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_main(sweep, cwd=tmp_path).returncode == 0
    first, _ = job_dirs(tmp_path / "sweep")
    written = {path: path.read_bytes() for path in first.iterdir() if path.is_file() and path.name != ".lock"}
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from lenet_exp.files import own_folder; "
                               "print(own_folder(sys.argv[1]), flush=True); sys.stdin.read()", str(first)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "None"  # it holds the folder, as a resume of the job would
        refused = run_main(sweep, cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert f"is in use by another run (pid {holder.pid})" in refused.stderr, refused.stderr[-2000:]
    assert {path: path.read_bytes() for path in written} == written
    again = run_main(sweep, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [job["status"] for job in read_summary(tmp_path / "sweep")[1]["jobs"]] == ["completed"] * 2


def test_a_sweep_extended_while_it_runs_is_told_to_wait_and_run_again(fast, tmp_path):
    """It said which job it would add, then that the folder was in use: wait, "or choose another folder", which
    would start a new sweep, not extend this one (helper concur57)."""
    sweep = ["-m", *fast, f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_main([*sweep, "seed=0,1"], cwd=tmp_path).returncode == 0
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from lenet_exp.files import own_folder; "
                               "print(own_folder(sys.argv[1]), flush=True); sys.stdin.read()", str(tmp_path / "sweep")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "None"  # it holds the sweep's folder, as its run.py does
        extended = run_main([*sweep, "seed=0,1,2"], cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert extended.returncode == 1 and "adds job" not in extended.stdout + extended.stderr, extended.stderr
    assert extended.stderr.strip().endswith(f"is in use by another sweep (pid {holder.pid}). Wait until it ends, then "
                                            f"run the same command again."), extended.stderr


def test_a_job_resumed_by_another_process_is_summarised_as_running_there(fast, tmp_path):
    """A sweep run again while `resume=` trains one of its jobs (helper concur57): the job was refused with "or
    choose another output directory", which a sweep's job has not, and summarised as failed, "stopped while
    running (killed?)", with advice that was refused again."""
    once = [override for override in fast if not override.startswith("trainer.epochs=")]
    sweep = ["-m", *once, "trainer.epochs=500,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    job = tmp_path / "sweep" / "0_trainer.epochs=500"

    def after_epoch(epochs: int, alive: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 120
        while (metrics(job) if (job / "metrics.json").is_file() else {}).get("epochs_done", 0) < epochs:
            assert alive() and time.monotonic() < deadline
            time.sleep(0.1)

    def stopped_after_epoch_1() -> None:
        after_epoch(1, lambda: True)
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill` would

    stopping = threading.Thread(target=stopped_after_epoch_1, daemon=True)
    stopping.start()
    assert run_main(sweep, cwd=tmp_path).returncode == 128 + signal.SIGTERM
    stopping.join()
    resumed = start([f"resume={job}"], cwd=tmp_path)
    after_epoch(metrics(job)["epochs_done"] + 1, lambda: resumed.poll() is None)
    again = run_main(sweep, cwd=tmp_path)
    assert again.returncode == 1, again.stderr[-2000:]
    assert (f"is in use by another run (pid {resumed.pid}). Wait until it ends, then run the sweep's command "
            f"again.") in again.stderr, again.stderr[-2000:]
    record = read_summary(tmp_path / "sweep")[1]["jobs"][0]
    assert record["status"] == "running", record
    assert re.fullmatch(rf"\d+ epochs done by another process \(pid {resumed.pid}\), which holds its folder; once it "
                        r"ends, the sweep's command with its hydra\.sweep\.dir= takes the job up", record["message"])


@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_job_folders_named_without_the_jobs_number_must_still_be_apart(launcher, fast, tmp_path):
    """A subdir of one's own that gives two jobs one folder would have the second write over the first (the
    basic launcher's summary then read seed 0's results as seed 1's; the stacked one trained both in it)."""
    sweep = ["-m", f"hydra/launcher={launcher}", *fast]
    shared = run_main([*sweep, "optimizer.lr=1e-3,2e-3", "seed=0,1", "hydra.sweep.subdir=seed_${seed}",
                       f"hydra.sweep.dir={tmp_path / 'shared'}"], cwd=tmp_path)
    assert shared.returncode == 1 and not list((tmp_path / "shared").glob("*/.hydra")), shared.stderr[-2000:]
    assert ("Error: hydra.sweep.subdir=seed_${seed} gives jobs 0 and 2 one folder (seed_0), where the second would "
            "overwrite the first. Name each job's folder with its number") in shared.stderr
    # a subdir of one's own that tells the jobs apart runs, and continues as the default one does
    for seeds in ("0,1", "0,1,2"):
        apart = run_main([*sweep, f"seed={seeds}", "optimizer.lr=1e-3,2e-3", "hydra.sweep.subdir=${hydra.job.num}",
                          f"hydra.sweep.dir={tmp_path / 'apart'}"], cwd=tmp_path)
        assert apart.returncode == 0, apart.stderr[-2000:]  # the second: "Missing mandatory value: hydra.job.num"
    _, summary = read_summary(tmp_path / "apart")
    assert [(job["job"], job["status"], Path(job["run_dir"]).name) for job in summary["jobs"]] == [
        (number, "completed", str(number)) for number in range(6)]
    # the same sweep with its folders named otherwise would start its jobs over: refused, saying so
    renamed = run_main([*sweep, "seed=0,1,2", "optimizer.lr=1e-3,2e-3", f"hydra.sweep.dir={tmp_path / 'apart'}"],
                       cwd=tmp_path)
    assert renamed.returncode == 1 and (f"Error: {tmp_path / 'apart'} holds this sweep with its job folders named "
                                        "otherwise (hydra.sweep.subdir=${hydra.job.num} then, the config's own now)"
                                        ) in renamed.stderr, renamed.stderr[-2000:]
    # folders whose names begin with another number than the job's: the summary took 5_… and 7_… for jobs 5
    # and 7, listed jobs 0 and 1 as not started, and failed the sweep
    seeded = run_main([*sweep, "seed=5,7", "hydra.sweep.subdir=${seed}_${optimizer.lr}",
                       f"hydra.sweep.dir={tmp_path / 'seeded'}"], cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    assert [(job["job"], job["status"], Path(job["run_dir"]).name) for job in read_summary(tmp_path / "seeded")[1][
        "jobs"]] == [(0, "completed", "5_0.001"), (1, "completed", "7_0.001")]
    # the number by Hydra's resolver (as Hydra documents it): "cannot be resolved (HydraConfig was not set)"
    resolved = run_main([*sweep, "seed=5,7", "hydra.sweep.subdir=s${seed}_n${hydra:job.num}",
                         f"hydra.sweep.dir={tmp_path / 'resolved'}"], cwd=tmp_path)
    assert resolved.returncode == 0, resolved.stderr[-2000:]
    assert sorted(path.name for path in (tmp_path / "resolved").glob("s?_n?")) == ["s5_n0", "s7_n1"]


def test_a_metrics_json_edited_into_other_types_is_summarised_without_them(tmp_path):
    """`"val": "oops"` in one job's metrics.json: the summary of every job ended in an AttributeError."""
    from lenet_exp.sweeps.records import summarize

    job = tmp_path / "0_seed=0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    (job / "metrics.json").write_text(json.dumps({"status": "completed", "val": "oops", "test": 5,
                                                  "epochs_done": "2", "epochs": 2, "wall_time_s": "1"}))
    [record] = summarize(tmp_path).jobs
    assert (record.status, record.val_acc, record.test_acc, record.epochs_done, record.epochs, record.wall_time_s) == (
        "completed", None, None, None, 2, None)


def test_the_table_shortens_long_floats_and_keeps_integers_whole():
    """Seeds 123456789 and 123456790 were both printed 1.235e+08 (in the console and TensorBoard's card)."""
    from lenet_exp.sweeps.records import JobRecord, Summary
    from lenet_exp.sweeps.table import job_table

    jobs = [JobRecord(job=i, status="completed", overrides=[], run_dir=str(i), val_acc=0.9,
                      params={"seed": seed, "optimizer.lr": lr})
            for i, (seed, lr) in enumerate([("123456789", "0.0012520653814999472"), ("123456790", "0.001")])]
    _, rows = job_table(Summary("sweep", jobs, ["seed", "optimizer.lr"], []))
    assert [row[2:4] for row in rows] == [["123456789", "0.001252"], ["123456790", "0.001"]]
    # Hydra writes 1e5 as 100000.0 and 1e6 as 1e+06: one column printed them in two styles
    jobs = [JobRecord(job=i, status="completed", overrides=[], run_dir=str(i), val_acc=0.9 - i / 10,
                      params={"optimizer.weight_decay": decay}) for i, decay in enumerate(["100000.0", "1e+06", "0.5"])]
    _, rows = job_table(Summary("sweep", jobs, ["optimizer.weight_decay"], []))
    assert [row[2] for row in rows] == ["1e+05", "1e+06", "0.5"]


def test_a_grid_is_listed_in_the_order_its_jobs_are_numbered():
    from omegaconf import OmegaConf

    from lenet_exp.sweeps.space import BASIC_SWEEPERS, grid_jobs

    def config(*task: str):
        return OmegaConf.create({"hydra": {"sweeper": {"_target_": BASIC_SWEEPERS[-1], "params": {"seed": "0,1"}},
                                           "overrides": {"task": list(task)}}})

    # the study's params first (seed), then the command line's keys; the last varies fastest
    assert grid_jobs(config("optimizer.lr=1e-3,3e-3", "trainer.epochs=1")) == [
        (f"optimizer.lr={lr}", f"seed={seed}", "trainer.epochs=1") for seed in (0, 1) for lr in ("0.001", "0.003")]
    assert grid_jobs(config("optimizer=glob(adam*)")) is None  # listed only by the config loader, as the sweep runs



def test_a_sweep_whose_summary_cannot_be_written_exits_non_zero(fast, tmp_path):
    """Its jobs completed, but a summary file is missing: the exit status says so (here a folder stands
    where summary.png would go)."""
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "summary.png").mkdir(parents=True)
    result = run_main([*fast, "-m", "seed=0,1", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "2 jobs (2 completed)" in result.stdout
    assert f"Could not write summary.png: Cannot write {sweep_dir / 'summary.png'} (Is a directory)" in result.stdout
    assert f"{sweep_dir / 'summary.png'} is a folder where a file should be: move it away" in result.stdout
    assert (sweep_dir / "summary.csv").is_file()  # the others are written all the same


def test_a_sweep_whose_other_jobs_diverged_plots_without_matplotlibs_warnings(fast, tmp_path):
    """One completed job alone on a log axis: matplotlib's "Attempting to set identical low and high xlims"
    warning, with its source line, came between the sweep's lines."""
    import warnings

    with warnings.catch_warnings(record=True) as warned:  # as a process's first warning is shown (pytest keeps them)
        warnings.simplefilter("always")
        result = run_main(["-m", *fast, "optimizer=sgd", "optimizer.lr=1e6,0.05",
                           f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert [job["status"] for job in read_summary(tmp_path / "sweep")[1]["jobs"]] == ["diverged", "completed"]
    assert result.returncode == 1 and "Warning" not in result.stderr + result.stdout, result.stderr[-2000:]
    assert not [w for w in warned if "matplotlib" in w.filename or "sweeps" in w.filename], [str(w) for w in warned]
    assert (tmp_path / "sweep" / "summary.png").stat().st_size > 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda signum: signum.name)
def test_a_stop_between_two_jobs_ends_the_sweep_with_its_summary(fast, tmp_path, monkeypatch, signum):
    """A stop while Hydra composes the next job reached run.py with no job to take it: Ctrl-C ended the
    sweep without the summary of the jobs it had done, and SIGTERM or SIGHUP killed it without a word."""
    from lenet_exp.sweeps.callback import SweepSummary

    job_end = SweepSummary.on_job_end

    def stop_after_the_first_job(self, config, job_return, **kwargs):
        job_end(self, config, job_return, **kwargs)
        if config.hydra.job.num == 0:
            signal.raise_signal(signum)

    def untaken(signum, frame):  # in place of the default, which would kill this test's process
        raise RuntimeError(f"signal {signum} reached no handler of run.py")

    monkeypatch.setattr(SweepSummary, "on_job_end", stop_after_the_first_job)
    sweep = tmp_path / "sweep"
    # SIGINT: Python's own handler raises KeyboardInterrupt
    previous = signal.signal(signum, untaken) if signum != signal.SIGINT else None
    try:
        stopped = run_main([*fast, "-m", "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    finally:
        if previous is not None:
            signal.signal(signum, previous)
    assert stopped.returncode == 128 + signum, stopped.stderr[-2000:]
    assert f"Interrupted by signal {signum}" in stopped.stderr and "continues the sweep" in stopped.stderr
    rows, _ = read_summary(sweep)
    assert [row["status"] for row in rows] == ["completed", "not started"]


@pytest.mark.parametrize("shown", [True, False], ids=["plot-and-tensorboard", "table-alone"])
def test_a_stopped_sweeps_summary_is_written_whole_as_the_sweep_asks(fast, tmp_path, monkeypatch, shown):
    """The summary of a sweep that a stop ended (its basic launcher's job stopped) was written with the default
    settings, whatever hydra.callbacks.sweep_summary said (summary.png and its TensorBoard run of a sweep that
    asked for neither), and a second stop as it began left it half written ("module 'matplotlib' has no
    attribute 'get_data_path'", summary.png missing)."""
    import lenet_exp.sweeps.report as report
    from lenet_exp.sweeps.callback import SweepSummary

    job_end, write_summary = SweepSummary.on_job_end, report.write_summary

    def stop_after_the_first_job(self, config, job_return, **kwargs):
        job_end(self, config, job_return, **kwargs)
        if config.hydra.job.num == 0:
            signal.raise_signal(signal.SIGTERM)

    def stopped_again_as_it_is_written(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # its handler runs here, as the summary begins
        return write_summary(*args, **kwargs)

    monkeypatch.setattr(SweepSummary, "on_job_end", stop_after_the_first_job)
    monkeypatch.setattr(report, "write_summary", stopped_again_as_it_is_written)
    sweep = tmp_path / "sweep"
    settings = [f"hydra.callbacks.sweep_summary.{name}={str(shown).lower()}" for name in ("plot", "tensorboard")]

    def untaken(signum, frame):  # in place of the default, which would kill this test's process
        raise RuntimeError(f"signal {signum} reached no handler of run.py")

    previous = signal.signal(signal.SIGTERM, untaken)
    try:
        stopped = run_main([*fast, "-m", "seed=0,1", *settings, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stopped.returncode == 128 + signal.SIGTERM and "Traceback" not in stopped.stderr, stopped.stderr[-2000:]
    assert "Could not" not in stopped.stderr and "continues the sweep" in stopped.stderr, stopped.stderr[-2000:]
    assert [row["status"] for row in read_summary(sweep)[0]] == ["completed", "not started"]
    assert (sweep / "summary.png").exists() == (sweep / "summary").exists() == shown
    if shown:
        assert is_png(sweep / "summary.png") and load_events(sweep / "summary").Tags()["images"]
    assert not list(sweep.glob(".*.tmp"))


def test_summary_settings_that_cannot_be_read_leave_a_stopped_sweep_its_whole_summary():
    """A stopped sweep reads them from its multirun.yaml, outside the summary's own guard: an edited record ended
    the stop with a traceback and exit status 1, where it says how to go on."""
    from omegaconf import OmegaConf

    from lenet_exp.sweeps.report import summary_settings

    unresolvable = OmegaConf.create({"hydra": {"callbacks": {"sweep_summary": {"plot": "${oc.env:NO_SUCH_VARIABLE}"}}}})
    assert summary_settings(unresolvable) == summary_settings(OmegaConf.create(["a", "list"])) == \
        {"plot": True, "tensorboard": True}
    chosen = OmegaConf.create({"hydra": {"callbacks": {"sweep_summary": {"plot": False}}}})
    assert summary_settings(chosen) == {"plot": False, "tensorboard": True}


def test_a_stop_after_a_studys_trials_ended_does_not_say_stopped_trials_resume(tmp_path, monkeypatch, capsys):
    """A stored study stopped as its trials ran resumes them first; one stopped as its summary was written
    had stopped none."""
    from lenet_exp.sweeps import ending

    monkeypatch.setattr(ending, "_sweep_dir", tmp_path / "study")
    monkeypatch.setattr(ending, "_stored_study", True)
    continues = f"running the same command with hydra.sweep.dir={tmp_path / 'study'} continues the sweep"
    assert ending.interrupted_status(2) == ending.interrupted_status(2, after_the_jobs=True) == 130
    during, after = capsys.readouterr().err.splitlines()
    assert during.startswith(f"Interrupted by signal 2; {continues}: its stopped trials resume first")
    assert after == f"Stopped by signal 2 after the sweep's jobs ended; {continues}."


def test_a_stop_after_the_last_job_does_not_offer_to_continue_a_completed_sweep(fast, tmp_path, monkeypatch):
    """Ctrl-C after the last job had completed ended with "running the same command with hydra.sweep.dir=…
    continues the sweep", which had nothing left to run."""
    from lenet_exp.sweeps.callback import SweepSummary

    job_end = SweepSummary.on_job_end

    def ctrl_c_after_the_last_job(self, config, job_return, **kwargs):
        job_end(self, config, job_return, **kwargs)
        if config.hydra.job.num == 1:
            raise KeyboardInterrupt  # as a SIGINT there raises it

    monkeypatch.setattr(SweepSummary, "on_job_end", ctrl_c_after_the_last_job)
    sweep = tmp_path / "sweep"
    stopped = run_main([*fast, "-m", "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert stopped.stderr.rstrip().endswith("Interrupted by signal 2; every job of the sweep had completed.")
    assert [row["status"] for row in read_summary(sweep)[0]] == ["completed", "completed"]
