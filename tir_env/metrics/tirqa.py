"""``tirqa``: a learned no-reference quality metric that predicts PSNR to the unseen clean image.

Boosted trees over perception's statistics (:mod:`tir_env.quality_trees`: a PSNR regression
and a clean-crop classifier; the quality head of the perception network where the trees are
absent), trained on the photo corpus to predict the PSNR a degraded image *or a tool's
output* scores against its clean original, which it never sees. The regression learned from
random tools' outputs; the classifier learned that the ``median_paint`` exploit's flat paint,
which fools NIQE (``docs/reward.md``), is not a clean image. It is still a single-image
estimate that a search can exploit: with the network's PSNR a greedy search that maximised
``tirqa`` alone over the classical tools ended below its input PSNR on most held-out crops
(docs/perception.md, "Hard examples for ``tirqa``"); with the trees a policy rewarded by it
alone gains PSNR but takes the exploit in a fifth of its episodes (docs/reward.md), and
brightening and dehazing, whose effect one image does not show, stay among the calls it
overrates.
Use it beside a fidelity term (the adaptive reward) or over a plan's few candidates, as the
search agents do, not as the only objective. Spearman correlation with the true PSNR on
held-out photos is in ``docs/perception.md``.

Images are seen at native resolution, tiled like perception; score an image at the size it
should have (the env scores at the reference size). Higher is better, in dB.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tir_env.metrics.pyiqa_backend import Device, MetricSpec, SizedMetric


class TIRQAMetric(SizedMetric):
    """Predicted PSNR (dB) of each image against its unseen clean original."""

    def __init__(
        self,
        spec: MetricSpec,
        device: Device | torch.device = "auto",
        weights_dir: str | Path | None = None,
    ) -> None:
        # Runs where perception runs (CPU); weights come from the learned-weights folder.
        super().__init__(spec)
        from tir_env import perception

        if not perception.available():
            from tir_env.errors import WeightsNotFoundError
            from tir_env.tools.learned.weights import weights_path

            raise WeightsNotFoundError(
                f"metric 'tirqa' needs the perception weights {weights_path('perception')}; "
                "retrain them with `tir train perception` or set $TIR_LEARNED_WEIGHTS"
            )

    def compute(self, batch: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
        """Predicted PSNR of each image.

        Raises:
            WeightsNotFoundError: the perception weights are missing.
        """
        from tir_env import perception

        self.check_size(batch)
        size = (int(batch.shape[-2]), int(batch.shape[-1]))
        prepared = perception.prepare(batch.detach().cpu().float(), size)
        return perception.quality_psnr(prepared).to(torch.float64)
