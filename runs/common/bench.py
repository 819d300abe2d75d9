"""What every benchmark reports besides its numbers: the machine, the threads each side
used, and a JSON file."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from rich.console import Console


def machine_info(device: torch.device) -> dict[str, Any]:
    """Where the numbers come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "arch": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "device": str(device),
    }
    if hasattr(os, "getloadavg"):
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def write_json(path: str | Path, payload: dict[str, Any], console: Console | None = None) -> Path:
    """Write ``payload`` as indented JSON (creating folders) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    if console is not None:
        console.print(f"wrote [bold]{path}[/]")
    return path


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads (None or 0: leave as is);
    the previous setting comes back afterwards."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def threads_info(ours: int | str, baseline: int | str, **notes: Any) -> dict[str, Any]:
    """The threads each side of a comparison used, for the table and the JSON:
    ``{"ours": 1, "baseline": 1, **notes}`` (``notes`` say what the numbers count, e.g.
    ``library="Numba"``)."""
    return {"ours": ours, "baseline": baseline, **notes}


def threads_text(info: dict[str, Any]) -> str:
    """``"threads: ours 2, baseline 1"`` (plus any notes) for a table title or footer."""
    rest = ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("ours", "baseline"))
    text = f"threads: ours {info['ours']}, baseline {info['baseline']}"
    return f"{text} ({rest})" if rest else text


def check_checkpoint_option(path: str | None, experiment: str) -> None:
    """A benchmark's ``--checkpoint``: None (the shipped one) or an existing file, else
    ``ValueError`` saying how to make one (``colony train <experiment>``)."""
    if path is not None and not Path(path).is_file():
        raise ValueError(
            f"--checkpoint {path!r} does not exist; make one with "
            f"'colony train {experiment}', or leave it out to use the shipped one"
        )


def best_time(
    run: Callable[[], Any], repeats: int, device: torch.device | None = None
) -> tuple[float, Any]:
    """``(best seconds, last result)`` of ``repeats`` timed calls of ``run`` (CUDA
    synchronised before each clock stops)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best, result


def results_header(
    suite: str, device: torch.device, threads: dict[str, Any], config: Any, **more: Any
) -> dict[str, Any]:
    """The fields every benchmark's JSON starts with: ``suite``, ``machine``, ``torch``,
    ``more`` (e.g. the baseline library's version), ``threads``, ``device``, ``config``."""
    return {
        "suite": suite,
        "machine": machine_info(device),
        "torch": torch.__version__,
        **more,
        "threads": threads,
        "device": str(device),
        "config": dataclasses.asdict(config),
    }
