"""Errors caused by the user's input: reported as one short message, without a traceback."""

from __future__ import annotations

import os
from typing import Optional


# what --config-dir (and compose's config_dir) takes, said where it names no folder
GIVE_A_CONFIG_FOLDER = "Give the folder that holds your config files (its optimizer/, dataset/, … subfolders)."


class UserError(Exception):
    """Something the user can fix; the message says what was wrong and how to fix it."""


def full_errors_wanted() -> bool:
    """``HYDRA_FULL_ERROR=1``: every error as Hydra shows it, with its traceback, where it is no user's mistake."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def one_line(error: BaseException) -> str:
    """``Type: first line`` of an error that is no UserError, for a message of one line."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def root_cause(error: BaseException) -> str:
    """:func:`one_line` of the error at the bottom of ``error``'s chain of causes (Hydra wraps an import
    error in two more, of several lines each)."""
    while error.__cause__ is not None:
        error = error.__cause__
    return one_line(error)


def closest(word: str, choices: list[str]) -> Optional[str]:
    """The choice that a typo ``word`` most likely meant: the same but for case (MNIST for mnist), a close
    spelling, or one that holds it (alpha for elastic_alpha); None where none is near."""
    import difflib

    close = ([c for c in choices if c.lower() == word.lower()][:1]
             or difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
             or [c for c in choices if len(word) > 2 and word in c][:1])
    return close[0] if close else None


def shown(value: object) -> str:
    """A setting's value as the command line and YAML write it: null and true, not Python's None and True."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    return repr(value)


class ConfigError(UserError):
    def __init__(self, key: str, value: object, allowed: str, why: str = "", command: str = "python run.py",
                 fix: str = "", key_as_written: str = ""):
        why = f" ({why})" if why else ""
        self.key = key_as_written or key
        # the fix said for a command line (none where the caller gave its own), which from Python is compose()'s
        self.command_line_fix = "" if fix else (f"Fix it on the command line, e.g. `{command} {self.key}=...`, "
                                                f"or in configs/.")
        super().__init__(f"Invalid config value {key}={shown(value)}{why}: expected {allowed}. "
                         f"{fix or self.command_line_fix}")

    def __reduce__(self):  # its message as it is (a joblib worker's error is pickled), not made again
        return _config_error, (str(self), self.key, self.command_line_fix)

    def for_python(self) -> "ConfigError":
        """The same error as train() says it: its fix is another compose(), not another command line."""
        if self.command_line_fix and self.args:
            self.args = (str(self).replace(self.command_line_fix, f"Compose it with another value, e.g. "
                                                                  f"compose('{self.key}=...')."),)
            self.command_line_fix = ""
        return self

    def for_a_sweep(self) -> "ConfigError":
        """The same error as a sweep's job says it: fixed on the sweep's command line, ``python run.py -m …``."""
        swept = self.command_line_fix.replace("`python run.py ", "`python run.py -m ", 1)
        if self.command_line_fix and self.args and "`python run.py -m " not in self.command_line_fix:
            self.args = (str(self).replace(self.command_line_fix, swept),)
            self.command_line_fix = swept
        return self


def _config_error(message: str, key: str, command_line_fix: str) -> ConfigError:
    error = ConfigError.__new__(ConfigError)
    error.args, error.key, error.command_line_fix = (message,), key, command_line_fix
    return error


class FolderInUse(UserError):
    """A run folder that another process holds: this job writes nothing into it."""


class NotThisRunsFolder(UserError):
    """A folder of another run's checkpoints without its record: this job's record would make it this run's."""


class DataError(UserError):
    """Missing, unreadable or inconsistent data files."""


class CheckpointError(UserError):
    """A checkpoint that is missing, corrupted or written for another model."""


class DeviceError(UserError):
    """The requested device is not available."""
