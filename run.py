"""Entry point: `python run.py [group=option ...] [key=value ...]`, `python run.py -m ...` for sweeps.

Kept thin and free of torch imports so that `--help` and `--cfg job` answer at once.
"""

import signal
import sys

import hydra
from omegaconf import DictConfig

from lenet_exp.config import register_configs
from lenet_exp.launch import interrupted_status, mark_launcher
from lenet_exp.resume import expand_resume, quote_paths

register_configs()


@hydra.main(config_path="configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    from lenet_exp.app import run_task  # imports torch: only once a job really runs

    return run_task(cfg)


if __name__ == "__main__":
    sys.argv = quote_paths(expand_resume(sys.argv))
    mark_launcher()  # a sweep's worker processes stop when this process is gone
    try:
        main()
    except KeyboardInterrupt as interrupt:  # one that no job took: each job reports its own stop
        sys.exit(interrupted_status(getattr(interrupt, "signum", signal.SIGINT)))
