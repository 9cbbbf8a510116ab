"""Batched, seeded augmentation on the training device."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from lenet_exp.augment import build_augment

BACKGROUND = -0.4242


def augment_cfg(**changes):
    base = dict(name="affine", hflip=False, degrees=0.0, translate=0.0, scale=[1.0, 1.0], shear=0.0,
                elastic_alpha=0.0, elastic_sigma=4.0)
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
