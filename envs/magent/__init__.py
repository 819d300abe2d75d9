"""MAgent2's six worlds on MAgent2's own rules (battle_v4, battlefield_v5, combined_arms_v6,
adversarial_pursuit_v4, tiger_deer_v4, gather_v5), as PettingZoo modules over one Numba engine."""
