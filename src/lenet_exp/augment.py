"""Data augmentation on whole batches, on the training device (never per sample on the CPU).

``affine`` draws a random rotation, zoom, shear, shift (and, with ``hflip``, a mirror) per image;
``elastic`` adds Simard et al.'s (2003) smoothed random displacement field on top. Both resample
with one ``grid_sample`` call, then, with ``erase_p``, random erasing (Zhong et al. 2017) fills a random
rectangle of some images with noise. The random numbers come from the run's generator, so a seeded
run augments identically every time; nothing is read back to the host, so a CUDA graph can hold it.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device) * (high - low) + low


def _affine_matrices(n: int, acfg, generator: torch.Generator) -> torch.Tensor:
    """[n, 2, 3] matrices in affine_grid's normalised coordinates (output -> input sampling)."""
    angle = _uniform(n, -acfg.degrees, acfg.degrees, generator) * (math.pi / 180)
    shear = _uniform(n, -acfg.shear, acfg.shear, generator) * (math.pi / 180)
    scale = _uniform(n, acfg.scale[0], acfg.scale[1], generator)
    shift = _uniform(2 * n, -acfg.translate, acfg.translate, generator).view(n, 2) * 2  # [-1, 1] spans the side
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    # rotation @ shear, divided by scale: sampling the input at 1/scale zooms the output by scale
    matrix = torch.stack([
        torch.stack([cos, cos * tan - sin], 1),
        torch.stack([sin, sin * tan + cos], 1),
    ], 1) / scale.view(n, 1, 1)
    if acfg.hflip:  # negate the x input coordinate of a random half
        mirror = torch.rand(n, generator=generator, device=generator.device) < 0.5
        matrix[:, :, 0] *= torch.where(mirror, -1.0, 1.0).unsqueeze(1)
    return torch.cat([matrix, shift.unsqueeze(2)], 2)


def _smooth(field: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of [n, 2, H, W] with a separable kernel."""
    radius = max(1, int(3 * sigma))
    x = torch.arange(-radius, radius + 1, device=field.device, dtype=field.dtype)
    kernel = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    kernel = (kernel / kernel.sum()).repeat(2, 1, 1)  # [2, 1, K]: one filter per channel (dx, dy)
    field = F.conv2d(field, kernel.unsqueeze(3), padding=(radius, 0), groups=2)  # along the height
    return F.conv2d(field, kernel.unsqueeze(2), padding=(0, radius), groups=2)  # along the width


def _erase(x: torch.Tensor, acfg, background: float, pixel_scale: float, generator: torch.Generator) -> torch.Tensor:
    """Random erasing: in each image with probability ``erase_p``, a rectangle of random area and
    aspect ratio becomes uniform noise over the raw pixel range."""
    n, _, h, w = x.shape
    area = _uniform(n, acfg.erase_area[0], acfg.erase_area[1], generator) * (h * w)
    ratio = _uniform(n, math.log(acfg.erase_ratio[0]), math.log(acfg.erase_ratio[1]), generator).exp()
    height, width = (area * ratio).sqrt().clamp(max=h), (area / ratio).sqrt().clamp(max=w)
    top, left = _uniform(n, 0, 1, generator) * (h - height), _uniform(n, 0, 1, generator) * (w - width)
    erased = _uniform(n, 0, 1, generator) < acfg.erase_p
    rows = torch.arange(h, device=x.device, dtype=x.dtype)
    cols = torch.arange(w, device=x.device, dtype=x.dtype)
    in_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])  # [n, h]
    in_cols = (cols >= left[:, None]) & (cols < (left + width)[:, None])  # [n, w]
    mask = (in_rows[:, :, None] & in_cols[:, None, :] & erased[:, None, None]).unsqueeze(1)
    noise = background + torch.rand(x.shape, generator=generator, device=generator.device, dtype=x.dtype) * pixel_scale
    return torch.where(mask, noise, x)


def build_augment(acfg, background: float, generator: torch.Generator,
                  pixel_scale: float = 1.0) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """A function batch -> augmented batch, or None when ``augment=none``.

    ``background`` is the normalised value of a black pixel: areas moved in from outside the image
    are filled with it, as they would be in the raw data. ``pixel_scale`` is the normalised size of
    the raw pixel range (1 / std), for the noise of random erasing.
    """
    if acfg.name == "none":
        return None

    def augment(x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        theta = _affine_matrices(n, acfg, generator).to(x.dtype)
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        if acfg.name == "elastic" and acfg.elastic_alpha > 0:
            noise = torch.rand(n, 2, h, w, generator=generator, device=generator.device, dtype=x.dtype) * 2 - 1
            displacement = _smooth(noise, acfg.elastic_sigma) * (acfg.elastic_alpha * 2 / w)
            grid = grid + displacement.permute(0, 2, 3, 1)
        moved = F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        moved = moved + background
        if acfg.erase_p > 0:
            moved = _erase(moved, acfg, background, pixel_scale, generator)
        return moved

    return augment


def _shifted(x: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """``x`` moved by (dy, dx) pixels; the uncovered border shows ``fill``."""
    out = torch.full_like(x, fill)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = x[..., max(-dy, 0):h + min(-dy, 0),
                                                                      max(-dx, 0):w + min(-dx, 0)]
    return out


def black(mean: float, std: float) -> float:
    """A black pixel as the data is normalised (with ``mean`` and ``std``): what a shift moves in at the border."""
    return -mean / std


def test_time_views(hflip: bool, shift: int, background: float) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """Test-time augmentation: the image itself, its mirror image (``hflip``) and its four shifts by
    ``shift`` pixels; evaluation averages the model's class probabilities over these views."""
    views: list[Callable[[torch.Tensor], torch.Tensor]] = [_itself]  # functions of the module: they pickle
    if hflip:
        views.append(_mirrored)
    if shift:
        views += [functools.partial(_shifted, dy=dy, dx=dx, fill=background)
                  for dy, dx in ((shift, 0), (-shift, 0), (0, shift), (0, -shift))]
    return views


def _itself(x: torch.Tensor) -> torch.Tensor:
    return x


def _mirrored(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)
