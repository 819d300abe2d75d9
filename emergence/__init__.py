"""Emergence: metrics of what emerges, recorders, plots and videos."""
