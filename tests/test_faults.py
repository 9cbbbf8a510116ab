"""Faults beyond the first round: divergence that is not NaN, resuming on other data or from damaged
checkpoints, and the fused kernel's build folder. In-process, through the Python entry point."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

import pytest
import torch

from conftest import (MACHINE_CORES, RUN_PY, as_a_new_command, fast_overrides, on_every_core, only_run_dir, run_cli,
                      run_main, signal_group, start)
from idx import write_dataset
from tensorboard_events import load_events, logged_hparams, scalar_values
from lenet_exp import CONFIGS, compose, fused_cpu, train
from lenet_exp.errors import CheckpointError, UserError
from lenet_exp.files import own_folder, read_json, release_folder, save_json
from lenet_exp.launch import ECHO_S, STOP_FILE_VARIABLE, STOP_SIGNALS, Stopped, collect_stopped_jobs, stops_held
from lenet_exp.loop import divergence
from lenet_exp.models.lenet5 import LeNet5
from lenet_exp.overrides import quote, quote_paths
from lenet_exp.resume import resume_command
from lenet_exp.signals import StopSignals


def as_if_killed(run_dir: Path) -> None:
    """What a run killed after its last checkpoint leaves: metrics.json still says running."""
    metrics = read_json(run_dir / "metrics.json")
    save_json(run_dir / "metrics.json", {**metrics, "status": "running", "test": None})


def test_a_run_killed_as_it_trains_on_is_no_completed_run_and_tests_again_when_run_as_it_was(tiny_root, tmp_path):
    """Given more epochs, a run's events forget its test at once; killed before its next epoch ended, its
    metrics.json still said completed: run as it was, it was skipped, its test gone from TensorBoard."""
    run_dir = tmp_path / "run"
    first = [*fast_overrides(tiny_root), "trainer.batch_size=1", f"hydra.run.dir={run_dir}"]  # epochs of seconds
    assert run_main(first, cwd=tmp_path).returncode == 0
    trained_on = start([*first, "trainer.epochs=100"], cwd=tmp_path)
    # its events forgotten: its new TensorBoard writer's file is there (made once the old files are rewritten)
    while len(list(run_dir.glob("events.out.tfevents.*"))) < 2:
        assert trained_on.poll() is None, trained_on.communicate()
        time.sleep(0.01)
    signal_group(trained_on, signal.SIGKILL)
    trained_on.communicate()
    assert read_json(run_dir / "metrics.json")["status"] == "running"
    again = run_main(first, cwd=tmp_path)
    assert again.returncode == 0 and "Already completed" not in again.stderr, again.stderr[-2000:]
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "completed" and metrics["epochs_done"] == 1
    assert list(scalar_values(load_events(run_dir), "test/acc")) == [1]


def test_infinite_batchnorm_statistics_are_divergence_and_never_reach_a_checkpoint(tiny_root, tmp_path, caplog):
    # normalising by a std of 1e-20 makes the inputs ~1e20: BatchNorm's running variance overflows,
    # while the loss (of batch-normalised activations) stays finite
    metrics = train(compose(*fast_overrides(tiny_root), "dataset.std=1e-20"), run_dir=tmp_path / "run")
    assert metrics["status"] == "diverged" and "non-finite weights or BatchNorm statistics" in metrics["message"]
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert metrics["message"] in caplog.text  # train() returns it, and says it as run.py does


def test_an_interrupted_run_says_how_it_goes_on_from_where_it_was_started(tiny_root, tmp_path):
    from lenet_exp.loop import Run

    cfg = compose(*fast_overrides(tiny_root))
    from_python = Run(cfg, tmp_path / "notebook").interrupted_message("signal 2", 3)
    assert from_python.endswith(f"Continue with train(cfg, run_dir={str(tmp_path / 'notebook')!r}) and the same cfg.")
    (tmp_path / "cli" / ".hydra").mkdir(parents=True)  # run.py's: its command line is there to replay
    assert Run(cfg, tmp_path / "cli").interrupted_message("signal 2", 3).endswith(
        f"Continue with `python run.py resume={tmp_path / 'cli'}`.")


def test_an_exploded_or_non_finite_loss_is_divergence():
    model = LeNet5()
    assert divergence(0.5, 0.4, model, 10) is None
    assert "exploded" in divergence(1e28, 2.0, model, 10)
    assert "train loss nan" in divergence(float("nan"), 2.0, model, 10)
    assert "val loss inf" in divergence(0.5, float("inf"), model, 10)
    # an SGD run at lr 2 whose train loss stayed below the bound completed in a stacked group, diverged alone
    assert divergence(0.5, 44868.0, model, 10) == "val loss 4.49e+04, exploded"
    with torch.no_grad():
        model.features[1].running_var[0] = float("inf")
    assert "BatchNorm statistics" in divergence(0.5, 0.4, model, 10)


def test_resuming_on_other_data_is_refused(tiny_root, tmp_path):
    args = [*fast_overrides(tiny_root), "trainer.epochs=2", "scheduler=onecycle"]
    train(compose(*args), run_dir=tmp_path / "run")
    as_if_killed(tmp_path / "run")
    other = tmp_path / "other"
    write_dataset(other, "MNIST", n_train=400, n_test=100, seed=5)
    with pytest.raises(UserError, match="trained on other data") as caught:
        train(compose(*args, f"dataset.root={other}"), run_dir=tmp_path / "run")
    assert "600 train / 200 test images then, 400 / 100 now" in str(caught.value)
    same = tmp_path / "copy"  # the same data in another place resumes
    shutil.copytree(tiny_root, same)
    assert train(compose(*args, f"dataset.root={same}"), run_dir=tmp_path / "run")["status"] == "completed"


@pytest.fixture
def killed_run(tiny_root, tmp_path) -> Path:
    """A 2-epoch run whose best epoch is 1 (last.pt after 2), killed before its final test."""
    run_dir = tmp_path / "run"
    train(compose(*fast_overrides(tiny_root), "trainer.epochs=2"), run_dir=run_dir)
    as_if_killed(run_dir)
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    best = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    last["run_state"]["best_epoch"] = best["run_state"]["epoch"] = best["run_state"]["best_epoch"] = 1
    torch.save(last, run_dir / "checkpoints" / "last.pt")
    torch.save(best, run_dir / "checkpoints" / "best.pt")
    return run_dir


def test_a_corrupt_best_checkpoint_older_than_the_last_is_reported_at_resume(killed_run, tiny_root):
    best = killed_run / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:1000])
    before = read_json(killed_run / "metrics.json")
    with pytest.raises(CheckpointError) as caught:
        train(compose(*fast_overrides(tiny_root), "trainer.epochs=2"), run_dir=killed_run)
    message = str(caught.value)
    assert "best.pt should hold epoch 1" in message and "not a readable checkpoint" in message
    assert f"Delete the folder {killed_run / 'checkpoints'}" in message and "Use <run dir>" not in message
    after = read_json(killed_run / "metrics.json")  # nothing was trained or tested: it says why, as run.py's does
    assert after == {**before, "status": "failed", "message": message}


ALTERED_STRUCTURES = {  # a checkpoint is data: each ended in a traceback (the epoch: a resume that spun for ever)
    "epoch": (lambda state: state["run_state"].update(epoch=10 ** 30), "epoch 10000000000000000000000000000"),
    "run state": (lambda state: state.update(run_state="x"), "a run state without its history"),
    "optimizer": (lambda state: state.update(optimizer={}), "an optimizer state that is not PyTorch's"),
    "rng": (lambda state: state["rng"].update(torch="x"), "random number generator states that are not PyTorch's"),
    "model config": (lambda state: state["config"].update(model=5), "a config whose model is 5"),
    # read into the run's state: a TypeError of its comparison, or of an unknown keyword
    "best val accuracy": (lambda state: state["run_state"].update(best_val_acc="high"), "a best val accuracy of 'high'"),
    "run state key": (lambda state: state["run_state"].update(extra=1), "a run state with 'extra'"),
    # a best that no epoch betters, and a history row without its epoch: a KeyError traceback as it resumed
    "nan best": (lambda state: state["run_state"].update(best_val_acc=float("nan")), "a best val accuracy of nan"),
    "history row": (lambda state: state["run_state"]["history"][0].pop("epoch"), "a run state without its history"),
}


FIRST_PARAMETER = 0  # optimizer state is keyed by the parameter's index


@pytest.mark.parametrize("edit, said", [
    # fused Adam read and wrote past the end of a shorter moment: the resume died of a segmentation fault
    (lambda state: state["optimizer"]["state"][FIRST_PARAMETER].update(exp_avg=torch.zeros(7)),
     "an optimizer exp_avg of shape [7] for a parameter of shape [6, 1, 5, 5]"),
    (lambda state: state["optimizer"]["state"][FIRST_PARAMETER].update(step=torch.zeros(7)),
     "an optimizer step of shape [7]"),
    (lambda state: state["optimizer"].update(param_groups=[]), "parameter groups"),  # torch's own ValueError
    (lambda state: state["rng"].update(torch=torch.zeros(3)), "RNG state must be a torch.ByteTensor"),
    # tracebacks at the state's load, or at the first step
    (lambda state: state["optimizer"]["state"].update({999: state["optimizer"]["state"][FIRST_PARAMETER]}),
     "an optimizer state of 999, which is no parameter"),
    (lambda state: state["optimizer"]["state"][FIRST_PARAMETER].update(exp_avg=[1, 2]),
     "an optimizer exp_avg of shape list"),
    (lambda state: state["optimizer"]["param_groups"][0].update(lr="abc"),
     "an optimizer parameter group of lr='abc'"),
    (lambda state: state["optimizer"]["param_groups"][0].update(betas=(0.9,)),
     "an optimizer parameter group of betas=(0.9,)"),
    # "Training diverged ... Lower optimizer.lr (now 0.001)": the checkpoint's NaN, not the command's lr
    (lambda state: state["optimizer"]["param_groups"][0].update(lr=float("nan")),
     "an optimizer parameter group of lr=nan"),
], ids=["moment", "step", "groups", "rng", "state-of-no-parameter", "moment-not-a-tensor", "lr-text", "betas-one",
        "lr-nan"])
def test_a_checkpoint_whose_parts_torch_cannot_take_is_refused_without_a_crash(killed_run, tiny_root, edit, said):
    last, refusal = resumed_from_an_altered_checkpoint(killed_run, tiny_root, edit)
    assert refusal.startswith(f"{last} cannot be resumed from (") and said in refusal, refusal
    assert "lenet_exp never writes such a checkpoint, it was altered. Delete the folder" in refusal


@pytest.mark.parametrize("altered", ALTERED_STRUCTURES)
def test_a_checkpoint_altered_in_its_structure_is_refused_for_what_it_holds(killed_run, tiny_root, altered):
    edit, said = ALTERED_STRUCTURES[altered]
    last, refusal = resumed_from_an_altered_checkpoint(killed_run, tiny_root, edit)
    assert f"{last} holds {said}" in refusal and "which lenet_exp never writes: it was altered and is not used." in \
        refusal, refusal


def resumed_from_an_altered_checkpoint(run_dir: Path, tiny_root: Path, edit) -> tuple[Path, str]:
    """The run's last.pt, after ``edit`` changed it, and the CheckpointError's message of resuming from it."""
    last = run_dir / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    edit(state)
    torch.save(state, last)
    with pytest.raises(CheckpointError) as caught:
        train(compose(*fast_overrides(tiny_root), "trainer.epochs=2"), run_dir=run_dir)
    return last, str(caught.value)


@pytest.mark.parametrize("edit, said", [
    (lambda state: state.update(config="x"), "holds a config of type str, which lenet_exp never writes"),
    (lambda state: next(iter(state["model"].values())).fill_(float("nan")),  # evaluated to "loss nan", exit 0
     "holds weights that are not finite (a diverged run keeps its last finite ones), which lenet_exp never writes"),
    (lambda state: state["config"]["trainer"].update(tta_shift="x"), "holds trainer.tta_shift='x', which lenet_exp "
                                                                      "never writes: it was altered and is not used."),
    (lambda state: state["config"]["trainer"].update(tta_shift=40), "holds trainer.tta_shift=40, which lenet_exp "
                                                                     "never writes"),  # was used: shifts of 40 pixels
    # an average of weights (trainer.ema_decay): a traceback where part of it, or its decay, was gone; none at all
    # was evaluated as the weights themselves, without a word
    (lambda state: state.update(ema={"module." + key: tensor for key, tensor in list(state["model"].items())[:3]})
     or state["config"]["trainer"].update(ema_decay=0.9), "holds an average of weights that does not match its weights"),
    (lambda state: state.update(ema={}) or state["config"]["trainer"].update(ema_decay=0.9),
     "holds an average of weights that does not match its weights, which lenet_exp never writes"),
    (lambda state: state.update(ema={"module." + key: tensor for key, tensor in state["model"].items()})
     or state["config"].pop("trainer"), "holds an average of weights without its decay (trainer.ema_decay None)"),
], ids=["config", "weights", "test-time shift", "test-time shift out of range", "average-in-part", "average-empty",
        "average-without-decay"])
def test_an_evaluation_of_a_checkpoint_altered_in_its_structure_says_what_it_holds(killed_run, tiny_root, tmp_path,
                                                                                 edit, said):
    best = tmp_path / "best.pt"
    state = torch.load(killed_run / "checkpoints" / "best.pt", weights_only=True)
    edit(state)
    torch.save(state, best)
    refused = run_main(["task=eval", f"ckpt={best}", *fast_overrides(tiny_root)], cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
    assert said in refused.stderr.strip().splitlines()[-1], refused.stderr[-2000:]


def test_a_checkpoints_text_reaches_the_terminal_without_its_control_characters(killed_run, tiny_root, tmp_path):
    """A log line that quotes a checkpoint (its model's name) wrote the escape codes in it to the terminal, which
    acted on them: cleared the screen, moved the cursor, faked a line. run.log kept them, for `cat` or `tail -f`."""
    best = tmp_path / "best.pt"
    state = torch.load(killed_run / "checkpoints" / "best.pt", weights_only=True)
    state["config"]["model"]["name"] = "\x1b[2J\rDone: test acc 0.9999"
    torch.save(state, best)
    result = run_main(["task=eval", f"ckpt={best}", "model.activation=tanh", *fast_overrides(tiny_root)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "with its model (\\x1b[2J\\rDone: test acc 0.9999)" in result.stderr and "\x1b" not in result.stderr
    logged = (only_run_dir(tmp_path) / "run.log").read_text()
    assert "with its model (\\x1b[2J\\rDone: test acc 0.9999)" in logged and "\x1b" not in logged


def test_an_evaluation_reads_no_more_of_a_checkpoints_run_state_than_its_epoch(killed_run, tiny_root, tmp_path):
    """The history of a run's state (which eval does not use) was rewritten row by row as it was loaded: a row
    that is no mapping was an AttributeError traceback."""
    best = tmp_path / "best.pt"
    state = torch.load(killed_run / "checkpoints" / "best.pt", weights_only=True)
    state["run_state"]["history"] = [1]
    torch.save(state, best)
    evaluated, intact = (run_main(["task=eval", f"ckpt={ckpt}", *fast_overrides(tiny_root)], cwd=tmp_path)
                         for ckpt in (best, killed_run / "checkpoints" / "best.pt"))
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    told = [re.search(r"test acc \S+", result.stdout + result.stderr) for result in (evaluated, intact)]
    assert told[0] and told[0].group() == told[1].group(), (evaluated.stderr[-2000:], intact.stderr[-2000:])


@pytest.mark.parametrize("split, files", [("test", "t10k"), ("train", "train")])
def test_an_evaluation_on_other_files_than_its_runs_says_its_accuracy_is_not_the_runs(killed_run, tiny_root, tmp_path,
                                                                                      split, files):
    """The checkpoint records its splits' sizes and checksums (a resume checks them); eval of test labels changed
    since reported another accuracy as the run's without a word, and of train labels (its val split's) another
    val accuracy."""
    best, changed = killed_run / "checkpoints" / "best.pt", tmp_path / "data"
    shutil.copytree(tiny_root, changed)
    labels = changed / "MNIST" / "raw" / f"{files}-labels-idx1-ubyte"
    raw = bytearray(labels.read_bytes())
    raw[8:58] = bytes((label + 1) % 10 for label in raw[8:58])
    labels.write_bytes(raw)
    used, accuracy, count = ("tested on", "this accuracy", 200) if split == "test" else ("trained on", "its val accuracy",
                                                                                       600)
    for root, warned in ((tiny_root, False), (changed, True)):
        evaluated = run_main(["task=eval", f"ckpt={best}", *fast_overrides(root)], cwd=tmp_path)
        assert evaluated.returncode == 0, evaluated.stderr[-2000:]
        said = (f"mnist's {split} files in {root} differ from those {best} was {used} ({count} images then, {count} "
                f"now, or other contents): {accuracy} is not its run's.")
        assert (said in evaluated.stderr) == warned, evaluated.stderr[-2000:]


def test_another_runs_best_checkpoint_of_the_same_epoch_is_not_tested_as_this_runs(killed_run, tiny_root):
    best = killed_run / "checkpoints" / "best.pt"
    other = torch.load(best, weights_only=True)  # as another run's copied in: its config has another lr
    other["config"]["optimizer"]["lr"] = 0.5
    torch.save(other, best)
    with pytest.raises(CheckpointError) as caught:
        train(compose(*fast_overrides(tiny_root), "trainer.epochs=2"), run_dir=killed_run)
    assert "best.pt should hold epoch 1" in str(caught.value) and "it is another run's (optimizer.lr: 0.5 -> " in str(
        caught.value)


def test_another_runs_last_checkpoint_is_named_as_such_not_met_with_advice_to_resume_it(killed_run, tiny_root):
    last = killed_run / "checkpoints" / "last.pt"
    other = torch.load(last, weights_only=True)  # another run's copied in: its config has another lr
    other["config"]["optimizer"]["lr"] = 0.5
    torch.save(other, last)
    # the command that made the run, or one that trains it on: resuming it as it was cannot help
    for epochs in (2, 3):
        with pytest.raises(CheckpointError) as caught:
            train(compose(*fast_overrides(tiny_root), f"trainer.epochs={epochs}"), run_dir=killed_run)
        assert str(caught.value).startswith(f"{last} is another run's checkpoint (optimizer.lr: 0.5 -> "), epochs
        assert f"Delete the folder {last.parent}" in str(caught.value)


def test_a_corrupt_last_checkpoint_gets_advice_that_does_not_go_in_circles(killed_run, tiny_root):
    last = killed_run / "checkpoints" / "last.pt"
    last.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError) as caught:
        train(compose(*fast_overrides(tiny_root), "trainer.epochs=2"), run_dir=killed_run)
    message = str(caught.value)
    assert "the checkpoint to resume from, cannot be used" in message and "Delete the folder" in message
    shutil.rmtree(killed_run / "checkpoints")  # following the advice works
    assert train(compose(*fast_overrides(tiny_root), "trainer.epochs=2"), run_dir=killed_run)["status"] == "completed"


def test_the_kernel_build_folder_follows_what_the_build_depends_on_not_the_checkout(tmp_path, monkeypatch):
    here = fused_cpu.build_directory()
    copy = tmp_path / "other_checkout" / fused_cpu.SOURCE.name
    copy.parent.mkdir()
    shutil.copyfile(fused_cpu.SOURCE, copy)
    monkeypatch.setattr(fused_cpu, "SOURCE", copy)
    assert fused_cpu.build_directory() == here  # the same source in another checkout shares the build
    copy.write_text(copy.read_text() + "\n// changed\n")
    assert fused_cpu.build_directory() != here
    monkeypatch.undo()
    monkeypatch.setenv("CXX", "clang++")
    assert fused_cpu.build_directory() != here


def test_the_kernel_build_command_names_no_checkout(tmp_path):
    try:
        fused_cpu.load_kernel()
    except fused_cpu.KernelUnavailable as error:
        pytest.skip(f"no compiler here: {error}")
    ninja = (fused_cpu.build_directory() / "build.ninja").read_text()
    assert str(fused_cpu.build_directory() / fused_cpu.SOURCE.name) in ninja
    assert str(fused_cpu.SOURCE.parent) not in ninja  # so another checkout's build is this one


@pytest.fixture(scope="module")
def completed_run(tiny_root, tmp_path_factory) -> Path:
    """A completed 1-epoch run through the real CLI, in a folder whose name holds quotes and a backslash."""
    cwd = tmp_path_factory.mktemp("cli")
    run_dir = cwd / "it's \\ a \"run\"'"
    result = run_main(fast_overrides(tiny_root) + [f"hydra.run.dir={quote(str(run_dir))}"], cwd=cwd)
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.mark.parametrize("linked", ["run.log", ".hydra/hydra.yaml", "checkpoints"])
def test_a_run_folder_whose_files_link_elsewhere_is_refused_before_anything_is_written_there(completed_run, tmp_path,
                                                                                           linked):
    """A folder may come from anyone: resume= appended its run.log, Hydra wrote its .hydra/ files and the run its
    checkpoints through links to files outside it. Its lock file, ours alone, is replaced instead."""
    run_dir, outside = tmp_path / "run", tmp_path / "outside"
    shutil.copytree(completed_run, run_dir)
    outside.mkdir()
    (outside / "victim").write_text("theirs")
    (run_dir / ".lock").unlink()
    (run_dir / ".lock").symlink_to(outside / "victim")
    (outside / "theirs").mkdir()
    target = outside / ("theirs" if linked == "checkpoints" else "victim")
    shutil.rmtree(run_dir / linked) if linked == "checkpoints" else (run_dir / linked).unlink()
    (run_dir / linked).symlink_to(target)
    refused = run_main([f"resume={run_dir}", "trainer.epochs=2"], cwd=tmp_path)
    assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1] == (
        f"Error: {run_dir / linked} is a symbolic link (to {target}), where lenet_exp writes a file of its own: it "
        f"would write there, outside {run_dir}. Put a copy of what it points to in its place (cp -rL), then run the "
        f"same command again."), refused.stderr[-2000:]  # a copy of the folder (cp -r) would keep the link
    assert (outside / "victim").read_text() == "theirs" and not list((outside / "theirs").iterdir())
    (run_dir / linked).unlink()
    shutil.copytree(completed_run / linked, run_dir / linked) if linked == "checkpoints" else shutil.copy(
        completed_run / linked, run_dir / linked)
    again = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert again.returncode == 0 and "Already completed" in again.stderr, again.stderr[-2000:]
    assert (outside / "victim").read_text() == "theirs" and not (run_dir / ".lock").is_symlink()


def test_a_run_whose_last_checkpoint_was_deleted_is_not_trained_again_over_its_best(completed_run, tmp_path):
    """last.pt gone, best.pt kept (to save space, say): more epochs, or an unfinished run, trained from the start
    without a word and replaced best.pt; the longer command's .hydra/ was written before the job found out."""
    run_dir = tmp_path / "run"
    shutil.copytree(completed_run, run_dir)
    (run_dir / "checkpoints" / "last.pt").unlink()
    best = (run_dir / "checkpoints" / "best.pt").read_bytes()
    record = (run_dir / ".hydra" / "overrides.yaml").read_text()
    gone = f"Error: {run_dir / 'checkpoints' / 'last.pt'}, the checkpoint this run goes on from, is gone"
    longer = run_main([f"resume={run_dir}", "trainer.epochs=2"], cwd=tmp_path)
    assert longer.returncode == 1 and gone in longer.stderr, longer.stderr[-2000:]
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == record
    assert "Already completed" in run_main([f"resume={run_dir}"], cwd=tmp_path).stderr  # as it was, it is done
    as_if_killed(run_dir)
    unfinished = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert unfinished.returncode == 1 and gone in unfinished.stderr, unfinished.stderr[-2000:]
    assert (run_dir / "checkpoints" / "best.pt").read_bytes() == best


