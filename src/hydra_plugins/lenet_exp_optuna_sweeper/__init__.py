"""``sweep=optuna``'s sweeper: hydra-optuna-sweeper's, with a clean end after a stop or a study without results."""
