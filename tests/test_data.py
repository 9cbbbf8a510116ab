"""Loading through torchvision's real IDX reader, preprocessing once, and clear data errors."""

from __future__ import annotations

import os
import re
import shutil
import struct

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from idx import write_dataset, write_images
from lenet_exp.data import RAW_FILES, load_data, prepare_images, read_split, split_train_val
from lenet_exp.errors import DataError, UserError


def dataset_cfg(root, **changes):
    cfg = dict(name="mnist", torchvision_class="MNIST", root=str(root), download=False, num_classes=10, val_size=100, split_seed=0,
               image_size=32, resize_mode="resize", mean=0.1307, std=0.3081)
    return OmegaConf.create({**cfg, **changes})


def test_the_memory_a_data_set_needs_is_of_the_images_it_keeps(tiny_root, monkeypatch):
    """dataset.train_size=256 of a large dataset.image_size was refused for the memory of all 70,000 images."""
    import lenet_exp.data

    asked = []
    monkeypatch.setattr(lenet_exp.data, "check_fits", lambda needed, device, what, fix: asked.append((needed, what)))
    lenet_exp.data.read_data(dataset_cfg(tiny_root, train_size=50, image_size=40), 16, torch.device("cpu"))
    # 50 train, 100 val and 200 test images as float32, and the resize's copy of the largest split
    assert asked == [((50 + 100 + 200 + 200) * 40 * 40 * 4, "350 images of 40x40 pixels (dataset.image_size=40)")]


def test_splits_are_resident_preprocessed_tensors(tiny_root):
    data = load_data(dataset_cfg(tiny_root), batch_size=64, device=torch.device("cpu"))
    assert (len(data.train), len(data.val), len(data.test)) == (500, 100, 200)
    for split in (data.train, data.val, data.test):
        assert split.images.shape[1:] == (1, 32, 32) and split.images.dtype == torch.float32
        assert split.labels.dtype == torch.int64
    # val and test are normalised with the configured train statistics, not their own
    raw_test, _ = read_split(dataset_cfg(tiny_root), train=False)
    expected = prepare_images(raw_test, 32, "resize", 0.1307, 0.3081)
    assert torch.equal(data.test.images, expected)
    assert abs(float(data.test.images.mean())) > 0.05  # the tiny test set has its own, different statistics


def test_validation_split_is_seeded_disjoint_and_independent_of_training_seed():
    train_a, val_a = split_train_val(600, 100, seed=0)
    train_b, val_b = split_train_val(600, 100, seed=0)
    assert torch.equal(val_a, val_b) and torch.equal(train_a, train_b)
    assert len(set(train_a.tolist()) & set(val_a.tolist())) == 0
    assert len(train_a) + len(val_a) == 600
    assert not torch.equal(split_train_val(600, 100, seed=1)[1], val_a)


def test_statistics_are_computed_from_training_images_when_not_given(tiny_root):
    data = load_data(dataset_cfg(tiny_root, mean=None, std=None), batch_size=64, device=torch.device("cpu"))
    raw, _ = read_split(dataset_cfg(tiny_root), train=True)
    train_idx, _ = split_train_val(len(raw), 100, 0)
    pixels = raw[train_idx].float() / 255
    assert data.mean == pytest.approx(float(pixels.mean()))
    assert data.std == pytest.approx(float(pixels.std()))


def test_pad_mode_adds_a_black_border_and_resize_interpolates():
    images = torch.full((1, 28, 28), 255, dtype=torch.uint8)
    padded = prepare_images(images, 32, "pad", mean=0.0, std=1.0)
    assert padded.shape == (1, 1, 32, 32)
    assert float(padded[0, 0, :2].abs().max()) == 0.0 and float(padded[0, 0, 2:30, 2:30].min()) == 1.0
    resized = prepare_images(images, 32, "resize", mean=0.5, std=0.5)
    assert torch.allclose(resized, torch.ones_like(resized))


def test_fashion_mnist_reads_its_own_folder(tiny_root):
    data = load_data(dataset_cfg(tiny_root, name="fashion_mnist", torchvision_class="FashionMNIST"), batch_size=64, device=torch.device("cpu"))
    mnist = load_data(dataset_cfg(tiny_root), batch_size=64, device=torch.device("cpu"))
    assert not torch.equal(data.test.images, mnist.test.images)


