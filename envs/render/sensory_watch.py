"""What ``colony watch sensory-*`` shows: a world driven by a trained agent, the inputs
as the agent receives them (shuffled) and its attention, side by side.

The agent is duck-typed (worlds import no agents): any callable ``policy(obs) ->
outputs``; one with ``initial_state`` is stepped as ``policy.step(obs, state) ->
(outputs, state, attention)`` and its attention ``(B, M, N)`` is drawn. Its state may be
any tuple (a ``NamedTuple``) of tensors with the env batch first: an ended episode's
rows are zeroed (:func:`zero_ended`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from colonylab.envs.wrappers.sensory import ShuffleObservations

__all__ = ["SensoryWatch", "zero_ended"]


def _unpatchify(patches: Tensor, height: int, width: int, patch: int) -> Tensor:
    """``(N, patch*patch*C)`` patches in row-major order -> the ``(H, W, C)`` picture."""
    rows, cols = height // patch, width // patch
    channels = patches.shape[-1] // (patch * patch)
    out = patches.reshape(rows, cols, patch, patch, channels)
    return out.permute(0, 2, 1, 3, 4).reshape(height, width, channels)


def zero_ended(state: Any, ended: Tensor) -> Any:
    """``state`` with the rows of the ``ended`` envs zeroed: a tensor whose first dimension
    is the env batch, or a (named) tuple of them, nested; ``None`` stays ``None``."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        keep = (~ended).to(state.dtype).reshape(-1, *([1] * (state.dim() - 1)))
        return state * keep
    if isinstance(state, tuple):
        parts = [zero_ended(part, ended) for part in state]
        return type(state)(*parts) if hasattr(state, "_fields") else tuple(parts)
    raise TypeError(f"cannot reset a policy state of type {type(state).__name__}")


