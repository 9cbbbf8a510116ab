"""The Python entry point (compose + train, as a notebook calls it) and trainer.limit_batches."""

from __future__ import annotations

import math
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch
from omegaconf import OmegaConf

from conftest import RUN_PY, fast_overrides, run_main
from tensorboard_events import load_events, session_status
import lenet_exp
from lenet_exp import compose, train
from lenet_exp.errors import ConfigError, UserError
from lenet_exp.files import CannotWrite, read_json


def test_train_returns_the_metrics_of_a_complete_run_directory(tiny_root, tmp_path):
    cfg = compose(*fast_overrides(tiny_root), "trainer.epochs=2", "optimizer.lr=3e-3")
    rows = []

    def on_epoch_end(row: dict) -> None:  # a notebook's live plot: each epoch's row, its checkpoint written
        last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
        rows.append({**row, "saved": last["run_state"]["epoch"]})

    metrics = train(cfg, run_dir=tmp_path / "run", on_epoch_end=on_epoch_end)
    assert metrics == read_json(tmp_path / "run" / "metrics.json")
    assert rows == [{**row, "saved": row["epoch"]} for row in metrics["history"]]
    assert metrics["status"] == "completed" and metrics["epochs_done"] == 2
    assert metrics["config"]["optimizer"]["lr"] == 3e-3 and 0.5 < metrics["test"]["acc"] <= 1
    assert {p.name for p in (tmp_path / "run" / "checkpoints").iterdir()} == {"last.pt", "best.pt"}
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))
    # the same config into the same directory is done already: skipped, the record untouched
    before = (tmp_path / "run" / "metrics.json").read_bytes()
    assert train(cfg, run_dir=tmp_path / "run") == metrics
    assert (tmp_path / "run" / "metrics.json").read_bytes() == before


