"""The pygame viewer and recorders shared by every world.

``Viewer`` (interactive or headless) and ``record_rollout`` show / record any
:class:`colonylab.envs.base.World`; ``VideoRecorder`` and ``save_png`` write
media; ``apply_colormap``, ``binary_rgb`` and ``upscale_nearest`` help worlds
build their ``render_rgb`` pictures.
"""

from colonylab.envs.render.colormaps import (
    apply_colormap,
    binary_rgb,
    colormap_lut,
    upscale_nearest,
)
from colonylab.envs.render.recorder import VIDEO_EXTENSIONS, VideoRecorder, save_png
from colonylab.envs.render.viewer import (
    NoDisplayError,
    Viewer,
    display_available,
    record_rollout,
)

__all__ = [
    "VIDEO_EXTENSIONS",
    "NoDisplayError",
    "VideoRecorder",
    "Viewer",
    "apply_colormap",
    "binary_rgb",
    "colormap_lut",
    "display_available",
    "record_rollout",
    "save_png",
    "upscale_nearest",
]
