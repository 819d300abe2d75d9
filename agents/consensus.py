"""Consensus networks: many parts exchange messages with their neighbours until they agree.

A :class:`Neighbourhood` is an explicit sparse graph over ``N`` parts: for each part
the indices of its neighbours, ``index: (N, K)`` int64, with ``mask: (N, K)`` bool for
parts with fewer than ``K`` neighbours (a radius graph, a bounded grid). The
all-to-all graph is the mean-field case and is stored without an ``N x N`` index
(``mean_field=True``: every part hears the mean of all parts). Builders:

=========================  ===================================================
:func:`ring`               1-D ring, neighbours within radius ``r`` (``K = 2r``)
:func:`grid`               2-D torus or bounded grid, ``moore`` or ``von_neumann``
:func:`radius_graph`       parts at positions ``(N, 2)`` within a distance
:func:`all_to_all`         every part hears every part (mean field)
=========================  ===================================================

Models (torch modules over batches of graphs, shapes in comments):

- :class:`ConsensusNetwork` -- the message-passing network: encode each part's
  input, then ``steps`` times: message from the part's own state and the mean of
  its neighbours' messages, GRU update; decode per part. The same weights for every
  part, neighbours pooled by a mean, so it is permutation-equivariant on
  all-to-all and translation-equivariant on a ring (the tests check both).
- :class:`LocalRule` -- a learned cellular automaton on a ring with ordered
  neighbourhoods: a binary visible bit and ``hidden`` real channels per cell, one
  MLP shared by every cell reading the ``2r + 1`` cells around it (the learned
  density-classification rule; cell ``i - r`` first, like a rule table).

Classical references alongside (plain torch, for small ``N``): :func:`degroot`
(repeated averaging with self), :func:`local_majority` (repeated majority of self
and neighbours), :func:`vicsek_step` (Vicsek et al. 1995 alignment with angular
noise in a periodic box, dense pairwise distances). :func:`agreement` measures
how far the parts agree: the fraction of parts whose decision is the plurality's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ConsensusNetwork",
    "LocalRule",
    "Neighbourhood",
    "agreement",
    "all_to_all",
    "degroot",
    "grid",
    "local_majority",
    "radius_graph",
    "ring",
    "vicsek_step",
]

GRID_KINDS = ("moore", "von_neumann")


def _int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


# -- neighbourhoods ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Neighbourhood:
    """A sparse graph over ``n`` parts (see the module docstring).

    Attributes:
        n: Number of parts.
        index: ``(N, K)`` int64 neighbour indices (``(B, N, K)``: one graph per batch
            item), unused for mean field.
        mask: ``(N, K)`` / ``(B, N, K)`` bool, True where ``index`` is a real neighbour.
        mean_field: Every part hears the mean of all parts (all-to-all).
    """

    n: int
    index: Tensor | None = None
    mask: Tensor | None = None
    mean_field: bool = False

    def __post_init__(self) -> None:
        _int("n", self.n, 1)
        if self.mean_field:
            return
        if self.index is None or self.index.dtype != torch.int64 or self.index.dim() not in (2, 3):
            raise ValueError("index must be an int64 tensor of shape (N, K) or (B, N, K)")
        if self.index.shape[-2] != self.n:
            raise ValueError(f"index has {self.index.shape[-2]} rows, expected n = {self.n}")
        if self.mask is not None and self.mask.shape != self.index.shape:
            raise ValueError(f"mask shape {tuple(self.mask.shape)} != index shape")
        if self.index.numel() and (self.index.min() < 0 or self.index.max() >= self.n):
            raise ValueError(f"neighbour indices must lie in [0, {self.n})")

    def to(self, device: torch.device | str) -> Neighbourhood:
        """The same graph with its tensors on ``device``."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Neighbourhood(self.n, move(self.index), move(self.mask), self.mean_field)

    def mean(self, x: Tensor, include_self: bool = False) -> Tensor:
        """Mean of ``x`` over each part's neighbours (and itself with ``include_self``).

        Args:
            x: ``(B, N, D)`` values per part.

        Returns:
            ``(B, N, D)``; a part without neighbours gets zeros (or itself).
        """
        if x.dim() != 3 or x.shape[1] != self.n:
            raise ValueError(f"x must have shape (B, {self.n}, D), got {tuple(x.shape)}")
        if self.mean_field:
            total = x.sum(1, keepdim=True)  # (B, 1, D)
            if include_self:
                return (total / self.n).expand_as(x)
            return (total - x) / max(self.n - 1, 1)
        b, n, d = x.shape
        index = self.index if self.index.dim() == 3 else self.index.expand(b, -1, -1)
        k = index.shape[-1]
        gathered = torch.gather(x, 1, index.reshape(b, n * k, 1).expand(-1, -1, d))
        gathered = gathered.reshape(b, n, k, d)  # (B, N, K, D)
        if self.mask is None:
            total, count = gathered.sum(2), torch.full((1, 1, 1), float(k), device=x.device)
        else:
            m = self.mask if self.mask.dim() == 3 else self.mask.expand(b, -1, -1)
            m = m.to(x.dtype)[..., None]  # (B, N, K, 1)
            total, count = (gathered * m).sum(2), m.sum(2)
        if include_self:
            total, count = total + x, count + 1
        return total / count.clamp_min(1)