def test_resume_takes_a_folder_name_with_quotes_literally(completed_run):
    result = run_main([f"resume={completed_run}"], cwd=completed_run.parent)
    assert result.returncode == 0, result.stderr
    assert "Already completed" in result.stderr and str(completed_run) in result.stderr


@pytest.mark.parametrize("mode", [["--info"], ["--info", "config"], ["--cfg", "job"]])
def test_resume_shows_the_runs_config_with_hydras_printing_flags(completed_run, mode):
    """A bare --info took the first of the run's replayed overrides as its value ("invalid choice")."""
    result = run_main([f"resume={completed_run}", *mode], cwd=completed_run.parent)
    assert result.returncode == 0, result.stderr
    assert "eval_batch_size: 200" in result.stdout  # the run's own setting, replayed


def test_resume_takes_a_folder_quoted_as_hydra_quotes_a_path(completed_run):
    """`resume='a b'`, as `hydra.run.dir='a b'` started it: the quotes belong to the grammar, not the name."""
    result = run_main([f"resume={quote(str(completed_run))}"], cwd=completed_run.parent)
    assert result.returncode == 0, result.stderr
    assert "Already completed" in result.stderr and str(completed_run) in result.stderr


@pytest.mark.parametrize("where", ["--config-dir", "hydra.searchpath", "relative hydra.searchpath", "--config-path"])
def test_resume_finds_the_options_of_ones_own_config_folder(where, tiny_root, tmp_path):
    """.hydra/overrides.yaml holds the task's overrides only: `optimizer=mine` from a folder of one's own was
    "not an option" to the resumed run, and is still when resumed from another folder than a relative
    search path's. A copy of configs/ given as --config-path was left for the checkout's."""
    extra = tmp_path / "extra, its 'own'"  # a comma and quotes: the search path is quoted when made absolute
    if where == "--config-path":
        shutil.copytree(CONFIGS, extra)
    (extra / "optimizer").mkdir(parents=True, exist_ok=True)
    (extra / "optimizer" / "mine.yaml").write_text("defaults:\n  - adam\n  - _self_\nlr: 0.002\n")
    source = {"--config-dir": ["--config-dir", str(extra)],
              "hydra.searchpath": [f"hydra.searchpath=[{quote(f'file://{extra}')}]"],
              "relative hydra.searchpath": [f"hydra.searchpath=[{quote(f'file://{extra.name}')}]"],
              "--config-path": ["--config-path", str(extra)]}[where]
    run_dir = tmp_path / "run"
    first = run_main([*source, *fast_overrides(tiny_root), "optimizer=mine", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    # the folder does not choose them (a config can run code): the command names them, as the refusal says
    refused = run_main([f"resume={run_dir}", "trainer.epochs=2"], cwd=run_dir)
    named = [*source[:1], str(extra)] if source[0].startswith("--") else [
        f"hydra.searchpath=[{quote(f'file://{extra}')}]"]
    command = " ".join(["python run.py", *map(shlex.quote, [*named, "trainer.epochs=2"]),
                        f"resume={shlex.quote(str(run_dir))}"])
    assert refused.returncode == 1 and refused.stderr.strip() == (
        f"Error: {run_dir} was made with configs from outside configs/ ({' '.join(named)}), and a run folder does not "
        f"choose the configs a command reads (a config can run code). If you trust them, name them yourself: "
        f"{command}"), refused.stderr
    assert "Already completed" not in refused.stderr and "epoch 2" not in refused.stderr
    assert resume_command(run_dir) == " ".join(["python run.py", *map(shlex.quote, named),  # e.g. after a Ctrl-C
                                                f"resume={shlex.quote(str(run_dir))}"])
    again = run_main(shlex.split(command)[2:], cwd=run_dir)  # copied from the message, run from elsewhere
    assert again.returncode == 0 and "Done: best val acc" in again.stderr, again.stderr[-2000:]
    assert read_json(run_dir / "metrics.json")["epochs_done"] == 2
    if where == "--config-dir":  # the folder moved: "--config-dir …: no such folder" named a flag never typed
        extra.rename(tmp_path / "moved")
        moved = run_main([f"resume={run_dir}"], cwd=run_dir)
        assert moved.returncode == 1 and moved.stderr.strip() == (
            f"Error: {run_dir} was made with --config-dir {extra}, which is no folder now. Put its configs back "
            f"there, or give --config-dir <the folder that holds them now>."), moved.stderr
        given = run_main(["--config-dir", str(tmp_path / "moved"), f"resume={run_dir}"], cwd=run_dir)
        assert given.returncode == 0 and "Already completed" in given.stderr, given.stderr[-2000:]


def test_resume_replays_the_name_of_a_primary_config_of_the_checkouts_own(tiny_root, tmp_path):
    """--config-name of a config in configs/ (a checkout of one's own: run.py and configs/ copied) names no
    folder: resume= replays it, as the run was made."""
    checkout = tmp_path / "checkout"
    shutil.copytree(CONFIGS, checkout / "configs")
    shutil.copy(CONFIGS.parent / "run.py", checkout / "run.py")
    (checkout / "configs" / "short.yaml").write_text("defaults:\n  - config\n  - _self_\noptimizer:\n  lr: 0.002\n")
    run_dir = tmp_path / "run"
    first = run_main(["--config-name", "short", *fast_overrides(tiny_root), f"hydra.run.dir={run_dir}"], cwd=tmp_path,
                     script=checkout / "run.py")
    assert first.returncode == 0, first.stderr[-2000:]
    again = run_main([f"resume={run_dir}", "trainer.epochs=2"], cwd=tmp_path, script=checkout / "run.py")
    assert again.returncode == 0 and "Resuming" in again.stderr, again.stderr[-2000:]
    assert read_json(run_dir / "metrics.json")["config"]["optimizer"]["lr"] == 0.002


def test_resume_with_a_primary_config_the_run_was_not_made_with_names_both(tiny_root, tmp_path):
    """--config-dir other --config-name mine resume=<a run of configs/>: the other lr was blamed on "a config
    file or a default changed since", which the user did not change."""
    other, run_dir = tmp_path / "other", tmp_path / "run"
    other.mkdir()
    (other / "mine.yaml").write_text("defaults:\n  - config\n  - _self_\noptimizer:\n  lr: 0.005\n")
    assert run_main([*fast_overrides(tiny_root), f"hydra.run.dir={run_dir}"], cwd=tmp_path).returncode == 0
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file() and path.name != ".lock"}
    refused = run_main(["--config-dir", str(other), "--config-name", "mine", f"resume={run_dir}"], cwd=tmp_path)
    assert refused.returncode == 1 and refused.stderr.strip() == (
        f"Error: {run_dir} holds a run made with other configs (optimizer.lr: 0.001 -> 0.005): this command reads "
        f"--config-dir {other} --config-name mine, and the run was made with configs/ alone. Continue it with "
        f"`python run.py resume={run_dir}`, or run this config in a new hydra.run.dir."), refused.stderr
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file() and path.name != ".lock"} == before


