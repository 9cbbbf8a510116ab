"""The default sweeper (configs/config.yaml): Hydra's basic one, ending with its summary when a job's process dies."""
