"""A feed-forward AttentionNeuron with a memory after the attention.

The sensory layer is :class:`colonylab.agents.sensory.AttentionNeuron` with
``recurrent=False`` (each key depends on its own patch only, as the paper's vision
agents): its latent does not depend on the order of the patches nor on their number.
After it sits a small GRU over the latent's features and the agent's own previous
action, so the agent can carry what it saw and what it did across steps in which the
screen hides it (a ball behind occluded patches, its own paddle in a hidden strip:
the paddle moves only by the agent's actions, so their sum says where it is). The
memory reads the pooled latent, never a patch, so re-shuffling the patches
mid-episode leaves it intact (unlike the per-neuron LSTM states of a recurrent
AttentionNeuron), and the whole policy stays invariant to the patches' order.

One step (``B`` batch, ``N`` patches, ``D`` values per patch, ``M`` queries, ``A``
actions, ``F`` = ``head_hidden``, ``H`` = ``memory_dim``)::

    latent  (B, M, D) = AttentionNeuron(patches)          # order-free pooling
    feat    (B, F)    = tanh(W1 latent)                    # the head's hidden layer
    base    (B, A)    = W2 feat                            # the feed-forward logits
    acc     (B, K)    = clamp(acc + onehot(previous action) @ W_acc, -1, 1)
    memory  (B, H)    = GRU([feat, onehot(previous action), acc], memory)
    logits  (B, A)    = base + readout([feat, memory, acc])  # readout's last layer starts at 0
    aux     (B, X)    = aux_head([memory, acc])              # aux_dim > 0 only

``memory_input="latent"`` feeds the GRU the whole flattened latent (``M * D`` values)
instead of the head's ``F`` features (which a head trained without memory may have
reduced to what a memoryless policy needs). ``aux_dim`` > 0 adds a linear head on the
memory and the accumulators that training fits to privileged quantities of the true
state (auxiliary targets: what the memory should carry, e.g. where the agent's paddle
and the ball are); it never feeds the logits, so a deployed agent ignores it.

The optional accumulator (``integrator_dim`` > 0) is a learned, clamped sum of the
agent's own actions -- an efference copy: a paddle that moves only by the agent's
actions and stops at the walls is such a sum, which a GRU would have to learn to
integrate over hundreds of steps (truncated backpropagation sees 50).

``sensory.*`` and ``head.*`` have the names and shapes of
:class:`~colonylab.agents.sensory.AttentionNeuronPolicy` (``output="linear"``), so a
cloned feed-forward agent loads into it (``load_state_dict(strict=False)``) and, with
the readout starting at zero, the new policy begins as exactly that agent.

The state is explicit (:class:`MemoryState`), so population evaluators run it under
``torch.vmap``; the previous action is the argmax of the agent's own logits (what
``argmax`` action functions execute).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from colonylab.agents.sensory import AttentionNeuron

__all__ = ["AttentionMemoryPolicy", "MemoryState"]


class MemoryState(NamedTuple):
    """State of an :class:`AttentionMemoryPolicy` (a pytree: vmap-able)."""

    memory: Tensor
    """``(B, H)`` the GRU's state."""
    prev_action: Tensor
    """``(B, A)`` one-hot of the previous step's argmax action (zeros at the start)."""
    accumulator: Tensor
    """``(B, K)`` the clamped running sums of the agent's own actions (``K`` =
    ``integrator_dim``; ``(B, 0)`` without)."""


