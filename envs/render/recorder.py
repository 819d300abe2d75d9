"""Writing world pictures to disk: GIF / MP4 videos and PNG stills.

``VideoRecorder`` picks the format from the file extension:

========  ====================================================================
``.gif``  imageio's pillow plugin, loops forever. Frames are held in memory
          until ``close()`` (that is how Pillow writes animated GIFs), so use
          ``max_size`` for long rollouts of big worlds.
``.mp4``  imageio-ffmpeg, H.264 (libx264, yuv420p) streamed to disk frame by
          frame; odd widths / heights are padded by one black row / column.
========  ====================================================================
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

__all__ = ["VIDEO_EXTENSIONS", "VideoRecorder", "save_png"]

VIDEO_EXTENSIONS: tuple[str, ...] = (".gif", ".mp4")


def _check_frame(frame: Any, what: str = "frame") -> np.ndarray:
    """Return ``frame`` as uint8[H, W, 3] (RGBA loses its alpha) or raise a ValueError."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"{what} has shape {frame.shape}; expected uint8[H, W, 3] (RGB)")
    if frame.dtype != np.uint8:
        raise ValueError(
            f"{what} has dtype {frame.dtype}; expected uint8 (scale floats in [0, 1] by 255 "
            "and cast, or use colonylab.envs.render.apply_colormap)"
        )
    return frame[..., :3]


def save_png(path: str | Path, frame: np.ndarray) -> Path:
    """Write one RGB frame as a PNG, creating parent directories.

    Args:
        path: destination; should end in ``.png``.
        frame: uint8[H, W, 3].

    Returns:
        The path written.

    Raises:
        ValueError: if ``path`` does not end in ``.png`` or ``frame`` is not uint8[H, W, 3].
    """
    import imageio.v3 as iio

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"save_png path {str(path)!r} must end in .png")
    frame = _check_frame(frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.ascontiguousarray(frame), extension=".png")
    return path


class ClosesOnExit:
    """``with obj: ...`` closes ``obj`` on the way out (its ``close()``): the recorder
    and the viewer."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class VideoRecorder(ClosesOnExit):
    """Append RGB frames to a GIF or MP4 file.

    Example:
        >>> with VideoRecorder("runs/out/demo/media/life.mp4", fps=30) as rec:  # doctest: +SKIP
        ...     for _ in range(100):
        ...         world.step()
        ...         rec.add(world.render_rgb())

    Args:
        path: destination ending in ``.gif`` or ``.mp4`` (case-insensitive); parent
            directories are created on the first frame.
        fps: playback frames per second (> 0).
        max_size: if given, frames whose longer side exceeds it are shrunk by an integer
            stride (nearest neighbour) so the longer side is at most ``max_size``.
        quality: MP4 quality, 1 (worst) .. 10 (best; 7 is x264 CRF 15); ignored for GIF.

    Attributes:
        path: the destination ``Path``.
        fps: playback rate.
        frames_written: frames accepted by ``add`` so far. (Pillow merges identical
            consecutive GIF frames into one longer frame, so a GIF may hold fewer.)

    Raises:
        ValueError: for an unsupported extension, a non-positive fps / max_size, or
            (from ``add``) a frame that is not uint8[H, W, 3] or whose shape differs from
            the first frame's.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float = 30,
        *,
        max_size: int | None = None,
        quality: float = 7.0,
    ) -> None:
        self.path = Path(path)
        self.format = self.path.suffix.lower()
        if self.format not in VIDEO_EXTENSIONS:
            raise ValueError(
                f"unsupported video extension {self.path.suffix or '(none)'!r} in {str(path)!r}; "
                f"use one of {', '.join(VIDEO_EXTENSIONS)}"
            )
        if not (isinstance(fps, numbers.Real) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps={fps!r} must be a positive number")
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, numbers.Integral) or max_size < 1
        ):
            raise ValueError(f"max_size={max_size!r} must be a positive int or None")
        if not 1 <= quality <= 10:
            raise ValueError(f"quality={quality!r} must be in 1..10")
        self.fps = float(fps)
        self.max_size = max_size
        self.quality = float(quality)
        self.frames_written = 0
        self._input_shape: tuple[int, ...] | None = None
        self._stride = 1
        self._writer: Any = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once ``close()`` has run."""
        return self._closed

    @property
    def frame_shape(self) -> tuple[int, int, int] | None:
        """Shape (H, W, 3) of the frames accepted by ``add``; None before the first frame."""
        return self._input_shape  # type: ignore[return-value]

    def add(self, frame: np.ndarray) -> None:
        """Append one frame.

        Args:
            frame: uint8[H, W, 3] (RGBA is accepted and loses its alpha); every frame of
                one recording must have the shape of the first.

        Raises:
            ValueError: for a bad frame or a shape change; RuntimeError after ``close()``.
        """
        if self._closed:
            raise RuntimeError(f"VideoRecorder for {str(self.path)!r} is closed; open a new one")
        frame = _check_frame(frame, what=f"frame {self.frames_written}")
        if self._input_shape is None:
            self._open(frame.shape)
        elif frame.shape != self._input_shape:
            raise ValueError(
                f"frame {self.frames_written} has shape {frame.shape} but this recording "
                f"started with {self._input_shape}; every frame of one video must have the "
                "same size (crop/resize first, or start a new recording)"
            )
        if self._stride > 1:
            frame = frame[:: self._stride, :: self._stride]
        if self.format == ".gif":
            self._writer.write(
                np.ascontiguousarray(frame),
                is_batch=False,
                duration=1000.0 / self.fps,
                loop=0,
            )
        else:
            h, w = frame.shape[:2]
            if h % 2 or w % 2:  # yuv420p needs even sizes: pad with black
                frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))
            self._writer.send(np.ascontiguousarray(frame))
        self.frames_written += 1

    def _open(self, shape: tuple[int, ...]) -> None:
        h, w = shape[:2]
        if self.max_size is not None and max(h, w) > self.max_size:
            self._stride = math.ceil(max(h, w) / self.max_size)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.format == ".gif":
            import imageio.v3 as iio

            self._writer = iio.imopen(self.path, "w", plugin="pillow", extension=".gif")
        else:
            import imageio_ffmpeg

            out_h = -(-h // self._stride)
            out_w = -(-w // self._stride)
            writer = imageio_ffmpeg.write_frames(
                str(self.path),
                (out_w + out_w % 2, out_h + out_h % 2),
                fps=self.fps,
                codec="libx264",
                quality=self.quality,
                pix_fmt_in="rgb24",
                pix_fmt_out="yuv420p",
                macro_block_size=1,
                ffmpeg_log_level="error",
            )
            writer.send(None)  # start the generator (and ffmpeg)
            self._writer = writer
        self._input_shape = tuple(shape)

    def close(self) -> None:
        """Finish the file. Safe to call twice; writes nothing if no frame was added."""
        if self._closed:
            return
        self._closed = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"VideoRecorder({str(self.path)!r}, fps={self.fps:g}, "
            f"frames_written={self.frames_written}, {state})"
        )
