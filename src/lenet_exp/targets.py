"""The class a config's ``_target_`` names (a model, an optimizer), found and checked before it is called.

Not Hydra's ``instantiate``: that calls whatever a ``_target_`` names, a ``_target_`` nested in the
options too, and a checkpoint's config (``task=eval ckpt=…``) or a run folder's overrides (``resume=``)
is data. Only a class of the expected kind is called, with the options as plain values (a choice as its
string); finding it imports the module it names, as loading any model class by name does.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from lenet_exp.config import as_overridden, option_yaml, to_dict
from lenet_exp.errors import ConfigError, UserError, root_cause, shown


def located_class(key: str, target: Any, kind: type, expected: str) -> type:
    """The class ``target`` names, which must be a subclass of ``kind``; else a ConfigError of ``key``
    (``model._target_``) saying what was ``expected``."""
    from hydra._internal.utils import _locate  # hydra.utils.get_class would log its error, of 3 lines

    try:
        found = _locate(str(target))
    except (ImportError, ValueError) as error:  # no such module or attribute; a malformed path ("torch.optim.")
        module, _, name = str(target).rpartition(".")
        # a module that imports without the class: Hydra says "No module named 'mymodels.Net'; 'mymodels' is
        # not a package" (_locate has imported it already: its code runs no second time)
        try:
            missing = bool(module and name) and not hasattr(importlib.import_module(module), name)
        except Exception:  # it is not there, or fails as it imports: Hydra's error says why
            missing = False
        raise ConfigError(key, target, expected if missing else f"{expected} ({root_cause(error)})",
                          why=f"{module} has no {name}" if missing else "") from error
    if not (isinstance(found, type) and issubclass(found, kind)):
        raise ConfigError(key, target, expected, why=f"not a subclass of {kind.__name__}")
    return found


def plain_options(cfg: Any, group: str, *left_out: str) -> dict:
    """The settings of ``group``'s option as plain Python values (lists, strings for choices), without
    ``_target_`` and ``left_out``; a ConfigError where one of them holds a ``_target_`` of its own."""
    options = {key: value for key, value in to_dict(cfg).items() if key not in ("_target_", *left_out)}
    nested = next((key for key, value in options.items() if names_a_target(value)), None)
    if nested:  # what instantiate would have built first: here values are passed as they are
        raise ConfigError(f"{group}.{nested}", options[nested], "plain values (numbers, strings, lists): a "
                          "_target_ inside an option is not built")
    return options


def options_refused(group: str, target: Any, options: dict, error: Exception) -> UserError:
    """What to tell of ``target`` called with ``group``'s options and raising ``error``: an argument it does
    not take (named, not the class blamed for it), or a value it cannot use."""
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(error))
    if unexpected and unexpected.group(1) in options:
        name = unexpected.group(1)
        return UserError(f"{group}.{name}={shown(options[name])}: {target} takes no argument {name}. Leave it out "
                         f"of the command line (or of {option_yaml(group)}).")
    if unexpected:  # one that lenet_exp passes (a model's num_classes, image_size): the class is of another kind
        return ConfigError(f"{group}._target_", target, f"a class whose arguments match configs/{group}/ "
                           f"({root_cause(error)})")
    said = str(error).splitlines()[0].rstrip(".")
    # the option it names ("Invalid epsilon value: -1" is eps's; lr_decay's, not lr's, where it names lr_decay),
    # or else the one whose value it quotes
    named = max((key for key in options if key.rstrip("s").lower() in said.lower()), key=len, default=None) or next(
        (key for key, value in options.items() if re.search(rf"(?<![\w.-]){re.escape(str(value))}(?![\w.])", said)),
        next(iter(options), "lr"))
    # as the command line wrote it: +optimizer.eps where a plus added it (without, it is refused as no setting)
    return UserError(f"{target} refuses the {group} options {options}: {said}. Fix the value on the command line "
                     f"(e.g. {as_overridden(f'{group}.{named}')}=…) or in {option_yaml(group)}.")


def names_a_target(value: Any) -> bool:
    if isinstance(value, dict):
        return "_target_" in value or any(names_a_target(v) for v in value.values())
    return isinstance(value, list) and any(names_a_target(v) for v in value)
