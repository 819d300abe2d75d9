"""Modular policies: one small network per limb, shared by every limb of every body.

All four take the batched modular world's per-limb tensors and return one torque per
limb slot:

    policy(obs float[B, L, D], parents int64[B, L], mask bool[B, L]) -> actions [B, L]

with ``parents[b, i]`` the slot of limb ``i``'s parent (-1 for the torso and padding)
and ``mask`` the real limbs; limbs are in depth-first order from the torso (a parent
before its children), as :class:`~colonylab.envs.mujoco.modular.ModularWorld` lays
them out. Padding rows get 0; actions are ``tanh``-squashed.

==================  ================================================================
type                model
==================  ================================================================
``smp``             Shared Modular Policies (Huang, Mordatch & Pathak, ICML 2020):
                    bottom-up messages (limb state + the sum of its children's
                    messages -> ``message`` numbers), then top-down (own upward message
                    + parent's downward message -> torque and the message to its
                    children); one set of weights for every limb, any tree
``independent``     the same limb network without messages (limb state -> torque)
``transformer``     Amorpheus-style (Kurin et al., ICLR 2021): limb embeddings, a few
                    layers of self-attention over the body's limbs (padding masked),
                    torque per limb; no graph
``body-mlp``        monolithic MLP per body: the flattened ``[L * D]`` observation ->
                    ``L`` torques (fixed ``L``; a baseline trained on one body)
==================  ================================================================

Children's messages are summed (the paper concatenates a fixed number of child slots):
the sum works for any number of children and keeps the network the same for every
limb. Every model runs under ``torch.func.functional_call`` + ``vmap`` over a population
of parameter vectors (the population trainer evaluates one policy per individual).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "BodyMLP",
    "IndependentLimbs",
    "LimbTransformer",
    "NormalizedModular",
    "PaddedQ",
    "SharedModularPolicy",
    "build_modular",
    "depths",
]


def depths(parents: Tensor) -> Tensor:
    """Depth of every limb slot from ``parents [B, L]`` (torso 0, padding 0)."""
    L = parents.shape[1]
    columns = [torch.zeros_like(parents[:, 0])]
    for i in range(1, L):  # parents come before children (out of place: vmap-safe)
        so_far = torch.stack(columns, dim=1)
        parent = parents[:, i : i + 1].clamp(min=0, max=i - 1)
        columns.append(torch.where(parents[:, i] >= 0, so_far.gather(1, parent)[:, 0] + 1, 0))
    return torch.stack(columns, dim=1)


def _mlp(sizes: list[int], out_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2 or out_act:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def _check(obs: Tensor, parents: Tensor, mask: Tensor, obs_dim: int) -> None:
    if obs.ndim != 3 or obs.shape[-1] != obs_dim:
        raise ValueError(f"obs must be [B, L, {obs_dim}], got shape {tuple(obs.shape)}")
    if parents.shape != obs.shape[:2] or mask.shape != obs.shape[:2]:
        raise ValueError(
            f"parents and mask must be [B, L] = {tuple(obs.shape[:2])}, got "
            f"{tuple(parents.shape)} and {tuple(mask.shape)}"
        )


class SharedModularPolicy(nn.Module):
    """SMP: bottom-up then top-down messages over the limb tree, shared weights.

    Args:
        obs_dim: numbers per limb (15 + one-hot).
        message: width of the messages.
        hidden: hidden width of the up and down networks.
    """

    def __init__(self, obs_dim: int, message: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.obs_dim, self.message = obs_dim, message
        self.up = _mlp([obs_dim + message, hidden, message], out_act=True)
        self.down = _mlp([2 * message, hidden, 1 + message])

    def forward(self, obs: Tensor, parents: Tensor, mask: Tensor) -> Tensor:
        _check(obs, parents, mask, self.obs_dim)
        parents = parents.to(torch.int64)
        depth = depths(parents)
        valid = mask & (parents >= 0)  # limbs that have a parent
        safe = parents.clamp(min=0)
        obs = obs * mask[..., None]
        try:  # outside vmap: compute each level's limbs only
            levels = int(depth.max()) + 1
        except RuntimeError:  # under vmap (a population of weights): the dense form
            return self._dense(obs, depth, valid, safe, mask)
        return self._sparse(obs, depth, valid, safe, mask, levels)

    def _sparse(self, obs, depth, valid, safe, mask, levels: int) -> Tensor:
        """Level by level over the flattened limbs of the batch: each limb's networks run
        once (the same numbers as :meth:`_dense`, less work)."""
        B, L, D = obs.shape
        M = self.message
        flat = obs.reshape(B * L, D)
        parent = (safe + torch.arange(B, device=obs.device)[:, None] * L).reshape(-1)
        has_parent = valid.reshape(-1)
        at = [torch.nonzero(((depth == d) & mask).reshape(-1))[:, 0] for d in range(levels)]
        up = flat.new_zeros(B * L, M)
        children = flat.new_zeros(B * L, M)
        for d in range(levels - 1, -1, -1):  # leaves first
            idx = at[d]
            new = self.up(torch.cat([flat[idx], children[idx]], dim=-1))
            up = up.index_copy(0, idx, new)
            keep = has_parent[idx]
            children = children.index_add(0, parent[idx][keep], new[keep])
        down = flat.new_zeros(B * L, M)
        action = flat.new_zeros(B * L)
        for d in range(levels):  # torso first
            idx = at[d]
            from_parent = down[parent[idx]] * has_parent[idx, None]
            out = self.down(torch.cat([up[idx], from_parent], dim=-1))
            down = down.index_copy(0, idx, out[:, 1:])
            action = action.index_copy(0, idx, torch.tanh(out[:, 0]))
        return action.reshape(B, L)

    def _dense(self, obs, depth, valid, safe, mask) -> Tensor:
        """Every limb slot at every level, kept where the level matches (vmap-safe)."""
        B, L, _ = obs.shape
        M = self.message
        up = obs.new_zeros(B, L, M)
        index = safe[..., None].expand(B, L, M)
        for d in range(L - 1, -1, -1):  # leaves first
            child = up * valid[..., None]
            children_sum = obs.new_zeros(B, L, M).scatter_add(1, index, child)
            new = self.up(torch.cat([obs, children_sum], dim=-1))
            up = torch.where(((depth == d) & mask)[..., None], new, up)
        down = obs.new_zeros(B, L, M)
        action = obs.new_zeros(B, L)
        for d in range(L):  # torso first
            from_parent = down.gather(1, index) * valid[..., None]
            out = self.down(torch.cat([up, from_parent], dim=-1))
            at = ((depth == d) & mask)[..., None]
            down = torch.where(at, out[..., 1:], down)
            action = torch.where(at[..., 0], torch.tanh(out[..., 0]), action)
        return action * mask


class IndependentLimbs(nn.Module):
    """The limb network without messages: each limb's torque from its own state."""

    def __init__(self, obs_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.net = _mlp([obs_dim, hidden, hidden, 1])

    def forward(self, obs: Tensor, parents: Tensor, mask: Tensor) -> Tensor:
        _check(obs, parents, mask, self.obs_dim)
        return torch.tanh(self.net(obs)[..., 0]) * mask


class LimbTransformer(nn.Module):
    """Amorpheus-style: self-attention over a body's limbs (padding masked out).

    Args:
        obs_dim: numbers per limb.
        width: embedding width.
        heads: attention heads (divide ``width``).
        layers: attention + feed-forward blocks.
    """

    def __init__(self, obs_dim: int, width: int = 32, heads: int = 2, layers: int = 2) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} must be a multiple of heads {heads}")
        self.obs_dim, self.width, self.heads = obs_dim, width, heads
        self.embed = nn.Linear(obs_dim, width)
        self.qkv = nn.ModuleList(nn.Linear(width, 3 * width) for _ in range(layers))
        self.proj = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))
        self.ff = nn.ModuleList(_mlp([width, 2 * width, width]) for _ in range(layers))
        self.norm1 = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))
        self.norm2 = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))
        self.head = nn.Linear(width, 1)

    def forward(self, obs: Tensor, parents: Tensor, mask: Tensor) -> Tensor:
        _check(obs, parents, mask, self.obs_dim)
        B, L, _ = obs.shape
        H, W = self.heads, self.width
        x = self.embed(obs)
        bias = torch.where(mask, 0.0, -1e9).to(x.dtype)[:, None, None, :]  # keys
        for qkv, proj, ff, n1, n2 in zip(
            self.qkv, self.proj, self.ff, self.norm1, self.norm2, strict=True
        ):
            q, k, v = qkv(n1(x)).reshape(B, L, 3, H, W // H).permute(2, 0, 3, 1, 4)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(W // H) + bias, dim=-1)
            x = x + proj((att @ v).transpose(1, 2).reshape(B, L, W))
            x = x + ff(n2(x))
        return torch.tanh(self.head(x)[..., 0]) * mask


class BodyMLP(nn.Module):
    """Monolithic MLP for one body shape: ``[L * D]`` -> ``L`` torques."""

    def __init__(self, obs_dim: int, num_limbs: int, hidden: tuple[int, ...] = (64, 64)) -> None:
        super().__init__()
        self.obs_dim, self.num_limbs = obs_dim, num_limbs
        self.net = _mlp([obs_dim * num_limbs, *hidden, num_limbs])

    def forward(self, obs: Tensor, parents: Tensor, mask: Tensor) -> Tensor:
        _check(obs, parents, mask, self.obs_dim)
        if obs.shape[1] != self.num_limbs:
            raise ValueError(
                f"this body MLP takes {self.num_limbs} limb slots, got {obs.shape[1]}; "
                "train one per body"
            )
        flat = (obs * mask[..., None]).reshape(obs.shape[0], -1)
        return torch.tanh(self.net(flat)) * mask


class PaddedQ(nn.Module):
    """A critic for modular actors: ``Q(obs, action)`` of a body padded to ``num_limbs``
    slots, one MLP over the flattened masked observation and the motors' actions
    (the torso's slot and padding are zeroed; limb types and joint ranges in the
    observation tell the bodies apart). Used to train modular actors off-policy."""

    def __init__(self, obs_dim: int, num_limbs: int, hidden: tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        self.obs_dim, self.num_limbs = obs_dim, num_limbs
        layers: list[nn.Module] = []
        sizes = [(obs_dim + 1) * num_limbs, *hidden, 1]
        for k in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[k], sizes[k + 1]))
            if k < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, obs: Tensor, parents: Tensor, mask: Tensor, action: Tensor) -> Tensor:
        _check(obs, parents, mask, self.obs_dim)
        if obs.shape[1] != self.num_limbs:
            raise ValueError(f"PaddedQ takes {self.num_limbs} limb slots, got {obs.shape[1]}")
        motors = (mask & (parents >= 0)).to(obs.dtype)
        x = torch.cat([(obs * mask[..., None]).flatten(1), action * motors], dim=1)
        return self.net(x)[:, 0]


