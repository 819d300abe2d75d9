"""The ``colony`` command: list, rollout, watch, train, eval, bench, demo.

Every verb has ``--help``. World, experiment and benchmark options are the
fields of their config dataclasses (parsed by tyro), so
``colony rollout life --help`` lists the Life world's options too.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from colonylab.envs import registry as world_registry
from colonylab.envs.registry import UnknownNameError
from colonylab.runs import registry

console = Console()
err_console = Console(stderr=True)


class CLIError(Exception):
    """A user error: printed in red, exit status 2."""


# -- helpers --------------------------------------------------------------------------------


def parse_config(cls: type, args: list[str], *, prog: str, default: Any = None) -> Any:
    """Parse ``args`` into the config dataclass ``cls`` with tyro (``--help`` prints its help)."""
    import tyro

    try:
        return tyro.cli(
            cls,
            args=args,
            default=default,
            prog=prog,
            description=(cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else None,
            config=(tyro.conf.FlagConversionOff,),
        )
    except (ValueError, TypeError) as exc:  # raised by the config's own validation
        raise CLIError(str(exc)) from exc


def _print_config_help(cls: type, prog: str, default: Any) -> None:
    with contextlib.suppress(SystemExit):
        parse_config(cls, ["--help"], prog=prog, default=default)


def _metrics_table(title: str, metrics: dict[str, float]) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        text = f"{value:,}" if isinstance(value, int) else f"{value:.4g}"
        table.add_row(key, text)
    return table


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
                n: s.description
                + (
                    f"; policies: {', '.join(p for p in s.policies if p != 'none')}"
                    if s.policies != ("none",)
                    else ""
                )
                for n, s in world_registry.WORLDS.items()
            },
            "colony rollout",
        ),
        ("agents", dict(registry.AGENTS), ""),
        (
            "experiments",
            {n: s.description for n, s in registry.EXPERIMENTS.items()},
            "colony train",
        ),
        ("benchmarks", {n: s.description for n, s in registry.BENCHMARKS.items()}, "colony bench"),
    ]
    for title, entries, verb in sections:
        table = Table(title=f"{title}" + (f"  ({verb} NAME)" if verb else ""), title_justify="left")
        table.add_column("name", style="bold cyan", no_wrap=True)
        table.add_column("description")
        for name, desc in entries.items():
            table.add_row(name, desc)
        if not entries:
            table.add_row("-", "none registered yet")
        console.print(table)
    return 0


def _make_policy(world: Any, spec: Any, policy: str, seed: int):
    """The named scripted policy; also made the world's ``default_policy`` (the viewer
    and the recorder step worlds without actions)."""
    if policy not in spec.policies:
        raise CLIError(
            f"world {spec.name!r} has no policy {policy!r}; its policies: {', '.join(spec.policies)}"
        )
    if policy == "none":
        return lambda obs: None
    act = world.policy(policy, seed=seed)
    if hasattr(world, "default_policy"):
        world.default_policy = act
    return act


def _overlay_fn(world: Any):
    """Emergence numbers for the viewer overlay of grid worlds (None for others)."""
    if all(hasattr(world, a) for a in ("grid", "pos", "team", "alive", "attack_target")):
        from colonylab.runs.common.grid_metrics import grid_overlay

        return grid_overlay
    return None


def cmd_rollout(ns: argparse.Namespace, rest: list[str]) -> int:
    """Step a world, optionally rendering it live or recording it."""
    prog = f"colony rollout {ns.world}"
    spec, world = _world_with_options(ns.world, rest, prog)
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
        _make_policy(world, spec, ns.policy or spec.default_policy, ns.seed)
        world.reset(seed=ns.seed)
    elif ns.target in registry.EXPERIMENTS:
        module = registry.experiment(ns.target).load()
        if not hasattr(module, "watch"):
            raise CLIError(f"experiment {ns.target!r} has nothing to watch")
        cfg = parse_config(module.Config, rest, prog=f"colony watch {ns.target}")
        world = module.watch(cfg, ns.checkpoint)
    else:
        known = list(world_registry.WORLDS) + list(registry.EXPERIMENTS)
        raise UnknownNameError("world or experiment", ns.target, known)
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
    """Run an experiment's ``main(cfg)``: the same as ``python -m colonylab.runs.<file>``."""
    if ns.experiment is None:
        cmd_list(ns, [])
        raise CLIError("name an experiment: colony train EXPERIMENT [options]")
    module = registry.experiment(ns.experiment).load()
    cfg = parse_config(module.Config, rest, prog=f"colony train {ns.experiment}")
    module.main(cfg)
    return 0


