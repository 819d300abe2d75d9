"""What ``colony watch sensory-*`` shows: a world driven by a trained agent, the inputs
as the agent receives them (shuffled) and its attention, side by side.

The agent is duck-typed (worlds import no agents): any callable ``policy(obs) ->
outputs``; one with ``initial_state`` is stepped as ``policy.step(obs, state) ->
(outputs, state, attention)`` and its attention ``(B, M, N)`` is drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from colonylab.envs.wrappers.sensory import ShuffleObservations

__all__ = ["SensoryWatch"]


def _unpatchify(patches: Tensor, height: int, width: int, patch: int) -> Tensor:
    """``(N, patch*patch*C)`` patches in row-major order -> the ``(H, W, C)`` picture."""
    rows, cols = height // patch, width // patch
    channels = patches.shape[-1] // (patch * patch)
    out = patches.reshape(rows, cols, patch, patch, channels)
    return out.permute(0, 2, 1, 3, 4).reshape(height, width, channels)


class SensoryWatch:
    """What ``colony watch sensory-*`` shows: the world driven by a trained agent, the
    inputs as the agent receives them (shuffled), and its attention.

    Implements the viewer's world interface (``render_rgb``, ``step``, ``metrics``,
    ``step_count``, ``metadata``, ``handle_key``). Key ``x`` re-shuffles the inputs of
    every env now; ``m`` switches between the AttentionNeuron and the MLP baseline (if
    given) so you can watch the MLP collapse under the same shuffle.

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
    ) -> None:
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
            self.state = None
            self.returns.zero_()
            return True
        return False

    def _expand(self, permutation: Tensor) -> Tensor:
        index = permutation.reshape(*permutation.shape, *([1] * (self.obs.dim() - 2)))
        return index.expand_as(self.obs)

    @torch.no_grad()
    def step(self, actions: Any = None) -> Any:
        policy = self.policy
        if callable(getattr(policy, "initial_state", None)):
            out, self.state, attention = policy.step(self.obs, self.state)
            self.attention = attention
        else:
            out, self.attention = policy(self.obs), None
        result = self.world.step(self.action_fn(out))
        obs, reward, terminated, truncated, _ = result
        ended = torch.as_tensor(terminated) | torch.as_tensor(truncated)
        self.returns += torch.as_tensor(reward, dtype=torch.float64)
        if bool(ended.any()):
            self.last_returns = (self.last_returns + self.returns[ended].tolist())[-20:]
            self.returns[ended] = 0.0
            if self.state is not None:  # new episodes start from a zero state
                keep = (~ended).to(self.state[0].dtype)
                self.state = type(self.state)(
                    self.state.h * keep[:, None, None],
                    self.state.c * keep[:, None, None],
                    self.state.prev_action * keep[:, None],
                )
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
        out["keys"] = "x reshuffle, m MLP/AN"
        return out

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
        obs = self.obs[0]
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
