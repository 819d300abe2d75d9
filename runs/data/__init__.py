"""Data loaders for experiments and tests: vowels (Peterson-Barney), digits (MNIST, sklearn), NCA targets."""