def test_resume_with_the_option_of_a_group_the_run_added_continues_it_or_says_what_changed(tiny_root, tmp_path):
    """A run made with +extra=foo (a group of one's own), resumed with extra=foo: Hydra's "No match in the
    defaults list" (or "force-add of config groups is not supported"), of an override replayed; another option
    of it was blamed on "a config file or a default changed since"."""
    mine, run_dir = tmp_path / "mine", tmp_path / "run"
    (mine / "extra").mkdir(parents=True)
    for name, smoothing in (("foo", 0.1), ("bar", 0.2)):
        (mine / "extra" / f"{name}.yaml").write_text(f"# @package _global_\ntrainer:\n  label_smoothing: {smoothing}\n")
    made = run_main(["--config-dir", str(mine), "+extra=foo", *fast_overrides(tiny_root), f"hydra.run.dir={run_dir}"],
                    cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    same = run_main(["--config-dir", str(mine), "extra=foo", f"resume={run_dir}"], cwd=tmp_path)
    assert same.returncode == 0 and "Already completed" in same.stderr, same.stderr[-2000:]
    other = run_main(["--config-dir", str(mine), "extra=bar", f"resume={run_dir}"], cwd=tmp_path)
    assert other.returncode == 1 and f"Error: {run_dir} holds a run with another config (trainer.label_smoothing: " \
        f"0.1 -> 0.2). Continue it as it was made with `python run.py --config-dir {mine} resume={run_dir}`" \
        in other.stderr, other.stderr[-2000:]


def test_a_run_folder_does_not_choose_the_configs_that_resume_reads(tiny_root, tmp_path):
    """A config can run code (Hydra builds its hydra.callbacks): a .hydra/hydra.yaml edited to name a config
    folder elsewhere made resume= compose from there, and run what it named."""
    run_dir, planted = tmp_path / "run", tmp_path / "planted"
    shutil.copytree(CONFIGS, planted)
    config = (planted / "config.yaml").read_text()
    planted_callback = f"    planted:\n      _target_: os.makedirs\n      name: {tmp_path / 'ran'}\n"
    callbacks = "    output_dir_check:\n"
    (planted / "config.yaml").write_text(config.replace(callbacks, planted_callback + callbacks))
    assert planted_callback in (planted / "config.yaml").read_text()
    first = run_main([*fast_overrides(tiny_root), f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    record = run_dir / ".hydra" / "hydra.yaml"
    record.write_text(record.read_text().replace(f"path: {CONFIGS}\n", f"path: {planted}\n"))
    assert str(planted) in record.read_text()
    refused = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert refused.returncode == 1 and f"(--config-path {planted})" in refused.stderr, refused.stderr[-2000:]
    assert not (tmp_path / "ran").exists()


def test_resume_of_a_job_whose_preset_sets_multirun_mode_continues_that_job(tiny_root, tmp_path):
    """A preset with `hydra: mode: MULTIRUN` sweeps without -m; resume= replayed it, and a new sweep of the default
    study started in outputs/sweeps/ instead of the run going on."""
    (tmp_path / "extra" / "experiment").mkdir(parents=True)
    (tmp_path / "extra" / "experiment" / "swept.yaml").write_text("# @package _global_\nhydra:\n  mode: MULTIRUN\n")
    sweep_dir = tmp_path / "sweep"
    first = run_main([*fast_overrides(tiny_root), "experiment=swept", f"hydra.searchpath=[file://{tmp_path / 'extra'}]",
                      "seed=0,1", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    job = sweep_dir / "0_seed=0"
    again = run_main([f"resume={job}", f"hydra.searchpath=[file://{tmp_path / 'extra'}]"], cwd=tmp_path)
    assert again.returncode == 0 and f"Already completed in {job}" in again.stderr, again.stderr[-2000:]
    assert not (tmp_path / "outputs").exists()


def test_resume_reads_relative_paths_from_where_the_run_was_started_and_stays_in_its_folder(tiny_root, tmp_path):
    """`dataset.root=data` was read from the folder resume= ran in ("mnist is not in …"); a hydra.run.dir= next
    to resume= was overridden by the run's own, so the run trained on in place of the folder asked for."""
    started, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    started.mkdir(), elsewhere.mkdir()
    (started / "data").symlink_to(tiny_root)
    overrides = [o for o in fast_overrides(tiny_root) if not o.startswith("dataset.root=")]
    run_dir = tmp_path / "run"
    assert run_main([*overrides, "dataset.root=data", f"hydra.run.dir={run_dir}"], cwd=started).returncode == 0
    record = (run_dir / ".hydra" / "overrides.yaml").read_text()
    moved = run_main([f"resume={run_dir}", "trainer.epochs=2", f"hydra.run.dir={tmp_path / 'copy'}"], cwd=elsewhere)
    assert moved.returncode == 1 and (f"Error: resume= continues the run in its own folder, {run_dir}, and "
                                      f"hydra.run.dir= names another.") in moved.stderr, moved.stderr[-2000:]
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == record and not (tmp_path / "copy").exists()
    # the run's own folder named again (it was refused as "another") is the same command
    longer = run_main([f"resume={run_dir}", "trainer.epochs=2", f"hydra.run.dir={tmp_path / 'project' / '..' / 'run'}"],
                      cwd=elsewhere)
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert read_json(run_dir / "metrics.json")["epochs_done"] == 2


def test_a_checkpoint_path_is_taken_as_it_is_written(completed_run, tiny_root, tmp_path):
    # quotes and a backslash in the folder's name: unquoted, Hydra's grammar would refuse or change it
    result = run_main(fast_overrides(tiny_root) + ["task=eval", f"ckpt={completed_run / 'checkpoints' / 'best.pt'}",
                                                   f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    evaluated, trained = (read_json(run / "metrics.json")["test"] for run in (tmp_path / "eval", completed_run))
    # the loss summed in another order where the thread count differs (this test alone, not under xdist)
    assert evaluated["acc"] == trained["acc"] and evaluated["loss"] == pytest.approx(trained["loss"], rel=1e-5)


@pytest.mark.parametrize("named, listed", [
    (["model.dropout=0.3"], "model.dropout=0.3"),
    (["optimizer.lr=0.5", "model.activation=tanh"], "model.activation=tanh, optimizer.lr=0.5"),
    (["seed=3", "model=lenet5_classic"], "model=lenet5_classic, seed=3"),  # the option named (it said "model")
    # out of range for training, and unread: said unused, not refused
    (["optimizer.lr=0", "optimizer=sgd", "optimizer.nesterov=true", "optimizer.momentum=0"],
     "optimizer=sgd, optimizer.lr=0.0, optimizer.momentum=0.0, optimizer.nesterov=true"),
    # how fast it would train, unread too: CUDA graphs on a CPU, cuDNN's autotuner with determinism were refused
    (["trainer.cuda_graphs=true", "device=cpu", "trainer.cudnn_benchmark=true", "trainer.deterministic=true"],
     "trainer.cuda_graphs=true, trainer.cudnn_benchmark=true, trainer.deterministic=true"),
    # which training images it learned from: the test split reads none of them
    (["dataset.train_size=300", "dataset.val_size=50", "dataset.split_seed=2"],
     "dataset.split_seed=2, dataset.train_size=300, dataset.val_size=50"),
])
def test_model_and_training_settings_named_for_an_evaluation_are_said_to_be_unused(completed_run, tiny_root,
                                                                                    tmp_path, named, listed):
    """model.activation=tanh evaluated the weights in a model they were not trained in (acc 0.75 for 0.97),
    without a word; model=lenet5_classic was refused, and optimizer.lr=0.5 ignored in silence."""
    checkpoint = completed_run / "checkpoints" / "best.pt"
    result = run_main(fast_overrides(tiny_root) + ["task=eval", f"ckpt={checkpoint}", *named,
                                                   f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{listed} not used: task=eval takes {checkpoint} as it was trained, with its model (lenet5)." \
        in result.stderr, result.stderr[-2000:]
    evaluated, trained = (read_json(run / "metrics.json")["test"] for run in (tmp_path / "eval", completed_run))
    assert evaluated["acc"] == trained["acc"]


def test_an_evaluation_tests_as_the_run_did_unless_told_otherwise(tiny_root, tmp_path):
    """A run's test-time augmentation and its averaged weights: eval gave another accuracy than the run's own
    test, without them (it took test-time augmentation from its own command line only)."""
    run = tmp_path / "run"
    assert run_main([*fast_overrides(tiny_root), "trainer.epochs=2", "trainer.tta_hflip=true", "trainer.tta_shift=1",
                     "trainer.ema_decay=0.5", f"hydra.run.dir={run}"], cwd=tmp_path).returncode == 0
    evaluate = [*fast_overrides(tiny_root), "task=eval", f"ckpt={run / 'checkpoints' / 'best.pt'}"]
    assert run_main([*evaluate, f"hydra.run.dir={tmp_path / 'as_run'}"], cwd=tmp_path).returncode == 0
    as_run, trained = (read_json(folder / "metrics.json") for folder in (tmp_path / "as_run", run))
    assert as_run["test"]["acc"] == trained["test"]["acc"] and as_run["tta"] == {"hflip": True, "shift": 1}
    assert as_run["test"]["loss"] == pytest.approx(trained["test"]["loss"], rel=1e-5)
    told = run_main([*evaluate, "trainer.tta_hflip=false", "trainer.tta_shift=0", "trainer.ema_decay=null",
                     f"hydra.run.dir={tmp_path / 'told'}"], cwd=tmp_path)
    assert told.returncode == 0 and "is evaluated with its weights, not their average" in told.stderr
    other = read_json(tmp_path / "told" / "metrics.json")
    assert other["tta"] == {"hflip": False, "shift": 0} and other["test"]["loss"] != as_run["test"]["loss"]
    # HParams tells the two apart (an evaluation sweep over trainer.ema_decay gave rows of equal settings)
    sessions = [logged_hparams(load_events(tmp_path / folder)) for folder in ("as_run", "told")]
    assert [(s["trainer.ema_decay"], s["trainer.tta_shift"], s["trainer.precision"]) for s in sessions] == [
        (0.5, 1, "fp32"), (0, 0, "fp32")]  # no average: 0, as a decay that keeps the weights (a number)
    assert (as_run["ema_decay"], other["ema_decay"], other["precision"]) == (0.5, None, "fp32")


def test_an_evaluation_under_limit_batches_tests_the_images_its_run_tested(tiny_root, tmp_path):
    """A test under trainer.limit_batches is of the first N x eval_batch_size images: eval took its own batch
    size (1000), and reported the accuracy of other images than the run's without a word."""
    run, evaluated = tmp_path / "run", tmp_path / "eval"
    capped = ["trainer.limit_batches=2", "trainer.eval_batch_size=50"]
    assert run_main([*fast_overrides(tiny_root), *capped, f"hydra.run.dir={run}"], cwd=tmp_path).returncode == 0
    without_a_batch_size = [o for o in fast_overrides(tiny_root) if not o.startswith("trainer.eval_batch_size=")]
    assert run_main([*without_a_batch_size, "task=eval", f"ckpt={run / 'checkpoints' / 'best.pt'}",
                     "trainer.limit_batches=2", f"hydra.run.dir={evaluated}"], cwd=tmp_path).returncode == 0
    tested, trained = (read_json(folder / "metrics.json")["test"] for folder in (evaluated, run))
    assert tested["samples"] == trained["samples"] == 100 and tested["acc"] == trained["acc"]
    assert logged_hparams(load_events(evaluated))["trainer.eval_batch_size"] == 50  # which images, in HParams


def test_an_evaluation_of_the_weights_themselves_says_so_in_its_hparams(completed_run, tiny_root, tmp_path):
    """A checkpoint without EMA left trainer.ema_decay out of its evaluation's session: an evaluation sweep over
    checkpoints with and without it showed one value, and TensorBoard took the column for one that does not
    differ. It is 0, a decay that keeps the weights themselves (a number, as the column's others)."""
    assert read_json(completed_run / "metrics.json")["config"]["trainer"]["ema_decay"] is None
    result = run_main(fast_overrides(tiny_root) + ["task=eval", f"ckpt={completed_run / 'checkpoints' / 'best.pt'}",
                                                   f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    shown = logged_hparams(load_events(tmp_path / "eval"))
    assert shown["trainer.ema_decay"] == 0
    # in a training run's columns, its checkpoint's run's: parallel coordinates leave out a run that lacks a
    # column ticked, and one TensorBoard of evaluations and training runs showed no line
    trained = logged_hparams(load_events(completed_run))
    # (but how many threads the run had, which its record does not keep)
    assert set(trained) - {"device.threads"} <= set(shown)
    assert shown["ckpt"] == str(completed_run / "checkpoints" / "best.pt")
    same = ("optimizer", "optimizer.lr", "seed", "dataset.train_size")
    assert {key: shown[key] for key in same} == {key: trained[key] for key in same}


@pytest.mark.parametrize("trained_with, asked, held", [
    ("0.5", "0.9", "holds the average of its weights with decay 0.5"),
    ("null", "0.9", "holds no average of its weights (its run had trainer.ema_decay=null), only the weights")])
def test_an_evaluation_given_another_ema_decay_says_it_takes_the_one_kept(tiny_root, tmp_path, trained_with, asked,
                                                                          held):
    """trainer.ema_decay=0.9 for a checkpoint that kept an average of decay 0.5 (or none) was ignored in silence,
    and its HParams said 0.9: the evaluation seemed to be of an average that was never made."""
    run = tmp_path / "run"
    assert run_main([*fast_overrides(tiny_root), f"trainer.ema_decay={trained_with}",
                     f"hydra.run.dir={run}"], cwd=tmp_path).returncode == 0
    checkpoint = run / "checkpoints" / "best.pt"
    result = run_main([*fast_overrides(tiny_root), "task=eval", f"ckpt={checkpoint}", f"trainer.ema_decay={asked}",
                       f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"trainer.ema_decay={asked} not used: {checkpoint} {held}, which task=eval takes." in result.stderr
    kept = None if trained_with == "null" else float(trained_with)
    evaluated, trained = (read_json(folder / "metrics.json") for folder in (tmp_path / "eval", run))
    assert evaluated["ema_decay"] == kept and evaluated["test"]["acc"] == trained["test"]["acc"]
    assert logged_hparams(load_events(tmp_path / "eval"))["trainer.ema_decay"] == (kept or 0)


@pytest.mark.parametrize("part, key, value, said", [
    ("preprocessing", "image_size", 7, "holds preprocessing that lenet_exp never writes (image_size 7, for a model of "
                                       "input size 32); it was altered and is not used."),
    ("preprocessing", "image_size", "big", "(image_size 'big', for a model of input size 32)"),
    ("preprocessing", "resize_mode", "stretch", "(resize_mode 'stretch', for a model of input size 32)"),
    ("preprocessing", "mean", None, "(no mean, for a model of input size 32)"),
    ("preprocessing", "std", 0.0, "(std 0.0, for a model of input size 32)"),
    ("model", "hidden", [10**9, 84], "does not fit this one (its classifier.1.weight is (120, 400), this model's "
                                     "(1000000000, 400))"),
    ("model", "conv_channels", [6, -16], "holds a model config that lenet_exp.models.lenet5.LeNet5 cannot build "
                                         "(ValueError: conv_channels [6, -16]: expected one or more positive "
                                         "integers); it was altered"),
    # a TypeError (unhashable), and a ValueError of TensorBoard's as the evaluation wrote its HParams
    ("preprocessing", "resize_mode", ["pad"], "(resize_mode ['pad'], for a model of input size 32)"),
    ("dataset", "name", ["mnist"], "holds a data set named ['mnist'], read by 'MNIST', which lenet_exp never writes"),
    ("dataset", "name", None, "holds a data set named None, read by 'MNIST', which lenet_exp never writes"),
    # it blamed the command line: "Fix it on the command line, e.g. `python run.py dataset.torchvision_class=...`"
    ("dataset", "torchvision_class", "__init__", "holds a data set named 'mnist', read by '__init__', which"),
])
@pytest.mark.parametrize("task", ["eval", "predict"])
def test_an_altered_checkpoint_is_refused_in_a_sentence(completed_run, tiny_root, tmp_path, part, key, value, said,
                                                         task):
    """A checkpoint whose preprocessing or model config was edited by hand ended eval and predict with a
    traceback (a KeyError, a division by zero, a convolution larger than its input), or first tried to
    allocate the terabytes of the layers it named."""
    from PIL import Image

    state = torch.load(completed_run / "checkpoints" / "best.pt", weights_only=True)
    edited = state["preprocessing"] if part == "preprocessing" else state["config"][part]
    if value is None:
        del edited[key]
    else:
        edited[key] = value
    torch.save(state, tmp_path / "altered.pt")
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(tmp_path / "blank.png")
    result = run_main(fast_overrides(tiny_root) + [f"task={task}", f"ckpt={tmp_path / 'altered.pt'}",
                                                   f"image={tmp_path / 'blank.png'}",
                                                   f"hydra.run.dir={tmp_path / 'out'}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"Error: {tmp_path / 'altered.pt'} " in result.stderr and said in result.stderr, result.stderr[-2000:]


def test_an_evaluation_through_a_link_or_of_an_edited_runs_record_shows_the_runs_columns(completed_run, tiny_root,
                                                                                         tmp_path):
    """Through a symbolic link to a run's checkpoint, the evaluation's HParams lacked the training run's columns
    (model, optimizer, …: its record was looked for beside the link); a run whose .hydra/hydra.yaml had a choice
    edited into a list ended the evaluation with TensorBoard's ValueError, a traceback."""
    from omegaconf import OmegaConf

    link = tmp_path / "links" / "best.pt"
    link.parent.mkdir()
    link.symlink_to(completed_run / "checkpoints" / "best.pt")
    copy = tmp_path / "copy"
    shutil.copytree(completed_run, copy)
    record = OmegaConf.load(copy / ".hydra" / "hydra.yaml")
    record.hydra.runtime.choices.model = ["a", "b"]
    OmegaConf.save(record, copy / ".hydra" / "hydra.yaml")
    for name, ckpt in (("linked", link), ("edited", copy / "checkpoints" / "best.pt")):
        result = run_main(fast_overrides(tiny_root) + ["task=eval", f"ckpt={ckpt}", f"hydra.run.dir={tmp_path / name}"],
                          cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        shown = logged_hparams(load_events(tmp_path / name))
        assert shown["optimizer"] == "adam" and shown.get("model") == ("lenet5" if name == "linked" else None), shown


def test_a_checkpoint_imports_no_module_that_is_not_a_model_of_this_project(completed_run, tiny_root, tmp_path,
                                                                            monkeypatch):
    """Its config named a _target_ whose module was imported, which runs that module's code, before any check."""
    (tmp_path / "code" / "runs_code.py").parent.mkdir()
    marker = tmp_path / "imported"
    (tmp_path / "code" / "runs_code.py").write_text(f"open({str(marker)!r}, 'w')\nimport torch\nNet = torch.nn.Linear\n")
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    state = torch.load(completed_run / "checkpoints" / "best.pt", weights_only=True)
    state["config"]["model"]["_target_"] = "runs_code.Net"
    torch.save(state, tmp_path / "altered.pt")
    result = run_main(fast_overrides(tiny_root) + ["task=eval", f"ckpt={tmp_path / 'altered.pt'}",
                                                   f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr and not marker.exists()
    assert f"{tmp_path / 'altered.pt'} names the model class runs_code.Net, which is not one of lenet_exp.models: " \
           "name the model option it was trained with (model=<option>, with the --config-dir it came from) to have " \
           "its class imported." in result.stderr


def test_preprocessing_named_for_an_evaluation_is_said_to_be_unused(completed_run, tiny_root, tmp_path):
    """An evaluation prepares its inputs as the checkpoint was trained: `dataset.mean=0.5` changed nothing, without
    a word, and an evaluation sweep over it gave identical jobs."""
    checkpoint = completed_run / "checkpoints" / "best.pt"
    result = run_main(fast_overrides(tiny_root) + ["task=eval", f"ckpt={checkpoint}", "dataset.mean=0.5",
                                                   f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"dataset.mean=0.5 not used: {checkpoint} takes its inputs prepared as it was trained (image_size 32, " \
           "resize_mode resize, mean 0.1" in result.stderr
    evaluated, trained = (read_json(run / "metrics.json")["test"] for run in (tmp_path / "eval", completed_run))
    assert evaluated["acc"] == trained["acc"]
    plain = run_main(fast_overrides(tiny_root) + ["task=eval", f"ckpt={checkpoint}", f"hydra.run.dir={tmp_path / 'e2'}"],
                     cwd=tmp_path)
    assert plain.returncode == 0 and "not used" not in plain.stderr
    # a dataset option that prepares otherwise (another data set's statistics, an image size of one's own) was
    # not used without a word; one that prepares alike says nothing
    for option, unused in [("fashion_mnist", "dataset.mean=0.286 and dataset.std=0.353 not used"), ("mnist", None)]:
        other = run_main(fast_overrides(tiny_root) + ["task=eval", f"ckpt={checkpoint}", f"dataset={option}",
                                                      "trainer.limit_batches=1", f"hydra.run.dir={tmp_path / option}"],
                         cwd=tmp_path)
        assert other.returncode == 0 and (f"{unused}: {checkpoint} takes its inputs prepared as it was trained"
                                          in other.stderr if unused else "not used" not in other.stderr), other.stderr
    # what the option leaves to its schema's defaults is not the option's: a checkpoint of resize_mode=pad
    padded = run_main(fast_overrides(tiny_root) + ["dataset.resize_mode=pad", "trainer.limit_batches=1",
                                                   f"hydra.run.dir={tmp_path / 'padded'}"], cwd=tmp_path)
    again = run_main(fast_overrides(tiny_root) + ["task=eval", f"ckpt={tmp_path / 'padded' / 'checkpoints' / 'best.pt'}",
                                                  "dataset=mnist", "trainer.limit_batches=1",
                                                  f"hydra.run.dir={tmp_path / 'padded_eval'}"], cwd=tmp_path)
    assert padded.returncode == 0 and again.returncode == 0 and "not used" not in again.stderr, again.stderr


def test_an_output_folder_written_from_home_is_in_home(tmp_path, monkeypatch):
    """Hydra took hydra.run.dir=~/runs/x for a folder named "~" in the current one."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert quote_paths(["run.py", "hydra.run.dir=~/runs/x", "hydra.sweep.dir=~/my sweeps/y"]) == [
        "run.py", f"hydra.run.dir={tmp_path}/home/runs/x", f"hydra.sweep.dir={tmp_path}/home/my sweeps/y"]


def test_only_paths_that_hydra_would_misread_are_quoted(tmp_path):
    job, listed = tmp_path / "1_optimizer.lr=0.1,seed=0", tmp_path / "a.pt,b.pt"
    job.mkdir()
    listed.touch()
    unchanged = ["ckpt=a.pt,b.pt", "image=null", f"image='{job}'", f"dataset.root={tmp_path}", "optimizer.lr=0.1",
                 "hydra.run.dir=outputs/runs/mine", "hydra.job.name=a=b"]
    other_job = tmp_path / "2_optimizer.lr=0.1,seed=1"
    other_job.mkdir()
    assert quote_paths(["run.py", f"dataset.root={job}", *unchanged, f"ckpt={listed}", "ckpt=x=y",
                        f"hydra.run.dir={job}", "hydra.sweep.dir=my sweeps/x=1,y", f"ckpt={job},{other_job}",
                        f"++hydra.run.dir={job}", f"+ckpt={listed}"]) == \
        ["run.py", f"dataset.root='{job}'", *unchanged, f"ckpt='{listed}'", "ckpt='x=y'",
         f"hydra.run.dir='{job}'", "hydra.sweep.dir='my sweeps/x=1,y'", f"ckpt='{job}','{other_job}'",
         f"++hydra.run.dir='{job}'", f"+ckpt='{listed}'"]  # a key with + is the same path (++ was left unquoted)


@pytest.mark.parametrize("task", ["train", "eval"])
@pytest.mark.parametrize("relabel, named, reads, choices", [
    ("dataset.name=fashion_mnist", "fashion_mnist", "MNIST", "dataset=fashion_mnist or dataset=mnist"),
    ("dataset.torchvision_class=FashionMNIST", "mnist", "FashionMNIST", "dataset=mnist or dataset=fashion_mnist")])
def test_a_data_set_named_as_another_it_does_not_read_is_refused(completed_run, tiny_root, tmp_path, task, relabel,
                                                                 named, reads, choices):
    """dataset.name=fashion_mnist trained (or evaluated) on MNIST's files, and every record of it said
    fashion_mnist; dataset.torchvision_class=FashionMNIST read FashionMNIST under MNIST's name."""
    of_task = ["task=eval", f"ckpt={completed_run / 'checkpoints' / 'best.pt'}"] if task == "eval" else []
    result = run_main([*fast_overrides(tiny_root), *of_task, relabel, f"hydra.run.dir={tmp_path / 'run'}"],
                      cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    option = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[named]
    assert (f"Error: dataset.name={named} is the name of dataset={named}, which reads {option}, but "
            f"dataset.torchvision_class={reads} reads {reads}: what is recorded would name a data set it did not "
            f"read. Choose the data set with dataset=<option> ({choices}); a variant of one takes a dataset.name "
            f"of its own.") in result.stderr
    # a name of its own labels a variant of a data set
    renamed = run_main([*fast_overrides(tiny_root), *of_task, "dataset.name=mnist_variant", "trainer.limit_batches=2",
                        f"hydra.run.dir={tmp_path / 'renamed'}"], cwd=tmp_path)
    assert renamed.returncode == 0, renamed.stderr[-2000:]
    metrics = read_json(tmp_path / "renamed" / "metrics.json")
    assert (metrics["dataset"] if task == "eval" else metrics["config"]["dataset"]["name"]) == "mnist_variant"


def test_a_data_set_option_of_ones_own_cannot_take_the_name_of_another(tiny_root, tmp_path):
    """The check took the first option of that name, as the options sort: fmnist.yaml, named mnist and reading
    FashionMNIST, vouched for itself and blocked dataset=mnist; lenet_exp.train() did not check at all."""
    (tmp_path / "mine" / "dataset").mkdir(parents=True)
    (tmp_path / "mine" / "dataset" / "fmnist.yaml").write_text(
        "defaults:\n  - /schema_dataset_idx@_here_\n  - _self_\nname: mnist\ntorchvision_class: FashionMNIST\n"
        "num_classes: 10\nmean: null\nstd: null\n")
    fast = ["--config-dir", str(tmp_path / "mine"), *fast_overrides(tiny_root), "trainer.limit_batches=2"]
    mislabelled = run_main([*fast, "dataset=fmnist", f"hydra.run.dir={tmp_path / 'fmnist'}"], cwd=tmp_path)
    assert mislabelled.returncode == 1 and ("Error: dataset.name=mnist is the name of dataset=mnist, which reads "
                                            "MNIST, but dataset.torchvision_class=FashionMNIST reads FashionMNIST"
                                            ) in mislabelled.stderr, mislabelled.stderr[-2000:]
    stock = run_main([*fast, f"hydra.run.dir={tmp_path / 'mnist'}"], cwd=tmp_path)
    assert stock.returncode == 0, stock.stderr[-2000:]
    with pytest.raises(UserError, match=re.escape("dataset.name=mnist is the name of dataset=mnist, which reads MNIST, "
                                                  "but dataset.torchvision_class=FashionMNIST reads FashionMNIST")):
        train(compose(*fast_overrides(tiny_root), "dataset.torchvision_class=FashionMNIST"), run_dir=tmp_path / "api")


def test_a_sweep_evaluates_each_job_checkpoint_it_names(completed_run, tiny_root, tmp_path):
    """`-m task=eval ckpt=<job>/…,<job>/…`: the jobs' folder names hold `=` and `,`; the default study's
    training settings are left out (they would repeat each evaluation), and the jobs are named by number."""
    checkpoints = []
    for job in ("0_optimizer.lr=0.001,seed=0", "1_optimizer.lr=0.003,seed=0"):
        (tmp_path / job / "checkpoints").mkdir(parents=True)
        checkpoints.append(shutil.copy(completed_run / "checkpoints" / "best.pt", tmp_path / job / "checkpoints"))
    sweep_dir = tmp_path / "eval"
    result = run_main(["-m", *fast_overrides(tiny_root), "task=eval", f"ckpt={','.join(map(str, checkpoints))}",
                       f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "task=eval trains nothing: the default search space (optimizer.lr, trainer.batch_size) is left out." \
        in result.stdout
    # each evaluation validates its checkpoint too: chosen on val, as training runs are, not on test
    assert "2 jobs (2 completed), sorted by val accuracy" in result.stdout
    summary = read_json(sweep_dir / "summary.json")
    assert [(job["params"]["ckpt"], job["status"]) for job in summary["jobs"]] == [(str(c), "completed")
                                                                                    for c in checkpoints]
    assert summary["swept"] == ["ckpt"]  # both tested on their own MNIST: no data set column
    assert summary["best"]["job"] == 0  # first by val accuracy (the same checkpoint: by number); it was null
    assert sorted(path.name for path in sweep_dir.glob("[0-9]*")) == ["0", "1"]
    assert load_events(sweep_dir / "summary").Tags()["images"] == ["sweep/val_acc_vs_params"]
    # each evaluation is a TensorBoard run: HParams shows each checkpoint's val and test accuracy
    for job, checkpoint in zip(summary["jobs"], checkpoints):
        events = load_events(Path(job["run_dir"]))
        assert logged_hparams(events)["ckpt"] == str(checkpoint)
        epoch = read_json(Path(job["run_dir"]) / "metrics.json")["ckpt_epoch"]  # where its run's test point is
        assert job["best_epoch"] == epoch > 0  # whose weights were tested: it was null (helper concur57)
        assert scalar_values(events, "test/acc") == {epoch: pytest.approx(job["test_acc"])}
        assert scalar_values(events, "best/val_acc") == {epoch: pytest.approx(job["val_acc"])}


def test_an_evaluation_sweep_lists_a_path_with_a_space_as_it_is(completed_run, tiny_root, tmp_path):
    """Hydra gives the job `my\\ runs/best.pt`, its grammar's escape; the summary listed that, no path at all."""
    (tmp_path / "my runs").mkdir()
    shutil.copy(completed_run / "checkpoints" / "best.pt", tmp_path / "my runs")
    shutil.copy(completed_run / "checkpoints" / "best.pt", tmp_path / "plain.pt")
    result = run_main(["-m", *fast_overrides(tiny_root), "task=eval", "ckpt=my runs/best.pt,plain.pt",
                       f"hydra.sweep.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = read_json(tmp_path / "eval" / "summary.json")["jobs"]
    assert sorted(job["params"]["ckpt"] for job in jobs) == ["my runs/best.pt", "plain.pt"]
    assert "my runs/best.pt " in result.stdout  # the table's column


def test_an_evaluation_sweep_over_job_checkpoints_keeps_a_missing_one_as_a_job_of_its_own(completed_run, tiny_root,
                                                                                          tmp_path):
    """The jobs' folder names hold `,`: the paths are joined where they exist, and a missing checkpoint beside
    them made the whole list one path, which "does not exist". Each is a job, and the missing one fails alone."""
    job = tmp_path / "0_optimizer.lr=0.001,seed=0" / "checkpoints"
    job.mkdir(parents=True)
    checkpoints = [shutil.copy(completed_run / "checkpoints" / "best.pt", job), str(tmp_path / "deleted.pt")]
    sweep_dir = tmp_path / "eval"
    result = run_main(["-m", *fast_overrides(tiny_root), "task=eval", f"ckpt={','.join(map(str, checkpoints))}",
                       f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 1 and "2 jobs (1 completed, 1 failed)" in result.stdout, result.stdout[-2000:]
    jobs = read_json(sweep_dir / "summary.json")["jobs"]
    assert [(j["params"]["ckpt"], j["status"]) for j in jobs] == [(str(checkpoints[0]), "completed"),
                                                                  (checkpoints[1], "failed")]
    assert "does not exist" in jobs[1]["message"] and "seed=0" not in jobs[1]["message"]
    # the one tested is on its own MNIST: no data set column (the failed one's is unknown, not another)
    assert read_json(sweep_dir / "summary.json")["swept"] == ["ckpt"]


def test_an_evaluation_sweep_shows_the_data_set_where_its_checkpoints_differ_in_it(completed_run, tiny_root, tmp_path):
    """Each checkpoint is tested on its own data set, whatever `dataset.<field>=` the command sets (with
    `dataset.val_size=`, both were tested on the default MNIST); `dataset=<option>` chooses another."""
    fashion = tmp_path / "fashion"
    trained = run_main([*fast_overrides(tiny_root), "dataset=fashion_mnist", f"hydra.run.dir={fashion}"], cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    checkpoints = [completed_run / "checkpoints" / "best.pt", fashion / "checkpoints" / "best.pt"]
    result = run_main(["-m", *fast_overrides(tiny_root), "task=eval", f"ckpt={','.join(map(str, checkpoints))}",
                       f"hydra.sweep.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = read_json(tmp_path / "eval" / "summary.json")
    assert summary["swept"] == ["ckpt", "dataset"]
    assert [job["params"]["dataset"] for job in summary["jobs"]] == ["mnist", "fashion_mnist"]
    header = next(line for line in result.stdout.splitlines() if line.startswith("job "))
    assert header.split()[:4] == ["job", "status", "ckpt", "dataset"]
    on_mnist = run_main([*fast_overrides(tiny_root), "task=eval", f"ckpt={checkpoints[1]}", "dataset=mnist",
                         f"hydra.run.dir={tmp_path / 'on_mnist'}"], cwd=tmp_path)
    assert on_mnist.returncode == 0 and read_json(tmp_path / "on_mnist" / "metrics.json")["dataset"] == "mnist"


def test_a_sweep_predicts_each_image_it_names(completed_run, tiny_root, tmp_path):
    from PIL import Image

    images = []
    for value in (0, 255):
        images.append(tmp_path / f"{value}.png")
        Image.fromarray(np.full((28, 28), value, dtype=np.uint8)).save(images[-1])
    sweep_dir = tmp_path / "predict"
    best = completed_run / "checkpoints" / "best.pt"
    result = run_main(["-m", *fast_overrides(tiny_root), "task=predict", f"ckpt={best}",
                       f"image={','.join(map(str, images))}", f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]  # its jobs were "failed": they write no metrics.json
    predicted = [read_json(sweep_dir / str(job) / "prediction.json") for job in (0, 1)]
    summary = read_json(sweep_dir / "summary.json")
    assert [(job["status"], job["prediction"]) for job in summary["jobs"]] == [
        ("completed", f"{p['class']} ({p['name']}), {p['probability']:.4f}") for p in predicted]
    assert "2 jobs (2 completed), sorted by job" in result.stdout and not (sweep_dir / "summary.png").exists()
    header = next(line for line in result.stdout.splitlines() if line.startswith("job "))
    assert header.split() == ["job", "status", "image", "prediction"]  # no column of accuracies it has none of
    for job, prediction in enumerate(predicted):  # each line names its job, as the job's log lines do
        assert f"[job {job}] {prediction['class']} ({prediction['name']}) with probability" in result.stdout


def test_an_evaluation_stopped_while_its_figures_are_drawn_is_not_recorded_as_completed(completed_run, tiny_root,
                                                                                        tmp_path, monkeypatch):
    """Its metrics.json was written first: a Ctrl-C while TensorBoard's figures were drawn left a run that said
    "completed" without them."""
    from lenet_exp.record import TensorBoardLog

    def ctrl_c(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(TensorBoardLog, "test", ctrl_c)
    stopped = run_main(fast_overrides(tiny_root) + ["task=eval", f"ckpt={completed_run / 'checkpoints' / 'best.pt'}",
                                                    f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert read_json(tmp_path / "eval" / "metrics.json")["status"] == "interrupted"


@pytest.mark.parametrize("task, reads", [("eval", "read_split"), ("predict", "read_image")])
def test_a_stopped_evaluation_or_prediction_in_a_sweep_is_listed_as_interrupted(completed_run, tiny_root, tmp_path,
                                                                              monkeypatch, task, reads):
    """Ctrl-C during the second job of an evaluation sweep listed it as "killed or crashed before writing"
    its metrics.json (only a training job recorded its stop); run again, the sweep completes it."""
    from PIL import Image

    import lenet_exp.inference as reader

    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(tmp_path / "blank.png")
    read, calls = getattr(reader, reads), []

    def ctrl_c_in_the_second_job(*args, **kwargs):
        if not kwargs.get("train"):  # an evaluation reads its train split too, for its val accuracy
            calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return read(*args, **kwargs)

    sweep = tmp_path / "sweep"
    command = ["-m", *fast_overrides(tiny_root), f"task={task}", f"ckpt={completed_run / 'checkpoints' / 'best.pt'}",
               f"image={tmp_path / 'blank.png'}", "trainer.tta_shift=0,1,2", f"hydra.sweep.dir={sweep}"]
    if task == "eval":
        command.remove(f"image={tmp_path / 'blank.png'}")
    monkeypatch.setattr(reader, reads, ctrl_c_in_the_second_job)
    stopped = run_main(command, cwd=tmp_path)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert [job["status"] for job in read_json(sweep / "summary.json")["jobs"]] == [
        "completed", "interrupted", "not started"]
    assert f"Interrupted by signal 2 before task={task} ended; running the same command again runs it." in \
        read_json(sweep / "1_trainer.tta_shift=1" / "metrics.json")["message"]
    monkeypatch.setattr(reader, reads, read)
    assert run_main(command, cwd=tmp_path).returncode == 0
    assert [job["status"] for job in read_json(sweep / "summary.json")["jobs"]] == ["completed"] * 3


def test_the_advice_to_resume_is_a_command_that_the_shell_takes_as_written(completed_run, tiny_root):
    # the folder's name holds quotes, a backslash and spaces; hydra.run.dir is written as it is
    result = run_main(fast_overrides(tiny_root) + [f"hydra.run.dir={completed_run}", "optimizer.lr=0.5"],
                      cwd=completed_run.parent)
    assert result.returncode == 1 and "holds a run with another config" in result.stderr, result.stderr[-2000:]
    command = re.search(r"`(python run.py resume=.*)` \(no override", result.stderr).group(1)
    assert shlex.split(command) == ["python", "run.py", f"resume={completed_run}"]


def test_relative_paths_are_read_from_where_run_py_ran_when_hydra_changes_into_the_job_folder(tiny_root, tmp_path):
    # hydra.job.chdir=true (the default before Hydra 1.2) runs the job in its own folder
    cwd = tiny_root.parent
    ran = run_main(fast_overrides(Path(tiny_root.name)) + ["hydra.job.chdir=true", f"hydra.run.dir={tmp_path / 'run'}"],
                   cwd=cwd)
    assert ran.returncode == 0, ran.stderr[-2000:]
    best = os.path.relpath(tmp_path / "run" / "checkpoints" / "best.pt", cwd)
    evaluated = run_main(fast_overrides(Path(tiny_root.name)) + ["task=eval", f"ckpt={best}", "hydra.job.chdir=true",
                                                                 f"hydra.run.dir={tmp_path / 'eval'}"], cwd=cwd)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    evaluated, trained = (read_json(tmp_path / run / "metrics.json")["test"] for run in ("eval", "run"))
    # the loss summed in another order where the thread count differs (this test alone, not under xdist)
    assert evaluated["acc"] == trained["acc"] and evaluated["loss"] == pytest.approx(trained["loss"], rel=1e-5)


def test_a_damaged_record_of_an_output_folder_stops_before_anything_is_written(completed_run, tiny_root, tmp_path):
    """Hydra only warns when a callback raises: the checks of the folder were skipped and .hydra/ rewritten."""
    run_dir, sweep_dir = tmp_path / "run", tmp_path / "sweep"
    shutil.copytree(completed_run, run_dir)
    (run_dir / ".hydra" / "config.yaml").write_text("model: [")  # cut short
    (tmp_path / "emptied").mkdir()
    shutil.copytree(completed_run, tmp_path / "emptied" / "run")
    (tmp_path / "emptied" / "run" / ".hydra" / "config.yaml").write_text("")  # killed as Hydra wrote it (in place)
    sweep_dir.mkdir()
    (sweep_dir / "multirun.yaml").write_text("hydra: [")
    fast = fast_overrides(tiny_root)
    emptied = tmp_path / "emptied" / "run"  # compared with the config: "another config (augment.name: null -> …)"
    for folder, args in ((run_dir / ".hydra" / "config.yaml", [*fast, f"hydra.run.dir={run_dir}"]),
                         (emptied / ".hydra" / "config.yaml", [*fast, f"hydra.run.dir={emptied}"]),
                         (sweep_dir / "multirun.yaml", ["-m", *fast, "seed=0,1", f"hydra.sweep.dir={sweep_dir}"])):
        before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
        result = run_main(args, cwd=tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr and "warn" not in result.stderr
        assert f"Error: {folder} cannot be read (" in result.stderr, result.stderr[-2000:]
        assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == before
    assert (run_dir / ".hydra" / "config.yaml").read_text() == "model: ["


def test_a_data_root_whose_name_holds_a_dollar_brace_trains_resumes_and_evaluates(tiny_root, tmp_path):
    """The checkpoint's config held the path as written, which its load took for an interpolation put there by
    hand: the run failed at its final test ("it was altered and is not used"), and again when run again."""
    root = tmp_path / "data ${x}"
    root.mkdir()
    (root / "MNIST").symlink_to(tiny_root / "MNIST")
    fast = [*fast_overrides(tiny_root), f"dataset.root={root}"]
    first = run_main([*fast, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    longer = run_main([f"resume={tmp_path / 'run'}", "trainer.epochs=2"], cwd=tmp_path)
    assert longer.returncode == 0 and read_json(tmp_path / "run" / "metrics.json")["epochs_done"] == 2, \
        longer.stderr[-2000:]
    evaluated = run_main([*fast, "task=eval", f"ckpt={tmp_path / 'run' / 'checkpoints' / 'best.pt'}",
                          f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert evaluated.returncode == 0 and read_json(tmp_path / "eval" / "metrics.json")["test"]["acc"] == \
        read_json(tmp_path / "run" / "metrics.json")["test"]["acc"], evaluated.stderr[-2000:]


def test_a_best_checkpoint_restored_from_last_is_a_copy_of_it(tiny_root, tmp_path):
    """A run stopped between writing last.pt and best.pt gets best.pt back from last.pt: it was saved again as
    loaded, the '${' of its config (a data folder named so) escaped once more at each restore."""
    from lenet_exp import compose
    from lenet_exp.checkpoints import load_checkpoint
    from lenet_exp.loop import Run

    root, run_dir = tmp_path / "data ${x}", tmp_path / "run"
    root.mkdir()
    (root / "MNIST").symlink_to(tiny_root / "MNIST")
    assert run_main([*fast_overrides(tiny_root), f"dataset.root={root}", f"hydra.run.dir={run_dir}"],
                    cwd=tmp_path).returncode == 0
    last, best = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt"
    best.unlink()
    Run(compose(*fast_overrides(tiny_root)), run_dir).check_best_checkpoint(load_checkpoint(last, for_training=True))
    assert best.read_bytes() == last.read_bytes()
    assert load_checkpoint(best)["config"]["dataset"]["root"] == load_checkpoint(last)["config"]["dataset"]["root"]


def test_resume_refuses_a_folder_name_that_hydra_would_interpolate(completed_run, tmp_path):
    run_dir = tmp_path / "run ${oc.env:HOME}"
    shutil.copytree(completed_run, run_dir)
    result = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "Rename the folder without '${'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run ${oc.env:HOME}"]  # nothing written elsewhere


def test_an_error_that_names_a_folder_reaches_the_terminal_without_its_control_characters(completed_run, tmp_path):
    """A refusal printed by sys.exit wrote the escape codes in a folder's name to the terminal (log lines escape
    them): a folder handed over named "\x1b[2J" cleared the screen."""
    run_dir = tmp_path / "run\x1b[2J\rb"
    shutil.copytree(completed_run, run_dir)
    (run_dir / ".hydra" / "overrides.yaml").unlink()
    result = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"cannot resume from {tmp_path}/run\\x1b[2J\\rb/.hydra/overrides.yaml" in result.stderr, result.stderr
    assert "\x1b" not in result.stderr and "\r" not in result.stderr


@pytest.mark.parametrize("saved,problem", [
    ("- '+hydra.callbacks.evil={_target_: builtins.open, file: TARGET, mode: w}'\n", "sets Hydra itself"),
    ("- hydra.job_logging.handlers.file.filename=TARGET\n", "sets Hydra itself"),
    ("- optimizer.lr=0.1,0.2\n", "is a sweep"),
    ("- [unclosed\n", "not readable YAML"),
    ("optimizer.lr: 0.1\n", "not a list of overrides"),
    ("", "it is empty; the same list is in .hydra/hydra.yaml"),  # killed as Hydra wrote it: read as no overrides
])
def test_resume_replays_only_the_runs_own_config_overrides(completed_run, tmp_path, saved, problem):
    run_dir = tmp_path / "run"
    shutil.copytree(completed_run, run_dir)
    target = tmp_path / "written_by_the_folder"
    (run_dir / ".hydra" / "overrides.yaml").write_text(saved.replace("TARGET", str(target)))
    result = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"cannot resume from {run_dir / '.hydra' / 'overrides.yaml'}" in result.stderr and problem in result.stderr
    assert not target.exists()
    assert read_json(run_dir / "metrics.json") == read_json(completed_run / "metrics.json")  # nothing written


@pytest.mark.parametrize("tamper, message", [
    # Hydra's instantiate called a _target_ nested in the options (its blocklist has os.system, not this)
    (lambda config, target: config["model"].update(hidden={"_target_": "pathlib.Path.touch", "self": {
        "_target_": "pathlib.Path", "_args_": [str(target)]}}), "expected plain values (numbers, strings, lists): a "
                                                                "_target_ inside an option is not built"),
    (lambda config, target: config["model"].update(_target_="pathlib.Path.touch", self=str(target)),
     "names the model class pathlib.Path.touch, which is not one of lenet_exp.models"),
], ids=["nested-target", "function-target"])
def test_a_checkpoint_names_only_a_model_class_and_its_settings(completed_run, tiny_root, tmp_path, tamper, message):
    """A checkpoint is loaded with weights_only, and its config is data too: task=eval builds the model it
    names, and only a model class is called, with plain values."""
    state = torch.load(completed_run / "checkpoints" / "best.pt", weights_only=True)
    target = tmp_path / "written_by_the_checkpoint"
    tamper(state["config"], target)
    torch.save(state, tmp_path / "tampered.pt")
    result = run_main(fast_overrides(tiny_root) + ["task=eval", f"ckpt={tmp_path / 'tampered.pt'}",
                                                   f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr[-2000:]
    assert not target.exists()


@pytest.mark.parametrize("override, message", [
    ("optimizer._target_=builtins.print", "optimizer._target_='builtins.print' (not a subclass of Optimizer): expected "
                                          "a torch.optim class"),
    ("model._target_=torch.nn.functional.relu", "model._target_='torch.nn.functional.relu' (not a subclass of Module)"),
    ("optimizer._target_=torch.optim.", "optimizer._target_='torch.optim.': expected a torch.optim class whose "
                                        "arguments match the optimizer options (ValueError: Error loading"),
])
def test_a_target_that_is_no_class_of_its_kind_is_not_called(tiny_root, tmp_path, override, message):
    with pytest.raises(UserError, match=re.escape(message)):
        train(compose(*fast_overrides(tiny_root), override), run_dir=tmp_path / "run")


def test_sizes_that_cannot_fit_are_refused_before_allocating(tiny_root, tmp_path):
    with pytest.raises(UserError, match=r"800 images of 5000x5000 pixels .* would need about .* GiB, but .* is free"):
        train(compose(*fast_overrides(tiny_root), "dataset.image_size=5000"), run_dir=tmp_path / "a")
    with pytest.raises(UserError, match=r"41,100,002,604 parameters.*Choose smaller layers"):
        train(compose(*fast_overrides(tiny_root), "model.hidden=[100000000]"), run_dir=tmp_path / "b")


@contextlib.contextmanager
def child_cgroup(controller: str, v1_limits: dict[str, str], v2_limits: dict[str, str]) -> Iterator[Path]:
    """A cgroup below this process's own for ``controller`` (v1 or v2), with those limits, as a container or a
    Slurm job has: its folder, or a skip where this machine does not let one be made."""
    from lenet_exp.cgroups import own_cgroups

    for own, v2 in own_cgroups(controller):
        available = own / "cgroup.controllers"  # v2's: which controllers its children may use
        if v2 and not (available.is_file() and controller in available.read_text().split()):
            continue  # a hybrid host's unified hierarchy without the controller (or a plain folder)
        folder = own / f"lenet_exp_test_{os.getpid()}"
        try:
            folder.mkdir()
        except OSError:
            continue
        try:
            for name, value in (v2_limits if v2 else v1_limits).items():
                (folder / name).write_text(value)
        except OSError:
            folder.rmdir()
            continue
        try:
            yield folder
        finally:
            folder.rmdir()  # its process has ended: the cgroup is empty
        return
    pytest.skip(f"no {controller} cgroup can be made here (needs root and a writable /sys/fs/cgroup)")


def run_in_cgroup(cgroup: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`python run.py ARGS`, its process put into ``cgroup`` first."""
    joined = (f"import os, sys; open({str(cgroup / 'cgroup.procs')!r}, 'w').write(str(os.getpid())); "
              f"os.execv(sys.executable, [sys.executable, {str(RUN_PY)!r}, *{args!r}])")
    return run_cli(["-c", joined], cwd=cwd, script=None)


@pytest.fixture
def memory_cgroup():
    with child_cgroup("memory", {"memory.limit_in_bytes": str(2 * 2**30)}, {"memory.max": str(2 * 2**30)}) as folder:
        yield folder


def test_a_memory_cgroups_limit_is_what_a_run_plans_with(memory_cgroup, tiny_root, tmp_path):
    """The machine has far more memory free than the cgroup allows, past which the kernel would kill the
    run without a word: the data is refused before it is allocated, the limit named."""
    # 1,300 images of 600x600: about 1.7 GiB
    result = run_in_cgroup(memory_cgroup, [*fast_overrides(tiny_root), "dataset.image_size=600"], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert re.search(r"would need about 1\.7 GiB, but [01]\.\d GiB is free on CPU \(.*\) within its memory cgroup's "
                     r"limit of 2\.0 GiB \(" + re.escape(str(memory_cgroup)), result.stderr), result.stderr


def test_an_eval_batch_that_cannot_fit_is_refused_before_training(memory_cgroup, tiny_root, tmp_path):
    """10,000 test images at once in a 1 GiB container: the run trained each epoch and was killed in its final
    test, its metrics.json left "running" (helper containers56). At 300x300 pixels a test image's layers output
    8.5 MiB: 200 at once (the tiny test split) cannot fit in 2 GiB, 20 can; an evaluation is refused as a run is."""
    big = [*fast_overrides(tiny_root), "dataset.image_size=300", "trainer.batch_size=8", "trainer.limit_batches=1",
           "trainer.fused_cpu_kernels=false"]  # (whose conv blocks' eval outputs less: it needs the 2 GiB it has)
    refused = run_in_cgroup(memory_cgroup, [*big, f"hydra.run.dir={tmp_path / 'a'}"], tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert re.search(r"Testing 200 images at a time \(trainer\.eval_batch_size=200; [\d,]+ activations\) would need "
                     r"about 1\.\d GiB, .* Choose a smaller trainer\.eval_batch_size", refused.stderr), refused.stderr
    assert not (tmp_path / "a" / "checkpoints" / "last.pt").exists()  # refused before its first epoch

    fits = run_in_cgroup(memory_cgroup, [*big, "trainer.eval_batch_size=20", f"hydra.run.dir={tmp_path / 'b'}"],
                         tmp_path)
    assert fits.returncode == 0, fits.stderr[-2000:]

    evaluation = run_in_cgroup(memory_cgroup, [f"dataset.root={tiny_root}", "device=cpu", "task=eval",
                                               f"ckpt={tmp_path / 'b' / 'checkpoints' / 'best.pt'}",
                                               f"hydra.run.dir={tmp_path / 'eval'}"], tmp_path)
    assert evaluation.returncode == 1 and "Traceback" not in evaluation.stderr, evaluation.stderr
    assert "Testing 200 images at a time (trainer.eval_batch_size=1000; " in evaluation.stderr, evaluation.stderr


def test_an_eval_batch_is_planned_as_the_images_it_holds():
    """A batch larger than the split it tests holds the split: trainer.eval_batch_size=10**9 of 10 images fits."""
    from lenet_exp.parts import check_testing_fits

    cpu = torch.device("cpu")
    check_testing_fits(10**9, activations_per_image=1000, images=10, model_bytes=0, device=cpu)
    with pytest.raises(UserError, match=r"Testing 1,000,000,000 images at a time \(trainer.eval_batch_size="
                                        r"1000000000; 1,000,000,000,000 activations\) would need about 3725\.3 GiB"):
        check_testing_fits(10**9, activations_per_image=1000, images=10**9, model_bytes=0, device=cpu)


@pytest.mark.skipif(len(MACHINE_CORES) < 2, reason="one core: a quota of one CPU changes nothing")
def test_a_cpu_quota_caps_a_runs_threads(tiny_root, tmp_path):
    """A container's quota of one CPU (docker --cpus=1) on a 2-core machine: its 2 threads took turns within each
    period, and a run trained 1.35-1.6x slower than with 1 (helper containers56)."""
    with child_cgroup("cpu", {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "100000"},
                      {"cpu.max": "100000 100000"}) as cgroup, on_every_core():  # (not this worker's one core)
        result = run_in_cgroup(cgroup, [*fast_overrides(tiny_root), f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_json(tmp_path / "run" / "metrics.json")["device"] == "CPU (1 thread)"


def test_jobs_started_at_once_each_plan_with_their_share_of_the_free_memory():
    """joblib's parallel jobs each see all the memory free as they start: each one alone would fit, and
    together they would meet the out-of-memory killer. Each plans with its share."""
    from omegaconf import OmegaConf

    from lenet_exp.device import MEMORY_HEADROOM, check_fits, free_bytes, resolve_device
    from lenet_exp.slots import JobSlot

    cpu, threads = torch.device("cpu"), torch.get_num_threads()
    try:
        resolve_device(OmegaConf.create({"type": "cpu", "threads": None}), JobSlot())
        need = 0.6 * MEMORY_HEADROOM * free_bytes(cpu)  # 60 % of what one job may take
        check_fits(need, cpu, "Training", "Fix it.")  # alone: it fits
        resolve_device(OmegaConf.create({"type": "cpu", "threads": None}), JobSlot(number=1, parallel=2))
        # what it may take named: it needs less than its share, and more than the 80 % of it it may take
        with pytest.raises(UserError, match=r"would need about .* GiB, but .* GiB is this job's share of the memory "
                                            r"free on CPU .*, which 2 jobs share, of which it may take .* GiB \(80%; "
                                            r"the rest is kept for workspaces and other processes\)\. Fix it\. Or run fewer jobs at "
                                            r"once \(hydra\.launcher\.n_jobs\)\."):
            check_fits(need, cpu, "Training", "Fix it.")
    finally:
        resolve_device(OmegaConf.create({"type": "cpu", "threads": None}), JobSlot())  # this worker's next tests
        torch.set_num_threads(threads)


def test_more_threads_than_cores_are_capped_with_a_warning(caplog):
    from omegaconf import OmegaConf

    from lenet_exp.device import resolve_device
    from lenet_exp.slots import JobSlot, available_cores

    before = torch.get_num_threads()
    try:
        resolve_device(OmegaConf.create({"type": "cpu", "threads": 1000}), JobSlot())
        assert torch.get_num_threads() == available_cores()
        assert "device.threads=1000 is more than the" in caplog.text
        # a launcher's reservation too (hydra.launcher.cpus_per_task=1000 trained 100x slower, without a word)
        resolve_device(OmegaConf.create({"type": "cpu", "threads": None}), JobSlot(threads=1000))
        assert torch.get_num_threads() == available_cores()
        assert "hydra.launcher's cpus_per_task=1000 is more than the" in caplog.text
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("override,expected", [
    ("seed=1180591620717411303424", "an integer in [0, 2**32)"),
    ("seed=4294967296", "an integer in [0, 2**32) (torch's CPU generator keeps 32 bits)"),  # trained as seed=0
    ("data_seed=-1", "null or an integer in [0, 2**32)"),  # as 2**32 - 1
    ("dataset.split_seed=1180591620717411303424", "an integer in [0, 2**32)"),
    ("augment=elastic augment.elastic_sigma=1e300", "a number in (0, 100] (pixels)"),
    ("model.hidden=[[120],[84]]", "one or more positive integers"),
    ("dataset.mean=nan", "null or a number in [0, 1]"),
    ("dataset.std=inf", "null or a number > 0"),
    ("ckpt=best.pt", "null for task=train, which starts from scratch. Give task=eval or task=predict to use it "
                     "(resume=<run dir> continues a run), or leave ckpt= out."),
    ("image=digit.png", "null for task=train, which starts from scratch. Give task=predict to use it"),
    ("task=predict ckpt=best.pt", "a PNG or JPEG file for task=predict. Give it with task=predict and ckpt=, e.g. "
                                  "image=digit.png."),
])
def test_inputs_that_used_to_slip_through_or_crash_are_refused(override, expected):
    from lenet_exp.validation import validate
    from lenet_exp.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(expected)):
        validate(compose(*override.split()))


def test_an_empty_run_directory_is_refused(fast, tmp_path):
    result = run_main(fast + ["hydra.run.dir=''"], cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "hydra.run.dir is empty" in result.stderr and list(tmp_path.iterdir()) == []


def test_images_are_read_as_they_look(tmp_path, monkeypatch, caplog):
    from PIL import Image

    from lenet_exp.inference import read_image

    ramp = (np.arange(28 * 28).reshape(28, 28) * (65535 / (28 * 28 - 1))).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")  # 16-bit grayscale: scaled, not clipped to black and white
    assert len(read_image(str(tmp_path / "deep.png")).unique()) > 100
    # a 32-bit or float image (of no fixed range) from its darkest pixel to its lightest: a negative or NaN float
    # image was blank
    stroke = np.zeros((28, 28), np.float32)
    stroke[4:24, 12:16] = 300
    for name, pixels in (("dim32.tif", stroke.astype(np.int32)), ("negative.tif", stroke / 300 - 5),
                         ("nan.tif", np.where(np.arange(28) < 3, np.nan, stroke))):
        Image.fromarray(pixels).save(tmp_path / name)
        gray = read_image(str(tmp_path / name))[0]
        assert gray[14, 14] == 255 and gray[2, 2] == 0, name

    ink = np.zeros((28, 28, 4), np.uint8)
    ink[..., :3] = 255  # white everywhere, opaque only where the digit is
    ink[6:22, 12:16, 3] = 255
    Image.fromarray(ink, "RGBA").save(tmp_path / "transparent.png")
    gray = read_image(str(tmp_path / "transparent.png"))[0]
    assert gray[14, 14] == 255 and gray[2, 2] == 0  # the transparent background is the data sets' black
    ink[..., :3] = 0  # black strokes on a transparent canvas, as a browser's canvas exports a drawing: the ink
    Image.fromarray(ink, "RGBA").save(tmp_path / "canvas.png")
    assert torch.equal(read_image(str(tmp_path / "canvas.png")), read_image(str(tmp_path / "transparent.png")))

    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 255  # an upright bar, in the middle
    Image.fromarray(digit).save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the pixels are stored turned; viewers turn them back (a phone's photo)
    Image.fromarray(digit).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "turned.jpg", exif=exif, quality=100)
    upright, turned = read_image(str(tmp_path / "upright.png")), read_image(str(tmp_path / "turned.jpg"))
    assert (upright.float() - turned.float()).abs().max() < 40  # JPEG's own error; the bar across would be 255
    # an EXIF block cut short: read all the same, said in one line of ours (PIL's warning showed its source line)
    Image.fromarray(digit).save(tmp_path / "junk.jpg", exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (read_image(str(tmp_path / "junk.jpg")).float() - upright.float()).abs().max() < 40
    assert f"{tmp_path / 'junk.jpg'}: UserWarning: Corrupt EXIF data." in caplog.text

    Image.fromarray(digit[:, 8:20]).save(tmp_path / "narrow.png")  # 28 x 12: padded to a square, not stretched
    assert torch.equal(read_image(str(tmp_path / "narrow.png")), upright)
    # a 16-bit picture reads as its 8-bit one (a grey stroke stays grey: not stretched to the lightest pixel)
    Image.fromarray(digit // 2).save(tmp_path / "grey.png")
    Image.fromarray((digit // 2).astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    assert torch.equal(read_image(str(tmp_path / "grey16.png")), read_image(str(tmp_path / "grey.png")))
    # a long strip of few pixels (within PIL's limit) was padded to a square of 40 GB first: shrunk first now
    strip = np.zeros((1, 200_000), np.uint8)
    strip[0, 100_000 - 20_000:100_000 + 20_000] = 255
    Image.fromarray(strip).save(tmp_path / "strip.png")
    read = read_image(str(tmp_path / "strip.png"))
    assert read.shape == (1, 28, 28) and read[0, 14, 14] > 0 and read[0, 0].max() == 0

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL's decompression-bomb limit, lowered
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "huge.png")
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "large.png")  # within twice it: PIL only warns
    for image in ("huge.png", "large.png"):
        with pytest.raises(UserError, match="too large"):
            read_image(str(tmp_path / image))


@pytest.mark.parametrize("change,expected", [
    (lambda state: state.pop("preprocessing"), "lacks preprocessing"),
    (lambda state: state["config"]["model"].update(name="${oc.env:HOME}"), "interpolation"),
])
def test_an_altered_checkpoint_is_refused_when_loaded(tiny_root, tmp_path, change, expected):
    from lenet_exp.checkpoints import load_checkpoint

    train(compose(*fast_overrides(tiny_root)), run_dir=tmp_path / "run")
    path = tmp_path / "run" / "checkpoints" / "best.pt"
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path)


@pytest.mark.long
def test_a_run_owns_its_folder_while_it_runs(tiny_root, tmp_path):
    run_dir = tmp_path / "run"
    first = start([*fast_overrides(tiny_root), "trainer.epochs=30", "trainer.batch_size=8", "trainer.log_images=false",
                   f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoints" / "last.pt").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.1)
        saved = (run_dir / ".hydra" / "overrides.yaml").read_bytes()
        signal_group(first, signal.SIGSTOP)  # paused, it still owns the folder, and spends no CPU meanwhile
        for second in ([*fast_overrides(tiny_root), "optimizer.lr=0.5", f"hydra.run.dir={run_dir}"], [f"resume={run_dir}"]):
            result = run_main(second, cwd=tmp_path)
            assert result.returncode != 0 and "Traceback" not in result.stderr
            assert "holds a run with another config" in result.stderr or f"in use by another run (pid {first.pid})" in result.stderr
        assert f"in use by another run (pid {first.pid})" in result.stderr  # the same config: refused all the same
        assert (run_dir / ".hydra" / "overrides.yaml").read_bytes() == saved and first.poll() is None
    finally:
        signal_group(first, signal.SIGTERM)
        signal_group(first, signal.SIGCONT)  # it takes the SIGTERM as it goes on
        first.communicate(timeout=120)
    assert first.returncode == 143  # interrupted as usual, and resumable
    assert read_json(run_dir / "metrics.json")["status"] == "interrupted"
    assert own_folder(run_dir) is None  # free again once it has ended
    release_folder(run_dir)


def test_a_lock_file_deleted_as_its_holder_lets_go_is_not_held(tmp_path, monkeypatch):
    """A run that made its folder's .lock deletes it as it lets go: a process that had opened that file just
    before then locked a file no longer in the folder, and a third process took the folder beside it."""
    import fcntl

    from lenet_exp import files

    folder, taken, flock = tmp_path / "run", [], fcntl.flock

    def let_go_meanwhile(lock, operation):  # the holder deletes the file it held, between our open and our lock
        if not taken:
            taken.append(True)
            (folder / files.LOCK_FILE).unlink()
        flock(lock, operation)

    monkeypatch.setattr(fcntl, "flock", let_go_meanwhile)
    folder.mkdir()
    (folder / files.LOCK_FILE).write_text("pid 1")
    try:
        assert own_folder(folder) is None and taken
        monkeypatch.undo()
        third = subprocess.run([sys.executable, "-c", "import sys; from lenet_exp.files import own_folder; "
                                "print(own_folder(sys.argv[1]))", str(folder)], capture_output=True, text=True)
        assert third.returncode == 0 and third.stdout.strip() == f"pid {os.getpid()}", third.stdout + third.stderr
    finally:
        release_folder(folder)


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare(1)")
def test_a_job_in_a_pid_namespace_that_sees_the_machines_proc_does_not_take_its_run_py_for_gone():
    """A sandbox with a pid namespace of its own and the machine's /proc (`unshare --pid --fork`): a
    submitit_local job looked its controller's pid up there, found another process's parent, and every job
    stopped at once for "the exit of the sweep's run.py (pid 1)"."""
    job = "from lenet_exp.launch import launcher_gone; print(launcher_gone(1))"  # run.py is pid 1 there
    controller = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {job!r}])"
    run_py = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {controller!r}])"
    result = subprocess.run(["unshare", "--pid", "--fork", sys.executable, "-c", run_py], capture_output=True,
                            text=True, timeout=60)
    if result.returncode and "Operation not permitted" in result.stderr:
        pytest.skip("no permission for a pid namespace here")
    assert result.stdout.strip() == "False", result.stdout + result.stderr[-2000:]


def test_a_file_system_without_locks_is_named_as_such(fast, tmp_path, monkeypatch):
    """NFS without its lock service: flock fails with ENOLCK, which ended the run with "could not check the
    output folder … OSError: [Errno 37] No locks available" and nothing on what to do."""
    import errno
    import fcntl

    def no_locks(lock, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    result = run_main([*fast, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert (f"Error: {tmp_path / 'run'} is on a file system that gives no file locks (No locks available), and a "
            f"lock keeps a folder to one run at a time. Write the outputs to a local disk") in result.stderr, \
        result.stderr[-2000:]


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare(1)")
def test_a_folder_held_from_another_pid_namespace_is_seen_held_and_its_holder_named_by_its_pid_here(tmp_path):
    """A container's run in a folder shared with this machine: its lock file names its pid there (pid 1, say),
    which this machine's lock table does not list, so the sweep's summary took its running jobs for jobs not
    started, and a refusal named this machine's pid 1."""
    from lenet_exp.files import folder_holder

    folder = tmp_path / "run"
    holder = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", sys.executable, "-c",
                               "import sys; from lenet_exp.files import own_folder; "
                               "print(own_folder(sys.argv[1]), flush=True); sys.stdin.read()", str(folder)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        taken = holder.stdout.readline().strip()
        if taken != "None" and "Operation not permitted" in holder.stderr.read():
            pytest.skip("no permission for a pid namespace here")
        assert taken == "None" and (folder / ".lock").read_text() == "pid 1"  # the namespace's first process
        python = next(int(child) for child in Path(f"/proc/{holder.pid}/task/{holder.pid}/children").read_text()
                      .split())  # unshare's forked child runs python: its pid here
        assert folder_holder(folder) == own_folder(folder) == f"pid {python}"
    finally:
        holder.kill()  # and with it its child (--kill-child)
        holder.wait()
    deadline = time.monotonic() + 10
    while folder_holder(folder) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert folder_holder(folder) is None and own_folder(folder) is None
    release_folder(folder)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_as_run_py_imports_hydra_ends_it_without_a_traceback(tmp_path, signum):
    """Before run.py had handlers of its own, a Ctrl-C raised in Hydra's imports (a traceback through omegaconf)
    and a SIGTERM ended it without a word (helper chaos56). -X importtime shows where the imports are: the signal
    comes once omegaconf is imported, in the midst of Hydra's."""
    process = subprocess.Popen([sys.executable, "-X", "importtime", str(RUN_PY), "trainer.epochs=1"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=as_a_new_command)
    imported = (line.split("|")[-1].strip() for line in process.stderr)  # "import time: 376 | 68743 |   omegaconf"
    assert "omegaconf" in imported  # read up to it
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum and "Traceback" not in stderr, stderr[-3000:]
    assert f"Stopped by signal {signum} as run.py started: nothing was run or written.\n" in stderr
    assert not (tmp_path / "outputs").exists()


def test_a_hang_up_as_run_py_starts_ends_it_as_one_though_its_terminal_is_gone(tmp_path):
    """A closed terminal hangs up and takes no more output: the line that says so failed, and its OSError, raised
    in the midst of an import, ended run.py with 1 (review56). Importing run.py as a module leaves its importer's
    handlers as they were (a notebook's Ctrl-C ended the interpreter)."""
    process = subprocess.Popen([sys.executable, "-X", "importtime", str(RUN_PY), "trainer.epochs=1"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=as_a_new_command)
    imported = (line.split("|")[-1].strip() for line in process.stderr)
    assert "omegaconf" in imported
    process.stderr.close()  # the terminal is gone
    process.send_signal(signal.SIGHUP)
    assert process.wait(timeout=60) == 128 + signal.SIGHUP and not (tmp_path / "outputs").exists()
    imported_as_a_module = subprocess.run(
        [sys.executable, "-c", f"import signal, sys; sys.argv = ['run.py']; sys.path.insert(0, {str(RUN_PY.parent)!r}); "
                               f"import run; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, preexec_fn=as_a_new_command)
    assert imported_as_a_module.stdout.strip() == "True", imported_as_a_module.stderr[-2000:]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_start_up_stops_cleanly_with_a_status(tiny_root, tmp_path, signum):
    run_dir = tmp_path / "run"
    process = start([*fast_overrides(tiny_root), f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    log = run_dir / "run.log"
    while not (log.exists() and "Run in" in log.read_text()):  # the task's first line: its start-up begins
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    time.sleep(0.3)  # importing torch (2-3 s)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum and "Traceback" not in stderr, stderr[-3000:]
    assert (f"Interrupted by signal {signum} before the run could save its state; no checkpoint was written yet, so "
            f"running the same command again starts over.") in stderr, stderr[-3000:]
    assert read_json(run_dir / "metrics.json")["status"] == "interrupted"
    again = run_main([f"resume={run_dir}"], cwd=tmp_path)  # and it starts over
    assert again.returncode == 0 and read_json(run_dir / "metrics.json")["status"] == "completed", again.stderr
    # one with a checkpoint is continued from it, not started over by the same command, which names a new folder
    # (it said "running the same command again starts over, or resumes from its last checkpoint if it has one")
    process = start([f"resume={run_dir}", "trainer.epochs=2"], cwd=tmp_path)  # trained on
    while log.read_text().count("Run in") < 3:
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    time.sleep(0.3)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum and "Traceback" not in stderr, stderr[-3000:]
    assert (f"Interrupted by signal {signum} before the run could save its state; its last checkpoint stays. Continue "
            f"with `python run.py resume={run_dir}") in stderr, stderr[-3000:]


def test_a_signal_during_the_imports_is_held_until_they_are_done():
    """torch's C start-up would take a stop raised while it imports numpy for numpy's absence, and go on
    half-imported; a run's imports hold the first signal instead, and stop once they are done."""
    done = []
    with pytest.raises(Stopped) as stopped:
        with stops_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs in here
            done.append("imports")
    assert done == ["imports"] and stopped.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # as before


def test_the_imports_hold_the_signals_that_the_run_takes_over_and_leave_an_ignored_hang_up_ignored():
    """nohup's ignored SIGHUP stays ignored, as the run leaves it; an ignored SIGTERM, which the run takes
    over once it trains, is held through the imports too (it was left ignored there)."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with pytest.raises(Stopped) as stopped:
            with stops_held():
                os.kill(os.getpid(), signal.SIGHUP)
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handlers run in here
        assert stopped.value.signum == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is signal.getsignal(signal.SIGHUP) is signal.SIG_IGN  # as before
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_a_second_signal_during_the_imports_stops_at_once():
    done = []
    with pytest.raises(Stopped) as stopped:
        with stops_held():
            for _ in range(2):  # SIGTERM: a suite started in the background ignores SIGINT
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(ECHO_S + 0.05)
            done.append("imports")
    assert done == [] and stopped.value.signum == signal.SIGTERM


def test_while_records_are_written_a_second_stop_waits_for_their_end_and_a_third_does_not():
    written = []
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)  # the first: a request, as ever
        time.sleep(ECHO_S + 0.05)
        with pytest.raises(Stopped) as stopped:
            with stop.records_kept_whole():
                as_timeout_sends_it()  # the second: held, and its echo is no third
                written.append("records")
        assert written == ["records"] and stopped.value.signum == signal.SIGTERM
        with pytest.raises(Stopped):
            with stop.records_kept_whole():
                for _ in range(2):
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(ECHO_S + 0.05)
                written.append("never")  # the third stops at once
    assert written == ["records"]


def as_timeout_sends_it() -> None:
    """One stop request as timeout(1) sends it: to its command, then to the command's process group (this
    process in both). Each handler runs as its os.kill returns, so the second one sees the first's flag."""
    for _ in range(2):
        os.kill(os.getpid(), signal.SIGTERM)


def test_one_request_that_arrives_twice_is_one_request_and_a_later_one_stops_at_once(monkeypatch):
    """timeout -s INT stopped a joblib sweep's run.py at once, without its summary, when its signal's two
    copies came far enough apart for two handlers to run (about 2 in 3 times)."""
    done = []
    with pytest.raises(Stopped):
        with stops_held():
            as_timeout_sends_it()
            done.append("imports")
    assert done == ["imports"]

    with StopSignals() as stop:
        as_timeout_sends_it()
        assert stop.requested() and stop.signal == signal.SIGTERM  # no KeyboardInterrupt: one request
        time.sleep(ECHO_S)
        with pytest.raises(KeyboardInterrupt) as stopped:
            os.kill(os.getpid(), signal.SIGTERM)
    # said as the signal it was: a second SIGTERM was reported as "signal 2" and ended with 130, not 143
    assert stopped.value.signum == signal.SIGTERM

    monkeypatch.setenv(STOP_FILE_VARIABLE, "")  # collect_stopped_jobs sets its own, taken away after the test
    handlers = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    try:
        collect_stopped_jobs()  # a parallel sweep's run.py: a first request asks its jobs to stop
        as_timeout_sends_it()
        assert Path(os.environ[STOP_FILE_VARIABLE]).read_text() == str(int(signal.SIGTERM))
        time.sleep(ECHO_S)
        with pytest.raises(Stopped):
            os.kill(os.getpid(), signal.SIGTERM)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        Path(os.environ[STOP_FILE_VARIABLE]).unlink(missing_ok=True)


def test_a_killed_writes_temporary_file_is_removed_when_the_run_continues(killed_run, tiny_root):
    leftover = killed_run / "checkpoints" / ".last.pt.x1y2z3.tmp"  # what SIGKILL during a checkpoint write leaves
    leftover.write_bytes(b"half a checkpoint")
    assert train(compose(*fast_overrides(tiny_root), "trainer.epochs=2"), run_dir=killed_run)["status"] == "completed"
    assert not leftover.exists()


def test_a_file_where_the_checkpoints_folder_should_be_is_named_and_the_rerun_shows_each_epoch_once(fast, tmp_path):
    """The first checkpoint cannot be written: a short error that names the file in the way (it was a
    traceback), and once it is moved away the same command trains from the start, its earlier attempt's
    epoch points gone from TensorBoard (they showed twice)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoints").write_text("in the way")
    command = [*fast, "trainer.epochs=2", f"hydra.run.dir={run_dir}"]
    failed = run_main(command, cwd=tmp_path)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr[-2000:]
    assert f"{run_dir / 'checkpoints'} is a file where a folder should be: move it away" in failed.stderr
    assert read_json(run_dir / "metrics.json")["status"] == "failed"
    assert scalar_values(load_events(run_dir), "val/acc").keys() == {1}  # the epoch it trained before failing
    (run_dir / "checkpoints").unlink()
    again = run_main(command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    history = read_json(run_dir / "metrics.json")["history"]
    steps = [event.step for event in load_events(run_dir).Scalars("val/acc")]
    assert steps == [1, 2] and [row["epoch"] for row in history] == [1, 2]


def test_a_run_whose_folder_is_deleted_while_it_trains_says_so_and_trains_anew(fast, tmp_path, monkeypatch):
    """TensorBoard's writer met its file gone: a traceback of its thread's, ending in FileNotFoundError."""
    from lenet_exp.loop import Run

    end_epoch = Run.end_epoch

    def deleted_in_epoch_1(self, parts, state, tb, epoch, *args):
        if epoch == 1:
            shutil.rmtree(self.dir)
        return end_epoch(self, parts, state, tb, epoch, *args)

    run_dir = tmp_path / "run"
    monkeypatch.setattr(Run, "end_epoch", deleted_in_epoch_1)
    deleted = run_main([*fast, "trainer.epochs=2", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    errors = [line for line in deleted.stderr.splitlines() if line.startswith("Error:")]
    assert deleted.returncode == 1 and "Traceback" not in deleted.stderr, deleted.stderr[-2000:]
    assert len(errors) == 1 and re.fullmatch(rf"Error: {re.escape(str(run_dir))}/events\.out\.tfevents\.\S+ went "
                                             rf"missing while the run wrote it: was {re.escape(str(run_dir))}, or a "
                                             r"file in it, deleted or moved meanwhile\? Run the same command again\.",
                                             errors[0]), errors
    monkeypatch.undo()
    again = run_main([*fast, "trainer.epochs=2", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert again.returncode == 0 and read_json(run_dir / "metrics.json")["epochs_done"] == 2, again.stderr[-2000:]


def test_a_joblib_worker_ignores_ctrl_c_between_its_jobs_and_its_next_job_takes_it_back(monkeypatch):
    """A terminal's second Ctrl-C reached an idle worker (its job stopped) as a KeyboardInterrupt in joblib's
    loop: a traceback, and about 1 in 3 times the sweep ended "out of memory, killed, or crashed"."""
    from lenet_exp import launch

    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        monkeypatch.delenv(launch.LAUNCHER_PID_VARIABLE, raising=False)  # run.py itself: Ctrl-C is its own
        launch.ignore_ctrl_c_between_jobs()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        monkeypatch.setenv(launch.LAUNCHER_PID_VARIABLE, "1")  # a worker of another process's run.py
        launch.ignore_ctrl_c_between_jobs()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        launch.take_ctrl_c_back()  # its next job
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        # a process started with Ctrl-C ignored (a shell's background job) keeps it ignored
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        launch.ignore_ctrl_c_between_jobs()
        launch.take_ctrl_c_back()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_figure_workers_that_cannot_start_leave_the_figures_to_be_drawn_in_place():
    """Out of file handles (ulimit -n) a stacked group's figure pool failed as it started, and the group with it,
    or waited for ever (helper limits55): it draws its figures in place instead."""
    code = textwrap.dedent("""
        import os, resource, sys
        import matplotlib.backends.backend_agg, matplotlib.figure
        from lenet_exp.figures import FigureWorkers
        allowed = len(os.listdir("/proc/self/fd")) + 10  # pipes and locks for some of a pool, not all of it
        resource.setrlimit(resource.RLIMIT_NOFILE, (allowed, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        workers = FigureWorkers(4)
        print(workers.pool is None)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout.strip()) == (0, "True"), result.stderr[-2000:]
    assert "No figure workers (OSError: [Errno 24] Too many open files): the figures are drawn here instead." \
        in result.stderr


def test_a_stop_signal_as_the_figure_workers_are_forked_is_not_lost():
    """A Ctrl-C that landed as a stacked group forked its figure workers raised in an at-fork hook (logging's),
    where Python drops an exception ("Exception ignored in: <function _releaseLock>"): the group trained on to
    the end and exited 0 (helper chaos56). It is held until the forks are done, then raised; no worker is left. The
    process has other threads, as a stacked group's second one has (the kernel may hand the signal to any)."""
    code = textwrap.dedent("""
        import multiprocessing, os, signal, threading, time
        from lenet_exp.figures import FigureWorkers
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        armed = [True]
        def stop_as_it_forks():  # the signal lands just as the first worker is forked
            if armed:
                armed.clear()
                os.kill(os.getpid(), signal.SIGINT)
        os.register_at_fork(after_in_parent=stop_as_it_forks)
        try:
            FigureWorkers(2)
        except KeyboardInterrupt:
            deadline = time.monotonic() + 10
            while multiprocessing.active_children() and time.monotonic() < deadline:
                time.sleep(0.05)
            print("stopped,", len(multiprocessing.active_children()), "workers left", flush=True)
        else:
            print("trained on", flush=True)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            preexec_fn=as_a_new_command)
    assert (result.returncode, result.stdout.strip()) == (0, "stopped, 0 workers left"), result.stderr[-2000:]
    assert "Exception ignored" not in result.stderr, result.stderr[-2000:]


def test_running_out_of_memory_while_reading_the_data_is_said_so_not_blamed_on_the_file(tmp_path):
    """Under an address-space limit (ulimit -v) an intact file was "corrupted or truncated (MemoryError: bad
    header)" (helper limits55)."""
    write_dataset(tmp_path, "MNIST", n_train=60000, n_test=10)  # 47 MB of images to read
    code = textwrap.dedent(f"""
        import resource
        from omegaconf import OmegaConf
        from lenet_exp.data import read_split
        from lenet_exp.errors import UserError
        size = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (size * 1024 + 30 * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))
        try:
            read_split(OmegaConf.create({{"name": "mnist", "torchvision_class": "MNIST", "root": {str(tmp_path)!r},
                                         "download": False}}), train=True)
        except UserError as error:
            print(error)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("Out of memory reading the train IDX files of mnist (MemoryError): free some "
                                    "memory, or raise this process's limit (ulimit -v)."), result.stdout + result.stderr


@pytest.mark.parametrize("kib, model, said", [
    (100, ["model.conv_channels=[2,4]", "model.hidden=[8,8]", "trainer.log_images=true"],  # events: first past it
     "Cannot write the files of {run} (OSError: [Errno 27] File too large): raise the file size limit (ulimit -f, "
     "now 100 KiB), then run the same command again to continue."),
    (500, [], "Cannot write {run}/checkpoints/last.pt (File too large). It is over a limit of this process: raise "
              "the file size limit (ulimit -f, now 500 KiB), then run the same command again"),
], ids=["events", "checkpoint"])
def test_a_write_past_the_file_size_limit_says_which_limit_without_a_traceback(fast, tmp_path, kib, model, said):
    """ulimit -f (Python ignores SIGXFSZ, so the write fails with EFBIG): TensorBoard's write was a traceback, and a
    checkpoint's said "Check that disk" (helper limits55)."""
    limited = (f"import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({kib * 1024}, "
               f"resource.RLIM_INFINITY)); sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    result = run_cli(["-c", limited, str(RUN_PY), *fast, "trainer.epochs=2", *model, "hydra.run.dir=run"],
                     cwd=tmp_path, script=None)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert said.format(run=tmp_path / "run") in result.stderr
