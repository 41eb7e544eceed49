"""The PPO policy's action catalogue: tool x parameter presets (index 0 of the policy is STOP).

One entry per task with the strongest default-parameter classical tool (the ``preferred`` tool
of its task, from ``docs/tools.md``), plus the presets that won most often when the
oracle's two tools were searched over a small grid on train photos with group-A combinations
(stronger/weaker denoising and brightening, a milder dark channel prior and a global dehaze for
haze on top of rain or blur, lower Wiener SNRs for blur on top of another degradation, a
stronger JPEG TV and the shifted-DCT deblocker, bicubic x4 when another tool follows).
"""

from __future__ import annotations

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
