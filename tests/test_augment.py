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


def test_test_time_views_mirror_and_shift_with_background_fill():
    from lenet_exp.augment import test_time_views

    x = batch(n=2)
    views = test_time_views(hflip=True, shift=2, background=BACKGROUND)
    assert len(views) == 6 and torch.equal(views[0](x), x) and torch.equal(views[1](x), x.flip(-1))
    down = views[2](x)  # moved down by 2 rows: the top rows show the background
    assert torch.equal(down[..., 2:, :], x[..., :-2, :]) and (down[..., :2, :] == BACKGROUND).all()
    left = views[5](x)  # moved left by 2 columns
    assert torch.equal(left[..., :, :-2], x[..., :, 2:]) and (left[..., :, -2:] == BACKGROUND).all()
    assert len(test_time_views(hflip=False, shift=0, background=BACKGROUND)) == 1


def test_evaluation_averages_probabilities_over_the_views():
    from lenet_exp.data import Split
    from lenet_exp.engine import evaluate

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32, 10))
    split = Split(batch(n=50), torch.randint(0, 10, (50,)))
    plain = evaluate(model, split, 20)
    twice = evaluate(model, split, 20, views=[lambda x: x, lambda x: x])  # the same view twice: same answer
    assert twice.acc == plain.acc and twice.loss == pytest.approx(plain.loss, rel=1e-5)
    mirrored = evaluate(model, split, 20, views=[lambda x: x, lambda x: x.flip(-1)])
    with torch.no_grad():
        probs = (model(split.images).softmax(1) + model(split.images.flip(-1)).softmax(1)) / 2
    assert torch.equal(mirrored.predictions, probs.argmax(1))
    assert mirrored.loss == pytest.approx(torch.nn.functional.nll_loss(probs.log(), split.labels).item(), rel=1e-5)
