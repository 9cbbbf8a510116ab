"""Data augmentation on whole batches, on the training device (never per sample on the CPU).

``affine`` draws a random rotation, zoom, shear, shift (and, with ``hflip``, a mirror) per image;
``elastic`` adds Simard et al.'s (2003) smoothed random displacement field on top. Both resample
with one ``grid_sample`` call. The
random numbers come from the run's generator, so a seeded run augments identically every time.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device) * (high - low) + low


def _affine_matrices(n: int, acfg, side: int, generator: torch.Generator) -> torch.Tensor:
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


def build_augment(acfg, background: float, generator: torch.Generator) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """A function batch -> augmented batch, or None when ``augment=none``.

    ``background`` is the normalised value of a black pixel: areas moved in from outside the image
    are filled with it, as they would be in the raw data.
    """
    if acfg.name == "none":
        return None

    def augment(x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        theta = _affine_matrices(n, acfg, w, generator).to(x.dtype)
        grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
        if acfg.name == "elastic" and acfg.elastic_alpha > 0:
            noise = torch.rand(n, 2, h, w, generator=generator, device=generator.device, dtype=x.dtype) * 2 - 1
            displacement = _smooth(noise, acfg.elastic_sigma) * (acfg.elastic_alpha * 2 / w)
            grid = grid + displacement.permute(0, 2, 3, 1)
        moved = F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return moved + background

    return augment
