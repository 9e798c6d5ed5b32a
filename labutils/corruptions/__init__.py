"""Sign-MNIST-C, the corruption benchmark: :mod:`.suite`."""
