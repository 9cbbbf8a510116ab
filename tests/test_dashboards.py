"""What a run shows besides its scalars: where its code came from and a card of its final metrics."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, fast_overrides, run_main
from lenet_exp import compose, train
from tensorboard_events import card, hparams_records, load_events, logged_hparams, scalar_values, session_status


def test_a_run_records_its_git_commit_and_a_card_of_its_final_metrics(tiny_root, tmp_path):
    metrics = train(compose(*fast_overrides(tiny_root)), run_dir=tmp_path / "run")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert metrics["git"]["commit"] == head.stdout.strip() and isinstance(metrics["git"]["dirty"], bool)

    text = card(load_events(tmp_path / "run"))
    assert f"| test acc | {metrics['test']['acc']:.4f} |" in text
    assert f"| best epoch | {metrics['best_epoch']} of 1 |" in text and head.stdout.strip()[:12] in text
    by_class = metrics["test"]["acc_by_class"]  # the weakest class first
    weakest = sorted(by_class, key=lambda name: (by_class[name] is None, by_class[name]))[0]
    assert f"| test acc by class | {weakest}: {by_class[weakest]:.4f} · " in text, text
    # a smoke run's test of part of the split says so, as the console does
    capped = train(compose(*fast_overrides(tiny_root), "trainer.limit_batches=1", "trainer.eval_batch_size=50"),
                   run_dir=tmp_path / "capped")
    assert f"| test acc | {capped['test']['acc']:.4f} (50 of 200 images) |" in card(load_events(tmp_path / "capped"))
    # which images it was validated and tested on: HParams tells such runs apart (it leaves out a full run's)
    shown = [logged_hparams(load_events(tmp_path / run)) for run in ("run", "capped")]
    assert "trainer.eval_batch_size" not in shown[0] and shown[1]["trainer.eval_batch_size"] == 50


def test_a_sweep_of_a_speed_setting_shows_it_in_hparams_and_a_run_that_does_not_name_one_leaves_it_out(fast,
                                                                                                   tmp_path):
    """Speed settings change no result, so HParams leaves them out; a sweep of one, which compares their speed
    (time/*), showed no column of it at all."""
    assert run_main(["-m", *fast, "trainer.channels_last=true,false", "hydra.sweep.dir=sweep"],
                    cwd=tmp_path).returncode == 0
    shown = [logged_hparams(load_events(job)) for job in sorted((tmp_path / "sweep").glob("[0-9]*"))]
    assert [s["trainer.channels_last"] for s in shown] == ["true", "false"]
    # a null setting as what it came to: "null" among the other run's numbers failed TensorBoard's sort of the column
    assert run_main(["-m", *fast, "device.threads=null,1", "hydra.sweep.dir=threads"], cwd=tmp_path).returncode == 0
    jobs = sorted((tmp_path / "threads").glob("[0-9]*"))
    threads = [logged_hparams(load_events(job))["device.threads"] for job in jobs]
    assert all(isinstance(count, float) and count >= 1 for count in threads), threads
    assert not {"trainer.fused_cpu_kernels", "trainer.compile"} & set(shown[0])  # named by no override
    assert shown[0]["device.type"] == "cpu"  # device=cpu (in `fast`): a group names its keys


@pytest.mark.parametrize("swept, group, options", [("optimizer=adam,sgd", "optimizer", ["adam", "sgd"]),
                                                    ("experiment=mnist_best,fashion_best", "experiment",
                                                     ["mnist_best", "fashion_best"])])
def test_a_sweep_of_a_config_groups_options_shows_the_option_in_hparams(fast, tmp_path, swept, group, options):
    """Besides the settings the option changes: a sweep over experiment=… showed no column of what it swept (a
    preset has no setting of its own), and optimizer=adam,sgd only torch's class names."""
    assert run_main(["-m", *fast, swept, "trainer.batch_size=32", "hydra.sweep.dir=sweep"],  # a one-cycle of 16 steps
                    cwd=tmp_path).returncode == 0
    job_dirs = sorted((tmp_path / "sweep").glob("[0-9]*"))
    shown = [logged_hparams(load_events(job)) for job in job_dirs]
    assert [s[group] for s in shown] == options
    # not what repeats an option (its class, its name): a sweep over optimizer and model gave them columns of their
    # own, which TensorBoard ticked (the first five that differ, by name) before the optimizer's
    assert not {"optimizer._target_", "model._target_", "model.name", "scheduler.name"} & set(shown[0])
    # nor what says which data set it is: MNIST's statistics beside FashionMNIST's took four of the five columns
    # TensorBoard ticks, the first that differ by name (experiment=mnist_best,fashion_best)
    assert not {"dataset.torchvision_class", "dataset.num_classes", "dataset.mean", "dataset.std"} & set(shown[0])
    assert "device" not in shown[0]  # where it runs, not what: its settings say it where the overrides name it
    # the card says what each job ran (a Text tab of runs named by date or number told none), not where or how fast
    overrides = re.search(r"\| overrides \| (.*) \|", card(load_events(job_dirs[0]))).group(1).split()
    assert f"{group}={options[0]}" in overrides and "trainer.batch_size=32" in overrides
    assert not [o for o in overrides if o.startswith(("dataset.root", "device", "trainer.progress"))], overrides


def test_a_sweep_of_a_config_group_of_ones_own_shows_its_option_in_hparams(fast, tmp_path):
    """A `trial` group on the search path (usage.md's sweep of chosen combinations) had no column: the summary
    named each job's trial, TensorBoard did not (only the settings each changed)."""
    for name, lr in (("a", 0.002), ("b", 0.003)):
        (tmp_path / "mine" / "trial").mkdir(parents=True, exist_ok=True)
        (tmp_path / "mine" / "trial" / f"{name}.yaml").write_text(f"# @package _global_\noptimizer:\n  lr: {lr}\n")
    assert run_main(["-m", *fast, f"hydra.searchpath=[file://{tmp_path / 'mine'}]", "+trial=a,b",
                     "hydra.sweep.dir=sweep"], cwd=tmp_path).returncode == 0
    shown = [logged_hparams(load_events(job)) for job in sorted((tmp_path / "sweep").glob("[0-9]*"))]
    assert [(s["trial"], s["optimizer.lr"]) for s in shown] == [("a", 0.002), ("b", 0.003)]
    assert not {"sweep", "device", "hydra/launcher"} & set(shown[0])  # a search space, where, how: no settings


def test_an_evaluation_has_a_card_and_its_test_point_at_the_checkpoints_epoch(fast, tmp_path):
    """An evaluation had no card (its Text tab, under a run name such as sweeps/…/0, said nothing of what it
    tested), and its test point sat at step 0, apart from its run's own at the checkpoint's epoch."""
    from lenet_exp.files import read_json

    assert run_main([*fast, "trainer.epochs=2", "hydra.run.dir=run"], cwd=tmp_path).returncode == 0
    best = tmp_path / "run" / "checkpoints" / "best.pt"
    result = run_main([*fast, "task=eval", f"ckpt={best}", "trainer.eval_batch_size=40", "trainer.limit_batches=1",
                       "hydra.run.dir=eval"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics, events = read_json(tmp_path / "eval" / "metrics.json"), load_events(tmp_path / "eval")
    [point], [runs_own] = events.Scalars("test/acc"), load_events(tmp_path / "run").Scalars("test/acc")
    assert point.step == runs_own.step == metrics["ckpt_epoch"] and point.value == pytest.approx(metrics["test"]["acc"])
    text = card(events)
    assert f"| checkpoint | {best} (after epoch {metrics['ckpt_epoch']}) |" in text and "| data set | mnist |" in text
    assert f"| test acc | {metrics['test']['acc']:.4f} (40 of {metrics['test']['split_samples']} images) |" in text


def test_an_evaluation_validates_its_checkpoint_and_has_the_metrics_tensorboard_ticks_first(fast, tmp_path):
    """HParams' parallel coordinates tick the first five metrics by name and leave out a run that lacks one: an
    evaluation, which logged test/* alone, was left out beside training runs. It validates the checkpoint as it
    tests it: its run's own val where it tests as the run did, its own where not (the raw weights of an EMA run),
    not the run's copied (which the first version of this did)."""
    from lenet_exp.files import read_json

    base = [*fast, "trainer.epochs=2", "trainer.ema_decay=0.9"]
    assert run_main([*base, "hydra.run.dir=run"], cwd=tmp_path).returncode == 0
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    # its own data set named, with another split: the run's val split still (another held images it trained on)
    for name, how in (("eval", []), ("raw", ["trainer.ema_decay=null"]), ("named", ["dataset=mnist",
                                                                                    "dataset.split_seed=3"])):
        result = run_main([*fast, "task=eval", f"ckpt={last}", *how, f"hydra.run.dir={name}"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
    trained, evaluated = load_events(tmp_path / "run"), load_events(tmp_path / "eval")
    first_five = sorted(trained.Tags()["scalars"])[:5]
    assert set(first_five) <= set(evaluated.Tags()["scalars"]) and first_five[0] == "best/val_acc"  # colours by it
    # last.pt's epoch (whichever epoch was best), at that step: as the run validated it
    [row] = [row for row in read_json(tmp_path / "run" / "metrics.json")["history"] if row["epoch"] == 2]
    metrics = read_json(tmp_path / "eval" / "metrics.json")
    assert (metrics["val"]["acc"], metrics["val"]["samples"]) == (row["val/acc"], 100)
    assert read_json(tmp_path / "named" / "metrics.json")["val"] == metrics["val"]
    logged = {tag: evaluated.Scalars(tag) for tag in ("best/val_acc", "best/val_epoch", "best/val_loss")}
    assert {tag: [(p.step, p.value) for p in points] for tag, points in logged.items()} == {
        "best/val_acc": [(2, pytest.approx(row["val/acc"]))], "best/val_epoch": [(2, 2)],
        "best/val_loss": [(2, pytest.approx(row["val/loss"], rel=1e-5))]}
    assert "| val acc | " in card(evaluated)
    raw = read_json(tmp_path / "raw" / "metrics.json")["val"]  # the weights the run did not validate
    assert raw["loss"] != pytest.approx(row["val/loss"], rel=1e-3)
    assert load_events(tmp_path / "raw").Scalars("best/val_loss")[0].value == pytest.approx(raw["loss"])


def test_a_run_of_train_shows_its_config_groups_options_and_its_null_settings_as_run_py_runs_do(tiny_root, tmp_path):
    """A run of train() has no .hydra/ record of the options Hydra chose: it had no column of them, and TensorBoard's
    parallel coordinates left it out beside run.py's runs, which have them (a run that lacks a column ticked); nor
    of its overrides, which its card shows."""
    cfg = compose(*fast_overrides(tiny_root), "optimizer=sgd", "trainer.grad_clip_norm=1.0")
    cfg.optimizer.lr = 0.01  # changed after compose(): the card said the lr compose() was given
    train(cfg, run_dir=tmp_path / "run")
    shown = logged_hparams(load_events(tmp_path / "run"))
    groups = ("model", "dataset", "optimizer", "scheduler", "augment", "experiment")
    assert {group: shown[group] for group in groups} == {"model": "lenet5", "dataset": "mnist", "optimizer": "sgd",
                                                         "scheduler": "none", "augment": "none", "experiment": "null"}
    assert (shown["trainer.grad_clip_norm"], shown["trainer.early_stop_patience"]) == (1.0, 0)
    # and its card says what it ran, as compose() was given it (not where or how fast)
    assert ("| overrides | dataset.val_size=100 trainer.epochs=1 optimizer=sgd trainer.grad_clip_norm=1.0 "
            "optimizer.lr=0.01 |") in card(load_events(tmp_path / "run"))


def test_a_copied_or_rearranged_config_of_train_shows_the_options_it_runs(tiny_root, tmp_path):
    """compose()'s record is kept by the config object: a deep copy had no group columns (left out of parallel
    coordinates) and its card no overrides, and a group's node replaced by another option's kept the label of the
    option it replaced (optimizer: adam for a run of SGD)."""
    import copy

    from omegaconf import OmegaConf

    copied = copy.deepcopy(compose(*fast_overrides(tiny_root), "optimizer=adamw", "scheduler=cosine"))
    train(copied, run_dir=tmp_path / "copied")
    merged = OmegaConf.merge(copied, {"optimizer": {"weight_decay": 0.5}})
    train(merged, run_dir=tmp_path / "merged")
    for run, changed in (("copied", []), ("merged", ["optimizer.weight_decay=0.5"])):
        overrides = re.search(r"\| overrides \| (.*) \|", card(load_events(tmp_path / run))).group(1).split()
        assert sorted(overrides) == sorted(["scheduler=cosine", "optimizer=adamw", "dataset.val_size=100",
                                            "trainer.epochs=1", *changed]), overrides
    swapped = compose(*fast_overrides(tiny_root))
    swapped.optimizer = compose("optimizer=sgd").optimizer
    train(swapped, run_dir=tmp_path / "swapped")
    # a class that no option names: labelled by it (it was "adam")
    other_class = compose(*fast_overrides(tiny_root))
    other_class.optimizer._target_ = "torch.optim.NAdam"
    train(other_class, run_dir=tmp_path / "other_class")
    assert logged_hparams(load_events(tmp_path / "other_class"))["optimizer"] == "torch.optim.NAdam"
    groups = ("model", "dataset", "optimizer", "scheduler", "augment")
    shown = {run: {group: logged_hparams(load_events(tmp_path / run)).get(group) for group in groups}
             for run in ("copied", "swapped")}
    assert shown == {"copied": {"model": "lenet5", "dataset": "mnist", "optimizer": "adamw", "scheduler": "cosine",
                                "augment": "none"},
                     "swapped": {"model": "lenet5", "dataset": "mnist", "optimizer": "sgd", "scheduler": "none",
                                 "augment": "none"}}


def test_a_null_setting_shows_in_hparams_as_what_it_came_to_in_the_run(tiny_root, tmp_path):
    """dataset.mean=null (statistics computed from the images trained on) and a null train_size: their numbers, as
    the checkpoint keeps them, where "null" among other runs' numbers broke TensorBoard's sort of the column."""
    import torch

    train(compose(*fast_overrides(tiny_root), "dataset.mean=null", "dataset.std=null"), run_dir=tmp_path / "run")
    shown = logged_hparams(load_events(tmp_path / "run"))
    computed = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)["preprocessing"]
    assert (shown["dataset.mean"], shown["dataset.std"]) == pytest.approx((computed["mean"], computed["std"]))
    assert shown["dataset.train_size"] == 500  # 600 tiny images, 100 of them val


def test_a_diverged_run_has_a_card_that_says_why(tiny_root, tmp_path):
    """HParams shows a diverged run as a failure; its card says what happened and what to change."""
    metrics = train(compose(*fast_overrides(tiny_root), "optimizer.lr=1e30"), run_dir=tmp_path / "run")
    assert metrics["status"] == "diverged"
    text = card(load_events(tmp_path / "run"))
    assert "| status | diverged |" in text and f"| why | {metrics['message']} |" in text
    assert "| best epoch | none of 1 |" in text and "Lower optimizer.lr" in text
    assert "| test acc | - |" in text and "None" not in text  # Python's word for no value


def test_a_new_module_or_yaml_makes_the_checkout_dirty_and_a_scratch_file_does_not(tmp_path):
    """A model of one's own (README, Extending) is an untracked file in src/: the commit was recorded as
    clean, and could not give the run's code back."""
    from lenet_exp.provenance import provenance

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, check=True)

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.py").write_text("A = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    assert provenance(tmp_path)["dirty"] is False
    (tmp_path / "notes.txt").write_text("mine")
    assert provenance(tmp_path)["dirty"] is False
    (tmp_path / "configs" / "model").mkdir(parents=True)
    (tmp_path / "configs" / "model" / "mine.yaml").write_text("_target_: mine.Mine\n")
    assert provenance(tmp_path)["dirty"] is True
    (tmp_path / "configs" / "model" / "mine.yaml").unlink()
    (tmp_path / "src" / "model.py").write_text("A = 2\n")
    assert provenance(tmp_path)["dirty"] is True
    # an install inside another project's repository (its .venv/) is no checkout: that project's commit was given
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    assert provenance(tmp_path / ".venv" / "lib") is None
    (tmp_path / "lenet" / "src").mkdir(parents=True)  # a checkout kept in a larger repository: that one's commit,
    assert provenance(tmp_path / "lenet")["commit"] == provenance(tmp_path)["commit"]  # dirty by its own files only
    assert provenance(tmp_path / "lenet")["dirty"] is False and provenance(tmp_path)["dirty"] is True


def test_the_misclassified_grid_shows_the_most_confident_mistakes_first_with_captions_above_the_images():
    import torch

    from lenet_exp.figures import image_grid_figure
    from lenet_exp.record import most_confident_mistakes

    labels = torch.tensor([0, 1, 2, 3, 4])
    predicted = torch.tensor([0, 2, 1, 4, 4])  # samples 1, 2 and 3 are wrong
    confidences = torch.tensor([0.9, 0.3, 0.8, 0.5, 0.9])
    order = most_confident_mistakes(labels, predicted, confidences, limit=32)
    assert order.tolist() == [2, 3, 1]
    digits = np.array([str(label) for label in range(10)])
    figure = image_grid_figure(np.zeros((3, 1, 32, 32)), *(t[order].numpy() for t in (labels, predicted, confidences)),
                               digits, digits)
    captions = figure.axes[0].texts
    assert [text.get_text() for text in captions] == ["2→1 80%", "3→4 50%", "1→2 30%"]
    # each caption sits in the band above its image (rows of the grid: band 16 px, then the 32 px image)
    assert all(text.get_position()[1] < 16 and text.get_verticalalignment() == "bottom" for text in captions)


def test_the_confusion_matrix_leaves_empty_cells_blank_and_reads_on_dark_cells():
    from lenet_exp.figures import matrix_figure

    figure = matrix_figure(np.array([[90, 0], [3, 7]]), *[np.array(["0", "1"])] * 2)
    counts = {text.get_text(): text.get_color() for text in figure.axes[0].texts}
    assert counts == {"90": "white", "3": "black", "7": "black"}  # no "0"; white only on the dark diagonal cell


def test_fashion_mnists_figures_name_its_garments_where_mnists_show_digits():
    """A FashionMNIST run's confusion matrix and mistakes said 0-9: which garment is 6?"""
    from lenet_exp import compose
    from lenet_exp.data import class_names
    from lenet_exp.figures import image_grid_figure, matrix_figure

    garments = np.array(class_names(compose("dataset=fashion_mnist").dataset))
    assert class_names(compose("dataset=mnist").dataset) == [str(label) for label in range(10)]  # not "0 - zero"
    assert garments.tolist()[:3] == ["T-shirt/top", "Trouser", "Pullover"] and len(garments) == 10
    axes = matrix_figure(np.eye(10, dtype=int) * 90, garments, garments).axes[0]
    assert [label.get_text() for label in axes.get_xticklabels()] == garments.tolist()
    assert [label.get_text() for label in axes.get_yticklabels()] == garments.tolist()
    grid = image_grid_figure(np.zeros((2, 1, 32, 32)), np.array([6, 9]), np.array([0, 7]), np.array([0.9, 0.6]),
                             garments, garments)
    assert [text.get_text() for text in grid.axes[0].texts] == ["Shirt→T-shirt/top\n90%", "Ankle boot→Sneaker\n60%"]


def test_a_model_tested_on_other_classes_names_its_predictions_with_its_own():
    """task=eval of a FashionMNIST model on MNIST: the predicted axis and captions said digits, not garments."""
    from lenet_exp import compose
    from lenet_exp.data import class_names
    from lenet_exp.figures import image_grid_figure, matrix_figure

    digits, garments = (np.array(class_names(compose(f"dataset={name}").dataset)) for name in ("mnist", "fashion_mnist"))
    axes = matrix_figure(np.eye(10, dtype=int) * 90, digits, garments).axes[0]
    assert [label.get_text() for label in axes.get_xticklabels()] == garments.tolist()  # predicted
    assert [label.get_text() for label in axes.get_yticklabels()] == digits.tolist()  # true
    grid = image_grid_figure(np.zeros((1, 1, 32, 32)), np.array([6]), np.array([0]), np.array([0.9]), digits, garments)
    assert [text.get_text() for text in grid.axes[0].texts] == ["6→T-shirt/top\n90%"]


@pytest.mark.parametrize("n, columns", [(2, 8), (5, 8), (8, 8), (19, 8), (3, 2)])
def test_the_mistakes_are_tiled_as_torchvisions_make_grid_tiles_them(n, columns):
    import torch
    from torchvision.utils import make_grid

    from lenet_exp.figures import tiled

    images = torch.rand(n, 1, 32, 32) * 3 - 1
    expected = make_grid(images, nrow=columns, padding=16, pad_value=float(images.min()))[0]
    assert np.array_equal(tiled(images.numpy(), columns, padding=16), expected.numpy())


def test_a_lone_mistake_has_its_caption_band_too():
    """make_grid returns a lone image unpadded, so its caption covered the digit."""
    from lenet_exp.figures import tiled

    image = np.full((1, 1, 32, 32), 2.0, dtype=np.float32)
    image[0, 0, 0, 0] = 0.0  # the padding's value
    grid = tiled(image, 8, padding=16)
    assert grid.shape == (64, 64) and not grid[:16].any() and np.array_equal(grid[16:48, 16:48], image[0, 0])


def test_figures_drawn_by_workers_are_those_drawn_in_place_and_a_dead_workers_are_drawn_in_place():
    import os
    import signal

    from lenet_exp.figures import FigureWorkers, draw

    names = np.array(["0", "1"])
    matrix = (np.array([[50, 2], [0, 48]]), names, names)
    mistakes = (np.random.default_rng(0).random((4, 1, 32, 32)).astype(np.float32), np.array([1, 0, 1, 1]),
                np.array([0, 1, 0, 0]), np.array([0.9, 0.8, 0.7, 0.6], dtype=np.float32), names, names)
    workers = FigureWorkers(2)
    try:
        pids = {workers.pool.submit(os.getpid).result() for _ in range(8)}
        assert pids and os.getpid() not in pids  # drawn elsewhere
        figures = [workers.submit("confusion_matrix", *matrix), workers.submit("misclassified", *mistakes)]
        assert [figure.png() for figure in figures] == [draw("confusion_matrix", *matrix),
                                                        draw("misclassified", *mistakes)]
        png, height, width = figures[0].png()
        assert png.startswith(b"\x89PNG") and (height, width) == (500, 500)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        late = workers.submit("confusion_matrix", *matrix)
        assert late.png() == draw("confusion_matrix", *matrix)
        # the pool now known to be broken, submitting raised: every trial of a stacked group failed its test
        later = workers.submit("misclassified", *mistakes)
        assert later.png() == draw("misclassified", *mistakes)
    finally:
        workers.close()


def test_a_figure_that_failed_to_draw_is_not_drawn_again_at_close(tmp_path):
    """The final close drew it again and raised its error there: a stacked group's remaining trials' TensorBoard
    writers were then left open."""
    from lenet_exp.figures import draw
    from lenet_exp.record import TensorBoardLog

    class Unwritable:
        def png(self):
            raise OSError("no space left for the figure")

    class Drawn:
        def png(self):
            return draw("confusion_matrix", np.array([[1, 0], [0, 1]]), np.array(["0", "1"]), np.array(["0", "1"]))

    tb = TensorBoardLog(str(tmp_path), {"seed": 0})
    tb.pending += [("test/misclassified", 1, Unwritable()), ("test/confusion_matrix", 1, Drawn())]
    with pytest.raises(OSError, match="no space left for the figure"):
        tb.write_figures()
    tb.scalars({"test/acc": 0.5}, 1)
    tb.close()  # raised the figure's error again
    events = load_events(tmp_path)  # the figure after the failed one is written all the same
    assert scalar_values(events, "test/acc") == {1: 0.5} and events.Tags()["images"] == ["test/confusion_matrix"]


def an_earlier_attempt_named(log_dir: Path, seconds_ahead: int) -> str:
    """An earlier attempt's event file (val/acc 0.25 at epoch 1) in ``log_dir``, named from a clock
    ``seconds_ahead`` of this one's and from a host whose name sorts after any other ("~")."""
    import time

    from lenet_exp.record import TensorBoardLog

    earlier = TensorBoardLog(str(log_dir), {"seed": 0})
    earlier.scalars({"val/acc": 0.25}, 1)
    earlier.close()
    [written] = log_dir.glob("events.out.tfevents.*")
    name = f"events.out.tfevents.{int(time.time()) + seconds_ahead:010d}.~host.99999.9"
    written.rename(log_dir / name)
    return name


def started_over(log_dir: Path) -> None:
    from lenet_exp.record import TensorBoardLog

    again = TensorBoardLog(str(log_dir), {"seed": 0})  # starts over: purges step 1 and on
    again.scalars({"val/acc": 0.5}, 1)
    again.scalars({"val/acc": 0.75}, 2)
    again.close()


@pytest.mark.parametrize("seconds_ahead", [0, 2], ids=["the same second", "another machine's clock ahead"])
def test_a_run_started_over_shows_its_own_points_not_its_earlier_attempts(tmp_path, seconds_ahead):
    """TensorBoard reads a folder's event files in name order, and two files made in one second sort by pid and
    count as text: the earlier attempt's file, read last, purged the new one's points (a CI failure, the count
    going from 9 to 10 in one test process). A file named by a clock a few seconds ahead is waited for too."""
    earlier = an_earlier_attempt_named(tmp_path, seconds_ahead)
    started_over(tmp_path)
    assert max(path.name for path in tmp_path.glob("events.out.tfevents.*")) != earlier
    assert scalar_values(load_events(tmp_path), "val/acc") == {1: 0.5, 2: 0.75}


def test_an_event_file_named_by_a_clock_far_ahead_is_said_not_waited_for(tmp_path, caplog):
    import time

    an_earlier_attempt_named(tmp_path, 3600)
    began = time.monotonic()
    started_over(tmp_path)
    assert time.monotonic() - began < 5
    # 3599 where this clock's second ticked over since the file was named
    assert re.search(f"{re.escape(str(tmp_path))} holds an event file named 3(600|599) s ahead of this machine's clock",
                     caplog.text), caplog.text


def test_figure_workers_end_with_their_process_killed_outright(tmp_path):
    """Orphaned, they held the files they inherited: a stacked sweep's lock, which refused its re-run."""
    import subprocess
    import sys
    import time

    script = ("import os, sys\nfrom lenet_exp.figures import FigureWorkers\nw = FigureWorkers(2)\n"
              "print(*{w.pool.submit(os.getpid).result() for _ in range(8)}, flush=True)\nsys.stdin.read()\n")
    owner = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    def alive(pid: int) -> bool:  # an ended process not yet reaped is a zombie: state Z
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    pids = [int(pid) for pid in owner.stdout.readline().split()]
    assert pids and all(alive(pid) for pid in pids)
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in pids)


def test_the_console_says_first_where_the_run_goes_and_what_it_changes(fast, tmp_path):
    from conftest import run_main

    run_dir = tmp_path / "run"
    args = [*fast, "optimizer.lr=0.002"]
    result = run_main([*args, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == f"Run in {run_dir} with {' '.join(args)}"  # Hydra's own settings aside
    assert re.search(r"^Time: start-up .*, 1 epoch [0-9.]+ s, test ", result.stderr, re.MULTILINE), result.stderr


def test_a_run_that_fails_ends_its_hparams_session_as_a_failure_until_it_goes_on(fast, tmp_path, monkeypatch):
    """HParams' Status column: Failure for a run that failed with an error (not Unknown, as a running run's),
    and its card says why; run again, it goes on from its checkpoint, and its session begins and ends once
    more, as a success only."""
    from lenet_exp.loop import Run

    end_epoch = Run.end_epoch

    def the_device_fails_in_epoch_2(self, parts, state, tb, epoch, *args):
        if epoch == 2:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return end_epoch(self, parts, state, tb, epoch, *args)

    monkeypatch.setattr(Run, "end_epoch", the_device_fails_in_epoch_2)
    command = [*fast, "trainer.epochs=2", f"hydra.run.dir={tmp_path / 'run'}"]
    failed = run_main(command, cwd=tmp_path)
    assert failed.returncode == 1 and "illegal memory access" in failed.stderr
    events = load_events(tmp_path / "run")
    assert session_status(events) == "STATUS_FAILURE"
    assert "| status | failed |\n| why | RuntimeError: CUDA error: an illegal memory access" in card(events)  # why
    monkeypatch.undo()
    again = run_main(command, cwd=tmp_path)
    assert again.returncode == 0 and "Resuming" in again.stderr, again.stderr[-2000:]
    assert hparams_records(tmp_path / "run") == ["session_start_info", "session_end_info"]
    assert session_status(load_events(tmp_path / "run")) == "STATUS_SUCCESS"
