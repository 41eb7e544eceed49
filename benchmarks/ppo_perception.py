"""How well does a PPO policy's own perception head see, against perception v2?

The PPO policy's CNN carries a small perception head (pretrained on labelled patches, then
frozen); ``tir train ppo --perceived`` adds perception v2's readings to the observation
instead of relying on it. This measures both on the same crops of photos none of them trained
on: patches drawn through the env as the PPO perception pretraining draws them (a training
combination, one degradation of it alone, or the clean patch), at the policy's observation
size. Per-type F1 counts no true negatives; the exact-set rate counts a crop as right only
when every type is named correctly.

Usage::

    python -m benchmarks.ppo_perception --policies agents/ppo/weights/ppo_bc RUN/ppo
    python -m benchmarks.ppo_perception --doc-only   # the docs/agents.md section from the JSON
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.tool_speed import stored_or_measured

RESULTS = Path("benchmarks/results/ppo_perception.json")
DOC = Path("docs/agents.md")
START, END = "<!-- ppo-perception:start -->", "<!-- ppo-perception:end -->"


def scores(predicted: np.ndarray, truth: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Per-type F1 (no true negatives), its mean and the exact-set rate of 0/1 N x T arrays."""
    tp = (predicted * truth).sum(0)
    fp = (predicted * (1 - truth)).sum(0)
    fn = ((1 - predicted) * truth).sum(0)
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    return {
        "f1": {name: float(v) for name, v in zip(labels, f1, strict=True)},
        "mean_f1": float(f1.mean()),
        "exact_set": float((predicted == truth).all(axis=1).mean()),
    }


def head_predictions(stem: str, images: torch.Tensor, labels: Sequence[str]) -> np.ndarray:
    """A PPO policy's own perception head on uint8 N x 3 x S x S images (logit > 0)."""
    from agents.ppo.policy import load_policy

    policy, spec = load_policy(stem)
    own = list(spec.extra.get("perception", {}).get("labels") or [])
    if not own:  # a warm-started run keeps its init's head; its record holds the labels
        init = spec.extra.get("config", {}).get("init")
        own = list(load_policy(init)[1].extra["perception"]["labels"]) if init else []
    if not own:
        raise ValueError(f"{stem}: its record does not name its perception labels")
    with torch.no_grad():
        logits = policy.features_extractor.degradation_logits(images.float() / 255.0)
    return (logits[:, [own.index(name) for name in labels]] > 0).numpy().astype(np.float32)


def v2_predictions(images: torch.Tensor, labels: Sequence[str]) -> np.ndarray:
    """Perception v2 (its tuned thresholds) on the same images."""
    from tir_env.perception import perceive_photo

    out = np.zeros((len(images), len(labels)), np.float32)
    for k, image in enumerate(images):
        seen = perceive_photo(image.permute(1, 2, 0).numpy())
        out[k] = [float(seen.probs[name] >= seen.thresholds[name]) for name in labels]
    return out


def run(images: str, crops: int, seed: int, policies: Sequence[str]) -> dict[str, Any]:
    """Every policy's head and perception v2 on ``crops`` patches of ``images``."""
    from agents.ppo.train import TrainConfig, degradation_labels, perception_data

    torch.set_num_threads(1)
    labels = degradation_labels("train")
    x, y = perception_data(TrainConfig(combos="train"), labels, images, crops, seed)
    truth = y.numpy()
    rows = {stem: scores(head_predictions(stem, x, labels), truth, labels) for stem in policies}
    rows["perception v2"] = scores(v2_predictions(x, labels), truth, labels)
    command = (
        f"python -m benchmarks.ppo_perception --images {images} --crops {crops} --seed {seed} "
        f"--policies {' '.join(policies)}"
    )
    return {"images": images, "crops": crops, "seed": seed, "labels": list(labels),
            "command": command, "rows": rows}  # fmt: skip


def section(report: dict[str, Any]) -> str:
    """The Markdown section (with its markers) for ``docs/agents.md``."""
    labels = report["labels"]
    lines = [
        START,
        f"Made by `{report['command']}`: {report['crops']} patches of 128 px, each a training "
        "combination, one degradation of it alone or clean, as the PPO perception pretraining "
        "draws them. F1 per type (no true negatives counted):",
        "",
        "| perceiver | exact set | mean F1 | " + " | ".join(labels) + " |",
        "|---|---:|---:|" + "---:|" * len(labels),
    ]
    for name, row in report["rows"].items():
        label = name if name == "perception v2" else f"`{Path(name).name}` head"
        f1 = " | ".join(f"{row['f1'][t]:.2f}" for t in labels)
        lines.append(f"| {label} | {row['exact_set']:.2f} | {row['mean_f1']:.2f} | {f1} |")
    return "\n".join([*lines, END])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure (unless ``--doc-only``), write the JSON and the doc section."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default="corpus:val")
    p.add_argument("--crops", type=int, default=400)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument(
        "--policies", nargs="+",
        default=["agents/ppo/weights/ppo_mio_a", "agents/ppo/weights/ppo_bc"],
    )  # fmt: skip
    p.add_argument("--out-json", default=str(RESULTS))
    p.add_argument("--out-md", default=str(DOC))
    p.add_argument("--doc-only", action="store_true", help="rewrite the doc from the JSON")
    args = p.parse_args(argv)
    return stored_or_measured(
        args.out_json,
        args.out_md,
        args.doc_only,
        lambda: run(args.images, args.crops, args.seed, args.policies),
        section,
        (START, END),
    )


if __name__ == "__main__":
    main()
