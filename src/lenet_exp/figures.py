"""A run's test figures, its confusion matrix and most confident mistakes, drawn into PNG images.

Drawing one takes 0.1-0.15 s (matplotlib's text, then the PNG), about a quarter of a second a run: a
stacked group of 16 trials spent seconds on them one after another once training was over. A group
therefore draws them in worker processes (:class:`FigureWorkers`) while it records its trials' tests;
a single run draws its own in place. The inputs are numpy arrays: small and plain to send to a worker.
"""

from __future__ import annotations

import concurrent.futures
import io
import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import Optional

import numpy as np

from lenet_exp.errors import one_line
from lenet_exp.launch import stops_held

log = logging.getLogger(__name__)


def in_words(*names: np.ndarray) -> bool:
    """Whether the classes' names are words (FashionMNIST's garments), not digits: they need room of their own."""
    return max(len(name) for some in names for name in some) > 2


def matrix_figure(matrix: np.ndarray, names: np.ndarray, predicted_names: np.ndarray):
    """A confusion matrix (rows: true class) with its counts, its axes labelled with the classes' ``names``
    (the model's own, ``predicted_names``, along the predicted axis); empty cells blank, white on dark ones."""
    from matplotlib.figure import Figure

    n = matrix.shape[0]
    words = in_words(names, predicted_names)  # slanted, with room for them
    figure = Figure(figsize=(5, 5), dpi=100)
    margin = 0.21 if words else 0.1
    figure.subplots_adjust(left=margin + 0.02, right=0.97, bottom=margin, top=0.93)  # not tight_layout: it draws twice
    ax = figure.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    dark = 0.5 * float(matrix.max())  # above this the cell's blue is dark: white counts read there
    for true in range(n):
        for pred in range(n):
            count = int(matrix[true, pred])
            if count:  # empty cells stay blank
                ax.text(pred, true, count, ha="center", va="center", fontsize=7,
                        color="white" if count > dark else "black")
    ax.set(xlabel="predicted", ylabel="true", xticks=range(n), yticks=range(n), title="test confusion matrix")
    ax.set_xticklabels(predicted_names, rotation=45 if words else 0, ha="right" if words else "center", fontsize=8)
    ax.set_yticklabels(names, fontsize=8)
    return figure


