"""LeNet-5 experiments on MNIST and FashionMNIST, configured by Hydra and logged to TensorBoard."""

__version__ = "0.1.0"
