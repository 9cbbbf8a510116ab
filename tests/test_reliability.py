"""Bad input gets one short message and a non-zero exit; faults lose at most the epoch in flight."""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import (AS_A_USER, RUN_PY, a_grid_study, as_a_user, fast_overrides, only_run_dir, run_cli, run_main,
                      signal_group, start, start_on_terminal)
from lenet_exp.files import LOCK_FILE, CannotWrite, mount_point, read_json, save_json, write_atomic
from lenet_exp.loop import Run
from lenet_exp.provenance import HOW_IT_RAN, commit_of, provenance
from lenet_exp.signals import StopSignals
from tensorboard_events import card, hparams_records, load_events, logged_hparams, scalar_values, session_status


@pytest.fixture(scope="module")
def trained(tiny_root, tmp_path_factory) -> Path:
    """The run directory of a finished 1-epoch run on the tiny MNIST."""
    cwd = tmp_path_factory.mktemp("trained")
    result = run_main(fast_overrides(tiny_root), cwd=cwd)
    assert result.returncode == 0, result.stderr
    return only_run_dir(cwd)


def a_sweeps_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "multirun.yaml").write_text("{}")
    return folder


def damaged_root(tiny_root: Path, tmp_path: Path, damage) -> Path:
    root = tmp_path / "damaged"
    shutil.copytree(tiny_root / "MNIST", root / "MNIST")
    damage(root / "MNIST" / "raw")
    return root


def truncate(raw):
    (raw / "train-images-idx3-ubyte").write_bytes((raw / "train-images-idx3-ubyte").read_bytes()[:9000])


def bad_magic(raw):
    data = (raw / "t10k-images-idx3-ubyte").read_bytes()
    (raw / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">I", 0xDEADBEEF) + data[4:])


def bad_count(raw):
    data = (raw / "train-labels-idx1-ubyte").read_bytes()
    (raw / "train-labels-idx1-ubyte").write_bytes(data[:4] + struct.pack(">I", 700) + data[8:])


def without_nines(raw):
    data = (raw / "train-labels-idx1-ubyte").read_bytes()
    (raw / "train-labels-idx1-ubyte").write_bytes(data[:8] + data[8:].replace(b"\x09", b"\x08"))


def a_label_of_ten(raw):
    data = (raw / "train-labels-idx1-ubyte").read_bytes()
    (raw / "train-labels-idx1-ubyte").write_bytes(data[:8] + b"\x0a" + data[9:])


def a_broken_link(folder: Path) -> Path:
    (folder / "gone").symlink_to(folder / "nowhere")
    return folder / "gone"


def a_data_set_folder_linked_to_itself(folder: Path) -> Path:
    (folder / "looped").mkdir()
    (folder / "looped" / "MNIST").symlink_to("MNIST")
    return folder / "looped"


def a_folder_for_a_file(raw):
    (raw / "t10k-labels-idx1-ubyte").unlink()
    (raw / "t10k-labels-idx1-ubyte").mkdir()


def compressed(raw):  # as one might fetch them by hand: torchvision extracts only archives it can verify
    for path in list(raw.iterdir()):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()


