"""sensory-carracing: config checks, the CNN baseline, a tiny run that writes both
checkpoints and every row, the figure, and the shipped checkpoints re-evaluated."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from colonylab.agents.patch_cnn import PatchCNNPolicy
from colonylab.agents.sensory import AttentionGridPolicy, patchify, unpatchify
from colonylab.runs.common.checkpoint import load_checkpoint
from colonylab.runs.experiments import sensory_carracing as sc

pytestmark = pytest.mark.filterwarnings(
    "ignore:builtin type .* has no __module__ attribute:DeprecationWarning"  # Box2D's SWIG
)
box2d = pytest.mark.skipif(
    importlib.util.find_spec("Box2D") is None,
    reason="box2d is not installed (pip install box2d==2.3.10)",
)
skimage = pytest.mark.skipif(
    importlib.util.find_spec("skimage") is None,
    reason="the new backgrounds need scikit-image (pip install scikit-image)",
)

FRAMES = 200
"""Frames of the shipped checkpoint's re-evaluation."""
SHARE = 0.9
"""Its scores must reach this share of the teacher's on the same tracks (measured:
180.0 unshuffled, 181.7 shuffled, the teacher 167.7: 1.08)."""

TINY = dict(
    bc_iterations=1,
    cnn_iterations=1,
    bc_envs=2,
    bc_epochs=1,
    train_frames=8,
    eval_frames=8,
    eval_episodes=2,
    backgrounds=("coffee",),
    grid=2,
    key_dim=4,
    key_hidden=4,
    value_dim=4,
    value_hidden=4,
    grid_conv=(4, 4),
    grid_head_hidden=8,
    validate_episodes=1,
    attention_envs=2,
    attention_frames=8,
    cnn_conv=(4, 4),
    cnn_hidden=8,
    workers=0,
)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="train-frames"):
        sc.Config(train_frames=0)
    with pytest.raises(ValueError, match="--backgrounds: 'mars'"):
        sc.Config(backgrounds=("mars",))
    with pytest.raises(ValueError, match="--patch 5"):
        sc.Config(patch=5)
    with pytest.raises(ValueError, match="bc-lr"):
        sc.Config(bc_lr=0.0)
    with pytest.raises(ValueError, match="--key-dim 5 must be even"):
        sc.Config(key_dim=5)
    with pytest.raises(ValueError, match="teacher-noise"):
        sc.Config(teacher_noise=-1.0)
    with pytest.raises(ValueError, match="--attention must be"):
        sc.Config(attention="mlp")
    with pytest.raises(ValueError, match="--train-backgrounds must be"):
        sc.Config(train_backgrounds="photos")
    with pytest.raises(ValueError, match="procedural-share"):
        sc.Config(procedural_share=1.5)
    with pytest.raises(ValueError, match="--method consistency needs"):
        sc.Config(method="consistency")
    good = dict(method="consistency", agents="attention", init="x.pt")
    with pytest.raises(ValueError, match="--consistency-validation 'coffee' is a test"):
        sc.Config(**good, consistency_validation="coffee")
    with pytest.raises(ValueError, match="--consistency-validation 'mars'"):
        sc.Config(**good, consistency_validation="mars")
    with pytest.raises(ValueError, match="--consistency-images must be"):
        sc.Config(consistency_images="astronaut")
    with pytest.raises(ValueError, match="consistency-rounds"):
        sc.Config(consistency_rounds=0)
    with pytest.raises(ValueError, match="--filter-dashboard must be keep or paint"):
        sc.Config(filter_dashboard="hide")
    with pytest.raises(ValueError, match="filter-dark"):
        sc.Config(filter_dark=1.5)


@torch.no_grad()
def test_patch_cnn_shapes_and_scrambling() -> None:
    cnn = sc.build(sc.agent_spec(sc.Config(cnn_conv=(4, 4), cnn_hidden=8), "cnn"))
    assert isinstance(cnn, PatchCNNPolicy)
    obs = torch.rand(3, 144, 48, generator=torch.Generator().manual_seed(0))
    out = cnn(obs)
    assert out.shape == (3, 2) and float(out.abs().max()) <= 1.0
    assert cnn(obs[0]).shape == (2,)
    # the CNN sees the order of its patches (the AttentionNeuron does not)
    assert not torch.allclose(cnn(obs[:, torch.randperm(144)]), out)
    # ... and any other square patches of the same screen: the same picture
    recut = patchify(unpatchify(obs, 48, 48, 4), 8)
    assert torch.allclose(cnn(recut), out, atol=1e-6)
    for design in ("grid", "neuron"):
        attention = sc.build(sc.agent_spec(sc.Config(attention=design), "attention"))
        perm = torch.randperm(36)
        first = attention(recut)
        first = first[0] if isinstance(first, tuple) else first
        again = attention(recut[:, perm])
        again = again[0] if isinstance(again, tuple) else again
        assert torch.allclose(again, first, atol=1e-6)
    with pytest.raises(ValueError, match="expects"):
        cnn(torch.zeros(3, 100, 48))


