"""The command line as Hydra's argument parser reads it: its flags, each with its value, and its overrides."""

from __future__ import annotations

import argparse
from typing import Optional

import hydra._internal.utils as hydra_utils


def hydra_flags(arguments: list[str]) -> Optional[argparse.Namespace]:
    """The command line's flags as Hydra's own argument parser reads them (``-cjob``, ``--pack=seed`` too), or None
    where it cannot (Hydra says what is wrong with them)."""
    parser = hydra_utils.get_args_parser()
    parser.exit_on_error = False
    try:
        return parser.parse_known_args(arguments)[0]
    except argparse.ArgumentError:
        return None


def flags_and_overrides(arguments: list[str]) -> tuple[list[str], list[str]]:
    """The command line's flags, each with its value, and its overrides, as Hydra's parser tells them apart:
    a command built of them puts each kind together (argparse refuses overrides on both sides of a flag)."""
    actions = hydra_utils.get_args_parser()._option_string_actions
    flags, overrides, index = [], [], 0
    while index < len(arguments):
        argument, index = arguments[index], index + 1
        if not argument.startswith("-"):
            overrides.append(argument)
            continue
        flags.append(argument)
        action = flag_action(argument, actions)
        takes_one = action is not None and (action.nargs is None or action.nargs == "?")
        maybe = action is not None and action.nargs == "?"  # --info's: where it is no flag, and no override (argparse
        if takes_one and index < len(arguments) and not (maybe and (arguments[index].startswith("-")  # refused the
                                                                    or "=" in arguments[index])):  # `--info seed=1`)
            flags.append(arguments[index])
            index += 1
    return flags, overrides


def flag_action(argument: str, actions: dict) -> Optional[argparse.Action]:
    """The action of a flag as argparse reads it: by its name, or by a long name's abbreviation that is no other's
    (``--pack``); None where the value is attached (``--cfg=job``, ``-cjob``)."""
    if argument in actions:
        return actions[argument]
    abbreviated = {actions[name] for name in actions if name.startswith("--") and name.startswith(argument)}
    return abbreviated.pop() if len(abbreviated) == 1 else None


def flags_then_overrides(arguments: list[str]) -> list[str]:
    """The command line's flags, then its overrides, which argparse takes only together (an override after a flag
    among them was "unrecognized"); a flag whose value may be left out (--info) and was, after them, where it
    would take the first override as its value."""
    flags, overrides = flags_and_overrides(arguments)
    actions = hydra_utils.get_args_parser()._option_string_actions
    bare = [i for i, flag in enumerate(flags) if (action := flag_action(flag, actions)) and action.nargs == "?"
            and (i + 1 == len(flags) or flags[i + 1].startswith("-"))]
    return [flag for i, flag in enumerate(flags) if i not in bare] + overrides + [flags[i] for i in bare]


def config_name_given(arguments: list[str]) -> Optional[str]:
    """The value of ``--config-name NAME`` (``-cn``, ``--config-name=NAME``) among the arguments."""
    flags = hydra_flags(arguments)
    return flags.config_name if flags else None


def overrides_in(arguments: list[str]) -> list[str]:
    """The overrides among a command line's arguments: its flags and their values left out."""
    return flags_and_overrides(arguments)[1]
