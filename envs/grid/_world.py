"""What the grid worlds' array cores share: action checks, observation codes, buffers.

``GridWorld`` is a mixin base of ``BattleWorld``, ``GatherWorld`` and
``PursuitWorld``. A world sets ``obs_dtype``, ``view_shape``, ``map_size``,
``n_agents``, ``alive``, ``kernel_threads`` and ``step_count`` and provides
``write_view(out, full)``; it says what its actions are through
``_action_limit`` (an int, or int32[N] per agent), ``_first_bad_int_action`` and
``_action_error``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from colonylab.envs.grid import _kernels as K
from colonylab.envs.grid._threads import numba_threads

Policy = Callable[..., np.ndarray]


def threaded_policy(policy: Policy, threads: int) -> Policy:
    """``policy`` running its kernels on ``threads`` Numba threads (the world's own
    ``kernel_threads``); the wrapped policy is kept as ``.policy``."""

    def act(obs: Any, mask: np.ndarray | None = None) -> np.ndarray:
        with numba_threads(threads):
            return policy(obs, mask)

    act.policy = policy  # type: ignore[attr-defined]
    return act


class GridWorld:
    """Shared members of the grid worlds' array cores (see the module docstring)."""

    _action_limit: int | np.ndarray = K.N_ACTIONS
    """Actions of each agent are integers in ``[0, _action_limit)``."""

    # -- sizes ----------------------------------------------------------------------------
    @property
    def _kernel_dtype(self) -> np.dtype:
        """dtype the kernels write: float16 travels as its bits (uint16)."""
        return np.dtype(np.uint16) if self.obs_dtype == np.float16 else self.obs_dtype

    @property
    def map_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the map."""
        return (self.map_size, self.map_size)

    def _encode(self, values: np.ndarray) -> np.ndarray:
        """float32 values in [0, 1] -> the kernels' codes for ``obs_dtype``."""
        values = np.asarray(values, dtype=np.float32)
        if self.obs_dtype == np.float32:
            return values
        if self.obs_dtype == np.float16:
            return values.astype(np.float16).view(np.uint16)
        return np.floor(values * np.float32(255) + np.float32(0.5)).astype(np.uint8)

    # -- actions ----------------------------------------------------------------------------
    def _first_bad_int_action(self, arr: np.ndarray) -> int:
        """Index of the first living agent with an integer action out of range, else -1."""
        return K.first_bad_action(arr, self.alive, K.N_ACTIONS)

    def _action_error(self, index: int, value: Any) -> str:
        """The message for agent ``index``'s bad action ``value``."""
        raise NotImplementedError

    def _check_actions(self, actions: Any) -> np.ndarray:
        """Validated actions as an integer array, or ValueError naming the first bad agent."""
        if actions is None:
            return self._noop
        arr = np.asarray(actions)
        n = self.n_agents
        if arr.shape != (n,):
            raise ValueError(
                f"actions must have shape ({n},), one per agent (dead agents' entries are "
                f"ignored); got shape {arr.shape}"
            )
        kind = arr.dtype.kind
        if kind in "iu":
            bad = self._first_bad_int_action(arr)
        elif kind == "f":
            with np.errstate(invalid="ignore"):
                wrong = (
                    ~np.isfinite(arr)
                    | (arr != np.floor(arr))
                    | (arr < 0)
                    | (arr >= self._action_limit)
                )
            wrong &= self.alive
            bad = int(np.argmax(wrong)) if wrong.any() else -1
        else:
            raise ValueError(
                f"actions must be integers (any int dtype, or integral floats), got dtype "
                f"{arr.dtype}; e.g. np.asarray(actions, dtype=np.int32)"
            )
        if bad >= 0:
            raise ValueError(self._action_error(bad, arr[bad].item()))
        if kind == "f":
            arr = np.where(self.alive, arr, 0).astype(K.ACTION_DTYPE)
        return arr

    # -- observations -----------------------------------------------------------------------
    def _observation(self) -> np.ndarray | dict[str, np.ndarray]:
        """The current observations in the world's buffers (incremental writes)."""
        if self._view is None:
            self._view = np.zeros((self.n_agents, *self.view_shape), dtype=self.obs_dtype)
        full = self._view_step not in (self.step_count - 1, self.step_count)
        self.write_view(self._view, full=full)
        self._view_step = self.step_count
        if not getattr(self.config, "extra_features", False):
            return self._view
        if self._features is None:
            self._features = np.zeros((self.n_agents, self.feature_size), dtype=np.float32)
        return {"view": self._view, "features": self.features(self._features)}

    def observe(self, out: np.ndarray | None = None) -> np.ndarray:
        """Every agent's view of the current state.

        Args:
            out: ``[N, S, S, C]`` array of ``obs_dtype`` to write into (every value is
                written); None: the world's own buffer.

        Returns:
            ``out`` or the world's buffer (dead agents' rows are zero).
        """
        with numba_threads(self.kernel_threads):
            if out is None:
                obs = self._observation()
                return obs["view"] if isinstance(obs, dict) else obs
            expected = (self.n_agents, *self.view_shape)
            if out.shape != expected or out.dtype != self.obs_dtype or not out.flags.c_contiguous:
                raise ValueError(
                    f"out must be a C-contiguous {self.obs_dtype} array of shape {expected}, "
                    f"got {out.dtype} {out.shape}"
                )
            self.write_view(out, full=True)
            return out