def cmd_eval(ns: argparse.Namespace, rest: list[str]) -> int:
    """Evaluate an experiment's checkpoint (its ``evaluate(cfg, checkpoint) -> dict``)."""
    module = registry.experiment(ns.experiment).load()
    if not hasattr(module, "evaluate"):
        evaluable = [n for n, s in registry.EXPERIMENTS.items() if s.evaluable]
        raise CLIError(
            f"experiment {ns.experiment!r} has no evaluation; evaluable: {', '.join(evaluable)}"
        )
    cfg = parse_config(module.Config, rest, prog=f"colony eval {ns.experiment}")
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
    """The main job: a battle of thousands (greedy vs random), watched live or recorded."""
    from colonylab.runs import demo

    cfg = parse_config(demo.Config, rest, prog="colony demo")
    demo.main(cfg)
    return 0


# -- parser -----------------------------------------------------------------------------------


def _add_record_args(parser: argparse.ArgumentParser, record_help: str) -> None:
    parser.add_argument("--record", default=None, help=record_help)
    parser.add_argument("--fps", type=int, default=30, help="frames per second of recordings")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; world/experiment options are parsed by tyro afterwards."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="colony",
        description="Colony Lab: run world rollouts, watch them live, train collectives.",
        epilog=(
            "examples:\n"
            "  colony demo                              a battle of 4,000 soldiers, live or recorded\n"
            "  colony list                              worlds, agents, experiments, benchmarks\n"
            "  colony rollout life --steps 500 --size 512 --rule B36/S23\n"
            "  colony watch lenia                       live pygame window\n"
            "  colony train life-soup --steps 300\n"
            "  colony eval nca-grow --json eval.json     score a shipped checkpoint\n"
            "  colony bench life --json bench.json\n"
            "\n'colony VERB --help' explains each verb; 'colony rollout WORLD --help' also\n"
            "lists the world's own options."
        ),
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=_version())
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
    p.add_argument("--steps", type=int, default=200, help="steps to run (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the world's reset (default 0)")
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
    p.add_argument("--seed", type=int, default=0, help="seed of the world's reset")
    p.add_argument("--steps", type=int, default=300, help="steps to record without a display")
    _add_record_args(p, "also record to this GIF/MP4 path")

    p = sub.add_parser(
        "train",
        help="run an experiment (same as running its file in runs/)",
        description="Run EXPERIMENT; its options are its Config fields: "
        "'colony train EXPERIMENT --help'.",
        add_help=False,
    )
    p.add_argument("experiment", nargs="?", default=None, help="an experiment name")

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
    positional = [a for a in argv if not a.startswith("-")]
    name = positional[0] if positional else None
    if verb == "rollout" and name in world_registry.WORLDS:
        print(f"\nOptions of world {name!r}:")
        cls = world_registry.config_class(name)
        _print_config_help(cls, f"colony rollout {name}", world_registry.make_config(name))
    elif verb in ("train", "watch", "eval") and name in registry.EXPERIMENTS:
        print(f"\nOptions of experiment {name!r}:")
        _print_config_help(registry.experiment(name).load().Config, f"colony {verb} {name}", None)
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``colony`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 0
    verb = argv[0]
    if verb in _VERBS and verb != "list":
        wants_help, rest_argv = _split_help(argv[1:])
        if wants_help:
            with contextlib.suppress(UnknownNameError):
                _verb_help(parser, verb, rest_argv)
            return 0
    try:
        ns, rest = parser.parse_known_args(argv)
        if ns.verb is None:
            parser.print_help()
            return 0
        if ns.verb == "list" and rest:
            raise CLIError(f"colony list takes no arguments, got {' '.join(rest)}")
        return _VERBS[ns.verb](ns, rest)
    except (UnknownNameError, CLIError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    except SystemExit as exc:  # tyro exits after printing a parse error or --help
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
