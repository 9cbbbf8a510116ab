"""MNIST / FashionMNIST as tensors resident on the training device.

The files are torchvision's (its folder layout, and its dataset classes download them when they are
missing); reading them is parsing four IDX headers, done here so that a run need not import
torchvision (0.2 s, or 1.7 s before torch._dynamo is loaded) when the files are there. Everything
after that is batched tensor work done once: resize (or pad) to the model's input size and normalise
with the statistics of the training images. Training then slices batches out of these tensors, with
no DataLoader and no per-sample PIL transforms.
"""

from __future__ import annotations

import contextlib
import io
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from lenet_exp.errors import ConfigError, DataError

FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}  # torchvision's class names and folders
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
NATIVE_SIZE = 28
IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only one these data sets use


@dataclass
class Split:
    images: torch.Tensor  # float32 [N, 1, S, S], normalised
    labels: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Data:
    train: Split
    val: Split
    test: Split
    mean: float
    std: float


def dataset_class(name: str):
    """torchvision's dataset class (imported only when needed: to download, or for class names)."""
    import torchvision

    return getattr(torchvision.datasets, FOLDERS[name])


def raw_folder(root: str | Path, name: str) -> Path:
    return Path(root).expanduser().resolve() / FOLDERS[name] / "raw"


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """An IDX file of unsigned bytes with ``ndim`` dimensions as a uint8 tensor; ValueError if damaged."""
    data = path.read_bytes()
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path.name}: {len(data)} bytes, shorter than its header")
    zero, kind, dims = struct.unpack_from(">HBB", data)
    if zero != 0 or kind != IDX_UBYTE or dims != ndim:
        raise ValueError(f"{path.name}: bad magic number {data[:4].hex()}")
    shape = struct.unpack_from(f">{ndim}I", data, 4)
    body = memoryview(data)[4 + 4 * ndim:]
    if len(body) != math.prod(shape):
        raise ValueError(f"{path.name}: header says {'x'.join(map(str, shape))} values, the file holds {len(body)}")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(*shape)


def fetch_with_torchvision(root: Path, name: str, folder: Path) -> None:
    """Let torchvision fetch and unpack the four files into ``folder``."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # torchvision prints each attempt
            dataset_class(name)(str(root), train=True, download=True)
    except Exception as error:  # torchvision signals failures with RuntimeErrors and URLErrors
        raise DataError(
            f"{name} is not in {folder} and the download failed (no network?). That folder must hold the "
            f"four IDX files {', '.join(RAW_FILES)}. Point dataset.root at the folder that holds "
            f"{FOLDERS[name]}/raw/, e.g. `python run.py dataset.root=../shared/data`, or set the environment "
            f"variable LENET_EXP_DATA."
        ) from error


def read_split(root: str | Path, name: str, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of torchvision's raw files: uint8 images [N, 28, 28] and int64 labels [N]."""
    root = Path(root).expanduser().resolve()
    folder = raw_folder(root, name)
    if not all((folder / file).is_file() for file in RAW_FILES):
        if not download:
            raise DataError(
                f"{name} is not in {folder} and dataset.download=false. That folder must hold the four IDX "
                f"files {', '.join(RAW_FILES)}. Point dataset.root at the folder that holds {FOLDERS[name]}/raw/, "
                f"e.g. `python run.py dataset.root=../shared/data`, or set the environment variable LENET_EXP_DATA."
            )
        fetch_with_torchvision(root, name, folder)
    prefix = "train" if train else "t10k"
    try:
        images = read_idx(folder / f"{prefix}-images-idx3-ubyte", 3)
        labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte", 1).long()
    except (OSError, ValueError) as error:
        raise DataError(
            f"The {prefix} IDX files of {name} in {folder} are corrupted or truncated ({error}). "
            f"Replace them with intact copies."
        ) from error
    if len(images) != len(labels):
        raise DataError(
            f"{name} in {folder}: {len(images)} images but {len(labels)} labels in the "
            f"{prefix} files. Replace them with intact copies."
        )
    if images.shape[1:] != (NATIVE_SIZE, NATIVE_SIZE):
        raise DataError(f"{name} in {folder}: images are {tuple(images.shape[1:])}, expected 28x28.")
    return images, labels


def check_labels(labels: torch.Tensor, num_classes: int, where: str) -> None:
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise DataError(
            f"Labels of {where} range over [{int(labels.min())}, {int(labels.max())}], outside the "
            f"{num_classes} classes of dataset.num_classes={num_classes}. The label file is corrupted, "
            f"or dataset.num_classes is wrong."
        )


def prepare_images(images: torch.Tensor, size: int, mode: str, mean: float, std: float) -> torch.Tensor:
    """uint8 [N, H, W] -> normalised float32 [N, 1, size, size], the model's input.

    The same function serves training, evaluation and prediction so preprocessing cannot drift.
    """
    x = images.unsqueeze(1).float().div_(255.0)
    if x.shape[-1] != size:
        if mode == "pad":
            border = size - x.shape[-1]
            x = F.pad(x, (border // 2, border - border // 2, border // 2, border - border // 2))
        else:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    return x.sub_(mean).div_(std)


def split_train_val(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the training and validation images, the same for a given seed on any machine."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[val_size:], order[:val_size]


def check_sizes(n_train: int, val_size: int, batch_size: int) -> None:
    if val_size >= n_train:
        raise ConfigError("dataset.val_size", val_size, f"fewer than the {n_train} images of the train split")
    if batch_size > n_train - val_size:
        raise ConfigError(
            "trainer.batch_size", batch_size,
            f"at most the {n_train - val_size} training images left after the validation split",
        )


def load_data(dcfg, batch_size: int, device: torch.device) -> Data:
    """Read, split, preprocess and move a data set to ``device`` once for the whole run."""
    train_images, train_labels = read_split(dcfg.root, dcfg.name, True, dcfg.download)
    test_images, test_labels = read_split(dcfg.root, dcfg.name, False, dcfg.download)
    check_sizes(len(train_labels), dcfg.val_size, batch_size)
    check_labels(train_labels, dcfg.num_classes, f"{dcfg.name} train")
    check_labels(test_labels, dcfg.num_classes, f"{dcfg.name} t10k")

    train_idx, val_idx = split_train_val(len(train_labels), dcfg.val_size, dcfg.split_seed)
    mean, std = dcfg.mean, dcfg.std
    if mean is None or std is None:  # statistics of the images we train on, never of val or test
        pixels = train_images[train_idx].float().div_(255.0)
        mean = float(pixels.mean()) if mean is None else mean
        std = float(pixels.std()) if std is None else std

    def to_split(images: torch.Tensor, labels: torch.Tensor) -> Split:
        images = images.to(device, non_blocking=True)  # uint8 travels; floats are made on the device
        x = prepare_images(images, dcfg.image_size, dcfg.resize_mode, mean, std)
        return Split(x, labels.to(device, non_blocking=True))

    return Data(
        train=to_split(train_images[train_idx], train_labels[train_idx]),
        val=to_split(train_images[val_idx], train_labels[val_idx]),
        test=to_split(test_images, test_labels),
        mean=mean,
        std=std,
    )
