"""Cores that combine or train many parts (MoE, ensembles, PSO, ES, AE)."""
