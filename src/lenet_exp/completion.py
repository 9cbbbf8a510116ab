"""Shell completion (``eval "$(python run.py -sc install=bash)"``) of run.py's own words, which Hydra's completer,
knowing only the config, left out: ``resume=``, the paths that ``resume=``, ``ckpt=``, ``image=`` and
``dataset.root=`` take, and the options of the line's own ``--config-dir``."""

from __future__ import annotations

import os
from typing import Callable, Optional

from lenet_exp.resume import PREFIX as RESUME

PATH_KEYS = (RESUME, "ckpt=", "image=", "dataset.root=")  # whose value is a path: completed as one


def complete_our_own_words() -> None:
    """Wrap Hydra's completer (each shell's plugin asks its ``_query``)."""
    from hydra.plugins.completion_plugin import CompletionPlugin

    if not getattr(CompletionPlugin._query, "ours", False):
        CompletionPlugin._query = with_our_own_words(CompletionPlugin._query)


def with_our_own_words(query: Callable) -> Callable:
    def completed(self, config_name: Optional[str], line: str) -> list[str]:
        new_word = not line or line[-1] == " "
        words = line.split()
        word = "" if new_word or not words else words[-1]
        # resume= is no key of the config: Hydra composed nothing with it, and so completed nothing
        before = [w for w in (words if new_word else words[:-1]) if not w.startswith(RESUME)]
        key = next((key for key in PATH_KEYS if word.startswith(key)), None)
        if key:
            return [key + path for path in paths_from(word[len(key):])]
        loader = self.config_loader
        self.config_loader = with_the_lines_config_dir(loader, before)
        try:
            offered = query(self, config_name, " ".join(before) + " " if new_word else " ".join([*before, word]))
            if "=" in word:
                offered = sorted({*offered, *values_to_choose(self.config_loader, config_name, before, word)})
        finally:
            self.config_loader = loader
        return sorted([*offered, RESUME]) if RESUME.startswith(word) and word != RESUME else offered
    completed.ours = True
    return completed


def with_the_lines_config_dir(loader, words: list[str]):
    """The config loader that the command being typed composes with: its ``--config-dir mine`` adds a folder to the
    search path (``optimizer=`` then offers mine's options), which the completing command itself was not given."""
    import contextlib
    import copy
    import io

    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import get_args
    from hydra.core.config_search_path import SearchPathQuery

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            folder = get_args(words).config_dir
    except SystemExit:  # flags argparse refuses (its usage said by Hydra's completer alone)
        return loader
    if not folder or not os.path.isdir(os.path.expanduser(folder)):
        return loader
    search_path = copy.deepcopy(loader.config_search_path)
    search_path.prepend("command-line", f"file://{os.path.abspath(os.path.expanduser(folder))}",
                        anchor=SearchPathQuery(provider="schema"))  # (which Hydra requires to come last)
    return ConfigLoaderImpl(config_search_path=search_path)


def values_to_choose(loader, config_name: Optional[str], before: list[str], word: str) -> list[str]:
    """``task=``: each value of a setting of a few (its enum's members, or true and false), where Hydra offers
    the value it has now alone (task=train)."""
    from hydra._internal.utils import get_args
    from hydra.types import RunMode
    from omegaconf import BooleanNode, EnumNode, OmegaConf

    key, _, typed = word.partition("=")
    parent, _, name = key.rpartition(".")
    parsed = get_args(before)  # (a sweep's values compose only as one: `-m seed=1,2 task=`)
    try:
        config = loader.load_configuration(config_name=config_name, overrides=parsed.overrides,
                                           run_mode=RunMode.MULTIRUN if parsed.multirun else RunMode.RUN)
        node = (OmegaConf.select(config, parent) if parent else config)._get_node(name)
    except Exception:  # a config that does not compose, or no such key: nothing more to offer
        return []
    values = ([member.name for member in node.enum_type] if isinstance(node, EnumNode) else
              ["true", "false"] if isinstance(node, BooleanNode) else [])
    return [f"{key}={value}" for value in values if value.startswith(typed)]


def paths_from(typed: str) -> list[str]:
    """The files and folders (these with their ``/``) whose path begins with ``typed``."""
    folder, start = os.path.split(typed)
    there = os.path.expanduser(folder) or "."
    try:
        names = sorted(os.listdir(there))
    except OSError:
        return []
    return [os.path.join(folder, name) + ("/" if os.path.isdir(os.path.join(there, name)) else "")
            for name in names if name.startswith(start)]