class SensoryWatch:
    """What ``colony watch sensory-*`` shows: the world driven by a trained agent, the
    inputs as the agent receives them (shuffled), and its attention.

    Implements the viewer's world interface (``render_rgb``, ``step``, ``metrics``,
    ``step_count``, ``metadata``, ``handle_key``). Key ``x`` re-shuffles the inputs of
    every env now; ``m`` switches to the next agent (the AttentionNeuron, the MLP
    baseline, ...) so you can watch the MLP collapse under the same shuffle; with
    ``occlude``, ``o`` hides that share of every env's patches (the same real patches
    until the episode ends, whatever the shuffle) or shows them all again.

    Args:
        world: An auto-resetting vectorized world (``render_rgb``) with observations
            ``[N, D]`` or patches ``[N, P, d]``.
        agents: ``{label: policy}``; the first drives at the start.
        shuffle_every: Re-shuffle every this many steps (None: only on ``x`` and at
            each episode's start).
        action_fn: Policy outputs -> the world's actions.
        image_shape: ``(H, W, patch)`` for patch worlds: the shuffled patches are
            reassembled into the picture the agent sees.
        seed: Seed of the world and the shuffles.
        occlude: Share of the patches ``o`` hides (None: no ``o`` key). The agents get
            the visible patches only (fewer inputs, as ``OccludePatches``' ``drop``),
            except those in ``fixed_inputs``, which get the hidden ones zeroed.
        fixed_inputs: Labels of agents that take a fixed number of inputs (the MLP).
    """

    def __init__(
        self,
        world: Any,
        agents: dict[str, Any],
        *,
        shuffle_every: int | None,
        action_fn: Callable[[Tensor], Tensor],
        image_shape: tuple[int, int, int] | None = None,
        seed: int = 0,
        name: str = "sensory",
        occlude: float | None = None,
        fixed_inputs: tuple[str, ...] = (),
    ) -> None:
        if occlude is not None and not 0.0 < occlude < 1.0:
            raise ValueError(f"occlude must be None or in (0, 1), got {occlude!r}")
        self.base = world
        self.world = ShuffleObservations(world, every=shuffle_every, seed=seed)
        self.agents = agents
        self.labels = list(agents)
        self.current = 0
        self.action_fn = action_fn
        self.image_shape = image_shape
        self.metadata = {**getattr(world, "metadata", {}), "name": name}
        self.step_count = 0
        self.reshuffles = 0
        self.obs = torch.as_tensor(self.world.reset(seed=seed)).float()
        self.state: Any = None
        self.attention: Tensor | None = None
        self.returns = torch.zeros(self.obs.shape[0], dtype=torch.float64)
        self.last_returns: list[float] = []
        self.occlude = occlude
        self.fixed_inputs = tuple(fixed_inputs)
        self.hidden: Tensor | None = None
        """``bool[N, P]`` the hidden patches, in the world's (unshuffled) order; None: off."""
        self._occlusion = torch.Generator().manual_seed(seed + 1)

    @property
    def policy(self) -> Any:
        return self.agents[self.labels[self.current]]

    def handle_key(self, name: str) -> bool:
        if name == "x":
            # the observation in hand moves too: un-shuffle it, shuffle it the new way
            old = self._expand(self.world.permutation)
            raw = torch.empty_like(self.obs).scatter_(1, old, self.obs)
            self.obs = torch.gather(raw, 1, self._expand(self.world.reshuffle()))
            self.reshuffles += 1
            return True
        if name == "m" and len(self.labels) > 1:
            self.current = (self.current + 1) % len(self.labels)
            self._restart_scores()
            return True
        if name == "o" and self.occlude is not None:
            if self.hidden is None:
                self.hidden = self._draw_hidden(self.obs.shape[0])
            else:
                self.hidden = None
            self._restart_scores()  # a new input count: the agent's memory starts afresh
            return True
        return False

    def _restart_scores(self) -> None:
        """Another agent or condition: fresh state, returns counted from now."""
        self.state = None
        self.returns.zero_()
        self.last_returns = []

    def _draw_hidden(self, rows: int) -> Tensor:
        patches = self.obs.shape[1]
        count = min(patches - 1, round(float(self.occlude) * patches))
        order = torch.rand(rows, patches, generator=self._occlusion).argsort(dim=1)
        hidden = torch.zeros(rows, patches, dtype=torch.bool)
        hidden.scatter_(1, order[:, :count], True)
        return hidden

    def hidden_now(self) -> Tensor | None:
        """``bool[N, P]`` the hidden patches in the order the agent gets them (None: off)."""
        if self.hidden is None:
            return None
        return torch.gather(self.hidden, 1, self.world.permutation)

    def _agent_inputs(self) -> tuple[Tensor, Tensor | None]:
        """What the current agent gets and, when it gets fewer inputs, their positions."""
        hidden = self.hidden_now()
        if hidden is None:
            return self.obs, None
        if self.labels[self.current] in self.fixed_inputs:
            keep = (~hidden).to(self.obs.dtype)
            return self.obs * keep.reshape(*keep.shape, *([1] * (self.obs.dim() - 2))), None
        visible = int((~hidden[0]).sum())
        index = (~hidden).to(torch.int8).argsort(dim=1, descending=True, stable=True)
        index = index[:, :visible].sort(dim=1).values  # (N, P - r) in the shown order
        return torch.gather(self.obs, 1, self._expand(index, visible)), index

    def _expand(self, permutation: Tensor, count: int | None = None) -> Tensor:
        index = permutation.reshape(*permutation.shape, *([1] * (self.obs.dim() - 2)))
        if count is None:
            return index.expand_as(self.obs)
        return index.expand(-1, count, *self.obs.shape[2:])

    @torch.no_grad()
    def step(self, actions: Any = None) -> Any:
        policy = self.policy
        inputs, shown = self._agent_inputs()
        if callable(getattr(policy, "initial_state", None)):
            out, self.state, attention = policy.step(inputs, self.state)
            if shown is not None:  # back to every patch's place, 0 on the hidden ones
                full = attention.new_zeros(*attention.shape[:-1], self.obs.shape[1])
                attention = full.scatter(-1, shown[:, None, :].expand_as(attention), attention)
            self.attention = attention
        else:
            out, self.attention = policy(inputs), None
        result = self.world.step(self.action_fn(out))
        obs, reward, terminated, truncated, _ = result
        ended = torch.as_tensor(terminated) | torch.as_tensor(truncated)
        self.returns += torch.as_tensor(reward, dtype=torch.float64)
        if bool(ended.any()):
            self.last_returns = (self.last_returns + self.returns[ended].tolist())[-20:]
            self.returns[ended] = 0.0
            self.state = zero_ended(self.state, ended)  # new episodes start from zero
            if self.hidden is not None:  # and hide other patches
                self.hidden[ended] = self._draw_hidden(int(ended.sum()))
        self.obs = torch.as_tensor(obs).float()
        self.step_count += 1
        return result

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "agent": self.labels[self.current],
            "step": self.step_count,
            "return (env 0, so far)": round(float(self.returns[0]), 1),
            "x reshuffles": self.reshuffles,
        }
        if self.last_returns:
            out["mean return, last episodes"] = round(float(np.mean(self.last_returns)), 1)
        if self.world.every:
            out["auto-shuffle every"] = self.world.every
        if self.occlude is not None:
            out["occluded"] = f"{self.occlude:.0%}" if self.hidden is not None else "no"
        keys = "x reshuffle, m next agent"
        out["keys"] = keys + (", o occlude" if self.occlude is not None else "")
        return out

    def shown_obs(self) -> Tensor:
        """The observation as drawn: hidden patches (``o``) filled with grey 0.35."""
        hidden = self.hidden_now()
        if hidden is None:
            return self.obs
        mask = hidden.reshape(*hidden.shape, *([1] * (self.obs.dim() - 2)))
        return torch.where(mask, torch.full_like(self.obs, 0.35), self.obs)

    def render_rgb(self) -> np.ndarray:
        frame = np.asarray(self.base.render_rgb())
        side = self._inputs_panel(frame.shape[0])
        return np.concatenate([frame, side], axis=1)

    def _inputs_panel(self, height: int) -> np.ndarray:
        """Env 0's inputs as the agent sees them and the attention over them."""
        from PIL import Image, ImageDraw

        width = max(260, height // 2)
        panel = Image.new("RGB", (width, height), (24, 24, 30))
        draw = ImageDraw.Draw(panel)
        draw.text(
            (8, 6), f"{self.labels[self.current]}: what it sees (env 0)", fill=(235, 235, 235)
        )
        obs = self.shown_obs()[0]
        attention = self.attention[0] if self.attention is not None else None  # (M, N)
        if self.image_shape is not None:
            h, w, patch = self.image_shape
            channels = obs.shape[-1] // (patch * patch)
            picture = _unpatchify(obs, h, w, patch)[..., -1].numpy()  # newest frame
            size = min(width - 16, (height - 64) // 2)  # picture + heatmap + captions
            img = Image.fromarray((picture * 255).astype(np.uint8)).resize((size, size), 0)
            panel.paste(img.convert("RGB"), (8, 24))
            draw.text((8, 26 + size), "shuffled patches (newest frame)", fill=(170, 176, 190))
            if attention is not None and channels:
                weight = attention.sum(0).numpy()
                weight = weight / max(weight.max(), 1e-9)
                heat = weight.reshape(h // patch, w // patch)
                img = Image.fromarray((heat * 255).astype(np.uint8)).resize((size, size), 0)
                y0 = 44 + size
                panel.paste(
                    Image.merge("RGB", (img, img.point(lambda v: v // 3), img.point(lambda v: 0))),
                    (8, y0),
                )
                draw.text(
                    (8, y0 + size + 2),
                    "attention per patch (sum over queries)",
                    fill=(170, 176, 190),
                )
            return np.asarray(panel)
        values = obs.numpy()
        n = len(values)
        bar_h = max(4, min(18, (height // 2 - 40) // max(n, 1)))
        for j, v in enumerate(values):
            y = 26 + j * bar_h
            length = int(np.clip(abs(v) / 3.0, 0, 1) * (width / 2 - 30))
            x0 = width // 2
            colour = (90, 170, 255) if v >= 0 else (255, 140, 90)
            draw.rectangle(
                (
                    min(x0, x0 + np.sign(v) * length),
                    y,
                    max(x0, x0 + np.sign(v) * length),
                    y + bar_h - 2,
                ),
                fill=colour,
            )
            draw.text((4, y), f"in {j}", fill=(170, 176, 190))
        y0 = 30 + n * bar_h
        if attention is not None:
            m = attention.shape[0]
            cell = max(2, min((width - 16) // n, (height - y0 - 24) // m))
            heat = (attention.numpy() / max(float(attention.max()), 1e-9) * 255).astype(np.uint8)
            img = Image.fromarray(heat).resize((cell * n, cell * m), 0)
            panel.paste(
                Image.merge("RGB", (img, img.point(lambda v: v // 3), img.point(lambda v: 0))),
                (8, y0 + 14),
            )
            draw.text((8, y0), "attention: queries (rows) x inputs", fill=(170, 176, 190))
        return np.asarray(panel)
