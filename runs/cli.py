"""The ``colony`` command: list, rollout, watch, train, eval, bench, demo.

Every verb has ``--help``. World, experiment and benchmark options are the
fields of their config dataclasses (parsed by tyro), so
``colony rollout life --help`` lists the Life world's options too.

Errors. Bad input on any verb ends the command with exactly one line on stderr,
``error: <what was wrong, naming the value and what was expected>``, and exit
status 2, never a traceback. "Bad input" is every exception a user can cause:

- the CLI's own options (``--steps 0``, ``--seed -1``, an unknown name or verb),
  checked at parse time;
- a config ``__post_init__`` refusing a world / experiment / benchmark option, and
  tyro's own parse errors (an unknown option, a bad choice, a value of the wrong
  type), condensed to one line through tyro's parse-error hook;
- anything raised from inside a verb that is a ``ValueError`` (config checks,
  ``CheckpointError``, a corrupt data file, ``BoardTooLargeError``), an ``OSError``
  (``FileNotFoundError``, permissions, a full disk), a ``MemoryError`` (an
  allocation too large: "out of memory"), torch's ``OutOfMemoryError``, or a
  missing optional package (``ModuleNotFoundError`` of a non-Colony-Lab module,
  with the ``pip install`` extra to add).

Any other exception (``AttributeError``, ``TypeError``, ``KeyError``, ...) is a bug
in Colony Lab, not in the user's input: it is never condensed. Its full traceback is
printed, then one ``error: unexpected ...`` line asking for a bug report, and the
exit status is 1 (so a 40-minute run that hits a bug does not have to be re-run
just to see where it broke). ``colony --debug ...`` (the flag may stand anywhere
on the line) or ``COLONY_DEBUG=1`` re-raises every exception, user errors
included, so their tracebacks show. Ctrl-C prints one ``interrupted`` line and
exits 130 (``colony train`` trainers save their checkpoint first and say where).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import re
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from colonylab.envs import registry as world_registry
from colonylab.envs.registry import UnknownNameError
from colonylab.runs import registry

console = Console()
err_console = Console(stderr=True)


class CLIError(Exception):
    """A user error: one ``error:`` line on stderr, exit status 2."""


SEED_MAX = 2**63 - 1
"""The largest ``--seed`` (torch and NumPy take any seed in ``[0, 2**63)``)."""

RESUME_OPTIONS = ("threads", "ray_address")
"""Config fields that ``colony train EXP --resume RUN_DIR`` may change: where and how
fast the run computes, not what it computes. Every other field comes from the
checkpoint (a changed one is refused, so a resumed run stays the run it was)."""

DEBUG_ENV = "COLONY_DEBUG"
"""``COLONY_DEBUG=1`` works like ``colony --debug``: tracebacks instead of one line."""

# optional packages -> the pyproject extra that installs them
_EXTRAS = {
    "mujoco": "mujoco",
    "ray": "distributed",
    "flwr": "federated",
    "scipy": "bench",
    "pyswarms": "bench",
    "pytest_benchmark": "bench",
}


# -- errors: one line ---------------------------------------------------------------------------


def _squash(text: str) -> str:
    """``text`` on one line (newlines and runs of spaces become one space)."""
    return " ".join(str(text).split())


def user_error_message(exc: BaseException) -> str | None:
    """The one-line message of an exception the user's input can cause, or None for a bug.

    See the module docstring for which exceptions count as bad input.
    """
    text = _squash(str(exc))
    if isinstance(exc, (CLIError, UnknownNameError)):
        return text
    if isinstance(exc, MemoryError) and not isinstance(exc, ValueError):
        # BoardTooLargeError is also a ValueError and carries its own advice
        detail = f": {text}" if text else ""
        return f"out of memory{detail}; use a smaller board, batch or population"
    if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (a RuntimeError)
        return f"out of GPU memory: {text[:300]}; use a smaller batch or population"
    if isinstance(exc, ModuleNotFoundError):
        top = (exc.name or "").split(".")[0]
        if not top or top == "colonylab":
            return None  # our own module missing: a bug (or a broken install)
        extra = _EXTRAS.get(top)
        hint = f"pip install 'colonylab[{extra}]'" if extra else f"pip install {top}"
        return f"this needs the optional package {top!r}, which is not installed ({hint})"
    if isinstance(exc, (ValueError, OSError)):
        return text or type(exc).__name__
    return None


def _print_error(message: str) -> None:
    """``error: message`` as one line on stderr (red when stderr is a terminal); no
    rich wrapping, so a long message stays one line."""
    stream = sys.stderr
    tag = "\x1b[1;31merror:\x1b[0m" if getattr(stream, "isatty", lambda: False)() else "error:"
    stream.write(f"{tag} {_squash(message)}\n")
    stream.flush()


class _Parser(argparse.ArgumentParser):
    """argparse, but a parse error raises :class:`CLIError` (one line) instead of
    printing the usage and exiting."""

    def error(self, message: str):  # type: ignore[override]
        message = _squash(message)
        match = re.match(r"argument (\S+?)(?:/\S+)?: (.*)", message)
        if match:
            option, reason = match[1], match[2]
            raise CLIError(reason if reason.startswith(option) else f"{option}: {reason}")
        raise CLIError(f"{self.prog}: {message}")


def _int_arg(option: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers in ``[low, high]``, refusing others with
    ``--option must be an integer >= low, got 'text'``."""
    from colonylab._checks import check_int

    def parse(text: str) -> int:
        try:
            value: Any = int(text)
        except ValueError:
            value = text
        try:
            return check_int(option, value, low, high)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _video_path(text: str) -> str:
    """``--record PATH``: refused before any work unless it ends in a video extension."""
    from colonylab.envs.render.recorder import VIDEO_EXTENSIONS

    if Path(text).suffix.lower() not in VIDEO_EXTENSIONS:
        raise argparse.ArgumentTypeError(
            f"--record {text!r} must end in {' or '.join(VIDEO_EXTENSIONS)}"
        )
    return text