def tiled(images: np.ndarray, columns: int, padding: int) -> np.ndarray:
    """Images [N, 1, S, S] in one picture: rows of ``columns``, ``padding`` pixels around each (of the
    images' minimum), as torchvision's make_grid lays them out."""
    n, _, side, _ = images.shape
    rows, columns = -(-n // columns), min(columns, n)
    cell = side + padding
    grid = np.full((rows * cell + padding, columns * cell + padding), images.min(), dtype=images.dtype)
    for i, image in enumerate(images):
        top, left = (i // columns) * cell + padding, (i % columns) * cell + padding
        grid[top:top + side, left:left + side] = image[0]
    return grid


def image_grid_figure(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, confidences: np.ndarray,
                      names: np.ndarray, predicted_names: np.ndarray, columns: int = 8):
    """The images tiled into one picture (one axes: far cheaper to draw than one per image), each
    captioned true→predicted (the classes' ``names``, the model's ``predicted_names``) and the confidence, in a
    band above the image (never over the digit); names longer than a digit's get a line of their own."""
    from matplotlib.figure import Figure

    side = images.shape[-1]
    band = side // 2  # the caption's band, above each image
    cell = side + band
    grid = tiled(images, columns, padding=band)
    width, title = min(columns, len(images)) * 1.1 + 1.5, 0.3  # inches (room for the title with few images)
    height = width * grid.shape[0] / grid.shape[1]  # the grid's own aspect: no empty margins
    figure = Figure(figsize=(width, height + title), dpi=100)
    figure.subplots_adjust(left=0, right=1, bottom=0, top=height / (height + title))
    ax = figure.add_subplot()
    ax.imshow(grid, cmap="gray")
    apart = "\n" if in_words(names, predicted_names) else " "
    for i, (true, pred, confidence) in enumerate(zip(labels, predicted, confidences)):
        ax.text((i % columns) * cell + band + side / 2, (i // columns) * cell + band - 1,
                f"{names[true]}→{predicted_names[pred]}{apart}{float(confidence):.0%}", ha="center", va="bottom",
                fontsize=7, color="yellow", linespacing=1.0)
    ax.set_title("most confident mistakes first (true→predicted, confidence)", fontsize=8)
    ax.axis("off")
    return figure


FIGURES = {"confusion_matrix": matrix_figure, "misclassified": image_grid_figure}


def draw(kind: str, *arrays: np.ndarray) -> tuple[bytes, int, int]:
    """The figure of that kind as an RGB PNG image: (its bytes, height, width)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(FIGURES[kind](*arrays))
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[:, :, :3]
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, format="PNG")
    return png.getvalue(), rgb.shape[0], rgb.shape[1]


def _in_a_worker(parent: int) -> None:
    # Ctrl-C and a closed terminal reach the whole process group: the group's process decides what stops, not
    # its workers (which took its handlers, raising in them); SIGTERM ends them, as the pool's own clean-up needs
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_end_when_orphaned, args=(parent,), daemon=True).start()


def _end_when_orphaned(parent: int) -> None:
    """A worker outlives its process killed outright (kill -9, the OOM killer), waiting for work for ever with
    the files it inherited open: the sweep folder's lock among them, which refused the sweep run again."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


class FigureWorkers:
    """Processes that draw figures while their caller goes on; with none (``workers`` 0, or no ``fork``
    on this system) each figure is drawn when its image is asked for. Fork them before the caller has threads or
    touches a GPU (a stacked group: before it loads its data); a worker that dies leaves its figures to
    be drawn in place."""

    def __init__(self, workers: int):
        self.pool: Optional[concurrent.futures.ProcessPoolExecutor] = None
        if workers > 0 and "fork" in multiprocessing.get_all_start_methods():
            import matplotlib.backends.backend_agg  # noqa: F401  once, before forking: each worker has it
            import matplotlib.figure  # noqa: F401

            try:
                self.pool = concurrent.futures.ProcessPoolExecutor(
                    workers, mp_context=multiprocessing.get_context("fork"), initializer=_in_a_worker,
                    initargs=(os.getpid(),))
                # A stop signal that lands as a worker is forked raises in an at-fork hook (logging's), where Python
                # drops the exception: the stop was lost, and a stacked group trained on. Held until the forks are
                # done (a fork pool starts every worker at the first submit), then raised here.
                with stops_held():
                    started = self.pool.submit(int)
                started.result(timeout=60)
            except (OSError, RuntimeError, concurrent.futures.TimeoutError,
                    concurrent.futures.process.BrokenProcessPool) as error:
                # no pipe, thread or process left (ulimit -n, -u): a pool half started waited for ever
                log.warning("No figure workers (%s): the figures are drawn here instead.", one_line(error))
                self.end_at_once()
            except BaseException:  # a stop: no worker may be left waiting for work
                self.end_at_once()
                raise

    def submit(self, kind: str, *arrays: np.ndarray) -> "PendingFigure":
        future = None
        if self.pool is not None:
            try:
                future = self.pool.submit(draw, kind, *arrays)
            except concurrent.futures.process.BrokenProcessPool:  # a worker died (killed, out of memory)
                log.warning("A figure worker died; the figures are drawn here instead.")
                self.close()
        return PendingFigure(kind, arrays, future)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def end_at_once(self) -> None:
        """Its workers ended without waiting for them: one that never got work would wait for ever."""
        if self.pool is not None:
            for process in list((getattr(self.pool, "_processes", None) or {}).values()):
                process.terminate()
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def __enter__(self) -> "FigureWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PendingFigure:
    """A figure being drawn: :meth:`png` waits for it (or, without a worker, draws it now)."""

    def __init__(self, kind: str, arrays: tuple, future: Optional[concurrent.futures.Future]):
        self.kind, self.arrays, self.future = kind, arrays, future

    def png(self) -> tuple[bytes, int, int]:
        if self.future is not None:
            try:
                return self.future.result()
            except concurrent.futures.process.BrokenProcessPool:
                log.warning("A figure worker died; drawing the %s here instead.", self.kind.replace("_", " "))
        return draw(self.kind, *self.arrays)


INLINE = FigureWorkers(0)  # a single run's: each figure drawn in place
