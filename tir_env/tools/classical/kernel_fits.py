"""The blind deblurring's kernel fits as numbers a classifier can read.

:mod:`~tir_env.tools.classical.blur_estimation` decides whether an image is blurred by how
much better a motion trail or a defocus disk explains its power spectrum than no blur.
:func:`kernel_fit_features` hands those fits to perception (``PerceptionFeatureNet(blind=True)``,
docs/perception.md, "What the blind deblurring sees").
"""

from __future__ import annotations

import torch

from tir_env.tools.classical.blur_estimation import (
    _DISK_RADII,
    _MOTION_SHAPES,
    _disk_terms,
    _log_power_torch,
    _misfits_torch,
    _motion_grid_terms,
    _no_blur_misfits,
)

#: Columns of :func:`kernel_fit_features`: per motion shape, per disk radius, the motion
#: fit's anisotropy and the two no-blur misfits.
N_KERNEL_FIT = len(_MOTION_SHAPES) + len(_DISK_RADII) + 3
#: Smallest misfit taken as is (a flat image's spectrum fits anything: its logs stay finite).
_MISFIT_FLOOR = 1e-9


def kernel_fit_features(batch: torch.Tensor) -> torch.Tensor:
    """How well blur kernels explain each image's spectrum (N x :data:`N_KERNEL_FIT`, float32).

    The blind estimators' evidence as numbers, for a classifier: per shape of
    :data:`_MOTION_SHAPES`, the log ratio of its best misfit over the coarse angle grid to
    the no-blur misfit (below 0: a trail of that length fits better than none); per
    radius of :data:`_DISK_RADII` the same for the disk (mirrored spectrum); the log ratio of
    the worst to the best angle of the best motion shape (a trail has a direction, a disk or
    a soft photo hardly); and the log no-blur misfits of the two spectra. Fitted on the full
    band (a classifier sees the upsampling itself). Unchanged by quarter turns and mirror
    images up to the 5 degree grid and the small trails' pixel rounding.
    """
    log_power, shape = _log_power_torch(batch, symmetric=False)
    motion = _misfits_torch(log_power, _motion_grid_terms(shape, str(batch.device)), shape)
    none = _no_blur_misfits(log_power, shape).clamp_min(_MISFIT_FLOOR)
    motion = motion.clamp_min(_MISFIT_FLOOR).view(len(batch), -1, len(_MOTION_SHAPES))
    per_shape = motion.min(dim=1).values  # N x shapes, best angle each
    best = per_shape.argmin(dim=1)
    by_angle = motion.gather(2, best[:, None, None].expand(-1, motion.shape[1], 1))[..., 0]
    anisotropy = by_angle.max(dim=1).values / by_angle.min(dim=1).values
    mirrored, mirrored_shape = _log_power_torch(batch, symmetric=True)
    disks = _misfits_torch(
        mirrored, _disk_terms(mirrored_shape, str(batch.device)), mirrored_shape
    ).clamp_min(_MISFIT_FLOOR)
    disk_none = _no_blur_misfits(mirrored, mirrored_shape).clamp_min(_MISFIT_FLOOR)
    columns = [
        torch.log(per_shape / none[:, None]),
        torch.log(disks / disk_none[:, None]),
        torch.log(anisotropy)[:, None],
        torch.log(none)[:, None],
        torch.log(disk_none)[:, None],
    ]
    return torch.cat(columns, dim=1).float()