def _value_after(args: list[str], flag: str) -> str | None:
    """The token given for ``flag`` in ``args`` (``--flag V`` or ``--flag=V``)."""
    for i, token in enumerate(args):
        if token == flag and i + 1 < len(args):
            return args[i + 1]
        if token.startswith(flag + "="):
            return token[len(flag) + 1 :]
    return None


def _tyro_event_line(event: Any, args: list[str]) -> str:
    """One line for a tyro parse-error event (matched by class name: tyro's event
    classes are private and new ones may appear; unknown ones get a generic line)."""
    kind = type(event).__name__
    prog = getattr(event, "prog", "colony")
    argument = getattr(event, "argument", None)
    flag = argument.display_name() if hasattr(argument, "display_name") else None
    metavar = getattr(getattr(argument, "lowered", None), "metavar", None)
    if kind == "InstantiationFailure":
        message = _squash(event.message)
        if flag is None:
            return message
        value = _value_after(args, flag)
        if value is not None and metavar and re.match(r"(invalid literal|could not)", message):
            return f"{flag} expects {metavar}, got {value!r}"
        return f"{flag} {value!r}: {message}" if value is not None else f"{flag}: {message}"
    if kind == "UnrecognizedArgs":
        return (
            f"unrecognized option(s) {' '.join(event.tokens)} for {prog}; "
            f"'{prog} --help' lists its options"
        )
    if kind == "InvalidChoice":
        return f"{flag} {event.value!r} is not one of: {', '.join(event.choices)}"
    if kind == "BadValue":
        if getattr(event, "offending_value", None) is None:
            return f"{flag} expects a value{f' ({metavar})' if metavar else ''}"
        return f"{flag} cannot take the value {event.offending_value!r}"
    if kind == "MissingArgs":
        names = [a.arg.display_name() for a in event.missing_arguments]
        return f"{prog} needs {', '.join(names)}"
    return f"{prog}: options refused ({kind}); '{prog} --help' lists them"


@contextlib.contextmanager
def _one_line_tyro_errors(prog: str, args: list[str]) -> Iterator[None]:
    """Turn tyro's boxed, multi-line parse errors into :class:`CLIError`.

    Uses tyro's parse-error hook where this tyro has it; with an older tyro, its
    printed error is captured and squeezed onto one line instead.
    """
    try:
        from tyro._errors import on_parse_error
    except ImportError:
        on_parse_error = None
    if on_parse_error is not None:

        def hook(event: Any) -> None:
            raise CLIError(_tyro_event_line(event, args))

        with on_parse_error(hook):
            yield
        return
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except SystemExit as exc:
        if exc.code in (0, None):
            raise
        lines = [
            line.strip("│╭╮╰╯─ ")
            for line in captured.getvalue().splitlines()
            if "--help" not in line and "helptext" not in line
        ]
        raise CLIError(_squash(" ".join(lines)) or f"{prog}: options refused") from None
    else:
        sys.stderr.write(captured.getvalue())


