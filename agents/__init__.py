"""Agents: torch modules over batches -- one small shared rule, many copies."""
