"""Permutation-invariant sensory agents: the AttentionNeuron.

Tang & Ha (2021), "The Sensory Neuron as a Transformer: Permutation-Invariant
Neural Networks for Reinforcement Learning".

Every input channel -- one observation value (vector observations) or one
flattened image patch -- is a *sensory neuron*. All neurons run the SAME small
recurrent cell on ``[their input, the previous action]``; each keeps its own
hidden state. One step:

1. *sense*: neuron ``n`` updates its LSTM state ``(h_n, c_n)`` from
   ``[x_n, a_{t-1}]`` and emits a key ``k_n = W_k h_n``;
2. *value*: the neuron's value is its raw input ``x_n`` (as in the paper);
3. *attend*: ``M`` fixed queries ``Q`` (sinusoidal positional encodings, not
   learned) attend over the ``N`` neurons,
   ``A = softmax_N(Q K^T / sqrt(d_k))``, and the latent is ``A V`` --
   ``(B, M)`` for vector inputs, ``(B, M, patch_dim)`` for patches -- squashed
   by ``tanh`` as in the paper (``latent_tanh=False`` turns it off);
4. *act*: a small MLP head maps the flattened latent to the action, which is
   fed back to every neuron at the next step.

The latent has a fixed size whatever the number of inputs ``N`` and, because
the softmax sums over neurons, does not depend on their order.

**Which invariance holds with recurrence.** The state is per neuron, so it is
indexed like the inputs. Permuting the inputs AND the per-neuron states by the
same permutation gives exactly the same latent and action, and the new state is
the old new state permuted the same way; a permutation fixed from the start of
an episode (states start at zero) therefore gives exactly the same episode.
Reshuffling the inputs mid-episode WITHOUT moving the states hands each
neuron's memory to another channel: the output changes for a few steps until
the neurons' states re-adapt -- the behaviour the paper reports, not an exact
symmetry.

**Functional state.** The recurrent state is an explicit input and output,
:class:`SensoryState` ``(h, c, prev_action)``, never a module buffer, so a
population evaluates in one call with ``torch.func.functional_call`` under
``torch.vmap`` over :func:`colonylab.collective_ml.base.batched_params_dict`::

    policy = AttentionNeuronPolicy(act_dim=1)
    state = None                                 # zeros, sized from obs
    for t in range(steps):
        action, state = policy(obs, state)       # obs: (B, N) -> action: (B, 1)

For interactive use (the viewer) :meth:`AttentionNeuronPolicy.act` keeps the
state on the module and :meth:`AttentionNeuronPolicy.reset_state` drops it; a
new episode may then have a different ``N``.

**The vision variant.** :class:`AttentionGridPolicy` is the paper's design for screens:
feed-forward patch neurons (a key from each patch's content alone, a value of its
features), ``grid x grid`` FIXED 2-D positional queries (:func:`grid_queries`), so that
the attention writes a small latent *image* which convolutions read. Nothing depends on
a patch's index, so its action is exactly invariant to the order of the patches.

Shapes (``B`` batch, ``N`` neurons, ``D`` input per neuron (1 for vectors),
``A`` action dim, ``H`` LSTM width, ``M`` queries, ``d_k`` key dim): all
tensors float, on the module's device. Unbatched inputs (no leading ``B``)
give unbatched outputs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "AttentionGridPolicy",
    "AttentionNeuron",
    "AttentionNeuronPolicy",
    "SensoryState",
    "grid_queries",
    "patchify",
    "sinusoidal_queries",
    "unpatchify",
]


class SensoryState(NamedTuple):
    """Recurrent state of an :class:`AttentionNeuronPolicy` (a pytree: vmap-able)."""

    h: Tensor
    """``(B, N, H)`` per-neuron LSTM hidden state."""
    c: Tensor
    """``(B, N, H)`` per-neuron LSTM cell state."""
    prev_action: Tensor
    """``(B, A)`` the action of the previous step (zeros at the start)."""


def _tanh(x: Tensor) -> Tensor:
    """``tanh(x)`` as ``2 sigmoid(2x) - 1`` (equal to ~1e-7): on CPU builds whose tanh
    is not vectorized this is 2-4x faster, and the LSTM's small tensors are its hot path."""
    return torch.sigmoid(2.0 * x) * 2.0 - 1.0


