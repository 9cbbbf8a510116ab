"""TensorBoard output of a run: scalars, hyperparameters (HParams tab) and images.

Everything goes into the run directory itself, so ``tensorboard --logdir <sweep dir>`` shows one run
per job with the same tags. Hyperparameters are written through torch's hparams protos at the start
(so a running or crashed job is listed too); their metric columns read the scalar tags below.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

METRIC_TAGS = ("val/acc", "val/loss", "test/acc", "test/loss", "train/acc", "train/loss")


class TensorBoardLog:
    def __init__(self, log_dir: str, hparams: Mapping[str, Any], first_step: int = 1):
        # purge_step drops events an interrupted run logged after its last checkpoint.
        self.writer = SummaryWriter(log_dir=log_dir, purge_step=first_step if first_step > 1 else None)
        experiment, session_start, self._session_end = hparams_summaries(
            dict(hparams), {tag: 0.0 for tag in METRIC_TAGS})
        self.writer.file_writer.add_summary(experiment)
        self.writer.file_writer.add_summary(session_start)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def confusion_matrix(self, labels: torch.Tensor, predicted: torch.Tensor, num_classes: int, step: int) -> None:
        # counted on the CPU: CUDA's bincount has no deterministic kernel (trainer.deterministic=true)
        counts = torch.bincount((labels * num_classes + predicted).cpu(), minlength=num_classes ** 2)
        matrix = counts.reshape(num_classes, num_classes)
        figure = _matrix_figure(matrix)
        self.writer.add_figure("test/confusion_matrix", figure, step)

    def misclassified(self, images: torch.Tensor, labels: torch.Tensor, predicted: torch.Tensor, step: int,
                      limit: int = 32) -> None:
        wrong = (labels != predicted).nonzero().flatten()[:limit].cpu()
        if len(wrong):
            figure = _image_grid_figure(images[wrong].float().cpu(), labels[wrong].cpu(), predicted[wrong].cpu())
            self.writer.add_figure("test/misclassified", figure, step)

    def session_end(self) -> None:
        """Mark the HParams session as finished successfully."""
        self.writer.file_writer.add_summary(self._session_end)

    def close(self) -> None:
        self.writer.close()


def _matrix_figure(matrix: torch.Tensor):
    from matplotlib.figure import Figure

    n = matrix.shape[0]
    figure = Figure(figsize=(5, 5), dpi=100)
    figure.subplots_adjust(left=0.12, right=0.97, bottom=0.1, top=0.93)  # not tight_layout: it draws twice
    ax = figure.add_subplot()
    ax.imshow(matrix.numpy(), cmap="Blues")
    for true in range(n):
        for pred in range(n):
            ax.text(pred, true, int(matrix[true, pred]), ha="center", va="center", fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", xticks=range(n), yticks=range(n), title="test confusion matrix")
    return figure


def _image_grid_figure(images: torch.Tensor, labels: torch.Tensor, predicted: torch.Tensor, columns: int = 8):
    """The images tiled into one picture (one axes: far cheaper to draw than one per image), each
    captioned true→predicted."""
    from matplotlib.figure import Figure
    from torchvision.utils import make_grid

    pad, side = 2, images.shape[-1]
    cell = side + pad
    grid = make_grid(images, nrow=columns, padding=pad, pad_value=float(images.min()))[0]
    rows = (len(images) + columns - 1) // columns
    figure = Figure(figsize=(columns * 1.1, rows * 1.25 + 0.3), dpi=100)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.3 / (rows * 1.25 + 0.3))
    ax = figure.add_subplot()
    ax.imshow(grid.numpy(), cmap="gray")
    for i, (true, pred) in enumerate(zip(labels, predicted)):
        ax.text((i % columns) * cell + pad + side / 2, (i // columns) * cell + pad + 1, f"{int(true)}→{int(pred)}",
                ha="center", va="top", fontsize=8, color="yellow")
    ax.set_title("misclassified test images (true→predicted)", fontsize=9)
    ax.axis("off")
    return figure