class NormalizedModular(nn.Module):
    """Any modular policy behind a fixed observation normalisation (ARS "V2"): limb
    features ``(obs - obs_mean) / obs_std``, clipped to ``+-clip``, padding kept 0.

    ``obs_mean`` / ``obs_std`` are buffers (saved in the state dict, not parameters:
    a population trainer perturbs only the inner policy's weights); the trainer sets
    them from running statistics (:class:`~colonylab.collective_ml.running_norm.
    RunningNorm`) between generations.

    Args:
        policy: the inner modular policy (same call).
        obs_dim: numbers per limb.
        clip: bound of the normalised features.
    """

    def __init__(self, policy: nn.Module, obs_dim: int, clip: float = 10.0) -> None:
        super().__init__()
        self.policy, self.obs_dim, self.clip = policy, obs_dim, float(clip)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))

    def set_stats(self, mean: Tensor, std: Tensor) -> None:
        """Copy ``(obs_dim,)`` mean and std into the buffers."""
        with torch.no_grad():
            self.obs_mean.copy_(torch.as_tensor(mean, dtype=self.obs_mean.dtype))
            self.obs_std.copy_(torch.as_tensor(std, dtype=self.obs_std.dtype))

    def forward(self, obs: Tensor, parents: Tensor, mask: Tensor) -> Tensor:
        _check(obs, parents, mask, self.obs_dim)
        x = ((obs - self.obs_mean) / self.obs_std).clamp(-self.clip, self.clip)
        return self.policy(x * mask[..., None].to(x.dtype), parents, mask)


_TYPES = {
    "smp": SharedModularPolicy,
    "independent": IndependentLimbs,
    "transformer": LimbTransformer,
    "body-mlp": BodyMLP,
}


def build_modular(spec: Mapping[str, Any]) -> nn.Module:
    """``{"type": "smp" | "independent" | "transformer" | "body-mlp", **arguments}``;
    ``"obs_norm": true`` wraps the policy in :class:`NormalizedModular`."""
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    if kind not in _TYPES:
        raise ValueError(f"modular agent type must be one of {sorted(_TYPES)}, got {kind!r}")
    if spec.get("obs_norm"):
        inner = build_modular({k: v for k, v in spec.items() if k != "obs_norm"})
        return NormalizedModular(inner, int(spec["obs_dim"]))
    kwargs = {k: v for k, v in spec.items() if k not in ("type", "obs_norm")}
    if "hidden" in kwargs and kind == "body-mlp":
        kwargs["hidden"] = tuple(kwargs["hidden"])
    try:
        return _TYPES[kind](**kwargs)
    except TypeError as exc:
        raise ValueError(f"modular agent spec {dict(spec)} does not fit {kind!r}: {exc}") from None