class AttentionMemoryPolicy(nn.Module):
    """Feed-forward AttentionNeuron, its head's features, a GRU memory, logits.

    Args:
        act_dim: ``A``, number of discrete actions (the outputs are logits).
        input_dim: ``D``, values per patch (``patch_w * patch_h * frames``).
        num_queries, key_dim, hidden_dim: the sensory layer's (:class:`AttentionNeuron`).
        head_hidden: ``F``, width of the head's hidden layer (the memory's input).
        memory_dim: ``H``, width of the GRU state.
        readout_hidden: hidden width of the readout from ``[feat, memory, acc]``.
        integrator_dim: ``K``, clamped accumulators of the agent's own actions (0: none).
        aux_dim: ``X``, outputs of the auxiliary head on ``[memory, acc]`` (0: none).
        memory_input: what the GRU reads besides the action and the accumulators:
            ``"feat"`` (the head's hidden layer) or ``"latent"`` (the whole latent).
    """

    def __init__(
        self,
        act_dim: int,
        input_dim: int,
        num_queries: int = 16,
        key_dim: int = 16,
        hidden_dim: int = 16,
        head_hidden: int = 32,
        memory_dim: int = 32,
        readout_hidden: int = 32,
        integrator_dim: int = 0,
        aux_dim: int = 0,
        memory_input: str = "feat",
    ) -> None:
        super().__init__()
        for name, value in (
            ("head_hidden", head_hidden),
            ("memory_dim", memory_dim),
            ("readout_hidden", readout_hidden),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name, value in (("integrator_dim", integrator_dim), ("aux_dim", aux_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if memory_input not in ("feat", "latent"):
            raise ValueError(f"memory_input must be 'feat' or 'latent', got {memory_input!r}")
        self.sensory = AttentionNeuron(
            act_dim, input_dim, num_queries, key_dim, hidden_dim, latent_tanh=True, recurrent=False
        )
        latent_size = math.prod(self.sensory.latent_shape)
        self.head = nn.Sequential(
            nn.Linear(latent_size, head_hidden), nn.Tanh(), nn.Linear(head_hidden, act_dim)
        )
        # a GRU cell written out (input and hidden parts of the gates r, z, n), vmap-able
        self.integrator_dim = integrator_dim
        # each action's step of each accumulator (learned; small at the start)
        self.integrator = nn.Parameter(0.05 * torch.randn(act_dim, integrator_dim))
        self.memory_input = memory_input
        seen = head_hidden if memory_input == "feat" else latent_size
        self.gru_input = nn.Linear(seen + act_dim + integrator_dim, 3 * memory_dim)
        self.gru_hidden = nn.Linear(memory_dim, 3 * memory_dim)
        self.readout = nn.Sequential(
            nn.Linear(head_hidden + memory_dim + integrator_dim, readout_hidden),
            nn.Tanh(),
            nn.Linear(readout_hidden, act_dim),
        )
        nn.init.zeros_(self.readout[-1].weight)
        nn.init.zeros_(self.readout[-1].bias)
        self.aux_dim = aux_dim
        # auxiliary targets (training only): a linear read of what the memory carries
        self.aux_head = nn.Linear(memory_dim + integrator_dim, aux_dim) if aux_dim else None
        self.act_dim = act_dim
        self.memory_dim = memory_dim
        self.recurrent = True
        """An output depends on earlier steps (cloning trains it on sequences)."""
        self.last_attention: Tensor | None = None

    def initial_state(self, obs: Tensor) -> MemoryState:
        """Zero state for ``obs`` ``(B, N, D)`` (or unbatched ``(N, D)``)."""
        neurons, unbatched = self.sensory.as_neurons(obs)
        batch = neurons.shape[0]
        state = self._zeros(neurons, batch)
        return MemoryState(*(t[0] for t in state)) if unbatched else state

    def _zeros(self, like: Tensor, batch: int) -> MemoryState:
        return MemoryState(
            like.new_zeros(batch, self.memory_dim),
            like.new_zeros(batch, self.act_dim),
            like.new_zeros(batch, self.integrator_dim),
        )

    def encode(self, obs: Tensor) -> tuple[Tensor, Tensor, bool]:
        """The feed-forward part: ``(latent (B, M*D), attention (B, M, N), unbatched)``
        for ``obs`` ``(B, N, D)`` or ``(N, D)`` (frames of many steps may share a batch)."""
        neurons, unbatched = self.sensory.as_neurons(obs)  # (B, N, D)
        batch = neurons.shape[0]
        h, c = self.sensory.initial_state(neurons)
        latent, attention, _, _ = self.sensory(
            neurons, neurons.new_zeros(batch, self.act_dim), h, c
        )
        return latent.flatten(1), attention, unbatched

    def recur(self, latent: Tensor, state: MemoryState) -> tuple[Tensor, MemoryState, Tensor]:
        """One memory step on an encoded frame ``latent`` ``(B, M*D)``: ``(logits (B, A),
        new_state, aux (B, X))``; the new state's ``prev_action`` is the argmax of the
        logits (training may overwrite it with the action the world executed)."""
        memory, prev, acc = state
        feat = torch.tanh(self.head[0](latent))  # (B, F)
        base = self.head[2](feat)  # (B, A)
        acc = (acc + prev @ self.integrator).clamp(-1.0, 1.0)  # (B, K)
        seen = feat if self.memory_input == "feat" else latent
        gx = self.gru_input(torch.cat([seen, prev, acc], dim=-1))  # (B, 3H)
        gh = self.gru_hidden(memory)  # (B, 3H)
        hid = self.memory_dim
        reset = torch.sigmoid(gx[:, :hid] + gh[:, :hid])
        update = torch.sigmoid(gx[:, hid : 2 * hid] + gh[:, hid : 2 * hid])
        candidate = torch.tanh(gx[:, 2 * hid :] + reset * gh[:, 2 * hid :])
        memory = (1.0 - update) * candidate + update * memory  # (B, H)
        logits = base + self.readout(torch.cat([feat, memory, acc], dim=-1))  # (B, A)
        choice = logits.argmax(-1, keepdim=True)  # (B, 1)
        onehot = (choice == torch.arange(self.act_dim, device=logits.device)).to(logits.dtype)
        if self.aux_head is None:
            aux = logits.new_zeros(logits.shape[0], 0)
        else:
            aux = self.aux_head(torch.cat([memory, acc], dim=-1))  # (B, X)
        return logits, MemoryState(memory, onehot, acc), aux

    def step(
        self, obs: Tensor, state: MemoryState | None = None
    ) -> tuple[Tensor, MemoryState, Tensor]:
        """One step: ``(logits (B, A), new_state, attention (B, M, N))``."""
        latent, attention, unbatched = self.encode(obs)
        batch = latent.shape[0]
        if state is None:
            state = self._zeros(latent, batch)
        elif unbatched:
            state = MemoryState(*(t.unsqueeze(0) for t in state))
        expected = self._zeros(latent, batch)
        if any(tuple(t.shape) != tuple(e.shape) for t, e in zip(state, expected, strict=True)):
            raise ValueError(
                f"state shapes {[tuple(t.shape) for t in state]} do not fit a batch of "
                f"{batch} (expected {[tuple(e.shape) for e in expected]}); pass state=None "
                "at an episode's start"
            )
        logits, state, _ = self.recur(latent, state)
        if unbatched:
            return logits[0], MemoryState(*(t[0] for t in state)), attention[0]
        return logits, state, attention

    def forward(self, obs: Tensor, state: MemoryState | None = None) -> tuple[Tensor, MemoryState]:
        """``(logits, new_state)``; ``state=None`` at an episode's start."""
        logits, state, _ = self.step(obs, state)
        return logits, state
