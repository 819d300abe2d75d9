"""Consensus worlds: density classification (ring, grid) and flocks (Vicsek, informed minority)."""
