"""Tests for colonylab.agents.nca: the NCA rule, its fast path and the plain reference."""

import pytest
import torch

from colonylab.agents.nca import NCA, NCAConfig, ReferenceNCA, alive_mask, fire_mask

C = 16


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and steady on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_nca(seed: int = 0, w2_scale: float = 0.05, **kw) -> NCA:
    """An NCA with seeded weights and a nonzero last layer (so steps change the state)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = NCA(**kw)
        with torch.no_grad():
            model.w2.normal_(0.0, w2_scale)
    return model


def random_state(
    batch: int = 2, h: int = 12, w: int = 12, c: int = C, seed: int = 0, all_alive: bool = False
) -> torch.Tensor:
    """Random states; alpha uniform in [0, 1] (some cells dead) or [0.5, 1] (all alive)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, h, w, c, generator=gen) * 0.5
    alpha = torch.rand(batch, h, w, generator=gen)
    if all_alive:
        alpha = 0.5 + 0.5 * alpha
    else:
        alpha = alpha * (torch.rand(batch, h, w, generator=gen) < 0.3)  # sparse life
    x[..., 3] = alpha
    return x


def draw_fire(x: torch.Tensor, seed: int = 1, rate: float = 0.5) -> torch.Tensor:
    return fire_mask(tuple(x.shape[:3]), rate, torch.Generator().manual_seed(seed))


# -- the rule itself ---------------------------------------------------------------------------


def test_zero_initialised_update_leaves_living_state_unchanged():
    model = NCA()
    assert torch.count_nonzero(model.w2) == 0
    x = random_state(all_alive=True)
    assert torch.equal(model.step(x, generator=torch.Generator().manual_seed(0)), x)
    # with dead regions: every cell that lives keeps its values, the others are zeroed
    x = random_state(seed=3)
    out = model.step(x, generator=torch.Generator().manual_seed(0))
    live = alive_mask(x)
    assert 0 < live.float().mean() < 1
    assert torch.equal(out[live], x[live])
    assert torch.count_nonzero(out[~live]) == 0


@pytest.mark.parametrize("impl", ["nca", "reference"])
def test_alive_masking_kills_isolated_weak_cells(impl):
    model = NCA()  # zero update: only the masking acts
    if impl == "reference":
        model = ReferenceNCA.from_nca(model)
    for alpha, survives in ((0.05, False), (0.1, False), (0.11, True), (0.8, True)):
        x = torch.zeros(1, 9, 9, C)
        x[0, 4, 4, 3] = alpha
        x[0, 4, 4, 4:] = 0.7
        x[0, 4, 5, 5] = 0.3  # a dead neighbour's hidden value lives only beside a live cell
        out = model.step(x, fire=torch.ones(1, 9, 9, dtype=torch.bool))
        if survives:
            assert torch.equal(out, x), alpha
        else:
            assert torch.count_nonzero(out) == 0, alpha


def test_alive_mask_rule_and_wrap():
    x = torch.zeros(1, 6, 6, C)
    x[0, 0, 0, 3] = 0.5
    plain = alive_mask(x)
    assert plain[0, :2, :2].all() and plain.sum() == 4
    torus = alive_mask(x, wrap=True)
    assert torus.sum() == 9 and torus[0, -1, -1] and torus[0, 0, -1] and torus[0, -1, 0]


