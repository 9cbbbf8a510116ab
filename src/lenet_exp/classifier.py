"""``load_model()``: a trained checkpoint as a classifier for Python (a notebook, a script), used as
``task=eval`` and ``task=predict`` use it: its own preprocessing, weights (the average, where its run kept one),
test-time views and precision."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from omegaconf import OmegaConf

from lenet_exp.config import NATIVE_SIZE, PREPROCESSING_KEYS, settings_named
from lenet_exp.data import class_names, prepare_images
from lenet_exp.engine import autocast
from lenet_exp.errors import ConfigError, DeviceError, UserError
from lenet_exp.inference import Trained, load_trained, read_image, say_if_odd
from lenet_exp.overrides import override_key
from lenet_exp.validation import validate

# what load_model() sets itself: the checkpoint, the task that reads it, and the device (its own argument)
ITS_OWN = ("task", "ckpt", "image", "device")
OTHER_DATA = ("dataset", "dataset.name", "dataset.torchvision_class", "dataset.num_classes")  # what would name another
EXPORT_THE_NETWORK = ("Trace, script or export the network itself, with the images as it takes them: "
                      "torch.export.export(model.net, (model.prepare(images),)).")


class Classifier(torch.nn.Module):
    """A trained model, ``net``, with what its run knows of its inputs and outputs: images in as the data sets
    hold them, each class's probability out (of ``classes``, in their order), averaged over its run's test-time
    views in its test precision, with BatchNorm's running statistics (whatever the mode). ``net`` alone takes
    images as :meth:`prepare` makes them, and gives logits: the one to fine-tune, trace or export."""

    def __init__(self, trained: Trained) -> None:
        super().__init__()
        self.net = trained.model
        self.classes = class_names(OmegaConf.create(trained.state["config"]["dataset"]))
        self.preprocessing = {key: trained.pre[key] for key in PREPROCESSING_KEYS}
        self.precision = trained.tcfg.precision
        self.batch_size = trained.tcfg.eval_batch_size  # images at a time: a whole test split at once is GBs
        self.views = trained.views
        self.eval()

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def prepare(self, images: torch.Tensor | str | os.PathLike) -> torch.Tensor:
        """Grayscale 28x28 images, [N, 28, 28] or [N, 1, 28, 28] ([28, 28] for one), as uint8 0-255 (the data sets'
        own) or floats 0-1 (torchvision's ``ToTensor``), a tensor or a NumPy array, or an image file's path (read as
        task=predict reads it), as ``net`` takes them: resized or padded to its input size and normalised, on its
        device."""
        if isinstance(images, (str, os.PathLike)):
            path, images = str(images), read_image(str(images), on_the_command_line=False)
            say_if_odd(images, path)
        if isinstance(images, np.ndarray):
            if images.dtype.kind not in "uifb":
                raise TypeError(f"A Classifier takes images of numbers, not a NumPy array of {images.dtype}.")
            # (a negatively strided or big-endian one too; a read-only one, np.asarray(PIL image)'s, as a copy: torch
            # warned of it)
            images = np.ascontiguousarray(images, dtype=images.dtype.newbyteorder("="))
            images = torch.from_numpy(images if images.flags.writeable else images.copy())
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"A Classifier takes images as a torch.Tensor, a NumPy array or an image file's path, not "
                            f"a {type(images).__name__}: np.asarray(images) makes an array of a list or a PIL image "
                            f"(grayscale, 28x28); for another size, pass its file's path.")
        shape = list(images.shape)
        if images.dim() == 4 and shape[1] == 1:  # a channel of one
            images = images[:, 0]
        elif images.dim() == 2:  # one image
            images = images[None]
        if images.dim() != 3 or images.shape[-2:] != (NATIVE_SIZE, NATIVE_SIZE):
            size = [NATIVE_SIZE, NATIVE_SIZE]
            fix = ("its channel last (NumPy's and PIL's layout): images[..., 0] drops it"
                   if shape[-3:] == [*size, 1] else
                   "colour images: average their channels into one (or pass their paths)"
                   if shape[-3:] in ([3, *size], [*size, 3]) else
                   "an image of another size is read to this one from its file (pass its path)")
            raise ValueError(f"A Classifier takes grayscale {NATIVE_SIZE}x{NATIVE_SIZE} images, [N, {NATIVE_SIZE}, "
                             f"{NATIVE_SIZE}] or [N, 1, {NATIVE_SIZE}, {NATIVE_SIZE}], not shape {shape}: {fix}.")
        if images.is_floating_point():
            low, high = (float(images.min()), float(images.max())) if images.numel() else (0.0, 0.0)
            # normalised already, 0-255 as floats, NaN: answered wrongly (but a resize's 1 + 1e-7 is 1)
            if images.isnan().any():
                raise ValueError("A Classifier takes float images of 0 to 1 (torchvision's ToTensor), and some of "
                                 "these pixels are NaN: look where the images were made.")
            if not -1e-4 <= low <= high <= 1 + 1e-4:
                fix = ("divide them by the top of their range (255 for 8-bit images), or pass 8-bit ones as uint8"
                       if low >= 0 else "pass them unnormalised, or as uint8 0-255")  # (0-255 is unnormalised)
                raise ValueError(f"A Classifier takes float images of 0 to 1 (torchvision's ToTensor), and these "
                                 f"range from {low:.4g} to {high:.4g}: {fix}.")
            images = images.clamp(0, 1) * 255  # as uint8 would be: prepare_images divides by 255
        elif images.dtype != torch.uint8:
            raise TypeError(f"A Classifier takes images as uint8 (0-255) or floats (0-1), not {images.dtype}.")
        pre = self.preprocessing
        prepared = prepare_images(images.to(self.device), pre["image_size"], pre["resize_mode"], pre["mean"],
                                  pre["std"])
        return prepared.to(next(self.net.parameters()).dtype)  # the network's own, where model.double() changed it

    def __prepare_scriptable__(self):
        """torch.jit.script's hook: what it says where it would stop at a try block with UnsupportedNodeError."""
        raise TypeError(EXPORT_THE_NETWORK)

    @torch.no_grad()  # not inference_mode(), which torch.compile cannot trace
    def forward(self, images: torch.Tensor | str | os.PathLike) -> torch.Tensor:
        """Each class's probability for each image, float32 [N, classes], as the run's test computed them."""
        exporting = getattr(torch.compiler, "is_exporting", lambda: False)()  # (torch 2.4 lacks it)
        if torch.jit.is_tracing() or exporting:  # its batches of batch_size would be traced as one: a larger N cut
            raise TypeError(EXPORT_THE_NETWORK)  # short; torch.export stopped at the range check, deep in its guards
        x, chunks = self.prepare(images), []
        training = self.net.training
        self.net.eval()  # the test's statistics, which batches of train mode would have updated
        try:
            for start in range(0, len(x), self.batch_size):
                batch = x[start:start + self.batch_size]
                with autocast(self.device, self.precision):
                    probabilities = [self.net(view(batch)).float().softmax(1) for view in self.views]
                    chunks.append(torch.stack(probabilities).mean(0))
        finally:
            self.net.train(training)
        return torch.cat(chunks) if chunks else x.new_zeros(0, len(self.classes))


def load_classifier(ckpt: str | os.PathLike, overrides: tuple, device: str | torch.device,
                    config_dir: Optional[str | os.PathLike]) -> Classifier:
    from lenet_exp import _one_by_one, compose

    if not isinstance(ckpt, (str, os.PathLike)):
        raise TypeError(f"load_model() takes the checkpoint as a path (a str or pathlib.Path), not {ckpt!r}: e.g. "
                        f"load_model('<run dir>/checkpoints/best.pt').")
    if not str(ckpt).strip():
        raise UserError("load_model('') names no checkpoint: pass a file such as <run dir>/checkpoints/best.pt.")
    overrides = _one_by_one(overrides)  # as compose() takes them: strings, or a list of them
    own = [o for o in overrides if override_key(o) in ITS_OWN]
    if own:
        raise UserError(f"load_model({own[0]!r}): the checkpoint is its first argument and the device its device=; "
                        f"its overrides are of how it is used, e.g. 'trainer.ema_decay=null' or 'model=<option>'.")
    # it reads no data set (task=eval, whose config it composes, does): its classes are its run's data set's
    data = [o for o in overrides if override_key(o) in OTHER_DATA]
    if data:
        test = ("leave it out" if override_key(data[0]) == "dataset.num_classes" else  # its model's, whatever the data
                f"test it on another data set with `python run.py task=eval ckpt=<checkpoint> {data[0]}`")
        raise UserError(f"load_model({data[0]!r}): a loaded model reads no data set; it classifies images into its "
                        f"run's classes (model.classes): {test}.")
    onto = f"load_model(device={device!r}): a model is loaded onto 'cpu' or 'cuda' (or 'cuda:N')."
    if not isinstance(device, (str, torch.device)) or device == "auto":  # "auto": the config's option, not torch's
        raise DeviceError(onto)
    try:
        device = torch.device(device)
    except RuntimeError:  # a misspelt one: torch's list of every device type it knows
        raise DeviceError(onto) from None
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"load_model(device={str(device)!r}): a model is loaded onto 'cpu' or 'cuda'.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"load_model(device={str(device)!r}) asks for a CUDA GPU, and torch {torch.__version__} "
                          f"sees none: load it with device='cpu'.")
    cfg = compose("task=eval", f"ckpt={Path(ckpt).expanduser()}", *overrides, config_dir=config_dir)
    try:
        validate(cfg)  # trainer.eval_batch_size=0, a shift larger than the image: as task=eval refuses them
    except ConfigError as error:
        raise error.for_python()
    with torch.device(device):  # made there, whatever the caller's torch.set_default_device ("meta": no data)
        trained = load_trained(cfg, settings_named(overrides), device)
    trained.model.float()  # its weights' own float32, where the caller's default dtype (float64) built it
    return Classifier(trained)