# case id -> (extra overrides, given (tiny_root, tmp_path, trained run dir); words the message must contain)
CASES = {
    "unknown group option": (lambda r, t, d: ["model=lenet7"], ["model=lenet7 is not an option of model", "lenet5_classic"]),
    "unknown key": (lambda r, t, d: ["trainer.epochz=3"], ["trainer.epochz is not a setting", "did you mean trainer.epochs?"]),
    "added key": (lambda r, t, d: ["+trainer.epochz=3"], ["trainer.epochz=3 (unknown key; did you mean trainer.epochs?)",
                                                           "Leave out +trainer.epochz=…"]),  # not "python run.py trainer.epochz=..."
    "interpolation of no key": (lambda r, t, d: ["trainer.epochs=${oops}"],
                                ["trainer.epochs='${oops}' (Interpolation key 'oops' not found)", "names a key"]),
    # of a list's item: "augment.scale[0]=null", and a fix (augment.scale[0]=…) that Hydra cannot read
    "interpolation of no key in a list": (lambda r, t, d: ["augment=affine", "augment.scale=[${oops},1.1]"],
                                          ["augment.scale=['${oops}', 1.1] (Interpolation key 'oops' not found)",
                                           "python run.py augment.scale=..."]),
    "wrong type": (lambda r, t, d: ["trainer.epochs=three"], ["trainer.epochs='three'", "expected an integer"]),
    "lr zero": (lambda r, t, d: ["optimizer.lr=0"], ["optimizer.lr=0.0", "> 0"]),
    "lr negative": (lambda r, t, d: ["optimizer.lr=-0.1"], ["optimizer.lr=-0.1", "> 0"]),
    "batch size zero": (lambda r, t, d: ["trainer.batch_size=0"], ["trainer.batch_size=0", ">= 1"]),
    "batch larger than train split": (lambda r, t, d: ["trainer.batch_size=501"],
                                      ["trainer.batch_size=501 is more than the 500 training images that "
                                       "dataset.val_size=100 leaves of the 600", "lower trainer.batch_size to at most "
                                       "500 or dataset.val_size to at most 99."]),
    # the val split that leaves too few: not blamed on the batch size alone
    "val split leaving less than a batch": (lambda r, t, d: ["dataset.val_size=590", "trainer.batch_size=64"],
                                            ["dataset.val_size=590 leaves of the 600", "dataset.val_size to at most 536"]),
    "batch larger than the whole train split": (lambda r, t, d: ["trainer.batch_size=600"],
                                                ["lower trainer.batch_size to at most 500."]),
    "epochs zero": (lambda r, t, d: ["trainer.epochs=0"], ["trainer.epochs=0", ">= 1"]),
    "one beta": (lambda r, t, d: ["optimizer.betas=[0.9]"], ["optimizer.betas=[0.9]", "[beta1, beta2]"]),
    "nesterov without momentum": (lambda r, t, d: ["optimizer=sgd", "optimizer.nesterov=true", "optimizer.momentum=0"],
                                  ["optimizer.nesterov=true", "momentum > 0"]),
    "autotuned and deterministic": (lambda r, t, d: ["trainer.cudnn_benchmark=true", "trainer.deterministic=true"],
                                    ["trainer.cudnn_benchmark=true", "false or null with trainer.deterministic=true"]),
    "val size not below train size": (lambda r, t, d: ["dataset.val_size=600"], ["dataset.val_size=600", "fewer than the 600"]),
    "cuda without a GPU": (lambda r, t, d: ["device=cuda"], ["device=cuda", "no CUDA GPU", "device=cpu"]),
    "cuda graphs on the CPU": (lambda r, t, d: ["trainer.cuda_graphs=true"],
                               ["trainer.cuda_graphs=true", "CUDA graphs need a CUDA GPU", "null"]),
    "cudnn autotuner on the CPU": (lambda r, t, d: ["trainer.cudnn_benchmark=true"],  # (it was ignored in silence)
                                   ["trainer.cudnn_benchmark=true", "on this cpu device", "null"]),
    "fused kernel for a model without BatchNorm": (lambda r, t, d: ["trainer.fused_cpu_kernels=true", "model.batch_norm=false"],
                                                   ["trainer.fused_cpu_kernels=true",
                                                    "conv -> BatchNorm -> max-pool -> ReLU"]),
    "fused kernel with bf16": (lambda r, t, d: ["trainer.fused_cpu_kernels=true", "trainer.precision=bf16"],
                               ["trainer.fused_cpu_kernels=true", "float32", "false or null"]),
    "data folder missing": (lambda r, t, d: [f"dataset.root={t / 'nowhere'}"],
                            ["nowhere/MNIST/raw", "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "dataset.root="]),
    "download impossible": (lambda r, t, d: [f"dataset.root={t / 'nowhere'}", "dataset.download=true"],
                            ["download failed", "nowhere/MNIST/raw", "train-labels-idx1-ubyte"]),
    "compressed idx": (lambda r, t, d: [f"dataset.root={damaged_root(r, t, compressed)}"],
                       ["holds them compressed", "gunzip -k", "damaged/MNIST/raw/*.gz"]),
    "empty data root": (lambda r, t, d: ["dataset.root="], ["dataset.root is empty (is LENET_EXP_DATA set to nothing?)",
                                                          "unset LENET_EXP_DATA to use ./data"]),
    "data root is a file": (lambda r, t, d: [f"dataset.root={d / 'metrics.json'}"],
                            ["metrics.json is a file where the folder of mnist should be", "MNIST/raw/"]),
    "resume of a checkpoint": (lambda r, t, d: [f"resume={d / 'checkpoints' / 'last.pt'}"],
                               ["/checkpoints/last.pt is inside the run directory", "continues it"]),
    # "not a run directory (no …/loose.pt/.hydra/overrides.yaml)"
    "resume of a checkpoint copied out": (lambda r, t, d: [f"resume={shutil.copy(d / 'checkpoints' / 'last.pt', t)}"],
                                          ["last.pt is a file, and resume= continues a run from its folder",
                                           "task=eval ckpt="]),
    "truncated idx": (lambda r, t, d: [f"dataset.root={damaged_root(r, t, truncate)}"],
                      ["MNIST/raw/train-images-idx3-ubyte is corrupted or truncated", "Replace it with an intact copy"]),
    "wrong magic": (lambda r, t, d: [f"dataset.root={damaged_root(r, t, bad_magic)}"],
                    ["MNIST/raw/t10k-images-idx3-ubyte is corrupted or truncated (AssertionError: bad header)"]),
    "wrong count": (lambda r, t, d: [f"dataset.root={damaged_root(r, t, bad_count)}"],
                    ["MNIST/raw/train-labels-idx1-ubyte is corrupted or truncated"]),
    "idx file a folder": (lambda r, t, d: [f"dataset.root={damaged_root(r, t, a_folder_for_a_file)}"],
                          ["MNIST/raw/t10k-labels-idx1-ubyte is a folder where that file should be: replace it"]),
    "labels outside classes": (lambda r, t, d: ["dataset.num_classes=4"], ["outside the 4 classes", "dataset.num_classes"]),
    # "Set dataset.num_classes=9", which the test's labels then refused (helper dataroot60)
    # "mnist is not in …/nowhere/MNIST/raw", or a download failed ("File exists"), without a word of the link
    "data root a broken link": (lambda r, t, d: [f"dataset.root={a_broken_link(t)}"],
                                ["gone is a symbolic link to",
                                 "nowhere, which does not exist: point it at the folder"]),
    # said to be a link to a folder that does not exist (helper regress60)
    "data set folder a link to itself": (lambda r, t, d: [f"dataset.root={a_data_set_folder_linked_to_itself(t)}"],
                                         ["looped/MNIST cannot be followed: its symbolic links make a loop (it points "
                                          "to MNIST). Put the folder in its place."]),
    "train labels lacking a class of the test's": (
        lambda r, t, d: [f"dataset.root={damaged_root(r, t, without_nines)}"],
        ["the labels of mnist train range over [0, 8], but those of mnist t10k reach 9: the train label file lacks "
         "classes the test has"]),
    "classes without labels": (lambda r, t, d: ["dataset.num_classes=12"], [
        "dataset.num_classes=12, but the labels of mnist train range over [0, 9]: the model would have 2 output(s) "
        "that no image is labelled with. Set dataset.num_classes=10."]),
    # a sweep job's folder name is a syntax error to Hydra unless quoted: run.py quotes it
    # it said to pass <sweep>/checkpoints/best.pt, which a sweep has not
    "sweep folder for a checkpoint": (lambda r, t, d: ["task=eval", f"ckpt={a_sweeps_folder(t / 's')}"],
                                      ["/s is a sweep's folder", "each of its jobs' with -m: ckpt=\"$(ls -dv "]),
    "checkpoint missing": (lambda r, t, d: ["task=eval", f"ckpt={t / '1_optimizer.lr=0.1,seed=0' / 'best.pt'}"],
                           ["1_optimizer.lr=0.1,seed=0/best.pt does not exist"]),
    "not a checkpoint": (lambda r, t, d: ["task=eval", f"ckpt={d / 'metrics.json'}"], ["metrics.json is not a readable checkpoint"]),
    "checkpoint no regular file": (lambda r, t, d: ["task=eval", "ckpt=/dev/null"],
                                   ["Checkpoint /dev/null is no regular file. Pass a file such as"]),
    "run folder for a checkpoint": (lambda r, t, d: ["task=eval", f"ckpt={d}"],
                                    ["is a folder. Pass a checkpoint file:", "/checkpoints/best.pt if it is a run's folder"]),
    "checkpoints folder for a checkpoint": (lambda r, t, d: ["task=eval", f"ckpt={d / 'checkpoints'}"],
                                            ["/checkpoints/best.pt if it is a run's checkpoints folder"]),
    "checkpoint of another class count": (lambda r, t, d: ["task=eval", f"ckpt={d / 'checkpoints/best.pt'}",
                                                           "dataset.num_classes=5"],
                                          ["predicts 10 classes", "has 5. Leave out dataset.num_classes=, which the "
                                           "checkpoint's model sets."]),  # it said to choose another data set
    "eval without ckpt": (lambda r, t, d: ["task=eval"], [
        "Invalid config value ckpt=null: expected a checkpoint file for task=eval. Give it with task=eval, e.g. "
        "ckpt=<run dir>/checkpoints/best.pt."]),  # it said `python run.py ckpt=...`, refused for task=train
    "unwritable output dir": (lambda r, t, d: [f"hydra.run.dir={(t / 'afile').touch() or t / 'afile' / 'run'}"],
                              ["cannot write the output directory", "afile is a file)", "hydra.run.dir="]),
    # the folders made for it were left, and the check of what is in the way said "could not check the folder"
    "too long a folder name": (lambda r, t, d: [f"hydra.run.dir=new/{'x' * 256}"],
                               ["holds a folder name of 256 bytes", "takes at most 255. Choose a shorter name."]),
    "folder for a checkpoint file": (lambda r, t, d: ["task=eval", f"ckpt={(t / 'x.pt').mkdir() or t / 'x.pt'}"],
                                     ["x.pt is a folder where the checkpoint file should be: move it away"]),
}


NO_NETWORK = {name: "http://127.0.0.1:9" for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_cuda_graphs_asked_of_the_cpu_are_refused_before_the_data_loads(device, fast, tmp_path):
    """device=cpu, or device=auto without a GPU: nothing can change the answer, so it comes at once (it came
    after the data)."""
    if device == "auto" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run_main([*fast, f"device={device}", "trainer.cuda_graphs=true", f"hydra.run.dir={tmp_path / 'run'}"],
                      cwd=tmp_path)
    assert result.returncode == 1 and "CUDA graphs need a CUDA GPU" in result.stderr
    assert " train / " not in result.stderr, result.stderr  # the data's line: "mnist: 500 train / 100 val / ..."


@pytest.mark.parametrize("setting, blocker", [("trainer.precision=bf16", "the kernel is float32"),
                                              ("model=lenet5_classic", "it fuses conv -> BatchNorm"),
                                              ("trainer.compile=true", "compiles the blocks itself")])
def test_a_fused_kernel_that_cannot_apply_is_refused_before_the_data_loads(setting, blocker, fast, tmp_path):
    """The config alone says so: it was refused once the data had loaded."""
    result = run_main([*fast, "trainer.fused_cpu_kernels=true", setting, f"hydra.run.dir={tmp_path / 'run'}"],
                      cwd=tmp_path)
    assert result.returncode == 1 and blocker in result.stderr, result.stderr
    assert " train / " not in result.stderr, result.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_nonzero_with_a_short_message(case, tiny_root, tmp_path, trained, fast):
    if case == "cuda without a GPU" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    extra, words = CASES[case]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = snapshot(trained)
    # a proxy on a closed local port: a download fails at once, whether or not this machine has a network
    result = run_main(fast + extra(tiny_root, tmp_path, trained), cwd=cwd, env=NO_NETWORK)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    # one line says it, at the end (after the run's "Run in ..." where it got that far)
    lines = result.stderr.splitlines()
    assert len(lines) <= 2 and lines[-1].startswith("Error: ") and len(lines[-1]) < 600, result.stderr
    for word in words:
        assert word in lines[-1], f"{word!r} not in:\n{result.stderr}"
    # nothing written outside the (new) run dir, and the trained run is untouched
    assert {p.name for p in cwd.iterdir()} <= {"outputs"}
    assert snapshot(trained) == before


def test_full_traceback_on_request(fast, tmp_path):
    run_dir = tmp_path / "run"
    assert run_main(fast + [f"hydra.run.dir={run_dir}"], cwd=tmp_path).returncode == 0
    record = (run_dir / ".hydra" / "overrides.yaml").read_text()
    result = run_main(fast + ["optimizer.lr=0", f"hydra.run.dir={run_dir}"], cwd=tmp_path,
                      env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr and "ConfigError" in result.stderr
    # raised in a callback, Hydra made the error a warning and went on: the job wrote over the run's record
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == record


def test_a_divergence_of_images_not_normalised_is_not_blamed_on_the_lr(fast, tmp_path):
    """dataset.std=1e-30 scales the images to 1e30, whose squares overflow: the message said to lower the lr."""
    result = run_main(fast + ["dataset.std=1e-30", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    metrics = read_json(tmp_path / "run" / "metrics.json")
    assert metrics["status"] == "diverged", metrics.get("message")
    message = metrics["message"]
    assert "; no checkpoint was written. The images, normalised with dataset.mean=0.1307 and dataset.std=1e-30, " \
           "reach " in message and "Lower optimizer.lr" not in message, message
    assert message.endswith(" where a network's inputs are of order 1: set dataset.mean and dataset.std to the "
                            "data's own (null computes them) and start a new run."), message


def test_a_run_whose_first_epoch_moved_no_weight_is_told_so(fast, tmp_path):
    result = run_main(fast + ["trainer.limit_batches=3", "optimizer.lr=1e-30", "hydra.run.dir=run"], cwd=tmp_path)
    assert result.returncode == 0 and "Epoch 1 changed none of the model's weights" in result.stderr, result.stderr


def test_divergence_stops_with_status_and_keeps_the_last_good_checkpoint(fast, interrupted, tmp_path):
    # An absurd learning rate from the first step: nothing good to keep.
    diverging = run_main(fast + ["optimizer.lr=1e30", f"hydra.run.dir={tmp_path / 'run0'}"], cwd=tmp_path)
    assert diverging.returncode == 1
    assert "diverged at epoch 1" in diverging.stderr and "; no checkpoint was written. " in diverging.stderr
    assert "Lower optimizer.lr (now 1e+30) and start a new run." in diverging.stderr  # as it was, it diverges again
    metrics = read_json(tmp_path / "run0" / "metrics.json")
    assert metrics["status"] == "diverged" and metrics["test"] is None
    assert not (tmp_path / "run0" / "checkpoints" / "last.pt").exists()

    # Sane epochs, then the absurd rate (put into the checkpoint's optimizer): its checkpoints stay as they were.
    run_dir = copy_run(interrupted, tmp_path)
    last_path = run_dir / "checkpoints" / "last.pt"
    state = torch.load(last_path, weights_only=True)
    for group in state["optimizer"]["param_groups"]:
        group["lr"] = 1e30
    torch.save(state, last_path)
    saved = {path.name: path.read_bytes() for path in last_path.parent.iterdir()}
    resumed = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert resumed.returncode == 1, resumed.stderr
    epoch = state["run_state"]["epoch"]
    assert f"diverged at epoch {epoch + 1}" in resumed.stderr
    assert f"the last checkpoint is after epoch {epoch}." in resumed.stderr
    assert read_json(run_dir / "metrics.json")["status"] == "diverged"
    assert {path.name: path.read_bytes() for path in last_path.parent.iterdir()} == saved


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "metrics.json"
    save_json(path, {"status": "completed"})

    def crash_midway(file):
        file.write("{\"status\": \"runn")
        raise OSError("disk full")

    with pytest.raises(CannotWrite, match="disk full"):
        write_atomic(path, crash_midway, binary=False)
    assert read_json(path) == {"status": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left behind


def test_an_output_folder_that_goes_up_from_a_symbolic_link_is_refused_and_a_resume_through_one_works(trained, fast,
                                                                                                     tmp_path):
    """`hydra.run.dir=link/../x` (clusters link outputs/ to scratch): the system made <link's target>/../x, Hydra
    logged into <link's parent>/x, a traceback; a sweep the same. resume= through such a path read no record."""
    (tmp_path / "scratch" / "target").mkdir(parents=True)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "link").symlink_to(tmp_path / "scratch" / "target")
    for kind, sweep in (("run", []), ("sweep", ["-m", "seed=0,1"])):
        result = run_main([*fast, *sweep, f"hydra.{kind}.dir=link/../x"], cwd=tmp_path / "home")
        assert result.returncode == 1 and (
            f"Error: hydra.{kind}.dir=link/../x goes up (..) from a symbolic link, which the system takes to "
            f"{tmp_path / 'scratch' / 'x'} and Hydra to {tmp_path / 'home' / 'x'}. Name the folder without '..', e.g. "
            f"hydra.{kind}.dir={tmp_path / 'scratch' / 'x'}.") in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["home", "link", "scratch", "target"]  # nothing made
    shutil.copytree(trained, tmp_path / "scratch" / "run")
    resumed = run_main([f"resume={tmp_path / 'home' / 'link' / '..' / 'run'}", "trainer.epochs=2"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert read_json(tmp_path / "scratch" / "run" / "metrics.json")["epochs_done"] == 2


@pytest.mark.parametrize("kind", ["run", "sweep"])
def test_an_output_folder_too_long_for_the_file_system_is_refused_before_anything_is_written(kind, fast, tmp_path):
    """A folder name of 256 bytes was `could not check the output folder … OSError: [Errno 36]`, naming no fix; a
    path the folder fits in, but not its files, a traceback at TensorBoard's first write (a sweep's at Hydra's)."""
    sweep = ["-m", "seed=0,1"] if kind == "sweep" else []
    named = run_main([*fast, *sweep, f"hydra.{kind}.dir={tmp_path / ('n' * 256) / 'x'}"], cwd=tmp_path)
    assert named.returncode == 1 and (f"holds a folder name of 256 bytes, and its file system "
                                      f"({mount_point(tmp_path)}) takes at most 255. Choose a shorter name.") \
        in named.stderr, named.stderr
    deep = tmp_path.joinpath(*["d" * 200] * ((4060 - len(str(tmp_path))) // 201))
    deep = deep / ("e" * (4060 - len(str(deep)) - 1))  # a folder of 4,060 bytes: its files' paths pass 4,096
    long = run_main([*fast, *sweep, f"hydra.{kind}.dir={deep}"], cwd=tmp_path)
    assert long.returncode == 1 and "bytes more) would pass the system's limit of 4096. Choose a shorter path." \
        in long.stderr and "Traceback" not in long.stderr, long.stderr
    assert list(tmp_path.iterdir()) == []  # no folder made for either


def test_a_resumed_run_keeps_the_modes_its_user_gave_its_files(interrupted, tmp_path):
    """Each rewrite (metrics.json, checkpoints, the earlier event file) gave the file a new one's mode: a run
    folder shared with a group (`chmod -R g+w,o-r`) became readable by others again once resumed."""
    run_dir = copy_run(interrupted, tmp_path)
    files = [run_dir / "metrics.json", run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt",
             *run_dir.glob("events.out.tfevents.*")]
    for path in files:
        path.chmod(0o660)
    resumed = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert read_json(run_dir / "metrics.json")["status"] == "completed"  # each of them written again
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in files} == {path.name: "0o660" for path in files}


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    from lenet_exp.checkpoints import load_checkpoint, save_checkpoint

    class FullDisk:
        def __reduce__(self):
            raise OSError("disk full")

    path = tmp_path / "last.pt"
    complete = {"model": {}, "config": {}, "preprocessing": {}}  # what load_checkpoint requires of any checkpoint
    save_checkpoint(path, {**complete, "run_state": {"epoch": 1}})
    with pytest.raises(CannotWrite, match="disk full"):
        save_checkpoint(path, {**complete, "run_state": {"epoch": 2}, "weights": FullDisk()})
    assert load_checkpoint(path)["run_state"]["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_best_pt_is_the_same_checkpoint_as_last_pt_serialised_once(tmp_path, monkeypatch):
    import torch

    from lenet_exp.checkpoints import load_checkpoint, save_checkpoint

    saved = []
    monkeypatch.setattr(torch, "save", lambda obj, file, save=torch.save: saved.append(save(obj, file)))
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    state = {"model": {"w": torch.arange(6.0)}, "config": {}, "preprocessing": {}, "run_state": {"epoch": 3}}
    save_checkpoint(last, state, copies=[best])
    assert len(saved) == 1  # on a GPU each tensor then travels to the host once, not once per file
    assert last.read_bytes() == best.read_bytes()
    assert torch.equal(load_checkpoint(best)["model"]["w"], torch.arange(6.0))


def test_corrupted_checkpoint_is_reported_not_unpickled(trained, tmp_path, fast):
    broken = tmp_path / "broken.pt"
    data = (trained / "checkpoints" / "best.pt").read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    result = run_main(fast + ["task=eval", f"ckpt={broken}"], cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "broken.pt is not a readable checkpoint (corrupted" in result.stderr


@as_a_user
def test_data_and_checkpoints_one_may_not_read_are_said_to_be_unreadable_not_damaged(trained, tiny_root, tmp_path,
                                                                                   fast):
    """An unreadable IDX file or checkpoint was "corrupted" (replace it), an unreadable data folder or a loop of
    symbolic links ended in a traceback."""
    root = tmp_path / "data"
    shutil.copytree(tiny_root / "MNIST", root / "MNIST")
    ckpt = tmp_path / "best.pt"
    shutil.copy(trained / "checkpoints" / "best.pt", ckpt)
    images, raw = root / "MNIST" / "raw" / "train-images-idx3-ubyte", root / "MNIST" / "raw"

    def run_as_a_user(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*AS_A_USER, sys.executable, str(RUN_PY), *fast, f"dataset.root={root}", *args],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)

    unreadable = {images: f"Cannot read the train IDX files of mnist: {images} (Permission denied)",
                  raw: f"Cannot read the data folder {raw} (Permission denied)",
                  ckpt: f"Cannot read {ckpt} (Permission denied). Make it readable to you, or pass a copy"}
    for path, said in unreadable.items():
        path.chmod(0)
        try:
            result = run_as_a_user(*(["task=eval", f"ckpt={ckpt}"] if path == ckpt else []))
        finally:
            path.chmod(0o755)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert f"Error: {said}" in result.stderr and "corrupted" not in result.stderr, result.stderr[-2000:]
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    looped = run_main([*fast, f"dataset.root={tmp_path / 'loop'}"], cwd=tmp_path)
    assert looped.returncode == 1 and "Traceback" not in looped.stderr, looped.stderr[-2000:]
    assert f"Error: dataset.root={tmp_path / 'loop'} cannot be followed: its symbolic links make a loop." in looped.stderr


def test_a_command_run_in_a_deleted_folder_says_so(tmp_path):
    """Hydra's traceback (FileNotFoundError) as it looked for its config folders, even with every path absolute."""
    gone = tmp_path / "gone"
    gone.mkdir()
    result = subprocess.run(["sh", "-c", 'cd "$1" && rmdir "$1" && exec "$2" "$3" hydra.run.dir="$4"', "sh", str(gone),
                             sys.executable, str(RUN_PY), str(tmp_path / "run")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and result.stderr.strip() == (
        "Error: the current folder no longer exists (deleted after this shell entered it). Change to an existing "
        "folder, then run the command again."), result.stderr[-2000:]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("entry, make, said", [
    ("run.log", "folder", "run.log is a folder where a file should be"),
    (".hydra/config.yaml", "folder", ".hydra/config.yaml is a folder where a file should be"),
    (".hydra", "file", ".hydra is a file where a folder should be"),
    ("metrics.json", "pipe", "metrics.json is no regular file where a file should be")])
def test_a_run_folder_with_something_else_where_a_file_should_be_is_refused(trained, tmp_path, fast, entry, make,
                                                                           said):
    """Hydra's and the logger's writes raised tracebacks there, and reading a pipe for metrics.json hung."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    (run_dir / ".lock").unlink(missing_ok=True)
    shutil.rmtree(run_dir / entry) if (run_dir / entry).is_dir() else (run_dir / entry).unlink()
    made = {"folder": (run_dir / entry).mkdir, "file": (run_dir / entry).touch,
            "pipe": lambda: os.mkfifo(run_dir / entry)}
    made[make]()
    again = run_main([*fast, "trainer.epochs=2", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert again.returncode == 1 and again.stderr.strip() == (
        f"Error: {run_dir / entry} {said.split(' ', 1)[1]}. Move it away, then run the same command again, or choose "
        f"another folder with hydra.run.dir=<dir>."), again.stderr[-2000:]
    resumed = run_main([f"resume={run_dir}"], cwd=tmp_path)  # its record of how it was made, where it is damaged
    assert resumed.returncode == 1 and "Traceback" not in resumed.stderr, resumed.stderr[-2000:]
    assert said in resumed.stderr or entry == ".hydra" and "cannot resume from" in resumed.stderr, resumed.stderr


def test_a_sweep_whose_job_folder_has_a_folder_where_a_file_should_be_is_refused(fast, tmp_path):
    """Hydra's write of the job's run.log raised a traceback once the sweep reached that job."""
    command = ["-m", *fast, "seed=0,1", "trainer.limit_batches=2", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_main(command, cwd=tmp_path).returncode == 0
    log_file = tmp_path / "sweep" / "1_seed=1" / "run.log"
    log_file.unlink()
    log_file.mkdir()
    again = run_main(command, cwd=tmp_path)
    assert again.returncode == 1 and again.stderr.strip().splitlines()[-1] == (
        f"Error: {log_file} is a folder where a file should be. Move it away, then run the same command again, or "
        f"choose another folder with hydra.sweep.dir=<dir>."), again.stderr[-2000:]


def test_a_metrics_json_cut_short_is_told_as_such_and_the_run_goes_on_once_it_is_moved_away(trained, tmp_path, fast):
    """It was called "no lenet_exp run's record (it names no task)", as another program's file would be; an edited
    value raised in the checks that read it."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    (run_dir / ".lock").unlink(missing_ok=True)
    (run_dir / "metrics.json").write_text('{"task": "train", "sta')
    again = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert again.returncode == 1 and again.stderr.strip().splitlines()[-1] == (
        f"Error: {run_dir / 'metrics.json'} cannot be read as a JSON object (empty, cut short or edited), and a run in "
        f"{run_dir} would write over it. Move that file away to let the run there go on from its checkpoints, or "
        f"choose a new output directory."), again.stderr[-2000:]
    # values of the keys that decide what a run there does, edited: tracebacks in the checks that read them
    # (a completed run's val accuracy is what its same command reports as it skips it)
    for key, value, more in (("config", "oops", ["trainer.epochs=3"]), ("epochs_done", "two", ["trainer.epochs=3"]),
                             ("val", None, []), ("val", {"loss": 0.1, "acc": None}, [])):
        (run_dir / "metrics.json").write_text(json.dumps({**read_json(trained / "metrics.json"), key: value}))
        edited = run_main([f"resume={run_dir}", *more], cwd=tmp_path)
        assert edited.returncode == 1 and edited.stderr.strip().splitlines()[-1] == (
            f"Error: {run_dir / 'metrics.json'} holds {key}={value!r}, which no lenet_exp run writes (an edit?). Move "
            f"that file away to let the run there go on from its checkpoints, or choose a new output directory."), \
            edited.stderr[-2000:]
    (run_dir / "metrics.json").rename(tmp_path / "moved.json")
    moved = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert moved.returncode == 0 and "Resuming" in moved.stderr, moved.stderr[-2000:]
    assert read_json(run_dir / "metrics.json")["status"] == "completed"


def test_a_failure_in_a_folder_whose_record_has_no_status_is_recorded_without_a_traceback(tmp_path):
    """A record of a task and no status (edited, or of another tool) passes the checks; the failure's record
    then read its status with [] (a KeyError traceback after the run's one-line error)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"task": "train", "note": "mine"}')
    result = run_main([f"hydra.run.dir={run_dir}", f"dataset.root={tmp_path / 'no_data'}", "dataset.download=false",
                       "device=cpu"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("Error: mnist is not in"), result.stderr[-2000:]
    record = read_json(run_dir / "metrics.json")
    assert record["note"] == "mine" and record["status"] == "failed" and "mnist is not in" in record["message"]


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


# ~0.1 s each (20 steps of 8 images, validation, checkpoint): a signal sent once the first checkpoint is there
# comes long before the end (a process is paused there when it has to be), and a resumed run has ~1 s left.
INTERRUPTIBLE_EPOCHS = 12
INTERRUPTIBLE = ["dataset.download=false", "dataset.val_size=100", "device=cpu", "trainer.progress=false",
                 f"trainer.epochs={INTERRUPTIBLE_EPOCHS}", "trainer.batch_size=8", "trainer.limit_batches=20",
                 "trainer.log_images=false"]


def stop_at_the_first_checkpoint(args: list[str], sweep_dir: Path, cwd: Path, signum: int = signal.SIGINT,
                                 sign: str = "0_*/metrics.json") -> str:
    """Runs the sweep until its first job has a checkpoint and its record (or another ``sign``), then stops it as
    Ctrl-C (or a closed terminal, a kill, with ``signum``) does, sending the signal to its whole process group;
    its stderr."""
    launcher = start(args, cwd=cwd)
    deadline = time.monotonic() + 120
    while not list(sweep_dir.glob(sign)):
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
        time.sleep(0.05)
    signal_group(launcher, signum)
    out, err = launcher.communicate(timeout=60)
    ended = -signum if signum == signal.SIGKILL else 128 + signum  # SIGKILL: no handler, the kernel ends it
    assert launcher.returncode == ended and "Traceback" not in out + err, err[-3000:]
    return err


def test_a_stopped_glob_sweep_lists_its_jobs_not_started_and_goes_on_as_the_list_of_its_options(tiny_root, tmp_path):
    """`model=glob(*)`: its summary said "2 jobs (1 completed, 1 interrupted)" of 4, and the same sweep written as
    a list of the options was "another sweep" (only the config loader lists a glob's options)."""
    sweep_dir = tmp_path / "sweep"
    common = [f"dataset.root={tiny_root}", *INTERRUPTIBLE, "-m", "optimizer=adam,sgd", f"hydra.sweep.dir={sweep_dir}"]
    stop_at_the_first_checkpoint([*common, "model=glob(*)"], sweep_dir, tmp_path)
    jobs = json.loads((sweep_dir / "summary.json").read_text())["jobs"]
    assert [(job["job"], job["status"]) for job in jobs] == [(0, "interrupted"), (1, "not started"),
                                                            (2, "not started"), (3, "not started")]
    listed = run_main([*common, "model=lenet5,lenet5_classic"], cwd=tmp_path)
    assert listed.returncode == 0 and "holds another sweep" not in listed.stderr, listed.stderr[-2000:]
    jobs = json.loads((sweep_dir / "summary.json").read_text())["jobs"]
    assert [job["status"] for job in jobs] == ["completed"] * 4 and len(list(sweep_dir.glob("*/.hydra"))) == 4


def paused_once_each_has_a_checkpoint(launcher: subprocess.Popen, sweep_dir: Path, jobs: int) -> set[int]:
    """Wait until ``jobs`` job folders of the sweep have a checkpoint, pausing (SIGSTOP) each job's process as its
    first one appears; the paused pids, for SIGCONT once the test has signalled. A job that started a few tenths
    of a second after another (submitit starts its jobs one after the other) let that one's remaining epochs, a
    fraction of a second on an idle machine, end first."""
    paused, deadline = {}, time.monotonic() + 120
    while len(paused) < jobs:
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate(timeout=60)
        for checkpoint in sweep_dir.glob("*/checkpoints/last.pt"):
            job = checkpoint.parent.parent
            if job not in paused:
                paused[job] = int((job / LOCK_FILE).read_text().split()[1])  # "pid N"
                os.kill(paused[job], signal.SIGSTOP)
        time.sleep(0.05)
    return set(paused.values())


def go_on(pids: set[int]) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGCONT)


def test_a_run_that_ignores_ctrl_c_trains_on_through_one(tiny_root, tmp_path):
    """A script's background command (`python run.py &`) ignores SIGINT, as the shell sets it, so that a
    Ctrl-C stops the script and not it: the run stopped there, at its first epoch."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, str(RUN_PY), f"dataset.root={tiny_root}", *INTERRUPTIBLE,
                                f"hydra.run.dir={run_dir}"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoints" / "last.pt").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        signal_group(process, signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        signal_group(process, signal.SIGKILL)
    metrics = read_json(run_dir / "metrics.json")
    assert process.returncode == 0 and (metrics["status"], metrics["epochs_done"]) == (
        "completed", INTERRUPTIBLE_EPOCHS), err[-2000:]


def interrupt_after_first_epoch(args: list[str], run_dir: Path, signum: int, cwd: Path) -> tuple[int, str]:
    """Run run.py in this process and send this process ``signum`` once the first checkpoint is written, as
    `kill` or Ctrl+C would (the run's handler takes it in the main thread). Returns (exit status, stderr)."""
    ended = threading.Event()

    def signal_after_first_checkpoint():
        while not ended.is_set():
            if (run_dir / "checkpoints" / "last.pt").exists():
                os.kill(os.getpid(), signum)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=signal_after_first_checkpoint, daemon=True)
    watcher.start()
    try:
        result = run_main(args + [f"hydra.run.dir={run_dir}"], cwd=cwd)
    finally:
        ended.set()
        watcher.join()
    return result.returncode, result.stderr


@pytest.fixture(scope="module")
def interrupted(tiny_root, tmp_path_factory) -> tuple[Path, int, str]:
    """(run dir, exit status, stderr) of a run stopped by SIGTERM after its first epoch. Tests that change
    or resume it do so on a copy of their own (:func:`copy_run`)."""
    cwd = tmp_path_factory.mktemp("interrupted")
    run_dir = cwd / "run"
    code, stderr = interrupt_after_first_epoch([f"dataset.root={tiny_root}", *INTERRUPTIBLE], run_dir, signal.SIGTERM, cwd)
    return run_dir, code, stderr


def copy_run(interrupted: tuple[Path, int, str], tmp_path: Path) -> Path:
    run_dir, code, stderr = interrupted
    assert code == 143, stderr
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def test_sigterm_stops_with_a_resumable_checkpoint(interrupted):
    run_dir, code, stderr = interrupted
    assert code == 143, stderr
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "interrupted" and metrics["epochs_done"] >= 1
    assert f"resume={run_dir}" in stderr and "Traceback" not in stderr
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["run_state"]["epoch"] == metrics["epochs_done"]


def hang_up_after_the_first_epoch(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run run.py ARGS on a terminal of its own, and close that terminal (SIGHUP) once an epoch has been
    shown; (exit status, what the terminal showed)."""
    process, controller = start_on_terminal(args, cwd=cwd, its_own=True)
    shown, deadline = b"", time.monotonic() + 120
    while b"epoch 1/" not in shown and time.monotonic() < deadline:
        if select.select([controller], [], [], 1)[0]:
            shown += os.read(controller, 65536)
    os.close(controller)  # the terminal hangs up
    return process.wait(timeout=120), shown.decode(errors="replace")


def test_a_closed_terminal_stops_the_run_as_sigterm_does(tiny_root, tmp_path):
    """A terminal window closed, or an ssh connection lost, hangs up the terminal (SIGHUP), which killed the
    run where it was: no checkpoint of the epoch, metrics.json left "running". Writes to that terminal fail."""
    run_dir = tmp_path / "run"
    code, shown = hang_up_after_the_first_epoch([f"dataset.root={tiny_root}", *INTERRUPTIBLE, f"hydra.run.dir={run_dir}"],
                                                tmp_path)
    assert code == 128 + signal.SIGHUP, shown[-2000:]
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "interrupted" and re.match(r"Interrupted by signal 1 (during|after) epoch", metrics["message"])
    assert "Interrupted by signal 1" in (run_dir / "run.log").read_text()  # the terminal is gone; run.log has it
    resumed = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert resumed.returncode == 0 and read_json(run_dir / "metrics.json")["status"] == "completed", resumed.stderr


@pytest.mark.long
def test_a_closed_terminal_stops_a_parallel_sweep_with_its_summary(tiny_root, tmp_path):
    """The sweep's run.py died printing "Stopping the sweep" to the closed terminal: no summary, and the
    job it was waiting for killed without a record."""
    sweep_dir = tmp_path / "sweep"
    code, shown = hang_up_after_the_first_epoch(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1",
                                                 f"dataset.root={tiny_root}", *INTERRUPTIBLE,
                                                 f"hydra.sweep.dir={sweep_dir}"], tmp_path)
    assert code == 128 + signal.SIGHUP, shown[-2000:]
    assert [read_json(job / "metrics.json")["status"] for job in sorted(sweep_dir.glob("*_seed=*"))] == ["interrupted"] * 2
    assert (sweep_dir / "summary.csv").is_file()


def child_processes(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (Linux /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)": state, ppid, ...
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(stat.parent.name))
    return children


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.long
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("launcher", [
    ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    # run.py's grandchildren, through their controllers: they trained on to the end
    ["hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1"],
    ["hydra/launcher=stacked_slurm", "hydra.launcher.submitit.cluster=local", "hydra.launcher.submitit.cpus_per_task=2",
     "hydra.launcher.submitit.gpus_per_node=0", "device=cpu"]], ids=["joblib", "submitit_local", "stacked"])
def test_a_sweep_whose_launcher_is_killed_stops_its_workers(tiny_root, tmp_path, launcher):
    """SIGKILL to the sweep's run.py alone (`kill -9`, the OOM killer, or a Ctrl-C that a submitit_local
    job missed while it started, followed by a second one): its jobs stop within a second, each with a
    resumable checkpoint, instead of training on for nobody."""
    sweep_dir = tmp_path / "sweep"
    sweep = ["-m", f"dataset.root={tiny_root}", *INTERRUPTIBLE, "seed=0,1", f"hydra.sweep.dir={sweep_dir}"]
    joblib, stacked = ("hydra/launcher=joblib" in launcher), ("hydra/launcher=stacked_slurm" in launcher)
    launcher = start([*sweep, *launcher], cwd=tmp_path)
    jobs = ("0_seed=0", "1_seed=1")  # the job folders: number and swept value
    workers = {}  # job: the pid of the process training it, paused once it has a checkpoint (both must still run)
    deadline = time.monotonic() + 120
    while len(workers) < len(jobs):
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate(timeout=60)
        for job in set(jobs) - set(workers):
            if (sweep_dir / job / "checkpoints" / "last.pt").exists():
                workers[job] = int((sweep_dir / job / LOCK_FILE).read_text().split()[1])  # "pid N"
                if not stacked:  # a group writes its jobs' checkpoints one after another: paused once both have one
                    os.kill(workers[job], signal.SIGSTOP)
        time.sleep(0.05)
    if stacked:
        os.kill(workers[jobs[0]], signal.SIGSTOP)
    if joblib:
        loky = [pid for pid in child_processes(launcher.pid) if b"LokyProcess" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert sorted(loky) == sorted(workers.values()), (loky, workers)
    workers = set(workers.values())  # a stacked group's two jobs share one
    launcher.send_signal(signal.SIGKILL)
    # a job looks for run.py every WATCH_INTERVAL_S: paused that long, it looks at its next step (its epochs
    # to come, a fraction of a second on an idle machine, would otherwise end first)
    time.sleep(StopSignals.WATCH_INTERVAL_S)
    for pid in workers:
        os.kill(pid, signal.SIGCONT)
    launcher.communicate(timeout=60)  # returns once every holder of its output pipes (the workers too) is gone
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if alive(pid)]
    for job in jobs:
        metrics = read_json(sweep_dir / job / "metrics.json")
        assert metrics["status"] == "interrupted" and 1 <= metrics["epochs_done"] < INTERRUPTIBLE_EPOCHS, metrics
        assert f"the exit of the sweep's run.py (pid {launcher.pid})" in metrics["message"]
        checkpoint = torch.load(sweep_dir / job / "checkpoints" / "last.pt", weights_only=True)
        assert checkpoint["run_state"]["epoch"] == metrics["epochs_done"]

    # the same sweep again resumes both jobs and completes them; here in this process, with the basic
    # launcher: a job resumes from its own folder, whichever launcher runs it
    again = run_main(sweep, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    for job in jobs:
        assert read_json(sweep_dir / job / "metrics.json")["status"] == "completed"
        assert "Resuming" in (sweep_dir / job / "run.log").read_text()


def stop_a_joblib_sweep(sweep: list[str], sweep_dir: Path, tmp_path: Path, signum: int, group: bool) -> str:
    """Start a 3-job sweep with 2 joblib workers, send ``signum`` (to its process group, as Ctrl-C at a
    terminal does, or to run.py alone) once both workers have a checkpoint; check that run.py took its
    time to collect the stopped jobs (their records are final when it returns) and return its stderr."""
    launcher = start([*sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], cwd=tmp_path)
    workers = paused_once_each_has_a_checkpoint(launcher, sweep_dir, 2)
    if group:
        signal_group(launcher, signum)
    else:
        launcher.send_signal(signum)
    go_on(workers)  # each takes the signal, or run.py's stop file, at its next step
    out, err = launcher.communicate(timeout=60)
    assert launcher.returncode == 128 + signum and "Traceback" not in out + err, err[-3000:]
    assert f"Interrupted by signal {signum}; running the same command with hydra.sweep.dir={sweep_dir} continues " \
           f"the sweep." in err
    for job in ("0_seed=0", "1_seed=1"):  # stopped where they were, each with its checkpoint
        metrics = read_json(sweep_dir / job / "metrics.json")
        assert metrics["status"] == "interrupted" and 1 <= metrics["epochs_done"] < INTERRUPTIBLE_EPOCHS, metrics
        checkpoint = torch.load(sweep_dir / job / "checkpoints" / "last.pt", weights_only=True)
        assert checkpoint["run_state"]["epoch"] == metrics["epochs_done"]
    # the third job had to wait for a worker: it starts after the stop, and stops at once, listed as a job of a
    # basic or stacked sweep that ended before it is (it was "interrupted")
    assert read_json(sweep_dir / "2_seed=2" / "metrics.json")["message"] == \
        f"the sweep was stopped by signal {signum} first; running the sweep again runs the rest"
    summary = read_json(sweep_dir / "summary.json")
    assert [job["status"] for job in summary["jobs"]] == ["interrupted", "interrupted", "not started"], summary["jobs"]
    return err


@pytest.mark.long
def test_ctrl_c_in_a_joblib_sweep_stops_every_job_and_says_how_to_go_on(tiny_root, tmp_path):
    """Ctrl-C at a terminal signals the whole process group: each worker's job stops with its checkpoint,
    and run.py waits for them, writes the summary and says how to continue instead of printing a traceback."""
    sweep_dir = tmp_path / "sweep"
    sweep = ["-m", f"dataset.root={tiny_root}", *INTERRUPTIBLE, "seed=0,1,2", f"hydra.sweep.dir={sweep_dir}"]
    stop_a_joblib_sweep(sweep, sweep_dir, tmp_path, signal.SIGINT, group=True)


@pytest.mark.long
@pytest.mark.parametrize("launcher", [
    ["hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1"],
    # the two trials stacked in one submitit job, which exited without its result when stopped
    ["hydra/launcher=stacked_slurm", "hydra.launcher.submitit.cluster=local", "hydra.launcher.submitit.cpus_per_task=2",
     "hydra.launcher.submitit.gpus_per_node=0", "device=cpu"]], ids=["submitit_local", "stacked"])
def test_ctrl_c_in_a_submitit_local_sweep_stops_every_job_and_ends_with_the_summary(tiny_root, tmp_path, launcher):
    """Ctrl-C reaches submitit_local's job controllers too: they printed KeyboardInterrupt tracebacks and
    killed their jobs a second later, and run.py ended without a summary. Now the controllers ignore it,
    and the sweep stops as a joblib sweep does."""
    sweep_dir = tmp_path / "sweep"
    stacked = "hydra/launcher=stacked_slurm" in launcher  # one process writes both checkpoints: not paused
    launcher = start(["-m", f"dataset.root={tiny_root}", *INTERRUPTIBLE, "seed=0,1", f"hydra.sweep.dir={sweep_dir}",
                      *launcher], cwd=tmp_path)
    jobs = set()
    if stacked:
        deadline = time.monotonic() + 120
        while len(list(sweep_dir.glob("*/checkpoints/last.pt"))) < 2:
            assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
            time.sleep(0.05)
    else:
        jobs = paused_once_each_has_a_checkpoint(launcher, sweep_dir, 2)
    signal_group(launcher, signal.SIGINT)
    go_on(jobs)
    out, err = launcher.communicate(timeout=60)  # the controllers' output too: they write to the same pipes
    assert launcher.returncode == 130 and "Traceback" not in out + err, (out + err)[-3000:]
    assert " failed: " not in out + err  # each submitit job handed back its result ("Submitit job 1 failed: …")
    assert err.rstrip().endswith(f"Interrupted by signal 2; running the same command with hydra.sweep.dir={sweep_dir} "
                                 f"continues the sweep.")
    for job in ("0_seed=0", "1_seed=1"):
        metrics = read_json(sweep_dir / job / "metrics.json")
        assert metrics["status"] == "interrupted" and 1 <= metrics["epochs_done"] < INTERRUPTIBLE_EPOCHS, metrics
    assert [job["status"] for job in read_json(sweep_dir / "summary.json")["jobs"]] == ["interrupted"] * 2


@pytest.mark.long
def test_a_hang_up_of_a_stacked_groups_process_group_stops_it_without_tracebacks(tiny_root, tmp_path):
    """A closed terminal hangs up the whole process group: the group's figure workers had taken its handler, and
    each printed a traceback of the stop it raised there (seen where the output went to a file)."""
    sweep_dir = tmp_path / "sweep"
    with_figures = [o for o in INTERRUPTIBLE if not o.startswith("trainer.log_images=")]  # drawn by the workers
    stop_at_the_first_checkpoint(["-m", "hydra/launcher=stacked", f"dataset.root={tiny_root}", *with_figures,
                                  "seed=0,1", f"hydra.sweep.dir={sweep_dir}"], sweep_dir, tmp_path, signal.SIGHUP)
    assert [job["status"] for job in read_json(sweep_dir / "summary.json")["jobs"]] == ["interrupted"] * 2


@pytest.mark.long
def test_a_hang_up_of_a_joblib_sweeps_process_group_leaves_its_resource_trackers_alone(tiny_root, tmp_path):
    """joblib's resource trackers ignore SIGINT and SIGTERM but not SIGHUP: a closed terminal killed them, and
    loky's relaunched tracker printed a traceback for each resource it had not seen (where the output went to a
    file)."""
    sweep_dir = tmp_path / "sweep"
    err = stop_at_the_first_checkpoint(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"dataset.root={tiny_root}",
                                        *INTERRUPTIBLE, "seed=0,1", f"hydra.sweep.dir={sweep_dir}"], sweep_dir, tmp_path,
                                       signal.SIGHUP)
    assert "resource_tracker" not in err, err[-3000:]
    assert [job["status"] for job in read_json(sweep_dir / "summary.json")["jobs"]] == ["interrupted"] * 2


@pytest.mark.long
def test_ctrl_c_in_a_basic_sweep_says_how_to_continue_the_sweep(tiny_root, tmp_path):
    """The basic launcher runs its jobs in run.py, one after another: a Ctrl-C stops the job there and
    the sweep with it, which then says how the whole sweep continues (the job's own message names only
    its folder), and the same command does so."""
    sweep_dir = tmp_path / "sweep"
    sweep = ["-m", f"dataset.root={tiny_root}", *INTERRUPTIBLE, "seed=0,1", f"hydra.sweep.dir={sweep_dir}"]
    err = stop_at_the_first_checkpoint(sweep, sweep_dir, tmp_path)
    assert err.rstrip().endswith(f"Interrupted by signal 2; running the same command with hydra.sweep.dir={sweep_dir} "
                                 f"continues the sweep."), err[-3000:]
    assert read_json(sweep_dir / "0_seed=0" / "metrics.json")["status"] == "interrupted"
    assert not (sweep_dir / "1_seed=1").exists()
    # its summary so far, as a joblib sweep's (it had none: Hydra's loop ended with the job), with the job
    # that had not started (it listed only the jobs with folders)
    jobs = read_json(sweep_dir / "summary.json")["jobs"]
    assert [(job["job"], job["status"]) for job in jobs] == [(0, "interrupted"), (1, "not started")]
    assert jobs[1]["params"]["seed"] == "1" and jobs[1]["run_dir"] == ""
    listed = run_main([str(sweep_dir)], cwd=tmp_path, module="lenet_exp.sweeps").stdout
    assert "  job 1 not started: the sweep ended first; running the sweep again runs the rest\n" in listed, listed
    # run again without its data: the stopped job says why it did not go on, and stays stopped, its checkpoint
    # there to resume from (a failed one is not resumed by an Optuna study)
    missing = run_main([*sweep, f"dataset.root={tmp_path / 'nowhere'}"], cwd=tmp_path)
    assert missing.returncode == 1, missing.stderr[-2000:]
    record = read_json(sweep_dir / "0_seed=0" / "metrics.json")
    assert record["status"] == "interrupted" and record["message"].startswith(f"mnist is not in {tmp_path / 'nowhere'}")
    assert read_json(sweep_dir / "1_seed=1" / "metrics.json")["status"] == "failed"
    again = run_main(sweep, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [read_json(sweep_dir / job / "metrics.json")["status"] for job in ("0_seed=0", "1_seed=1")] == ["completed"] * 2
    assert "Resuming" in (sweep_dir / "0_seed=0" / "run.log").read_text()


@pytest.mark.long
def test_a_submitit_job_stopped_by_a_signal_of_its_own_returns_its_result(tiny_root, tmp_path):
    """SIGTERM to one submitit job (`scancel`, a preemption): the job stops with its checkpoint and hands
    run.py its result, so that the sweep ends with its summary (it ended in submitit's traceback, as the
    job had exited without one); the same command again continues it."""
    sweep, sweep_dir, job, launcher, out, err = submitit_sweep_with_a_job_signalled(tiny_root, tmp_path, signal.SIGTERM)
    assert launcher.returncode == 1 and "Traceback" not in out + err, (out + err)[-3000:]  # the summary's status
    assert "1 of 2 jobs did not complete" in err
    metrics = read_json(job / "metrics.json")
    assert metrics["status"] == "interrupted" and "Interrupted by signal 15" in metrics["message"]
    assert metrics["message"].endswith(f"Continue with the sweep's command and hydra.sweep.dir={sweep_dir}, or this "
                                       f"job alone with `python run.py resume={shlex.quote(str(job))}`.")
    assert read_json(sweep_dir / "1_seed=1" / "metrics.json")["status"] == "completed"
    again = run_main(sweep[:-2], cwd=tmp_path)  # the basic launcher: a job resumes whichever launcher ran it
    assert again.returncode == 0, again.stderr[-2000:]
    assert read_json(job / "metrics.json")["status"] == "completed" and "Resuming" in (job / "run.log").read_text()


@pytest.mark.long
def test_a_stopped_optuna_study_ends_after_its_batch_with_the_summary(tiny_root, tmp_path):
    """An Optuna study launches batches of trials: once a stop has ended a batch, it proposes no more
    (they would only stop before starting), and it ends as a stopped sweep ends."""
    sweep_dir, storage = tmp_path / "optuna", f"sqlite:///{tmp_path / 'study.db'}"
    launcher = start(["-m", "sweep=optuna", "hydra.sweeper.n_trials=6", "hydra.sweeper.n_jobs=2",
                      "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"dataset.root={tiny_root}", *INTERRUPTIBLE,
                      f"hydra.sweep.dir={sweep_dir}", f"hydra.sweeper.storage={storage}"], cwd=tmp_path)
    workers = paused_once_each_has_a_checkpoint(launcher, sweep_dir, 2)
    launcher.send_signal(signal.SIGTERM)
    go_on(workers)
    out, err = launcher.communicate(timeout=60)
    assert launcher.returncode == 128 + signal.SIGTERM and "Traceback" not in out + err, err[-3000:]
    assert "The study was stopped: it proposes no more trials." in out  # Hydra's log
    summary = read_json(sweep_dir / "summary.json")
    assert [job["status"] for job in summary["jobs"]] == ["interrupted"] * 2, summary["jobs"]
    # resumed alone (resume=<job>, as it said), a trial would end outside its study
    message = summary["jobs"][0]["message"]
    assert message.endswith(f"Continue with the sweep's command and hydra.sweep.dir={sweep_dir} (which goes on with "
                            f"the study)."), message
    # the stored study: the two stopped trials, and the two that the study had asked for the next batch
    # (which it did not launch) failed, none left running
    assert stored_trial_states(storage) == ["FAIL"] * 4


@pytest.mark.long
def test_an_optuna_study_in_memory_replays_with_its_sweep_directory(tiny_root, tmp_path):
    """A Ctrl-C in a study's trial (in run.py: the basic launcher); the same command into the same sweep
    directory draws the same trials: the stopped one resumes, and no other trial is drawn in its stead."""
    sweep_dir = tmp_path / "optuna"
    study = ["-m", "sweep=optuna", "hydra.sweeper.n_trials=2", "scheduler=none", f"dataset.root={tiny_root}",
             *INTERRUPTIBLE, f"hydra.sweep.dir={sweep_dir}"]
    stop_at_the_first_checkpoint(study, sweep_dir, tmp_path)
    from lenet_exp.resume import how_to_go_on

    stopped = next(sweep_dir.glob("0_*"))  # a trial resumed alone would end outside its study
    assert how_to_go_on(stopped) == f"the sweep's command and hydra.sweep.dir={sweep_dir} (which goes on with the study)"
    again = run_main(study, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    first, second = sorted(sweep_dir.glob("[0-9]_*"))
    assert "Resuming" in (first / "run.log").read_text() and second.name.startswith("1_")
    assert [job["status"] for job in read_json(sweep_dir / "summary.json")["jobs"]] == ["completed"] * 2


@pytest.mark.long
def test_an_optuna_study_in_a_storage_goes_on_from_its_trials(tiny_root, tmp_path):
    """A study kept in a storage: a Ctrl-C in its trial fails that trial there, and the same command again
    goes on from the stored trials with new ones (its sampler, seeded as before, would draw the first
    run's trials once more)."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = ["-m", "sweep=optuna", "hydra.sweeper.n_trials=2", "scheduler=none", f"dataset.root={tiny_root}",
             *INTERRUPTIBLE, f"hydra.sweeper.storage={storage}"]
    err = stop_at_the_first_checkpoint([*study, f"hydra.sweep.dir={tmp_path / 'first'}"], tmp_path / "first",
                                         tmp_path)
    assert stored_trial_states(storage) == ["FAIL"]
    assert ("continues the sweep: its stopped trials resume first (the study holds them as failed, and each one's "
            "result as a new trial), then new ones.") in err

    again = run_main([*study, f"hydra.sweep.dir={tmp_path / 'again'}"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"Study lenet_exp holds 1 trial in {storage}: the sampler goes on with seed 0 + 1" in again.stdout
    assert stored_trial_states(storage) == ["FAIL", "COMPLETE", "COMPLETE"]
    first, *_ = (tmp_path / "first").glob("0_*")
    assert not (tmp_path / "again" / first.name).exists()  # not the first run's first trial again
    assert sorted(path.name[:2] for path in (tmp_path / "again").glob("[0-9]_*")) == ["1_", "2_"]  # trial numbers
    # a parameter drawn otherwise than the study drew it (optuna's ValueError was a traceback at the first trial)
    changed = run_main([*study, "optimizer.lr=choice(0.001,0.01)", f"hydra.sweep.dir={tmp_path / 'changed'}"],
                       cwd=tmp_path)
    assert changed.returncode == 1 and "Traceback" not in changed.stderr, changed.stderr[-3000:]
    assert (f"Error: optimizer.lr is searched as choice(0.001, 0.01), but study lenet_exp in {storage} drew it from "
            "tag(log, interval(0.0001, 0.01)); a stored study keeps how each parameter is drawn.") in changed.stderr
    assert stored_trial_states(storage) == ["FAIL", "COMPLETE", "COMPLETE"]  # no trial asked
    # a stored study of another direction (made elsewhere) is not turned round (optuna's ValueError was a traceback)
    import optuna

    optuna.create_study(study_name="minimal", storage=storage, direction="minimize")
    other = run_main([*study, "hydra.sweeper.study_name=minimal", f"hydra.sweep.dir={tmp_path / 'other'}"], cwd=tmp_path)
    assert other.returncode == 1 and "Traceback" not in other.stderr, other.stderr[-3000:]
    assert (f"Error: study minimal in {storage} is one to minimize; hydra.sweeper.direction=maximize cannot change "
            f"that. Name a new study (hydra.sweeper.study_name=...) or another storage.") in other.stderr


@pytest.mark.long
def test_a_stopped_run_of_a_stored_study_leaves_the_studys_best_as_it_stands(tiny_root, tmp_path):
    """optimization_results.yaml is written at a study's end: a stopped run of a stored study left the earlier
    run's best in it, though the study had a better trial since (here one told it from elsewhere)."""
    import optuna
    from optuna.distributions import LogUniformDistribution
    from optuna.trial import create_trial

    storage, sweep_dir = f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "optuna"
    study = ["-m", "sweep=optuna", "hydra.sweeper.n_trials=1", "scheduler=none", "model.dropout=0",
             "trainer.label_smoothing=0", f"dataset.root={tiny_root}", *INTERRUPTIBLE,
             f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={sweep_dir}"]
    first = run_main(study, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    lr = LogUniformDistribution(1e-4, 1e-2)  # as sweep=optuna draws it
    optuna.load_study(study_name="lenet_exp", storage=storage).add_trial(
        create_trial(params={"optimizer.lr": 1e-3}, distributions={"optimizer.lr": lr}, value=1.0))
    stop_at_the_first_checkpoint(study, sweep_dir, tmp_path, sign="2_*/metrics.json")
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert results.best_value == 1.0 and results.best_params == {"optimizer.lr": 1e-3}, results


@pytest.mark.long
def test_a_grid_study_stopped_in_its_last_trial_ends_with_its_summary(tiny_root, tmp_path):
    """The stopped trial, told to the study as failed, used up the grid: the grid sampler stopped the study outside
    optuna's optimize(), a RuntimeError, after Ctrl-C's traceback, and no summary (helper regress59)."""
    sweep_dir = tmp_path / "grid"
    study = ["-m", "--config-dir", str(a_grid_study(tmp_path / "mine")), "sweep=grid", "scheduler=none",
             f"dataset.root={tiny_root}", *INTERRUPTIBLE, f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}",
             "hydra.sweeper.study_name=grid", f"hydra.sweep.dir={sweep_dir}"]
    stop_at_the_first_checkpoint(study, sweep_dir, tmp_path, sign="1_*/metrics.json")  # no Traceback: asserted there
    rows = read_json(sweep_dir / "summary.json")["jobs"]
    assert [row["status"] for row in rows] == ["completed", "interrupted"], rows


def test_a_stored_studys_best_of_an_earlier_sweep_is_said_to_be_that_sweeps(fast, tmp_path):
    """Hydra's "Best value" of a stored study was of a trial that the sweep's folder did not hold, without a word."""
    import optuna
    from optuna.trial import create_trial

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = ["-m", "sweep=optuna", "hydra.sweeper.n_trials=1", "scheduler=none", *fast,
             f"hydra.sweeper.storage={storage}"]
    first = run_main([*study, "hydra.sweep.dir=first"], cwd=tmp_path)
    assert first.returncode == 0 and "That best" not in first.stdout, first.stderr[-2000:]
    stored = optuna.load_study(study_name="lenet_exp", storage=storage)
    drawn = stored.trials[0]  # as a trial of an earlier sweep that beat every other
    with warnings.catch_warnings():  # "experimental" in optuna 2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        stored.add_trial(create_trial(params=drawn.params, distributions=drawn.distributions, values=[1.0]))
    later = run_main([*study, "hydra.sweep.dir=later"], cwd=tmp_path)
    assert later.returncode == 0, later.stderr[-2000:]
    assert "Best value: 1.0" in later.stdout and ("That best is the study's trial 1, which an earlier sweep of the "
                                                  "study ran in its own folder; this sweep's best tops its summary."
                                                  ) in later.stdout
    # the result of a stopped trial resumed in a folder (a trial of its own, naming its job) is that folder's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        stored.add_trial(create_trial(params=drawn.params, distributions=drawn.distributions, values=[2.0],
                                      user_attrs={"resumes_job": 0}))
    again = run_main([*study, "hydra.sweep.dir=first"], cwd=tmp_path)
    assert again.returncode == 0 and "Best value: 2.0" in again.stdout and "That best" not in again.stdout, \
        again.stdout[-2000:]


@pytest.mark.long
@pytest.mark.parametrize("signum, sign", [(signal.SIGINT, "0_*/metrics.json"), (signal.SIGKILL, "0_*/metrics.json"),
                                          (signal.SIGKILL, "0_*/.hydra/overrides.yaml")],
                         ids=["ctrl-c", "killed", "killed-starting"])
def test_a_stored_study_run_again_into_its_folder_resumes_its_stopped_trial(signum, sign, tiny_root, tmp_path):
    """Its stopped trial stayed interrupted in the sweep folder, which the summary then counted against the
    sweep (exit 1) however many trials completed after it. A killed run.py (SIGKILL, a lost node) left its
    trial running in the study, which no later run resumed (or started over, killed before its first record),
    though the summary said running again would."""
    import optuna

    storage, sweep_dir = f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "optuna"
    study = ["-m", "sweep=optuna", "hydra.sweeper.n_trials=2", "scheduler=none", f"dataset.root={tiny_root}",
             *INTERRUPTIBLE, f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={sweep_dir}"]
    stop_at_the_first_checkpoint(study, sweep_dir, tmp_path, signum, sign)
    stopped, = sweep_dir.glob("0_*")
    recorded = (read_json(stopped / "metrics.json") or {}).get("status")
    if signum == signal.SIGINT:
        assert recorded == "interrupted" and stored_trial_states(storage) == ["FAIL"]
    else:  # killed as it started: nothing recorded yet (or, where its first epoch came first, running)
        assert recorded in ((None, "running") if sign.endswith("overrides.yaml") else ("running",))
        assert stored_trial_states(storage) == ["RUNNING"]
    checkpointed = (stopped / "checkpoints" / "last.pt").is_file()

    again = run_main(study, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"Trial 0 of study lenet_exp, stopped before, resumes in {stopped}" in again.stdout
    assert ("Resuming" in (stopped / "run.log").read_text()) == checkpointed  # or starts over
    assert read_json(stopped / "metrics.json")["status"] == "completed"
    trials = optuna.load_study(study_name="lenet_exp", storage=storage).trials
    assert [trial.state.name for trial in trials] == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert trials[1].params == trials[0].params and trials[1].value == read_json(stopped / "metrics.json")["val"]["acc"]
    assert sorted(path.name[:2] for path in sweep_dir.glob("[0-9]_*")) == ["0_", "2_", "3_"]  # job N is trial N
    assert [job["status"] for job in read_json(sweep_dir / "summary.json")["jobs"]] == ["completed"] * 3


@pytest.mark.filterwarnings("ignore:.* is experimental")  # optuna 2's add_trial, stable in optuna 3
def test_a_stored_study_takes_the_result_of_a_trial_that_completed_before_a_stop_ended_its_batch(fast, tmp_path):
    """A stop ends a batch before the study is told of it: a trial of the batch that had completed is failed
    in the storage with the others. Made here from a completed study's first trial, failed in a new storage."""
    import optuna
    from optuna.trial import TrialState, create_trial

    sweep_dir, done, stopped = tmp_path / "optuna", tmp_path / "done.db", tmp_path / "stopped.db"
    study = ["-m", "sweep=optuna", "hydra.sweeper.n_trials=1", "scheduler=none", *fast, f"hydra.sweep.dir={sweep_dir}"]
    assert run_main([*study, f"hydra.sweeper.storage=sqlite:///{done}"], cwd=tmp_path).returncode == 0
    first = optuna.load_study(study_name="lenet_exp", storage=f"sqlite:///{done}").trials[0]
    failed = optuna.create_study(study_name="lenet_exp", storage=f"sqlite:///{stopped}", direction="maximize")
    failed.add_trial(create_trial(state=TrialState.FAIL, params=first.params, distributions=first.distributions))

    again = run_main([*study, f"hydra.sweeper.storage=sqlite:///{stopped}"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    job, = sweep_dir.glob("0_*")
    assert f"Trial 0 of study lenet_exp completed in {job} before a stop ended its batch" in again.stdout
    assert "Already completed" in again.stderr  # not trained again
    trials = optuna.load_study(study_name="lenet_exp", storage=f"sqlite:///{stopped}").trials
    assert [trial.state.name for trial in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert trials[1].params == first.params and trials[1].value == first.value
    assert trials[1].user_attrs == {"resumes_job": 0}  # where the study's trial ran
    assert sorted(path.name[:2] for path in sweep_dir.glob("[0-9]_*")) == ["0_", "2_"]  # job N is trial N
    # once: each later run into the folder added its result again
    third = run_main([*study, f"hydra.sweeper.storage=sqlite:///{stopped}"], cwd=tmp_path)
    assert third.returncode == 0 and "before a stop ended its batch" not in third.stdout, third.stderr[-2000:]
    assert stored_trial_states(f"sqlite:///{stopped}") == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]


def test_a_stored_study_refuses_a_sweep_that_fixes_other_settings(fast, tmp_path):
    """Trials on FashionMNIST joined a study of MNIST trials without a word: results that do not compare, which
    the sampler learnt from alike. Settings, not overrides, are compared: `dataset=mnist` is the default's, and
    where and how fast a sweep runs (trainer.progress, device) changes no result; a setting drawn is no matter."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = ["-m", "sweep=optuna", "hydra.sweeper.n_trials=1", "scheduler=none", *fast, f"hydra.sweeper.storage={storage}"]
    assert run_main([*study, "hydra.sweep.dir=first"], cwd=tmp_path).returncode == 0
    other = run_main([*study, "dataset=fashion_mnist", "hydra.sweep.dir=other"], cwd=tmp_path)
    assert other.returncode == 1 and other.stderr.strip().splitlines()[-1] == (
        f"Error: study lenet_exp in {storage} was run with dataset.name=mnist, and this sweep has "
        "dataset.name=fashion_mnist: their trials' results would not compare. Run it with the settings its trials had, "
        "or name a new study (hydra.sweeper.study_name=...) or another storage."), other.stderr[-2000:]
    assert not (tmp_path / "other").exists() and stored_trial_states(storage) == ["COMPLETE"]
    alike = run_main([*study, "dataset=mnist", "trainer.progress=true", "trainer.batch_size=64", "hydra.sweep.dir=alike"],
                     cwd=tmp_path)
    assert alike.returncode == 0 and stored_trial_states(storage) == ["COMPLETE"] * 2, alike.stderr[-2000:]


def stored_trial_states(storage: str) -> list[str]:
    import optuna

    return [trial.state.name for trial in optuna.load_study(study_name="lenet_exp", storage=storage).trials]


@pytest.mark.long
def test_sigterm_to_a_joblib_sweeps_run_py_stops_its_jobs_and_the_sweep_continues(tiny_root, tmp_path):
    """SIGTERM to run.py alone (`kill PID`, a scheduler's time limit): it asks its workers' jobs to stop,
    as a signal of their own would, waits for them, and the same sweep run again completes every job."""
    sweep_dir = tmp_path / "sweep"
    sweep = ["-m", f"dataset.root={tiny_root}", *INTERRUPTIBLE, "seed=0,1,2", f"hydra.sweep.dir={sweep_dir}"]
    err = stop_a_joblib_sweep(sweep, sweep_dir, tmp_path, signal.SIGTERM, group=False)
    assert "Stopping the sweep (signal 15): each job saves its checkpoint first; signal 15 again stops at once." in err
    again = run_main(sweep, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    for job in ("0_seed=0", "1_seed=1", "2_seed=2"):
        assert read_json(sweep_dir / job / "metrics.json")["status"] == "completed"
    assert all("Resuming" in (sweep_dir / job / "run.log").read_text() for job in ("0_seed=0", "1_seed=1"))


@pytest.mark.long
def test_a_joblib_worker_killed_ends_the_sweep_with_its_summary_and_the_sweep_continues(tiny_root, tmp_path):
    """A joblib worker killed (the out-of-memory killer's SIGKILL): joblib ends the sweep's other jobs and
    raised TerminatedWorkerError through run.py, a traceback without a summary. The sweep now ends as one
    with failed jobs does, and the same command continues it."""
    sweep_dir = tmp_path / "sweep"
    sweep = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"dataset.root={tiny_root}", *INTERRUPTIBLE,
             "seed=0,1,2", f"hydra.sweep.dir={sweep_dir}"]
    launcher = start(sweep, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list(sweep_dir.glob("*/checkpoints/last.pt")):
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
        time.sleep(0.05)
    workers = joblib_workers(launcher.pid)
    for pid in workers[1:]:  # paused: joblib kills them (SIGKILL) before their jobs, seconds long, can end
        os.kill(pid, signal.SIGSTOP)
    os.kill(workers[0], signal.SIGKILL)
    out, err = launcher.communicate(timeout=60)
    assert launcher.returncode == 1 and "Traceback" not in out + err, err[-3000:]
    assert "A job's process died without a result (its worker ended with SIGKILL(-9): out of memory, killed, or " \
           f"crashed); joblib ended the sweep's other jobs. Running the same command with hydra.sweep.dir={sweep_dir} " \
           "continues the sweep." in out  # Hydra's log
    jobs = read_json(sweep_dir / "summary.json")["jobs"]  # all 3: it listed only those with folders ("2 jobs")
    assert [job["job"] for job in jobs] == [0, 1, 2], jobs
    assert {job["status"] for job in jobs} <= {"failed", "not started"} and jobs[0]["status"] == "failed", jobs
    again = run_main(sweep, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [read_json(sweep_dir / f"{i}_seed={i}" / "metrics.json")["status"] for i in range(3)] == ["completed"] * 3


@pytest.mark.long
def test_a_submitit_job_killed_ends_the_sweep_with_its_summary_once_the_others_have_stopped(tiny_root, tmp_path):
    """SIGKILL to one submitit job (the out-of-memory killer, a lost node): it leaves no result, and
    submitit's UncompletedJobError went through run.py as a traceback without a summary. The sweep now
    ends with its summary once its other local jobs have stopped at their checkpoints: they were listed as
    running (and the dead one as maybe running) while they went on until run.py had ended."""
    # the other job has epochs left when the sweep learns of this one's death (submitit waits 15 s for a result):
    # 600 epochs (~23 s here) ended first on a machine 1.5x as fast; the sweep stops it, however many it is given
    sweep, sweep_dir, job, launcher, out, err = submitit_sweep_with_a_job_signalled(
        tiny_root, tmp_path, signal.SIGKILL, swept="trainer.epochs=12,100000")
    assert launcher.returncode == 1 and "Traceback" not in out + err, (out + err)[-3000:]
    assert re.search(r"A job's process died without a result \(Job \d+ \(task: 0\) with path .*_result\.pkl: out of "
                     r"memory, killed, or crashed\); the sweep's other jobs stopped, each at its last checkpoint",
                     out), out[-3000:]  # "run on by themselves" is a cluster's
    rows = {row["run_dir"]: row for row in read_json(sweep_dir / "summary.json")["jobs"]}
    dead, other = rows.pop(str(job)), rows.popitem()[1]
    assert dead["status"] == "failed" and "stopped while running after epoch" in dead["message"], dead
    assert other["status"] == read_json(Path(other["run_dir"]) / "metrics.json")["status"] == "interrupted", other
    assert re.search(r"Interrupted by signal 15 (during|after) epoch", other["message"])  # which says how it goes on


def submitit_sweep_with_a_job_signalled(tiny_root: Path, tmp_path: Path, signum: int, *extra: str,
                                        swept: str = "seed=0,1"):
    """A submitit_local sweep of two jobs (``swept``, with ``extra`` overrides in place of INTERRUPTIBLE's),
    whose job 0 gets ``signum`` in its own process once it has a checkpoint and has recorded it: the sweep's
    arguments, its folder, job 0's folder, and run.py's process, stdout and stderr."""
    sweep_dir = tmp_path / "sweep"
    key, values = swept.split("=")
    replaced = {override.split("=")[0] for override in (*extra, swept)}
    sweep = ["-m", f"dataset.root={tiny_root}", *(o for o in INTERRUPTIBLE if o.split("=")[0] not in replaced),
             *extra, swept, f"hydra.sweep.dir={sweep_dir}", "hydra/launcher=submitit_local",
             "hydra.launcher.cpus_per_task=1"]
    launcher = start(sweep, cwd=tmp_path)
    job = sweep_dir / f"0_{key}={values.split(',')[0]}"
    deadline = time.monotonic() + 120
    # metrics.json follows last.pt: a job killed between them had recorded nothing (a flaky "failed" under load)
    while not (read_json(job / "metrics.json") or {}).get("epochs_done"):
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
        time.sleep(0.05)
    os.kill(int((job / LOCK_FILE).read_text().split()[1]), signum)  # "pid N"
    out, err = launcher.communicate(timeout=120)
    return sweep, sweep_dir, job, launcher, out, err


def joblib_workers(launcher_pid: int) -> list[int]:
    """The pids of the loky worker processes that run.py ``launcher_pid`` started."""
    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):  # a process that ended meanwhile
            continue
        if parent == launcher_pid and b"LokyProcess" in command:
            workers.append(int(stat.parent.name))
    return sorted(workers)


@pytest.mark.skipif(sys.platform == "win32", reason="the download lock needs fcntl")
def test_first_downloads_into_one_folder_take_turns(fast, tmp_path):
    """Parallel jobs of a first sweep must not download into the same folder at once: a job waits while
    another holds the folder's download lock (here: this test), then goes on (and, offline, fails cleanly).
    The lock is flock's, which is an open file's: the run in this process waits for this test's file."""
    import fcntl

    root, run_dir = tmp_path / "data", tmp_path / "run"
    root.mkdir()
    args = [o for o in fast if not o.startswith(("dataset.root", "dataset.download"))]
    waited_for_the_lock, ended = threading.Event(), threading.Event()

    def release_once_the_run_waits(held):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not ended.is_set():
            log = (run_dir / "run.log").read_text() if (run_dir / "run.log").exists() else ""
            if "Waiting for another job's download" in log:
                time.sleep(0.5)  # it waits for the lock, not for the network: no attempt meanwhile
                log = (run_dir / "run.log").read_text()
                if "download failed" not in log and not (run_dir / "metrics.json").exists():
                    waited_for_the_lock.set()
                break
            time.sleep(0.05)
        fcntl.flock(held, fcntl.LOCK_UN)

    with open(root / ".MNIST.download.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        releaser = threading.Thread(target=release_once_the_run_waits, args=(held,))
        releaser.start()
        result = run_main([*args, f"dataset.root={root}", "dataset.download=true", f"hydra.run.dir={run_dir}"],
                          cwd=tmp_path, env=NO_NETWORK)
        ended.set()
        releaser.join()
    assert waited_for_the_lock.is_set(), result.stderr[-2000:]
    # the lock released: its own attempt fails offline
    assert result.returncode == 1 and "the download failed" in result.stderr and "Traceback" not in result.stderr


def test_a_failed_download_leaves_no_folders_behind(fast, tmp_path):
    """A mistyped dataset.root, offline: the folders made for the download (and its lock) went on existing."""
    args = [o for o in fast if not o.startswith(("dataset.root", "dataset.download"))]
    typo = tmp_path / "dta" / "sets"
    result = run_main([*args, f"dataset.root={typo}", "dataset.download=true"], cwd=tmp_path, env=NO_NETWORK)
    assert result.returncode == 1 and "the download failed" in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "dta").exists()
    # a folder that was there before, with something of the user's in it, stays
    (typo / "MNIST").mkdir(parents=True)
    (typo / "notes.txt").write_text("mine")
    result = run_main([*args, f"dataset.root={typo}", "dataset.download=true"], cwd=tmp_path, env=NO_NETWORK)
    assert result.returncode == 1 and (typo / "notes.txt").read_text() == "mine" and (typo / "MNIST").is_dir()
    assert sorted(path.name for path in typo.iterdir()) == ["MNIST", "notes.txt"]  # not .MNIST.download.lock


def test_a_signal_during_the_final_test_completes_the_run_then_stops(tiny_root, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    start_test = Run.start_test

    def ctrl_c_as_the_test_starts(self, *args):
        os.kill(os.getpid(), signal.SIGINT)  # its handler runs here, in the main thread, as the test begins
        return start_test(self, *args)

    monkeypatch.setattr(Run, "start_test", ctrl_c_as_the_test_starts)
    result = run_main([f"dataset.root={tiny_root}", "dataset.download=false", "dataset.val_size=100", "device=cpu",
                       "trainer.progress=false", "trainer.epochs=2", "trainer.log_images=true",
                       f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 130, result.stderr
    assert "Stopped by signal 2 after the run completed" in result.stderr and "Traceback" not in result.stderr
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "completed" and metrics["test"]["acc"] > 0
    assert "test/confusion_matrix" in load_events(run_dir).Tags()["images"]  # the whole test, figures too


def test_sparse_checkpoints_still_follow_the_best_epoch(tiny_root, tmp_path):
    """With trainer.checkpoint_every=N, last.pt is also written with each new best.pt, so a resumed run
    never starts before its best; the message names the checkpoint's epoch, not the last one trained."""
    run_dir = tmp_path / "run"
    args = [f"dataset.root={tiny_root}", *INTERRUPTIBLE, "trainer.checkpoint_every=1000"]
    code, stderr = interrupt_after_first_epoch(args, run_dir, signal.SIGTERM, tmp_path)
    assert code == 143, stderr
    metrics = read_json(run_dir / "metrics.json")
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["run_state"]
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["run_state"]
    assert last["epoch"] == last["best_epoch"] == best["epoch"] == metrics["best_epoch"] <= metrics["epochs_done"]
    assert f"the last checkpoint is after epoch {last['epoch']}." in metrics["message"]

    # A run stopped between writing last.pt and best.pt: the resume completes best.pt from last.pt.
    (run_dir / "checkpoints" / "best.pt").unlink()
    resumed = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Restored checkpoints/best.pt from last.pt (epoch {last['epoch']}" in resumed.stderr
    metrics = read_json(run_dir / "metrics.json")
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["run_state"]
    assert metrics["status"] == "completed" and best["epoch"] == metrics["best_epoch"] >= last["epoch"]


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(tiny_root, tmp_path):
    epochs = 8  # in this process, the signal comes within a step of the first checkpoint
    args = [f"dataset.root={tiny_root}", *INTERRUPTIBLE, "trainer.deterministic=true", "scheduler=cosine",
            "augment=affine", "model.dropout=0.1"]  # every source of randomness and state in play
    args[args.index(f"trainer.epochs={INTERRUPTIBLE_EPOCHS}")] = f"trainer.epochs={epochs}"
    straight = run_main(args + [f"hydra.run.dir={tmp_path / 'straight'}"], cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr

    run_dir = tmp_path / "interrupted"
    code, stderr = interrupt_after_first_epoch(args, run_dir, signal.SIGINT, tmp_path)
    assert code == 130, stderr
    interrupted = read_json(run_dir / "metrics.json")
    assert interrupted["status"] == "interrupted" and 1 <= interrupted["epochs_done"] < epochs - 1, stderr

    resumed = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming {run_dir} after epoch {interrupted['epochs_done']}" in resumed.stderr
    expected, got = read_json(tmp_path / "straight" / "metrics.json"), read_json(run_dir / "metrics.json")
    assert got["status"] == "completed"
    for key in ("train", "val", "test", "best_epoch"):
        assert got[key] == expected[key], key
    strip = lambda rows: [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]
    assert strip(got["history"]) == strip(expected["history"])
    # the median epoch time leaves out each invocation's first epoch (warm-up)
    steady = [row["time/epoch_s"] for row in got["history"] if row["epoch"] not in (1, interrupted["epochs_done"] + 1)]
    assert got["median_epoch_s"] == statistics.median(steady)
    # the wall time counts both invocations; the timings are the resumed one's
    resumed_wall_s = sum(got["timings"][part] for part in ("startup_s", "epochs_s", "test_s"))
    assert got["wall_time_s"] == pytest.approx(interrupted["wall_time_s"] + resumed_wall_s, abs=0.5)


def test_checkpoints_hold_no_timings_and_older_ones_with_timings_still_resume(interrupted, tmp_path):
    """Timings are metrics.json's: a checkpoint holds none. Those of earlier versions held the warm-up
    epochs and time/* history columns (and called train/lr lr); they resume, and the medians still leave
    out each first epoch."""
    run_dir = copy_run(interrupted, tmp_path)
    last_path = run_dir / "checkpoints" / "last.pt"
    state = torch.load(last_path, weights_only=True)
    history = state["run_state"]["history"]
    assert "warmup_epochs" not in state["run_state"] and history
    assert not [key for row in history for key in row if key.startswith("time/")]
    state["run_state"]["warmup_epochs"] = [1]  # as an earlier version wrote it
    for row in history:
        row["time/epoch_s"] = 1.0
        row["lr"] = row.pop("train/lr")
    torch.save(state, last_path)
    resumed = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    metrics = read_json(run_dir / "metrics.json")
    first_resumed = state["run_state"]["epoch"] + 1
    steady = [row["time/epoch_s"] for row in metrics["history"] if row["epoch"] not in (1, first_resumed)]
    assert metrics["median_epoch_s"] == statistics.median(steady)
    assert "warmup_epochs" not in torch.load(last_path, weights_only=True)["run_state"]
    assert all("train/lr" in row and "lr" not in row for row in metrics["history"])  # today's name, resumed epochs too


def test_an_interrupted_run_whose_last_checkpoint_cannot_be_read_is_failed_not_to_be_continued(interrupted,
                                                                                               tmp_path):
    """It stayed "interrupted", its message ending "Continue with …", which failed again the same way, after the
    advice to delete its checkpoints (helper stackfail60)."""
    run_dir = copy_run(interrupted, tmp_path)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    resumed = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert resumed.returncode == 1, resumed.stderr[-2000:]
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "failed" and "Delete the folder" in metrics["message"], metrics["message"]
    assert "Continue with" not in metrics["message"]


def test_a_run_resumed_by_other_code_keeps_which_code_trained_its_first_epochs(interrupted, tmp_path):
    """metrics.json's git and versions are the last invocation's: a run resumed after a `git pull` or an upgrade of
    torch keeps the code of its earlier epochs beside them (earlier_code), on its card too, and says so; and the
    device, whose thread count rounds the sums otherwise (helper repro60: it was said nowhere)."""
    run_dir = copy_run(interrupted, tmp_path)
    record = read_json(run_dir / "metrics.json")
    older = {"git": {"commit": "f02bcca" * 5 + "12345", "dirty": True},
             "versions": {**record["versions"], "torch": "2.4.0"}, "device": "CPU (7 threads)"}
    save_json(run_dir / "metrics.json", {**record, **older})  # as the run's first invocation, with that code, left it
    done = record["epochs_done"]
    resumed = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    metrics = read_json(run_dir / "metrics.json")
    assert (f"Its epochs to {done} were trained otherwise: git commit f02bccaf02bc-dirty (now "
            f"{commit_of(record['git'], '-dirty')}), torch 2.4.0 (now {torch.__version__}), CPU (7 threads) (now "
            f"{metrics['device']})") in resumed.stderr
    ran = {key: record[key] for key in HOW_IT_RAN}  # the fast paths too, as they were (and are)
    assert metrics["earlier_code"] == [{"epochs_done": done, **ran, **older}] and metrics["git"] == record["git"]
    assert f"| epochs to {done} trained by | git commit f02bccaf02bc-dirty (now" in card(load_events(run_dir))
    trained_on = run_main([f"resume={run_dir}", f"trainer.epochs={metrics['epochs'] + 1}"], cwd=tmp_path)
    assert trained_on.returncode == 0, trained_on.stderr
    assert "trained otherwise" not in trained_on.stderr  # this code's epochs: no new entry, the earlier one kept
    assert read_json(run_dir / "metrics.json")["earlier_code"] == metrics["earlier_code"]


def test_a_run_resumed_on_another_fast_path_says_that_its_first_epochs_ran_otherwise(interrupted, tmp_path):
    """The fused kernel or channels_last switched on resume rounds the sums otherwise, as another thread count
    does: metrics.json said only the last invocation's (helper fastpaths61)."""
    run_dir = copy_run(interrupted, tmp_path)
    record = read_json(run_dir / "metrics.json")
    assert {*HOW_IT_RAN} <= {*record} and record["fused_cpu_kernels"] is True
    resumed = run_main([f"resume={run_dir}", "trainer.fused_cpu_kernels=false"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (f"Its epochs to {record['epochs_done']} were trained otherwise: trainer.fused_cpu_kernels=true (now "
            f"false), trainer.channels_last=true (now false) (metrics.json keeps it: earlier_code)") \
        in resumed.stderr, resumed.stderr
    earlier = read_json(run_dir / "metrics.json")["earlier_code"]
    assert [(entry["epochs_done"], entry["fused_cpu_kernels"]) for entry in earlier] == [(record["epochs_done"], True)]
    # switched back: each entry's own epochs, and the first ones ran as the last do (its card's row was empty)
    done, epochs = record["epochs_done"], record["epochs"]
    back = run_main([f"resume={run_dir}", "trainer.fused_cpu_kernels=null", f"trainer.epochs={epochs + 1}"],
                    cwd=tmp_path)
    assert back.returncode == 0 and (f"Its epochs {done + 1} to {epochs} were trained otherwise: "
                                     f"trainer.fused_cpu_kernels=false (now true)") in back.stderr, back.stderr
    assert (f"| epochs to {done} trained by | as now |\n| epochs {done + 1} to {epochs} trained by | "
            f"trainer.fused_cpu_kernels=false (now true)") in card(load_events(run_dir))


def test_the_code_of_an_edited_record_is_shown_as_it_is():
    """A record is data: an earlier invocation's `git` or `versions` edited to a string was a TypeError as the
    resume said what code trained its epochs."""
    from lenet_exp.provenance import other_code

    assert other_code({"epochs_done": 1, "git": "abc", "versions": "y", "device": [1]}, {"commit": "b" * 40,
                      "dirty": False}, {"torch": "2.4.0"}, {"device": "CPU (2 threads)"}) == \
        "git commit 'abc' (now bbbbbbbbbbbb), torch ? (now 2.4.0), [1] (now CPU (2 threads))"


def test_a_run_directory_refuses_another_config_and_keeps_its_record(trained, fast, tmp_path):
    saved = {p: p.read_bytes() for p in (trained / ".hydra").iterdir()}
    result = run_main(fast + ["optimizer.lr=0.5", f"hydra.run.dir={trained}"], cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "holds a run with another config (optimizer.lr: 0.001 -> 0.5)" in result.stderr
    assert {p: p.read_bytes() for p in (trained / ".hydra").iterdir()} == saved
    result = run_main(fast + ["trainer.limit_batches=3", f"hydra.run.dir={trained}"], cwd=tmp_path)
    assert "holds a run with another config (trainer.limit_batches: null -> 3)" in result.stderr  # null, as written
    # an evaluation of its checkpoint into its folder wrote its metrics.json over the run's
    metrics = (trained / "metrics.json").read_bytes()
    result = run_main(fast + ["task=eval", f"ckpt={trained / 'checkpoints' / 'best.pt'}", f"hydra.run.dir={trained}"],
                      cwd=tmp_path)
    assert result.returncode == 1 and f"Error: {trained} holds a task=train run, whose metrics.json and TensorBoard " \
                                      f"run task=eval would write over." in result.stderr, result.stderr[-2000:]
    assert (trained / "metrics.json").read_bytes() == metrics
    assert {p: p.read_bytes() for p in (trained / ".hydra").iterdir()} == saved
    # an evaluation runs again into its own folder as it was, and not with other settings, whose results differ
    evaluation = fast + ["task=eval", f"ckpt={trained / 'checkpoints' / 'best.pt'}", f"hydra.run.dir={tmp_path / 'eval'}"]
    for again in range(2):
        result = run_main(evaluation, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
    assert len(load_events(tmp_path / "eval").Scalars("test/acc")) == 1  # its TensorBoard run, as its metrics.json
    result = run_main([*evaluation, "trainer.tta_shift=1"], cwd=tmp_path)
    assert result.returncode == 1 and (f"Error: {tmp_path / 'eval'} holds a task=eval run with other settings "
                                       f"(trainer.tta_shift: 0 -> 1), whose results this one would write over."
                                       ) in result.stderr, result.stderr[-2000:]
    assert read_json(tmp_path / "eval" / "metrics.json")["tta"]["shift"] == 0
    # one that failed holds no result: the command fixed runs in its folder (it was refused as "other settings")
    failed = run_main([*evaluation[:-2], f"ckpt={tmp_path}", f"hydra.run.dir={tmp_path / 'failed'}"], cwd=tmp_path)
    assert failed.returncode == 1 and read_json(tmp_path / "failed" / "metrics.json")["status"] == "failed"
    fixed = run_main([*evaluation[:-1], f"hydra.run.dir={tmp_path / 'failed'}"], cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert read_json(tmp_path / "failed" / "metrics.json")["status"] == "completed"
    # resume= of an evaluation of a relative ckpt= gives it absolute: the same file, not "other settings"
    relative = os.path.relpath(trained / "checkpoints" / "best.pt", tmp_path)
    assert run_main([*evaluation[:-2], f"ckpt={relative}", f"hydra.run.dir={tmp_path / 'rel'}"], cwd=tmp_path).returncode == 0
    (tmp_path / "elsewhere").mkdir()
    again = run_main([f"resume={tmp_path / 'rel'}"], cwd=tmp_path / "elsewhere")
    assert again.returncode == 0 and "other settings" not in again.stderr, again.stderr[-2000:]
    capped = run_main([*evaluation[:-1], "trainer.limit_batches=1", f"hydra.run.dir={tmp_path / 'capped'}"], cwd=tmp_path)
    assert capped.returncode == 0, capped.stderr[-2000:]  # HParams says what its test/acc is of (one batch)
    assert logged_hparams(load_events(tmp_path / "capped"))["trainer.limit_batches"] == 1


def test_a_run_refused_before_it_trained_lets_the_fixed_command_use_its_folder(fast, tmp_path):
    """A mistake in a named run folder, then the fixed command into it: it was refused as "another config". (An
    unknown key or a value out of range is refused before the folder is made.)"""
    run_dir = tmp_path / "mine"
    refused = run_main(fast + ["trainer.label_smoothing=1.5", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert refused.returncode == 1 and "Invalid config value trainer.label_smoothing=1.5" in refused.stderr, \
        refused.stderr[-2000:]
    assert not run_dir.exists()  # it held only the refusal, and outputs/runs/ gathered such folders
    elsewhere = [o for o in fast if not o.startswith("dataset.root=")] + [f"dataset.root={tmp_path / 'none'}"]
    typo = run_main(elsewhere + ["optimizer.lr=0.5", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert typo.returncode == 1 and "mnist is not in" in typo.stderr, typo.stderr[-2000:]
    assert session_status(load_events(run_dir)) == "STATUS_FAILURE"  # HParams lists it, as a failure
    fixed = run_main(fast + ["optimizer.lr=0.1", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert "holds a run that ended before it trained, with another config (optimizer.lr: 0.5 -> 0.1" in fixed.stdout
    # the failed attempt's HParams session is replaced by the run's own
    assert hparams_records(run_dir) == ["session_start_info", "session_end_info"]
    assert logged_hparams(load_events(run_dir))["optimizer.lr"] == 0.1
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "completed" and metrics["config"]["optimizer"]["lr"] == 0.1
    # once it has trained, the folder is that run's: another config is refused
    other = run_main(fast + ["optimizer.lr=0.2", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert other.returncode == 1 and "holds a run with another config (optimizer.lr: 0.1 -> 0.2)" in other.stderr


def test_a_config_file_changed_since_a_run_or_sweep_is_named_as_the_difference(fast, tmp_path):
    """`resume=<run>` after an edit of a YAML (or a new default) was told to resume "with the same
    overrides", which it had; a sweep's jobs each refused, after Hydra had written their .hydra/ anew."""
    mine = tmp_path / "extra" / "optimizer" / "mine.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("defaults:\n  - adam\n  - _self_\nlr: 0.002\n")
    own = [*fast, "optimizer=mine", f"hydra.searchpath=[file://{tmp_path / 'extra'}]"]
    run_dir, sweep_dir = tmp_path / "run", tmp_path / "sweep"
    assert run_main([*own, f"hydra.run.dir={run_dir}"], cwd=tmp_path).returncode == 0
    assert run_main([*own, "-m", "seed=0,1", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path).returncode == 0
    # and a sweep over presets, which may set any key: an edited file is still told, before Hydra writes
    for name, seed in (("p1", 1), ("p2", 2)):
        (tmp_path / "extra" / "experiment").mkdir(exist_ok=True)
        (tmp_path / "extra" / "experiment" / f"{name}.yaml").write_text(f"# @package _global_\nseed: {seed}\n")
    presets, preset_dir = [*own, "-m", "experiment=p1,p2"], tmp_path / "presets"
    assert run_main([*presets, f"hydra.sweep.dir={preset_dir}"], cwd=tmp_path).returncode == 0
    records = {p: p.read_bytes() for p in [*run_dir.rglob("*"), *sweep_dir.rglob("*"), *preset_dir.rglob("*")]
               if p.is_file()}
    mine.write_text(mine.read_text().replace("0.002", "0.003"))
    search_path = own[-1]  # a run folder does not choose the configs: the command names them
    run = run_main([search_path, f"resume={run_dir}"], cwd=tmp_path)
    assert run.returncode == 1 and (f"Error: {run_dir} holds a run made with another config (optimizer.lr: 0.002 -> "
                                    f"0.003), which no override of this command sets: a config file or a default "
                                    f"changed since.") in run.stderr, run.stderr[-2000:]
    # with an override that changes it too: told to go on with `resume=` as it was made, which is the above
    longer = run_main([search_path, f"resume={run_dir}", "trainer.epochs=2"], cwd=tmp_path)
    assert longer.returncode == 1 and (f"Error: {run_dir} holds a run made with another config (optimizer.lr: 0.002 "
                                       f"-> 0.003), which no override") in longer.stderr, longer.stderr[-2000:]
    sweep = run_main([*own, "-m", "seed=0,1", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert sweep.returncode == 1 and (f"Error: {sweep_dir} holds a sweep made with another config (optimizer.lr: "
                                      f"0.002 -> 0.003), which no override") in sweep.stderr, sweep.stderr[-2000:]
    swept = run_main([*presets, f"hydra.sweep.dir={preset_dir}"], cwd=tmp_path)
    assert swept.returncode == 1 and (f"Error: {preset_dir} holds a sweep made with another config (optimizer.lr: "
                                      f"0.002 -> 0.003), which no override") in swept.stderr, swept.stderr[-2000:]
    assert {p: p.read_bytes() for p in records} == records
    # made by an older checkout of lenet_exp (its defaults changed with an upgrade): the message says which commit
    now = provenance()
    if now is None:
        pytest.skip("no git checkout of lenet_exp here: a run records no commit")
    for metrics_file in [run_dir / "metrics.json", *sweep_dir.glob("*/metrics.json")]:
        older_commit = {"commit": "0123456789ab" + "c" * 28, "dirty": False}
        save_json(metrics_file, {**read_json(metrics_file), "git": older_commit})
    made_at = (f"a config file or a default changed since (made at git commit 0123456789ab, and this checkout is at "
               f"{now['commit'][:12]}: `git checkout 0123456789ab` gives back the code it was made with). Restore it")
    for command in ([search_path, f"resume={run_dir}"], [*own, "-m", "seed=0,1", f"hydra.sweep.dir={sweep_dir}"]):
        refused = run_main(command, cwd=tmp_path)
        assert refused.returncode == 1 and made_at in refused.stderr, refused.stderr[-2000:]
    save_json(run_dir / "metrics.json", {k: v for k, v in read_json(run_dir / "metrics.json").items() if k != "git"})
    refused = run_main([search_path, f"resume={run_dir}"], cwd=tmp_path)  # as the first versions wrote it
    assert "changed since (made by an early version of lenet_exp, which recorded no git commit)" in refused.stderr


def test_rerunning_a_completed_run_skips_it(trained, fast, tmp_path):
    before = (trained / "checkpoints" / "best.pt").stat().st_mtime_ns
    result = run_main([f"resume={trained}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Already completed" in result.stderr
    assert (trained / "checkpoints" / "best.pt").stat().st_mtime_ns == before


def test_a_run_given_more_epochs_goes_on_as_if_it_had_been_given_them_from_the_start(fast, tmp_path):
    """resume=<run> trainer.epochs=3 after 2 epochs: epoch 3 and the final test are those of a 3-epoch run.
    Only where the schedule does not spread over trainer.epochs (cosine does: refused, the run untouched)."""
    run_dir, three = tmp_path / "run", tmp_path / "three"
    assert run_main([*fast, "trainer.epochs=2", f"hydra.run.dir={run_dir}"], cwd=tmp_path).returncode == 0
    longer = run_main([f"resume={run_dir}", "trainer.epochs=3"], cwd=tmp_path)
    assert longer.returncode == 0, longer.stderr
    assert f"{run_dir} trained for 2 epochs: it goes on to 3." in longer.stdout and "Resuming" in longer.stderr
    assert run_main([*fast, "trainer.epochs=3", f"hydra.run.dir={three}"], cwd=tmp_path).returncode == 0
    extended, fresh = (read_json(folder / "metrics.json") for folder in (run_dir, three))
    assert extended["status"] == "completed" and [row["epoch"] for row in extended["history"]] == [1, 2, 3]
    for key in ("val/acc", "val/loss", "train/loss"):
        assert [row[key] for row in extended["history"]] == pytest.approx([row[key] for row in fresh["history"]])
    assert extended["test"]["acc"] == pytest.approx(fresh["test"]["acc"])
    assert sorted(scalar_values(load_events(run_dir), "train/loss")) == [1, 2, 3]
    again = run_main([f"resume={run_dir}"], cwd=tmp_path)  # the run is now one of 3 epochs
    assert again.returncode == 0 and "Already completed" in again.stderr
    fewer = run_main([f"resume={run_dir}", "trainer.epochs=2"], cwd=tmp_path)
    assert fewer.returncode == 1 and "(fewer than the 3 epochs it has trained)" in fewer.stderr  # started with 2
    # more epochs and another setting: the setting is refused, and the command offered keeps the epochs
    mixed = run_main([f"resume={run_dir}", "trainer.epochs=4", "optimizer.lr=0.01"], cwd=tmp_path)
    assert mixed.returncode == 1 and f"another config (optimizer.lr: 0.001 -> 0.01). Continue it as it was made with " \
        f"`python run.py resume={run_dir} trainer.epochs=4`" in mixed.stderr, mixed.stderr
    # a preset of other settings, where the run had none: "another config", not "a config file changed since"
    other = run_main([f"resume={run_dir}", "experiment=fashion_best"], cwd=tmp_path)
    assert other.returncode == 1 and "holds a run with another config (" in other.stderr, other.stderr
    assert "a config file or a default changed" not in other.stderr


def test_a_cosine_run_given_more_epochs_or_another_schedule_is_refused_untouched(fast, tmp_path):
    """Cosine spreads its learning rates over trainer.epochs: more epochs make another run; so does another
    schedule, told as such (not as a typo), and a preset that sets another scheduler's key."""
    cosine = tmp_path / "cosine"
    assert run_main([*fast, "trainer.epochs=2", "scheduler=cosine", "scheduler.min_lr_ratio=0.05", "device.threads=1",
                     f"hydra.run.dir={cosine}"], cwd=tmp_path).returncode == 0
    before = sorted(cosine.rglob("*"))
    refused = run_main([f"resume={cosine}", "trainer.epochs=3"], cwd=tmp_path)
    assert refused.returncode == 1 and "(scheduler=cosine spreads its learning rates over trainer.epochs: more " \
        "epochs make another run)" in refused.stderr
    assert sorted(cosine.rglob("*")) == before and read_json(cosine / "metrics.json")["epochs"] == 2
    # another schedule, without the run's own setting of its schedule: told so, not as a typo ("min_lr_ratio is not
    # a setting of this scheduler"); a setting that the other option has too (device.threads) is kept
    # (the command offered keeps where it runs, but not more epochs, which its cosine schedule would spread over)
    unscheduled = run_main([f"resume={cosine}", "scheduler=none", "trainer.epochs=3", "device=cpu"], cwd=tmp_path)
    assert unscheduled.returncode == 1 and f"Error: {cosine} was made with scheduler.min_lr_ratio=0.05, which the " \
        f"scheduler chosen now does not have: resume= continues a run with the settings it was made with. Continue " \
        f"it with `python run.py resume={cosine} device=cpu`, or" in unscheduled.stderr, unscheduled.stderr
    # what that command resumed is no later command's (compose() in the same process: a notebook's %run)
    from lenet_exp import compose
    from lenet_exp.errors import UserError

    with pytest.raises(UserError, match=r"scheduler.min_lr_ratio is not a setting of this scheduler"):
        compose("scheduler=none", "scheduler.min_lr_ratio=0.05")
    # as is a preset whose own scheduler's setting meets the run's scheduler (it said "keep the preset's scheduler")
    preset = run_main([f"resume={cosine}", "experiment=mnist_best"], cwd=tmp_path)
    assert preset.returncode == 1 and f"Error: {cosine} was made with scheduler=cosine, and experiment=mnist_best sets " \
        f"scheduler.pct_start (scheduler=onecycle has it): resume= continues a run" in preset.stderr, preset.stderr
    assert sorted(cosine.rglob("*")) == before
    # a completed run skipped keeps its own record: Hydra wrote the command's over it (device=cuda, on a machine
    # without a GPU, was then replayed by every later resume=)
    record = {path: path.read_bytes() for path in (cosine / ".hydra").iterdir()}
    moved = run_main([f"resume={cosine}", "device=auto"], cwd=tmp_path)
    assert moved.returncode == 0 and "Already completed" in moved.stderr, moved.stderr
    assert {path: path.read_bytes() for path in (cosine / ".hydra").iterdir()} == record


def test_a_resume_with_another_optimizer_than_the_argument_it_was_made_with_is_refused(fast, tmp_path):
    """An argument the run passed to its optimizer (+optimizer.amsgrad=true), which the one chosen now does not
    take: "leave out +…" where the command offered keeps the run's epochs."""
    amsgrad = tmp_path / "amsgrad"
    assert run_main([*fast, "+optimizer.amsgrad=true", "trainer.limit_batches=2", f"hydra.run.dir={amsgrad}"],
                    cwd=tmp_path).returncode == 0
    sgd = run_main([f"resume={amsgrad}", "optimizer=sgd", "trainer.epochs=3"], cwd=tmp_path)
    assert sgd.returncode == 1 and f"Error: {amsgrad} was made with +optimizer.amsgrad=true, which the optimizer " \
        f"chosen now does not take: resume= continues a run with the settings it was made with. Continue it with " \
        f"`python run.py resume={amsgrad} trainer.epochs=3`, or" in sgd.stderr, sgd.stderr  # the epochs kept
    # that argument set again: the same value continues the run, another is a changed setting (it said "not a
    # setting of this optimizer's YAML", whose `+optimizer.amsgrad=false` then met "another config"); deleted,
    # it is the run's own (it said "which every run has: set it instead")
    same = run_main([f"resume={amsgrad}", "optimizer.amsgrad=true"], cwd=tmp_path)
    assert same.returncode == 0 and "Already completed" in same.stderr, same.stderr
    changed = run_main([f"resume={amsgrad}", "optimizer.amsgrad=false"], cwd=tmp_path)
    assert changed.returncode == 1 and "holds a run with another config (optimizer.amsgrad: true -> false)" \
        in changed.stderr, changed.stderr
    deleted = run_main([f"resume={amsgrad}", "~optimizer.amsgrad"], cwd=tmp_path)
    assert deleted.returncode == 1 and f"Error: {amsgrad} was made with +optimizer.amsgrad=true, which " \
        f"~optimizer.amsgrad deletes: resume= continues a run" in deleted.stderr, deleted.stderr
    # the command offered keeps no epochs that the run would not train on to, nor the eval batch size where
    # limit_batches makes it choose the images tested: each was refused in turn
    for refused in (["trainer.epochs=1"], ["trainer.eval_batch_size=500"]):
        offered = run_main([f"resume={amsgrad}", "optimizer=sgd", *refused], cwd=tmp_path)
        assert offered.returncode == 1 and f"Continue it with `python run.py resume={amsgrad}`, or" in offered.stderr, \
            offered.stderr
    empty = run_main([f"resume={amsgrad}", ""], cwd=tmp_path)  # an IndexError's traceback
    assert empty.returncode == 1 and "cannot be read as an override" in empty.stderr, empty.stderr[-2000:]


def test_a_sweeps_job_given_more_epochs_is_told_how_to_go_on(fast, tmp_path):
    """The sweep goes on with its command, or the job alone in a copy of its folder; a cosine sweep's in neither."""
    sweep = tmp_path / "sweep"
    assert run_main([*fast, "-m", "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path).returncode == 0
    job = run_main([f"resume={sweep / '0_seed=0'}", "trainer.epochs=2"], cwd=tmp_path)  # its sweep's command: 1 epoch
    # it said "run this config in a new hydra.run.dir", which resume= refuses and a run without it starts over
    job_dir = shlex.quote(str(sweep / "0_seed=0"))
    assert job.returncode == 1 and f"Train the sweep on (its command with hydra.sweep.dir={sweep} trainer.epochs=2), " \
        f"or this job alone in a copy of its folder: `cp -r {job_dir} <new folder> && python run.py " \
        f"resume=<new folder> trainer.epochs=2`." in job.stderr
    shutil.copytree(sweep / "0_seed=0", tmp_path / "alone")
    alone = run_main([f"resume={tmp_path / 'alone'}", "trainer.epochs=2"], cwd=tmp_path)
    assert alone.returncode == 0 and read_json(tmp_path / "alone" / "metrics.json")["epochs_done"] == 2, alone.stderr
    assert read_json(sweep / "0_seed=0" / "metrics.json")["epochs_done"] == 1
    # a cosine sweep's job trains on in neither way: it is not told to
    cosine_sweep = tmp_path / "cosine_sweep"
    assert run_main([*fast, "-m", "seed=0,1", "scheduler=cosine", f"hydra.sweep.dir={cosine_sweep}"],
                    cwd=tmp_path).returncode == 0
    cosine_job = run_main([f"resume={cosine_sweep / '0_seed=0'}", "trainer.epochs=2"], cwd=tmp_path)
    assert cosine_job.returncode == 1 and "Train the sweep on" not in cosine_job.stderr, cosine_job.stderr[-2000:]


def test_a_train_on_stopped_before_its_first_new_epoch_goes_back_to_the_completed_run(fast, tmp_path, monkeypatch):
    """A completed 2-epoch run trained on to 5 and stopped during epoch 3 had lost its test result, and
    trainer.epochs=2 was refused: fewer epochs than it was last given. It has trained 2, so it may end there."""
    from lenet_exp.loop import OneModel

    run_dir = tmp_path / "run"
    assert run_main([*fast, "trainer.epochs=2", f"hydra.run.dir={run_dir}"], cwd=tmp_path).returncode == 0
    completed = read_json(run_dir / "metrics.json")
    train_epoch = OneModel.train_epoch

    def ctrl_c_as_the_epoch_starts(self, *args):
        os.kill(os.getpid(), signal.SIGINT)  # its handler runs here: the epoch stops at its first step
        return train_epoch(self, *args)

    monkeypatch.setattr(OneModel, "train_epoch", ctrl_c_as_the_epoch_starts)
    stopped = run_main([f"resume={run_dir}", "trainer.epochs=5"], cwd=tmp_path)
    assert stopped.returncode == 130 and "during epoch 3" in stopped.stderr, stopped.stderr[-2000:]
    assert read_json(run_dir / "metrics.json")["test"] is None
    more = run_main([f"resume={run_dir}", "trainer.epochs=6"], cwd=tmp_path)  # stopped once more, in epoch 3
    assert f"{run_dir} has trained 2 of the 5 epochs it was last given: it goes on to 6." in more.stdout
    monkeypatch.undo()

    fewer = run_main([f"resume={run_dir}", "trainer.epochs=1"], cwd=tmp_path)  # it has trained 2
    assert fewer.returncode == 1 and "(fewer than the 2 epochs it has trained)" in fewer.stderr
    back = run_main([f"resume={run_dir}", "trainer.epochs=2"], cwd=tmp_path)
    assert back.returncode == 0, back.stderr[-2000:]
    assert f"{run_dir} has trained 2 of the 6 epochs it was last given: it ends after 2." in back.stdout
    again = read_json(run_dir / "metrics.json")
    assert again["status"] == "completed" and again["epochs"] == 2 and again["history"] == completed["history"]
    assert again["test"] == completed["test"] and again["best_epoch"] == completed["best_epoch"]
    assert scalar_values(load_events(run_dir), "test/acc") == {completed["best_epoch"]: pytest.approx(completed["test"]["acc"])}


def test_resume_of_a_directory_that_is_no_run(tmp_path):
    # a process of its own: run.py exits before Hydra starts, with the interpreter's status for a message
    result = run_cli([f"resume={tmp_path}"], cwd=tmp_path)
    assert result.returncode != 0 and "is not a run directory" in result.stderr
    result = run_cli([f"resume={tmp_path / 'gone'}"], cwd=tmp_path)  # it said "is not a run directory (no …)"
    assert result.returncode == 1 and result.stderr.strip() == (f"Error: resume={tmp_path / 'gone'}: no such folder. "
                                                                 f"Pass the directory of a run, e.g. "
                                                                 f"resume=outputs/runs/<date>/<time>.")
    for empty in ("resume=", "resume=''"):  # it said "resume=. is not a run directory"
        result = run_cli([empty], cwd=tmp_path)
        assert result.returncode == 1 and "Error: resume= names no run. Pass the directory of a run" in result.stderr
    # a sweep's folder (as Hydra writes one): how to continue the sweep, or one of its jobs
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "1_seed=1" / ".hydra").mkdir(parents=True)
    (sweep_dir / "1_seed=1" / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (sweep_dir / "multirun.yaml").write_text("hydra:\n  overrides:\n    task:\n    - seed=0,1\n")
    result = run_cli([f"resume={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (f"Error: resume={sweep_dir} is a sweep's directory, not a run's. The sweep's command run again with "
            f"hydra.sweep.dir={sweep_dir} continues the whole sweep") in result.stderr
    assert f"e.g. resume={sweep_dir / '1_seed=1'}." in result.stderr
    # -m with resume= would start a new sweep: hydra.run.dir is no sweep's folder
    result = run_cli(["-m", f"resume={sweep_dir / '1_seed=1'}"], cwd=tmp_path)
    assert result.returncode == 1 and "Error: resume= continues one run, and -m starts a sweep." in result.stderr
    # ... as would Hydra's own setting for it, which swept the default search space into outputs/sweeps/
    result = run_cli(["hydra.mode=MULTIRUN", f"resume={sweep_dir / '1_seed=1'}"], cwd=tmp_path)
    assert result.returncode == 1 and ("Error: resume= continues one run, and hydra.mode=MULTIRUN starts a sweep. "
                                       "Drop hydra.mode=MULTIRUN to continue") in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_resume_of_a_run_whose_overrides_were_edited_names_the_edit(fast, tmp_path):
    """A hand-edited .hydra/overrides.yaml (lr 0.01 -> 0.02) was blamed on "a config file or a default changed
    since", and its message pointed at config.yaml, which nobody had changed."""
    run = tmp_path / "run"
    assert run_main([*fast, "optimizer.lr=0.01", f"hydra.run.dir={run}"], cwd=tmp_path).returncode == 0
    overrides = run / ".hydra" / "overrides.yaml"
    overrides.write_text(overrides.read_text().replace("optimizer.lr=0.01", "optimizer.lr=0.02"))
    refused = run_main([f"resume={run}"], cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert (f"Error: {overrides} sets optimizer.lr=0.02 where the run's config.yaml has 0.01: it was edited after the "
            f"run was made. Put it back as it was to continue the run") in refused.stderr
    overrides.write_text(overrides.read_text().replace("optimizer.lr=0.02", "optimizer.lr=0.01"))  # put back
    assert run_main([f"resume={run}"], cwd=tmp_path).returncode == 0  # a completed run: skipped


def test_a_refused_resume_leaves_the_runs_record_as_it_was(fast, tmp_path, monkeypatch):
    """optimizer.lr=${oc.env:MYLR}: resumed with MYLR=0.5 and more epochs, the check before Hydra wrote .hydra/
    saw the same text, let it rewrite the record (epochs 2), and the run itself refused; a plain resume= with
    MYLR=0.02 then trained the completed 1-epoch run on to 2 epochs."""
    run = tmp_path / "run"
    monkeypatch.setenv("MYLR", "0.02")
    assert run_main([*fast, "optimizer.lr=${oc.env:MYLR}", f"hydra.run.dir={run}"], cwd=tmp_path).returncode == 0
    recorded = {name: (run / ".hydra" / name).read_text() for name in ("config.yaml", "overrides.yaml")}
    monkeypatch.setenv("MYLR", "0.5")
    refused = run_main([f"resume={run}", "trainer.epochs=2"], cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert (f"Error: {run} holds a run made with another config: optimizer.lr=${{oc.env:MYLR}} gives 0.5 now, 0.02 "
            f"when the run was made. Set what it reads as it was to continue the run") in refused.stderr
    assert {name: (run / ".hydra" / name).read_text() for name in recorded} == recorded
    monkeypatch.setenv("MYLR", "0.02")
    again = run_main([f"resume={run}"], cwd=tmp_path)
    assert again.returncode == 0 and "Already completed" in again.stdout + again.stderr
    assert read_json(run / "metrics.json")["epochs_done"] == 1


def test_a_run_given_more_epochs_that_fails_before_training_keeps_its_record(trained, tmp_path):
    """Hydra wrote the failed command (trainer.epochs=3) into the run's .hydra/, and a plain resume= then
    trained the run on to 3 epochs, which no command that had succeeded asked for."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    record = {path.name: path.read_bytes() for path in (run / ".hydra").iterdir()}
    failed = run_main([f"resume={run}", "trainer.epochs=3", f"dataset.root={tmp_path / 'nowhere'}"], cwd=tmp_path)
    assert failed.returncode == 1 and "Error: mnist is not in" in failed.stderr, failed.stderr[-2000:]
    assert {path.name: path.read_bytes() for path in (run / ".hydra").iterdir()} == record
    again = run_main([f"resume={run}"], cwd=tmp_path)
    assert again.returncode == 0 and "Already completed" in again.stderr, again.stderr[-2000:]


def test_a_resume_of_a_run_in_use_says_to_wait_before_anything_else(fast, tmp_path):
    """`resume=<run> trainer.epochs=N` of a run that was still training logged "it goes on to N", then was
    told to "choose another folder with hydra.run.dir=", which resume= refuses."""
    run = tmp_path / "run"
    assert run_main([*fast, f"hydra.run.dir={run}"], cwd=tmp_path).returncode == 0
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from lenet_exp.files import own_folder; "
                               "print(own_folder(sys.argv[1]), flush=True); sys.stdin.read()", str(run)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "None"  # it holds the folder, as the run training there would
        resumed = run_main([f"resume={run}", "trainer.epochs=2"], cwd=tmp_path)
        elsewhere = run_main([*fast, "trainer.epochs=2", f"hydra.run.dir={run}"], cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert resumed.returncode == 1 and "Traceback" not in resumed.stderr, resumed.stderr[-2000:]
    assert (f"Error: {run} is in use by another run (pid {holder.pid}). Wait until it ends, then run the same "
            f"command again.") in resumed.stderr
    assert "goes on to" not in resumed.stdout + resumed.stderr
    assert elsewhere.returncode == 1 and ("Wait until it ends, or choose another folder with hydra.run.dir=<dir>."
                                          in elsewhere.stderr), elsewhere.stderr[-2000:]
    assert read_json(run / "metrics.json")["epochs_done"] == 1  # as it was
    # a folder it cannot write (as root, a read-only one is written all the same: the probe file's name taken)
    (run / ".write_test").mkdir()
    unwritable = run_main([f"resume={run}", "trainer.epochs=2"], cwd=tmp_path)
    assert unwritable.returncode == 1 and (f"Error: cannot write the output directory {run} (" in unwritable.stderr
                                           ), unwritable.stderr[-2000:]
    assert "Copy the folder to a writable place and resume the copy (resume=<copy>)." in unwritable.stderr


@pytest.mark.parametrize("task", ["eval", "predict"])
def test_resume_with_an_evaluation_task_says_how_to_evaluate_the_run(trained, fast, tmp_path, task):
    """`task=eval resume=<run>` was told that the run's folder was taken, and to give a hydra.run.dir of its
    own, which resume= refuses."""
    result = run_main([*fast, f"task={task}", f"resume={trained}"], cwd=tmp_path)
    best = trained / "checkpoints" / "best.pt"
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"Error: resume= continues training a run, and task={task} trains nothing." in result.stderr
    command = re.search(r"`python run.py (.*)`", result.stderr).group(1)
    assert command == f"task={task} ckpt={best}" + (" image=<file>" if task == "predict" else "")
    if task == "eval":  # the command it gives does what it says
        evaluated = run_main([*fast, *shlex.split(command), f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
        assert evaluated.returncode == 0, evaluated.stderr[-2000:]
        tested, trained_test = (read_json(run / "metrics.json")["test"] for run in (tmp_path / "eval", trained))
        assert tested["acc"] == trained_test["acc"]


def test_resume_with_an_evaluation_task_of_a_folder_without_a_checkpoint_says_what_it_holds(trained, fast, tmp_path):
    """It gave `task=eval ckpt=<folder>/checkpoints/best.pt`, which does not exist, for an evaluation's folder and
    for a run stopped before its first checkpoint (helper fixes60)."""
    evaluation = tmp_path / "eval"
    made = run_main([*fast, "task=eval", f"ckpt={trained / 'checkpoints' / 'best.pt'}", f"hydra.run.dir={evaluation}"],
                    cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    result = run_main([*fast, "task=eval", f"resume={evaluation}"], cwd=tmp_path)
    assert result.returncode == 1 and (f"Error: resume= continues a run, and task=eval takes a training run's "
                                       f"checkpoint, which {evaluation} does not hold: it is a task=eval run, which "
                                       f"`python run.py resume={evaluation}` runs again.") in result.stderr
    again = run_main([f"resume={evaluation}"], cwd=tmp_path)  # as it says
    assert again.returncode == 0 and read_json(evaluation / "metrics.json")["task"] == "eval", again.stderr[-2000:]
    (tmp_path / "begun").mkdir()
    shutil.copytree(trained / ".hydra", tmp_path / "begun" / ".hydra")  # stopped before its first epoch ended
    begun = run_main([*fast, "task=predict", f"resume={tmp_path / 'begun'}"], cwd=tmp_path)
    assert begun.returncode == 1 and (f"which {tmp_path / 'begun'} does not hold yet (no epoch of it ended): `python "
                                      f"run.py resume={tmp_path / 'begun'}` trains it.") in begun.stderr
    # one that diverged at its first epoch, which that resume= would train to diverge again (helper regress60)
    diverged = run_main([*fast, "optimizer=sgd", "optimizer.lr=1e8", f"hydra.run.dir={tmp_path / 'div'}"], cwd=tmp_path)
    assert read_json(tmp_path / "div" / "metrics.json")["status"] == "diverged", diverged.stderr[-2000:]
    told = run_main([*fast, "task=eval", f"resume={tmp_path / 'div'}"], cwd=tmp_path)
    assert told.returncode == 1 and (f"which {tmp_path / 'div'} does not hold: it diverged before its first "
                                     f"checkpoint; train another config (a lower optimizer.lr, say) in a new folder."
                                     ) in told.stderr, told.stderr[-2000:]


def test_a_run_stops_early_once_its_val_accuracy_has_not_improved_for_its_patience(fast, tmp_path):
    """trainer.early_stop_patience: one val image, whose accuracy is 0 or 1, stops improving within two epochs
    of the first. The run is complete: its test is of its best epoch, and the same command skips it."""
    import torch

    def command(epochs: int = 5) -> list[str]:
        return [*fast, "dataset.val_size=1", f"trainer.epochs={epochs}", "trainer.early_stop_patience=1",
                "hydra.run.dir=run"]

    result = run_main(command(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = read_json(tmp_path / "run" / "metrics.json")
    done, best = metrics["epochs_done"], metrics["best_epoch"]
    accuracies = [row["val/acc"] for row in metrics["history"]]
    # each epoch before the last improved on the best (a patience of 1), and the last did not
    assert metrics["status"] == "completed" and done < 5 and len(accuracies) == done and best == done - 1
    assert all(later > earlier for earlier, later in zip(accuracies[:-1], accuracies[1:-1]))
    assert accuracies[-1] <= accuracies[best - 1]
    assert metrics["message"] == (f"Stopped early after epoch {done} of 5: no better val acc in 1 epoch "
                                  f"(trainer.early_stop_patience=1).") and metrics["message"] in result.stderr
    assert metrics["test"]["acc"] is not None
    assert f"| best epoch | {best} of 5 ({done} trained: stopped early) |" in card(load_events(tmp_path / "run"))
    saved = (torch.load(tmp_path / "run" / "checkpoints" / f"{name}.pt", weights_only=True)["run_state"]["epoch"]
             for name in ("last", "best"))
    assert tuple(saved) == (done, best)  # a train-on (more epochs) goes on after the epoch it stopped at
    again = run_main(command(), cwd=tmp_path)
    assert again.returncode == 0 and "Already completed" in again.stderr, again.stderr[-2000:]
    # killed between its stop and its test (its record still says running), or trained on to more epochs: it
    # resumes where it stopped, and trains no epoch that its patience has ended
    save_json(tmp_path / "run" / "metrics.json", {**metrics, "status": "running"})
    for resumed in (run_main(command(), cwd=tmp_path), run_main(command(epochs=8), cwd=tmp_path)):
        assert resumed.returncode == 0 and f"Resuming {tmp_path / 'run'} after epoch {done}" in resumed.stderr, \
            resumed.stderr[-2000:]
        assert f"epoch {done + 1}/" not in resumed.stderr and "Stopped early after epoch" in resumed.stderr
        after = read_json(tmp_path / "run" / "metrics.json")
        assert (after["status"], after["epochs_done"], after["test"]) == ("completed", done, metrics["test"])
    assert (f"[hydra] run stopped early after epoch {done} of 5 (trainer.early_stop_patience=1): it stops there "
            f"again with 8. More patience trains it on (trainer.early_stop_patience=N, N > 1).") in resumed.stdout
    # more patience stops it no sooner: its epochs are those of the more patient run, which goes on from them
    patient = run_main([*command(epochs=8), "trainer.early_stop_patience=null"], cwd=tmp_path)
    assert patient.returncode == 0, patient.stderr[-2000:]
    assert (f"[hydra] run stopped early after epoch {done} of 8 (trainer.early_stop_patience=1): it goes on with "
            f"trainer.early_stop_patience=null, up to epoch 8.") in patient.stdout
    assert f"Resuming {tmp_path / 'run'} after epoch {done}" in patient.stderr
    assert f"epoch {done + 1}/8" in patient.stderr
    longer = read_json(tmp_path / "run" / "metrics.json")
    assert (longer["status"], longer["epochs_done"], longer["history"][:done]) == ("completed", 8, metrics["history"])
    events = load_events(tmp_path / "run")  # its stop's test and card are forgotten: one test, as it ends
    assert sorted(scalar_values(events, "val/acc")) == list(range(1, 9))
    assert list(scalar_values(events, "test/acc")) == [longer["best_epoch"]]
    assert len(events.Tensors("run/summary/text_summary")) == 1
    # less patience might have stopped it sooner: another run, refused before anything is written
    written = {path: path.read_bytes() for path in (tmp_path / "run").rglob("*") if path.is_file()}
    for impatient in ("trainer.early_stop_patience=1", "trainer.early_stop_patience=2"):
        refused = run_main([*command(epochs=8), impatient], cwd=tmp_path)
        assert refused.returncode == 1 and (f"holds a run trained with trainer.early_stop_patience=null: "
                                            f"{impatient[-1]} might have stopped it sooner") in refused.stderr, \
            refused.stderr[-2000:]
    assert {path: path.read_bytes() for path in (tmp_path / "run").rglob("*") if path.is_file()} == written
    refused = run_main([*fast, "trainer.early_stop_patience=0"], cwd=tmp_path)
    assert refused.returncode == 1 and "trainer.early_stop_patience=0" in refused.stderr and \
        "null (HParams' 0) or an integer >= 1" in refused.stderr, refused.stderr[-2000:]


def test_trainer_monitor_val_loss_selects_the_epoch_of_the_lowest_val_loss(fast, tmp_path):
    """The best epoch (best.pt, its test, metrics.json's val) is the one of the lowest val loss, where the highest
    accuracy came at another; early stopping waits on the loss too. A run of before the setting selected on
    accuracy: it is that run."""
    import torch

    base = [*fast, "trainer.epochs=5", "trainer.deterministic=true"]
    result = run_main([*base, "optimizer.lr=1e-3", "trainer.monitor=val_loss", "hydra.run.dir=loss"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = read_json(tmp_path / "loss" / "metrics.json")
    losses, accuracies = ([row[key] for row in metrics["history"]] for key in ("val/loss", "val/acc"))
    best = metrics["best_epoch"]
    assert best == 1 + losses.index(min(losses)) != 1 + accuracies.index(max(accuracies))  # they disagree here
    assert metrics["val"] == {"loss": losses[best - 1], "acc": accuracies[best - 1]}
    assert torch.load(tmp_path / "loss" / "checkpoints" / "best.pt", weights_only=True)["run_state"]["epoch"] == best
    assert (f"Done: best val loss {losses[best - 1]:.4f} (epoch {best}; val acc {accuracies[best - 1]:.4f}), test acc "
            in result.stderr)
    text = card(load_events(tmp_path / "loss"))  # what chose it, beside a val acc that another epoch bettered
    assert f"| best epoch | {best} of 5, the lowest val loss |" in text
    assert f"| val loss (best epoch) | {losses[best - 1]:.4f} |" in text
    patient = run_main([*base, "optimizer.lr=3e-3", "trainer.monitor=val_loss", "trainer.early_stop_patience=1",
                        "hydra.run.dir=stopped"], cwd=tmp_path)
    stopped = read_json(tmp_path / "stopped" / "metrics.json")
    losses = [row["val/loss"] for row in stopped["history"]]
    assert patient.returncode == 0 and stopped["epochs_done"] < 5, patient.stderr[-2000:]
    assert losses[-1] >= min(losses[:-1]) and stopped["best_epoch"] == stopped["epochs_done"] - 1
    assert "no better val loss in 1 epoch" in stopped["message"]
    # a run recorded before trainer.monitor existed: the same command (of val_acc, the default) goes on with it
    result = run_main([*base, "trainer.epochs=2", "hydra.run.dir=old"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in (".hydra/config.yaml", "metrics.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        path = tmp_path / "old" / name
        if name.endswith(".pt"):
            state = torch.load(path, weights_only=True)
            del state["config"]["trainer"]["monitor"]
            torch.save(state, path)
        elif name.endswith(".json"):
            record = read_json(path)
            del record["config"]["trainer"]["monitor"]
            save_json(path, record)
        else:
            path.write_text(path.read_text().replace("  monitor: val_acc\n", ""))
    longer = run_main([*base, "hydra.run.dir=old"], cwd=tmp_path)
    assert longer.returncode == 0 and f"Resuming {tmp_path / 'old'} after epoch 2" in longer.stderr, \
        longer.stderr[-2000:]
    other = run_main([*base, "trainer.monitor=val_loss", "hydra.run.dir=old"], cwd=tmp_path)  # another run
    assert other.returncode == 1 and "trainer.monitor: 'val_acc' -> 'val_loss'" in other.stderr, other.stderr[-2000:]


def test_eval_writes_its_own_metrics(trained, fast, tmp_path):
    result = run_main(fast + ["task=eval", f"ckpt={trained / 'checkpoints' / 'best.pt'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = read_json(only_run_dir(tmp_path) / "metrics.json")
    trained_metrics = read_json(trained / "metrics.json")
    assert metrics["task"] == "eval" and metrics["dataset"] == "mnist"
    assert metrics["test"]["acc"] == trained_metrics["test"]["acc"]  # same weights, same preprocessing, same split
    assert metrics["test"]["acc_by_class"] == trained_metrics["test"]["acc_by_class"]
    assert metrics["test"]["loss"] == pytest.approx(trained_metrics["test"]["loss"], rel=1e-5)
    assert metrics["test"]["samples"] == 200  # all of the tiny test split
    # which weights: best.pt's epoch (a run trained on replaces it; the record did not say which it tested)
    assert metrics["ckpt_epoch"] == trained_metrics["best_epoch"]


def test_eval_with_limit_batches_tests_the_first_batches_as_a_run_does(trained, fast, tmp_path):
    result = run_main(fast + ["task=eval", f"ckpt={trained / 'checkpoints' / 'best.pt'}", "trainer.limit_batches=1",
                              "trainer.eval_batch_size=50"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_json(only_run_dir(tmp_path) / "metrics.json")["test"]["samples"] == 50
    assert "(50 images)" in result.stderr


def test_eval_uses_the_checkpoints_ema_weights_and_preprocessing(fast, tmp_path):
    """A run with EMA weights, a padded input and its own computed statistics: eval with the default
    config still reproduces its test result, from the checkpoint alone."""
    train_dir, eval_dir = tmp_path / "train", tmp_path / "eval"
    special = ["trainer.epochs=2", "trainer.ema_decay=0.5", "dataset.resize_mode=pad", "dataset.mean=null",
               "dataset.std=null"]
    result = run_main(fast + special + [f"hydra.run.dir={train_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    trained_metrics = read_json(train_dir / "metrics.json")
    best = torch.load(train_dir / "checkpoints" / "best.pt", weights_only=True)
    assert best["ema"] is not None and best["preprocessing"]["resize_mode"] == "pad"
    assert best["preprocessing"]["mean"] not in (0.1307, None)  # computed from the training images

    result = run_main(fast + ["task=eval", f"ckpt={train_dir / 'checkpoints' / 'best.pt'}", f"hydra.run.dir={eval_dir}"],
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = read_json(eval_dir / "metrics.json")
    assert metrics["test"]["acc"] == trained_metrics["test"]["acc"]
    assert metrics["test"]["loss"] == pytest.approx(trained_metrics["test"]["loss"], rel=1e-5)
    # what it tested is in its record, where its .hydra/ holds the command's defaults, which it did not use
    assert metrics["ema_decay"] == 0.5 and metrics["preprocessing"] == {
        "image_size": 32, "resize_mode": "pad", "mean": best["preprocessing"]["mean"], "std": best["preprocessing"]["std"]}
    assert OmegaConf.load(eval_dir / ".hydra" / "config.yaml").dataset.resize_mode == "resize"
    assert metrics["versions"] == trained_metrics["versions"] and metrics["git"] == trained_metrics["git"]


def test_eval_on_another_dataset_with_the_same_classes(trained, fast, tmp_path):
    # its figures too: their predicted axis is named with the model's own classes
    result = run_main(fast + ["task=eval", f"ckpt={trained / 'checkpoints' / 'best.pt'}", "dataset=fashion_mnist",
                              f"dataset.root={fast[0].split('=', 1)[1]}", "trainer.log_images=true"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_json(only_run_dir(tmp_path) / "metrics.json")["dataset"] == "fashion_mnist"
    assert "images, a model trained on mnist)" in result.stderr


def test_evals_val_split_is_its_runs_for_its_own_files_and_as_told_for_others(trained, fast, tmp_path):
    """Its own files under another data set name took the command line's split, whose val images held some it
    trained on; another data set's val_size was said "not used", and used (helper mismatch59)."""
    ckpt = f"ckpt={trained / 'checkpoints' / 'best.pt'}"
    renamed = run_main([*fast, "task=eval", ckpt, "dataset.name=mnist_copy", "dataset.val_size=300",
                        "hydra.run.dir=renamed"], cwd=tmp_path)
    assert renamed.returncode == 0, renamed.stderr[-2000:]
    assert read_json(tmp_path / "renamed" / "metrics.json")["val"]["samples"] == 100  # its run's, as trained
    assert ("mnist_copy's train files are those " in renamed.stderr
            and "its val split is its run's (dataset.val_size=100, dataset.split_seed=0)" in renamed.stderr)
    other = run_main([*fast, "task=eval", ckpt, "dataset=fashion_mnist", "dataset.val_size=50", "hydra.run.dir=other"],
                     cwd=tmp_path)
    assert other.returncode == 0, other.stderr[-2000:]
    assert read_json(tmp_path / "other" / "metrics.json")["val"]["samples"] == 50
    assert "dataset.val_size=50 not used" not in other.stderr


def test_checkpoints_copied_into_a_folder_stay_theirs_when_another_config_is_refused(trained, fast, tmp_path):
    """A folder of checkpoints alone: a command of another config was refused, pointing to `resume=`, which replayed
    the record Hydra had written for that command (the refused config); and that record and its failure made the
    folder the refused run's, so the checkpoints' own settings were refused next (helper mismatch59)."""
    shutil.copytree(trained / "checkpoints", tmp_path / "bare" / "checkpoints")
    other = run_main([*fast, "optimizer.lr=0.01", "hydra.run.dir=bare"], cwd=tmp_path)
    assert other.returncode == 1, other.stderr[-2000:]
    assert (f"Error: {tmp_path / 'bare'} holds the checkpoints of a run with another config (optimizer.lr: 0.001 -> "
            f"0.01), and no record of it: give its settings to continue it") in other.stderr
    assert not (tmp_path / "bare" / ".hydra").exists() and not (tmp_path / "bare" / "metrics.json").exists()
    own = run_main([*fast, "hydra.run.dir=bare"], cwd=tmp_path)
    assert own.returncode == 0, own.stderr[-2000:]
    assert read_json(tmp_path / "bare" / "metrics.json")["status"] == "completed"


def test_a_preset_given_to_eval_is_said_unused(trained, fast, tmp_path):
    """experiment=fashion_best: its data set and test-time augmentation were left out without a word (a preset's
    settings are no key of its own), and the run's record named it."""
    result = run_main([*fast, "task=eval", f"ckpt={trained / 'checkpoints' / 'best.pt'}", "experiment=fashion_best"],
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "experiment=fashion_best not used: task=eval takes " in result.stderr
    assert read_json(only_run_dir(tmp_path) / "metrics.json")["dataset"] == "mnist"


@pytest.mark.parametrize("task, swept, said", [
    ("eval", ["experiment=fashion_best,mnist_best"], "task=eval does not use experiment"),
    ("eval", ["seed=0,1", "dataset.mean=0.1,0.2"], "task=eval does not use dataset.mean or seed"),
    ("predict", ["dataset=mnist,fashion_mnist"], "task=predict does not use dataset"),
    ("eval", ["dataset=fashion_mnist", "dataset.split_seed=1,2"], None),  # another data set's split: read
    # the checkpoint's own data set's split (its run's) and predict's none; tasks swept (helper regress60)
    ("eval", ["dataset.split_seed=1,2"], "task=eval does not use dataset.split_seed"),
    ("predict", ["dataset.train_size=100,200"], "task=predict does not use dataset.train_size"),
    ("eval,predict", ["seed=0,1"], "task=eval,predict does not use seed"),
])
def test_a_sweep_of_what_eval_or_predict_does_not_use_is_refused(trained, fast, tmp_path, task, swept, said):
    """Jobs that differed only in settings the task does not read ran alike, each saying its setting was unused."""
    checkpoint = trained / "checkpoints" / "best.pt"
    image = [f"image={tmp_path / 'digit.png'}"] if "predict" in task else []
    if image:
        from PIL import Image
        Image.new("L", (28, 28)).save(tmp_path / "digit.png")
    result = run_main(["-m", *fast, f"task={task}", f"ckpt={checkpoint}", *image, *swept,
                       f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    if said is None:
        assert result.returncode == 0, result.stderr[-2000:]
        return
    assert result.returncode == 1 and f"Error: {said} (it takes the checkpoint's model and preprocessing as it was " \
        f"trained), so the sweep's jobs would be alike." in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not (tmp_path / "sweep").exists()


def test_eval_of_a_run_still_training_says_its_result_will_change(trained, fast, tmp_path):
    """The best checkpoint so far was evaluated without a word that the run goes on."""
    run, testing = tmp_path / "run", tmp_path / "testing"  # after epoch 1 of 3; after its last, in its final test
    shutil.copytree(trained, run)
    shutil.copytree(trained, testing)
    best = run / "checkpoints" / "best.pt"
    state = torch.load(best, weights_only=True)
    state["config"]["trainer"]["epochs"] = 3
    torch.save(state, best)
    eval_args = [*fast, "task=eval", f"ckpt={best}"]
    finished = run_main(eval_args + [f"hydra.run.dir={tmp_path / 'after'}"], cwd=tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from lenet_exp.files import own_folder; "
                               "print([own_folder(folder) for folder in sys.argv[1:]], flush=True); sys.stdin.read()",
                               str(run), str(testing)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "[None, None]"  # it holds both, as the runs there would
        training = run_main(eval_args + [f"hydra.run.dir={tmp_path / 'during'}"], cwd=tmp_path)
        final_test = run_main([*fast, "task=eval", f"ckpt={testing / 'checkpoints' / 'best.pt'}",
                               f"hydra.run.dir={tmp_path / 'final'}"], cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert finished.returncode == 0 and "still training" not in finished.stderr, finished.stderr[-2000:]
    assert final_test.returncode == 0 and "still training" not in final_test.stderr, final_test.stderr[-2000:]
    assert training.returncode == 0, training.stderr[-2000:]
    assert (f"{best} is of a run still training (pid {holder.pid}): it holds its weights after epoch 1 of 3. Run "
            f"this again when the run ends for its final ones.") in training.stderr
    # a run stopped after its second epoch, whose best is its first: said as well (nothing was), with the
    # command that trains it on
    metrics = read_json(run / "metrics.json")
    save_json(run / "metrics.json", {**metrics, "status": "interrupted", "epochs_done": 2})
    interrupted = run_main(eval_args + [f"hydra.run.dir={tmp_path / 'interrupted'}"], cwd=tmp_path)
    assert interrupted.returncode == 0 and f"{best} is of a run interrupted after epoch 2 of 3: `python run.py " \
        f"resume={run}` trains it on." in interrupted.stderr, interrupted.stderr[-2000:]
    # killed outright (its record says running, and no process holds it) or diverged: said too (nothing was)
    save_json(run / "metrics.json", {**metrics, "status": "running", "epochs_done": 2})
    killed = run_main(eval_args + [f"hydra.run.dir={tmp_path / 'killed'}"], cwd=tmp_path)
    assert killed.returncode == 0 and f"{best} is of a run killed (or running elsewhere) after epoch 2 of 3: " \
        f"`python run.py resume={run}` trains it on." in killed.stderr, killed.stderr[-2000:]
    save_json(run / "metrics.json", {**metrics, "status": "diverged", "message": "Training diverged at epoch 2 (…)"})
    diverged = run_main(eval_args + [f"hydra.run.dir={tmp_path / 'diverged'}"], cwd=tmp_path)
    assert diverged.returncode == 0 and f"{best} is of a run that diverged: Training diverged at epoch 2 (…)" \
        in diverged.stderr, diverged.stderr[-2000:]


def test_eval_needs_the_test_files_alone(trained, fast, tiny_root, tmp_path):
    """It was refused for a folder without the training files ("It lacks train-images-idx3-ubyte, …"): it tests,
    and says it has no val accuracy, without trying to download them for it."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        shutil.copy(tiny_root / "MNIST" / "raw" / name, raw / name)
    result = run_main([*fast, "task=eval", f"ckpt={trained / 'checkpoints' / 'best.pt'}", "dataset.download=true",
                       f"dataset.root={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    evaluated, tested = (read_json(run / "metrics.json")["test"] for run in (tmp_path / "eval", trained))
    assert evaluated["acc"] == tested["acc"] and evaluated["loss"] == pytest.approx(tested["loss"], rel=1e-5)
    assert read_json(tmp_path / "eval" / "metrics.json")["val"] is None
    assert f"No val accuracy: {raw} has no train-images-idx3-ubyte or train-labels-idx1-ubyte" in result.stderr
    assert sorted(path.name for path in raw.iterdir()) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    assert "download failed" not in result.stderr and not list(raw.parent.parent.glob(".*lock"))


def test_eval_of_damaged_train_labels_tests_and_says_it_has_no_val_accuracy(trained, fast, tiny_root, tmp_path):
    """A label of 10 in the train files, which eval reads for its val split alone, failed the evaluation after it
    had tested (helper dataroot60); the other damage to them was a warning."""
    root = damaged_root(tiny_root, tmp_path, a_label_of_ten)
    result = run_main([*fast, "task=eval", f"ckpt={trained / 'checkpoints' / 'best.pt'}", f"dataset.root={root}",
                       f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "No val accuracy: Labels of mnist train range over [0, 10], outside the 10 classes" in result.stderr
    evaluated = read_json(tmp_path / "eval" / "metrics.json")
    assert evaluated["val"] is None and evaluated["test"]["acc"] == read_json(trained / "metrics.json")["test"]["acc"]


def test_train_and_test_files_swapped_are_said_to_be_so(fast, tiny_root, tmp_path):
    """It trained on the 200 test images and tested on the 600 train images without a word (helper dataroot60)."""
    def swapped(raw):
        for kind in ("images-idx3", "labels-idx1"):
            (raw / f"train-{kind}-ubyte").rename(raw / "kept")
            (raw / f"t10k-{kind}-ubyte").rename(raw / f"train-{kind}-ubyte")
            (raw / "kept").rename(raw / f"t10k-{kind}-ubyte")

    root = damaged_root(tiny_root, tmp_path, swapped)
    result = run_main([*fast, f"dataset.root={root}", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (f"mnist's train files in {root / 'MNIST' / 'raw'} hold 200 images, its t10k files 600: are the two "
            f"swapped?") in result.stderr


def test_eval_keeps_the_checkpoints_data_set_when_only_its_location_is_given(fast, tmp_path):
    train_dir, eval_dir = tmp_path / "train", tmp_path / "eval"
    result = run_main(fast + ["dataset=fashion_mnist", f"hydra.run.dir={train_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    where = [o for o in fast if o.startswith(("dataset.root", "dataset.download", "device"))]
    result = run_main(where + ["task=eval", f"ckpt={train_dir / 'checkpoints' / 'best.pt'}", "trainer.tta_hflip=true",
                               f"hydra.run.dir={eval_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = read_json(eval_dir / "metrics.json")
    assert metrics["dataset"] == "fashion_mnist" and metrics["tta"] == {"hflip": True, "shift": 0}


@pytest.mark.parametrize("given, said", [
    (["optimizer=sgd", "optimizer.momentum=0.5"],
     "optimizer.momentum=0.5 is not used: scheduler=onecycle moves the momentum between 0.95 and 0.85"),
    (["optimizer.betas=[0.5,0.99]"], "beta1 of optimizer.betas=[0.5, 0.99] is not used"),
    (["optimizer.betas.0=0.5"], "beta1 of optimizer.betas=[0.5, 0.999] is not used"),  # one item of it
    (["optimizer=sgd"], None),  # nothing given: nothing said
], ids=["sgd-momentum", "adam-betas", "adam-beta1", "none-given"])
def test_a_momentum_that_one_cycle_replaces_is_said_not_to_be_used(fast, tmp_path, given, said):
    """OneCycleLR sets the momentum (Adam's beta1) itself: a sweep over optimizer.momentum trained one run N
    times without a word. Said, not refused: a run made so goes on (resume= replays the override)."""
    result = run_main([*fast, "trainer.limit_batches=8", "scheduler=onecycle", *given, "hydra.run.dir=run"],
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (said in result.stderr) if said else ("is not used" not in result.stderr), result.stderr[-2000:]


def test_predict_prints_class_and_probability(trained, tiny_root, fast, tmp_path):
    from PIL import Image
    from torchvision.datasets.mnist import read_image_file, read_label_file

    raw = tiny_root / "MNIST" / "raw"
    image = read_image_file(str(raw / "t10k-images-idx3-ubyte"))[0]
    label = int(read_label_file(str(raw / "t10k-labels-idx1-ubyte"))[0])
    # RGB and twice the size: preprocessing must make it the 28x28 grayscale the model learned from
    Image.fromarray(image.numpy()).resize((56, 56), Image.NEAREST).convert("RGB").save(tmp_path / "digit.png")
    result = run_main(fast + ["task=predict", f"ckpt={trained / 'checkpoints' / 'best.pt'}",
                              f"image={tmp_path / 'digit.png'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    prediction = read_json(only_run_dir(tmp_path) / "prediction.json")
    assert prediction["class"] == label
    assert prediction["probability"] == max(prediction["probabilities"])
    assert result.stdout.startswith(f"{label} (") and "probability" in result.stdout
    assert sum(prediction["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    assert "light background" not in result.stderr
    Image.fromarray(255 - image.numpy()).save(tmp_path / "drawn.png")  # black on white, as drawn in a paint program
    drawn = run_main(fast + ["task=predict", f"ckpt={trained / 'checkpoints' / 'best.pt'}",
                             f"image={tmp_path / 'drawn.png'}"], cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    assert "drawn.png looks dark on a light background (its border averages " in drawn.stderr
    garment = run_main(fast + ["task=predict", f"ckpt={trained / 'checkpoints' / 'best.pt'}", "dataset=fashion_mnist",
                               f"image={tmp_path / 'digit.png'}"], cwd=tmp_path)  # the checkpoint's classes: digits
    assert garment.returncode == 0 and "dataset=fashion_mnist not used: task=predict takes" in garment.stderr, \
        garment.stderr
    assert "dataset.mean" not in garment.stderr, garment.stderr  # said again of the option's statistics
    assert garment.stdout == result.stdout


def test_a_prediction_whose_output_takes_no_more_is_kept_as_completed(trained, tmp_path):
    """The printed prediction sent to a full disk (`> file`) or a reader gone (`| true`) failed the run that had
    made it: its prediction.json said completed and its metrics.json failed, with a traceback on the console."""
    from PIL import Image

    Image.new("L", (28, 28), 255).save(tmp_path / "digit.png")
    reader, closed_pipe = os.pipe()
    os.close(reader)
    for output, writer in (("full", os.open("/dev/full", os.O_WRONLY)), ("pipe", closed_pipe)):
        try:
            result = run_cli(["task=predict", f"ckpt={trained / 'checkpoints' / 'best.pt'}",
                              f"image={tmp_path / 'digit.png'}", f"hydra.run.dir={tmp_path / output}"],
                             cwd=tmp_path, stdout=writer)
        finally:
            os.close(writer)
        assert result.returncode == 0 and "Error" not in result.stderr and "Traceback" not in result.stderr, \
            result.stderr
        assert read_json(tmp_path / output / "prediction.json")["status"] == "completed"
        assert not (tmp_path / output / "metrics.json").exists()


def test_predict_averages_its_test_time_views_and_records_the_paths_it_read(trained, tiny_root, fast, tmp_path):
    """trainer.tta_* were ignored by predict, which task=eval applies; `image='~/…'` (quoted, as the shell
    leaves it) was recorded as <current folder>/~/…."""
    from PIL import Image
    from torchvision.datasets.mnist import read_image_file

    image = read_image_file(str(tiny_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"))[0]
    Image.fromarray(image.numpy()).save(tmp_path / "digit.png")
    best = trained / "checkpoints" / "best.pt"
    predictions = {}
    for tta in ([], ["trainer.tta_hflip=true", "trainer.tta_shift=2"], ["trainer.precision=bf16"]):
        run_dir = tmp_path / f"tta_{len(predictions)}"
        result = run_main([*fast, "task=predict", f"ckpt={best}", "image=~/digit.png", *tta, f"hydra.run.dir={run_dir}"],
                          cwd=tmp_path, env={"HOME": str(tmp_path)})
        assert result.returncode == 0 and "not used" not in result.stderr, result.stderr[-2000:]
        predictions[len(predictions)] = read_json(run_dir / "prediction.json")
    plain, averaged, bf16 = predictions.values()
    assert plain["tta"] == {"hflip": False, "shift": 0} and averaged["tta"] == {"hflip": True, "shift": 2}
    assert plain["probabilities"] != pytest.approx(averaged["probabilities"], abs=1e-6)
    # in the precision the run tested in (fp32 here), or the one named (bf16 was said to be unused, as predict
    # computed in fp32 what eval computes in bf16)
    assert (plain["precision"], bf16["precision"]) == ("fp32", "bf16")
    assert plain["probabilities"] != pytest.approx(bf16["probabilities"], abs=1e-6)
    assert plain["image"] == str(tmp_path / "digit.png") and plain["ckpt"] == str(best)
    assert plain["ckpt_epoch"] == read_json(trained / "metrics.json")["best_epoch"]
    into_the_run = run_main([*fast, "task=predict", f"ckpt={best}", f"image={tmp_path / 'digit.png'}",
                             f"hydra.run.dir={trained}"], cwd=tmp_path)  # what it would write over, and only that
    assert into_the_run.returncode == 1 and (f"Error: {trained} holds a task=train run, whose .hydra/ record "
                                             f"task=predict would write over.") in into_the_run.stderr
    # and the other way round: a prediction's folder has no metrics.json nor TensorBoard run (it said so)
    into_the_prediction = run_main([*fast, "task=eval", f"ckpt={best}", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert into_the_prediction.returncode == 1 and (f"Error: {run_dir} holds a task=predict run, whose .hydra/ record "
                                                    f"task=eval would write over.") in into_the_prediction.stderr
    # a prediction run again that failed (its checkpoint damaged since) keeps the folder its earlier result's
    copy, again = tmp_path / "copy.pt", tmp_path / "again"
    shutil.copy(best, copy)
    predict_copy = [*fast, "task=predict", f"ckpt={copy}", f"hydra.run.dir={again}"]
    assert run_main([*predict_copy, f"image={tmp_path / 'digit.png'}"], cwd=tmp_path).returncode == 0
    copy.write_bytes(b"damaged")
    assert run_main([*predict_copy, f"image={tmp_path / 'digit.png'}"], cwd=tmp_path).returncode == 1
    Image.fromarray(255 - image.numpy()).save(tmp_path / "other.png")
    other = run_main([*predict_copy, f"image={tmp_path / 'other.png'}"], cwd=tmp_path)
    assert other.returncode == 1 and "holds a task=predict run with other settings" in other.stderr, other.stderr
    assert read_json(again / "prediction.json")["image"] == str(tmp_path / "digit.png")


def test_predict_with_an_unreadable_image(trained, fast, tmp_path):
    (tmp_path / "fake.png").write_text("not an image")
    result = run_main(fast + ["task=predict", f"ckpt={trained / 'checkpoints' / 'best.pt'}",
                              f"image={tmp_path / 'fake.png'}"], cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "fake.png is not a readable PNG or JPEG image" in result.stderr


def test_predict_with_a_folder_for_an_image(trained, fast, tmp_path):
    result = run_main(fast + ["task=predict", f"ckpt={trained / 'checkpoints' / 'best.pt'}", f"image={tmp_path}"],
                      cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"Image {tmp_path} is a folder. Pass image=<a PNG or JPEG file>." in result.stderr
    pattern = run_main(fast + ["task=predict", f"ckpt={trained / 'checkpoints' / 'best.pt'}", "image=digits/*.png"],
                       cwd=tmp_path)  # quoted for the shell, or matching no file: left as it is
    assert pattern.returncode == 1 and "Image digits/*.png does not exist. Pass image=<a PNG or JPEG file>; a " \
        "pattern is not expanded: -m task=predict image=\"$(ls digits/*.png | paste -sd,)\" predicts each file." \
        in pattern.stderr, pattern.stderr
    device = run_main(fast + ["task=predict", f"ckpt={trained / 'checkpoints' / 'best.pt'}", "image=/dev/null"],
                      cwd=tmp_path)  # it exists: "does not exist" before
    assert device.returncode == 1 and "Image /dev/null is no regular file. Pass image=<a PNG or JPEG file>." \
        in device.stderr, device.stderr


def test_a_blank_image_is_predicted_with_a_warning_that_it_means_nothing(trained, fast, tmp_path):
    """Its file named with a ${ too: Hydra read it as an interpolation of a key named so ("not found")."""
    from PIL import Image

    image = tmp_path / "blank ${canvas}.png"
    Image.new("RGBA", (28, 28), (0, 0, 0, 0)).save(image)  # a canvas never drawn on
    result = run_main(fast + ["task=predict", f"ckpt={trained / 'checkpoints' / 'best.pt'}", f"image={image}"],
                      cwd=tmp_path)
    assert result.returncode == 0 and f"{image} is blank (every pixel 0 of 255): its prediction means nothing." \
        in result.stderr, result.stderr
    assert read_json(only_run_dir(tmp_path) / "prediction.json")["image"] == str(image)


PID_REUSED = r"""
import os, sys
from pathlib import Path
import submitit
from submitit.core.utils import UncompletedJobError
from lenet_exp.launch import prepare_local_controllers

def killed():
    os.kill(os.getpid(), 9)

prepare_local_controllers()
executor = submitit.AutoExecutor(folder=Path(sys.argv[1]) / "%j", cluster="local")
executor.update_parameters(timeout_min=1)
first = executor.submit(str, "the first job's result")
assert first.result() == "the first job's result"
with open("/proc/sys/kernel/ns_last_pid", "w") as last_pid:  # the next process gets the first controller's pid
    last_pid.write(str(int(first.job_id) - 1))
second = executor.submit(killed)
assert second.job_id == first.job_id, (second.job_id, first.job_id)
try:
    print("result:", second.result())
except UncompletedJobError:
    print("no result")
"""


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare(1)")
def test_a_local_job_given_an_earlier_jobs_pid_is_not_handed_that_jobs_result(tmp_path):
    """submitit names a local job's folder and result by its controller's pid: a job killed without a result whose
    pid an earlier job had (a sweep run again, pids wrapped round) came back with that job's result (an Optuna
    trial killed, marked COMPLETE with another trial's value). Pids chosen in a pid namespace of the test's own."""
    script = tmp_path / "reused.py"
    script.write_text(PID_REUSED)
    result = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(script), str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    if result.returncode and "Operation not permitted" in result.stderr:
        pytest.skip("no permission for a pid namespace here")
    assert result.returncode == 0 and result.stdout.strip() == "no result", result.stdout + result.stderr[-3000:]