@pytest.mark.parametrize("perception", ["sobel", "learned"])
def test_translation_equivariance_on_a_torus(perception):
    model = make_nca(perception=perception, wrap=True)
    x = random_state(h=14, w=11, seed=5)
    fire = draw_fire(x)
    shift = (3, -5)
    shifted = model.step(torch.roll(x, shift, (1, 2)), fire=torch.roll(fire, shift, (1, 2)))
    expected = torch.roll(model.step(x, fire=fire), shift, (1, 2))
    torch.testing.assert_close(shifted, expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("perception", ["sobel", "learned"])
def test_translation_equivariance_with_zero_padding_away_from_borders(perception):
    model = make_nca(perception=perception)
    x = random_state(h=16, w=16, seed=6, all_alive=True)
    x[..., 3] = torch.rand(x.shape[:3], generator=torch.Generator().manual_seed(2))
    fire = draw_fire(x)
    dy, dx = 3, 2
    out = model.step(x, fire=fire)
    out_shifted = model.step(
        torch.roll(x, (dy, dx), (1, 2)), fire=torch.roll(fire, (dy, dx), (1, 2))
    )
    # a cell's next value depends on cells within 2 (perception, then alive masking)
    h, w = x.shape[1:3]
    torch.testing.assert_close(
        out_shifted[:, 2 + dy : h - 2, 2 + dx : w - 2], out[:, 2 : h - 2 - dy, 2 : w - 2 - dx]
    )
    # the border itself sees the zero padding: the rolled state does not commute there
    assert not torch.allclose(out_shifted[:, :1], torch.roll(out, (dy, dx), (1, 2))[:, :1])


# -- fast path against the reference -------------------------------------------------------------

CONFIGS = {
    "sobel": {},
    "learned": {"perception": "learned"},
    "frozen": {"frozen_channels": 2},
    "wrap": {"wrap": True},
    "learned-frozen-wrap": {"perception": "learned", "frozen_channels": 1, "wrap": True},
}


def _grads_of_reference(ref: ReferenceNCA) -> dict[str, torch.Tensor]:
    c = ref.config.channels
    grads = {
        "w1": ref.update[0].weight.grad[:, :, 0, 0],
        "b1": ref.update[0].bias.grad,
        "w2": ref.update[2].weight.grad[:, :, 0, 0],
    }
    if ref.perceive_conv is not None:
        grads["perceive_weight"] = ref.perceive_conv.weight.grad.reshape(3 * c, 9 * c)
    return grads


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
@pytest.mark.parametrize("explicit_alive", [False, True], ids=["alpha-alive", "given-alive"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_fast_path_matches_reference_in_values_and_gradients(name, explicit_alive, sparse):
    ours = make_nca(seed=1, sparse=sparse, **CONFIGS[name])
    ref = ReferenceNCA.from_nca(ours)
    x = random_state(h=10, w=13, seed=7)
    alive = None
    if explicit_alive:
        alive = torch.rand(x.shape[:3], generator=torch.Generator().manual_seed(8)) < 0.6
    target = torch.rand(10, 13, 4, generator=torch.Generator().manual_seed(9))
    outs = {}
    for key, model in (("ours", ours), ("ref", ref)):
        gen = torch.Generator().manual_seed(11)
        out = model(x, steps=5, alive=alive, generator=gen)
        (out[..., :4] - target).square().mean().backward()
        outs[key] = out.detach()
    assert outs["ours"].abs().sum() > 0
    assert not torch.equal(outs["ours"], x)  # the steps did something
    torch.testing.assert_close(outs["ours"], outs["ref"], atol=1e-5, rtol=1e-5)
    ref_grads = _grads_of_reference(ref)
    for pname, ref_grad in ref_grads.items():
        grad = getattr(ours, pname).grad
        assert grad is not None and grad.abs().sum() > 0, pname
        torch.testing.assert_close(grad, ref_grad, atol=1e-6, rtol=1e-4, msg=pname)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_sparse_and_dense_paths_agree(name):
    sparse = make_nca(seed=2, sparse=True, **CONFIGS[name])
    dense = NCA(sparse.config, sparse=False)
    dense.load_state_dict(sparse.state_dict())
    for seed, all_alive in ((0, False), (1, True)):
        x = random_state(h=9, w=9, seed=seed, all_alive=all_alive)
        fire = draw_fire(x, seed)
        a = sparse.step(x, fire=fire)
        b = dense.step(x, fire=fire)
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    # None picks the sparse path on the CPU: the same numbers again
    auto = NCA(sparse.config)
    auto.load_state_dict(sparse.state_dict())
    torch.testing.assert_close(auto.step(x, fire=fire), sparse.step(x, fire=fire))


def test_frozen_channels_never_change():
    model = make_nca(frozen_channels=3)
    assert model.w2.shape == (C - 3, 128)
    x = random_state(all_alive=True)
    out = model(x, steps=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[..., :3], x[..., :3])
    assert not torch.equal(out[..., 3:], x[..., 3:])


def test_fire_rate_one_updates_every_living_cell():
    model = make_nca(fire_rate=1.0)
    x = random_state(seed=4)
    live_before = alive_mask(x)
    out = model.step(x)
    live = live_before & alive_mask(out)
    assert live.sum() > 20
    changed = (out - x).abs().amax(-1) > 0
    assert changed[live].all()
    assert torch.count_nonzero(out[~live]) == 0
    # a per-step override does the same; half the rate leaves some living cells untouched
    model = make_nca(fire_rate=0.5)
    torch.testing.assert_close(model.step(x, fire_rate=1.0), out)
    half = model.step(x, generator=torch.Generator().manual_seed(0))
    unchanged = ((half - x).abs().amax(-1) == 0) & live
    assert 0 < unchanged.sum() < live.sum()
    assert fire_mask((2, 3, 3), 1.0).all()


def test_seeded_generator_makes_runs_repeat():
    model = make_nca()
    x = model.seed_state(2, 16, 16)
    assert x[:, 8, 8, 3:].eq(1).all() and x.sum() == 2 * (C - 3)

    def run(seed):
        return model(x, steps=20, generator=torch.Generator().manual_seed(seed))

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert alive_mask(a).sum() > 2  # it grew


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"channels": 0}, "channels"),
        ({"channels": 16.0}, "channels"),
        ({"hidden": 0}, "hidden"),
        ({"perception": "conv"}, "perception"),
        ({"fire_rate": 0.0}, "fire_rate"),
        ({"fire_rate": 1.5}, "fire_rate"),
        ({"fire_rate": True}, "fire_rate"),
        ({"alive_threshold": float("nan")}, "alive_threshold"),
        ({"alive_channel": 16}, "alive_channel"),
        ({"alive_channel": -1}, "alive_channel"),
        ({"frozen_channels": 16}, "frozen_channels"),
        ({"frozen_channels": -1}, "frozen_channels"),
    ],
)
def test_bad_config_is_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        NCAConfig(**kw)
    with pytest.raises(ValueError, match=match):
        NCA(**kw)