@box2d
@skimage
def test_tiny_main_writes_checkpoints_and_rows(tmp_path) -> None:
    cfg = sc.Config(**TINY, out=str(tmp_path))
    summary = sc.main(cfg)
    ckpts = list(tmp_path.glob("sensory-carracing/*/checkpoints"))
    assert len(ckpts) == 1
    for kind in ("attention", "cnn"):
        ckpt = load_checkpoint(ckpts[0] / sc.checkpoint_name(kind), sc.EXPERIMENT)
        assert ckpt["provenance"]["command"].startswith("colony train sensory-carracing")
    rows = summary["rows"]
    assert len(rows) == 3 * len(sc.conditions(cfg))  # teacher, AttentionNeuron, CNN
    for row in rows:
        assert {"condition", "agent", "mean", "std", "episodes", "background"} <= set(row)
    agents = {r["agent"] for r in rows}
    assert agents == {sc.TEACHER, "AttentionNeuron", "CNN"}
    cnn_bg = next(r for r in rows if r["agent"] == "CNN" and r["background"] == "coffee")
    assert "unshuffled" in cnn_bg["note"]
    cnn_original = next(r for r in rows if r["agent"] == "CNN" and r["condition"] == "unshuffled")
    assert ("of_original" in cnn_bg) == (cnn_original["mean"] > 0)


