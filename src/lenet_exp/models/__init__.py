"""Models: plain ``nn.Module`` classes, one module per family, built from ``model._target_``.

A new model is one module here and one YAML in ``configs/model/`` naming its class in ``_target_``;
its constructor takes ``num_classes`` and ``image_size`` besides its own options.
"""

from __future__ import annotations

import torch
from torch import nn

from lenet_exp.errors import UserError, root_cause
from lenet_exp.targets import located_class, options_refused, plain_options
from lenet_exp.validation import model_without_class


def build_model(model_cfg, num_classes: int, image_size: int, shapes_only: bool = False) -> nn.Module:
    """The model ``model_cfg._target_`` names, for ``num_classes`` classes of ``image_size`` square inputs;
    ``shapes_only``: on the meta device, nothing allocated (to check a size first), unless its class reads a
    tensor's value as it builds (a meta tensor has none)."""
    if not model_cfg.get("_target_"):
        raise model_without_class()
    expected = "a model class whose arguments match configs/model/"
    model_class = located_class("model._target_", model_cfg._target_, nn.Module, expected)
    options = plain_options(model_cfg, "model", "name")  # name labels the option only
    if shapes_only:
        try:
            with torch.device("meta"):
                return model_class(**options, num_classes=num_classes, image_size=image_size)
        except Exception:  # built for real below: as it fails there too, or not (it read a value)
            pass
    try:
        return model_class(**options, num_classes=num_classes, image_size=image_size)
    except (TypeError, ValueError, KeyError) as error:  # an option it does not take, or a value it cannot
        raise options_refused("model", model_cfg._target_, options, error) from error
    except Exception as error:  # a class of one's own may raise anything as it builds
        raise UserError(f"{model_cfg._target_} raised {root_cause(error)} as it was built (with "
                        f"num_classes={num_classes}, image_size={image_size} and its options {options}). Fix the "
                        f"class, or its settings (model.*).") from error
