"""Stacked trials: N compatible trials of a sweep trained as one batched model, in one process.

A LeNet-5 step at batch 64 is a few dozen tiny kernels; N trials stacked into the same kernels cost
little more than one on a GPU. The layout (chosen by ``benchmarks/stack_layouts.py``) is *grouped
layers*: convolutions with ``groups=N``, BatchNorm over the N trials' channels (per-channel statistics
are per-trial statistics), linear layers as batched matrix products. The standard kernels run, CUDA
graphs capture them, and the fused CPU kernel applies (its channels_last variant: a group trains in
that layout on the CPU, where its first layer also runs forward as a depthwise convolution).

* ``model``: the grouped network, and the copy of a trial's weights in and out of it;
* ``optim``: Adam, AdamW and SGD, and an EMA, over the stacked parameters with per-trial hyperparameters;
* ``group``: a group's engine, trained by the loop of a single run (:func:`lenet_exp.loop.train_trials`);
  each trial keeps its own run directory, checkpoints, selection on val, divergence and status;
* ``grouping``: which jobs of a sweep can share a step (no torch import: the launcher decides early).
"""
