"""``python run.py resume=<run dir>``: run the same command again, into the same directory.

The run directory's ``.hydra/overrides.yaml`` holds the overrides the run was started with. Replaying
them with ``hydra.run.dir=<run dir>`` composes the same config, and the runner then continues from
``checkpoints/last.pt``. Overrides given next to ``resume=`` replace saved ones of the same key.
This happens before Hydra parses the command line, so it costs no torch import.
"""

from __future__ import annotations

import sys
from pathlib import Path

PREFIX = "resume="


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def expand_resume(argv: list[str]) -> list[str]:
    """argv with ``resume=DIR`` replaced by DIR's saved overrides and ``hydra.run.dir=DIR``."""
    given = [arg for arg in argv if arg.startswith(PREFIX)]
    if not given:
        return argv
    run_dir = Path(given[-1][len(PREFIX):]).expanduser()
    saved_file = run_dir / ".hydra" / "overrides.yaml"
    if not saved_file.is_file():
        sys.exit(f"Error: resume={run_dir} is not a run directory (no {saved_file}). "
                 f"Pass the directory of a run, e.g. resume=outputs/runs/<date>/<time>.")
    from omegaconf import OmegaConf

    rest = [arg for arg in argv if not arg.startswith(PREFIX)]
    explicit = {override_key(arg) for arg in rest if "=" in arg and not arg.startswith("-")}
    saved = [o for o in OmegaConf.load(saved_file) if override_key(o) not in explicit]
    return rest + saved + [f"hydra.run.dir='{run_dir}'"]
