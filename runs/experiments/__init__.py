"""Experiments: one readable file each (card docstring, Config, main); none imports another."""
