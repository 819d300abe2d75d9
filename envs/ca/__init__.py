"""Cellular-automata worlds: Life-like rules, Lenia, the NCA canvas."""
