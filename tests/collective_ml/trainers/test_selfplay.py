"""The self-play opponent pool: PFSP weights, scripted opponents, snapshots, state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colonylab.collective_ml.trainers.selfplay import SELF, OpponentPool
from colonylab.runs.common.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint


def _weights(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((2, 2), value), "b": torch.zeros(2)}


def _pool(**kw) -> OpponentPool:
    pool = OpponentPool(seed=0, **kw)
    pool.add_scripted("random", lambda obs: "random")
    pool.add_scripted("greedy", lambda obs: "greedy")
    pool.add_snapshot("iter-0", _weights(0.0))
    return pool


def test_hard_weighting_serves_the_opponents_the_learner_loses_to():
    pool = _pool()
    pool.record("random", wins=99, games=100)  # beaten
    pool.record("greedy", wins=10, games=100)  # still hard
    pool.record("iter-0", wins=50, games=100)
    rates = {row["name"]: row["win_rate"] for row in pool.table()}
    assert rates["random"] == pytest.approx(100 / 102)
    w = dict(zip(pool.names(), pool.weights(), strict=True))
    assert w["greedy"] > w["iter-0"] > w["random"]
    assert sum(w.values()) == pytest.approx(1.0)
    draws = [pool.sample().name for _ in range(2000)]
    counts = {n: draws.count(n) / len(draws) for n in pool.names()}
    for name in pool.names():  # the empirical frequencies follow the weights
        assert counts[name] == pytest.approx(w[name], abs=0.03)


def test_variance_and_uniform_weightings():
    pool = _pool(weighting="variance")
    pool.record("random", wins=100, games=100)
    pool.record("greedy", wins=0, games=100)
    w = dict(zip(pool.names(), pool.weights(), strict=True))
    assert w["iter-0"] > w["random"] and w["iter-0"] > w["greedy"]  # the even match
    uniform = _pool(weighting="uniform")
    uniform.record("random", wins=100, games=100)
    np.testing.assert_allclose(uniform.weights(), [1 / 3] * 3)


def test_draws_count_half_and_self_play_draws_the_learner():
    pool = _pool()
    pool.record("greedy", draws=10, games=10)
    assert pool.win_rate("greedy") == pytest.approx(0.5)
    always_self = _pool(self_play=1.0)
    opponent = always_self.sample()
    assert opponent.name == SELF and opponent.kind == SELF
    always_self.record(SELF, wins=1, games=1)  # ignored
    assert OpponentPool().sample().name == SELF  # an empty pool: the learner itself


def test_scripted_opponents_come_back_callable_and_snapshots_frozen():
    pool = _pool()
    live = _weights(1.0)
    pool.add_snapshot("iter-1", live)
    live["w"] += 5.0  # the learner keeps training: the snapshot must not change
    snap = pool.get("iter-1")
    assert snap.kind == "snapshot" and torch.equal(snap.params["w"], torch.ones(2, 2))
    greedy = pool.get("greedy")
    assert greedy.kind == "scripted" and greedy.act(None) == "greedy" and greedy.params is None


def test_only_the_newest_snapshots_are_kept():
    pool = _pool(max_snapshots=2)
    for i in range(1, 4):
        pool.add_snapshot(f"iter-{i}", _weights(float(i)))
    assert pool.snapshots() == ["iter-2", "iter-3"]
    assert pool.names() == ["random", "greedy", "iter-2", "iter-3"]  # scripted stay


def test_seeded_pools_repeat_their_draws_and_state_round_trips(tmp_path):
    a, b = _pool(), _pool()
    assert [a.sample().name for _ in range(30)] == [b.sample().name for _ in range(30)]
    a.record("greedy", wins=3, games=10)
    path = save_checkpoint(
        tmp_path / "pool.pt", make_checkpoint("pool-test", trainer={"pool": a.state_dict()})
    )
    state = load_checkpoint(path, "pool-test")["trainer"]["pool"]  # weights_only=True
    restored = OpponentPool(seed=5)
    with pytest.raises(ValueError, match=r"scripted opponents \['random', 'greedy'\]"):
        restored.load_state_dict(state)
    restored.add_scripted("random", lambda obs: "random")
    restored.add_scripted("greedy", lambda obs: "greedy")
    restored.load_state_dict(state)
    assert restored.table() == a.table()
    assert [restored.sample().name for _ in range(30)] == [a.sample().name for _ in range(30)]
    assert torch.equal(restored.get("iter-0").params["w"], a.get("iter-0").params["w"])


def test_bad_input_is_refused_in_one_line():
    pool = _pool()
    with pytest.raises(ValueError, match="already holds an opponent named 'greedy'"):
        pool.add_scripted("greedy", print)
    with pytest.raises(ValueError, match="other than 'self'"):
        pool.add_snapshot(SELF, _weights(0.0))
    with pytest.raises(ValueError, match="no opponent named 'nobody'"):
        pool.record("nobody", wins=1)
    with pytest.raises(ValueError, match="exceed games"):
        pool.record("greedy", wins=3, games=2)
    with pytest.raises(ValueError, match="weighting must be one of"):
        OpponentPool(weighting="elo")
    with pytest.raises(ValueError, match="self_play"):
        OpponentPool(self_play=1.5)
