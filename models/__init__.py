"""SFNO and stochastic SFNO, losses, training, checkpoints and the shallow-water world."""