def ring(n: int, radius: int = 1) -> Neighbourhood:
    """A ring of ``n`` parts; part ``i`` hears ``i - radius .. i + radius`` except itself.

    Neighbours are listed from ``i - radius`` to ``i + radius`` (``K = 2 radius``).
    """
    _int("n", n, 1)
    _int("radius", radius, 1)
    if 2 * radius + 1 > n:
        raise ValueError(f"ring radius {radius} needs n >= {2 * radius + 1}, got {n}")
    offsets = torch.tensor([o for o in range(-radius, radius + 1) if o])
    index = (torch.arange(n)[:, None] + offsets[None]) % n
    return Neighbourhood(n, index)


def grid(
    height: int, width: int, kind: str = "moore", radius: int = 1, torus: bool = True
) -> Neighbourhood:
    """A ``height x width`` grid (parts in row-major order): Moore (square) or von
    Neumann (diamond) neighbourhood of ``radius``, on a torus or with borders."""
    _int("height", height, 1)
    _int("width", width, 1)
    _int("radius", radius, 1)
    if kind not in GRID_KINDS:
        raise ValueError(f"grid kind must be one of {', '.join(GRID_KINDS)}, got {kind!r}")
    offsets = [
        (dy, dx)
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if (dy or dx) and (kind == "moore" or abs(dy) + abs(dx) <= radius)
    ]
    dy = torch.tensor([o[0] for o in offsets])
    dx = torch.tensor([o[1] for o in offsets])
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    ny, nx = ys.reshape(-1, 1) + dy, xs.reshape(-1, 1) + dx  # (N, K)
    if torus:
        index, mask = (ny % height) * width + nx % width, None
    else:
        mask = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        index = ny.clamp(0, height - 1) * width + nx.clamp(0, width - 1)
    return Neighbourhood(height * width, index, mask)


def radius_graph(pos: Tensor, radius: float, box: float | None = None) -> Neighbourhood:
    """Parts at ``pos: (N, 2)`` or ``(B, N, 2)`` hear every other part within ``radius``
    (periodic box of side ``box`` when given). Dense distances: for small ``N``."""
    if not isinstance(pos, Tensor) or pos.dim() not in (2, 3) or pos.shape[-1] != 2:
        raise ValueError("pos must be a tensor of shape (N, 2) or (B, N, 2)")
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius!r}")
    batched = pos.dim() == 3
    p = pos if batched else pos[None]
    d = p[:, :, None, :] - p[:, None, :, :]  # (B, N, N, 2)
    if box is not None:
        d = d - box * torch.round(d / box)
    near = (d.square().sum(-1) <= radius * radius) & ~torch.eye(p.shape[1], dtype=torch.bool)
    k = max(int(near.sum(-1).max()), 1)
    # neighbours first (stable order by index), padded with masked zeros
    order = torch.argsort((~near).to(torch.int8), dim=-1, stable=True)[..., :k]
    mask = torch.gather(near, -1, order)
    index = torch.where(mask, order, torch.zeros_like(order))
    if not batched:
        index, mask = index[0], mask[0]
    return Neighbourhood(p.shape[1], index, mask)


def all_to_all(n: int) -> Neighbourhood:
    """Every part hears the mean of all others: the mean-field graph."""
    return Neighbourhood(_int("n", n, 1), mean_field=True)