def parse_config(cls: type, args: list[str], *, prog: str, default: Any = None) -> Any:
    """Parse ``args`` into the config dataclass ``cls`` with tyro (``--help`` prints its
    help); any refusal (tyro's or the config's ``__post_init__``) is one :class:`CLIError`."""
    import tyro

    try:
        with _one_line_tyro_errors(prog, args):
            return tyro.cli(
                cls,
                args=args,
                default=default,
                prog=prog,
                description=(cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else None,
                config=(tyro.conf.FlagConversionOff,),
            )
    except (ValueError, TypeError) as exc:  # raised by the config's own validation
        raise CLIError(_squash(str(exc))) from exc


# -- helpers --------------------------------------------------------------------------------


def _print_config_help(cls: type, prog: str, default: Any) -> None:
    with contextlib.suppress(SystemExit):
        parse_config(cls, ["--help"], prog=prog, default=default)


def _metrics_table(title: str, metrics: dict[str, float]) -> Table:
    from colonylab.runs.common.tables import metrics_table

    return metrics_table(title, metrics)


def _progress():
    from colonylab.runs.common.progress import progress_bar

    return progress_bar(console)


def _world_with_options(name: str, rest: list[str], prog: str) -> Any:
    spec = world_registry.spec(name)
    cls = world_registry.config_class(name)
    default = world_registry.make_config(name)
    cfg = parse_config(cls, rest, prog=prog, default=default)
    return spec, world_registry.make(name, config=cfg)


def _split_help(argv: list[str]) -> tuple[bool, list[str]]:
    wants = any(a in ("-h", "--help") for a in argv)
    return wants, [a for a in argv if a not in ("-h", "--help")]


# -- verbs ----------------------------------------------------------------------------------


def cmd_list(_: argparse.Namespace, rest: list[str]) -> int:
    """Print worlds, agents, experiments and benchmarks, one line each."""
    sections = [
        (
            "worlds",
            {
                n: s.description + (f"; policies: {', '.join(s.policies)}" if s.policies else "")
                for n, s in world_registry.WORLDS.items()
            },
            "colony rollout",
        ),
        ("agents", dict(registry.AGENTS), ""),
        (
            "experiments",
            {
                n: s.description + (f" ({s.module} {s.variant})" if s.variant else "")
                for n, s in registry.EXPERIMENTS.items()
            },
            "colony train",
        ),
        ("benchmarks", {n: s.description for n, s in registry.BENCHMARKS.items()}, "colony bench"),
    ]
    # a middle column: worlds' versioned ids (where the registry has them), and what
    # each experiment supports beyond training (read without importing the modules)
    middle = {
        "worlds": ("id", {n: _world_id(s) for n, s in world_registry.WORLDS.items()}),
        "experiments": (
            "supports",
            {n: _experiment_supports(s) for n, s in registry.EXPERIMENTS.items()},
        ),
    }
    for title, entries, verb in sections:
        table = Table(title=f"{title}" + (f"  ({verb} NAME)" if verb else ""), title_justify="left")
        table.add_column("name", style="bold cyan", no_wrap=True)
        header, cells = middle.get(title, ("", {}))
        if title == "worlds" and console.width < 120:  # narrow terminal: the id leads the text
            entries = {n: f"{cells[n]}: {d}" if cells.get(n) else d for n, d in entries.items()}
            cells = {}
        if any(cells.values()):
            table.add_column(header, no_wrap=True)
        else:
            cells = {}
        table.add_column("description")
        for name, desc in entries.items():  # Text: "[i] [a]" in a description is not markup
            table.add_row(name, *([cells.get(name) or "-"] if cells else []), Text(desc))
        if not entries:
            table.add_row("-", *(["-"] if cells else []), "none registered yet")
        console.print(table)
    return 0


def _world_id(spec: Any) -> str | None:
    """The world's versioned id (``colonylab/Battle-v0``) when the registry records one
    apart from its name."""
    for attr in ("id", "versioned_id", "env_id", "gym_id"):
        value = getattr(spec, attr, None)
        if isinstance(value, str) and value and value != spec.name:
            return value
    return None


def _experiment_supports(spec: registry.RunSpec) -> str:
    """``resume, eval``: what ``colony train --resume`` / ``colony eval`` accept."""
    return ", ".join(
        word for word, ok in (("resume", spec.resumable), ("eval", spec.evaluable)) if ok
    )


def _make_policy(world: Any, spec: Any, policy: str, seed: int):
    """The named scripted policy; also made the world's ``default_policy`` (the viewer
    and the recorder step worlds without actions)."""
    if policy is None and not spec.policies:
        return lambda obs: None  # a world without agents (cellular automata)
    if policy not in spec.policies:
        known = ", ".join(spec.policies) if spec.policies else "none (it has no agents)"
        raise CLIError(f"world {spec.name!r} has no policy {policy!r}; its policies: {known}")
    act = world.policy(policy, seed=seed)
    if hasattr(world, "default_policy"):
        world.default_policy = act
    return act


TEAM_WORLDS = ("battle_v4",)


def _set_teams(world: Any, spec: Any, ns: argparse.Namespace) -> bool:
    """``--red X --blue Y``: each army of a two-army battle played by a named team
    (``runs/teams.py``: random, greedy, noop, a battle-selfplay checkpoint or a .pt file).
    False when neither flag is given."""
    red, blue = getattr(ns, "red", None), getattr(ns, "blue", None)
    if red is None and blue is None:
        return False
    if spec.name not in TEAM_WORLDS:
        raise CLIError(f"--red/--blue are for {', '.join(TEAM_WORLDS)}, not {spec.name!r}")
    if ns.policy is not None:
        raise CLIError("give either --policy or --red/--blue, not both")
    from colonylab.runs import teams

    teams.set_teams(world, red or "greedy", blue or "greedy", seed=ns.seed)
    return True


def _overlay_fn(world: Any):
    """Emergence numbers for the viewer overlay of grid worlds (None for others)."""
    if all(hasattr(world, a) for a in ("grid", "pos", "team", "alive", "attack_target")):
        from colonylab.emergence.overlay import grid_overlay

        return grid_overlay
    return None


def cmd_rollout(ns: argparse.Namespace, rest: list[str]) -> int:
    """Step a world, optionally rendering it live or recording it."""
    prog = f"colony rollout {ns.world}"
    spec, world = _world_with_options(ns.world, rest, prog)
    if _set_teams(world, spec, ns):
        act = lambda obs: world.default_policy(obs)  # noqa: E731
    else:
        act = _make_policy(world, spec, ns.policy or spec.default_policy, ns.seed)
    if ns.render == "human":
        from colonylab.envs.render.viewer import Viewer, display_available

        if not display_available():
            raise CLIError(
                "--render human needs a display and none was found (no DISPLAY, or "
                "SDL_VIDEODRIVER=dummy); use --record PATH.gif|.mp4 to record the rollout instead"
            )
        world.reset(seed=ns.seed)
        with Viewer(world, title=prog, metrics_fn=_overlay_fn(world)) as viewer:
            steps = viewer.run(max_steps=ns.steps, record_path=ns.record)
        console.print(_metrics_table(f"{ns.world} after {steps} steps", world.metrics()))
        return 0
    if ns.record is not None:
        from colonylab.envs.render.viewer import record_rollout

        world.reset(seed=ns.seed)
        path = record_rollout(world, ns.record, ns.steps, fps=ns.fps, metrics_fn=_overlay_fn(world))
        console.print(f"recorded {ns.steps} steps to [bold]{path}[/]")
        console.print(_metrics_table(f"{ns.world} after {world.step_count} steps", world.metrics()))
        return 0
    obs = world.reset(seed=ns.seed)
    frames = []
    t0 = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"rollout {ns.world}", total=ns.steps, rate="")
        for i in range(ns.steps):
            obs, *_ = world.step(act(obs))
            if ns.render == "rgb_array":
                frames.append(world.render_rgb())
            if i % 16 == 15 or i == ns.steps - 1:
                rate = (i + 1) / (time.perf_counter() - t0)
                progress.update(task, completed=i + 1, rate=f"{rate:,.0f} steps/s")
    elapsed = time.perf_counter() - t0
    metrics = {"steps": ns.steps, "steps_per_s": ns.steps / max(elapsed, 1e-9), **world.metrics()}
    if frames:
        metrics["frames"] = len(frames)
    console.print(_metrics_table(f"{ns.world} after {ns.steps} steps (seed {ns.seed})", metrics))
    return 0


