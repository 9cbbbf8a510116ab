"""Models: plain ``nn.Module`` classes, one module per family, built from ``model._target_``.

A new model is one module here and one YAML in ``configs/model/`` naming its class in ``_target_``;
its constructor takes ``num_classes`` and ``image_size`` besides its own options.
"""

from __future__ import annotations

from torch import nn

from lenet_exp.errors import ConfigError


def build_model(model_cfg, num_classes: int, image_size: int) -> nn.Module:
    """The model ``model_cfg._target_`` names, for ``num_classes`` classes of ``image_size`` square inputs."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    options = {key: value for key, value in model_cfg.items() if key != "name"}  # name labels the option only
    try:
        return instantiate(options, num_classes=num_classes, image_size=image_size, _convert_="all")
    except InstantiationException as error:
        cause = error.__cause__ or error
        raise ConfigError("model._target_", model_cfg.get("_target_"),
                          f"a model class whose arguments match configs/model/ ({type(cause).__name__}: {cause})") from error
