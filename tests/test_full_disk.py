"""A full disk (or a used-up quota) at each place a run or a sweep writes: one short message, no traceback,
what was written before kept, and the same command continues once there is space. Real file systems
(tmpfs, mounted as root; skipped otherwise), filled up for real."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest
import torch

from conftest import fast_overrides, run_cli, run_main
from tensorboard_events import load_events, scalar_values, session_status
from lenet_exp.files import is_disk_full, read_json
from lenet_exp.runlog import RunLog
from lenet_exp.loop import Run
from lenet_exp.record import TensorBoardLog


@contextlib.contextmanager
def tmpfs(mount: Path, size: str, files: int | None = None) -> Iterator[Path]:
    """A tmpfs of ``size`` (and room for as many ``files``: inodes, itself one) mounted on ``mount`` (made if need
    be) for the duration."""
    mount.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (f",nr_inodes={files}" if files else "")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_up(disk: Path) -> None:
    """Write to ``disk`` until not one byte more fits."""
    with open(disk / "filler", "wb", buffering=0) as file:
        for chunk in (2**16, 2**12, 1):
            with contextlib.suppress(OSError):
                while file.write(b"\0" * chunk):
                    pass


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A real file system of 1600 KiB: room for one epoch's two checkpoints, not for the next."""
    with tmpfs(tmp_path / "small_disk", "1600k") as mount:
        yield mount


def test_a_full_disk_keeps_the_checkpoints_and_the_run_resumes_once_there_is_space(small_disk, tiny_root, tmp_path):
    run_dir = small_disk / "run"
    args = [*fast_overrides(tiny_root), "trainer.epochs=3", "trainer.log_images=false", f"hydra.run.dir={run_dir}"]
    result = run_main(args, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"No space left on {small_disk} writing {run_dir / 'checkpoints' / 'last.pt'}; its previous version is kept" \
        in result.stderr
    checkpoints = run_dir / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.pt", "last.pt"]  # no temporary file left
    assert torch.load(checkpoints / "last.pt", weights_only=True)["run_state"]["epoch"] == 1  # intact
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)  # space freed
    resumed = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming" in resumed.stderr and read_json(run_dir / "metrics.json")["status"] == "completed"