def cmd_watch(ns: argparse.Namespace, rest: list[str]) -> int:
    """Open the live viewer on a world or an experiment's checkpoint."""
    from colonylab.envs.render.viewer import Viewer, display_available, record_rollout

    if ns.target in world_registry.WORLDS:
        if ns.checkpoint:
            raise CLIError("--checkpoint is for experiments; worlds start from --seed")
        spec, world = _world_with_options(ns.target, rest, f"colony watch {ns.target}")
        if not _set_teams(world, spec, ns):
            _make_policy(world, spec, ns.policy or spec.default_policy, ns.seed)
        world.reset(seed=ns.seed)
    elif ns.target in registry.EXPERIMENTS:
        if ns.red is not None or ns.blue is not None:
            raise CLIError(f"--red/--blue are for {', '.join(TEAM_WORLDS)}, not {ns.target!r}")
        spec = registry.experiment(ns.target)
        module = spec.load()
        if not hasattr(module, "watch"):
            raise CLIError(f"experiment {ns.target!r} has nothing to watch")
        default = spec.default_config(module.Config)
        cfg = parse_config(module.Config, rest, prog=f"colony watch {ns.target}", default=default)
        spec.check_variant(cfg)
        world = module.watch(cfg, ns.checkpoint)
    else:
        known = list(world_registry.WORLDS) + list(registry.EXPERIMENTS)
        raise UnknownNameError("world or experiment", ns.target, known, "worlds and experiments")
    if not display_available():
        path = Path(ns.record or f"runs/out/watch/{ns.target}-{time.strftime('%Y%m%d-%H%M%S')}.gif")
        console.print(
            f"[yellow]no display found[/] (DISPLAY unset or SDL_VIDEODRIVER=dummy): "
            f"recording {ns.steps} steps to [bold]{path}[/] instead"
        )
        record_rollout(world, path, ns.steps, fps=ns.fps, metrics_fn=_overlay_fn(world))
        console.print(f"wrote [bold]{path}[/]")
        return 0
    with Viewer(world, title=f"colony watch {ns.target}", metrics_fn=_overlay_fn(world)) as viewer:
        viewer.run(max_steps=None, record_path=ns.record)
    return 0