def test_a_script_that_sets_up_no_logging_sees_the_epochs_and_gets_run_log(tiny_root, tmp_path):
    """In a fresh interpreter, as a notebook or script calls it: train() said nothing until it returned, and
    its folder had no run.log."""
    def script(run_dir: str, logging_setup: str = "") -> list[str]:
        return [sys.executable, "-c", f"{logging_setup}from lenet_exp import compose, train; train(compose("
                f"*{fast_overrides(tiny_root)!r}, 'trainer.epochs=2'), run_dir={str(tmp_path / run_dir)!r})"]

    result = subprocess.run(script("run"), capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "epoch 2/2  train loss" in result.stderr and "Done: best val acc" in result.stderr
    log_lines = (tmp_path / "run" / "run.log").read_text().splitlines()
    assert any("[lenet_exp.loop][INFO] - epoch 2/2" in line for line in log_lines)
    resumed = run_main([f"resume={tmp_path / 'run'}"], cwd=tmp_path)  # no command line to replay: where to go on
    assert resumed.returncode == 1 and "is a run started from Python (train()" in resumed.stderr, resumed.stderr
    # logging of one's own at WARNING: no epoch lines on the console, and all of them in run.log all the same
    quiet = subprocess.run(script("quiet", "import logging; logging.basicConfig(); "), capture_output=True, text=True,
                           cwd=tmp_path, timeout=300)
    assert quiet.returncode == 0 and "epoch" not in quiet.stderr, quiet.stderr[-2000:]
    assert "[INFO] - epoch 2/2" in (tmp_path / "quiet" / "run.log").read_text()
    # logging set up by logging.config after importing us, which disables the loggers that exist (its
    # default): still every line in run.log (it had none), and none on the console, as the caller chose
    set_up_after_import = ("import logging.config, lenet_exp.loop; logging.config.dictConfig({'version': 1, "
                           "'handlers': {'console': {'class': 'logging.StreamHandler'}}, "
                           "'root': {'level': 'INFO', 'handlers': ['console']}}); ")
    configured = subprocess.run(script("configured", set_up_after_import), capture_output=True, text=True,
                                cwd=tmp_path, timeout=300)
    assert configured.returncode == 0 and "epoch" not in configured.stderr, configured.stderr[-2000:]
    assert "[INFO] - epoch 2/2" in (tmp_path / "configured" / "run.log").read_text()


def test_a_train_after_run_py_in_the_same_process_writes_no_line_into_that_runs_log(tiny_root, tmp_path):
    """run.py's logging stays on the root logger after its run (Hydra set it up): a train() after it in the same
    process (a notebook's %run run.py) wrote its lines into the earlier run's run.log too."""
    first, second = tmp_path / "first", tmp_path / "second"
    code = (f"import runpy, sys\nsys.argv = ['run.py', *{fast_overrides(tiny_root)!r}, 'hydra.run.dir={first}']\n"
            f"try:\n    runpy.run_path({str(RUN_PY)!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
            f"from lenet_exp import compose, train\n"
            f"train(compose(*{fast_overrides(tiny_root)!r}, 'seed=1'), run_dir={str(second)!r})\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Artifacts in {second}" in result.stderr  # the console's handler still shows it
    assert f"Artifacts in {second}" in (second / "run.log").read_text()
    assert str(second) not in (first / "run.log").read_text()


def test_trains_in_a_loop_get_a_run_directory_each(tiny_root, tmp_path, monkeypatch):
    """A notebook's loop starts runs within a second of each other: each gets its own outputs/runs/… folder
    (named to the second, the second run found the first's there and refused its other seed)."""
    monkeypatch.chdir(tmp_path)
    seeds = [train(compose(*fast_overrides(tiny_root), "trainer.epochs=1", f"seed={seed}"))["seed"] for seed in (0, 1)]
    runs = sorted((tmp_path / "outputs" / "runs").glob("*/*"))
    assert seeds == [0, 1] and [read_json(run / "metrics.json")["seed"] for run in runs] == [0, 1]
    assert all(re.fullmatch(r"\d\d-\d\d-\d\d-\d{6}", run.name) for run in runs)  # as run.py names them


def test_train_raises_a_user_error_for_bad_input(tiny_root, tmp_path):
    # said as from Python: not "Fix it on the command line, e.g. `python run.py optimizer.lr=...`"
    with pytest.raises(ConfigError, match=r"^Invalid config value optimizer.lr=0.0: .*\. Compose it with another "
                                          r"value, e.g. compose\('optimizer.lr=\.\.\.'\)\.$"):
        train(compose(*fast_overrides(tiny_root), "optimizer.lr=0"), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything was written
    with pytest.raises(UserError, match=re.escape("Invalid config value trainer.epochs='one': expected an integer. "
                                                  "Compose it with another value, e.g. compose('trainer.epochs=...').")):
        compose("trainer.epochs=one")  # as compose() composes it: it too said to fix the command line
    # one that only the run can check (the data's size), recorded in its metrics.json as raised
    with pytest.raises(ConfigError, match=re.escape("compose('dataset.val_size=...')")) as raised:
        train(compose(*fast_overrides(tiny_root), "dataset.val_size=600"), run_dir=tmp_path / "big")
    assert read_json(tmp_path / "big" / "metrics.json")["message"] == str(raised.value)
    with pytest.raises(UserError, match=re.escape("train() trains, and this config has task=eval")):
        train(compose(*fast_overrides(tiny_root), "task=eval", "ckpt=best.pt"), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(UserError, match=re.escape("compose('resume=outputs/runs/a'): resume= is run.py's")):
        compose("resume=outputs/runs/a")
    # not compose()'s config: an AttributeError or omegaconf's "Missing key device", with a traceback
    for cfg, what in (({"task": "train"}, "a dict"), (OmegaConf.create({"task": "train", "trainer": {"epochs": 1}}),
                                                      "a config without model, dataset, optimizer, …")):
        with pytest.raises(UserError, match=re.escape(f"train() takes the config that compose() returns, not {what}")):
            train(cfg, run_dir=tmp_path / "run")
    # a run's .hydra/config.yaml, loaded: every key, no types ("dataset='mnist' (it has no schema)" blamed the YAML)
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(compose(*fast_overrides(tiny_root))))
    with pytest.raises(UserError, match=re.escape("train() takes the config that compose() returns, not one loaded "
                                                  "from a file or made of a dict (which has no types to check it by): "
                                                  "compose a run's overrides again, compose(*OmegaConf.load(")):
        train(OmegaConf.load(tmp_path / "config.yaml"), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    (tmp_path / "overrides.yaml").write_text(OmegaConf.to_yaml(["seed=3", "optimizer=sgd"]))
    assert compose(*OmegaConf.load(tmp_path / "overrides.yaml")).optimizer.momentum == 0.9  # sgd, as the message says
    (tmp_path / "a_file").write_text("mine")  # run.py's callback says so; train() raised FileExistsError
    with pytest.raises(UserError, match=re.escape(f"{tmp_path / 'a_file'} is a file where a folder should be")):
        train(compose(*fast_overrides(tiny_root)), run_dir=tmp_path / "a_file")
    assert (tmp_path / "a_file").read_text() == "mine"
    # an empty folder name went to outputs/runs/…; an empty override was told as " cannot be read as an override"
    with pytest.raises(UserError, match=re.escape("train(run_dir='') names no folder")):
        train(compose(*fast_overrides(tiny_root)), run_dir="")
    with pytest.raises(UserError, match=re.escape("compose('') is an empty override: leave it out")):
        compose("")


def test_train_into_a_folder_of_something_else_is_refused(tiny_root, tmp_path):
    """run.py refuses these before Hydra writes; train() wrote its metrics.json over an evaluation's, and a run
    into a sweep's folder (which TensorBoard then showed as one more run of the sweep)."""
    cfg = compose(*fast_overrides(tiny_root))
    trained = tmp_path / "trained"
    train(cfg, run_dir=trained)
    evaluation = run_main([*fast_overrides(tiny_root), "task=eval", f"ckpt={trained / 'checkpoints' / 'best.pt'}",
                           f"hydra.run.dir={tmp_path / 'eval'}"], cwd=tmp_path)
    sweep = run_main(["-m", *fast_overrides(tiny_root), "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path)
    assert evaluation.returncode == 0 and sweep.returncode == 0
    for folder, what in ((tmp_path / "eval", "a task=eval run"), (tmp_path / "sweep", "a sweep (multirun.yaml)")):
        before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
        with pytest.raises(UserError, match=re.escape(f"{folder} holds {what}")):
            train(cfg, run_dir=folder)
        assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before
    # inside another run's or sweep's folder (their TensorBoard and summary would take it in), or where a file of
    # the run's links elsewhere (it wrote there): refused as run.py refuses them
    for inside, what in ((tmp_path / "eval" / "sub", f"the run folder {tmp_path / 'eval'}"),
                         (tmp_path / "sweep" / "new", f"the sweep folder {tmp_path / 'sweep'}")):
        with pytest.raises(UserError, match=re.escape(f"{inside} is inside {what}: a run needs a folder of its own.")):
            train(cfg, run_dir=inside)
        assert not inside.exists()
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "run.log").symlink_to(tmp_path / "elsewhere.log")
    with pytest.raises(UserError, match=re.escape(f"{linked / 'run.log'} is a symbolic link (to ")):
        train(cfg, run_dir=linked)
    assert not (tmp_path / "elsewhere.log").exists()
    # another program's metrics.json: both wrote theirs over it
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.json").write_text('{"acc": 0.9, "model": "resnet18"}')
    message = (f"{mine / 'metrics.json'} is no lenet_exp run's record (it names no task), and a run in {mine} would "
               f"write over it. Choose a new output directory, or move that file away.")
    with pytest.raises(UserError, match=re.escape(message)):
        train(cfg, run_dir=mine)
    assert [path.name for path in mine.iterdir()] == ["metrics.json"]  # and no lock file of ours
    refused = run_main([*fast_overrides(tiny_root), f"hydra.run.dir={mine}"], cwd=tmp_path)
    assert refused.returncode == 1 and refused.stderr.strip().splitlines()[-1] == f"Error: {message}", refused.stderr
    assert (mine / "metrics.json").read_text() == '{"acc": 0.9, "model": "resnet18"}'
    assert not (mine / ".hydra").exists()


@pytest.mark.parametrize("override, message", [
    ("trainer.epoch=3", "trainer.epoch is not a setting (did you mean trainer.epochs?)"),
    ("model=lenet6", "model=lenet6 is not an option of model (did you mean lenet5?)"),
    ("~seed", "~seed deletes seed, which every run has"),  # these two compose: run.py refuses them in a callback
    ("model=[lenet5,lenet5_classic]", "model=[lenet5,lenet5_classic] merges those options into one model"),
    ("trainer.deterministic=2", "trainer.deterministic=2: expected true or false"),  # omegaconf: true
])
def test_compose_raises_run_pys_message_for_a_typo(override, message):
    with pytest.raises(UserError, match=re.escape(message)):
        compose(override)


def test_compose_takes_a_list_as_hydras_compose_does_and_refuses_a_shell_line():
    assert compose(["optimizer.lr=3e-3", "seed=2"]) == compose("optimizer.lr=3e-3", "seed=2")
    assert compose(["seed=2"]).seed == 2
    with pytest.raises(UserError, match=re.escape("compose('optimizer.lr=3e-3 seed=2') holds 2 overrides: give each "
                                                  "as a string of its own, compose('optimizer.lr=3e-3', 'seed=2').")):
        compose("optimizer.lr=3e-3 seed=2")
    job = "/My Drive/sweeps/3_optimizer.lr=0.003,seed=1/checkpoints/best.pt"  # one path, with a space and '='
    assert compose("task=eval", f"ckpt={job}").ckpt == job
    with pytest.raises(TypeError, match=re.escape("compose() takes overrides as strings such as 'optimizer.lr=1e-3', "
                                                  "not 0.003.")):
        compose(3e-3)


def test_compose_refuses_a_sweeps_values_and_hydras_settings():
    """A range was Hydra's exception ("requires --multirun"); hydra.run.dir= was taken, and train() wrote
    elsewhere."""
    with pytest.raises(UserError, match=re.escape("compose('seed=range(0,3)') gives several values, and a config "
                                                  "has one of each")):
        compose("seed=range(0,3)")
    with pytest.raises(UserError, match=re.escape("compose('optimizer.lr=1e-3,1e-2') gives several values, and a "
                                                  "config has one of each")):  # "add -m", said to run.py's users
        compose("optimizer.lr=1e-3,1e-2")
    with pytest.raises(UserError, match=re.escape("compose('sweep=seeds') names a sweep's search space, and compose() "
                                                  "gives one config: sweep with `python run.py -m sweep=seeds`")):
        compose("sweep=seeds")  # it composed, and left the sweep out without a word
    for override in ("hydra.run.dir=/tmp/wanted", "hydra/launcher=stacked"):
        with pytest.raises(UserError, match=re.escape(f"compose({override!r}): Hydra's own settings are run.py's")):
            compose(override)


def test_compose_without_the_configs_says_where_it_looked(tmp_path, monkeypatch):
    """`pip install .` leaves configs/ in the checkout."""
    monkeypatch.setattr(lenet_exp, "CONFIGS", tmp_path / "configs")
    with pytest.raises(UserError, match=re.escape(f"compose() found no config.yaml in {tmp_path / 'configs'}: pass "
                                                  f"config_dir=")):
        compose()


def test_compose_takes_a_folder_of_ones_own_options_as_run_pys_config_dir_does(tmp_path):
    """It took only a whole copy of configs/ ("found no config.yaml … install the checkout with pip install -e"),
    so a run of `python run.py --config-dir mine optimizer=rmsprop` could not be composed again."""
    (tmp_path / "mine" / "optimizer").mkdir(parents=True)
    (tmp_path / "mine" / "optimizer" / "rmsprop.yaml").write_text("_target_: torch.optim.RMSprop\nlr: 0.002\n")
    cfg = compose("optimizer=rmsprop", "trainer.epochs=2", config_dir=tmp_path / "mine")
    assert cfg.optimizer._target_ == "torch.optim.RMSprop" and cfg.trainer.epochs == 2 and cfg.model.name == "lenet5"
    with pytest.raises(UserError, match=re.escape("optimizer=rmsprp is not an option of optimizer (did you mean "
                                                  "rmsprop?): choose one of adam, adamw, rmsprop, sgd.")):
        compose("optimizer=rmsprp", config_dir=tmp_path / "mine")
    with pytest.raises(UserError, match=re.escape(f"compose(config_dir='{tmp_path / 'nope'}'): no such folder.")):
        compose(config_dir=tmp_path / "nope")
    with pytest.raises(TypeError, match=re.escape("compose() takes config_dir as a path (a str or pathlib.Path), "
                                                  "not 123.")):  # Path()'s own TypeError before
        compose(config_dir=123)
    with pytest.raises(UserError, match=re.escape("compose(config_dir='') names no folder")):  # configs/ silently
        compose(config_dir="")



def test_compose_says_which_options_of_ones_own_are_not_read(tmp_path, caplog):
    """mine/optimizer/adam.yaml is configs/'s adam to Hydra: run.py --config-dir says so, compose() said nothing."""
    (tmp_path / "mine" / "optimizer").mkdir(parents=True)
    own = tmp_path / "mine" / "optimizer" / "adam.yaml"
    own.write_text("defaults:\n  - /schema_optimizer_adam@_here_\n  - _self_\n_target_: torch.optim.Adam\nlr: 0.5\n")
    with caplog.at_level("WARNING", logger="lenet_exp"):
        cfg = compose("optimizer=adam", config_dir=tmp_path / "mine")
    assert cfg.optimizer.lr == 0.001 and f"{own} is not read: {lenet_exp.CONFIGS / 'optimizer' / 'adam.yaml'}, first " \
        f"on Hydra's search path, has its name. Give yours another name, then choose it with optimizer=<that name>." \
        in caplog.text, caplog.text


def test_limit_batches_caps_train_val_and_test(tiny_root, tmp_path, monkeypatch):
    from lenet_exp import loop

    evaluated = []  # the images of each val and test pass, as the run's own evaluate returns them

    def counting(*args, **kwargs):
        result = evaluate(*args, **kwargs)
        evaluated.append(len(result.predictions))
        return result

    evaluate = loop.evaluate
    monkeypatch.setattr(loop, "evaluate", counting)
    rows = []
    cfg = compose(*fast_overrides(tiny_root), "trainer.limit_batches=3", "trainer.batch_size=16",
                  "trainer.eval_batch_size=10", "trainer.epochs=2")
    loop.Run(cfg, tmp_path / "run", on_epoch_end=rows.append).train()
    samples_per_epoch = [row["time/samples_per_s"] * row["time/epoch_s"] for row in rows]
    assert samples_per_epoch == pytest.approx([48, 48])  # 3 batches of 16, not 500 images
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert saved["optimizer"]["state"][0]["step"] == 6  # 3 optimizer steps per epoch
    assert evaluated == [30, 30, 30]  # val after each epoch, then test: 3 batches of 10, not 100 and 200 images


def test_limit_batches_caps_evaluation():
    from lenet_exp.data import Split
    from lenet_exp.engine import evaluate
    from lenet_exp.models.lenet5 import LeNet5

    split = Split(torch.randn(95, 1, 32, 32), torch.randint(0, 10, (95,)))
    assert len(evaluate(LeNet5(), split, 10, max_batches=3).predictions) == 30
    assert len(evaluate(LeNet5(), split, 10).predictions) == 95


def test_train_times_the_run_from_its_call_not_from_the_notebooks_start(tiny_root, tmp_path, monkeypatch):
    """A notebook's first train() counted the hours its process had been open as the run's start-up and wall
    time (run.py's first job counts its process's start, imports and all)."""
    from lenet_exp import record

    monkeypatch.setattr(record.Stopwatch, "jobs_in_process", 0)  # this process's first job
    monkeypatch.setattr(record, "_PROCESS_STARTED", record.time.perf_counter() - 3600)  # opened an hour ago
    metrics = train(compose(*fast_overrides(tiny_root)), run_dir=tmp_path / "run")
    assert metrics["status"] == "completed"
    assert metrics["wall_time_s"] < 600 and metrics["timings"]["startup_s"] < 600, metrics["timings"]
    assert metrics["timings"]["startup_s"] > metrics["timings"]["data_s"] > 0


def test_compose_within_a_hydra_of_ones_own_leaves_it_as_it_was(tmp_path):
    """In a @hydra.main app, or after a notebook's hydra.initialize(): compose() raised Hydra's "GlobalHydra is
    already initialized"."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    (tmp_path / "mine.yaml").write_text("width: 7\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        assert compose("seed=5").seed == 5
        assert hydra_compose("mine").width == 7  # the caller's own configs, still there
    assert not GlobalHydra.instance().is_initialized()


def test_a_train_that_raises_leaves_its_folder_saying_it_failed(tiny_root, tmp_path, monkeypatch):
    """As run.py's: train() raised and left metrics.json at "running" (or none at all, with no HParams row), so
    the folder looked like a run still going. (A folder it refuses stays as it was: test_train_into_a_folder_of_…)"""
    from lenet_exp.loop import Run

    missing = tmp_path / "nowhere"
    with pytest.raises(UserError, match="mnist is not in"):
        train(compose(*fast_overrides(tiny_root), f"dataset.root={missing}"), run_dir=tmp_path / "no_data")
    metrics = read_json(tmp_path / "no_data" / "metrics.json")
    assert metrics["status"] == "failed" and "mnist is not in" in metrics["message"]
    assert "Error: mnist is not in" in (tmp_path / "no_data" / "run.log").read_text()
    assert session_status(load_events(tmp_path / "no_data")) == "STATUS_FAILURE"  # HParams lists it, as a failure

    end_epoch = Run.end_epoch
    def failing_in_epoch_2(self, parts, state, tb, epoch, *rest):
        if epoch == 2:
            raise RuntimeError("a bug in epoch 2")
        return end_epoch(self, parts, state, tb, epoch, *rest)
    cfg = compose(*fast_overrides(tiny_root), "trainer.epochs=2")
    with monkeypatch.context() as patched:
        patched.setattr(Run, "end_epoch", failing_in_epoch_2)
        with pytest.raises(RuntimeError, match="a bug in epoch 2"):
            train(cfg, run_dir=tmp_path / "bug")
    failed = read_json(tmp_path / "bug" / "metrics.json")
    assert (failed["status"], failed["epochs_done"]) == ("failed", 1) and "a bug in epoch 2" in failed["message"]
    assert train(cfg, run_dir=tmp_path / "bug")["status"] == "completed"  # fixed: it goes on after epoch 1


def test_train_leaves_torchs_settings_as_it_found_them(tiny_root, tmp_path):
    """A notebook's own code after train() ran with the run's threads, and failed on any operation without a
    deterministic implementation (after trainer.deterministic=true)."""
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
              torch.backends.cudnn.deterministic, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    torch.set_num_threads(len(os.sched_getaffinity(0)) + 2)  # more than the run takes: its cores, at most
    try:
        metrics = train(compose(*fast_overrides(tiny_root), "trainer.deterministic=true"), run_dir=tmp_path / "run")
        assert metrics["status"] == "completed" and metrics["config"]["trainer"]["deterministic"] is True
        assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
                torch.backends.cudnn.deterministic, os.environ.get("CUBLAS_WORKSPACE_CONFIG")) == (
                   len(os.sched_getaffinity(0)) + 2, *before[1:])
    finally:
        torch.set_num_threads(before[0])


def test_nothing_runs_inside_a_run_that_train_made(tiny_root, tmp_path):
    """train()'s run has no .hydra/ record: a run in its checkpoints/ was taken (its metrics.json, events and
    lock beside best.pt), and a run.py run below it shown in its TensorBoard as a run of its own."""
    cfg = compose(*fast_overrides(tiny_root), "trainer.limit_batches=2")
    run_dir = tmp_path / "run"
    assert train(cfg, run_dir=run_dir)["status"] == "completed"
    before = sorted(run_dir.rglob("*"))
    with pytest.raises(UserError, match=re.escape(f"{run_dir / 'checkpoints'} is inside the run folder {run_dir}: a "
                                                  f"run needs a folder of its own.")):
        train(cfg, run_dir=run_dir / "checkpoints")
    below = run_main([*fast_overrides(tiny_root), f"hydra.run.dir={run_dir / 'sub'}"], cwd=tmp_path)
    assert below.returncode == 1 and f"is inside the run folder {run_dir}" in below.stderr, below.stderr[-2000:]
    assert sorted(run_dir.rglob("*")) == before
    # nor a run in a folder that holds runs (run_dir="." beside outputs/): they could no longer go on, inside it
    with pytest.raises(UserError, match=re.escape(f"{tmp_path} holds the run folder {run_dir}: a run needs a folder "
                                                  f"of its own. Choose a new run_dir.")):
        train(cfg, run_dir=tmp_path)
    above = run_main([*fast_overrides(tiny_root), f"hydra.run.dir={tmp_path}"], cwd=tmp_path)
    assert above.returncode == 1 and f"Error: {tmp_path} holds the run folder {run_dir}" in above.stderr
    swept = run_main(["-m", *fast_overrides(tiny_root), "seed=0,1", f"hydra.sweep.dir={tmp_path}"], cwd=tmp_path)
    assert swept.returncode == 1 and f"Error: {tmp_path} holds the run folder {run_dir}: a sweep needs a folder of " \
                                     f"its own" in swept.stderr, swept.stderr[-2000:]  # its summary listed the run
    assert sorted(run_dir.rglob("*")) == before and not (tmp_path / "metrics.json").exists()


def test_train_runs_inside_a_hydra_apps_own_run(tiny_root, tmp_path):
    """A Hydra app of one's own (its .hydra/config.yaml no lenet_exp config) was taken for a run of lenet_exp:
    train() called from it, into its output folder, was refused as "inside the run folder"."""
    (tmp_path / "app_run" / ".hydra").mkdir(parents=True)
    (tmp_path / "app_run" / ".hydra" / "config.yaml").write_text("lr: 0.1\nmodel: mine\n")
    cfg = compose(*fast_overrides(tiny_root), "trainer.limit_batches=2")
    assert train(cfg, run_dir=tmp_path / "app_run" / "lenet")["status"] == "completed"


def test_a_run_py_run_trained_on_by_train_is_resumed_with_its_epochs(tiny_root, tmp_path):
    """train() trains a run.py run on without Hydra's record: its next resume= said that overrides.yaml "was
    edited after the run was made", which nobody had done."""
    run_dir = tmp_path / "run"
    assert run_main([*fast_overrides(tiny_root), "trainer.limit_batches=2", f"hydra.run.dir={run_dir}"],
                    cwd=tmp_path).returncode == 0
    on = train(compose(*fast_overrides(tiny_root), "trainer.limit_batches=2", "trainer.epochs=2"), run_dir=run_dir)
    assert on["status"] == "completed" and on["epochs_done"] == 2
    again = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert again.returncode == 1 and again.stderr.strip().splitlines()[-1] == (
        f"Error: {run_dir} was trained to 2 epochs from Python (lenet_exp.train()), which its .hydra/ does not "
        f"record (it says 1): continue it with `python run.py resume={run_dir} trainer.epochs=2` (or another number "
        f"to train it on to), or with train() again."), again.stderr[-2000:]
    told = run_main([f"resume={run_dir}", "trainer.epochs=2"], cwd=tmp_path)
    assert told.returncode == 0 and "Already completed" in told.stderr, told.stderr[-2000:]
    # .hydra/'s epochs, more than train()'s: a run completed at 4 went on to .hydra/'s 30, replacing its results
    edited = (run_dir / ".hydra" / "overrides.yaml").read_text().replace("trainer.epochs=1", "trainer.epochs=3")
    (run_dir / ".hydra" / "overrides.yaml").write_text(edited)  # as if run.py had been given 3, stopped after 1
    (run_dir / ".hydra" / "config.yaml").write_text(
        (run_dir / ".hydra" / "config.yaml").read_text().replace("epochs: 1\n", "epochs: 3\n"))
    trained = (run_dir / "metrics.json").stat().st_mtime  # run.py's record, then train()'s metrics.json
    for record in (run_dir / ".hydra").iterdir():
        os.utime(record, (trained - 60, trained - 60))
    replayed = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert replayed.returncode == 1 and "(it says 3)" in replayed.stderr, replayed.stderr[-2000:]
    assert read_json(run_dir / "metrics.json")["epochs_done"] == 2
    # .hydra/ the newer: run.py's resume to 3 epochs, killed as it started (before it recorded anything), was
    # told it had been trained from Python, and to go on with 2
    for record in (run_dir / ".hydra").iterdir():
        os.utime(record, (trained + 60, trained + 60))
    killed = run_main([f"resume={run_dir}"], cwd=tmp_path)
    assert killed.returncode == 0 and read_json(run_dir / "metrics.json")["epochs_done"] == 3, killed.stderr[-2000:]


def test_train_computes_in_torchs_defaults_whatever_the_caller_set(tiny_root, tmp_path):
    """set_default_dtype(torch.float64) failed the first step with a traceback; set_float32_matmul_precision
    ("medium") changed the results, without a record. Both are the caller's again afterwards."""
    cfg = compose(*fast_overrides(tiny_root), "trainer.limit_batches=2", "trainer.deterministic=true")
    plain = train(cfg, run_dir=tmp_path / "plain")
    torch.set_default_dtype(torch.float64)
    torch.set_float32_matmul_precision("medium")
    seen = set()  # what each forward pass computed in (a CPU's results need not show "medium")
    hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: seen.add((torch.get_default_dtype(), torch.get_float32_matmul_precision())))
    try:
        other = train(cfg, run_dir=tmp_path / "other")
        assert (torch.get_default_dtype(), torch.get_float32_matmul_precision()) == (torch.float64, "medium")
    finally:
        hook.remove()
        torch.set_default_dtype(torch.float32)
        torch.set_float32_matmul_precision("highest")
    assert seen == {(torch.float32, "highest")}
    assert other["status"] == "completed" and other["test"] == plain["test"], other.get("message")
    # a default device: "meta" failed as the model moved ("Cannot copy out of meta tensor"), in load_model too
    torch.set_default_device("meta")
    try:
        meta = train(cfg, run_dir=tmp_path / "meta")
        assert torch.get_default_device() == torch.device("meta")
        loaded = lenet_exp.load_model(tmp_path / "meta" / "checkpoints" / "best.pt")
    finally:
        torch.set_default_device(None)
    assert meta["status"] == "completed" and meta["test"] == plain["test"], meta.get("message")
    assert loaded(torch.zeros(1, 28, 28)).sum().item() == pytest.approx(1.0)


def test_train_under_a_callers_no_grad_or_inference_mode_trains_and_leaves_the_mode_as_it_was(tiny_root, tmp_path):
    """A notebook cell's torch.no_grad(): "element 0 of tensors does not require grad" at the first step."""
    cfg = compose(*fast_overrides(tiny_root), "trainer.limit_batches=2")
    with torch.no_grad():
        assert train(cfg, run_dir=tmp_path / "no_grad")["status"] == "completed" and not torch.is_grad_enabled()
    with torch.inference_mode():
        assert train(cfg, run_dir=tmp_path / "inference")["status"] == "completed"
        assert torch.is_inference_mode_enabled()


def test_two_trains_of_one_process_at_once_are_refused(tiny_root, tmp_path):
    """A run sets process-wide settings and the package's logging: two at once wrote each other's lines into
    their run.log, one's end silenced the other's, and the last left the caller's logging and dtype altered.
    Into one folder, both trained it, each line of run.log twice, two event files (the folder's lock is the
    process's)."""
    import threading

    from lenet_exp.errors import FolderInUse

    longer = compose(*fast_overrides(tiny_root), "trainer.epochs=30", "trainer.batch_size=8", "trainer.limit_batches=20")
    first = threading.Thread(target=train, args=(longer,), kwargs={"run_dir": tmp_path / "run"})
    first.start()
    deadline = time.monotonic() + 120
    while not (tmp_path / "run" / "checkpoints" / "last.pt").exists():
        assert first.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(FolderInUse, match=re.escape(f"{tmp_path / 'run'} is in use by this process")):
        train(longer, run_dir=tmp_path / "run")
    with pytest.raises(UserError, match=r"Another train\(\) runs in this process \(or calls this one from its "
                                        r"on_epoch_end\): .* take turns"):
        train(longer, run_dir=tmp_path / "other")
    assert not (tmp_path / "other").exists()
    first.join()
    assert read_json(tmp_path / "run" / "metrics.json")["status"] == "completed"
    assert train(longer, run_dir=tmp_path / "other")["status"] == "completed"  # its turn now
    assert "[lenet_exp.loop][INFO] - epoch 30/30" in (tmp_path / "other" / "run.log").read_text()


def test_train_gives_the_memory_it_frees_back_to_the_caller(tiny_root, tmp_path):
    """A CPU run keeps the memory it frees for its next step (device.keep_freed_memory): a notebook's array
    freed after train() returned stayed in the process, 400 MB of it, for good."""
    script = f"""
import numpy as np
from lenet_exp import compose, train
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
train(compose(*{fast_overrides(tiny_root)!r}), run_dir={str(tmp_path / "run")!r})
before = rss_mb()
array = np.ones(50_000_000)  # 400 MB, then freed
del array
print(round(rss_mb() - before))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) < 100, result.stdout


def test_a_failed_train_shows_its_traceback_once(tiny_root, tmp_path):
    """train() raises the error, whose traceback the caller (a notebook) shows; the log line said it all over
    again on the console. run.log keeps it."""
    script = f"""
from lenet_exp import compose, train
def fails(row):
    raise ValueError("the live plot broke")
train(compose(*{fast_overrides(tiny_root)!r}), run_dir={str(tmp_path / "run")!r}, on_epoch_end=fails)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 1 and result.stderr.count("Traceback") == 1, result.stderr[-3000:]
    assert "Error: ValueError: the live plot broke" in result.stderr
    assert result.stderr.rstrip().endswith("ValueError: the live plot broke")
    assert "Traceback" in (tmp_path / "run" / "run.log").read_text()


def test_a_train_ended_by_sys_exit_in_on_epoch_end_records_it_and_goes_on_when_called_again(tiny_root, tmp_path):
    """SystemExit is no Exception: its metrics.json said running, with no end of its HParams session."""
    cfg = compose(*fast_overrides(tiny_root), "trainer.epochs=2", "trainer.limit_batches=2")

    def ends(row: dict) -> None:
        sys.exit(3)

    with pytest.raises(SystemExit):
        train(cfg, run_dir=tmp_path / "run", on_epoch_end=ends)
    recorded = read_json(tmp_path / "run" / "metrics.json")
    assert recorded["status"] == "failed" and "ended by SystemExit(3)" in recorded["message"], recorded["message"]
    assert session_status(load_events(tmp_path / "run")) == "STATUS_FAILURE"
    assert train(cfg, run_dir=tmp_path / "run")["status"] == "completed"


def test_a_keyboard_interrupt_from_on_epoch_end_stops_the_run_as_ctrl_c_does(tiny_root, tmp_path):
    """A notebook's callback that raises KeyboardInterrupt to stop: recorded as a stop "before the run could save
    its state", though its epoch was saved. It is now the stop that a Ctrl-C asks for, and the run goes on."""
    cfg = compose(*fast_overrides(tiny_root), "trainer.epochs=3", "trainer.limit_batches=2")

    def stops_after_epoch_1(row: dict) -> None:
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir=tmp_path / "run", on_epoch_end=stops_after_epoch_1)
    recorded = read_json(tmp_path / "run" / "metrics.json")
    assert recorded["status"] == "interrupted", recorded
    assert recorded["message"].startswith("Interrupted by a KeyboardInterrupt from on_epoch_end after epoch 1; the "
                                          "last checkpoint is after epoch 1. Continue with train(cfg, run_dir="), recorded
    assert [row["epoch"] for row in recorded["history"]] == [1]
    assert train(cfg, run_dir=tmp_path / "run")["status"] == "completed"


SEEDS_IN_A_LOOP = """
import sys
from lenet_exp import compose, train
try:
    for seed in range(2):
        train(compose(*sys.argv[2:], f"seed={seed}"), run_dir=f"{sys.argv[1]}/{seed}")
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(130)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_in_train_saves_the_run_then_stops_the_callers_loop(signum, tiny_root, tmp_path):
    """Ctrl-C (a notebook's interrupt) or SIGTERM (Slurm, timeout) stopped the run and train() returned, so a loop
    over seeds trained on, and the script ended with status 0. The run is saved first; then the signal takes its
    course: KeyboardInterrupt for Ctrl-C, the default end of the process for SIGTERM."""
    longer = ["trainer.epochs=12", "trainer.batch_size=8", "trainer.limit_batches=20"]  # ~0.1 s an epoch
    script = subprocess.Popen([sys.executable, "-c", SEEDS_IN_A_LOOP, str(tmp_path), *fast_overrides(tiny_root),
                               *longer], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "0" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists():
        assert script.poll() is None and time.monotonic() < deadline, script.communicate()
        time.sleep(0.05)
    script.send_signal(signum)
    out, err = script.communicate(timeout=120)
    assert script.returncode == (130 if signum == signal.SIGINT else -signal.SIGTERM), err[-2000:]
    assert ("KeyboardInterrupt" in out) == (signum == signal.SIGINT)
    assert read_json(tmp_path / "0" / "metrics.json")["status"] == "interrupted" and not (tmp_path / "1").exists()


def test_train_into_a_folder_no_one_may_write_says_so(tiny_root, tmp_path):
    """/proc (a file system of no size) was said to be full: "No space left on /proc … Free some space"."""
    cfg = compose(*fast_overrides(tiny_root))
    with pytest.raises(CannotWrite, match=re.escape("Cannot write /proc/lenet_exp_run/.lock (No such file or "
                                                    "directory). Make /proc/lenet_exp_run a folder you may write in")):
        train(cfg, run_dir="/proc/lenet_exp_run")
    with pytest.raises(TypeError, match=re.escape("train() takes run_dir as a path (a str or pathlib.Path), not 5.")):
        train(cfg, run_dir=5)  # TypeError: expected str, bytes or os.PathLike object, not int


def test_load_model_classifies_as_the_runs_own_test(tiny_root, tmp_path):
    """Its preprocessing, its weights' average and its test-time views, as task=eval uses them: the same
    accuracy as the run's test, from images as the data set holds them, as ToTensor gives them, or a file."""
    import torchvision
    from PIL import Image

    cfg = compose(*fast_overrides(tiny_root), "dataset=fashion_mnist", "trainer.epochs=2", "trainer.ema_decay=0.9",
                  "trainer.tta_hflip=true")
    metrics = train(cfg, run_dir=tmp_path / "run")
    threads = torch.get_num_threads()
    model = lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt")
    assert torch.get_num_threads() == threads and not model.training and not model.net.training
    assert model.classes[:2] == ["T-shirt/top", "Trouser"] and len(model.views) == 2  # itself and its mirror image
    test = torchvision.datasets.FashionMNIST(tiny_root, train=False)
    probabilities = model(test.data)
    assert probabilities.shape == (200, 10) and torch.allclose(probabilities.sum(1), torch.ones(200))
    assert (probabilities.argmax(1) == test.targets).sum().item() / 200 == metrics["test"]["acc"]
    assert torch.allclose(model(test.data.unsqueeze(1).float() / 255), probabilities, atol=1e-6)
    Image.fromarray(test.data[7].numpy()).save(tmp_path / "image.png")
    assert torch.allclose(model(tmp_path / "image.png"), probabilities[7:8], atol=1e-6)
    assert torch.allclose(model(test.data[7]), probabilities[7:8])
    # the network alone takes the prepared images, and gives logits of each view (its test's mean of two)
    with torch.no_grad():
        x = model.prepare(test.data[:5])
        views = [model.net(x).softmax(1), model.net(x.flip(-1)).softmax(1)]
    assert torch.allclose((views[0] + views[1]) / 2, probabilities[:5], atol=1e-6)
    assert not torch.allclose(views[0], probabilities[:5], atol=1e-3)
    exported = torch.export.export(model.net, (model.prepare(test.data[:5]),))  # the network is what exports
    assert torch.allclose(exported.module()(model.prepare(test.data[5:10])), model.net(model.prepare(test.data[5:10])),
                          atol=1e-5)
    # the weights themselves, not their average: other answers
    assert not torch.allclose(lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt",
                                                   "trainer.ema_decay=null")(test.data), probabilities, atol=1e-3)
    # in train mode too, the test's answers: BatchNorm's running statistics, used and kept (they changed with it)
    running_mean = model.net.features[1].running_mean.clone()
    model.train()
    assert torch.allclose(model(test.data), probabilities) and torch.equal(model.net.features[1].running_mean,
                                                                           running_mean)
    model.eval()
    # it pickles (its test-time views too), and loads as the caller's float64 has it: in float32, its own
    assert torch.equal(pickle.loads(pickle.dumps(model))(test.data), probabilities)
    torch.set_default_dtype(torch.float64)
    try:
        reloaded = lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt")
    finally:
        torch.set_default_dtype(torch.float32)
    assert torch.allclose(reloaded(test.data), probabilities)


def test_load_model_says_what_it_takes(tiny_root, tmp_path, caplog):
    import numpy as np
    import torchvision

    from lenet_exp.errors import CheckpointError, DeviceError

    train(compose(*fast_overrides(tiny_root), "trainer.limit_batches=2"), run_dir=tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"is a folder. Pass a checkpoint file: .*run/checkpoints/best.pt"):
        lenet_exp.load_model(tmp_path / "run")
    model = lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt")
    with pytest.raises(ValueError, match=r"grayscale 28x28 images.*not shape \[2, 3, 28, 28\]"):
        model(torch.zeros(2, 3, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="range from -0.4242 to 2.821: pass them unnormalised"):
        model((torch.tensor([0.0, 1.0]).repeat(392).reshape(28, 28) - 0.1307) / 0.3081)
    with pytest.raises(TypeError, match="uint8 .0-255. or floats .0-1., not torch.int64"):
        model(torch.zeros(28, 28, dtype=torch.int64))
    with pytest.raises(TypeError, match=re.escape("not a list: np.asarray(images) makes an array of a list or a PIL "
                                                  "image (grayscale, 28x28)")):
        model([[0] * 28] * 28)
    digits = torchvision.datasets.MNIST(tiny_root, train=False).data[:3]
    # a NumPy array, its own or an image library's, is taken as the tensor would be
    assert torch.equal(model(digits.numpy()), model(digits)) and torch.equal(model(digits.numpy()[:, ::-1]),
                                                                               model(digits.flip(1)))
    with pytest.raises(ValueError, match=r"range from 0 to \d+: divide them by the top of their range \(255 for 8-bit "
                                         r"images\), or pass 8-bit ones as uint8"):
        model(digits.float())  # unnormalised, as a float tensor of an image often is
    with pytest.raises(ValueError, match=re.escape("not shape [3, 28, 28, 1]: its channel last (NumPy's and PIL's "
                                                   "layout): images[..., 0] drops it")):
        model(digits.numpy()[..., None])
    assert torch.equal(model(digits.numpy().astype(">f4") / 255), model(digits.float() / 255))  # big-endian
    read_only = digits.numpy().copy()  # as np.asarray(PIL image) gives it, of which torch warned (helper mismatch59)
    read_only.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(model(read_only), model(digits))
    with pytest.raises(TypeError, match="images of numbers, not a NumPy array of object"):
        model(np.array([None] * 3))
    with pytest.raises(UserError, match=re.escape(f"Image {tmp_path / 'digit.png'} does not exist. Pass the path of a "
                                                  f"PNG or JPEG file.")):
        model(tmp_path / "digit.png")  # not image=, which is the command line's
    with pytest.raises(ValueError, match="some of these pixels are NaN: look where"):  # "pass them unnormalised"
        model(torch.full((28, 28), math.nan))
    for colour in (torch.rand(2, 3, 28, 28), torch.rand(2, 28, 28, 3)):  # "of another size is read … from its file"
        with pytest.raises(ValueError, match="colour images: average their channels into one"):
            model(colour)
    with pytest.raises(TypeError, match=re.escape("torch.export.export(model.net, (model.prepare(images),))")), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's: "deprecated"
        torch.jit.trace(model, torch.zeros(2, 28, 28, dtype=torch.uint8))  # it batched 1000: 2500 gave 1000 answers
    # torch's own errors before: "try blocks aren't supported", "GuardOnDataDependentSymNode" (the range check)
    for export in (lambda: torch.jit.script(model), lambda: torch.export.export(model, (digits.float() / 255,))):
        with pytest.raises(TypeError, match=re.escape("Trace, script or export the network itself")), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's: "deprecated"
            export()
    torch.export.export(model.net, (model.prepare(digits),))  # as it says
    with pytest.raises(UserError, match="names no checkpoint"):
        lenet_exp.load_model("")
    with pytest.raises(UserError, match="the checkpoint is its first argument"):
        lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt", "ckpt=other.pt")
    for other_data, test in (("dataset=fashion_mnist", "test it on another data set with `python run.py task=eval "
                                                       "ckpt=<checkpoint> dataset=fashion_mnist`"),
                             ("dataset.num_classes=3", "leave it out")):  # were ignored: its classes stayed MNIST's
        with pytest.raises(UserError, match=re.escape(f"load_model('{other_data}'): a loaded model reads no data set; "
                                                      f"it classifies images into its run's classes (model.classes): "
                                                      f"{test}.")):  # (task=eval refuses another number of classes)
            lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt", other_data)
    with caplog.at_level("WARNING", logger="lenet_exp"):  # named as the caller wrote it; a preset was said nothing of
        lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt", "model=lenet5_classic")
        lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt", "experiment=mnist_best")
    for option in ("model=lenet5_classic", "experiment=mnist_best"):
        assert f"{option} not used: task=eval takes {tmp_path / 'run' / 'checkpoints' / 'best.pt'}" in caplog.text
    lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt", "dataset.val_size=10")  # unused, as eval says
    with pytest.raises(DeviceError, match="'cpu' or 'cuda'"):
        lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt", device="meta")
    # torch's and pathlib's errors before: "Expected one of cpu, cuda, ... device type at start of device string"
    for device in ("auto", None, "bogus"):  # (a misspelt one: torch's RuntimeError, helper mismatch59)
        with pytest.raises(DeviceError, match=re.escape(f"load_model(device={device!r}): a model is loaded onto")):
            lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt", device=device)
    with pytest.raises(TypeError, match=re.escape("load_model() takes the checkpoint as a path (a str or pathlib.Path), "
                                                  "not None")):
        lenet_exp.load_model(None)
    # a network made float64 takes its input so (it failed deep in conv2d: "Input type (float) and bias type
    # (double) should be the same")
    doubled = lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt").double()
    sample = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    assert torch.allclose(doubled(sample), model(sample), atol=1e-5)
    # its settings checked as task=eval's (a batch size of -1 answered no image at all), and given as compose's
    with pytest.raises(ConfigError, match=re.escape("compose('trainer.eval_batch_size=...')")):
        lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt", "trainer.eval_batch_size=-1")
    small = lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt", ["trainer.eval_batch_size=3"])
    images = torch.randint(0, 256, (7, 28, 28), dtype=torch.uint8)
    assert small.batch_size == 3 and torch.allclose(small(images), model(images), atol=1e-6)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="asks for a CUDA GPU"):
            lenet_exp.load_model(tmp_path / "run" / "checkpoints" / "best.pt", device="cuda")


@pytest.mark.parametrize("document", ["README.md", "docs/usage.md"])
def test_the_python_api_example_runs_as_written(document, fast, tmp_path, monkeypatch):
    """Pasted, the example raised NameError: it used `images` without a line that made them. Run here with the
    tiny data's overrides first (the example trains on the full data set)."""
    text = (RUN_PY.parent / document).read_text()
    code = re.search(r"## Python API\n\n```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"fast": fast}
    exec(code.replace("compose(", "compose(*fast, ", 1), namespace)
    probabilities = namespace["probabilities"]
    assert probabilities.shape == (8, 10) and torch.allclose(probabilities.sum(1), torch.ones(8))
    assert namespace["metrics"]["status"] == "completed"
