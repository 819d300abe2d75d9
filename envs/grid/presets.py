"""Named parameter sets of the grid worlds: plain data, importable without Numba
(the world registry reads them when ``colony list`` runs)."""

from __future__ import annotations

from typing import Any

CYCLE_PRESET: dict[str, Any] = {
    "map_size": 64,
    "predators": 100,
    "prey": 400,
    "min_attackers": 1,
    "prey_birth": 0.04,
    "predator_starvation": 0.05,
    "predator_energy": 1.0,
    "kill_energy": 1.0,
    "max_energy": 2.0,
    "predator_birth": 0.05,
    "birth_energy": 1.5,
    "predator_capacity": 1200,
    "prey_capacity": 3200,
}
"""Population dynamics under which predator and prey counts cycle, with ``random``
policies for both species: period about 240 steps, predators peaking about 57 steps
(a quarter period) after the prey, over 4,000 steps and every seed tried. Solo hunting
(``min_attackers=1``): with the default cooperative kill rule the predators mostly die
out within a few thousand steps (too few partners when they are scarce).
``runs/pursuit_cycles.py`` measures the period and the phase lag."""