def cmd_train(ns: argparse.Namespace, rest: list[str]) -> int:
    """Run an experiment's ``main(cfg)``: the same as ``python -m colonylab.runs.<file>``;
    with ``--resume RUN_DIR``, ``main(cfg_from_its_checkpoint, resume=RUN_DIR)``."""
    if ns.experiment is None:
        cmd_list(ns, [])
        raise CLIError("name an experiment: colony train EXPERIMENT [options]")
    spec = registry.experiment(ns.experiment)
    module = spec.load()
    prog = f"colony train {spec.name}"
    resumable = registry.accepts_resume(module.main)
    started, cfg, run_dir = time.time(), None, None
    try:
        if ns.resume is None:
            cfg = parse_config(
                module.Config, rest, prog=prog, default=spec.default_config(module.Config)
            )
            spec.check_variant(cfg)
            module.main(cfg)
        else:
            cfg, run_dir = _resume_config(spec.name, module, ns.resume, rest, prog)
            module.main(cfg, resume=str(run_dir))
    except KeyboardInterrupt as exc:
        if resumable and cfg is not None:
            run_dir = run_dir or _checkpointed_run_since(spec.name, cfg, started)
            where = shlex.quote(str(run_dir)) if run_dir is not None else "RUN_DIR"
            exc.colony_hint = (  # type: ignore[attr-defined]
                f"'colony train {spec.name} --resume {where}' continues from its last checkpoint"
            )
        raise
    return 0


