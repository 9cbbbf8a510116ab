"""MNIST / FashionMNIST (any torchvision data set of the IDX family) as tensors on the training device.

``dataset.torchvision_class`` names the torchvision class that reads the IDX files (``MNIST``,
``FashionMNIST``, ``KMNIST``: a new data set of the family is one YAML in ``configs/dataset/``);
everything after that is batched tensor work done once: resize (or pad) to the model's input size and
normalise with the statistics of the training images. Training then slices batches out of these
tensors, with no DataLoader and no per-sample PIL transforms. A process keeps the last data set it
loaded for its next job of the same data (a sweep's jobs in run.py, a joblib worker's, a stacked
launcher's groups), until one of its files changes.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
import torchvision
from omegaconf import OmegaConf

from lenet_exp.config import NATIVE_SIZE, READ_AS_MNIST, to_dict
from lenet_exp.device import check_fits
from lenet_exp.errors import ConfigError, DataError, UserError, one_line

log = logging.getLogger(__name__)
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


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
    fingerprint: dict[str, int]  # sizes and a cheap checksum of the files read: a resume checks it


def fingerprint(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor]) -> dict[str, int]:
    """Image counts and :func:`checksum` of each split: another data set, or another version of this one,
    differs here."""
    return {"train": len(train[1]), "test": len(test[1]), "train_checksum": checksum(*train),
            "test_checksum": checksum(*test)}


def checksum(images: torch.Tensor, labels: torch.Tensor) -> int:
    """A checksum of every 7th row and column of every image and of all labels (cheap: one pass over 1/49)."""
    return int(images[:, ::7, ::7].sum(dtype=torch.int64)) * 31 + int(labels.sum())


def dataset_class(dcfg) -> type[torchvision.datasets.MNIST]:
    """The torchvision class that ``dataset.torchvision_class`` names: MNIST or one read as it is."""
    if str(dcfg.torchvision_class) not in READ_AS_MNIST:
        raise ConfigError("dataset.torchvision_class", dcfg.torchvision_class,
                          "a torchvision data set read as MNIST is: " + ", ".join(READ_AS_MNIST))
    return getattr(torchvision.datasets, str(dcfg.torchvision_class))


def check_named_as_read(dcfg) -> None:
    """``dataset.name=fashion_mnist`` reading MNIST's files, or ``dataset.torchvision_class=FashionMNIST`` under
    MNIST's name: every record of the run (metrics, TensorBoard, the sweep summary, an evaluation's line) would
    name a data set it did not read. A name belongs to the option of that name (``dataset/mnist.yaml``), else
    to the options that take it; one of them must read these files."""
    options = dataset_options()
    name, read = str(dcfg.name), str(dcfg.torchvision_class)
    owners = ([(option, reads) for option, _, reads in options if option == name and reads]
              or [(option, reads) for option, its_name, reads in options if its_name == name and reads])
    if owners and all(reads != read for _, reads in owners):
        (owner, its_files), reading = owners[0], next((option for option, _, reads in options if reads == read), None)
        choices = f"dataset={owner}" + (f" or dataset={reading}" if reading else "")
        raise UserError(
            f"dataset.name={name} is the name of dataset={owner}, which reads {its_files}, but "
            f"dataset.torchvision_class={read} reads {read}: what is recorded would name a data set it did not "
            f"read. Choose the data set with dataset=<option> ({choices}); a variant of one takes a "
            f"dataset.name of its own.")


def dataset_options() -> list[tuple[str, Optional[str], Optional[str]]]:
    """(option, its dataset.name, the torchvision class it reads) of the dataset group: as Hydra's running config
    loader finds them (a config folder of one's own included), or outside a run (lenet_exp.train()) this
    checkout's configs/dataset/."""
    from lenet_exp import CONFIGS
    from lenet_exp.command_line_errors.keys import config_loader, group_options, option_config

    configs = ({option: option_config("dataset", option) for option in group_options("dataset")} if config_loader()
               else {path.stem: OmegaConf.load(path) for path in sorted((CONFIGS / "dataset").glob("*.yaml"))})
    return [(option, config.get("name"), config.get("torchvision_class"))
            for option, config in configs.items() if config is not None]


def class_names(dcfg) -> list[str]:
    """Each class's short name, as the figures label it: MNIST's digit ("3", not "3 - three"), FashionMNIST's
    garment; its number where the torchvision class names fewer classes than ``dataset.num_classes``."""
    names = [name.split(" - ")[0] for name in dataset_class(dcfg).classes]
    return names if len(names) == dcfg.num_classes else [str(label) for label in range(dcfg.num_classes)]


def raw_folder(dcfg) -> Path:
    root = Path(dcfg.root).expanduser()
    try:  # Python before 3.13 raises on a loop of symbolic links; 3.13 resolves what it can, and stat says ELOOP
        root = root.resolve()
        root.stat()
    except FileNotFoundError:  # not there (yet): a download makes it, or read_split says what is missing
        pass
    except NotADirectoryError as error:  # a file on the way
        file = next((path for path in reversed(root.parents) if path.exists() and not path.is_dir()), root)
        raise DataError(f"{file} is a file where a folder on the way to dataset.root={dcfg.root} should be. "
                        f"{point_the_root(dcfg)}") from error
    except (RuntimeError, OSError) as error:
        if isinstance(error, OSError) and error.errno != errno.ELOOP:
            raise unreadable("the data folder", Path(error.filename or root).parent, error) from error
        raise DataError(f"dataset.root={dcfg.root} cannot be followed: its symbolic links make a loop. "
                        f"{point_the_root(dcfg)}") from error
    return root / dataset_class(dcfg).__name__ / "raw"


def point_the_root(dcfg) -> str:
    """The advice of every error that finds no data set where dataset.root points: the folder above it, where
    dataset.root names the data set's own folder (…/MNIST) or its raw/ (…/MNIST/raw)."""
    name, root = dataset_class(dcfg).__name__, Path(str(dcfg.root)).expanduser()
    above = next((folder for folder in (root.parent, root.parent.parent) if (folder / name / "raw").is_dir()
                  and root in (folder / name, folder / name / "raw")), None)
    if above is not None:
        return (f"dataset.root names the data set's own folder: point it at the one that holds {name}/raw/, "
                f"dataset.root={above}.")
    return (f"Point dataset.root at the folder that holds {name}/raw/ "
            f"(e.g. `python run.py dataset.root=../shared/data`), or set LENET_EXP_DATA to it.")


def unreadable(what: str, path: Path, error: OSError) -> DataError:
    return DataError(f"Cannot read {what} {path} ({error.strerror or one_line(error)}). Make it readable to you, or "
                     f"point dataset.root at a copy you can read.")


def download_lock(root: Path, folder_name: str) -> Path:
    return root / f".{folder_name}.download.lock"


@contextlib.contextmanager
def one_download_at_a_time(root: Path, folder_name: str) -> Iterator[None]:
    """The parallel jobs of a first sweep would all download the same files into the same folder at
    once, and read each other's half-written files: the first to come downloads, the others wait for it
    and then find the files. (No lock where there is no fcntl or the folder cannot be written.)"""
    try:
        import fcntl
        root.mkdir(parents=True, exist_ok=True)
        lock = open(download_lock(root, folder_name), "a")
    except (ImportError, OSError):
        yield
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("Waiting for another job's download of %s into %s", folder_name, root)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def outermost_missing(path: Path) -> Optional[Path]:
    """The outermost of ``path`` and its parents that does not exist: the folder a download would create."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def remove_a_failed_downloads_folders(made: Optional[Path]) -> None:
    """A mistyped dataset.root and a download that failed (no network) left the folders made for it behind:
    ``made`` goes, where it holds nothing but empty folders and the download's lock."""
    if made is None or not made.is_dir():
        return
    if all(path.is_dir() or path.name.endswith(".download.lock") for path in made.rglob("*")):
        shutil.rmtree(made, ignore_errors=True)


def damaged_file(folder: Path, prefix: str) -> Optional[tuple[Path, str]]:
    """The split's IDX file that torchvision's reader cannot read, and why; None where each reads alone (they
    disagree with each other then)."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    for path, read in ((folder / f"{prefix}-images-idx3-ubyte", read_image_file),
                       (folder / f"{prefix}-labels-idx1-ubyte", read_label_file)):
        try:
            read(str(path))
        except Exception as error:  # torchvision's bare asserts among them
            return path, f"{type(error).__name__}: {str(error) or 'bad header'}"
    return None


def reading_raw_only(cls: type[torchvision.datasets.MNIST]) -> type[torchvision.datasets.MNIST]:
    """``cls`` reading raw/ alone: torchvision reads an older version's ``processed/training.pt`` and ``test.pt``
    in its place wherever it finds them, whatever they hold (another data set's images: trained on unseen). And
    the split it reads needs its own two files alone (torchvision asks for all four: task=eval for the test's)."""
    def split_there(self) -> bool:
        return all((Path(self.raw_folder) / name).is_file() for name in split_files("train" if self.train else "t10k"))

    # the name names its folder
    return type(cls.__name__, (cls,), {"_check_legacy_exist": lambda self: False, "_check_exists": split_there})


def refuse_a_broken_link(dcfg) -> None:
    """A symbolic link on the way to the raw folder that points nowhere: the data set was "not in" the folder it
    names, or a download failed ("File exists"), without a word of the link (one to a file is said as such)."""
    root = Path(dcfg.root).expanduser()
    name = dataset_class(dcfg).__name__
    for path in (*reversed(root.parents), root, root / name, root / name / "raw"):
        with contextlib.suppress(OSError):  # (one that cannot be looked at: raw_folder says so)
            if not path.is_symlink() or path.exists():
                continue
            if not links_in_a_loop(path):
                raise DataError(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist: point it at "
                                f"the folder, or put the folder in its place.")
            if path.parent == root or path.parent.parent == root:  # (the root's loop: raw_folder says so)
                raise DataError(f"{path} cannot be followed: its symbolic links make a loop (it points to "
                                f"{os.readlink(path)}). Put the folder in its place.")


def links_in_a_loop(path: Path) -> bool:
    try:
        path.stat()
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def split_files(prefix: str) -> list[str]:
    """The IDX files of the split ``train`` or ``t10k``: its images and its labels."""
    return [name for name in RAW_FILES if name.startswith(prefix)]


def read_split(dcfg, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one split with torchvision's reader: uint8 images [N, 28, 28] and int64 labels [N]."""
    cls, name, download = dataset_class(dcfg), dcfg.name, dcfg.download
    check_named_as_read(dcfg)
    if not str(dcfg.root).strip():  # `export LENET_EXP_DATA=` sets it to "": the current folder, not ./data
        raise DataError(f"dataset.root is empty (is LENET_EXP_DATA set to nothing?), which would read {name} from the "
                        f"current folder. Point it at the folder that holds {cls.__name__}/raw/, e.g. "
                        f"dataset.root=../shared/data, or unset LENET_EXP_DATA to use ./data.")
    refuse_a_broken_link(dcfg)
    folder, prefix = raw_folder(dcfg), "train" if train else "t10k"
    root = folder.parent.parent
    try:
        for path in (root, folder.parent, folder):
            if path.exists() and not path.is_dir():  # else torchvision's NotADirectoryError reads as damaged files
                raise DataError(f"{path} is a file where the folder of {name} should be. {point_the_root(dcfg)}")
        missing_files = not all((folder / file).is_file() for file in split_files(prefix))
    except OSError as error:  # a folder on the way that one may not enter: the one that holds what stat tried
        raise unreadable("the data folder", Path(error.filename or folder).parent, error) from error
    made = outermost_missing(folder) if download else None
    try:
        # torchvision prints download attempts; keep them for the error message instead.
        with contextlib.redirect_stdout(io.StringIO()), \
                one_download_at_a_time(root, cls.__name__) if download and missing_files else contextlib.nullcontext():
            dataset = reading_raw_only(cls)(str(root), train=train, download=download)
    except Exception as error:  # torchvision signals everything with bare asserts and RuntimeErrors
        # an OSError of a download that torchvision lets through: a root it cannot write (read-only), a timeout
        failed_download = isinstance(error, OSError) and download and missing_files
        unwritable = failed_download and error.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
        if str(error).startswith(("Dataset not found", "Error downloading")) or failed_download:
            remove_a_failed_downloads_folders(made)
            if download and missing_files:  # the data set's root is the user's: no lock left there for nothing
                with contextlib.suppress(OSError):  # a read-only root has none, and refuses even to look
                    download_lock(root, cls.__name__).unlink(missing_ok=True)
            how = (f"no download can write there ({one_line(error)})" if unwritable
                   else f"the download failed ({one_line(error)})" if failed_download
                   else "the download failed (no network?)" if download else "dataset.download=false")
            not_files = [folder / file for file in RAW_FILES
                         if (folder / file).exists() and not (folder / file).is_file()]
            lacking = [file for file in RAW_FILES if not (folder / file).exists()]  # all at once: a run reads both
            if not_files:
                what = "a folder" if not_files[0].is_dir() else "no regular file"
                where = f"{not_files[0]} is {what} where that file should be: replace it with the file."
            elif any((folder / f"{file}.gz").is_file() for file in RAW_FILES):  # ones torchvision cannot verify
                where = f"That folder holds them compressed: extract them there (`gunzip -k {folder}/*.gz`)."
            elif len(lacking) < len(RAW_FILES):  # some there: not the wrong folder, a file gone
                broken = [file for file in lacking if (folder / file).is_symlink()]
                them = "that file" if len(lacking) == 1 else "them"
                where = (f"{folder / broken[0]} is a broken link: point it at the file, or put the file there."
                         if broken else f"It lacks {', '.join(lacking)}: put {them} there, from an intact copy.")
            else:
                where = f"That folder must hold the four IDX files {', '.join(RAW_FILES)}. {point_the_root(dcfg)}"
            raise DataError(f"{name} is not in {folder} and {how}. {where}") from error
        if isinstance(error, MemoryError) or "can't allocate memory" in str(error):  # not the file's fault
            raise DataError(f"Out of memory reading the {prefix} IDX files of {name} ({one_line(error)}): free some "
                            f"memory, or raise this process's limit (ulimit -v).") from error
        if isinstance(error, PermissionError):  # intact, most likely: only not to be read by this user
            raise unreadable(f"the {prefix} IDX files of {name}:", Path(error.filename or folder), error) from error
        damaged = damaged_file(folder, prefix)
        if damaged:
            raise DataError(f"{damaged[0]} is corrupted or truncated ({damaged[1]}). Replace it with an intact copy "
                            f"of {name}'s file.") from error
        raise DataError(
            f"The {prefix} IDX files of {name} in {folder} are corrupted or truncated "
            f"({type(error).__name__}: {str(error) or 'bad header'}). Replace them with intact copies."
        ) from error
    images, labels = dataset.data, dataset.targets.long()
    if len(images) != len(labels):
        raise DataError(
            f"{name} in {folder}: {len(images)} images but {len(labels)} labels in the "
            f"{prefix} files. Replace them with intact copies."
        )
    if images.shape[1:] != (NATIVE_SIZE, NATIVE_SIZE):
        images_file = folder / f"{prefix}-images-idx3-ubyte"
        raise DataError(f"{images_file} holds images of {images.shape[1]}x{images.shape[2]}, where {name}'s are "
                        f"{NATIVE_SIZE}x{NATIVE_SIZE}: it is no {name} file. Replace it with an intact copy.")
    return images, labels


def check_labels(labels: torch.Tensor, num_classes: int, where: str) -> None:
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise DataError(
            f"Labels of {where} range over [{int(labels.min())}, {int(labels.max())}], outside the "
            f"{num_classes} classes of dataset.num_classes={num_classes}. The label file is corrupted, "
            f"or dataset.num_classes is wrong."
        )


def check_every_class_labelled(labels: torch.Tensor, test_labels: torch.Tensor, num_classes: int, name: str) -> None:
    """``dataset.num_classes=12`` on MNIST's ten digits: trained without a word, with outputs that no image is
    labelled with, and recorded as a data set of 12 classes. Where the test labels a class that the train labels
    lack, their file is at fault, not the setting (which the test's labels then refused)."""
    labelled = int(labels.max()) + 1 if len(labels) else num_classes  # no labels: check_sizes' to tell
    tested = int(test_labels.max()) + 1 if len(test_labels) else 0
    where = f"the labels of {name} train range over [{int(labels.min()) if len(labels) else 0}, {labelled - 1}]"
    if labelled < tested:
        raise DataError(f"{where}, but those of {name} t10k reach {tested - 1}: the train label file lacks classes the "
                        f"test has. It is damaged or of another data set: put the data set's own in its place.")
    if labelled < num_classes:
        raise DataError(
            f"dataset.num_classes={num_classes}, but {where}: the model would have {num_classes - labelled} output(s) "
            f"that no image is labelled with. Set dataset.num_classes={labelled}.")


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


def split_train_val(n: int, val_size: int, seed: int,
                    train_size: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the training and validation images, the same for a given seed on any machine: the first
    ``train_size`` of those left after val (all of them for None), so that a smaller set is within a larger."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[val_size:][:train_size], order[:val_size]


STOCK_SIZES = (60_000, 10_000)  # MNIST's and FashionMNIST's train and test images
STOCK_MEANS = {"MNIST": 0.1307, "FashionMNIST": 0.2860}  # their train images' mean pixel, 0 to 1


def say_if_not_as_named(dcfg, train_images: torch.Tensor, test_images: torch.Tensor) -> None:
    """Files that read well but are not the data set's trained without a word: train and t10k swapped (10,000
    images trained on), or another data set's files in its folder (FashionMNIST's in MNIST/raw, normalised and
    recorded as digits)."""
    where = raw_folder(dcfg)
    if len(train_images) < len(test_images):
        log.warning("%s's train files in %s hold %d images, its t10k files %d: are the two swapped? Each file's name "
                    "says its split (train-images-idx3-ubyte, t10k-images-idx3-ubyte, and their labels').", dcfg.name,
                    where, len(train_images), len(test_images))
    elif (len(train_images), len(test_images)) == STOCK_SIZES and (name := dataset_class(dcfg).__name__) in STOCK_MEANS:
        sample = train_images[::10]  # of every 10th image, in ~20 ms, not 0.13 s (a view: not copied)
        mean = float(sample.sum(dtype=torch.int64)) / sample.numel() / 255
        if abs(mean - STOCK_MEANS[name]) > 0.05:  # (half the gap between the two)
            log.warning("The train images in %s have a mean pixel of %.4f, where %s's have %.4f: are they another "
                        "data set's files?", where, mean, name, STOCK_MEANS[name])


def check_sizes(n_train: int, val_size: int, batch_size: int, train_size: Optional[int] = None) -> None:
    if val_size >= n_train:
        raise ConfigError("dataset.val_size", val_size, f"fewer than the {n_train} images of the train split")
    left = n_train - val_size
    if train_size is not None and train_size > left:
        raise UserError(f"dataset.train_size={train_size} is more than the {left} training images that "
                        f"dataset.val_size={val_size} leaves of the {n_train} of the train split: lower it, or "
                        f"null for all of them.")
    if train_size is not None and batch_size > train_size:
        raise UserError(f"trainer.batch_size={batch_size} is more than the {train_size} training images of "
                        f"dataset.train_size={train_size}: lower trainer.batch_size, or raise dataset.train_size.")
    if batch_size > left:  # either may be the one meant: say both
        lower = [f"trainer.batch_size to at most {left}"] + (
            [f"dataset.val_size to at most {n_train - batch_size}"] if n_train - batch_size >= 1 else [])
        raise UserError(f"trainer.batch_size={batch_size} is more than the {left} training images that "
                        f"dataset.val_size={val_size} leaves of the {n_train} of the train split: lower "
                        f"{' or '.join(lower)}.")


_last_loaded: Optional[tuple[tuple, Data]] = None  # (what it was loaded from, the data)


def load_data(dcfg, batch_size: int, device: torch.device) -> Data:
    """The data set on ``device``: the one this process loaded last, if it comes from the same files
    (unchanged since) with the same settings, else read anew (:func:`read_data`)."""
    global _last_loaded
    def stamp(file: Path) -> Optional[tuple[int, int, int]]:
        try:
            found = file.stat()
        except OSError:  # missing: read_data says so
            return None
        return found.st_size, found.st_mtime_ns, found.st_ino

    folder = raw_folder(dcfg)
    settings = json.dumps(to_dict(dcfg), sort_keys=True)
    source = (settings, str(device), [stamp(folder / name) for name in RAW_FILES])
    if _last_loaded is not None and _last_loaded[0] == source:
        data = _last_loaded[1]
        check_sizes(data.fingerprint["train"], dcfg.val_size, batch_size, dcfg.get("train_size"))
        return data
    _last_loaded = None  # its memory is free for the next one
    data = read_data(dcfg, batch_size, device)
    _last_loaded = (source, data)
    return data


def read_data(dcfg, batch_size: int, device: torch.device) -> Data:
    """Read, split, preprocess and move a data set to ``device`` once for the whole run."""
    train_images, train_labels = read_split(dcfg, train=True)
    test_images, test_labels = read_split(dcfg, train=False)
    check_sizes(len(train_labels), dcfg.val_size, batch_size, dcfg.get("train_size"))
    check_labels(train_labels, dcfg.num_classes, f"{dcfg.name} train")
    check_labels(test_labels, dcfg.num_classes, f"{dcfg.name} t10k")
    check_every_class_labelled(train_labels, test_labels, dcfg.num_classes, dcfg.name)
    say_if_not_as_named(dcfg, train_images, test_images)

    train_idx, val_idx = split_train_val(len(train_labels), dcfg.val_size, dcfg.split_seed, dcfg.get("train_size"))
    # the images kept (not those dataset.train_size leaves out), as float32, and the resize's copy of a split
    splits, side = (len(train_idx), len(val_idx), len(test_labels)), dcfg.image_size
    check_fits((sum(splits) + max(splits)) * side * side * 4, device,
               f"{sum(splits)} images of {side}x{side} pixels (dataset.image_size={side})",
               "Choose a smaller dataset.image_size (32 is LeNet-5's).")
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
        fingerprint=fingerprint((train_images, train_labels), (test_images, test_labels)),
    )
