"""The real `python run.py` command line: one run = one directory with every artifact.

A first run and the import checks start `python run.py` as a process; the others run run.py in this one.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import signal
from pathlib import Path

import pytest
import torch

from conftest import RUN_PY, only_run_dir, run_cli, run_main
from lenet_exp import CONFIGS
from lenet_exp.files import read_json
from tensorboard_events import load_events, logged_hparams, scalar_values

EPOCH_TAGS = {"train/loss", "train/acc", "train/lr", "val/loss", "val/acc", "best/val_acc", "best/val_epoch",
              "best/val_loss",
              "time/epoch_s", "time/samples_per_s"}


@pytest.mark.long
def test_one_epoch_run_writes_every_artifact(fast, tiny_root, tmp_path):
    from torchvision.datasets.mnist import read_label_file

    result = run_cli(  # a process of its own: its first job's start-up holds the imports
        fast + ["trainer.epochs=2", "trainer.log_images=true"], cwd=tmp_path,
        env={"MPLCONFIGDIR": str(tmp_path / "matplotlib")})  # as a new machine's: no font cache yet
    assert result.returncode == 0, result.stderr
    assert "fontManager" not in result.stderr  # matplotlib's INFO line of its new font cache is no run's
    run_dir = only_run_dir(tmp_path)
    assert {p.name for p in run_dir.iterdir()} >= {".hydra", "checkpoints", "metrics.json", "run.log"}

    metrics = read_json(run_dir / "metrics.json")
    assert metrics["status"] == "completed" and metrics["epochs_done"] == 2
    assert 0.5 < metrics["test"]["acc"] <= 1.0 and metrics["test"]["loss"] > 0  # the tiny data is learnable
    assert metrics["val"]["acc"] == max(row["val/acc"] for row in metrics["history"])
    # the test's accuracy on each digit: together, weighted by how many of each were tested, the test's own
    labels = read_label_file(str(tiny_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"))[:metrics["test"]["samples"]]
    tested = torch.bincount(labels, minlength=10).tolist()
    by_class = metrics["test"]["acc_by_class"]
    assert list(by_class) == [str(digit) for digit in range(10)]
    assert sum(acc * n for acc, n in zip(by_class.values(), tested) if n) / sum(tested) == \
        pytest.approx(metrics["test"]["acc"])
    assert all((acc is None) == (n == 0) for acc, n in zip(by_class.values(), tested))
    assert metrics["best_epoch"] in (1, 2) and metrics["seed"] == 0
    assert metrics["samples_per_s"] > 0 and len(metrics["history"]) == 2
    assert set(metrics["versions"]) == {"python", "torch", "torchvision", "hydra", "omegaconf"}
    assert metrics["device"].startswith("CPU") and metrics["cuda_graphs"] is False
    timings = metrics["timings"]  # start-up (in three parts), the epochs, the test: together the wall time
    startup_parts = ("imports_s", "data_s", "setup_s")
    assert set(timings) == {"startup_s", *startup_parts, "epochs_s", "test_s"} and min(timings.values()) > 0
    assert sum(timings[part] for part in startup_parts) == pytest.approx(timings["startup_s"])
    assert timings["imports_s"] > 0.1  # its process's first job: importing torch is part of its start-up
    assert timings["startup_s"] + timings["epochs_s"] + timings["test_s"] == pytest.approx(metrics["wall_time_s"], abs=0.5)

    for name in ("last", "best"):
        state = torch.load(run_dir / "checkpoints" / f"{name}.pt", weights_only=True)
        assert {"model", "optimizer", "run_state", "config", "rng"} <= set(state)
        assert state["config"]["optimizer"]["lr"] == 1e-3
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["run_state"]["epoch"] == 2
    assert not list(run_dir.glob("checkpoints/*.tmp"))

    events = load_events(run_dir)
    assert EPOCH_TAGS | {"test/loss", "test/acc"} <= set(events.Tags()["scalars"])
    assert sorted(scalar_values(events, "val/acc")) == [1, 2]
    assert scalar_values(events, "test/acc")[metrics["best_epoch"]] == pytest.approx(metrics["test"]["acc"])  # float32 there
    images = set(events.Tags()["images"])
    assert "test/confusion_matrix" in images
    assert ("test/misclassified" in images) == (metrics["test"]["acc"] < 1)  # drawn whenever there are any
    hparams = logged_hparams(events)
    assert hparams["optimizer.lr"] == 1e-3 and hparams["model"] == "lenet5" and hparams["trainer.batch_size"] == 64
    assert hparams["model.batch_norm"] == "true"  # as Hydra spells it, not torch's 1.0
    # the settings that change results only; no experiment of its own, so TensorBoard works out what differs
    assert not {"dataset.root", "trainer.progress", "image", "optimizer.momentum"} & set(hparams)
    assert hparams["ckpt"] == "null"  # the column of evaluations' checkpoints, in every run
    # a null setting as the number it stands for: the string 'None' among other runs' numbers made TensorBoard's
    # column text, which it could not sort ("'<' not supported between 'float' and 'str'"); left out, a run
    # beside one of patience 2 showed one value, a setting that did not differ
    # what the run's nulls came to: the images trained on, the threads (device=cpu names the device's settings)
    threads = int(re.search(r"\((\d+) threads?\)", metrics["device"]).group(1))  # "CPU (1 thread)"
    assert (hparams["dataset.train_size"], hparams["device.threads"]) == (500, threads)
    assert "data_seed" not in hparams  # the seed's, repeated: a column TensorBoard ticked before seed
    off = ("trainer.ema_decay", "trainer.early_stop_patience", "trainer.grad_clip_norm", "trainer.limit_batches")
    assert {key: hparams[key] for key in off} == dict.fromkeys(off, 0)
    assert "None" not in hparams.values()
    # each config group's option, named or not: a run without a column ticked is left out of parallel coordinates
    assert {key: hparams[key] for key in ("model", "dataset", "optimizer", "scheduler", "augment", "experiment")} == {
        "model": "lenet5", "dataset": "mnist", "optimizer": "adam", "scheduler": "none", "augment": "none",
        "experiment": "null"}
    assert "_hparams_/experiment" not in events.PluginTagToContent("hparams")
    # the selected model's, HParams' columns
    assert scalar_values(events, "best/val_acc")[2] == pytest.approx(metrics["val"]["acc"])
    assert scalar_values(events, "best/val_loss")[2] == pytest.approx(metrics["val"]["loss"])
    assert scalar_values(events, "best/val_epoch")[2] == metrics["best_epoch"]
    assert [p.name for p in run_dir.iterdir() if p.is_dir()].count(".hydra") == 1  # no timestamped hparams sub-run
    assert "epoch 2/2" in (run_dir / "run.log").read_text()


def test_bf16_and_channels_last_train_on_the_cpu(fast, tmp_path):
    result = run_main(fast + ["trainer.epochs=2", "trainer.precision=bf16", "trainer.channels_last=true"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = read_json(only_run_dir(tmp_path) / "metrics.json")
    assert metrics["status"] == "completed" and metrics["config"]["trainer"]["precision"] == "bf16"
    assert metrics["fused_cpu_kernels"] is False  # the kernel is float32: bf16 takes the standard layers
    assert metrics["test"]["acc"] > 0.5 and metrics["val"]["acc"] > 0.5  # it learns (chance: 0.1)


@pytest.mark.long
def test_a_compiled_model_trains_as_the_eager_one(fast, tmp_path):
    """trainer.compile=true: torch.compile (~20 s to compile here, in a process of its own) trains the
    model that the eager run trains (it failed before training: a compiled module has no truth value), with
    dropout's masks too (Inductor drew its own: helper fastpaths61)."""
    metrics = {}
    for compiled in (False, True):
        run_dir = tmp_path / ("compiled" if compiled else "eager")
        result = run_cli(fast + ["model.dropout=0.3", f"trainer.compile={compiled}", f"hydra.run.dir={run_dir}"],
                         cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        # torch's own line, past the run's logging, on a machine without a GPU: it broke the progress bar
        assert "No CUDA runtime is found" not in result.stderr
        metrics[compiled] = read_json(run_dir / "metrics.json")
    assert metrics[True]["status"] == "completed" and metrics[True]["config"]["trainer"]["compile"] is True
    for split in ("val", "test"):
        assert metrics[True][split]["loss"] == pytest.approx(metrics[False][split]["loss"], rel=1e-3), split


def test_the_logged_lr_is_the_one_each_epoch_starts_with(fast, tmp_path):
    result = run_main(fast + ["trainer.epochs=2", "scheduler=cosine"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path)
    history = read_json(run_dir / "metrics.json")["history"]
    # cosine from 1e-3 to 0 over both epochs (stepped per batch): epoch 2 starts half-way, at 5e-4
    assert [row["train/lr"] for row in history] == pytest.approx([1e-3, 5e-4])
    assert scalar_values(load_events(run_dir), "train/lr") == pytest.approx({1: 1e-3, 2: 5e-4})


def test_overrides_work_as_they_read(fast, tmp_path):
    result = run_main(fast + ["optimizer.lr=0.01", "dataset=fashion_mnist", "model=lenet5_classic", "device=cpu",
                              "trainer.epochs=1", f"dataset.root={fast[0].split('=', 1)[1]}", "dataset.val_size=100"],
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = read_json(only_run_dir(tmp_path) / "metrics.json")["config"]
    assert (config["optimizer"]["lr"], config["dataset"]["name"], config["model"]["name"]) == (0.01, "fashion_mnist", "lenet5_classic")
    assert config["model"]["activation"] == "tanh" and config["model"]["batch_norm"] is False


def test_a_run_folder_named_by_hydras_own_config_is_written(fast, tmp_path):
    """`hydra.run.dir=…/${hydra:runtime.choices.optimizer}`, which Hydra resolves: the check of the folder before it
    is written said "HydraConfig was not set"."""
    result = run_main([*fast, "hydra.run.dir=runs/${hydra:job.name}_${hydra:runtime.choices.optimizer}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_json(tmp_path / "runs" / "run_adam" / "metrics.json")["status"] == "completed"


def test_a_job_name_of_ones_own_keeps_the_log_in_run_log(fast, tmp_path):
    """hydra.job.name named the log file: `mine` wrote mine.log, not the documented run.log, and `a/b` failed with
    a traceback."""
    result = run_main(fast + ["hydra.job.name=a/b"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Done: best val acc" in (only_run_dir(tmp_path) / "run.log").read_text()


@pytest.mark.parametrize("logging_option, console_line, has_run_log", [
    ("hydra/job_logging=disabled", None, False),
    ("hydra/job_logging=default", "][lenet_exp.loop][INFO] - Done: best val acc", True),  # Hydra's timestamps
])
def test_hydras_own_logging_options_replace_ours(logging_option, console_line, has_run_log, fast, tmp_path):
    """Ours is an option of hydra/job_logging, so Hydra's replace it whole (merged into it, they failed)."""
    result = run_main(fast + [logging_option], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path)
    assert read_json(run_dir / "metrics.json")["status"] == "completed"
    assert (run_dir / "run.log").exists() == has_run_log
    shown = result.stdout + result.stderr
    assert (console_line in shown) if console_line else "Done:" not in shown
    # and, the run being in this process, its logging is put back for this worker's next tests (caplog's)
    assert not [name for name, logger in logging.Logger.manager.loggerDict.items()
                if isinstance(logger, logging.Logger) and logger.disabled]


@pytest.mark.parametrize("logging, cause", [
    (["hydra.job_logging.root.level=BOGUS"], "unable to configure root logger (Unknown level: 'BOGUS')"),
    (["hydra/job_logging=default", "hydra.job.name=a/b"],
     "unable to configure handler 'file' ([Errno 2] No such file")])
def test_a_logging_config_that_pythons_logging_refuses_is_told_in_one_line(logging, cause, fast, tmp_path):
    """Python's logging.config raised ValueError("Unable to configure root logger"): a traceback."""
    result = run_cli([*fast, *logging], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.startswith(f"Error: Python's logging cannot take Hydra's logging config: {cause}")


def test_show_config_without_importing_torch(tmp_path):
    result = run_cli(["-X", "importtime", str(RUN_PY), "--cfg", "job", "optimizer=sgd"], cwd=tmp_path, script=None)
    assert result.returncode == 0 and "_target_: torch.optim.SGD" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "hydra" in imported and "torch" not in imported
    assert not (tmp_path / "outputs").exists()  # showing the config writes nothing


def test_a_link_to_run_py_elsewhere_reads_the_configs_beside_run_py(tmp_path):
    """`ln -s ~/lenet_exp/run.py ~/bin/lenet`: Hydra looked for configs/ beside the link ("Primary config
    directory not found")."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "run.py").symlink_to(RUN_PY)
    result = run_cli(["--cfg", "job", "optimizer=sgd"], cwd=tmp_path, script=tmp_path / "bin" / "run.py")
    assert result.returncode == 0 and "_target_: torch.optim.SGD" in result.stdout, result.stderr


def test_help_lists_every_group_and_option(tmp_path):
    result = run_main(["--help"], cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("lenet_exp:")
    for line in ("model: lenet5, lenet5_classic", "dataset: fashion_mnist, mnist", "experiment: fashion_best, mnist_best",
                 "optimizer: adam, adamw, sgd", "scheduler: cosine, none, onecycle, step"):
        assert line in result.stdout
    # and only those a user chooses from: the options' schemas are no group
    groups = result.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert [line.split(":")[0] for line in groups.splitlines()[2:] if line] == \
        ["augment", "dataset", "device", "experiment", "model", "optimizer", "scheduler", "sweep"]


@pytest.mark.parametrize("flags", [["--cfg", "job", "-p", "optimizer"], ["-cjob", "-poptimizer"],
                                   ["--cfg=job", "--pack=optimizer"], ["--pack", "optimizer", "--cfg", "job"]])
def test_a_package_of_the_config_is_printed_however_argparse_takes_the_flags(flags, tmp_path):
    """-p without --cfg is refused (Hydra ignored it, and the default recipe trained): -cjob is --cfg job too. Flags
    among the overrides were argparse's "unrecognized arguments" (of the overrides after them)."""
    result = run_main(flags, cwd=tmp_path)
    assert result.returncode == 0 and "_target_: torch.optim.Adam" in result.stdout, result.stderr[-2000:]
    among = run_main(["optimizer.lr=0.5", *flags, "optimizer.weight_decay=0.25"], cwd=tmp_path)
    assert among.returncode == 0 and "lr: 0.5" in among.stdout and "weight_decay: 0.25" in among.stdout, among.stderr


def test_run_flag_runs_one_run_of_an_experiment_that_sweeps(fast, tmp_path):
    """--run where a config sets hydra.mode: MULTIRUN ran the sweep (Hydra's --run only chose running over printing
    the config)."""
    (tmp_path / "mine" / "experiment").mkdir(parents=True)
    (tmp_path / "mine" / "experiment" / "seeds.yaml").write_text(
        "# @package _global_\nhydra:\n  mode: MULTIRUN\n  sweeper:\n    params:\n      seed: 0,1\n")
    one = run_main(["--config-dir", "mine", "experiment=seeds", *fast, "hydra.run.dir=one", "hydra.sweep.dir=sweep",
                    "--run"], cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    assert (tmp_path / "one" / "metrics.json").is_file() and not (tmp_path / "sweep").exists()


def test_a_runs_record_given_as_its_configs_is_refused_with_the_command_that_runs_it_again(fast, tmp_path):
    """`--config-path <run>/.hydra --config-name config`, Hydra's way to repeat a run, composed its record of
    the config, without the schema: the run failed in a folder of Hydra's own logging."""
    made = run_main([*fast, "optimizer.lr=3e-3", "hydra.run.dir=made"], cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    for flags in (["--config-path", str(tmp_path / "made" / ".hydra"), "--config-name", "config"],
                  ["--config-dir", "made/.hydra"]):
        refused = run_main([*flags, "seed=1", "hydra.run.dir=again"], cwd=tmp_path)
        assert refused.returncode == 1 and not (tmp_path / "again").exists(), refused.stderr[-2000:]
        command = refused.stderr.split("`")[1]
        assert refused.stderr.startswith(f"Error: {flags[0]} {flags[1]} is a run's record") and \
            command.endswith("optimizer.lr=3e-3 seed=1 hydra.run.dir=again"), refused.stderr
        assert f"or continue the run: `python run.py resume={flags[1].removesuffix('/.hydra')}`." in refused.stderr
    # a sweep of it keeps its -m, and a setting given again replaces the run's own
    swept = run_main(["-m", "--config-dir", "made/.hydra", "seed=0,1", "optimizer.lr=1e-3"], cwd=tmp_path)
    suggested = swept.stderr.split("`")[1]
    assert swept.returncode == 1 and suggested.startswith("python run.py -m ") and "3e-3" not in suggested and \
        suggested.endswith(" seed=0,1 optimizer.lr=1e-3"), swept.stderr
    # a sweep's record: its multirun.yaml is no config either
    made_sweep = run_main(["-m", *fast, "seed=0,1", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert made_sweep.returncode == 0, made_sweep.stderr[-2000:]
    jobs = sorted(path.name for path in (tmp_path / "sweep").iterdir())
    refused = run_main(["-m", "--config-path", str(tmp_path / "sweep"), "--config-name", "multirun"], cwd=tmp_path)
    assert refused.returncode == 1 and (f"Error: --config-path {tmp_path / 'sweep'} is a sweep's folder, whose "
                                        f"multirun.yaml is Hydra's record of the sweep") in refused.stderr, \
        refused.stderr[-2000:]
    assert sorted(path.name for path in (tmp_path / "sweep").iterdir()) == jobs
    again = run_main(shlex.split(command)[2:], cwd=tmp_path)  # what it says runs the run's settings again
    assert again.returncode == 0, again.stderr[-2000:]
    before, after = (read_json(tmp_path / run / "metrics.json")["config"] for run in ("made", "again"))
    assert after == {**before, "seed": 1}


@pytest.mark.parametrize("mode", [["--help"], ["--hydra-help"], ["--cfg", "job"], ["--info"]])
def test_printing_to_a_reader_that_went_away_ends_quietly(tmp_path, mode):
    read_end, write_end = os.pipe()
    os.close(read_end)  # `python run.py --help | head -1`, once head has its line
    try:
        result = run_cli(mode, cwd=tmp_path, stdout=write_end)
    finally:
        os.close(write_end)
    assert result.returncode == -signal.SIGPIPE and result.stderr == ""  # as cat or grep end, no traceback


@pytest.mark.parametrize("kind", ["run", "sweep"])
def test_a_folder_named_in_characters_the_locale_cannot_read_is_refused_before_anything_is_written(kind, tmp_path):
    """Python in an ASCII locale (PYTHONUTF8=0 LC_ALL=C) reads the bytes of `ünï` as surrogates: run.log's
    handler printed a logging error, then TensorBoard's UTF-8 file names failed the run with a traceback."""
    folder = tmp_path / "ünï" / "run 1"
    mode = ["-m", "seed=0,1"] if kind == "sweep" else []
    result = run_cli([*mode, "trainer.epochs=1", f"hydra.{kind}.dir={folder}"], cwd=tmp_path,
                     env={"PYTHONUTF8": "0", "LC_ALL": "C", "LANG": "C"})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert (f"Error: hydra.{kind}.dir={folder} holds characters that this locale's encoding (ascii) cannot read"
            in result.stderr.encode("ascii", "backslashreplace").decode("unicode_escape")), result.stderr
    assert "PYTHONUTF8=1" in result.stderr and not (tmp_path / "ünï").exists()
    # in a UTF-8 locale, a name of bytes no UTF-8 reads (made in Latin-1): no locale would help
    latin = tmp_path / f"caf{os.fsdecode(bytes([0xe9]))}"
    result = run_cli([*mode, "trainer.epochs=1", f"hydra.{kind}.dir={latin}"], cwd=tmp_path)
    assert result.returncode == 1 and f"Error: hydra.{kind}.dir={tmp_path}/caf\ufffd is no UTF-8 name" in result.stderr \
        and "PYTHONUTF8" not in result.stderr and not latin.exists(), result.stderr


@pytest.mark.parametrize("typo, message", [
    (["trainer.epoch=3"], "trainer.epoch is not a setting (did you mean trainer.epochs?). `python run.py --cfg job`"),
    (["seeed=3"], "seeed is not a setting (did you mean seed?)."),
    (["augment=elastic", "augment.alpha=30"], "augment.alpha is not a setting (did you mean augment.elastic_alpha?)."),
    (["optimizer.momentum=0.9"], "optimizer.momentum is not a setting of this optimizer (optimizer=sgd has it)."),
    # a sweep's config is checked with the default option, augment=none: "augment=affine and … have it" read as nonsense
    (["-m", "augment=affine,elastic", "augment.degrees=10"], "augment.degrees is not a setting of the augment that a "
     "sweep's config has before each job chooses its own: ++augment.degrees=10 sets it in each job (augment=affine "
     "and augment=elastic have it)."),
    (["-m", "optimizer=sgd,adam", "optimizer.momentum=0.9"], "optimizer.momentum is a setting of optimizer=sgd only, "
                                                             "not of optimizer=adam: sweep those apart."),
    (["-m", "augment=choice(affine,elastic)", "augment.degrees=10"], "augment.degrees is not a setting of the "
     "augment that a sweep's config has before each job chooses its own: ++augment.degrees=10 sets it in each job"),
    (["-m", "optimizer=adam,adamw", "optimizer.momentum=0.9"], "optimizer.momentum is not a setting of this "
                                                               "optimizer (optimizer=sgd has it)."),  # none swept has
    (["+optimizer.maximize=true"], "Invalid config value optimizer.maximize=true: expected false (training lowers "
                                   "the loss, which maximize would raise)."),  # refused once its folder was made
    (["+optimizer.amsgrad=1"], "Invalid config value optimizer.amsgrad=1: expected true or false."),
    (["trainer.epochs=3", "model.depth=2"], "model.depth is not a setting; model has _target_, name, activation,"),
    (["optimizer.foreach=false"], "optimizer.foreach is not a setting of this optimizer's YAML: +optimizer.foreach=… "
                                  "passes it to torch.optim.Adam."),
    (["hydra.job.env_set.LENET_EXP_DATA=/data"], "hydra.job.env_set.LENET_EXP_DATA is not a setting: hydra.job.env_set "
                                                 "has none yet, and +hydra.job.env_set.LENET_EXP_DATA=… adds it."),
    (["experiment=mnist_best", "scheduler=none"], "experiment=mnist_best sets scheduler.pct_start (scheduler=onecycle "
                                                  "has it), and scheduler=none has no such key. Keep the preset's "
                                                  "scheduler, or make a preset of your own: a copy of "
                                                  "configs/experiment/mnist_best.yaml with the scheduler you want"),
    (["-m", "sweep=lr_schedule", "experiment=mnist_best"], "experiment=mnist_best sets scheduler.pct_start "
                                                           "(scheduler=onecycle has it), and another scheduler (a "
                                                           "study may sweep it) has no such key."),
    (["-m", "experiment=mnist_best", "scheduler=onecycle,none"],  # it named onecycle,none as lacking the key
     "experiment=mnist_best sets scheduler.pct_start (scheduler=onecycle has it), and scheduler=none has no such key."),
    (["-m", "experiment=mnist_best", "scheduler=glob(*)"], "experiment=mnist_best sets scheduler.pct_start "
                                                           "(scheduler=onecycle has it), and scheduler=glob(*) draws "
                                                           "one that has no such key."),
    (["model=lenet6"], "model=lenet6 is not an option of model (did you mean lenet5?): choose one of lenet5, "
                       "lenet5_classic."),
    (["-m", "hydra/launcher=stackd", "seed=0,1"], "hydra/launcher=stackd is not an option of hydra/launcher (did you "
                                                  "mean stacked?): choose one of basic, joblib, slurm, stacked,"),
    (["trainer.epochs=1.5"], "Invalid config value trainer.epochs=1.5: expected an integer. Fix it on the command"),
    (["model.batch_norm=maybe"], "Invalid config value model.batch_norm='maybe': expected true or false."),
    (["trainer.deterministic=2"], "Invalid config value trainer.deterministic=2: expected true or false."),
    (["-m", "model.batch_norm=0,2"], "Invalid config value model.batch_norm=2: expected true or false."),
    (["model.activation=gelu"], "Invalid config value model.activation='gelu': expected one of [relu, tanh]."),
    (["seed=null"], "Invalid config value seed=null: expected a value: this setting cannot be null."),
    (["-m", "model=lenet5,lenet6"], "model=lenet6 is not an option of model (did you mean lenet5?)"),
    (["model.hidden=[120,84"], "model.hidden=[120,84 cannot be read as an override (no viable alternative at input"),
    (["optimizer.lr"], "optimizer.lr cannot be read as an override (no '=' and value). Write key=value"),
    (["optimizer.lr=1e-3,3e-3"], "optimizer.lr=1e-3,3e-3 gives several values: add -m to sweep over them"),
    # Hydra's own lines, each with its HYDRA_FULL_ERROR line
    (["seed=range(0,3)"], "seed=range(0,3) gives several values: add -m to sweep over them."),
    (["--config-dir", "/no_such_folder"], "--config-dir /no_such_folder: no such folder. Give the folder that holds "
                                          "your config files"),
    (["hydra.searchpath=file:///tmp"], "hydra.searchpath=file:///tmp is not a list: write "
                                       "'hydra.searchpath=[file:///tmp]'."),
    (["task=predict", "ckpt=best.pt", "image=a.png,b.png"], "image=a.png,b.png gives several paths: add -m to run once "
                                                            "for each"),  # not image=[…], which takes no list
    (["+experiment=mnist_best"], "+experiment=mnist_best adds experiment, which the config has already: write "
                                 "experiment=mnist_best, without the +."),
    (["+trainer.epochs=3"], "+trainer.epochs=3 adds trainer.epochs, which the config has already: write "
                            "trainer.epochs=3, without the +."),
    (["-m", "optimizer=sgd,adam", "+optimizer.momentum=0.5"],  # without the +, adam's jobs had no such key
     "+optimizer.momentum=0.5 adds optimizer.momentum, which an option of optimizer=sgd,adam has already: sweep the "
     "options that take it apart from the others (e.g. -m optimizer=<those> optimizer.momentum=0.5), or write "
     "++optimizer.momentum=0.5 to set it in every option (the jobs of one that takes no such key then fail)."),
    (["=3"], "=3 has no key: write key=value, e.g. trainer.epochs=3."),
    (["=abc"], "=abc has no key: write key=value"),
    (["+=1"], "+=1 has no key: write key=value, e.g. trainer.epochs=3."),
    (["~"], "~ has no key: write ~key to leave out an optional group, e.g. ~experiment."),
    (["model=1"], "model=1: a config group takes one of its options, not 1: choose one of lenet5, lenet5_classic."),
    (["hydra="], "hydra= names Hydra's own config as a whole: set one of its keys instead, e.g. hydra.run.dir="),
    (["~experimnt"], "~experimnt deletes experimnt, which is not a setting (did you mean ~experiment?)."),
    (["~trainer.limit_batches"], "~trainer.limit_batches deletes trainer.limit_batches, which every run has: set it"),
    (["--config-name", "config", "-m", "model=null", "seed=0,1"], "model=null: a config group takes one of its "
                                                                 "options, not null"),
    (["~experiment", "dataset=1"], "dataset=1: a config group takes one of its options, not 1: choose one of "),
    (["experiment=mnist_bset"], "experiment=mnist_bset is not an option of experiment (did you mean mnist_best?)"),
    (["dataset=MNIST"], "dataset=MNIST is not an option of dataset (did you mean mnist?)"),
    (["optimizer.betas=0.9"], "Invalid config value optimizer.betas=0.9: expected a list in brackets, e.g. [a,b]."),
    (["hydra.run.dir=out/${y}"], "hydra.run.dir cannot be resolved: InterpolationKeyError: Interpolation key 'y' not "
                                 "found. Correct or leave out the ${...} in it."),
    (["-m", "seed=0,1", "hydra.sweep.dir=out/${y}"], "hydra.sweep.dir cannot be resolved: InterpolationKeyError"),
    (["-m", "seed=0,1", "+trainer.foo=${y}"], "Invalid config value trainer.foo='${y}' (unknown key): expected one "
                                              "of the schema's keys: epochs,"),  # refused before the sweep's jobs
    (["-m", "seed=0,1", "hydra.launcher.n_jobs=2"], "hydra.launcher.n_jobs is not a setting of the launcher chosen (it "
                                                    "has _target_): choose the launcher that has it first, e.g. "
                                                    "hydra/launcher=joblib."),
    (["-m", "seed=0,1", "hydra.launcher.max_stack=2"], "hydra.launcher.max_stack is not a setting of the launcher chosen "
                                                       "(it has _target_): choose the launcher that has it first, e.g. "
                                                       "hydra/launcher=stacked or hydra/launcher=stacked_slurm."),
    (["-m", "hydra/launcher=stacked", "seed=0,1", "hydra.launcher.max_stack=abc"],  # its example named no launcher
     "Invalid config value hydra.launcher.max_stack='abc': expected an integer. Fix it on the command line, e.g. "
     "`python run.py -m hydra/launcher=stacked hydra.launcher.max_stack=...`"),
    (["-m", "hydra/launcher=stacked", "seed=0,1", "hydra.launcher.submitit.cluster=foo"],  # a nested key's named none
     "Invalid config value hydra.launcher.submitit.cluster='foo': expected one of [local, slurm]. Fix it on the "
     "command line, e.g. `python run.py -m hydra/launcher=stacked hydra.launcher.submitit.cluster=...`"),
    # --help, --info and --cfg … --resolve compose the config too (each was a traceback)
    (["model=lenet7", "--help"], "model=lenet7 is not an option of model (did you mean lenet5?)"),
    (["trainer.epochz=1", "--info"], "trainer.epochz is not a setting (did you mean trainer.epochs?)"),
    (["trainer.epochs=${oops}", "--cfg", "job", "--resolve"], "trainer.epochs cannot be resolved (Interpolation key "
                                                                "'oops' not found): give it a value, or a ${…} that"),
    (["-m", "seed=0,1", "hydra.launcher.devices=2"], "hydra.launcher.devices is not a setting of the launcher chosen (it "
                                                     "has _target_): no launcher of hydra/launcher has it."),
    (["-m", "sweep=optuna", "hydra.sweeper.params.optimizer.lr=interval(1e-4,1e-2)"],
     "hydra.sweeper.params.optimizer.lr=interval(1e-4,1e-2): a search space goes on the command line key by key, as "
     "an override of its own: 'optimizer.lr=interval(1e-4,1e-2)' (with -m it takes the place of the study's space"),
    (["-m", "sweep=optuna", "hydra.sweeper.params={optimizer.lr:interval(1e-4,1e-2)}"],
     "hydra.sweeper.params={optimizer.lr:interval(1e-4,1e-2)}: a search space goes on the command line key by key"),
    # added, Hydra merged it into the default study's space: seeds x learning rates x batch sizes
    (["-m", "+hydra.sweeper.params.seed='0,1'"], "+hydra.sweeper.params.seed='0,1': a search space goes on the "
                                                 "command line key by key, as an override of its own: 'seed=0,1'"),
    (["-m", "sweep=optuna", "hydra.sweeper.n_trials=10,20"],
     "hydra.sweeper.n_trials=10,20 gives several values to a setting of Hydra itself, which a sweep cannot vary"),
    (["--config-name", "mnist_best"], "--config-name mnist_best names no config that composes a run: python run.py "
                                      "composes configs/config.yaml, and --config-name chooses another such file of "
                                      "configs/ or of --config-dir; experiment=mnist_best chooses that option."),
    (["--config-name=experiment/fashion_best"], "--config-name experiment/fashion_best names no config that composes a "
                                                "run: python run.py composes configs/config.yaml"),
    (["-cn", "model/lenet5"], "--config-name model/lenet5 names no config that composes a run: python run.py "
                              "composes configs/config.yaml, and --config-name chooses another such file of configs/ "
                              "or of --config-dir; model=lenet5 chooses that option."),  # it ran, in outputs/<date>/
    (["--config-name=lenet_exp_schema"], "--config-name lenet_exp_schema names no config that composes a run"),
    (["model=null"], "model=null: a config group takes one of its options, not null: choose one of lenet5, "
                     "lenet5_classic."),
    (["experiment=null", "--cfg", "job"], "experiment=null: a config group takes one of its options, not null: choose "
                                          "one of fashion_best, mnist_best, or write ~experiment to leave it out."),
    (["-m", "model=lenet5,1"], "model=lenet5,1: a config group takes one of its options, not 1: choose one of "
                               "lenet5, lenet5_classic."),  # Hydra's ValueError, with a traceback
    (["-m", "experiment=null,mnist_best"], "experiment=null,mnist_best: a config group takes one of its options, not "
                                           "null: choose one of fashion_best, mnist_best"),
    (["~trainer.epochs"], "~trainer.epochs deletes trainer.epochs, which every run has: set it instead"),
    (["+optimizer.amsgrad=true", "~optimizer.amsgrad"], "~optimizer.amsgrad deletes optimizer.amsgrad, which an "
                                                        "override of this command adds: leave out both."),
    (["~seed"], "~seed deletes seed, which every run has: set it instead (seed=…; `--cfg job` shows its value)."),
    (["~data_seed"], "~data_seed deletes data_seed, which every run has: set it instead (data_seed=…;"),
    (["~trainer", "trainer.epochs=1"], "~trainer deletes trainer, which every run has: set it instead (trainer.epochs=…;"),
    (["-m", "~seed", "seed=0,1"], "~seed deletes seed, which every run has"),
    (["~model"], "~model leaves the run with no model option, which every run needs: choose one of its options "
                 "(lenet5, lenet5_classic)."),
    (["~augment"], "~augment leaves the run with no augment option, which every run needs: choose one of its options "
                   "(affine, elastic, none)."),
    (["model=lenet5,lenet5_classic"], "model=lenet5,lenet5_classic gives several options of model: add -m to sweep "
                                      "over them, or choose one."),
    (["hydra.output_subdir=null"], "hydra.output_subdir=null: each run keeps Hydra's record of its config in .hydra/, "
                                   "which resume=, the sweep summary and the checks that keep a folder to one config "
                                   "read. Leave hydra.output_subdir as it is."),
    (["-m", "seed=0,1", "hydra.output_subdir=meta"], "hydra.output_subdir=meta: each run keeps Hydra's record"),
    (["-m", "seed=0,1", "hydra.sweep.subdir=../job_${hydra.job.num}"],
     "hydra.sweep.subdir=../job_${hydra.job.num} puts the jobs outside hydra.sweep.dir, where the summary"),
    # run again into its hydra.sweep.dir, each job trained again in a new folder, and the summary listed it twice
    (["-m", "seed=0,1", "hydra.sweep.subdir=${hydra.job.num}_${now:%H%M%S}"],
     "hydra.sweep.subdir=${hydra.job.num}_${now:%H%M%S} names ${now:…} (the time), which differs each time the sweep "
     "runs: the same command run again into its hydra.sweep.dir would train every job again in new folders"),
    (["-m", "seed=0,1", "hydra/launcher=submitit_local", "hydra.sweep.subdir=${hydra.job.id}"],
     "hydra.sweep.subdir=${hydra.job.id} names ${hydra.job.id} (submitit's job id), which differs each time"),
    # Hydra's pickle.load of a run folder's file (any code); its own errors were tracebacks
    (["--experimental-rerun", "made/.hydra/config.pickle"], "--experimental-rerun loads a pickle, which can run any "
                                                            "code the file holds, and a run's folder is data. `python "
                                                            "run.py resume=made` continues the run from its own "
                                                            "overrides (each checked), which made/.hydra/overrides.yaml"
                                                            " lists for a new one."),
    (["--run", "--info"], "--run and --info cannot go together: give one of them."),  # Hydra's named --shell_completion
    (["seed=1", "--hydra-help"], "--hydra-help prints Hydra's own help, which no setting of the run changes: drop "
                                 "seed=1, or give --help for the run's."),  # a traceback
    (["--resolve"], "The --resolve flag can only be used in conjunction with --cfg or --help"),  # Hydra's, with a
    (["-sc", "install=tcsh"], "No completion plugin for 'tcsh' found, available : bash fish zsh"),  # traceback
    (["-pseed"], "--package (-p) chooses the part of the config that --cfg prints"),  # as argparse reads it
    (["-p", "optimizer"], "--package (-p) chooses the part of the config that --cfg prints: add --cfg job, e.g. "
                          "python run.py --cfg job -p optimizer."),  # Hydra ignored it: the default recipe trained
    (["-m", "optimizer.lr=1e-3,2e-3", "hydra.sweep.dir=sweeps/lr_${optimizer.lr}"],  # the summary had 1 of 2 jobs
     "hydra.sweep.dir=sweeps/lr_${optimizer.lr} names optimizer.lr, which differs from job to job: each job would be "
     "a sweep of its own. Name it in each job's folder instead, e.g. hydra.sweep.subdir='${hydra.job.num}_"
     "${optimizer.lr}'."),
    (["model=[lenet5,lenet5_classic]"], "model=[lenet5,lenet5_classic] merges those options into one model, which is "
                                        "neither (the later one's values over the earlier's). Choose one, or sweep "
                                        "over them: python run.py -m model=lenet5,lenet5_classic."),
    (["-m", "seed=0,1", "optimizer=[adam,sgd]"], "optimizer=[adam,sgd] merges those options into one optimizer"),
    (["-m", "seed=0,1", "hydra.callbacks.sweep_summary.tensorboard=off"],
     "hydra.callbacks.sweep_summary.tensorboard=off: expected true or false."),  # a string: truthy, so on
    (["hydra.callbacks.sweep_summary.fail_on_error=0"], "hydra.callbacks.sweep_summary.fail_on_error=0: expected true"),
    # Hydra swept the last list alone, without a word
    (["-m", "optimizer.lr=range(1,3)", "optimizer.lr=1e-4,2e-4"], "optimizer.lr is given twice (optimizer.lr=range(1,3) "
                                                                  "and optimizer.lr=1e-4,2e-4), which a sweep does not "
                                                                  "combine"),
    (["-m", "seed=1,2", "++seed=3"], "seed is given twice (seed=1,2 and ++seed=3)"),  # each job ran twice
    # a + key's suggestion as a key's (trainer.EPOCHS=3 had it): but for case, and a part of a key
    (["+trainer.EPOCHS=3"], "Invalid config value trainer.EPOCHS=3 (unknown key; did you mean trainer.epochs?)"),
    # an item that a list does not have: a traceback (OmegaConf's ValueError), or Hydra's lines
    (["model.conv_channels.x=1"], "model.conv_channels.x=1 names an item that the list model.conv_channels does not "
                                  "have: give the whole list instead, e.g. model.conv_channels=[…]"),
    (["+model.conv_channels.x=1"], "+model.conv_channels.x=1 names an item that the list model.conv_channels does"),
    (["-m", "optimizer.betas.5=0.1,0.2"], "optimizer.betas.5=0.1 names an item that the list optimizer.betas does"),
    (["augment=elastic", "+augment.alpha=3"], "Invalid config value augment.alpha=3 (unknown key; did you mean "
                                              "augment.elastic_alpha?)"),
    # a key of another option: "which every run has: set it instead", where setting it is refused
    (["~optimizer.momentum"], "~optimizer.momentum: optimizer.momentum is not a setting of this optimizer "
                              "(optimizer=sgd has it), nothing to delete."),
    # an option named after another's schema: "(optimizer=adam has it)", as if adamw had no betas
    (["optimizer=sgd", "optimizer.betas=[0.9,0.99]"], "optimizer.betas is not a setting of this optimizer "
                                                      "(optimizer=adam and optimizer=adamw have it)."),
    (["--config-name", "mnist_best.yaml"], "--config-name mnist_best.yaml names no config that composes a run: "
                                           "python run.py composes configs/config.yaml, and --config-name chooses "
                                           "another such file of configs/ or of --config-dir; experiment=mnist_best "
                                           "chooses that option."),  # as without .yaml
    (["+foo=${oops}", "--cfg", "job", "--resolve"], "foo cannot be resolved (Interpolation key"),  # "+foo cannot"
    # let through as an optimizer's argument would be, where one was added: trained, the key ignored
    (["+optimizer.amsgrad=true", "+weight_decay=0.5"], "Invalid config value weight_decay=0.5 (unknown key)"),
    # Hydra's 7 lines ("Cannot merge DictConfig with ListConfig")
    (["optimizer.betas={}"], "Invalid config value optimizer.betas='{}': expected a list in brackets, e.g. [a,b]."),
    # a list's item, set as `model.conv_channels[0]=`, which is no override; a null one as "not the group itself"
    (["model.conv_channels=[1.5]"], "Invalid config value model.conv_channels=1.5: expected an integer for each item. "
                                    "Fix it on the command line, e.g. `python run.py model.conv_channels=...`"),
    (["augment=affine", "augment.scale=[null,1]"], "Invalid config value augment.scale=null: expected a number for "
                                                   "each item."),
    # OmegaConf's own words after "expected": "Cannot convert 'list' to string", "is not a valid input for <enum"
    (["dataset.root=[1]"], "Invalid config value dataset.root=[1]: expected a string (a path or a name)."),
    (["model.activation=[relu]"], "Invalid config value model.activation=['relu']: expected one of [relu, tanh]."),
    # every record names the run's data set and model by it: an empty one began its lines with ": 256 train"
    (["dataset.name="], "Invalid config value dataset.name='': expected a name (not empty)."),
    # emptied on the command line: refused once the data had loaded, or told to fix "the model's YAML"
    (["optimizer._target_="], "Invalid config value optimizer._target_=null: expected the torch.optim class"),
    (["model._target_="], "Invalid config value model._target_=null (the command line names no class)"),
    # ~key=value deletes the key only at that value: Hydra's "Could not delete …" named no fix
    (["~optimizer.lr=0.5"], "~optimizer.lr=0.5 deletes optimizer.lr, which every run has: set it instead"),
    (["-m", "~trainer.epochs=1,2"], "~trainer.epochs=1,2 deletes trainer.epochs, which every run has: set it instead"),
    (["+optimizer.amsgrad=true", "~optimizer.amsgrad=false"], "~optimizer.amsgrad=false deletes optimizer.amsgrad only "
     "where it is False, and it is True: write ~optimizer.amsgrad to delete it whatever it is, or leave the override "
     "out."),
    (["~experiment=fashion_best"], "~experiment=fashion_best deletes experiment only where it is fashion_best, and "
                                   "this command chooses no such option: write ~experiment to delete it whatever it "
                                   "is"),
    # the basic sweeper's setting, under Optuna's (its advice named Optuna); no job at a time (Hydra's assert)
    (["-m", "sweep=optuna", "hydra.sweeper.max_batch_size=2"], "hydra.sweeper.max_batch_size is not a setting of the "
     "sweeper chosen (it has "),
    (["-m", "seed=0,1", "hydra.sweeper.max_batch_size=abc"], "Invalid config value hydra.sweeper.max_batch_size='abc': "
     "expected an integer. Fix it on the command line, e.g. `python run.py -m hydra.sweeper.max_batch_size=...`"),
    (["-m", "seed=0,1", "hydra.sweeper.max_batch_size=0"], "hydra.sweeper.max_batch_size=0 hands the launcher no job "
     "at a time. Give the number of jobs at a time (1 or more), or null (or -1) for all of them at once."),
    (["-m", "seed=0,1", "hydra.sweep.dir=out/a,b"], "hydra.sweep.dir=out/a,b gives several values to a setting of "
     "Hydra itself, which a sweep cannot vary: give it one: a path with a comma is quoted, 'hydra.sweep.dir=\"…\"'."),
    # of a setting: Hydra made no job ("No job directories found")
    (["-m", "optimizer.lr=glob(*)"], "optimizer.lr=glob(*): glob() chooses among the options of a config group "
     "(model=glob(*)), and optimizer.lr is none: list its values instead, e.g. optimizer.lr=<v1>,<v2> or "
     "optimizer.lr='range(…)'."),
    # a search space is no Hydra key to delete: it said "goes on the command line key by key"
    (["-m", "~hydra.sweeper.params"], "~hydra.sweeper.params: the study's search space is the sweep option's "
                                      "(sweep=NAME): ~sweep leaves the study out"),
    (["-m", "~hydra.sweeper.params.optimizer.lr"], "~hydra.sweeper.params.optimizer.lr: the study's search space is "
     "the sweep option's (sweep=NAME): one value, optimizer.lr=…, takes the place of the study's space for "
     "optimizer.lr"),
    # "not a setting of this optimizer (optimizer=sgd has it), nothing to delete", of a sweep of sgd's jobs too
    (["-m", "optimizer=sgd,adam", "~optimizer.momentum"],
     "~optimizer.momentum: optimizer.momentum is a setting of optimizer=sgd only, not of optimizer=adam: sweep those "
     "apart."),
    # tracebacks: Hydra's bare AssertionError, its KeyError of the shell's COMP_LINE
    (["hydra.verbose=1"], "hydra.verbose=1: give true, the name of a logger to show at DEBUG (hydra.verbose=lenet_exp) "
                          "or a list of them"),
    (["-sc", "query=bash"], "-sc query=bash answers the shell, which passes the command line being completed in "
                            "COMP_LINE. Install the completion instead: eval \"$(python run.py -sc install=bash)\"."),
    # Hydra's "Primary config directory not found" and "Cannot find primary config 'config'", several lines each
    (["--config-path", "/no/such/folder"], "--config-path /no/such/folder is no folder: give the folder of a primary "
                                           "config (config.yaml); a relative one is read from run.py's folder"),
    (["--config-path", "file:///no/such/folder"], "--config-path takes a folder, not a URL: --config-path "
                                                  "/no/such/folder."),
    (["--config-path", "configs/model"], "--config-path configs/model holds no config.yaml, the primary config that it "
                                         "gives in the place of configs/config.yaml: --config-dir configs/model adds"),
    # Hydra's UserWarning ("overriding with `hydra.mode=MULTIRUN`"), and the default study's 6 jobs
    (["--multirun", "hydra.mode=RUN"], "--multirun sweeps, and hydra.mode=RUN runs once: give one of them."),
    (["-m", "hydra.mode='RUN'"], "-m sweeps, and hydra.mode='RUN' runs once: give one of them."),
    # Hydra's "package 'hydra.run' not found in config"
    (["--cfg", "job", "-p", "hydra.run"],
     "--cfg job prints the run's config, without Hydra's: --cfg hydra -p hydra.run prints hydra.run."),
    # Hydra's "Error locating target …" and "Error in call to target …", each over four lines
    (["+hydra.callbacks.mine._target_=no_such_module.Callback"],
     "hydra.callbacks.mine._target_=no_such_module.Callback cannot be imported: give the dotted path of a class that "
     "Python can import (its module on PYTHONPATH"),
    (["+hydra.callbacks.mine._target_=lenet_exp.callbacks.OutputDirCheck", "+hydra.callbacks.mine.colour=1"],
     "hydra.callbacks.mine: lenet_exp.callbacks.OutputDirCheck refused its settings: TypeError("),
    # it ran 12 jobs, the seeds times the default study, with none of a sweep's checks and no summary
    (["-m", "seed=0,1", "~hydra.callbacks.sweep_summary"], "~hydra.callbacks.sweep_summary removes callbacks of "
     "lenet_exp's, which check a run or a sweep before anything is written and summarise a sweep. Keep them"),
    # the same: the refusal above went with the callback; null's jobs warned of "NoneType.on_job_end" (helper regress59)
    (["-m", "seed=0,1", "~hydra.callbacks.output_dir_check"], "~hydra.callbacks.output_dir_check removes callbacks"),
    (["-m", "seed=0,1", "hydra.callbacks.sweep_summary=null"], "hydra.callbacks.sweep_summary=null removes callbacks"),
    (["~hydra.callbacks"], "~hydra.callbacks removes callbacks of lenet_exp's"),
    # "cannot be resolved: … HydraConfig was not set"
    (["-m", "seed=0,1", "hydra.sweep.dir=out/${hydra:runtime.choices.optimizer}"],
     "hydra.sweep.dir cannot use ${hydra:…}, which Hydra resolves in each job's config, not in the sweep's: write "
     "${hydra.…} instead (e.g. ${hydra.runtime.choices.optimizer})."),
    # "Fix it on the command line, e.g. `python run.py trainer=...`": what it refused (helper help60)
    (["trainer=5"], "trainer=5: trainer is a section of settings, not a setting: set its keys, e.g. trainer.epochs=… "
                    "(`python run.py --cfg job -p trainer` lists them)."),
    # Hydra's bare "package 'trainer.epoch' not found in config", without "Error:" (helper help60)
    (["--cfg", "job", "-p", "trainer.epoch"], "-p trainer.epoch names nothing in the config (did you mean "
                                              "trainer.epochs?): `python run.py --cfg job` prints it whole."),
    (["--cfg", "job", "-p", "optimizer.momentum"], "-p optimizer.momentum names nothing in the config (optimizer=sgd "
                                                   "has it)"),
    (["--cfg", "hydra", "-p", "trainer"], "--cfg hydra prints Hydra's config, which has no trainer: --cfg job -p "
                                          "trainer prints the run's."),
    # the completion's install=bash composed as an override: "install is not a setting" (helper help60)
    (["--help", "-sc", "install=bash"], "--help and --shell-completion cannot go together: give one of them."),
    # lenet_exp's basic sweeper named over Optuna's: "BasicSweeper.__init__() got an unexpected keyword argument"
    (["-m", "hydra/sweeper=optuna"], "hydra/sweeper=optuna: Optuna's sweeper comes with its study and lenet_exp's "
                                     "ending (the summary on a stop): choose it with sweep=optuna"),
    (["-sc", "install"], "-sc install names no shell: give one of bash, fish, zsh, e.g. eval \"$(python run.py -sc "
                         "install=bash)\"."),  # Hydra's "No completion plugin for 'None' found"
    # "is not a setting of this optimizer (optimizer=sgd has it)", as if one run's (helper fixes60)
    (["-m", "sweep=optimizers", "optimizer.momentum=0.5"], "optimizer.momentum is a setting of optimizer=sgd only, not "
                                                           "of optimizer=adam and optimizer=adamw: sweep those apart."),
    # one run names no sweep with its study: the one run's message (helper regress60)
    (["sweep=optimizers", "optimizer.momentum=0.5"], "optimizer.momentum is not a setting of this optimizer "
                                                     "(optimizer=sgd has it)."),
    # a misspelt sweeper: told to choose sweep=optuna (helper regress60)
    (["-m", "hydra/sweeper=optuan"], "hydra/sweeper=optuan is not an option of hydra/sweeper (did you mean optuna?)"),
    # fixed as one run's (`python run.py trainer.monitor=...`), without -m (helper stackfail60)
    (["-m", "trainer.monitor=val_acc,foo"], "Invalid config value trainer.monitor='foo': expected one of [val_acc, "
                                            "val_loss]. Fix it on the command line, e.g. `python run.py -m "
                                            "trainer.monitor=...`"),
    # a setting whose null is its default: "expected true or false" left it out (helper fastpaths61)
    (["trainer.channels_last=maybe"], "Invalid config value trainer.channels_last='maybe': expected true, false or "
                                      "null."),
    (["trainer.channels_last=2"], "Invalid config value trainer.channels_last=2: expected true, false or null."),
    (["hydra.job.chdir=maybe"], "Invalid config value hydra.job.chdir='maybe': expected true, false or null."),
    # a group force-added: Hydra's own line and its HYDRA_FULL_ERROR hint (helper regress61)
    (["++dataset=fashion_mnist"], "++dataset=fashion_mnist: ++ sets a key, and dataset is a config group: choose its "
                                  "option with dataset=fashion_mnist, without the ++."),
    # a group moved to another package: Hydra's own lines and its HYDRA_FULL_ERROR hint (helper api61)
    (["optimizer@foo=sgd"], "optimizer@foo=sgd: @foo would move config group optimizer elsewhere in the config, which "
                            "lenet_exp reads where it is: choose its option with optimizer=sgd, without the @foo."),
], ids=["key", "top-level-key", "part-of-a-key", "key-of-another-option", "key-of-the-options-swept",
        "key-of-one-option-swept", "key-of-the-options-chosen-from", "key-of-no-option-swept", "optimizer-argument-refused",
        "optimizer-argument-type", "no-such-key", "optimizer-argument",
        "key-of-an-empty-node", "preset-key-of-a-replaced-option", "preset-key-of-a-swept-option",
        "preset-key-of-an-option-swept-here", "preset-key-of-an-option-drawn", "option", "launcher",
        "integer", "bool", "bool-number", "bool-number-swept", "choice", "null", "swept-option", "grammar", "no-value", "several-values", "range-without-m",
        "no-config-dir", "searchpath-not-a-list", "several-paths", "plus-group", "plus-key", "plus-key-swept",
        "no-key-number", "no-key-word", "no-key-added", "no-key-deleted", "group-number", "hydra-whole",
        "deleted-typo", "deleted-null-setting-of-a-section", "group-null-after-flags", "group-number-after-a-deletion",
        "experiment", "option-case", "list", "run-dir-interpolation", "sweep-dir-interpolation",
        "unknown-key-interpolation-in-a-sweep", "launcher-key", "stacked-launcher-key", "launcher-value",
        "nested-launcher-value", "help-of-an-unknown-option", "info-with-a-typo", "resolve-of-an-unknown-key",
        "no-launchers-key", "search-space-key",
        "search-space", "search-space-added", "hydra-setting-swept", "config-name-of-an-option", "config-name-of-a-group-file", "config-name-of-an-option-that-composes",
        "config-name-of-the-schema",
        "group-null", "group-null-shown", "group-number-swept", "group-null-swept", "deleted-setting", "deleted-added-key", "deleted-run-setting", "deleted-null-setting",
        "deleted-section", "deleted-in-a-sweep", "deleted-group", "deleted-group-augment", "several-options", "no-record",
        "record-renamed", "jobs-outside-the-sweep", "subdir-of-the-time", "subdir-of-the-submitit-job-id", "rerun-of-a-pickle", "run-and-info", "hydra-help-with-a-setting",
        "resolve-without-cfg", "completion-of-another-shell", "package-attached", "package-without-cfg",
        "sweep-dir-of-a-swept-key", "merged-options", "merged-options-of-two-schemas",
        "summary-switch-word", "summary-switch-number", "swept-twice", "swept-twice-with-plus",
        "plus-key-case", "list-item-word", "plus-list-item-word", "list-item-out-of-range", "plus-key-part",
        "deleted-key-of-another-option", "key-of-two-options-of-one-schema", "config-name-of-an-option-file",
        "resolve-of-an-added-key", "top-level-key-named-as-an-optimizer-argument", "dict-for-a-list",
        "list-item-of-a-type", "list-item-null", "list-for-a-string", "list-for-a-choice", "empty-name",
        "optimizer-class-emptied", "model-class-emptied", "deleted-at-another-value", "deleted-at-values-swept",
        "deleted-added-key-at-another-value", "deleted-option-not-chosen", "basic-sweepers-key-under-optuna",
        "basic-sweepers-value", "no-job-at-a-time", "sweep-dir-with-a-comma", "glob-of-a-setting",
        "search-space-deleted", "key-of-the-search-space-deleted", "deleted-setting-of-one-option-swept",
        "verbose-of-a-number", "completion-query-outside-the-shell", "config-path-to-no-folder", "config-path-as-a-url",
        "config-path-without-its-config", "multirun-and-mode-run", "multirun-and-mode-run-quoted",
        "package-of-hydra-in-the-jobs-config",
        "callback-of-no-class", "callback-refusing-its-settings",
        "sweep-without-its-summary", "sweep-without-its-checks", "summary-callback-null", "callbacks-deleted",
        "sweep-dir-of-hydras-resolver", "section-given-a-value", "package-typo", "package-of-another-option",
        "package-of-the-run-in-hydras", "help-and-completion", "optuna-sweeper-alone", "completion-without-a-shell",
        "key-of-the-options-a-study-sweeps", "key-of-the-options-a-study-would-sweep-in-one-run", "sweeper-typo",
        "wrong-type-swept", "null-left-out", "number-where-null-is-taken", "hydras-own-null-left-out",
        "group-force-added",
        "group-of-another-package"])
def test_a_typo_on_the_command_line_gets_one_line_that_says_what_to_type(typo, message, tmp_path):
    """Hydra's own message is several lines of its internals, and for a key it suggests +key=, which adds a
    setting that nothing reads."""
    result = run_main(typo, cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if not line.startswith("[hydra]")]  # a sweep's note
    assert result.returncode == 1 and len(errors) == 1 and errors[0].startswith(f"Error: {message}"), result.stderr
    # no run, no sweep: one that its first job's config refused left a folder of its multirun.yaml and lock
    assert not (tmp_path / "outputs" / "runs").exists() and not list(tmp_path.rglob(".hydra"))
    assert not [path for path in tmp_path.rglob("*") if path.is_file()], list(tmp_path.rglob("*"))


@pytest.mark.parametrize("info", ["config", "searchpath", "defaults-tree"])
def test_info_with_a_typo_prints_its_error_alone(info, tmp_path):
    """It printed the config search path's header to stdout, then the error."""
    result = run_main(["--info", info, "optimizer=bogus"], cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, ""), result.stdout
    assert result.stderr.strip() == ("Error: optimizer=bogus is not an option of optimizer: choose one of adam, "
                                     "adamw, sgd."), result.stderr


def test_a_key_of_the_basic_sweeper_under_optunas_is_told_whose_it_is(tmp_path):
    """It said to choose the sweeper that has it, "e.g. sweep=optuna": the one chosen."""
    result = run_main(["-m", "sweep=optuna", "hydra.sweeper.max_batch_size=2"], cwd=tmp_path)
    assert result.returncode == 1 and ("): it is Hydra's basic sweeper's, which every sweep= option but sweep=optuna "
                                       "runs.") in result.stderr, result.stderr


@pytest.mark.parametrize("sweep, said", [
    ("seed=0,1,1", "seed=0,1,1 gives 1 twice"),
    ("optimizer.lr=1e-3,0.001", "optimizer.lr=1e-3,0.001 gives 0.001 twice"),  # one value, spelled two ways
    ("model.dropout=0,0.0", "model.dropout=0,0.0 gives 0.0 twice"),
    ("optimizer='adam',adam", "optimizer='adam',adam gives 'adam' twice"),
])
def test_a_sweep_that_gives_a_value_twice_is_refused_before_it_trains_a_job_twice(sweep, said, tmp_path):
    """Hydra trained the job twice, in two folders; the summary counted its seed twice."""
    result = run_main(["-m", sweep], cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == (
        f"Error: {said}, a job the sweep would train twice (in two folders, counted twice by its summary): give "
        f"each value once."), result.stderr
    assert not [path for path in tmp_path.rglob("*") if path.is_file()], list(tmp_path.rglob("*"))


def a_study_of_ones_own(folder: Path, name: str, seeds: str) -> list[str]:
    """`-m --config-dir <folder>/mine sweep=NAME`, where NAME's study file sweeps `seed: SEEDS`."""
    (folder / "mine" / "sweep").mkdir(parents=True, exist_ok=True)
    (folder / "mine" / "sweep" / f"{name}.yaml").write_text(f"# @package _global_\nhydra:\n  sweeper:\n    params:\n"
                                                            f"      seed: {seeds}\n")
    return ["-m", "--config-dir", str(folder / "mine"), f"sweep={name}"]


def test_a_study_file_that_gives_a_value_twice_is_refused_as_the_command_line_is(fast, tmp_path):
    """A study of one's own (`seed: 0,0`) trained seed 0 twice; the command line's values of the key replace it."""
    result = run_main(a_study_of_ones_own(tmp_path, "dup", "0,0"), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == (
        "Error: seed=0,0 gives 0 twice, a job the sweep would train twice (in two folders, counted twice by its "
        "summary): give each value once."), result.stderr
    replaced = run_main([*a_study_of_ones_own(tmp_path, "dup", "0,0"), "seed=1,2", *fast], cwd=tmp_path)
    assert replaced.returncode == 0 and "Sweep " in replaced.stdout + replaced.stderr, replaced.stderr[-2000:]


def test_a_study_files_wrong_value_is_said_to_be_the_study_files(tmp_path):
    """`seed: [0, 1]` in a study of one's own (a list: one value) was told "fix it on the command line", which gave
    no seed, "or in configs/"."""
    result = run_main(a_study_of_ones_own(tmp_path, "listed", "[0, 1]"), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == (
        "Error: Invalid config value seed=[0, 1]: expected an integer. The study gives it: fix "
        "hydra.sweeper.params.seed in the file of sweep=listed (a list there is one value: `seed: 0,1` sweeps "
        "each)."), result.stderr
    (tmp_path / "mine" / "experiment").mkdir()  # a preset's: it was said to be sweep=default's (helper regress60)
    (tmp_path / "mine" / "experiment" / "exps.yaml").write_text("# @package _global_\nhydra:\n  sweeper:\n    params:\n"
                                                               "      seed: abc\n")
    preset = run_main(["-m", "--config-dir", str(tmp_path / "mine"), "experiment=exps"], cwd=tmp_path)
    assert preset.returncode == 1 and preset.stderr.strip().endswith(
        "The study gives it: fix hydra.sweeper.params.seed in the file of experiment=exps."), preset.stderr
    given = run_main(["-m", "seed=[0,1]"], cwd=tmp_path)  # the command line's own: fixed there
    assert given.returncode == 1 and "Fix it on the command line, e.g. `python run.py -m seed=...`" in given.stderr
    assert not [path for path in tmp_path.rglob("*") if path.is_file() and "mine" not in path.parts]


def test_printing_a_null_setting_and_info_before_an_override_work(tmp_path):
    """`--cfg job -p ckpt` said "package 'ckpt' not found in config" of a setting that is null; `--info seed=3` was
    argparse's usage and "invalid choice: 'seed=3'", where `seed=3 --info` worked (helper help60)."""
    null = run_main(["--cfg", "job", "-p", "ckpt"], cwd=tmp_path)
    assert null.returncode == 0 and null.stdout.strip() == "null", null.stderr
    info = run_main(["--info", "seed=3"], cwd=tmp_path)
    assert info.returncode == 0 and "\nseed: 3\n" in info.stdout, info.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("line, offered", [
    ("python run.py res", ["resume="]),
    ("python run.py resume=outputs/x trainer.ep", ["trainer.epochs="]),  # composed without resume=, no key of it
    ("python run.py resume=ru", ["resume=run/"]),
    ("python run.py task=eval ckpt=run/checkpoints/", ["ckpt=run/checkpoints/best.pt", "ckpt=run/checkpoints/last.pt"]),
    ("python run.py task=", ["task=eval", "task=predict", "task=train"]),
    ("python run.py -m trainer.deterministic=", ["trainer.deterministic=false", "trainer.deterministic=true"]),
    ("python run.py -m seed=1,2 task=", ["task=eval", "task=predict", "task=train"]),  # (only task=train: regress60)
    ("python run.py optimizer=sgd optimizer.mom", ["optimizer.momentum="]),  # Hydra's own, as before
    ("python run.py --config-dir mine optimizer=", ["optimizer=adam", "optimizer=adamw", "optimizer=rms",
                                                    "optimizer=sgd"]),  # an option of one's own, and its keys
    ("python run.py -cd mine optimizer=rms optimizer.al", ["optimizer.alpha="]),
])
def test_the_shell_completion_offers_run_pys_own_words(line, offered, tmp_path):
    """Hydra's completer knew the config alone: nothing after a resume= (it composed with it), no resume=, no path
    of ckpt= (its value has no ./), and task=train alone for task=, the value it has now (helper help60)."""
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    for name in ("best.pt", "last.pt"):
        (tmp_path / "run" / "checkpoints" / name).touch()
    (tmp_path / "mine" / "optimizer").mkdir(parents=True)
    (tmp_path / "mine" / "optimizer" / "rms.yaml").write_text("_target_: torch.optim.RMSprop\nlr: 0.01\nalpha: 0.9\n")
    result = run_main(["-sc", "query=bash"], cwd=tmp_path, env={"COMP_LINE": line, "COMP_POINT": str(len(line))})
    assert result.returncode == 0 and result.stdout.split() == offered, result.stdout + result.stderr


def test_hydra_full_error_still_shows_hydras_own_error(tmp_path):
    result = run_main(["trainer.epoch=3"], cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode == 1 and "ConfigCompositionException: Could not override 'trainer.epoch'." in result.stderr


def test_a_study_or_launcher_named_for_one_run_says_that_it_does_not_sweep(fast, tmp_path):
    """... but a sweep job resumed alone is no such run: resume= leaves its sweep=… out."""
    result = run_main([*fast, "sweep=seeds", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sweep=seeds is the search space of a sweep: this is one run. Add -m to sweep." in result.stderr
    sweep = run_main([*fast, "-m", "sweep=seeds", "hydra.sweeper.params.seed=0", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                     cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr
    job = tmp_path / "sweep" / "0"  # one job: named by its number alone
    assert "sweep=seeds" in (job / ".hydra" / "overrides.yaml").read_text()
    resumed = run_main([f"resume={job}"], cwd=tmp_path)
    assert resumed.returncode == 0 and "Already completed" in resumed.stderr and "search space" not in resumed.stderr
    no_study = run_main([*fast, "~sweep", f"hydra.run.dir={tmp_path / 'no_study'}"], cwd=tmp_path)
    assert no_study.returncode == 0 and "search space" not in no_study.stderr, no_study.stderr
    launcher = run_main([*fast, "hydra/launcher=stacked", f"hydra.run.dir={tmp_path / 'launcher'}"], cwd=tmp_path)
    assert launcher.returncode == 0, launcher.stderr
    assert "hydra/launcher=stacked says how a sweep runs: this is one run. Add -m to sweep." in launcher.stderr
    assert "says how a sweep runs" not in sweep.stderr + result.stderr


def test_a_smoke_runs_accuracy_says_how_much_of_the_test_and_val_splits_it_saw(fast, tmp_path):
    result = run_main([*fast, "trainer.limit_batches=1", "trainer.eval_batch_size=50", f"hydra.run.dir={tmp_path / 'run'}"],
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "on 50 of 200 test images, val on its first batch (trainer.limit_batches). Artifacts in" in result.stderr
    test = read_json(tmp_path / "run" / "metrics.json")["test"]
    assert (test["samples"], test["split_samples"]) == (50, 200)
    # two batches of 50 hold the 100 val images: only the test split was cut short
    val = run_main([*fast, "trainer.limit_batches=2", "trainer.eval_batch_size=50", f"hydra.run.dir={tmp_path / 'val'}"],
                   cwd=tmp_path)
    assert "on 100 of 200 test images (trainer.limit_batches). Artifacts in" in val.stderr, val.stderr
    # and the other way round: all 200 test images, 200 of the 300 val images
    test = run_main([*fast, "dataset.val_size=300", "trainer.limit_batches=2", "trainer.eval_batch_size=100",
                     f"hydra.run.dir={tmp_path / 'test'}"], cwd=tmp_path)
    assert re.search(r"test loss \d\.\d{4}, val on its first 2 batches \(trainer.limit_batches\)\. Artifacts in",
                     test.stderr), test.stderr
    whole = run_main([*fast, f"hydra.run.dir={tmp_path / 'whole'}"], cwd=tmp_path)
    assert "(trainer.limit_batches)" not in whole.stderr
    assert read_json(tmp_path / "whole" / "metrics.json")["test"]["samples"] == 200


def test_a_config_file_of_ones_own_that_is_not_yaml_gets_one_line_naming_where(tmp_path):
    """A new option's YAML (README: "one YAML in configs/optimizer/"), here in a folder of one's own."""
    (tmp_path / "mine" / "optimizer").mkdir(parents=True)
    (tmp_path / "mine" / "optimizer" / "rmsprop.yaml").write_text("_target_: torch.optim.RMSprop\nlr: [0.01\n")
    result = run_main(["optimizer=rmsprop", f"hydra.searchpath=[file://{tmp_path / 'mine'}]"], cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip() == (
        f"Error: {tmp_path / 'mine' / 'optimizer' / 'rmsprop.yaml'}, line 3, column 1: expected ',' or ']', but got "
        f"'<stream end>' (the file is not valid YAML; compare it with the other files of its folder).")


@pytest.mark.parametrize("group, yaml_text, expected", [
    # a module without the class: Hydra's "No module named 'torch.optim.NoSuch'; 'torch.optim' is not a package"
    ("optimizer", "_target_: torch.optim.NoSuch\nlr: 0.1\n", "optimizer._target_='torch.optim.NoSuch' (torch.optim "
     "has no NoSuch): expected a torch.optim class whose arguments match the optimizer options."),
    ("model", "_target_: lenet_exp.models.lenet5.LeNet6\n", "model._target_='lenet_exp.models.lenet5.LeNet6' "
     "(lenet_exp.models.lenet5 has no LeNet6): expected a model class"),
    ("optimizer", "lr: 0.1\n", "optimizer._target_=null: expected the torch.optim class that the option's YAML names"),
    ("model", "_target_: lenet_exp.models.nope.Net\n", "model._target_='lenet_exp.models.nope.Net': expected a model "
     "class whose arguments match configs/model/ (ModuleNotFoundError: No module named 'lenet_exp.models.nope')."),
    ("model", "name: mine\n", "model._target_=null (the model's YAML names no class): expected the class of a model "
     "of one's own (e.g. _target_: my_models.MyNet), or for a LeNet-5 variant its schema"),
    # a copy of lenet5.yaml without its defaults: told once the data had loaded, with LeNet5's _target_ to add
    ("model", "name: wide\nactivation: relu\npooling: max\nbatch_norm: true\nconv_channels: [12, 32]\n"
              "hidden: [120, 84]\n", "a YAML that begins as configs/model/lenet5.yaml does, with `defaults: "
                                   "[/schema_model_lenet5@_here_, _self_]`. Fix it in the model's YAML."),
    # the YAML named as the option chosen: it said configs/optimizer/, where it is not
    ("optimizer", "_target_: torch.optim.RMSprop\nlr: 0.01\nbogus: 3\n", "optimizer.bogus=3: torch.optim.RMSprop "
     "takes no argument bogus. Leave it out of the command line (or of optimizer/mine.yaml)."),
    ("optimizer", "_target_: torch.optim.RMSprop\nlr: 0.01\neps: -1.0\n", "Fix the value on the command line (e.g. "
     "optimizer.eps=…) or in optimizer/mine.yaml."),
], ids=["no-such-optimizer", "no-such-model-class", "optimizer-without-target", "no-such-model", "model-without-target",
        "lenet-variant-without-schema", "optimizer-argument-it-lacks", "optimizer-argument-it-refuses"])
def test_an_option_of_ones_own_naming_no_class_gets_one_line(group, yaml_text, expected, fast, tmp_path):
    (tmp_path / "mine" / group).mkdir(parents=True)
    (tmp_path / "mine" / group / "mine.yaml").write_text(yaml_text)
    result = run_main([*fast, f"{group}=mine", f"hydra.searchpath=[file://{tmp_path / 'mine'}]"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Error getting class" not in result.stderr and "Are you sure" not in result.stderr  # Hydra's, of 3 lines
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and expected in errors[0], result.stderr


def test_a_value_torch_refuses_of_an_argument_added_with_a_plus_is_fixed_with_the_plus(fast, tmp_path):
    """The fix said `optimizer.eps=…`, which is refused as no setting of Adam's schema: it was added with a +."""
    result = run_main([*fast, "+optimizer.eps=nan"], cwd=tmp_path)
    assert result.returncode == 1 and "Invalid epsilon value: nan. Fix the value on the command line (e.g. " \
                                      "+optimizer.eps=…) or in optimizer/adam.yaml." in result.stderr, result.stderr


@pytest.mark.parametrize("option, preset", [("experiment=mine", "trainer:\n  epochs: 1\n"),
                                            ("+trial=mine", "trainer:\n  epochs: 1\n"),
                                            # Hydra's two lines: "Could not override 'optimizer@experiment.optimizer'"
                                            ("experiment=mine", "defaults:\n  - override /optimizer: sgd\n")])
def test_a_preset_of_ones_own_without_its_package_line_is_told_to_add_it(option, preset, tmp_path):
    """Without `# @package _global_` Hydra nests a preset's keys under its group: "experiment is not a setting"."""
    group = option.lstrip("+").split("=")[0]
    (tmp_path / "mine" / group).mkdir(parents=True)
    (tmp_path / "mine" / group / "mine.yaml").write_text(preset)
    result = run_main([option, f"hydra.searchpath=[file://{tmp_path / 'mine'}]", "--cfg", "job"], cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip() == (
        f"Error: {group}/mine.yaml puts its keys under {group}: a preset that sets the run's own settings "
        "(trainer.epochs, optimizer.lr, ...) or chooses its options (override /optimizer: sgd) begins with the line "
        "`# @package _global_`, as configs/experiment/mnist_best.yaml does."), result.stderr
    (tmp_path / "mine" / group / "mine.yaml").write_text("# @package _global_\ntrainer:\n  epochs: 1\n")
    result = run_main([option, f"hydra.searchpath=[file://{tmp_path / 'mine'}]", "--cfg", "job"], cwd=tmp_path)
    assert result.returncode == 0 and "epochs: 1\n" in result.stdout


def search_path_of(tmp_path: Path, files: dict[str, str]) -> str:
    """``hydra.searchpath=[…]`` of a folder of one's own configs: ``files``, each path in it and its text."""
    for name, text in files.items():
        (tmp_path / "mine" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "mine" / name).write_text(text)
    return f"hydra.searchpath=[file://{tmp_path / 'mine'}]"


def test_a_study_of_ones_own_that_sweeps_no_such_option_is_told_in_one_line_that_names_the_file(tmp_path):
    """Hydra's several lines ("Could not find 'model/lenet9'", its search path) named no file."""
    searched = search_path_of(tmp_path, {
        "sweep/mine.yaml": "# @package _global_\nhydra:\n  sweeper:\n    params:\n      model: lenet5,lenet9\n"})
    result = run_main(["-m", "sweep=mine", searched], cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip() == (
        "Error: In sweep/mine.yaml: model: lenet5,lenet9 sweeps lenet9, which is not an option of model (did you mean "
        "lenet5?): choose among lenet5, lenet5_classic."), result.stderr


def test_an_option_of_ones_own_on_the_search_path_is_named_as_one_that_has_the_key(tmp_path):
    """The options listed as having a key were configs/'s only (the command line's hydra.searchpath unread)."""
    searched = search_path_of(tmp_path, {"optimizer/mysgd.yaml": "defaults:\n  - /schema_optimizer_sgd@_here_\n  - "
                                         "_self_\n\nlr: 0.1\nweight_decay: 0.0\nmomentum: 0.5\nnesterov: false\n"})
    for override, said in (("optimizer.momentum=0.5", "optimizer.momentum is not a setting of this optimizer"),
                           ("~optimizer.momentum", "~optimizer.momentum: optimizer.momentum is not a setting of this "
                                                   "optimizer")):
        result = run_main([searched, override, "--cfg", "job"], cwd=tmp_path)
        assert result.returncode == 1 and result.stderr.strip().startswith(
            f"Error: {said} (optimizer=mysgd and optimizer=sgd have it)"), result.stderr
    # an option that extends another of the group has that one's keys (its own defaults list names it)
    search_path_of(tmp_path, {"optimizer/myadam.yaml": "defaults:\n  - adam\n  - _self_\n\nlr: 2e-3\n"})
    result = run_main([searched, "optimizer=sgd", "optimizer.betas=[0.9,0.99]", "--cfg", "job"], cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip() == (
        "Error: optimizer.betas is not a setting of this optimizer (optimizer=adam, optimizer=adamw and "
        "optimizer=myadam have it)."), result.stderr


def test_a_presets_key_of_its_own_option_is_blamed_on_the_option_that_replaced_it(tmp_path):
    """adamw's YAML names adam's schema: "a key that optimizer=adamw, the preset's own choice, does not have"."""
    searched = search_path_of(tmp_path, {"experiment/mine.yaml": "# @package _global_\ndefaults:\n  - override "
                                         "/optimizer: adamw\noptimizer:\n  betas: [0.9, 0.99]\n"})
    result = run_main(["experiment=mine", "optimizer=sgd", searched, "--cfg", "job"], cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.startswith(
        "Error: experiment=mine sets optimizer.betas (optimizer=adam or optimizer=adamw has it), and optimizer=sgd has "
        "no such key. Keep the preset's optimizer"), result.stderr


@pytest.mark.parametrize("preset, expected", [
    ("defaults:\n  - override /optimizer: adamx\n",
     "In experiment/mine.yaml: optimizer: adamx is not an option of optimizer (did you mean adam?): choose one of "
     "adam, adamw, sgd."),
    # without `override`: Hydra's "Multiple values for optimizer" was told as a + on the command line
    ("defaults:\n  - /optimizer: sgd\n", "A defaults list chooses optimizer: sgd, which the config has chosen already: "
                                         "in a preset of your own, write `- override /optimizer: sgd` there."),
    ("defaults:\n  - override /optimizer: sgd\noptimizer:\n  betas: [0.9, 0.99]\n",
     "experiment=mine sets optimizer.betas, a key that optimizer=sgd, the preset's own choice, does not have "
     "(optimizer=adam or optimizer=adamw has it). In experiment/mine.yaml, leave out optimizer.betas or choose adam."),
])
def test_a_mistake_in_a_presets_own_defaults_is_told_in_one_line_that_names_the_file(preset, expected, tmp_path):
    """Hydra's several lines of search path for the typo; for the key, "another optimizer (a study may sweep
    it)", where it was the preset's own choice. Without a study (`~sweep`: the typo's hunt for a study that
    sweeps it read a value the deletion has not, and crashed)."""
    searched = search_path_of(tmp_path, {"experiment/mine.yaml": "# @package _global_\n" + preset})
    for no_study in ([], ["~sweep"]):
        result = run_main(["experiment=mine", searched, *no_study, "--cfg", "job"], cwd=tmp_path)
        assert result.returncode == 1 and result.stderr.strip() == f"Error: {expected}", (no_study, result.stderr)


NO_SCHEMA = "name: my_kmnist\ntorchvision_class: KMNIST\nnum_classes: 10\n"  # as if the schema line were not needed


@pytest.mark.parametrize("yaml_text, overrides, expected", [
    (NO_SCHEMA, ["dataset.val_size=100"], "dataset.val_size is not a setting of this data set, which has no schema: "
     "write a YAML that begins as configs/dataset/mnist.yaml does, with `defaults: [/schema_dataset_idx@_here_, _self_]`."),
    (NO_SCHEMA, [], "Invalid config value dataset='my_kmnist' (it has no schema): expected a YAML that begins as"),
    ("defaults:\n  - /schema_dataset_idx@_here_\n  - _self_\nname: my_kmnist\ntorchvision_class: KMNIST\n"
     "val_sise: 100\n", [], "In dataset/my_kmnist.yaml: dataset.val_sise is not a setting (did you mean dataset.val_size?)."),
    ("defaults:\n  - /schema/dataset/idx@_here_\n  - _self_\nname: my_kmnist\ntorchvision_class: KMNIST\n", [],
     "In dataset/my_kmnist.yaml: its defaults name the schema schema/dataset/idx, which is /schema_dataset_idx now: "
     "write `- /schema_dataset_idx@_here_` there."),  # Hydra's "Could not load" and its search path, 7 lines
    ("defaults:\n  - /schema_dataset_idxx@_here_\n  - _self_\nname: my_kmnist\n", [],
     "In dataset/my_kmnist.yaml: its defaults name schema_dataset_idxx, which is no file of configs/"),
    ("defaults:\n  - /schema_dataset_idx@_here_\n  - _self_\nname: my_kmnist\ntorchvision_class: KMNIST\n",
     ["model=???"], "model is left unset ('???'): choose one of its options, model=<option> on the command line or in "
                    "your YAML (lenet5, lenet5_classic)."),  # Hydra's "You must specify 'model'", then a line each
], ids=["no-schema-overridden", "no-schema", "typo", "old-schema-path", "no-such-default", "group-unset"])
def test_a_data_set_yaml_of_ones_own_that_does_not_fit_gets_one_line(yaml_text, overrides, expected, tmp_path):
    (tmp_path / "mine" / "dataset").mkdir(parents=True)
    (tmp_path / "mine" / "dataset" / "my_kmnist.yaml").write_text(yaml_text)
    result = run_main([*overrides, "dataset=my_kmnist", f"hydra.searchpath=[file://{tmp_path / 'mine'}]"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {expected}"), result.stderr


@pytest.mark.parametrize("primary, expected", [
    ("defaults:\n  - config\n  - _self_\ntrainer:\n  epochz: 1\n",
     "In mine.yaml: trainer.epochz is not a setting (did you mean trainer.epochs?)."),
    ("defaults:\n  - config\n  - _self_\ntrainer:\n  epochs: one\n",
     "In mine.yaml: Invalid config value trainer.epochs='one': expected an integer."),
    ("defaults:\n  - config\n  - _self_\nfoo: 1\n", "In mine.yaml: foo is not a setting."),
    ("trainer:\n  epochs: 1\n", "The config is not one of lenet_exp's runs (it lacks the schema of task, model, dataset, "
                                 "…): a primary config of one's own (--config-name) begins with `defaults: [config, "
                                 "_self_]`, then sets what it changes."),
], ids=["typo", "type", "unknown", "no-schema"])
def test_a_mistake_in_a_primary_config_of_ones_own_is_told_as_in_it(primary, expected, fast, tmp_path):
    """A typo in one's own --config-name file was told "names no config that composes a run" (as for a preset
    given to --config-name); one without the schema ended in a traceback (Key 'task' is not in struct)."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "mine.yaml").write_text(primary)
    schema = primary.startswith("defaults")  # fast's device=cpu overrides a group that the config without it lacks
    result = run_main(["--config-dir", str(tmp_path / "mine"), "--config-name", "mine", *(fast if schema else []),
                       f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    said = result.stdout + result.stderr  # without configs/config.yaml's logging, Hydra's own logs to stdout
    assert result.returncode == 1 and "Traceback" not in said, said[-2000:]
    assert f"Error: {expected}" in said, said[-2000:]
    if not schema:  # refused before Hydra starts: it made a run's folder, logged a run "with the default config"
        assert result.stderr.strip() == (f"Error: {expected} {tmp_path / 'mine' / 'mine.yaml'}'s defaults do not "
                                         f"name config.") and not result.stdout, said[-2000:]
        assert not (tmp_path / "run").exists()
    else:  # a preset of the same name beside it: told "names no config that composes a run" (helper docsmsgs61)
        (tmp_path / "mine" / "experiment").mkdir()
        (tmp_path / "mine" / "experiment" / "mine.yaml").write_text("# @package _global_\ntrainer:\n  epochs: 3\n")
        beside = run_main(["--config-dir", str(tmp_path / "mine"), "--config-name", "mine", *fast,
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
        assert f"Error: {expected}" in beside.stdout + beside.stderr, beside.stderr[-2000:]


def test_a_primary_config_of_ones_own_given_by_config_path_is_told_to_take_config_dir(fast, tmp_path):
    """--config-path takes the place of configs/, so the config it names found no `config` to begin with: "no file
    of configs/", said the message, of a file that is there."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "mine.yaml").write_text("defaults:\n  - config\n  - _self_\ntrainer:\n  epochs: 1\n")
    result = run_main(["--config-path", str(tmp_path / "mine"), "--config-name", "mine", *fast], cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == (
        f"Error: In mine.yaml: its defaults name config, a file of configs/, which --config-path {tmp_path / 'mine'} "
        f"takes the place of: give --config-dir {tmp_path / 'mine'} instead, which adds its folder to configs/.")


def test_a_search_path_folder_that_does_not_exist_is_said_in_a_line(fast, tmp_path):
    """Hydra warned with its source line ("config_loader_impl.py:216: UserWarning: provider=… is not available"),
    and an option kept there was then "not an option" without a word of why."""
    search = f"hydra.searchpath=[file://{tmp_path / 'mine'}]"
    ran = run_main([search, *fast, "trainer.limit_batches=2", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    said = ran.stdout + ran.stderr
    assert ran.returncode == 0 and "UserWarning" not in said, said[-2000:]
    assert f"{tmp_path / 'mine'} (hydra.searchpath in command-line) is no folder: none of its configs is read." in said
    refused = run_main([search, "optimizer=rmsprop", "--cfg", "job"], cwd=tmp_path)
    assert refused.returncode == 1 and "UserWarning" not in refused.stderr, refused.stderr[-2000:]
    assert refused.stderr.strip() == (f"Error: optimizer=rmsprop is not an option of optimizer: choose one of adam, "
                                      f"adamw, sgd (hydra.searchpath names {tmp_path / 'mine'}, which is no folder).")
    schemeless = run_main([f"hydra.searchpath=[{tmp_path / 'mine'}]", "optimizer=rmsprop", "--cfg", "job"],
                          cwd=tmp_path)  # a folder too, as Hydra reads it
    assert schemeless.stderr.strip() == refused.stderr.strip(), schemeless.stderr


@pytest.mark.parametrize("where", ["--config-dir", "hydra.searchpath"])
def test_a_config_of_ones_own_named_as_a_shipped_one_is_said_to_be_unread(where, fast, tmp_path):
    """mine/optimizer/adam.yaml (lr 0.0123) was never read, configs/optimizer/adam.yaml coming first on Hydra's
    search path, and the run trained with lr 0.001 without a word."""
    (tmp_path / "mine" / "optimizer").mkdir(parents=True)
    own = tmp_path / "mine" / "optimizer" / "adam.yaml"
    own.write_text((CONFIGS / "optimizer" / "adam.yaml").read_text().replace("lr: 1e-3", "lr: 0.0123"))
    (tmp_path / "mine" / "optimizer" / "adam_mine.yaml").write_text(own.read_text())  # a name of its own: read
    search = ["--config-dir", str(tmp_path / "mine")] if where == "--config-dir" else [
        f"hydra.searchpath=[file://{tmp_path / 'mine'}]"]
    result = run_main([*search, *fast, "trainer.limit_batches=2", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    said = result.stdout + result.stderr
    assert result.returncode == 0, said[-2000:]
    assert (f"{own} is not read: {CONFIGS / 'optimizer' / 'adam.yaml'}, first on Hydra's search path, has its name. "
            f"Give yours another name, then choose it with optimizer=<that name>.") in said
    assert said.count("is not read") == 1  # adam_mine.yaml is
    assert read_json(tmp_path / "run" / "metrics.json")["config"]["optimizer"]["lr"] == 0.001
    # printed without a run's callbacks, the config shown without a word (helper help60)
    for printing in (["--cfg", "job", "-p", "optimizer.lr"], ["--help"], ["--info", "defaults"]):
        shown = run_main([*search, *printing], cwd=tmp_path)
        assert shown.returncode == 0 and f"Warning: {own} is not read: " in shown.stderr, shown.stderr


@pytest.mark.parametrize("group, yaml_text, kinds", [
    ("scheduler", "name: exponential\ngamma: 0.9\n", "none, cosine, step, onecycle"),
    ("augment", "name: cutout\nsize: 8\n", "none, affine, elastic")])
def test_a_scheduler_or_augment_yaml_of_ones_own_without_a_schema_gets_one_line(group, yaml_text, kinds, fast,
                                                                                 tmp_path):
    """A kind no code here trains with ended in a traceback: "unknown scheduler exponential" as the run began,
    "Key 'degrees' is not in struct" for the augmentation."""
    (tmp_path / "mine" / group).mkdir(parents=True)
    (tmp_path / "mine" / group / "mine.yaml").write_text(yaml_text)
    result = run_main([*fast, f"{group}=mine", f"hydra.searchpath=[file://{tmp_path / 'mine'}]",
                       f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    name = yaml_text.split()[1]
    assert (f"Error: Invalid config value {group}.name='{name}' (it has no schema): expected one of lenet_exp's kinds "
            f"of {group} ({kinds}): a YAML that begins as configs/{group}/none.yaml does") in result.stderr