def _checkpointed_run_since(name: str, cfg: Any, since: float) -> Path | None:
    """The run directory of ``name`` whose ``checkpoints/latest.pt`` was written last,
    after ``since`` (the run this command started), under the config's ``out`` root."""
    from colonylab.runs.common.checkpoint import LATEST
    from colonylab.runs.common.rundir import DEFAULT_ROOT

    root = Path(getattr(cfg, "out", None) or DEFAULT_ROOT) / name
    written = []
    for path in root.glob(f"*/checkpoints/{LATEST}"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime >= since - 1:
                written.append((path.stat().st_mtime, path.parent.parent))
    return max(written)[1] if written else None


def _resume_config(
    name: str, module: Any, resume: str, rest: list[str], prog: str
) -> tuple[Any, Path]:
    """The Config saved in ``RESUME``'s latest checkpoint (with the options of
    :data:`RESUME_OPTIONS` from ``rest`` applied) and the run directory to continue."""
    from colonylab.runs.common.checkpoint import (
        LATEST,
        config_from_plain,
        latest_checkpoint,
        load_checkpoint,
    )

    if not registry.accepts_resume(module.main):
        able = registry.resumable_experiments()
        raise CLIError(
            f"experiment {name!r} cannot resume a run (its main() takes no 'resume'); "
            f"experiments that can: {', '.join(able) if able else 'none yet'}"
        )
    path = Path(resume)
    if path.is_file():
        if path.name != LATEST or path.parent.name != "checkpoints":
            raise CLIError(
                f"--resume {resume!r} is a file; give the run directory that holds "
                f"checkpoints/{LATEST} instead"
            )
        run_dir = path.parent.parent
    else:
        run_dir = path
    checkpoint = latest_checkpoint(run_dir)  # FileNotFoundError naming what is missing
    ckpt = load_checkpoint(checkpoint, name)  # CheckpointError: not one, or another kind
    if not isinstance(ckpt.get("config"), dict):
        raise CLIError(f"{str(checkpoint)!r} holds no saved config, so {name!r} cannot resume it")
    try:
        # a variant's defaults first: a config saved without them is still its variant's
        defaults = registry.experiment(name).defaults
        saved = config_from_plain(module.Config, {**defaults, **ckpt["config"]})
    except TypeError as exc:
        raise CLIError(
            f"{str(checkpoint)!r}: its saved config does not fit {name!r}'s Config: {exc}"
        ) from exc
    if not rest:
        return saved, run_dir
    cfg = parse_config(module.Config, rest, prog=f"{prog} --resume {resume}", default=saved)
    changed = [
        (option, old, new)
        for option, old, new in _changed_fields(saved, cfg)
        if option.rsplit(".", 1)[-1].replace("-", "_") not in RESUME_OPTIONS
    ]
    if changed:
        listing = "; ".join(f"--{o} (saved {a!r}, given {b!r})" for o, a, b in changed)
        allowed = ", ".join("--" + o.replace("_", "-") for o in RESUME_OPTIONS)
        raise CLIError(
            f"--resume continues {str(run_dir)!r} with its saved config and cannot change "
            f"{listing}; only {allowed} may be given with --resume"
        )
    return cfg, run_dir


def _changed_fields(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(option, old, new)`` for every (nested) dataclass field that differs."""
    changed = []
    for f in dataclasses.fields(old):
        a, b = getattr(old, f.name), getattr(new, f.name)
        option = prefix + f.name.replace("_", "-")
        if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b) and type(a) is type(b):
            changed += _changed_fields(a, b, prefix=option + ".")
        elif a != b:
            changed.append((option, a, b))
    return changed


def cmd_eval(ns: argparse.Namespace, rest: list[str]) -> int:
    """Evaluate an experiment's checkpoint (its ``evaluate(cfg, checkpoint) -> dict``)."""
    spec = registry.experiment(ns.experiment)
    module = spec.load()
    if not hasattr(module, "evaluate"):
        evaluable = [n for n, s in registry.EXPERIMENTS.items() if s.evaluable]
        raise CLIError(
            f"experiment {ns.experiment!r} has no evaluation; evaluable: {', '.join(evaluable)}"
        )
    default = spec.default_config(module.Config)
    cfg = parse_config(module.Config, rest, prog=f"colony eval {ns.experiment}", default=default)
    spec.check_variant(cfg)
    try:
        results = module.evaluate(cfg, ns.checkpoint)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    title = f"{ns.experiment}: {Path(str(results.get('checkpoint', 'shipped'))).name}"
    scalars = {k: v for k, v in results.items() if _is_number(v)}
    if scalars:  # evaluations with rows (sensory-*) print their own table
        console.print(_metrics_table(title, scalars))
    if ns.json:
        import json

        path = Path(ns.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
        console.print(f"wrote [bold]{path}[/]")
    return 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def cmd_bench(ns: argparse.Namespace, rest: list[str]) -> int:
    """Run a benchmark suite; prints a table, writes JSON with ``--json``."""
    module = registry.benchmark(ns.suite).load()
    args = rest + (["--json", ns.json] if ns.json else [])
    cfg = parse_config(module.Config, args, prog=f"colony bench {ns.suite}")
    module.main(cfg)
    return 0


def cmd_demo(ns: argparse.Namespace, rest: list[str]) -> int:
    """The main job: a battle of thousands (the learned army vs greedy), watched live or recorded."""
    from colonylab.runs import demo

    cfg = parse_config(demo.Config, rest, prog="colony demo")
    demo.main(cfg)
    return 0


# -- parser -----------------------------------------------------------------------------------


def _add_record_args(parser: argparse.ArgumentParser, record_help: str) -> None:
    parser.add_argument("--record", type=_video_path, default=None, help=record_help)
    parser.add_argument(
        "--fps", type=_int_arg("--fps", 1), default=30, help="frames per second of recordings"
    )


def _add_team_args(parser: argparse.ArgumentParser) -> None:
    for side in ("red", "blue"):
        parser.add_argument(
            f"--{side}",
            default=None,
            metavar="TEAM",
            help=f"battle_v4: who plays the {side} army -- random, greedy, noop, a shipped "
            "checkpoint (battle-selfplay) or a .pt file (default greedy when the other is given)",
        )


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; world/experiment options are parsed by tyro afterwards."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="colony",
        description="Colony Lab: run world rollouts, watch them live, train collectives.",
        epilog=(
            "examples:\n"
            "  colony demo                              a battle of 4,000 soldiers, live or recorded\n"
            "  colony list                              worlds, agents, experiments, benchmarks\n"
            "  colony rollout life --steps 500 --size 512 --rule B36/S23\n"
            "  colony watch lenia                       live pygame window\n"
            "  colony watch battle_v4 --red battle-selfplay --blue greedy --map-size 100\n"
            "  colony train life-soup --steps 300\n"
            "  colony train nca-grow --resume runs/out/nca-grow/RUN   continue a stopped run\n"
            "  colony train cartpole-pso --evaluator ray --ray-address HOST:6379\n"
            "  colony eval nca-grow --json eval.json     score a shipped checkpoint\n"
            "  colony bench life --json bench.json\n"
            "\n'colony VERB --help' explains each verb; 'colony rollout WORLD --help' also\n"
            "lists the world's own options. Population experiments take --evaluator\n"
            "batched|loop|ray and --ray-address (a running Ray cluster; default: none,\n"
            "in-process). Training writes RUN_DIR/checkpoints/latest.pt as it goes (and on\n"
            "Ctrl-C); 'colony train EXP --resume RUN_DIR' continues it ('colony list' shows\n"
            "which experiments can).\n"
            "\nA bad input prints one 'error: ...' line and exits 2; --debug (anywhere on\n"
            f"the line) or {DEBUG_ENV}=1 shows the traceback instead."
        ),
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the full traceback of an error instead of one line (also {DEBUG_ENV}=1)",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")

    sub.add_parser("list", help="list worlds, agents, experiments and benchmarks")

    p = sub.add_parser(
        "rollout",
        help="step a world (optionally render or record it)",
        description="Step WORLD for --steps steps. Extra options (e.g. --size 512 --rule B36/S23)"
        " are the world's config fields: see 'colony rollout WORLD --help'.",
        add_help=False,
    )
    p.add_argument("world", help="a world name (colony list)")
    p.add_argument(
        "--steps", type=_int_arg("--steps", 1), default=200, help="steps to run (default 200)"
    )
    p.add_argument(
        "--seed",
        type=_int_arg("--seed", 0, SEED_MAX),
        default=0,
        help="seed of the world's reset (default 0)",
    )
    p.add_argument(
        "--policy",
        default=None,
        help="scripted policy for worlds with actions (default: the world's own, e.g. "
        "greedy-vs-random for battle; 'colony list' names them)",
    )
    p.add_argument(
        "--render",
        choices=["human", "rgb_array", "none"],
        default="none",
        help="human: live pygame window; rgb_array: render frames; none (default)",
    )
    _add_record_args(p, "record a GIF or MP4 to this path")

    _add_team_args(p)

    p = sub.add_parser(
        "watch",
        help="live pygame viewer of a world or experiment (records without a display)",
        description="Open a live viewer. Keys: space pause, . step, +/- speed, wheel zoom, "
        "drag pan, 0 fit, s screenshot, r record, h help, q quit.",
        add_help=False,
    )
    p.add_argument("target", help="a world or an experiment name")
    p.add_argument("--checkpoint", default=None, help="experiment checkpoint to load")
    p.add_argument(
        "--policy", default=None, help="scripted policy of a world (default: the world's own)"
    )
    p.add_argument(
        "--seed", type=_int_arg("--seed", 0, SEED_MAX), default=0, help="seed of the world's reset"
    )
    p.add_argument(
        "--steps",
        type=_int_arg("--steps", 1),
        default=300,
        help="steps to record without a display",
    )
    _add_record_args(p, "also record to this GIF/MP4 path")

    _add_team_args(p)

    p = sub.add_parser(
        "train",
        help="run an experiment (same as running its file in runs/)",
        description="Run EXPERIMENT; its options are its Config fields:\n"
        "'colony train EXPERIMENT --help'. Population experiments take\n"
        "--evaluator batched|loop|ray and --ray-address ADDRESS (a running Ray\n"
        "cluster; default: none, in-process). Trainers write\n"
        "RUN_DIR/checkpoints/latest.pt as they go and on Ctrl-C; --resume RUN_DIR\n"
        "continues that run with the config saved in it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    p.add_argument("experiment", nargs="?", default=None, help="an experiment name")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue the run in RUN_DIR from RUN_DIR/checkpoints/latest.pt with its saved "
        "config (only "
        + ", ".join("--" + o.replace("_", "-") for o in RESUME_OPTIONS)
        + " may be given as well); 'colony list' shows the experiments that can resume",
    )

    p = sub.add_parser(
        "eval",
        help="evaluate an experiment's checkpoint (default: the one shipped): table + JSON",
        description="Evaluate EXPERIMENT's trained checkpoint (--checkpoint, else the one "
        "shipped with Colony Lab); its options are its Config fields: "
        "'colony eval EXPERIMENT --help'.",
        add_help=False,
    )
    p.add_argument("experiment", help="an experiment name (colony list)")
    p.add_argument("--checkpoint", default=None, help="checkpoint to evaluate")
    p.add_argument("--json", default=None, help="write the results as JSON to this path")

    p = sub.add_parser(
        "bench",
        help="run a benchmark suite: table + JSON",
        description="Run benchmark SUITE against its baseline in the same run; "
        "'colony bench SUITE --help' lists its options.",
        add_help=False,
    )
    p.add_argument("suite", help="a benchmark name (colony list)")
    p.add_argument("--json", default=None, help="write the results as JSON to this path")

    sub.add_parser(
        "demo",
        help="the main job: a battle of thousands (live window, or recorded headless)",
        add_help=False,
    )
    return parser


def _version() -> str:
    from colonylab import __version__

    return f"colony {__version__}"


_VERBS = {
    "list": cmd_list,
    "rollout": cmd_rollout,
    "watch": cmd_watch,
    "train": cmd_train,
    "eval": cmd_eval,
    "bench": cmd_bench,
    "demo": cmd_demo,
}


def _verb_help(parser: argparse.ArgumentParser, verb: str, argv: list[str]) -> None:
    """``--help`` of a verb, plus the options of the named world/experiment/suite."""
    sub = next(a for a in parser._subparsers._group_actions if a.dest == "verb")  # type: ignore[union-attr]
    sub.choices[verb].print_help()
    name = _named_target(sub.choices[verb], argv)
    if verb == "rollout" and name in world_registry.WORLDS:
        print(f"\nOptions of world {name!r}:")
        cls = world_registry.config_class(name)
        _print_config_help(cls, f"colony rollout {name}", world_registry.make_config(name))
    elif verb in ("train", "watch", "eval") and name in registry.EXPERIMENTS:
        print(f"\nOptions of experiment {name!r}:")
        spec = registry.experiment(name)
        cls = spec.load().Config
        _print_config_help(cls, f"colony {verb} {name}", spec.default_config(cls))
    elif verb == "watch" and name in world_registry.WORLDS:
        print(f"\nOptions of world {name!r}:")
        cls = world_registry.config_class(name)
        _print_config_help(cls, f"colony watch {name}", world_registry.make_config(name))
    elif verb == "bench" and name in registry.BENCHMARKS:
        print(f"\nOptions of benchmark {name!r}:")
        _print_config_help(registry.benchmark(name).load().Config, f"colony bench {name}", None)
    elif verb == "demo":
        from colonylab.runs import demo

        _print_config_help(demo.Config, "colony demo", None)


def _named_target(verb_parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """The world / experiment / suite named in a verb's ``argv`` (None when none is)."""
    dest = {"rollout": "world", "watch": "target", "train": "experiment", "eval": "experiment"}
    with contextlib.suppress(CLIError):
        ns, _ = verb_parser.parse_known_args(argv)
        name = getattr(ns, dest.get(verb_parser.prog.split()[-1], "suite"), None)
        if name is not None:
            return name
    positional = [a for a in argv if not a.startswith("-")]
    return positional[0] if positional else None


def _debug_requested(argv: list[str]) -> bool:
    """``--debug`` anywhere in ``argv``, or ``COLONY_DEBUG`` set to a true value."""
    env = os.environ.get(DEBUG_ENV, "").strip().lower()
    return "--debug" in argv or env not in ("", "0", "false", "no", "off")


def _run(argv: list[str]) -> int:
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 0
    verb = argv[0]
    if not verb.startswith("-") and verb not in _VERBS:
        raise UnknownNameError("verb", verb, _VERBS)
    if verb in _VERBS and verb != "list":
        wants_help, rest_argv = _split_help(argv[1:])
        if wants_help:
            with contextlib.suppress(UnknownNameError):
                _verb_help(parser, verb, rest_argv)
            return 0
    ns, rest = parser.parse_known_args(argv)
    if ns.verb is None:
        if rest:
            raise CLIError(f"unrecognized option(s) {' '.join(rest)}; 'colony --help' lists them")
        parser.print_help()
        return 0
    if ns.verb == "list" and rest:
        raise CLIError(f"colony list takes no arguments, got {' '.join(rest)}")
    return _VERBS[ns.verb](ns, rest)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``colony`` command: 0 done, 2 bad input (one ``error:`` line),
    1 a bug (traceback + one line), 130 interrupted. See the module docstring."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(argv)
    argv = [a for a in argv if a != "--debug"]
    try:
        return _run(argv)
    except SystemExit as exc:  # --help and --version exit through argparse / tyro
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        _print_error(str(exc.code))
        return 2
    except KeyboardInterrupt as exc:
        if debug:
            raise
        hint = getattr(exc, "colony_hint", None)
        sys.stderr.write(f"interrupted{'; ' + hint if hint else ''}\n")
        return 130
    except Exception as exc:
        if debug:
            raise
        message = user_error_message(exc)
        if message is not None:
            _print_error(message)
            return 2
        traceback.print_exc()
        detail = _squash(str(exc))[:200]
        _print_error(
            f"unexpected {type(exc).__name__}{f' ({detail})' if detail else ''}: a bug in "
            "Colony Lab, not in your input; please report it with the traceback above"
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
