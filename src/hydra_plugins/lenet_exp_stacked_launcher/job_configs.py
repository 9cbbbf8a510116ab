"""The configs of a stacked sweep's jobs, each composed once, most of them without Hydra's composition.

Hydra composes every job of a sweep from scratch (its defaults list, every YAML file, the merges): about
0.1 s a job on a 2-core VM and 0.45 s on a GPU machine's host, which a stacked group of 16 or 32 trials
pays in turn before it trains. But a sweep's jobs mostly differ only in plain values (``optimizer.lr=1e-3``
against ``3e-3``), which Hydra sets on the composed config after composing it. Such a job's config is
derived from one composed before: a copy, with the job's value overrides applied by Hydra's own code,
its ``hydra.overrides.task`` and ``hydra.job.override_dirname``. Jobs whose config groups, Hydra
settings, additions or deletions differ are composed by Hydra, as are all jobs where Hydra's internals
are not those of 1.3 (then every job is).

The sweeper's check of a batch composes each job first (``validate_batch_is_legal``); the launcher takes
those very configs (:meth:`JobConfigs.job_config`) instead of composing them again.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Optional

from omegaconf import DictConfig, OmegaConf

# Hydra 1.3's own code (pyproject pins it): what it applies a value override with, and how it names a job's folder
from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType


def _is_value(override, repository) -> bool:
    """An override that only sets a plain value after composing (not a config group, a Hydra setting, an
    addition or deletion, a dict or list): one in which two jobs may differ and share the composition."""
    return (override.type == OverrideType.CHANGE and override.package is None and not override.is_hydra_override()
            and not override.is_sweep_override() and not isinstance(override.value(), (dict, list))
            and not repository.group_exists(override.key_or_group))


class JobConfigs:
    """The sweep's config loader, with its ``load_sweep_config`` deriving a job's config where it can and
    keeping each for :meth:`job_config`; everything else is the loader's own."""

    def __init__(self, loader) -> None:
        self.loader = loader
        self.kept: Dict[tuple, tuple] = {}  # the job's overrides -> (master config, its config)
        self.templates: Dict[tuple, tuple] = {}  # the overrides' form -> (master config, a pristine config)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list) -> DictConfig:
        config = self._compose(master_config, list(sweep_overrides))
        self.kept[tuple(sweep_overrides)] = (master_config, config)  # the sweeper does not keep its copy
        return config

    def job_config(self, master_config: DictConfig, sweep_overrides: list) -> DictConfig:
        """The job's config: the one composed to check it, or composed now."""
        master, config = self.kept.pop(tuple(sweep_overrides), (None, None))
        if master is master_config:
            return config
        return self._compose(master_config, list(sweep_overrides))

    def _compose(self, master: DictConfig, overrides: list) -> DictConfig:
        parsed = OverridesParser.create().parse_overrides(overrides)
        template = self.templates.get(self._form(parsed))
        if template is not None and template[0] is master:
            return self._derive(master, template[1], parsed)
        config = self.loader.load_sweep_config(master, overrides)
        form = self._form(parsed)  # now with the search path that composing set up (hydra.searchpath)
        if form is not None:
            self.templates[form] = (master, copy.deepcopy(config))  # the launcher writes into the one it gets
        return config

    def _form(self, parsed: list) -> Optional[tuple]:
        """What two jobs must share for one's config to derive from the other's: each override as written,
        except the keys of value overrides; None where that cannot tell (a key set twice)."""
        keys = [override.key_or_group for override in parsed]
        if len(set(keys)) < len(keys):  # the later one wins: one order of setting them, kept simple
            return None
        repository = self.loader.repository
        return tuple(("value", o.key_or_group) if _is_value(o, repository) else ("as written", o.input_line)
                     for o in parsed)

    def _derive(self, master: DictConfig, template: DictConfig, parsed: list) -> DictConfig:
        """The config Hydra would compose for the ``parsed`` overrides, from a composed one of the same form:
        what ``load_configuration`` sets per job, set again."""
        config = copy.deepcopy(template)
        ConfigLoaderImpl._apply_overrides_to_config([o for o in parsed if _is_value(o, self.loader.repository)], config)
        task = [o for o in parsed if not o.is_hydra_override()]
        config.hydra.overrides.task = [o.input_line for o in task]
        dirname = config.hydra.job.config.override_dirname
        config.hydra.job.override_dirname = get_overrides_dirname(
            overrides=task, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys)
        OmegaConf.copy_cache(from_config=master, to_config=config)  # as load_sweep_config: ${now:} as the sweep's
        return config

    def __getattr__(self, name: str) -> Any:
        if name == "loader":  # not set yet: an unpickled copy (a submitit job's launcher) is being filled in
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __getstate__(self) -> dict:
        return {"loader": self.loader, "kept": {}, "templates": {}}  # a submitit job composes nothing
