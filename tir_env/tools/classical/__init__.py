"""Weight-free restoration tools (OpenCV, scikit-image, SciPy, numpy and torch).

Every task of the AgenticIR protocol has at least two classical tools here. They need no
weights, run on the CPU in 1 to 150 ms per 128x128 image (``cost_hint`` is about the
milliseconds on one core), and serve as the default toolbox, as fast baselines beside
learned and pretrained tools, and as test fixtures. ``docs/tools.md``
(``python -m benchmarks.tool_table``) measures how much each restores its degradation.

One module per task; kernels, filters and FFT helpers shared with the degradations live in
:mod:`tir_env.dsp`. Conventions shared by all tools:

* input and output are float32 Nx3xHxW in [0, 1] (Nx3x4Hx4W for super-resolution);
* OpenCV/scikit-image code runs per image on numpy HWC arrays (``PerImageTool``);
* every tool has a batched torch port (any device, one call per batch, per-image
  parameters) that overrides ``apply`` and keeps the former per-image code as ``restore``,
  the reference of ``tests/test_tool_parity.py`` (PSNR >= 40 dB between the two, most
  identical to float rounding); the blind estimators are in :mod:`.blur_estimation`;
* on a CPU, the eight tools whose OpenCV or scikit-image reference beats their port there
  (``cpu_reference``: nlm_denoise, bilateral_denoise, clahe, jpeg_tv, lanczos_x4_sharpen,
  back_projection_x4, derain_opening, global_dehaze) run the reference; on any other device,
  the port; clahe and global_dehaze run the port on CPU batches of 4 images or more, jpeg_tv
  on batches of 8 or more (``cpu_port_from``), where it is faster, counting only images that
  share its chroma radius (``structure_params``);
* on a CPU, the Richardson-Lucy iterations of motion_rl_blind and defocus_rl run OpenCV's
  ``filter2D`` image by image (``cpu_per_image``), 3-6x faster there than the torch
  correlations at 64 px; their blind kernel estimates stay batched;
* on a CPU, a tool whose whole-batch working set outgrows the caches can run a batch in chunks
  of ``Tool.cpu_batch`` images (none does now), and the Wiener tools' float64 FFTs run 4
  images at a time (``tir_env.dsp.torch_ops.WIENER_CPU_CHUNK``, under their batched blur
  estimates), so a batched call is never slower than one call per image (``python -m
  benchmarks.tool_speed``);
* window sizes are clamped to the image, so every tool runs on images down to 1x1;
* "blind" tools estimate what they need (noise level, blur direction, blur size) from the
  image itself, so their defaults help without knowing the degradation's parameters.

The brightening tools are AgenticIR's three (``executor/brightening``): CLAHE on the HSV
V channel (clip 2.0, 8x8 tiles), gamma correction of V (gamma 1.5) and a constant V shift
(+40 of 255).

Importing the modules registers the tools, in the order of the imports below.
"""

from __future__ import annotations

from tir_env.dsp import (
    disk_kernel,
    guided_filter,
    motion_kernel,
    richardson_lucy,
    wiener_deconvolve,
)

# isort: off
# The import order is the registration order, which fixes the tools' indices in the action
# space (trained policies depend on it): keep it.
from tir_env.tools.classical import super_resolution
from tir_env.tools.classical import denoising
from tir_env.tools.classical import jpeg
from tir_env.tools.classical import brightening
from tir_env.tools.classical import dehazing
from tir_env.tools.classical import deblurring
from tir_env.tools.classical import deraining

# isort: on
from tir_env.tools.classical._common import PerImageTool, estimate_noise_sigma
from tir_env.tools.classical.blur_estimation import (
    IDENTITY_KERNEL,
    NO_BLUR_MARGIN,
    estimate_disk_radius,
    estimate_motion_kernel,
)
from tir_env.tools.classical.deraining import dominant_orientation

__all__ = [
    "IDENTITY_KERNEL",
    "NO_BLUR_MARGIN",
    "PerImageTool",
    "brightening",
    "deblurring",
    "dehazing",
    "denoising",
    "deraining",
    "disk_kernel",
    "dominant_orientation",
    "estimate_disk_radius",
    "estimate_motion_kernel",
    "estimate_noise_sigma",
    "guided_filter",
    "jpeg",
    "motion_kernel",
    "richardson_lucy",
    "super_resolution",
    "wiener_deconvolve",
]