@pytest.mark.parametrize("shape", [(1, 16, 8, 8), (8, 8, 16), (1, 8, 8, 12)])
def test_states_of_the_wrong_shape_are_refused(shape):
    with pytest.raises(ValueError, match="channels last"):
        NCA().step(torch.zeros(shape))
    with pytest.raises(ValueError, match="expected states"):
        ReferenceNCA(NCAConfig()).step(torch.zeros(shape))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["sobel", "learned-frozen-wrap"])
def test_cuda_matches_cpu(name, monkeypatch):
    # the reference's cuDNN convolutions run in TF32 (10-bit mantissa) by default; matrix
    # products (ours) do not
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    cpu = make_nca(seed=3, **CONFIGS[name])
    x = random_state(h=16, w=16, seed=3)
    fire = draw_fire(x)
    want = cpu.step(x, fire=fire)
    for sparse in (None, True, False):
        gpu = NCA(cpu.config, sparse=sparse).cuda()
        gpu.load_state_dict(cpu.state_dict())
        got = gpu.step(x.cuda(), fire=fire.cuda()).cpu()
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    ref = ReferenceNCA.from_nca(gpu)
    torch.testing.assert_close(
        ref.step(x.cuda(), fire=fire.cuda()).cpu(), want, atol=1e-5, rtol=1e-5
    )


def test_loss_decreases_on_a_tiny_target():
    size = 12
    target = torch.zeros(size, size, 4)
    target[4:9, 4:9] = torch.tensor([0.9, 0.3, 0.1, 1.0])  # premultiplied RGBA blob
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = NCA(hidden=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    seed = model.seed_state(1, size, size)
    losses = []
    for _ in range(30):
        x = model(seed, steps=24, generator=gen)
        loss = (x[..., :4] - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p.grad /= p.grad.norm() + 1e-8
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