def sinusoidal_queries(num_queries: int, dim: int) -> Tensor:
    """Fixed sinusoidal positional encodings, ``(num_queries, dim)`` float32.

    Row ``m``: ``[sin(m w_0), cos(m w_0), sin(m w_1), cos(m w_1), ...]`` with
    ``w_i = 10000^(-2i/dim)`` (Vaswani et al. 2017).
    """
    if num_queries < 1 or dim < 1:
        raise ValueError(f"num_queries and dim must be >= 1, got {num_queries} and {dim}")
    position = torch.arange(num_queries, dtype=torch.float64)[:, None]  # (M, 1)
    pair = torch.arange(0, dim, 2, dtype=torch.float64)  # (ceil(dim/2),)
    angle = position * torch.exp(-math.log(10000.0) * pair / dim)  # (M, ceil(dim/2))
    table = torch.zeros(num_queries, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return table.float()


def grid_queries(rows: int, cols: int, dim: int) -> Tensor:
    """Fixed 2-D positional encodings of a ``rows x cols`` grid, ``(rows * cols, dim)``
    float32, row-major: the first ``dim // 2`` values encode the row
    (:func:`sinusoidal_queries`), the rest the column. ``dim`` must be even."""
    if rows < 1 or cols < 1 or dim < 2 or dim % 2:
        raise ValueError(
            f"grid_queries needs rows, cols >= 1 and an even dim >= 2, got {rows}, {cols}, {dim}"
        )
    half = dim // 2
    row = sinusoidal_queries(rows, half)[:, None, :].expand(rows, cols, half)
    col = sinusoidal_queries(cols, half)[None, :, :].expand(rows, cols, half)
    return torch.cat([row, col], dim=-1).reshape(rows * cols, dim)


def patchify(image: Tensor, patch: int) -> Tensor:
    """Cut images into non-overlapping square patches, row-major.

    Args:
        image: ``(B, H, W, C)`` or ``(H, W, C)``, channels last.
        patch: side of a square patch in pixels; must divide ``H`` and ``W``.

    Returns:
        ``(B, N, patch*patch*C)`` (or ``(N, patch*patch*C)``) with
        ``N = (H // patch) * (W // patch)``; patch ``n`` is at grid row
        ``n // (W // patch)``, column ``n % (W // patch)``, flattened in
        ``(row, column, channel)`` order.
    """
    if image.dim() not in (3, 4):
        raise ValueError(
            f"patchify expects an image (B, H, W, C) or (H, W, C), channels last; "
            f"got shape {tuple(image.shape)}"
        )
    unbatched = image.dim() == 3
    if unbatched:
        image = image.unsqueeze(0)
    batch, height, width, channels = image.shape
    if not isinstance(patch, int) or patch < 1 or height % patch or width % patch:
        raise ValueError(
            f"patch size {patch!r} must be a positive integer dividing the image height "
            f"{height} and width {width}; pick a common divisor or crop/pad the image"
        )
    rows, cols = height // patch, width // patch
    out = image.reshape(batch, rows, patch, cols, patch, channels)
    out = out.permute(0, 1, 3, 2, 4, 5)  # (B, rows, cols, patch, patch, C)
    out = out.reshape(batch, rows * cols, patch * patch * channels)
    return out[0] if unbatched else out


def unpatchify(patches: Tensor, height: int, width: int, patch: int) -> Tensor:
    """Inverse of :func:`patchify`: ``(B, N, patch*patch*C)`` -> ``(B, H, W, C)``
    (unbatched ``(N, patch*patch*C)`` -> ``(H, W, C)``)."""
    if patches.dim() not in (2, 3):
        raise ValueError(f"unpatchify expects (B, N, D) or (N, D), got {tuple(patches.shape)}")
    if not isinstance(patch, int) or patch < 1 or height % patch or width % patch:
        raise ValueError(
            f"patch size {patch!r} must be a positive integer dividing height {height} "
            f"and width {width}"
        )
    unbatched = patches.dim() == 2
    if unbatched:
        patches = patches.unsqueeze(0)
    batch, num, dim = patches.shape
    rows, cols = height // patch, width // patch
    if num != rows * cols or dim % (patch * patch):
        raise ValueError(
            f"patches of shape {tuple(patches.shape)} do not tile a {height}x{width} image "
            f"with {patch}x{patch} patches (expected N={rows * cols}, D a multiple of "
            f"{patch * patch})"
        )
    channels = dim // (patch * patch)
    out = patches.reshape(batch, rows, cols, patch, patch, channels)
    out = out.permute(0, 1, 3, 2, 4, 5).reshape(batch, height, width, channels)
    return out[0] if unbatched else out


class AttentionNeuron(nn.Module):
    """The sensory layer: N neurons sharing one LSTM cell, M fixed queries.

    Args:
        act_dim: ``A``, size of the previous action fed to every neuron.
        input_dim: ``D``, values per neuron: 1 for vector observations, the
            flattened patch size (``patch*patch*C``) for images.
        num_queries: ``M``, number of fixed queries (rows of the latent).
        key_dim: ``d_k``, width of queries and keys.
        hidden_dim: ``H``, width of the shared LSTM cell.
        latent_tanh: squash the latent by ``tanh`` (as in the paper).
        recurrent: keep each neuron's LSTM state between steps (the paper's design for
            vector inputs); ``False`` starts every step from a zero state, so each key
            depends on the current input (and action) only -- a feed-forward sensory
            layer, as the paper used for image patches, that can be trained on
            shuffled single frames.
    """

    def __init__(
        self,
        act_dim: int,
        input_dim: int = 1,
        num_queries: int = 16,
        key_dim: int = 16,
        hidden_dim: int = 8,
        latent_tanh: bool = True,
        recurrent: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (
            ("act_dim", act_dim),
            ("input_dim", input_dim),
            ("num_queries", num_queries),
            ("key_dim", key_dim),
            ("hidden_dim", hidden_dim),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.act_dim = act_dim
        self.input_dim = input_dim
        self.num_queries = num_queries
        self.key_dim = key_dim
        self.hidden_dim = hidden_dim
        self.latent_tanh = latent_tanh
        self.recurrent = bool(recurrent)
        # One LSTM cell for all neurons, written out (gates i, f, g, o) so that it
        # runs under torch.vmap with batched parameters.
        self.cell = nn.Linear(input_dim + act_dim + hidden_dim, 4 * hidden_dim)
        # No bias: a key bias adds the same q.b to every neuron's score, which the
        # softmax over neurons cancels.
        self.key = nn.Linear(hidden_dim, key_dim, bias=False)
        # Fixed, not learned; not saved (rebuilt from the sizes).
        self.register_buffer("queries", sinusoidal_queries(num_queries, key_dim), persistent=False)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """``(M,)`` for vector inputs, ``(M, D)`` for patches."""
        return (self.num_queries,) if self.input_dim == 1 else (self.num_queries, self.input_dim)

    def as_neurons(self, obs: Tensor) -> tuple[Tensor, bool]:
        """``obs`` -> ``((B, N, D), unbatched)``; refuses an unexpected rank."""
        if self.input_dim == 1:
            if obs.dim() not in (1, 2):
                raise ValueError(
                    f"vector observations must be (B, N) or (N,), got shape {tuple(obs.shape)}; "
                    f"for image patches build with input_dim=patch*patch*C"
                )
            unbatched = obs.dim() == 1
            neurons = obs.reshape(1, -1, 1) if unbatched else obs.unsqueeze(-1)
        else:
            if obs.dim() not in (2, 3) or obs.shape[-1] != self.input_dim:
                raise ValueError(
                    f"patch observations must be (B, N, {self.input_dim}) or (N, {self.input_dim}), "
                    f"got shape {tuple(obs.shape)}; cut images with patchify(image, patch)"
                )
            unbatched = obs.dim() == 2
            neurons = obs.unsqueeze(0) if unbatched else obs
        if neurons.shape[1] < 1:
            raise ValueError(f"observation has no inputs (N=0), shape {tuple(obs.shape)}")
        return neurons, unbatched

    def initial_state(self, neurons: Tensor) -> tuple[Tensor, Tensor]:
        """Zero ``(h, c)``, each ``(B, N, H)``, for ``neurons: (B, N, D)``."""
        batch, num = neurons.shape[:2]
        zeros = neurons.new_zeros(batch, num, self.hidden_dim)
        return zeros, zeros

    def forward(
        self, neurons: Tensor, prev_action: Tensor, h: Tensor, c: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One step on already-shaped inputs (see :meth:`as_neurons`).

        Args:
            neurons: ``(B, N, D)`` one row per sensory neuron.
            prev_action: ``(B, A)``.
            h, c: ``(B, N, H)`` per-neuron LSTM state.

        Returns:
            ``(latent, attention, h, c)``: latent ``(B, M)`` (``D == 1``) or
            ``(B, M, D)``; attention ``(B, M, N)`` (rows sum to 1); new state.
        """
        batch, num, _ = neurons.shape
        if not self.recurrent:
            h, c = torch.zeros_like(h), torch.zeros_like(c)
        action = prev_action.unsqueeze(1).expand(batch, num, self.act_dim)  # (B, N, A)
        gates = self.cell(torch.cat([neurons, action, h], dim=-1))  # (B, N, 4H): i, f, g, o
        # one sigmoid over all four gates (g's is unused): fewer tiny kernels on CPU
        squashed = torch.sigmoid(gates)
        hid = self.hidden_dim
        in_gate, forget_gate = squashed[..., :hid], squashed[..., hid : 2 * hid]
        out_gate = squashed[..., 3 * hid :]
        c = forget_gate * c + in_gate * _tanh(gates[..., 2 * hid : 3 * hid])
        h = out_gate * _tanh(c)  # (B, N, H)
        keys = self.key(h)  # (B, N, d_k)
        # Scores laid out (B, N, M) and normalised over N (dim 1): CPU softmax over a
        # short last axis is ~15x slower than over a middle one.
        scores = keys @ (self.queries.t() / math.sqrt(self.key_dim))  # (B, N, M)
        attention = torch.softmax(scores, dim=1).transpose(1, 2)  # (B, M, N), over neurons
        latent = attention @ neurons  # (B, M, D)
        if self.latent_tanh:
            latent = _tanh(latent)
        if self.input_dim == 1:
            latent = latent.squeeze(-1)  # (B, M)
        return latent, attention, h, c


class AttentionNeuronPolicy(nn.Module):
    """AttentionNeuron + MLP head, with the previous action fed back.

    Args:
        act_dim: ``A``, action size (logits for discrete actions).
        input_dim: ``D``, 1 for vector observations, ``patch*patch*C`` for patches.
        num_queries, key_dim, hidden_dim, latent_tanh: see :class:`AttentionNeuron`.
        head_hidden: width of the head's hidden layer (0: a single linear layer).
        output: ``"tanh"`` (continuous actions in [-1, 1]) or ``"linear"``
            (raw outputs, e.g. logits for ``argmax``).
        recurrent: see :class:`AttentionNeuron`.
        feed_action: feed the previous action to every neuron (as in the paper);
            ``False`` feeds zeros -- behaviour cloning then cannot take the shortcut
            of repeating the last action.
    """

    def __init__(
        self,
        act_dim: int,
        input_dim: int = 1,
        num_queries: int = 16,
        key_dim: int = 16,
        hidden_dim: int = 8,
        head_hidden: int = 16,
        output: str = "tanh",
        latent_tanh: bool = True,
        feed_action: bool = True,
        recurrent: bool = True,
    ) -> None:
        super().__init__()
        if output not in ("tanh", "linear"):
            raise ValueError(f"output must be 'tanh' or 'linear', got {output!r}")
        if not isinstance(head_hidden, int) or head_hidden < 0:
            raise ValueError(f"head_hidden must be an integer >= 0, got {head_hidden!r}")
        self.sensory = AttentionNeuron(
            act_dim, input_dim, num_queries, key_dim, hidden_dim, latent_tanh, recurrent
        )
        latent_size = math.prod(self.sensory.latent_shape)
        if head_hidden:
            self.head = nn.Sequential(
                nn.Linear(latent_size, head_hidden), nn.Tanh(), nn.Linear(head_hidden, act_dim)
            )
        else:
            self.head = nn.Linear(latent_size, act_dim)
        self.act_dim = act_dim
        self.output = output
        self.feed_action = bool(feed_action)
        self.recurrent = self.sensory.recurrent or self.feed_action
        """Whether an output depends on earlier steps (``False``: a function of the
        current observation only, which behaviour cloning may train on single frames)."""
        self._state: SensoryState | None = None
        self.last_attention: Tensor | None = None
        """``(B, M, N)`` attention of the last :meth:`act` call (for viewers)."""

    def initial_state(self, obs: Tensor) -> SensoryState:
        """Zero state sized for ``obs`` (``(B, N)`` / ``(B, N, D)`` or unbatched)."""
        neurons, unbatched = self.sensory.as_neurons(obs)
        h, c = self.sensory.initial_state(neurons)
        prev_action = neurons.new_zeros(neurons.shape[0], self.act_dim)
        if unbatched:
            return SensoryState(h[0], c[0], prev_action[0])
        return SensoryState(h, c, prev_action)

    def step(
        self, obs: Tensor, state: SensoryState | None = None
    ) -> tuple[Tensor, SensoryState, Tensor]:
        """One step returning ``(action, new_state, attention)``; see :meth:`forward`."""
        neurons, unbatched = self.sensory.as_neurons(obs)  # (B, N, D)
        if state is None:
            state = self.initial_state(obs)
        h, c, prev_action = self._check_state(state, neurons, unbatched)
        fed = prev_action if self.feed_action else torch.zeros_like(prev_action)
        latent, attention, h, c = self.sensory(neurons, fed, h, c)
        action = self.head(latent.flatten(1))  # (B, A)
        if self.output == "tanh":
            action = torch.tanh(action)
        new_state = SensoryState(h, c, action)
        if unbatched:
            return action[0], SensoryState(h[0], c[0], action[0]), attention[0]
        return action, new_state, attention

    def forward(
        self, obs: Tensor, state: SensoryState | None = None
    ) -> tuple[Tensor, SensoryState]:
        """One step of the policy, functional in its state.

        Args:
            obs: ``(B, N)`` values or ``(B, N, D)`` patches (or unbatched).
            state: the previous :class:`SensoryState`, or ``None`` for the start
                of an episode (zeros; ``N`` may differ between episodes).

        Returns:
            ``(action (B, A), new_state)``.
        """
        action, state, _ = self.step(obs, state)
        return action, state

    def reset_state(self) -> None:
        """Forget the state kept by :meth:`act` (call at every episode start)."""
        self._state = None
        self.last_attention = None

    @torch.no_grad()
    def act(self, obs: Tensor) -> Tensor:
        """Stateful convenience for interactive rollouts: the state lives on the
        module between calls until :meth:`reset_state`. Not for ``vmap``."""
        action, self._state, self.last_attention = self.step(obs, self._state)
        return action

    def _check_state(
        self, state: SensoryState, neurons: Tensor, unbatched: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        h, c, prev_action = state
        if unbatched:
            h, c, prev_action = h.unsqueeze(0), c.unsqueeze(0), prev_action.unsqueeze(0)
        batch, num = neurons.shape[:2]
        expected = (batch, num, self.sensory.hidden_dim)
        if tuple(h.shape) != expected or tuple(c.shape) != expected:
            raise ValueError(
                f"state (h {tuple(h.shape)}, c {tuple(c.shape)}) does not fit an observation of "
                f"B={batch}, N={num} inputs (expected {expected}); the number of inputs may only "
                f"change between episodes: pass state=None or call reset_state()"
            )
        if prev_action.dim() != 2 or tuple(prev_action.shape) != (batch, self.act_dim):
            raise ValueError(
                f"previous action has shape {tuple(prev_action.shape)}, expected "
                f"({batch}, {self.act_dim}) (act_dim={self.act_dim})"
            )
        return h, c, prev_action


class AttentionGridPolicy(nn.Module):
    """Tang & Ha's vision AttentionNeuron: patches attended into a latent *image*.

    Every patch is a sensory neuron with no memory: a small MLP of its content alone
    gives its key; its value is the raw patch (``value_dim=0``, as in the paper) or a
    learned ``tanh`` projection of it. The ``grid x grid`` queries are FIXED 2-D
    positional encodings (:func:`grid_queries`), so query ``m`` is a cell of a latent
    grid; each cell gathers, by a softmax over the patches, the patches whose keys
    match its position. The latent ``(B, V, grid, grid)`` is read by two 3 x 3
    convolutions and an MLP head. Nothing depends on a patch's index: the action is
    exactly invariant to the order of the patches (and their number may change).

    ``(B, N, D)`` patches (or unbatched ``(N, D)``) -> ``(B, A)`` (or ``(A,)``); a
    feed-forward module (``recurrent = False``): behaviour cloning trains it on single
    frames. :meth:`attend` returns the latent and the ``(B, M, N)`` attention (viewers).

    Args:
        act_dim: ``A``, outputs.
        input_dim: ``D``, values of a flattened patch.
        grid: side of the latent grid (``M = grid * grid`` queries).
        key_dim: width of queries and keys (even).
        key_hidden: hidden units of the key MLP (0: a linear key).
        value_dim: 0: values are the raw patches (``V = D``); else learned features of
            each patch, ``tanh``-squashed, ``V = value_dim`` of them.
        value_hidden: hidden units (ReLU) of the value MLP (0: a linear projection).
        conv: channels of the two convolutions on the latent grid (the second strides 2).
        head_hidden: hidden units of the MLP head.
        output: ``"tanh"`` (actions in [-1, 1]) or ``"linear"``.
    """

    recurrent = False

    def __init__(
        self,
        act_dim: int,
        input_dim: int,
        grid: int = 8,
        key_dim: int = 16,
        key_hidden: int = 32,
        value_dim: int = 0,
        value_hidden: int = 0,
        conv: tuple[int, int] | list[int] = (16, 32),
        head_hidden: int = 64,
        output: str = "tanh",
    ) -> None:
        super().__init__()
        for name, value, low in (
            ("act_dim", act_dim, 1),
            ("input_dim", input_dim, 1),
            ("grid", grid, 1),
            ("key_dim", key_dim, 2),
            ("key_hidden", key_hidden, 0),
            ("value_dim", value_dim, 0),
            ("value_hidden", value_hidden, 0),
            ("head_hidden", head_hidden, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if key_dim % 2:
            raise ValueError(f"key_dim must be even (half rows, half columns), got {key_dim}")
        if len(conv) != 2 or min(conv) < 1:
            raise ValueError(f"conv must be two channel counts >= 1, got {conv!r}")
        if output not in ("tanh", "linear"):
            raise ValueError(f"output must be 'tanh' or 'linear', got {output!r}")
        self.act_dim, self.input_dim, self.grid = act_dim, input_dim, grid
        self.key_dim, self.output = key_dim, output
        if key_hidden:
            self.key = nn.Sequential(
                nn.Linear(input_dim, key_hidden), nn.Tanh(), nn.Linear(key_hidden, key_dim)
            )
        else:
            self.key = nn.Linear(input_dim, key_dim)
        self.value: nn.Module | None = None
        if value_dim and value_hidden:
            self.value = nn.Sequential(
                nn.Linear(input_dim, value_hidden),
                nn.ReLU(),
                nn.Linear(value_hidden, value_dim),
                nn.Tanh(),
            )
        elif value_dim:
            self.value = nn.Sequential(nn.Linear(input_dim, value_dim), nn.Tanh())
        channels = value_dim or input_dim
        self.register_buffer(
            "queries", grid_queries(grid, grid, key_dim), persistent=False
        )  # (M, d_k), fixed
        self.features = nn.Sequential(
            nn.Conv2d(channels, conv[0], 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(conv[0], conv[1], 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        side = (grid + 1) // 2
        self.head = nn.Sequential(
            nn.Linear(conv[1] * side * side, head_hidden),
            nn.ReLU(),
            nn.Linear(head_hidden, act_dim),
        )

    def attend(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, N, D)`` patches -> ``(latent (B, V, grid, grid), attention (B, M, N))``."""
        if obs.dim() != 3 or obs.shape[-1] != self.input_dim or obs.shape[1] < 1:
            raise ValueError(
                f"AttentionGridPolicy expects (B, N, {self.input_dim}) patches (N >= 1), "
                f"got shape {tuple(obs.shape)}; cut images with patchify(image, patch)"
            )
        keys = self.key(obs)  # (B, N, d_k)
        scores = keys @ (self.queries.t() / math.sqrt(self.key_dim))  # (B, N, M)
        attention = torch.softmax(scores, dim=1).transpose(1, 2)  # (B, M, N), over patches
        values = obs if self.value is None else self.value(obs)  # (B, N, V)
        latent = attention @ values  # (B, M, V)
        batch = obs.shape[0]
        latent = latent.transpose(1, 2).reshape(batch, -1, self.grid, self.grid)
        return latent, attention

    def forward(self, obs: Tensor) -> Tensor:
        unbatched = obs.dim() == 2
        if unbatched:
            obs = obs.unsqueeze(0)
        latent, _ = self.attend(obs)
        out = self.act(latent)
        return out[0] if unbatched else out

    def act(self, latent: Tensor) -> Tensor:
        """``(B, V, grid, grid)`` latent (from :meth:`attend`) -> ``(B, A)`` actions."""
        out = self.head(self.features(latent))
        return torch.tanh(out) if self.output == "tanh" else out
