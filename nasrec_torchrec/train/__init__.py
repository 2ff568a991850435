"""Training on TorchRec: process groups, optimizers and LR schedule, metrics, checkpoints,
the trainer and its config (see each module)."""