# -- the message-passing network --------------------------------------------------------------
class ConsensusNetwork(nn.Module):
    """Encode, then ``steps`` rounds of messages and GRU updates, then decode per part.

    Round ``t`` for part ``i`` with state ``h_i`` (``hidden`` numbers)::

        m_i = message(h_i)                                  # what i tells its neighbours
        u_i = [self_message(h_i), mean_{j in N(i)} m_j]     # what i hears
        h_i <- GRU(u_i, h_i)

    Args:
        in_dim: Input features per part.
        out_dim: Outputs per part (logits of a decision, or values).
        hidden: State size per part.
        message: Message size.
        steps: Rounds of message passing.
    """

    def __init__(
        self, in_dim: int, out_dim: int, hidden: int = 32, message: int = 32, steps: int = 4
    ) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("hidden", hidden),
                            ("message", message)):  # fmt: skip
            _int(name, value, 1)
        self.steps = _int("steps", steps, 0)
        self.in_dim, self.out_dim, self.hidden = in_dim, out_dim, hidden
        self.encode = nn.Linear(in_dim, hidden)
        self.message = nn.Linear(hidden, message)
        self.self_message = nn.Linear(hidden, message)
        self.update = nn.GRUCell(2 * message, hidden)
        self.decode = nn.Linear(hidden, out_dim)

    def forward(
        self, x: Tensor, graph: Neighbourhood, steps: int | None = None, trace: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Outputs per part after ``steps`` rounds (default ``self.steps``).

        Args:
            x: ``(B, N, in_dim)`` inputs per part.
            graph: The neighbourhood of the ``N`` parts.
            steps: Rounds (None: the module's own).
            trace: Also return the decoded outputs after every round (``steps + 1`` of them).

        Returns:
            ``(B, N, out_dim)`` (and the trace).
        """
        if x.dim() != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"x must have shape (B, N, {self.in_dim}), got {tuple(x.shape)}")
        if x.shape[1] != graph.n:
            raise ValueError(f"x has {x.shape[1]} parts but the graph has {graph.n}")
        steps = self.steps if steps is None else _int("steps", steps, 0)
        b, n, _ = x.shape
        h = torch.tanh(self.encode(x))  # (B, N, H)
        outs = [self.decode(h)] if trace else []
        for _ in range(steps):
            heard = graph.mean(torch.tanh(self.message(h)))  # (B, N, M)
            u = torch.cat([torch.tanh(self.self_message(h)), heard], -1)  # (B, N, 2M)
            h = self.update(u.reshape(b * n, -1), h.reshape(b * n, -1)).reshape(b, n, -1)
            if trace:
                outs.append(self.decode(h))
        y = self.decode(h)  # (B, N, out_dim)
        return (y, outs) if trace else y


def agreement(outputs: Tensor) -> Tensor:
    """Fraction of parts whose decision equals the plurality decision, per graph.

    Args:
        outputs: ``(B, N, C)`` logits (decision = argmax; ties to the lowest class),
            or ``(B, N)`` binary / integer decisions.

    Returns:
        ``(B,)`` float in ``[1/C, 1]`` (1: every part agrees).
    """
    if outputs.dim() == 3:
        decisions = outputs.argmax(-1)
    elif outputs.dim() == 2:
        decisions = outputs.long()
    else:
        raise ValueError(f"outputs must be (B, N, C) or (B, N), got {tuple(outputs.shape)}")
    if decisions.numel() and decisions.min() < 0:
        raise ValueError("decisions must be non-negative class indices")
    counts = F.one_hot(decisions, int(decisions.max()) + 1 if decisions.numel() else 1).sum(1)
    return counts.max(-1).values.to(torch.float32) / decisions.shape[1]


# -- the learned local rule (a CA with hidden channels) ---------------------------------------
class LocalRule(nn.Module):
    """A learned ring CA: a binary visible bit and ``hidden`` real channels per cell.

    A cell's state is ``s: (1 + hidden,)`` real numbers; ``s[0]`` is the potential of
    its visible bit, ``v = s[0] > 0``. Each step every cell reads the ``2 radius + 1``
    cells around it (``i - radius`` first), each as ``[2 v - 1, s[1:]]`` -- the
    neighbours' *binary* visible bits and their hidden channels -- through one MLP
    shared by every cell (``width`` tanh units), and adds its output to its own state
    (``s <- clamp(s + ds, -bound, bound)``). The last layer starts at zero, so a fresh
    rule is the identity. Training passes gradients through the binary bits straight
    (the gradient of ``sigmoid(slope * s[0])``). A start puts ``s[0] = 2 v - 1`` and
    zero hidden channels in every cell, so the rule starts from the visible bits alone,
    like a rule table.

    Args:
        radius: Neighbourhood radius ``r`` (``2r + 1`` cells).
        hidden: Hidden channels per cell.
        width: Units of the MLP's hidden layer.
        bound: States stay within ``(-bound, bound)``.
        slope: Slope of the straight-through sigmoid.
    """

    def __init__(
        self, radius: int = 3, hidden: int = 4, width: int = 32, bound: float = 3.0,
        slope: float = 4.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.radius = _int("radius", radius, 1)
        self.hidden = _int("hidden", hidden, 0)
        self.width = _int("width", width, 1)
        if not (bound > 0 and slope > 0):
            raise ValueError(f"bound and slope must be > 0, got {bound!r}, {slope!r}")
        self.bound, self.slope = float(bound), float(slope)
        self.l1 = nn.Linear((2 * radius + 1) * (1 + hidden), width)
        self.l2 = nn.Linear(width, 1 + hidden)
        nn.init.zeros_(self.l2.weight)
        nn.init.zeros_(self.l2.bias)

    def spec(self) -> dict:
        """The constructor arguments (``LocalRule(**rule.spec())`` rebuilds it)."""
        return {"radius": self.radius, "hidden": self.hidden, "width": self.width,
                "bound": self.bound, "slope": self.slope}  # fmt: skip

    def initial_state(self, v: Tensor) -> Tensor:
        """The state ``(B, N, 1 + hidden)`` of visible bits ``v: (B, N)``."""
        s = v.new_zeros(*v.shape, 1 + self.hidden)
        s[..., 0] = 2 * v - 1
        return s

    def visible(self, s: Tensor) -> Tensor:
        """The visible bits ``(B, N)`` (0/1 floats) of states ``s: (B, N, 1 + hidden)``."""
        return (s[..., 0] > 0).to(s.dtype)

    def step(self, s: Tensor) -> Tensor:
        """One synchronous step of every cell of every ring: ``s: (B, N, 1 + H)`` -> same."""
        v = self.visible(s)
        if torch.is_grad_enabled() and s.requires_grad:
            p = torch.sigmoid(self.slope * s[..., 0])
            v = v + (p - p.detach())  # straight-through
        x = torch.cat([(2 * v - 1)[..., None], s[..., 1:]], -1)  # (B, N, 1 + H)
        # torch.roll(x, -o, 1)[:, i] is x[:, i + o]: cell i - r first
        window = torch.cat([torch.roll(x, -o, 1) for o in range(-self.radius, self.radius + 1)], -1)
        ds = self.l2(torch.tanh(self.l1(window)))  # (B, N, 1 + H)
        return self.bound * torch.tanh((s + ds) / self.bound)

    def forward(self, v: Tensor, steps: int, keep_last: int = 0) -> tuple[Tensor, list[Tensor]]:
        """Roll the rule ``steps`` steps from bits ``v: (B, N)``.

        Returns:
            The final bits ``(B, N)`` and the potentials ``s[..., 0]`` ``(B, N)`` of the
            last ``keep_last`` steps (the training loss reads them as logits).
        """
        self._check_start(v)
        _int("steps", steps, 0)
        s = self.initial_state(v.to(torch.float32))
        kept = []
        for t in range(steps):
            s = self.step(s)
            if t >= steps - keep_last:
                kept.append(s[..., 0])
        return self.visible(s), kept

    def _check_start(self, v: Tensor) -> None:
        if v.dim() != 2:
            raise ValueError(f"v must have shape (B, N), got {tuple(v.shape)}")
        if v.shape[1] < 2 * self.radius + 1:
            raise ValueError(f"a ring of radius {self.radius} needs N >= {2 * self.radius + 1}")

    @torch.no_grad()
    def final_bits(self, v: Tensor, steps: int, check_every: int = 8) -> Tensor:
        """The visible bits after ``steps`` steps, ``v: (B, N)`` -> ``(B, N)``; the same as
        :meth:`forward` but faster: a ring whose cells all hold the same state stays
        uniform (every cell sees the same neighbourhood), so it continues as one cell.
        """
        self._check_start(v)
        _int("steps", steps, 0)
        s = self.initial_state(v.to(torch.float32))  # (B, N, C) active rings
        b, n = v.shape
        final = s.new_empty(b, n)
        rows = torch.arange(b, device=s.device)  # which start each active ring is
        u_s = s.new_zeros(0, 1, s.shape[-1])  # (U, 1, C) uniform rings, one cell each
        u_rows = rows[:0]
        for t in range(1, steps + 1):
            if len(rows):
                s = self.step(s)
            if len(u_rows):
                u_s = self.step(u_s)
            if t % check_every == 0 and len(rows):
                uniform = (s == s[:, :1]).all(2).all(1)  # (B_active,)
                if uniform.any():
                    u_s = torch.cat([u_s, s[uniform, :1]])
                    u_rows = torch.cat([u_rows, rows[uniform]])
                    s, rows = s[~uniform], rows[~uniform]
        final[rows] = self.visible(s)
        final[u_rows] = self.visible(u_s).expand(-1, n)
        return final

    @torch.no_grad()
    def spacetime(self, v: Tensor, steps: int) -> Tensor:
        """The visible bits of one ring over time: ``v: (N,)`` -> ``(steps + 1, N)`` uint8."""
        s = self.initial_state(v.reshape(1, -1).to(torch.float32))
        rows = [self.visible(s)[0]]
        for _ in range(steps):
            s = self.step(s)
            rows.append(self.visible(s)[0])
        return torch.stack(rows).to(torch.uint8)


# -- classical references ---------------------------------------------------------------------
def degroot(x: Tensor, graph: Neighbourhood, steps: int) -> Tensor:
    """DeGroot (1974) averaging: each part takes the mean of itself and its neighbours,
    ``steps`` times. ``x: (B, N, D)`` -> ``(B, N, D)``."""
    _int("steps", steps, 0)
    for _ in range(steps):
        x = graph.mean(x, include_self=True)
    return x


def local_majority(bits: Tensor, graph: Neighbourhood, steps: int) -> Tensor:
    """Repeated local majority of self and neighbours (ties keep the part's own bit).

    ``bits: (B, N)`` of 0/1 -> ``(B, N)`` of the same dtype.
    """
    if bits.dim() != 2:
        raise ValueError(f"bits must have shape (B, N), got {tuple(bits.shape)}")
    _int("steps", steps, 0)
    x = bits.to(torch.float32)
    for _ in range(steps):
        m = graph.mean(x[..., None], include_self=True)[..., 0]
        x = torch.where(m > 0.5, 1.0, torch.where(m < 0.5, 0.0, x))
    return x.to(bits.dtype)


def vicsek_step(
    pos: Tensor,
    theta: Tensor,
    *,
    speed: float,
    radius: float,
    noise: float,
    box: float,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """One step of Vicsek et al. (1995): each particle takes the mean heading of the
    particles within ``radius`` (itself included) plus uniform noise in
    ``[-noise/2, noise/2]``, then moves ``speed`` along it in a periodic box.

    Args:
        pos: ``(B, N, 2)`` positions in ``[0, box)``.
        theta: ``(B, N)`` headings (radians).

    Returns:
        ``(pos', theta')``.
    """
    if pos.dim() != 3 or pos.shape[-1] != 2 or theta.shape != pos.shape[:2]:
        raise ValueError("pos must be (B, N, 2) and theta (B, N)")
    d = pos[:, :, None] - pos[:, None]  # (B, N, N, 2)
    d = d - box * torch.round(d / box)
    near = (d.square().sum(-1) <= radius * radius).to(pos.dtype)  # (B, N, N), self included
    s = torch.einsum("bij,bj->bi", near, torch.sin(theta))
    c = torch.einsum("bij,bj->bi", near, torch.cos(theta))
    u = torch.rand(theta.shape, generator=generator, dtype=theta.dtype, device=theta.device)
    theta = torch.atan2(s, c) + noise * (u - 0.5)
    step = speed * torch.stack([torch.cos(theta), torch.sin(theta)], -1)
    return torch.remainder(pos + step, box), torch.remainder(theta + math.pi, 2 * math.pi) - math.pi
