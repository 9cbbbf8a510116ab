"""The default sweeper (configs/config.yaml): Hydra's basic one, ending cleanly when a job's process dies."""
