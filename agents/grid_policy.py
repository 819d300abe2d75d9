"""Shared grid policies: one network per team, applied to all of its agents at once.

The grid worlds hand out array-first observations -- ``view [N, V, V, C]`` (float32,
float16, or uint8 holding ``round(255 * value)``) plus optional extra ``features
[N, F]`` -- and :class:`GridPolicy` reads them in one batched call, zero-copy from
the world's NumPy buffers (``torch.from_numpy``; a dtype conversion is the only copy)::

    policy = build({"type": "grid", "view_shape": [13, 13, 5], "n_actions": 21})
    view = torch.from_numpy(world.observe())          # [N, 13, 13, 5], no copy
    out = policy(view)                                # logits [N, 21], value [N]
    actions, logprob, value, message = policy.act({"view": view}, generator=g)

Architecture (every row is one agent; no layer mixes rows, so agent ``i``'s output
never depends on the other rows -- batch invariance):

    view --(mlp: flatten | conv: 3x3 convs + flatten)--+
    features [N, F] -----------------------------------+
    agent-id embedding [N, id_dim]   (agent_ids > 0) --+--> trunk (tanh MLP, ``hidden``)
    mean action [N, A]               (mean_field) -----+        |
                                                     actor: logits [N, A] (+ action mask)
                                                     critic: value [N]
                                                     message head: mean [N, M] (message_dim > 0)

* **Agent-id conditioning** (``agent_ids=K``): an embedding of each row's id in
  ``0..K-1`` (passed as ``ids int64[N]``), so a shared network can still specialise.
* **Mean field** (``mean_field=True``, Yang et al. 2018): the mean one-hot action of
  the neighbours in view, ``mean_action float32[N, A]``, is an input
  (:func:`neighbour_mean_action` computes it from positions and last actions).
* **Message channel** (``message_dim=M``): each agent emits a vector ``m [M]`` in
  ``[-1, 1]`` (a Gaussian head around a tanh mean with a learned, state-independent
  std, so PPO learns it like an action); the caller writes the messages into
  extra view planes of the next observation with :func:`message_planes` (every
  agent sees, in cell ``(dy, dx)`` of its view, the message of the agent standing
  there), so ``view_shape[-1]`` must count those ``M`` planes. The std is kept in
  ``[message_std_min, message_std_max]`` (default 0.05 to 0.5: the means live in
  ``[-1, 1]``, a wider noise drowns them), and by default the message head's entropy
  is **not** part of :meth:`GridPolicy.evaluate_actions`'s entropy (so not of PPO's
  entropy bonus): a Gaussian's entropy grows without bound with its std, and with
  it in the bonus PPO widened the std until the planes carried mostly noise
  (``message_entropy=True`` restores that).
* **Action mask** (``mask bool[N, A]``): illegal actions get logit ``-inf``
  (probability 0); every row needs at least one legal action.

The ``encoder="mlp"`` default with ``hidden=(128, 128)`` is the issue's
``845 -> 128 -> 128 -> 21 + 1`` network on a 13 x 13 x 5 battle view.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from colonylab._checks import check_choice, check_float, check_int

__all__ = [
    "GridPolicy",
    "PolicyOutput",
    "attack_mask",
    "message_planes",
    "neighbour_mean_action",
]

INPUTS = ("view", "features", "ids", "mean_action", "mask")
"""The keyword inputs of :meth:`GridPolicy.forward` (an observation batch's keys)."""


class PolicyOutput(NamedTuple):
    """What :meth:`GridPolicy.forward` returns (one row per agent)."""

    logits: Tensor
    """``float32[N, A]``; masked actions are ``-inf``."""
    value: Tensor
    """``float32[N]``, the critic's estimate."""
    message: Tensor | None
    """``float32[N, M]`` mean of the message head in ``[-1, 1]`` (None without one)."""


def _as_float(x: Tensor) -> Tensor:
    if x.dtype == torch.uint8:
        return x.float().mul_(1.0 / 255.0)
    return x if x.dtype == torch.float32 else x.float()


class GridPolicy(nn.Module):
    """Actor-critic over grid views, shared by every agent of a team (module doc).

    Args:
        view_shape: ``(V, V, C)`` of one agent's view (``C`` includes any message planes).
        n_actions: discrete actions ``A``.
        features: length ``F`` of the extra feature vector (0: none).
        encoder: ``"mlp"`` (flatten the view) or ``"conv"`` (two 3 x 3 convolutions
            with ``conv_channels`` channels, ReLU, then flatten).
        hidden: widths of the shared tanh trunk (at least one layer).
        conv_channels: channels of the two convolutions (``encoder="conv"``).
        agent_ids: number of distinct agent ids for the id embedding (0: off).
        id_dim: width of the id embedding.
        mean_field: take the neighbours' mean action ``[N, A]`` as an input.
        message_dim: length ``M`` of the emitted message (0: no message head).
        message_entropy: count the message head's Gaussian entropy in the entropy
            that :meth:`evaluate_actions` returns (PPO's bonus); off by default.
        message_std_min: the message noise's smallest std (> 0).
        message_std_max: the message noise's largest std (>= ``message_std_min``).
    """

    def __init__(
        self,
        view_shape: Sequence[int],
        n_actions: int,
        features: int = 0,
        encoder: str = "mlp",
        hidden: Sequence[int] = (128, 128),
        conv_channels: Sequence[int] = (16, 16),
        agent_ids: int = 0,
        id_dim: int = 8,
        mean_field: bool = False,
        message_dim: int = 0,
        message_entropy: bool = False,
        message_std_min: float = 0.05,
        message_std_max: float = 0.5,
    ) -> None:
        super().__init__()
        self.view_shape = tuple(int(s) for s in view_shape)
        if len(self.view_shape) != 3:
            raise ValueError(f"view_shape must be (V, V, C), got {tuple(view_shape)!r}")
        for s in self.view_shape:
            check_int("view_shape entries", s, 1)
        self.n_actions = check_int("n_actions", n_actions, 1)
        self.features = check_int("features", features, 0)
        self.encoder_kind = check_choice("encoder", encoder, ("mlp", "conv"))
        self.hidden = tuple(check_int("hidden widths", int(h), 1) for h in hidden)
        if not self.hidden:
            raise ValueError("hidden must name at least one layer width, e.g. (128, 128)")
        self.agent_ids = check_int("agent_ids", agent_ids, 0)
        self.id_dim = check_int("id_dim", id_dim, 1)
        if not isinstance(mean_field, bool):
            raise ValueError(f"mean_field must be True or False, got {mean_field!r}")
        self.mean_field = mean_field
        self.message_dim = check_int("message_dim", message_dim, 0)
        if not isinstance(message_entropy, bool):
            raise ValueError(f"message_entropy must be True or False, got {message_entropy!r}")
        self.message_entropy = message_entropy
        self.message_std_min = check_float("message_std_min", message_std_min, 0.0, low_open=True)
        self.message_std_max = check_float("message_std_max", message_std_max, message_std_min)

        height, width, channels = self.view_shape
        if self.encoder_kind == "conv":
            c1, c2 = (check_int("conv_channels", int(c), 1) for c in conv_channels)
            self.conv = nn.Sequential(
                nn.Conv2d(channels, c1, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(c1, c2, 3, padding=1),
                nn.ReLU(),
            )
            encoded = c2 * height * width
        else:
            self.conv = None
            encoded = height * width * channels
        width_in = encoded + self.features
        if self.agent_ids:
            self.id_embedding = nn.Embedding(self.agent_ids, self.id_dim)
            width_in += self.id_dim
        else:
            self.id_embedding = None
        if self.mean_field:
            width_in += self.n_actions
        layers: list[nn.Module] = []
        for a, b in zip((width_in, *self.hidden[:-1]), self.hidden, strict=True):
            layers += [nn.Linear(a, b), nn.Tanh()]
        self.trunk = nn.Sequential(*layers)
        self.actor = nn.Linear(self.hidden[-1], self.n_actions)
        self.critic = nn.Linear(self.hidden[-1], 1)
        # small initial logits: a near-uniform first policy (the PPO habit)
        nn.init.orthogonal_(self.actor.weight, gain=0.01)
        nn.init.zeros_(self.actor.bias)
        nn.init.orthogonal_(self.critic.weight, gain=1.0)
        nn.init.zeros_(self.critic.bias)
        if self.message_dim:
            self.message_head = nn.Linear(self.hidden[-1], self.message_dim)
            start = min(max(math.exp(-1.0), self.message_std_min), self.message_std_max)
            self.message_log_std = nn.Parameter(torch.full((self.message_dim,), math.log(start)))
        else:
            self.message_head = None
            self.message_log_std = None

    # -- the spec ------------------------------------------------------------------------
    def spec(self) -> dict:
        """The ``agents.build`` spec that rebuilds this network."""
        spec = {
            "type": "grid",
            "view_shape": list(self.view_shape),
            "n_actions": self.n_actions,
            "features": self.features,
            "encoder": self.encoder_kind,
            "hidden": list(self.hidden),
            "agent_ids": self.agent_ids,
            "id_dim": self.id_dim,
            "mean_field": self.mean_field,
            "message_dim": self.message_dim,
        }
        if self.message_dim:
            spec["message_entropy"] = self.message_entropy
            spec["message_std_min"] = self.message_std_min
            spec["message_std_max"] = self.message_std_max
        if self.conv is not None:
            spec["conv_channels"] = [self.conv[0].out_channels, self.conv[2].out_channels]
        return spec

    # -- forward -------------------------------------------------------------------------
    def _check(self, name: str, x: Tensor | None, shape: tuple[int, ...], needed: bool) -> None:
        if x is None:
            if needed:
                raise ValueError(f"this policy needs {name!r} (shape {shape}); got None")
            return
        if not needed:
            raise ValueError(f"this policy takes no {name!r} input (built without it)")
        if tuple(x.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")

    def forward(
        self,
        view: Tensor,
        features: Tensor | None = None,
        ids: Tensor | None = None,
        mean_action: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> PolicyOutput:
        """Logits, values and message means of ``N`` agents.

        Args:
            view: ``[N, V, V, C]`` float32 / float16 / uint8 (x 255).
            features: ``float32[N, F]`` when ``features > 0``.
            ids: ``int64[N]`` in ``0..agent_ids-1`` when ``agent_ids > 0``.
            mean_action: ``float32[N, A]`` when ``mean_field``.
            mask: optional ``bool[N, A]``: True where the action is legal.

        Raises:
            ValueError: an input of the wrong shape, one the policy lacks or does not
                take, an id out of range, or a row with no legal action.
        """
        if view.dim() != 4 or tuple(view.shape[1:]) != self.view_shape:
            raise ValueError(
                f"view must have shape [N, {', '.join(map(str, self.view_shape))}], "
                f"got {tuple(view.shape)}"
            )
        n = view.shape[0]
        self._check("features", features, (n, self.features), self.features > 0)
        self._check("ids", ids, (n,), self.agent_ids > 0)
        self._check("mean_action", mean_action, (n, self.n_actions), self.mean_field)
        x = _as_float(view)
        if self.conv is not None:
            x = self.conv(x.permute(0, 3, 1, 2))
        parts = [x.reshape(n, -1)]
        if features is not None:
            parts.append(_as_float(features))
        if ids is not None:
            if n and (int(ids.min()) < 0 or int(ids.max()) >= self.agent_ids):
                raise ValueError(
                    f"ids must be in 0..{self.agent_ids - 1}, got values in "
                    f"{int(ids.min())}..{int(ids.max())}"
                )
            parts.append(self.id_embedding(ids.long()))
        if mean_action is not None:
            parts.append(_as_float(mean_action))
        h = self.trunk(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])
        logits = self.actor(h)
        if mask is not None:
            if tuple(mask.shape) != (n, self.n_actions):
                raise ValueError(
                    f"mask must have shape {(n, self.n_actions)}, got {tuple(mask.shape)}"
                )
            mask = mask.bool()
            if n and not bool(mask.any(dim=1).all()):
                row = int((~mask.any(dim=1)).nonzero()[0])
                raise ValueError(f"mask row {row} allows no action; every row needs one")
            logits = logits.masked_fill(~mask, float("-inf"))
        message = torch.tanh(self.message_head(h)) if self.message_head is not None else None
        return PolicyOutput(logits, self.critic(h).squeeze(1), message)

    def _inputs(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        unknown = set(obs) - set(INPUTS)
        if unknown:
            raise ValueError(f"unknown observation keys {sorted(unknown)}; known: {INPUTS}")
        return {k: obs[k] for k in INPUTS if k in obs}

    # -- acting and scoring (the PPO trainer's two calls) --------------------------------
    @torch.no_grad()
    def act(
        self,
        obs: Mapping[str, Tensor],
        generator: torch.Generator | None = None,
        deterministic: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Sample actions (and messages) for every row.

        Sampling is the Gumbel-max trick on ``torch.rand(generator=generator)``, so a
        seeded generator gives the same actions for the same inputs.

        Args:
            obs: the :meth:`forward` inputs by name (``view`` and the others).
            generator: the torch generator the noise comes from (on the policy's device).
            deterministic: argmax actions and the message means.

        Returns:
            ``(actions int64[N], logprob float32[N], value float32[N], message
            float32[N, M] or None)``; ``logprob`` includes the message's log density.
        """
        out = self.forward(**self._inputs(obs))
        logp_all = torch.log_softmax(out.logits, dim=1)
        if deterministic:
            actions = out.logits.argmax(dim=1)
        else:
            u = torch.rand(
                out.logits.shape,
                generator=generator,
                dtype=out.logits.dtype,
                device=out.logits.device,
            )
            exponential = torch.log(u.clamp_(min=1e-20)).neg_().clamp_(min=1e-20)
            gumbel = torch.log(exponential).neg_()
            actions = (out.logits + gumbel).argmax(dim=1)
        logprob = logp_all.gather(1, actions[:, None]).squeeze(1)
        message = None
        if out.message is not None:
            log_std = self.message_log_std_clamped()
            if deterministic:
                message = out.message.clone()
            else:
                noise = torch.randn(
                    out.message.shape, generator=generator, device=out.message.device
                )
                message = out.message + log_std.exp() * noise
            logprob = logprob + _gaussian_logprob(message, out.message, log_std)
        return actions, logprob, out.value, message

    def evaluate_actions(
        self,
        obs: Mapping[str, Tensor],
        actions: Tensor,
        messages: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(logprob [N], entropy [N], value [N])`` of given actions (and messages),
        with gradients: the PPO loss's call."""
        out = self.forward(**self._inputs(obs))
        logp_all = torch.log_softmax(out.logits, dim=1)
        logprob = logp_all.gather(1, actions.long()[:, None]).squeeze(1)
        probs = logp_all.exp()
        # masked logits are -inf: 0 * -inf is nan, so count only the legal actions
        entropy = -(probs * logp_all.masked_fill(probs == 0, 0.0)).sum(dim=1)
        if out.message is not None:
            if messages is None:
                raise ValueError("this policy emits messages: pass the messages it sent")
            log_std = self.message_log_std_clamped()
            logprob = logprob + _gaussian_logprob(messages, out.message, log_std)
            if self.message_entropy:
                entropy = entropy + (0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum()
        return logprob, entropy, out.value

    def message_log_std_clamped(self) -> Tensor:
        """The message noise's log std, kept in ``[log message_std_min, log
        message_std_max]`` (no gradient pushes it further out)."""
        return self.message_log_std.clamp(
            math.log(self.message_std_min), math.log(self.message_std_max)
        )


def _gaussian_logprob(x: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    z = (x - mean) / log_std.exp()
    return (-0.5 * z * z - log_std - 0.5 * math.log(2 * math.pi)).sum(dim=1)


# -- helpers over positions (NumPy; the world or the trainer calls them) --------------------
def _window_index(positions: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.arange(2 * radius + 1)
    ys = positions[:, 0, None] + offsets  # padded coordinates: +radius -radius cancel
    xs = positions[:, 1, None] + offsets
    return ys[:, :, None], xs[:, None, :]


def _check_positions(positions: np.ndarray, map_shape: tuple[int, int], radius: int) -> np.ndarray:
    pos = np.asarray(positions)
    if pos.ndim != 2 or pos.shape[1] != 2 or pos.dtype.kind not in "iu":
        raise ValueError(f"positions must be integers [N, 2] (y, x), got {pos.dtype} {pos.shape}")
    check_int("radius", radius, 0)
    height, width = map_shape
    if len(pos) and (pos.min() < 0 or pos[:, 0].max() >= height or pos[:, 1].max() >= width):
        raise ValueError(f"positions must lie on the {height} x {width} map (y, x)")
    return pos.astype(np.int64)


def message_planes(
    positions: np.ndarray,
    messages: np.ndarray,
    map_shape: tuple[int, int],
    radius: int,
    alive: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Each agent's view of the others' messages: ``float32[N, 2r+1, 2r+1, M]``.

    Agent ``i`` sees, at view cell ``(r + dy, r + dx)``, the message of the agent
    standing at ``positions[i] + (dy, dx)`` (the sum if several stand there; zero
    where nobody does, off the map, and in its own centre cell). Dead agents
    (``alive`` False) send nothing and their rows are zero. Concatenate the result
    to the world's views along the channel axis (``view_shape[-1]`` counts it).

    Args:
        positions: ``int[N, 2]`` cells ``(y, x)`` of the agents.
        messages: ``float[N, M]`` what each agent sent.
        map_shape: ``(height, width)`` of the map.
        radius: view radius ``r`` (the world's).
        alive: optional ``bool[N]``.
        out: optional ``float32[N, 2r+1, 2r+1, M]`` to write into.
    """
    pos = _check_positions(positions, map_shape, radius)
    msg = np.asarray(messages, dtype=np.float32)
    n = len(pos)
    if msg.ndim != 2 or msg.shape[0] != n:
        raise ValueError(f"messages must be [N={n}, M], got shape {msg.shape}")
    m = msg.shape[1]
    live = np.ones(n, dtype=bool) if alive is None else np.asarray(alive, dtype=bool)
    view = 2 * radius + 1
    if out is None:
        out = np.zeros((n, view, view, m), dtype=np.float32)
    elif out.shape != (n, view, view, m) or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {(n, view, view, m)}, got {out.dtype} {out.shape}")
    height, width = map_shape
    board = np.zeros((height + 2 * radius, width + 2 * radius, m), dtype=np.float32)
    np.add.at(board, (pos[live, 0] + radius, pos[live, 1] + radius), msg[live])
    ys, xs = _window_index(pos, radius)
    out[...] = board[ys, xs]
    out[:, radius, radius] -= np.where(live[:, None], msg, 0.0)  # not one's own message
    out[~live] = 0.0
    return out


def neighbour_mean_action(
    positions: np.ndarray,
    actions: np.ndarray,
    n_actions: int,
    map_shape: tuple[int, int],
    radius: int,
    alive: np.ndarray | None = None,
) -> np.ndarray:
    """Mean one-hot action of each agent's neighbours in its view square (mean-field
    MARL's input): ``float32[N, A]``, zero where an agent has no living neighbour.

    Neighbours are the other living agents given (pass one team's agents for the
    team's mean action) within ``radius`` cells in y and in x (the view square).
    Sums come from a 2-D prefix sum of the one-hot counts, so the cost is
    ``O(map + N A)`` whatever the radius.
    """
    pos = _check_positions(positions, map_shape, radius)
    check_int("n_actions", n_actions, 1)
    act = np.asarray(actions)
    n = len(pos)
    if act.shape != (n,):
        raise ValueError(f"actions must have shape ({n},), got {act.shape}")
    if n and (act.min() < 0 or act.max() >= n_actions):
        raise ValueError(f"actions must be in 0..{n_actions - 1}")
    live = np.ones(n, dtype=bool) if alive is None else np.asarray(alive, dtype=bool)
    height, width = map_shape
    # prefix sums over a padded board: S[y, x] = counts in rows < y, cols < x
    counts = np.zeros((height + 2 * radius + 1, width + 2 * radius + 1, n_actions), np.float64)
    np.add.at(counts, (pos[live, 0] + radius + 1, pos[live, 1] + radius + 1, act[live]), 1.0)
    prefix = counts.cumsum(0).cumsum(1)
    y0, x0 = pos[:, 0], pos[:, 1]
    y1, x1 = y0 + 2 * radius + 1, x0 + 2 * radius + 1
    window = prefix[y1, x1] - prefix[y0, x1] - prefix[y1, x0] + prefix[y0, x0]
    window[live, act[live]] -= 1.0  # not one's own action
    total = window.sum(axis=1, keepdims=True)
    mean = np.divide(window, total, out=np.zeros_like(window), where=total > 0)
    mean[~live] = 0.0
    return mean.astype(np.float32)


def attack_mask(
    view: np.ndarray,
    n_actions: int,
    first_attack: int,
    offsets: Sequence[tuple[int, int]],
    enemy_channel: int,
    out: np.ndarray | None = None,
    enabled: bool = True,
) -> np.ndarray:
    """Legal-action mask that allows an attack only where the view shows an enemy:
    ``bool[N, n_actions]``, every other action allowed (``enabled=False``: every action
    allowed, the unmasked ablation).

    Attack ``first_attack + k`` strikes the cell ``offsets[k] = (dy, dx)`` from the
    agent (the centre of its ``[N, V, V, C]`` view); it is allowed when that cell's
    ``enemy_channel`` is non-zero. In the battle worlds an attack on an empty cell only
    costs the attack penalty, so masking it removes PPO's early trap (the policy
    learns to never attack before it ever hits anyone). E.g. ``envs.grid.battle``:
    ``first_attack=13``, offsets N E S W NE SE SW NW = ``((-1, 0), (0, 1), (1, 0),
    (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))``, ``enemy_channel=3``.
    """
    v = np.asarray(view)
    if not enabled:
        if out is None:
            return np.ones((len(v), n_actions), dtype=bool)
        out[...] = True
        return out
    if v.ndim != 4 or v.shape[1] != v.shape[2] or v.shape[1] % 2 == 0:
        raise ValueError(f"view must be [N, V, V, C] with an odd V, got shape {v.shape}")
    check_int("n_actions", n_actions, 1)
    check_int("enemy_channel", enemy_channel, 0, v.shape[3] - 1)
    check_int("first_attack", first_attack, 0, n_actions - len(offsets))
    centre = v.shape[1] // 2
    if out is None:
        out = np.ones((len(v), n_actions), dtype=bool)
    else:
        out[...] = True
    for k, (dy, dx) in enumerate(offsets):
        if max(abs(dy), abs(dx)) > centre:
            raise ValueError(f"attack offset {(dy, dx)} lies outside the {v.shape[1]}-cell view")
        out[:, first_attack + k] = v[:, centre + dy, centre + dx, enemy_channel] != 0
    return out