def test_a_disk_that_fills_up_after_an_epoch_ends_the_run_with_one_message(small_disk, tiny_root, tmp_path,
                                                                           monkeypatch):
    """Here the first write that needs space after the epoch is TensorBoard's (the final test's figures), which
    its writer thread makes; then metrics.json's."""
    end_epoch = Run.end_epoch

    def then_the_disk_fills_up(self, *args, **kwargs):
        ended = end_epoch(self, *args, **kwargs)
        fill_up(small_disk)
        return ended

    monkeypatch.setattr(Run, "end_epoch", then_the_disk_fills_up)
    run_dir = small_disk / "run"
    command = [*fast_overrides(tiny_root), "trainer.log_images=true", f"hydra.run.dir={run_dir}"]  # 1 epoch
    result = run_main(command, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "Logging error" not in result.stderr
    assert (f"Error: No space left on {small_disk} writing the files of {run_dir} (No space left on device). Free "
            f"some space (or files, where `df -i` shows none left), then run the same command again to continue.") in result.stderr
    monkeypatch.undo()
    (small_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    again = run_main(command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Resuming" in again.stderr and read_json(run_dir / "metrics.json")["status"] == "completed"


def test_a_disk_that_fills_up_as_the_run_ends_leaves_it_to_end_again(small_disk, tiny_root, tmp_path, monkeypatch):
    """metrics.json said "completed" before the run's summary card and HParams session end were on disk: the same
    command then skipped it as complete, its TensorBoard run without an end for good."""
    card = TensorBoardLog.card

    def the_disk_fills_up_then(self, markdown):
        fill_up(small_disk)
        card(self, markdown)

    monkeypatch.setattr(TensorBoardLog, "card", the_disk_fills_up_then)
    run_dir = small_disk / "run"
    command = [*fast_overrides(tiny_root), f"hydra.run.dir={run_dir}"]
    result = run_main(command, cwd=tmp_path)
    assert result.returncode == 1 and f"Error: No space left on {small_disk} writing" in result.stderr, result.stderr
    assert read_json(run_dir / "metrics.json")["status"] == "running"
    monkeypatch.undo()
    (small_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    again = run_main(command, cwd=tmp_path)
    assert again.returncode == 0 and "Already completed" not in again.stderr, again.stderr[-2000:]
    events = load_events(run_dir)
    assert read_json(run_dir / "metrics.json")["status"] == "completed" and session_status(events) == "STATUS_SUCCESS"
    assert list(scalar_values(events, "test/acc")) == [1]  # the end logged once, by the run that ended


@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_a_full_disk_is_refused_before_hydra_writes_into_it(mode, small_disk, tiny_root, tmp_path):
    """Hydra writes .hydra/ (and a sweep's multirun.yaml) before any job could catch its error."""
    fill_up(small_disk)
    folder = small_disk / mode
    args = ([f"hydra.run.dir={folder}"] if mode == "run" else ["-m", "seed=0,1", f"hydra.sweep.dir={folder}"])
    result = run_main([*fast_overrides(tiny_root), *args], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Error: No space left on {small_disk} (0 KiB free) for {folder}. Free some space" in result.stderr
    assert not folder.exists()  # made for it, and left behind empty


def test_a_disk_without_room_for_a_runs_files_is_refused_before_hydra_writes_into_it(tiny_root, tmp_path):
    """A disk out of files (inodes) with space to spare: Hydra's write of .hydra/config.yaml was a traceback. (Of
    the 40, the disk's root and the run's folder, made for the check, take two.)"""
    with tmpfs(tmp_path / "few_files", "8m", files=40) as disk:
        result = run_main([*fast_overrides(tiny_root), f"hydra.run.dir={disk / 'run'}"], cwd=tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert (f"Error: No space left on {disk} (room for 38 more files) for {disk / 'run'}. Free some space (or "
                f"files, where `df -i` shows none left)") in result.stderr
        assert not (disk / "run").exists()


@pytest.mark.parametrize("files", [None, 2, 5], ids=["no space", "no file", "no log file"])
def test_a_sweep_whose_next_job_finds_no_space_ends_and_continues_once_there_is_space(tiny_root, tmp_path, files):
    """Hydra writes each job's .hydra/ and opens its run.log itself: a full disk there ends the sweep (non-zero)
    with a message and the summary of the jobs before it. Here job 1's folder is a file system of its own, full,
    or with room for no more files (.hydra/'s or its run.log: logging's error of it was a traceback); once it is
    gone, the same command runs job 1 and keeps job 0. A summary that finds no space keeps the one before."""
    args = [*fast_overrides(tiny_root), "-m", "seed=0,1", "trainer.log_images=false"]
    with tmpfs(tmp_path / "sweep_disk", "8m") as disk:
        sweep_dir = disk / "sweep"
        command = [*args, f"hydra.sweep.dir={sweep_dir}"]
        with tmpfs(sweep_dir / "1_seed=1", "4k" if files is None else "1m", files) as job_1:
            if files is None:
                fill_up(job_1)
            result = run_main(command, cwd=tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
        assert (f"No space left on device: Hydra could not write the config or log of the sweep's next job; the jobs "
                f"before it keep what they wrote. Free some space (or files, where `df -i` shows none left), then run "
                f"the same command with hydra.sweep.dir={sweep_dir} to continue the sweep.") in result.stderr
        assert read_json(sweep_dir / "0_seed=0" / "metrics.json")["status"] == "completed"
        assert "2 jobs (1 completed, 1 not started)" in result.stdout  # job 0's summary, and job 1 it ended before

        again = run_main(command, cwd=tmp_path)
        assert again.returncode == 0, again.stderr[-2000:]
        assert [read_json(sweep_dir / job / "metrics.json")["status"] for job in ("0_seed=0", "1_seed=1")] == \
            ["completed"] * 2
        assert "Training" not in again.stderr.split("[job 1]")[0]  # job 0 was not trained again
        summary = {path: path.read_bytes() for path in [*sweep_dir.glob("summary.*"), *sweep_dir.glob("summary/*")]}
        assert len(summary) == 5  # summary.csv, .json, .md, .png and the TensorBoard run's events

        fill_up(disk)
        rewrite = run_main([str(sweep_dir)], cwd=tmp_path, module="lenet_exp.sweeps")
        assert rewrite.returncode == 1 and "Traceback" not in rewrite.stderr + rewrite.stdout
        assert (f"Could not write summary.csv, summary.json, summary.md, summary.png, TensorBoard summary: no space "
                f"left on {disk}. Free some space (or files, where `df -i` shows none left), then `python -m "
                f"lenet_exp.sweeps {sweep_dir}` writes them again.") in rewrite.stdout
        assert {path: path.read_bytes() for path in [*sweep_dir.glob("summary.*"), *sweep_dir.glob("summary/*")]} \
            == summary


def test_a_job_that_could_not_record_its_end_on_a_full_disk_is_not_said_to_be_killed(small_disk):
    """A job whose disk filled up could not write its failure into its metrics.json, which still said running: the
    sweep's table said it was killed."""
    from lenet_exp.sweeps.records import summarize

    for job, metrics in (("0_seed=0", '{"status": "running", "epochs_done": 1}'), ("1_seed=1", None)):
        (small_disk / "sweep" / job / ".hydra").mkdir(parents=True)
        (small_disk / "sweep" / job / ".hydra" / "overrides.yaml").write_text(f"- seed={job[0]}\n")
        if metrics:
            (small_disk / "sweep" / job / "metrics.json").write_text(metrics)
    fill_up(small_disk)
    said = [job.message for job in summarize(small_disk / "sweep").jobs]
    assert said == [f"{what}: its disk is full, so it could not record how it ended; free some space, then the sweep's "
                    f"command with its hydra.sweep.dir= resumes it"
                    for what in ("stopped while running after epoch 1", "no metrics.json")]


def test_a_summary_in_a_read_only_folder_says_so_once(tmp_path):
    """Each summary file refused said the same sentence again, and TensorBoard's "OSError: [Errno 30] Read-only
    file system: b'…'", without what to do."""
    with tmpfs(tmp_path / "disk", "4m") as disk:
        job = disk / "sweep" / "0_seed=0"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
        (job / "metrics.json").write_text('{"status": "completed", "val": {"acc": 0.5}, "test": {"acc": 0.5}}')
        (disk / "sweep" / "multirun.yaml").write_text("hydra: {}\n")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        result = run_main([str(disk / "sweep")], cwd=tmp_path, module="lenet_exp.sweeps")
        assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout
        assert result.stdout.strip().splitlines()[-1] == (
            f"Could not write summary.csv, summary.json, summary.md, summary.png, TensorBoard summary (Read-only file "
            f"system): make {disk / 'sweep'} a folder you may write in, then `python -m lenet_exp.sweeps "
            f"{disk / 'sweep'}` writes them again."), result.stdout


def test_a_fused_kernel_whose_build_folder_fills_up_says_so(tiny_root, tmp_path):
    """The linker's "No space left on device" was cut from the build's error, and the message said to install g++
    and ninja. A real build (about 30 s) on a disk with room for its source, not for its object and library."""
    with tmpfs(tmp_path / "extensions", "700k") as disk:
        result = run_cli([*fast_overrides(tiny_root), "trainer.fused_cpu_kernels=true", "hydra.run.dir=run"], tmp_path,
                         env={"TORCH_EXTENSIONS_DIR": str(disk)})
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert (f"could not be compiled here (its build folder {disk}/lenet_exp_" in result.stderr
                and "is on a full disk). Free some space there, or set TORCH_EXTENSIONS_DIR to a folder on another "
                    "disk, or train without it: trainer.fused_cpu_kernels=false." in result.stderr), result.stderr
        assert "g++" not in result.stderr
        fill_up(disk)  # a new build folder there: its source cannot be copied in (the run's own disk has room)
        full = run_cli([*fast_overrides(tiny_root), "trainer.fused_cpu_kernels=true", "hydra.run.dir=run"], tmp_path,
                       env={"TORCH_EXTENSIONS_DIR": str(disk / "other")})
        assert full.returncode == 1 and f"its build folder {disk / 'other'}/lenet_exp_" in full.stderr, \
            full.stderr[-2000:]
        assert "No space left on /" not in full.stderr  # the run's disk, named as full: "writing the files of run"


def test_tensorboard_on_a_full_disk_fails_in_the_run_not_with_a_thread_traceback(small_disk, capfd, monkeypatch):
    """TensorBoard's writer thread meets the full disk; the run's next write raises it, once, and the
    thread's own error goes nowhere (Python's hook for it would print its traceback)."""
    thread_errors = []
    monkeypatch.setattr(threading, "excepthook", thread_errors.append)  # as pytest's own, where the default prints
    log = TensorBoardLog(str(small_disk / "run"), {"optimizer.lr": 1e-3})
    log.scalars({"train/loss": 1.0}, 1)
    fill_up(small_disk)
    with pytest.raises(OSError) as raised:
        for step in range(2, 100):  # a page of the events file may still have room for a few
            log.scalars({"train/loss": 1.0, "note": 2.0}, step)
    assert is_disk_full(raised.value)
    with contextlib.suppress(OSError):
        log.close()  # which waits for the writer thread to end
    assert thread_errors == [] and capfd.readouterr().err == ""


def test_run_log_on_a_full_disk_says_so_once(small_disk, capfd):
    """Each line that run.log cannot take would print a traceback ("--- Logging error ---")."""
    path = small_disk / "run.log"
    logger = logging.getLogger("test_run_log_on_a_full_disk")
    handler = RunLog(path)
    logger.addHandler(handler)
    try:
        fill_up(small_disk)
        for line in range(200):  # the file's last page takes some
            logger.warning("epoch %d of a run whose disk is full", line)
    finally:
        logger.removeHandler(handler)
        handler.close()
    err = capfd.readouterr().err
    assert err == f"({path} cannot be written: No space left on device; its lines go to the console only)\n"


NO_NETWORK = {name: "http://127.0.0.1:9" for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}


@pytest.mark.parametrize("held", [["train-images-idx3-ubyte", "t10k-images-idx3-ubyte"], []])
def test_a_read_only_data_root_that_lacks_the_files_says_so(held, tiny_root, tmp_path):
    """The download's lock file, looked for in a read-only root, raised there (three chained tracebacks); an
    empty one was called "corrupted or truncated" for the folder a download could not make."""
    with tmpfs(tmp_path / "read_only", "4m") as root:
        for name in held:  # none: an empty root, where the download would make MNIST/raw/ first
            (root / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)
            (root / "MNIST" / "raw" / name).write_bytes((tiny_root / "MNIST" / "raw" / name).read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        result = run_main([*fast_overrides(tiny_root), f"dataset.root={root}", "dataset.download=true",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env=NO_NETWORK)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"Error: mnist is not in {root / 'MNIST' / 'raw'} and " in result.stderr, result.stderr[-3000:]
    assert ("It lacks train-labels-idx1-ubyte, t10k-labels-idx1-ubyte: put them there" if held
            else "That folder must hold the four IDX files") in result.stderr, result.stderr[-3000:]
    assert ("no download can write there (OSError: [Errno 30] Read-only file system" in result.stderr) == (not held)
