"""Batched, seeded augmentation on the training device."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from lenet_exp.augment import build_augment

BACKGROUND = -0.4242


def augment_cfg(**changes):
    base = dict(name="affine", hflip=False, degrees=0.0, translate=0.0, scale=[1.0, 1.0], shear=0.0,
                elastic_alpha=0.0, elastic_sigma=4.0, erase_p=0.0, erase_area=[0.02, 0.4], erase_ratio=[0.3, 3.3])
    return OmegaConf.create({**base, **changes})


def batch(n=16, seed=0):
    return torch.randn(n, 1, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_none_means_no_function():
    assert build_augment(augment_cfg(name="none"), BACKGROUND, torch.Generator()) is None


def test_zero_ranges_leave_images_unchanged():
    x = batch()
    out = build_augment(augment_cfg(), BACKGROUND, torch.Generator().manual_seed(0))(x)
    assert torch.allclose(out, x, atol=1e-5)


@pytest.mark.parametrize("name,extra", [("affine", {}), ("elastic", {"elastic_alpha": 2.0})])
def test_same_seed_same_augmentation_and_each_image_differs(name, extra):
    cfg = augment_cfg(name=name, degrees=10.0, translate=0.1, scale=[0.9, 1.1], shear=10.0, **extra)
    x = batch()
    first = build_augment(cfg, BACKGROUND, torch.Generator().manual_seed(1))(x)
    again = build_augment(cfg, BACKGROUND, torch.Generator().manual_seed(1))(x)
    other = build_augment(cfg, BACKGROUND, torch.Generator().manual_seed(2))(x)
    assert first.shape == x.shape and first.dtype == x.dtype
    assert torch.equal(first, again) and not torch.allclose(first, other)
    assert not torch.allclose(first, x, atol=1e-3)


def test_shifted_in_area_is_background():
    x = torch.full((64, 1, 32, 32), 2.0)
    out = build_augment(augment_cfg(translate=0.25), BACKGROUND, torch.Generator().manual_seed(0))(x)
    border = torch.cat([out[..., 0, :], out[..., -1, :], out[..., :, 0], out[..., :, -1]], -1)
    assert border.min() == pytest.approx(BACKGROUND, abs=1e-5)  # some shifted edge shows the black border
    assert out.max() == pytest.approx(2.0, abs=1e-5)  # and the content itself is kept


def test_hflip_mirrors_about_half_of_the_images():
    x = batch(n=200)
    out = build_augment(augment_cfg(hflip=True), BACKGROUND, torch.Generator().manual_seed(0))(x)
    same = [torch.allclose(o, i, atol=1e-5) for o, i in zip(out, x)]
    mirrored = [torch.allclose(o, i.flip(-1), atol=1e-5) for o, i in zip(out, x)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 60 < sum(mirrored) < 140


def test_random_erasing_fills_one_rectangle_of_some_images_with_noise():
    x = torch.full((400, 1, 32, 32), 2.0)
    cfg = augment_cfg(erase_p=0.5, erase_area=[0.1, 0.2])
    out = build_augment(cfg, BACKGROUND, torch.Generator().manual_seed(0), pixel_scale=3.0)(x)
    changed = out != 2.0
    erased = changed.flatten(1).any(1)
    assert 150 < int(erased.sum()) < 250  # about half of the images
    for image in changed[erased][:50, 0]:  # each erased area is one axis-aligned rectangle of 10-20 % of the image
        rows, cols = image.any(1).nonzero().flatten(), image.any(0).nonzero().flatten()
        box = image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all() and 0.08 * 1024 <= int(image.sum()) <= 0.22 * 1024
    noise = out[changed]
    assert BACKGROUND <= noise.min() and noise.max() <= BACKGROUND + 3.0 and noise.std() > 0.5