@pytest.mark.parametrize("left", ["another data set", "damaged"])
def test_an_older_torchvisions_processed_copy_is_not_read_in_place_of_the_raw_files(tiny_root, tmp_path, left):
    """torchvision reads MNIST/processed/training.pt and test.pt in place of raw/ where it finds them: FashionMNIST
    there trained as mnist without a word, and a damaged copy was reported as damaged raw files."""
    root = tmp_path / "data"
    shutil.copytree(tiny_root / "MNIST", root / "MNIST")
    (root / "MNIST" / "processed").mkdir()
    for train, file in ((True, "training.pt"), (False, "test.pt")):
        if left == "damaged":
            (root / "MNIST" / "processed" / file).write_bytes(b"garbage")
        else:
            torch.save(read_split(dataset_cfg(tiny_root, name="fashion_mnist", torchvision_class="FashionMNIST"),
                                  train=train), root / "MNIST" / "processed" / file)
    for train in (True, False):
        assert all(torch.equal(read, raw) for read, raw in zip(read_split(dataset_cfg(root), train=train),
                                                               read_split(dataset_cfg(tiny_root), train=train)))


def test_missing_data_names_the_folder_and_the_four_files(tmp_path):
    with pytest.raises(DataError) as caught:
        read_split(dataset_cfg(tmp_path), train=True)
    message = str(caught.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert all(name in message for name in RAW_FILES)


@pytest.mark.parametrize("below", ["MNIST", "MNIST/raw"])
def test_a_root_that_names_the_data_sets_own_folder_is_told_the_one_above(tiny_root, below):
    """dataset.root=…/MNIST (or …/MNIST/raw): the advice named the layout, not the folder that has it."""
    with pytest.raises(DataError) as caught:
        read_split(dataset_cfg(tiny_root / below), train=True)
    assert str(caught.value).endswith(f"dataset.root names the data set's own folder: point it at the one that holds "
                                      f"MNIST/raw/, dataset.root={tiny_root}.")


def corrupt_copy(tiny_root, tmp_path, damage):
    root = tmp_path / "data"
    shutil.copytree(tiny_root / "MNIST", root / "MNIST")
    damage(root / "MNIST" / "raw")
    return root


def truncate(raw):
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:5000])


def wrong_magic(raw):
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(struct.pack(">I", 0x12345678) + path.read_bytes()[4:])


def wrong_count(raw):
    path = raw / "train-labels-idx1-ubyte"
    data = path.read_bytes()
    path.write_bytes(data[:4] + struct.pack(">I", 599) + data[8:-1])


@pytest.mark.parametrize("damage", [truncate, wrong_magic, wrong_count])
def test_corrupted_idx_files_are_reported_as_such(tiny_root, tmp_path, damage):
    root = corrupt_copy(tiny_root, tmp_path, damage)
    with pytest.raises(DataError, match="corrupted|truncated|images but"):
        load_data(dataset_cfg(root), batch_size=64, device=torch.device("cpu"))


def test_a_damaged_idx_file_is_named(tiny_root, tmp_path):
    root = corrupt_copy(tiny_root, tmp_path, truncate)
    with pytest.raises(DataError, match=re.escape(f"{root / 'MNIST' / 'raw' / 'train-images-idx3-ubyte'} is corrupted "
                                                  f"or truncated (RuntimeError: ")):
        read_split(dataset_cfg(root), train=True)


def a_broken_link(raw):
    (raw / "t10k-labels-idx1-ubyte").unlink()
    (raw / "t10k-labels-idx1-ubyte").symlink_to(raw / "gone")


def no_regular_file(raw):
    (raw / "t10k-labels-idx1-ubyte").unlink()
    os.mkfifo(raw / "t10k-labels-idx1-ubyte")  # a reader would wait on it for ever


@pytest.mark.parametrize("damage, said", [
    (lambda raw: (raw / "t10k-labels-idx1-ubyte").unlink(),
     "It lacks t10k-labels-idx1-ubyte: put that file there, from an intact copy."),
    (a_broken_link, "t10k-labels-idx1-ubyte is a broken link: point it at the file, or put the file there."),
    (no_regular_file, "t10k-labels-idx1-ubyte is no regular file where that file should be: replace it with the file."),
], ids=["missing", "broken link", "pipe"])
def test_one_idx_file_missing_or_no_file_is_named(tiny_root, tmp_path, damage, said):
    """Three of the four files there: the one that is not was not named, and the advice was to move dataset.root."""
    root = corrupt_copy(tiny_root, tmp_path, damage)
    with pytest.raises(DataError) as caught:
        read_split(dataset_cfg(root), train=False)
    assert str(caught.value).endswith(said) and "Point dataset.root" not in str(caught.value), caught.value