@torch.no_grad()
def test_widen_keeps_the_function() -> None:
    small_cfg = sc.Config(**{**TINY, "key_hidden": 4, "value_hidden": 4})
    big_cfg = sc.Config(**{**TINY, "key_hidden": 12, "value_hidden": 9})
    small = sc.build(sc.agent_spec(small_cfg, "attention"))
    big = sc.build(sc.agent_spec(big_cfg, "attention"))
    big.load_state_dict(
        {k: v for k, v in small.state_dict().items() if not k.startswith(("key.", "value."))},
        strict=False,
    )
    assert sc._widen(small.key, big.key) and sc._widen(small.value, big.value)
    obs = torch.rand(3, 36, 192, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(big(obs), small(obs), atol=1e-6)
    assert not sc._widen(big.key, small.key)  # narrower: refused, untouched


def _train(cfg: sc.Config) -> tuple:
    """Run ``cfg`` (one stage); its checkpoint's path and contents."""
    sc.main(cfg)
    (path,) = Path(cfg.out).glob("sensory-carracing/*/checkpoints/*.pt")
    return path, load_checkpoint(path, sc.EXPERIMENT)


def _moved(state: dict, start: dict) -> set:
    """The names of the tensors of ``state`` that differ from ``start``'s."""
    return {k for k, v in state.items() if not torch.equal(v, start[k])}


def _tiny_attention(tmp_path):
    """A tiny trained AttentionNeuron checkpoint (the --init of the later stages)."""
    sc.main(sc.Config(**TINY, agents="attention", out=str(tmp_path)))
    (init,) = tmp_path.glob("sensory-carracing/*/checkpoints/sensory_carracing_attention.pt")
    return init


@box2d
@skimage
def test_consistency_stage_fits_the_green_twin(tmp_path) -> None:
    """--method consistency from a tiny trained AttentionNeuron: only its key and value
    networks move, the loss falls, and the checkpoint records the command."""
    init = _tiny_attention(tmp_path)
    cfg = sc.Config(
        **{**TINY, "validate_episodes": 0},  # no validation: the last round is kept
        agents="attention",
        method="consistency",
        init=str(init),
        consistency_rounds=2,
        consistency_steps=6,
        consistency_envs=2,
        bc_minibatch=8,
        out=str(tmp_path / "c"),
    )
    _, ckpt = _train(cfg)
    assert "--method consistency" in ckpt["provenance"]["command"]
    moved = _moved(ckpt["state_dict"], load_checkpoint(init, sc.EXPERIMENT)["state_dict"])
    assert moved and all(k.startswith(("key.", "value.")) for k in moved), moved
    history = sc.json.loads(next((tmp_path / "c").glob("*/*/history_attention.json")).read_text())
    assert [h["round"] for h in history] == [1, 2]


def test_filter_batch_targets_are_the_flat_green_twins() -> None:
    cfg = sc.Config()
    green = torch.full((2, 96, 96, 3), 60, dtype=torch.uint8)  # road grey
    grass = torch.zeros(2, 96, 96, 1, dtype=torch.bool)
    grass[:, :48] = True  # the top half is grass (every pooled pixel all grass or none)
    green[:, :48] = torch.tensor([100, 220, 100], dtype=torch.uint8)
    texture = torch.full((2, 96, 96, 3), 200, dtype=torch.uint8)
    swap = torch.tensor([True, False]).view(2, 1, 1, 1)
    given, wanted, share = sc.filter_batch(cfg, green, grass, texture, swap)
    assert given.shape == wanted.shape == (2, 36, 192) and share.shape == (2, 36, 64)
    top, bottom = slice(0, 18), slice(18, 36)  # row-major 6 x 6 patches
    assert torch.allclose(given[0, top], torch.full_like(given[0, top], 200 / 255))
    assert torch.allclose(given[1, top, 1::3], torch.full_like(given[1, top, 1::3], 220 / 255))
    flat = torch.tensor(sc.FLAT_GRASS, dtype=torch.float32) / 255
    assert torch.allclose(wanted[:, top].reshape(2, 18, 64, 3), flat.expand(2, 18, 64, 3))
    assert torch.equal(wanted[:, bottom], given[:, bottom])  # the road passes unchanged
    assert share[:, top].eq(1).all() and share[:, bottom].eq(0).all()


def test_filter_batch_can_paint_the_dashboard_black() -> None:
    """--filter-dashboard paint: the dashboard's pure black becomes flat green (so a black
    background is never one to keep); its bars and the playfield's black stay."""
    green = torch.full((1, 96, 96, 3), 60, dtype=torch.uint8)
    green[:, 84:] = 0  # the dashboard
    green[:, 88:90, 10:20] = torch.tensor([255, 255, 255], dtype=torch.uint8)  # a bar
    green[:, 10:12, 10:12] = 0  # a black wheel in the playfield
    grass = torch.zeros(1, 96, 96, 1, dtype=torch.bool)
    swap = torch.ones(1, 1, 1, 1, dtype=torch.bool)
    flat = torch.tensor(sc.FLAT_GRASS, dtype=torch.float32) / 255
    kept = sc.filter_batch(sc.Config(), green, grass, green, swap)
    assert torch.equal(kept[1], kept[0]) and kept[2].eq(0).all()
    given, wanted, share = sc.filter_batch(
        sc.Config(filter_dashboard="paint"), green, grass, green, swap
    )
    wanted = wanted.reshape(6, 6, 8, 8, 3).permute(0, 2, 1, 3, 4).reshape(48, 48, 3)
    share = share.reshape(6, 6, 8, 8).permute(0, 2, 1, 3).reshape(48, 48)
    assert torch.allclose(wanted[46:, 20:], flat.expand(2, 28, 3))  # black -> flat green
    assert torch.allclose(wanted[44, 5:10], torch.ones(5, 3))  # the bar stays
    assert torch.allclose(wanted[5, 5], torch.zeros(3))  # the wheel stays
    assert share[46:].eq(1).sum() > 0 and share[:42].eq(0).all()


def test_filter_backgrounds_darkens_a_share() -> None:
    pytest.importorskip("skimage")
    plain = sc.filter_backgrounds(sc.Config(), np.random.default_rng(3), 40)
    dark = sc.filter_backgrounds(sc.Config(filter_dark=0.5), np.random.default_rng(3), 40)
    assert plain.shape == dark.shape == (40, 96, 96, 3) and dark.dtype == np.uint8
    darker = dark.reshape(40, -1).mean(1) < 0.36 * plain.reshape(40, -1).mean(1) + 1
    assert 8 <= darker.sum() <= 32 and (dark <= plain).all()
    lined = sc.filter_backgrounds(sc.Config(filter_lines=0.5), np.random.default_rng(3), 40)
    changed = (lined != plain).reshape(40, -1).any(1)
    assert 8 <= changed.sum() <= 32  # a share gets thin lines; the others are as before
    assert np.array_equal(lined[~changed], plain[~changed])
    with pytest.raises(ValueError, match="--filter-lines"):
        sc.Config(filter_lines=1.5)


FILTER_STAGE = dict(
    TINY,
    validate_episodes=0,  # no validation: the last round is kept
    method="filter",
    consistency_envs=2,
    filter_width=4,
    filter_layers=3,
    bc_minibatch=4,
)
"""A tiny ``--method filter`` stage."""


@box2d
@skimage
def test_filter_stage_trains_only_the_filter(tmp_path) -> None:
    """--method filter from a tiny trained AttentionNeuron: only the filter moves (the
    agent behind it is the --init one), the loss falls, the checkpoint is
    sensory_carracing_filtered.pt with its command, and colony eval scores it too."""
    init = _tiny_attention(tmp_path)
    cfg = sc.Config(
        **FILTER_STAGE,
        agents="attention",
        init=str(init),
        consistency_rounds=2,
        consistency_steps=8,
        out=str(tmp_path / "f"),
    )
    path, ckpt = _train(cfg)
    assert path.name == "sensory_carracing_filtered.pt"
    assert "--method filter" in ckpt["provenance"]["command"]
    assert ckpt["extra"]["agent"] == "AttentionNeuron + filter"
    start = load_checkpoint(init, sc.EXPERIMENT)["state_dict"]
    state = ckpt["state_dict"]
    assert all(torch.equal(state[f"policy.{k}"], v) for k, v in start.items())
    last = max(int(k.split(".")[2]) for k in state if k.startswith("filter.net."))
    assert state[f"filter.net.{last}.weight"].abs().sum() > 0  # it starts at zero
    history = sc.json.loads(next((tmp_path / "f").glob("*/*/history_filtered.json")).read_text())
    assert [h["round"] for h in history] == [1, 2]
    # stage 2: DAgger behind the frozen filter moves only the AttentionNeuron
    tuned = sc.Config(
        **TINY,
        agents="filtered",
        init=str(path),
        filter_width=4,
        filter_layers=3,
        out=str(tmp_path / "t"),
    )
    path, after = _train(tuned)
    assert path.name == "sensory_carracing_filtered.pt"
    assert "--agents filtered" in after["provenance"]["command"]
    moved = _moved(after["state_dict"], state)
    assert moved and all(k.startswith("policy.") for k in moved), moved
    with pytest.raises(ValueError, match="--agents filtered fine-tunes"):
        sc.Config(agents="filtered")
    # stage 3: --method filter with --agents filtered refines only the filter
    refined = sc.Config(
        **FILTER_STAGE,
        agents="filtered",
        init=str(path),
        filter_action=1.0,
        filter_lines=0.5,
        consistency_rounds=1,
        consistency_steps=4,
        out=str(tmp_path / "r"),
    )
    _, third = _train(refined)
    assert "--agents filtered" in third["provenance"]["command"]
    assert "--method filter" in third["provenance"]["command"]
    assert "'s filter in front of its frozen" in third["provenance"]["trained_by"]
    assert "action loss weight 1.0" in third["provenance"]["trained_by"]
    rounds = sc.json.loads(next((tmp_path / "r").glob("*/*/history_filtered.json")).read_text())
    assert rounds[0]["losses/filter_action"] > 0
    moved = _moved(third["state_dict"], after["state_dict"])
    assert moved and all(k.startswith("filter.") for k in moved), moved
    # the validation score that picks among candidates (never a test background)
    scores = sc.evaluate(sc.Config(**TINY, validation=True), checkpoint=str(path))
    assert [r["condition"] for r in scores["rows"]] == ["validation grass", "validation rocket"]
    assert scores["validation_mean"] == pytest.approx(np.mean([r["mean"] for r in scores["rows"]]))
    with pytest.raises(ValueError, match="--validation needs --validate-episodes"):
        sc.evaluate(sc.Config(**{**TINY, "validate_episodes": 0}, validation=True), str(path))
    agents = sc.load_agents(str(path))
    assert list(agents) == ["AttentionNeuron + filter"]
    rows = sc.evaluate(sc.Config(**TINY), checkpoint=str(path))["rows"]
    assert {r["agent"] for r in rows} == {sc.TEACHER, "AttentionNeuron + filter"}
    with pytest.raises(ValueError, match="--method filter needs"):
        sc.Config(method="filter")
    with pytest.raises(ValueError, match="--filter-layers must be an integer >= 2"):
        sc.Config(filter_layers=1)
    with pytest.raises(ValueError, match="--filter-width"):
        sc.Config(filter_width=0)


@box2d
@skimage
def test_picture(tmp_path) -> None:
    path = sc.picture(sc.Config(workers=0, backgrounds=("coffee",)), tmp_path / "p.png", frames=4)
    assert path.stat().st_size > 1000


@box2d
def test_shipped_attention_drives_shuffled() -> None:
    """The shipped AttentionNeuron re-evaluated on 2 short tracks: it drives (the old one
    scored below zero), alike shuffled and not; the teacher on the same tracks for scale."""
    if not (sc.SHIPPED / sc.checkpoint_name("attention")).is_file():
        pytest.skip("no shipped sensory-carracing checkpoints")
    agents = sc.load_agents(None)
    policy = agents["AttentionNeuron"]
    assert isinstance(policy, AttentionGridPolicy)
    ckpt = load_checkpoint(sc.SHIPPED / sc.checkpoint_name("attention"), sc.EXPERIMENT)
    assert ckpt["provenance"]["command"].startswith("colony train sensory-carracing")
    cfg = sc.Config(eval_frames=FRAMES, eval_episodes=2, backgrounds=(), workers=0)
    rows = sc.evaluate_conditions(
        {"AttentionNeuron": policy},
        sc.CarRacingWorld.factory(**sc.world_config(cfg, max_episode_steps=cfg.eval_frames)),
        [c for c, _ in sc.conditions(cfg)],
        episodes=2,
        max_steps=sc.decisions(cfg, cfg.eval_frames),
        seed=cfg.eval_seed,
    )
    unshuffled, shuffled = (r["mean"] for r in rows)
    # no patch index enters the AttentionNeuron: the order changes only float roundings
    # (which a car on the road's edge can turn into a slightly different path)
    assert shuffled == pytest.approx(unshuffled, abs=10.0)
    teacher = sc.teacher_returns(cfg, 2, FRAMES, cfg.eval_seed).mean()
    assert min(unshuffled, shuffled) >= SHARE * teacher, (unshuffled, shuffled, teacher)


@box2d
@skimage
def test_shipped_filtered_agent_keeps_driving_on_new_backgrounds() -> None:
    """The shipped AttentionNeuron + filter re-evaluated on 2 short tracks, patches
    shuffled, on the test backgrounds (never seen in training). colony eval's headline
    (5 tracks x 500 frames): 88-99% of its grass score on all six. Measured here, session
    30: grass 189.2, astronaut 180.6, coffee 183.0, chelsea 178.6, grace_hopper 184.7,
    china 184.7, flower 183.4; the teacher 167.7. Its chain of stages is shipped: each
    --init in a recorded command is a shipped file, back to the shipped AttentionNeuron."""
    path = sc.SHIPPED / sc.checkpoint_name("filtered")
    if not path.is_file():
        pytest.skip("no shipped filtered checkpoint")
    command = load_checkpoint(path, sc.EXPERIMENT)["provenance"]["command"]
    assert command.startswith("colony train sensory-carracing --agents filtered")
    stages = []
    while "--agents filtered" in command:  # back to stage 1, trained from the shipped AN
        init = command.split("--init ")[1].split()[0]
        assert init.startswith("runs/checkpoints/"), init
        shipped = sc.SHIPPED / init.removeprefix("runs/checkpoints/")
        assert shipped.is_file() and init not in stages, init
        stages.append(init)
        command = load_checkpoint(shipped, sc.EXPERIMENT)["provenance"]["command"]
    assert "--agents attention" in command and "--method filter" in command, command
    first = command.split("--init ")[1].split()[0]
    assert first == "runs/checkpoints/sensory_carracing_attention.pt", first
    assert len(stages) == 5, stages  # stages 5, 4, 3, 2 and 1 under the shipped top
    policy = sc.load_agents(None)["AttentionNeuron + filter"]
    cfg = sc.Config(eval_frames=FRAMES, eval_episodes=2, workers=0)
    shuffled = sc.Condition("shuffled at reset", shuffle=0)
    scores = {}
    for background in (None, *cfg.backgrounds):
        factory = sc.CarRacingWorld.factory(
            **sc.world_config(cfg, max_episode_steps=FRAMES, background=background)
        )
        (row,) = sc.evaluate_conditions(
            {"filtered": policy},
            factory,
            [shuffled],
            episodes=2,
            max_steps=sc.decisions(cfg, FRAMES),
            seed=cfg.eval_seed,
        )
        scores[background or "grass"] = row["mean"]
    teacher = sc.teacher_returns(cfg, 2, FRAMES, cfg.eval_seed).mean()
    assert scores["grass"] >= SHARE * teacher, (scores, teacher)
    for name in cfg.backgrounds:  # the goal: >= 70% of its own grass score on each
        assert scores[name] >= 0.7 * scores["grass"], scores
