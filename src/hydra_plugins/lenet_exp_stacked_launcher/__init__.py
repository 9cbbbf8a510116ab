"""``hydra/launcher=stacked``: lenet_exp's Hydra launcher that trains a sweep's compatible jobs together."""
