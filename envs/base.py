"""The array-first world interface every Colony Lab world implements.

A world owns its state as one array per attribute and steps everything at once.
Adapters (PettingZoo ``ParallelEnv``, Gymnasium ``Env``) sit on top; the viewer
(:mod:`colonylab.envs.render`) and the ``colony`` CLI only use what is here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from colonylab._checks import check_choice, check_dataclass_ints, check_optional_int


@dataclass
class StepResult:
    """What ``World.step`` returns; unpacks like Gymnasium's 5-tuple.

    Attributes:
        obs: observations, leading axis = batch or agents.
        reward: float32[N] (zeros for worlds without rewards).
        terminated: bool[N].
        truncated: bool[N].
        info: extra, non-array-first data (never per-agent objects).
    """

    obs: Any
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):
        return iter((self.obs, self.reward, self.terminated, self.truncated, self.info))


@runtime_checkable
class World(Protocol):
    """Array-first world.

    Required (``tests/envs/test_contract.py`` checks every registered world):
        one class taking one frozen config; ``reset(seed=None, options=None) -> obs``;
        ``step(actions=None) -> StepResult`` (a bad action raises ``ValueError`` and
        changes nothing); ``render_rgb() -> uint8[H, W, 3]`` (the picture of the whole
        world); ``metrics() -> dict[str, float]`` (finite numbers for overlays and
        logs); ``step_count: int``; ``metadata: dict`` with ``name`` (the versioned id,
        ``colonylab/<Name>-v<N>``), ``render_fps`` and ``render_modes``
        (``["rgb_array"]``: windows come from the viewer); ``policies: tuple[str, ...]``
        and ``policy(name, seed) -> callable(obs) -> actions`` (``noop`` is "do
        nothing"; worlds without agents have none).

    Optional hooks the viewer uses when present:
        ``handle_click(x, y, button)`` with world pixel coordinates and
        ``handle_key(name) -> bool`` for world-specific keys.
    """

    metadata: dict[str, Any]
    step_count: int
    policies: tuple[str, ...]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any: ...

    def step(self, actions: Any = None) -> StepResult: ...

    def render_rgb(self) -> np.ndarray: ...

    def metrics(self) -> dict[str, float]: ...

    def policy(self, name: str, seed: int | None = None) -> Callable[[Any], Any]: ...


def dtype_name(value: Any) -> str:
    """A config's ``dtype`` as a plain name: ``torch.float32`` or ``"float32"`` -> ``"float32"``
    (without importing torch here)."""
    return value if isinstance(value, str) else str(value).removeprefix("torch.")


def normalize_fields(config: Any, **names: Callable[[Any], Any]) -> None:
    """Rewrite fields of a frozen config in ``__post_init__``: ``field=function``."""
    for name, function in names.items():
        object.__setattr__(config, name, function(getattr(config, name)))


VECTOR_DTYPES = ("float64", "float32")
"""State / observation precisions of the vector worlds' configs."""


def check_vector_config(config: Any, **more_ints: int) -> None:
    """What every vector-world config's ``__post_init__`` does first: ``dtype`` (when it
    has one; ``torch.float32`` -> ``"float32"``) and ``device`` (None -> ``"cpu"``) as
    plain names, ``num_envs``, ``max_episode_steps``, ``render_envs`` (and ``more_ints``:
    ``{field: low}``) integers >= 1, ``dtype`` in :data:`VECTOR_DTYPES`, ``seed`` None
    or >= 0."""
    has_dtype = hasattr(config, "dtype")
    normalize_fields(
        config,
        **({"dtype": dtype_name} if has_dtype else {}),
        device=lambda d: "cpu" if d is None else str(d),
    )
    check_dataclass_ints(
        config,
        {"num_envs": 1, "max_episode_steps": 1, "render_envs": 1, **more_ints},
        cli=False,
    )
    if has_dtype:
        check_choice("dtype", config.dtype, VECTOR_DTYPES)
    check_optional_int("seed", config.seed, 0)


@dataclass(frozen=True)
class WorldFactory:
    """``factory(num_envs=N, device=d) -> world``: one world class and a frozen config.

    What population evaluators (:mod:`colonylab.collective_ml.population`) take:
    every call builds ``world_cls(dataclasses.replace(config, num_envs=N, device=d))``.
    Picklable (Ray ships it to its actors). Build one with ``XWorld.factory(...)``.
    """

    world_cls: type
    config: Any

    def __call__(self, num_envs: int | None = None, device: Any = None, **overrides: Any) -> Any:
        if num_envs is not None:
            overrides["num_envs"] = num_envs
        if device is not None:
            overrides["device"] = str(device)
        config = dataclasses.replace(self.config, **overrides) if overrides else self.config
        return self.world_cls(config)


def make_factory(
    world_cls: type, config_cls: type, config: Any = None, **overrides: Any
) -> WorldFactory:
    """A :class:`WorldFactory` for population evaluation.

    ``config`` (default: ``config_cls(autoreset=False)``, finished episodes freeze, as
    fitness evaluation wants) with ``overrides`` replaced, e.g.
    ``CartPoleWorld.factory(validate_actions=False, max_episode_steps=200)``.
    """
    if config is None:
        config = config_cls(**{"autoreset": False, **overrides})
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    if not isinstance(config, config_cls):
        raise TypeError(f"expected a {config_cls.__name__}, got {type(config).__name__}")
    return WorldFactory(world_cls, config)


class SeededVectorWorld:
    """Reset seeding shared by the vector worlds (cartpole, swing-up, puzzle-pong, ant).

    A world has ``num_envs`` and its generator ``_rng``. ``reset(seed)`` takes None (the
    world's generator draws every start), an integer >= 0 (reseeds that generator, which
    then draws every start, as Gymnasium's vector envs) or ``num_envs`` integers >= 0
    (env ``n`` starts as a scalar env reset with ``seed[n]``; the generator is reseeded
    with all of them).
    """

    num_envs: int
    _rng: np.random.Generator

    def _seeded_draws(self, seed: Any, draw: Callable[[np.random.Generator, int], Any]) -> list:
        """Apply a reset ``seed`` and draw the starts: ``[draw(generator, num_envs)]``, or
        ``[draw(default_rng(seed[n]), 1) for each env n]`` for per-env seeds."""
        if seed is None:
            return [draw(self._rng, self.num_envs)]
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            if seed < 0:
                raise ValueError(f"seed must be >= 0, got {seed}")
            self._rng = np.random.default_rng(int(seed))
            return [draw(self._rng, self.num_envs)]
        seeds = self._check_seeds(seed)
        draws = [draw(np.random.default_rng(s), 1) for s in seeds]
        self._rng = np.random.default_rng(seeds)
        return draws

    def _check_seeds(self, seed: Any) -> list[int]:
        """``num_envs`` integers >= 0 (a sequence, an array or a tensor), as a list."""
        if hasattr(seed, "detach"):  # a torch tensor
            seed = seed.detach().cpu().numpy()
        arr = np.asarray(seed)
        if arr.shape != (self.num_envs,) or arr.dtype.kind not in "iu":
            raise ValueError(
                f"seed must be None, an integer, or {self.num_envs} integers (one per env), "
                f"got an array of shape {arr.shape} and dtype {arr.dtype}"
            )
        if (arr < 0).any():
            raise ValueError(f"seeds must be >= 0, got {int(arr.min())}")
        return [int(s) for s in arr]


def check_render_mode(render_mode: str | None, metadata: dict[str, Any]) -> str | None:
    """``render_mode`` if it is None or one of ``metadata["render_modes"]`` (Gymnasium and
    PettingZoo adapters), else ``ValueError``."""
    if render_mode is not None and render_mode not in metadata["render_modes"]:
        raise ValueError(
            f"render_mode must be None or one of {metadata['render_modes']}, got {render_mode!r}"
        )
    return render_mode


def no_policy(world: Any, name: str) -> ValueError:
    """The error for an unknown scripted policy, listing the world's ``policies``."""
    known = ", ".join(getattr(world, "policies", ())) or "none (it has no agents)"
    world_id = world.metadata.get("name", type(world).__name__)
    return ValueError(f"unknown policy {name!r} for {world_id}; its policies: {known}")


class BoardTooLargeError(MemoryError, ValueError):
    """Raised before allocating when a requested world would not fit in memory."""


def available_memory_bytes() -> int:
    """Memory the OS says is available now (``MemAvailable``), else total RAM."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 1024**3


def check_allocation(nbytes: int, what: str, *, fraction: float = 0.8) -> None:
    """Refuse (before allocating) an allocation above ``fraction`` of free memory.

    Args:
        nbytes: bytes the world would allocate in total.
        what: a description of the request, e.g. ``"Life board 4 x 65536 x 65536"``.
        fraction: share of available memory a single world may take.

    Raises:
        BoardTooLargeError: naming the request, its size and the limit.
    """
    limit = int(available_memory_bytes() * fraction)
    if nbytes > limit:
        raise BoardTooLargeError(
            f"{what} needs {nbytes / 1024**3:.2f} GiB but only {limit / 1024**3:.2f} GiB "
            f"({fraction:.0%} of available memory) may be used; use a smaller board or batch."
        )
