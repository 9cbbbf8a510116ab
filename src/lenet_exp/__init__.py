"""LeNet-5 experiments on MNIST and FashionMNIST, configured by Hydra and logged to TensorBoard."""

import time

__version__ = "0.1.0"
STARTED = time.perf_counter()  # when the program began (run.py imports this first): start-up time in metrics.json
