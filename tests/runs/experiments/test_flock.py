"""``flock``: a tiny PGPE run and its files, the controller's shapes and its Vicsek prior,
eval rows, bad input, and the shipped controller against Couzin's model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colonylab.envs.consensus.flock import FlockWorld
from colonylab.runs.common.checkpoint import load_checkpoint
from colonylab.runs.experiments import flock
from colonylab.runs.experiments.flock import SHIPPED, Config

TINY = dict(n=20, flocks=2, steps=8, pop_size=4, generations=2, validate_every=1,
            eval_sizes=(20,), eval_runs=2)  # fmt: skip


def test_tiny_run_writes_a_loadable_checkpoint_and_eval_rows(tmp_path):
    cfg = Config(**TINY, out=str(tmp_path))
    flock.main(cfg)
    (run,) = (tmp_path / "flock").iterdir()
    path = run / "checkpoints" / "flock.pt"
    ckpt = load_checkpoint(path, "flock")
    assert ckpt["spec"] == {"type": "flock-mlp", "hidden": 16}
    assert ckpt["state_dict"]["params"].shape == (flock.num_params(16),)
    assert ckpt["provenance"]["command"].startswith("colony train flock ")
    rows = flock.evaluate(cfg, str(path))["rows"]
    assert [r["controller"] for r in rows] == ["couzin", "vicsek", "learned"]
    assert all(0 <= r["accuracy_to_target"] <= 1 and 0 <= r["order"] <= 1 for r in rows)


def test_zero_controller_is_vicsek_alignment():
    cfg = Config(**TINY)
    world = FlockWorld(flock.world_config(cfg, 20, 2))
    obs = world.reset(seed=0)
    got = flock.desired_headings(torch.zeros(1, flock.num_params(16)), 16, world, obs)
    mean = world.neighbour_mean_heading()
    diff = (got - mean + np.pi) % (2 * np.pi) - np.pi
    assert np.abs(diff).max() < 1e-5


def test_candidates_drive_their_own_flocks():
    cfg = Config(**TINY)
    world = FlockWorld(flock.world_config(cfg, 20, 4))
    obs = world.reset(seed=1)
    params = torch.zeros(2, flock.num_params(16))
    params[1, -3:-1] = torch.tensor([-5.0, 0.0])  # candidate 1 turns back
    got = flock.desired_headings(params, 16, world, obs)
    zero = flock.desired_headings(torch.zeros(1, flock.num_params(16)), 16, world, obs)
    assert np.allclose(got[:2], zero[:2]) and not np.allclose(got[2:], zero[2:])


def test_shipped_controller_beats_couzin_on_fresh_flocks():
    """A re-evaluation on 16 fresh flocks of 100 (its recorded rows use 32)."""
    assert SHIPPED.is_file()
    cfg = Config(eval_sizes=(100,), eval_runs=16, eval_seed=77)
    rows = {r["controller"]: r for r in flock.evaluate(cfg)["rows"]}
    assert rows["learned"]["accuracy_to_target"] > rows["couzin"]["accuracy_to_target"]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"pop_size": 5}, "--pop-size"),
        ({"n": 5}, "--n"),
        ({"informed": 1.5}, "--informed"),
        ({"eval_sizes": (10,)}, "--eval-sizes"),
    ],
)
def test_bad_config_is_one_line_value_error(kw, match):
    with pytest.raises(ValueError, match=match):
        Config(**kw)
