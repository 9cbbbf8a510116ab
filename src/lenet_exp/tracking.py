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
    ax = figure.add_subplot()
    ax.imshow(matrix.numpy(), cmap="Blues")
    for true in range(n):
        for pred in range(n):
            ax.text(pred, true, int(matrix[true, pred]), ha="center", va="center", fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", xticks=range(n), yticks=range(n), title="test confusion matrix")
    figure.tight_layout()
    return figure


def _image_grid_figure(images: torch.Tensor, labels: torch.Tensor, predicted: torch.Tensor):
    from matplotlib.figure import Figure

    columns = 8
    rows = (len(images) + columns - 1) // columns
    figure = Figure(figsize=(columns * 1.1, rows * 1.3), dpi=100)
    for i, (image, true, pred) in enumerate(zip(images, labels, predicted)):
        ax = figure.add_subplot(rows, columns, i + 1)
        ax.imshow(image[0].numpy(), cmap="gray")
        ax.set_title(f"{int(true)}→{int(pred)}", fontsize=8)
        ax.axis("off")
    figure.suptitle("misclassified test images (true→predicted)", fontsize=9)
    figure.tight_layout()
    return figure