def test_images_of_another_size_name_their_file(tmp_path):
    raw = write_dataset(tmp_path, "MNIST")
    write_images(raw / "train-images-idx3-ubyte", np.zeros((600, 32, 32)))
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'MNIST' / 'raw' / 'train-images-idx3-ubyte'} holds "
                                                  f"images of 32x32, where mnist's are 28x28: it is no mnist file.")):
        read_split(dataset_cfg(tmp_path), train=True)


def test_a_file_on_the_way_to_the_data_folder_is_named(tmp_path):
    (tmp_path / "notes").write_text("a file")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'notes'} is a file where a folder on the way to "
                                                  f"dataset.root={tmp_path / 'notes' / 'data'} should be.")):
        read_split(dataset_cfg(tmp_path / "notes" / "data"), train=True)


def test_labels_outside_the_classes_are_refused(tmp_path):
    write_dataset(tmp_path, "MNIST")
    with pytest.raises(DataError, match=r"range over \[0, 9\].*num_classes=5"):
        load_data(dataset_cfg(tmp_path, num_classes=5), batch_size=64, device=torch.device("cpu"))


@pytest.mark.parametrize("changes,batch,message", [
    ({"val_size": 600}, 64, "dataset.val_size"), ({}, 501, "trainer.batch_size"),
    ({"train_size": 501}, 64, "dataset.train_size=501 is more than the 500 training images"),
    ({"train_size": 32}, 64, "trainer.batch_size=64 is more than the 32 training images of dataset.train_size=32")])
def test_sizes_that_do_not_fit_the_data_are_refused(tiny_root, changes, batch, message):
    with pytest.raises(UserError, match=message):
        load_data(dataset_cfg(tiny_root, **changes), batch_size=batch, device=torch.device("cpu"))


def test_a_training_subset_is_the_first_of_the_split_and_a_smaller_one_lies_within_a_larger(tiny_root):
    """dataset.train_size: a learning curve's training sets, from one seeded order; val stays the same."""
    cpu = torch.device("cpu")
    whole = load_data(dataset_cfg(tiny_root), batch_size=64, device=cpu)
    subsets = [load_data(dataset_cfg(tiny_root, train_size=size), batch_size=64, device=cpu) for size in (100, 300)]
    for subset, size in zip(subsets, (100, 300)):
        assert len(subset.train) == size and torch.equal(subset.val.images, whole.val.images)
        assert torch.equal(subset.train.images, whole.train.images[:size])
        assert torch.equal(subset.train.labels, whole.train.labels[:size])
    computed = load_data(dataset_cfg(tiny_root, train_size=100, mean=None, std=None), batch_size=64, device=cpu)
    raw, _ = read_split(dataset_cfg(tiny_root), train=True)
    pixels = raw[split_train_val(len(raw), 100, 0)[0][:100]].float() / 255  # the images it trains on, as always
    assert computed.mean == pytest.approx(float(pixels.mean())) and computed.std == pytest.approx(float(pixels.std()))


def test_the_next_job_of_the_same_data_reuses_it_until_a_file_changes(tmp_path):
    """A process's jobs of one data set (a sweep in run.py, a joblib worker) read it once; other settings
    or a rewritten file read it anew."""
    write_dataset(tmp_path, "MNIST", seed=0)
    cpu = torch.device("cpu")
    first = load_data(dataset_cfg(tmp_path), batch_size=64, device=cpu)
    assert load_data(dataset_cfg(tmp_path), batch_size=32, device=cpu) is first
    other_split = load_data(dataset_cfg(tmp_path, split_seed=1), batch_size=64, device=cpu)
    assert other_split is not first and not torch.equal(other_split.val.labels, first.val.labels)
    again = load_data(dataset_cfg(tmp_path), batch_size=64, device=cpu)
    assert again is not other_split and torch.equal(again.val.images, first.val.images)
    write_dataset(tmp_path, "MNIST", seed=1)  # the same sizes, other images
    rewritten = load_data(dataset_cfg(tmp_path), batch_size=64, device=cpu)
    assert rewritten is not again and rewritten.fingerprint != first.fingerprint


def test_a_download_that_times_out_is_no_folder_that_cannot_be_written(tmp_path, monkeypatch):
    """torchvision lets a read timeout (an OSError) through, which was told as files "corrupted or truncated"."""
    import torchvision

    def times_out(self):
        raise TimeoutError("The read operation timed out")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", times_out)  # no network here to time out for real
    with pytest.raises(DataError, match=re.escape(f"mnist is not in {tmp_path / 'MNIST' / 'raw'} and the download "
                                                  f"failed (TimeoutError: The read operation timed out).")):
        read_split(dataset_cfg(tmp_path, download=True), train=True)
