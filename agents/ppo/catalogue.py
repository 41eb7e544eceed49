"""The PPO policy's action catalogue: tool x parameter presets (index 0 of the policy is STOP).

One entry per task with the strongest default-parameter classical tool (the ``preferred`` tool
of its task, from ``docs/tools.md``), plus the presets that won most often when the
oracle's two tools were searched over a small grid on train photos with group-A combinations
(stronger/weaker denoising and brightening, a milder dark channel prior and a global dehaze for
haze on top of rain or blur, lower Wiener SNRs for blur on top of another degradation, a
stronger JPEG TV and the shifted-DCT deblocker, bicubic x4 when another tool follows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tir_env.types import ToolCall

#: The catalogue the shipped policy was trained with (order = policy action index - 1).
PRESETS: tuple[ToolCall, ...] = (
    ToolCall("gamma_correction"),  # gamma 1.5
    ToolCall("gamma_correction", {"gamma": 2.0}),
    ToolCall("dct_denoise"),  # strength 1
    ToolCall("dct_denoise", {"strength": 0.5}),
    ToolCall("dct_denoise", {"strength": 2.0}),
    ToolCall("dark_channel_prior"),  # omega 0.95
    ToolCall("dark_channel_prior", {"omega": 0.8}),
    ToolCall("global_dehaze"),
    ToolCall("derain_opening"),
    ToolCall("motion_wiener_blind"),  # snr 30 dB
    ToolCall("motion_wiener_blind", {"snr_db": 20.0}),
    ToolCall("defocus_wiener"),  # snr 30 dB
    ToolCall("defocus_wiener", {"snr_db": 20.0}),
    ToolCall("defocus_wiener", {"snr_db": 40.0}),
    ToolCall("back_projection_x4"),
    ToolCall("bicubic_x4"),
    ToolCall("jpeg_tv"),
    ToolCall("jpeg_tv", {"weight": 0.03}),
    ToolCall("jpeg_shifted_dct"),
)

#: Presets :data:`PRESETS` lacks that won per-combination plans of the protocols' episodes on
#: train photos (``benchmarks.plan_table``, docs/agents.md "Plans fitted per combination"):
#: TV denoising before a deblocker, the brightness shift, unsharp masking after a deblocker,
#: the wider rain opening, the stronger JPEG TV, and the other tools of each task once.
EXTRA_PRESETS: tuple[ToolCall, ...] = (
    ToolCall("dct_denoise", {"strength": 1.5}),
    ToolCall("tv_denoise"),  # strength 0.75
    ToolCall("tv_denoise", {"strength": 1.5}),
    ToolCall("nlm_denoise"),
    ToolCall("constant_shift"),  # +40 on HSV value
    ToolCall("clahe"),
    ToolCall("unsharp_mask"),
    ToolCall("defocus_rl"),
    ToolCall("derain_opening", {"width": 15.0}),
    ToolCall("derain_median"),
    ToolCall("jpeg_tv", {"weight": 0.05}),
    ToolCall("lanczos_x4_sharpen"),
    ToolCall("motion_rl_blind"),
)
#: The wider catalogue (``--catalogue wide``): :data:`PRESETS`, then :data:`EXTRA_PRESETS`.
WIDE_PRESETS: tuple[ToolCall, ...] = PRESETS + EXTRA_PRESETS
#: Catalogues by name (``tir train ppo --catalogue``, ``tir train ppo-bc --catalogue``).
CATALOGUES: dict[str, tuple[ToolCall, ...]] = {"default": PRESETS, "wide": WIDE_PRESETS}


def parse_with_catalogue(cls: Any, argv: Sequence[str] | None, prog: str) -> Any:
    """``--field value`` for every field of config ``cls`` but ``catalogue``, plus ``--catalogue``.

    ``--catalogue default|wide`` picks one of :data:`CATALOGUES` (omitted: the field's
    default, or, for a run with ``--init``, the warm start's own catalogue).
    """
    from tir_env.config_cli import config_from_namespace, config_parser

    parser = config_parser(cls, prog, skip=("catalogue",))
    parser.add_argument(
        "--catalogue",
        dest="catalogue_name",
        choices=sorted(CATALOGUES),
        default=None,
        help="the presets of a catalogue policy (default: default, or the --init policy's)",
    )
    namespace = parser.parse_args(argv)
    extra = {}
    if namespace.catalogue_name is not None:
        extra["catalogue"] = CATALOGUES[namespace.catalogue_name]
    elif getattr(namespace, "init", None):
        from agents.ppo.policy import load_spec

        extra["catalogue"] = tuple(load_spec(namespace.init).catalogue) or PRESETS
    return config_from_namespace(cls, namespace, parser, **extra)
