"""Shared signal processing: blur kernels, box and guided filters, FFT deconvolution.

The degradations draw their blur kernels here and the deblurring tools invert the same
kernels, so a kernel has one definition and one argument order. Everything here is plain
numpy / OpenCV on HWC (or HW) float arrays; the batched torch versions used by the tools
live beside them (``*_torch``), on float32 NCHW batches on any device.

SciPy's FFT is imported inside the functions that use it, so importing this module (which
the degradations do) stays cheap.
"""

from tir_env.dsp.deconvolution import richardson_lucy_torch
from tir_env.dsp.numpy_ops import (
    LAPLACIAN,
    box,
    disk_kernel,
    guided_filter,
    motion_kernel,
    otf,
    pad_reflect,
    periodic_extension,
    richardson_lucy,
    shifted_dct_threshold,
    trim_kernel,
    wiener_deconvolve,
)
from tir_env.dsp.resample import DENSE_MAX_SIDE, filter_matrix, upsample_x4_planes
from tir_env.dsp.torch_ops import (
    box_torch,
    conv_planes,
    dct_matrix,
    fold_index,
    gaussian_blur_planes,
    gaussian_blur_torch,
    gaussian_taps,
    guided_filter_torch,
    pad_fold,
    pad_reflect101_torch,
    pad_symmetric,
    per_sample,
    periodic_extension_torch,
    rank_select,
    shifted_dct_threshold_torch,
    wiener_deconvolve_torch,
    window_max,
)

__all__ = [
    "motion_kernel",
    "disk_kernel",
    "box",
    "guided_filter",
    "pad_reflect",
    "periodic_extension",
    "otf",
    "wiener_deconvolve",
    "trim_kernel",
    "richardson_lucy",
    "shifted_dct_threshold",
    "LAPLACIAN",
    "per_sample",
    "pad_symmetric",
    "gaussian_blur_torch",
    "box_torch",
    "guided_filter_torch",
    "periodic_extension_torch",
    "wiener_deconvolve_torch",
    "pad_reflect101_torch",
    "richardson_lucy_torch",
    "window_max",
    "rank_select",
    "fold_index",
    "pad_fold",
    "conv_planes",
    "gaussian_taps",
    "gaussian_blur_planes",
    "upsample_x4_planes",
    "dct_matrix",
    "shifted_dct_threshold_torch",
    "filter_matrix",
    "DENSE_MAX_SIDE",
]
