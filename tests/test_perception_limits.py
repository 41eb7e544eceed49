"""benchmarks.perception_limits: evidence of a degradation, F1 at the best threshold, the doc."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import perception_limits as limits
from tir_env.degradations import degrade
from tir_env.degradations.protocols import AGENTICIR_TYPES

torch.set_num_threads(1)


def _clean(seed: int = 0, size: int = 64) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.uniform(0.2, 0.8, (1, 3, size, size)).astype(np.float32))


def test_evidence_is_the_psnr_of_leaving_a_type_out() -> None:
    clean = _clean()
    _, applied = degrade(clean, ["noise", "jpeg"], np.random.default_rng(0), order="listed")
    noise = limits.evidence_db(clean, applied, "noise")
    assert 15.0 < noise < 40.0  # sigma 20-50 noise survives JPEG
    # Leaving out every step of a chain of one compares the crop with the clean image.
    alone = [("noise", {"poisson": 0.0, "sigma": 30.0, "seed": 1.0})]
    assert limits.evidence_db(clean, alone, "noise") == pytest.approx(
        -10 * np.log10((30.0 / 255.0) ** 2), abs=0.5
    )


def test_evidence_of_a_step_that_changes_nothing_is_the_cap() -> None:
    black = torch.zeros(1, 3, 32, 32)
    _, applied = degrade(black, ["dark"], np.random.default_rng(0))
    assert limits.evidence_db(black, applied, "dark") == limits.IDENTICAL_DB


def test_evidence_compares_across_low_resolution() -> None:
    clean = _clean(size=64)
    _, applied = degrade(clean, ["noise", "low_resolution"], np.random.default_rng(1))
    for name in ("noise", "low_resolution"):
        value = limits.evidence_db(clean, applied, name)
        assert np.isfinite(value) and 0 < value <= limits.IDENTICAL_DB


def _row(truth: list[str], found: list[str], p: float, evidence: float = 20.0) -> dict:
    probability = dict.fromkeys(AGENTICIR_TYPES, 0.0) | {"noise": p}
    return {
        "suite": "mio-a",
        "truth": truth,
        "found": found,
        "probability": probability,
        "evidence": dict.fromkeys(truth, evidence),
    }


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=12),
)
def test_best_threshold_f1_is_the_best_of_every_cut(scored: list[tuple[float, bool]]) -> None:
    rows = [_row(["noise"] if present else [], [], p) for p, present in scored]
    best, threshold = limits.best_threshold_f1(rows, "noise")
    for cut in {p for p, _ in scored}:
        tp = sum(p >= cut and t for p, t in scored)
        fp = sum(p >= cut and not t for p, t in scored)
        fn = sum(p < cut and t for p, t in scored)
        assert best >= limits._f1(tp, fp, fn) - 1e-12
    tp = sum(p >= threshold and t for p, t in scored)
    fp = sum(p >= threshold and not t for p, t in scored)
    fn = sum(p < threshold and t for p, t in scored)
    assert best == pytest.approx(limits._f1(tp, fp, fn)) or best == 0.0


def test_type_scores_count_no_true_negatives_and_name_the_confusions() -> None:
    rows = [
        _row(["noise"], ["noise"], 0.9),
        _row(["noise"], [], 0.2),  # missed, nothing else reported
        _row(["noise"], ["jpeg"], 0.3, evidence=40.0),  # a faint miss, jpeg instead
        _row(["jpeg"], ["jpeg", "noise"], 0.8),  # a false alarm beside jpeg
        _row([], [], 0.0),  # a true negative: counted nowhere
    ]
    s = limits.type_scores(rows, "noise", faint_db=35.0)
    assert s["support"] == 3 and s["false_positives"] == 1 and s["missed"] == 2
    assert s["f1"] == pytest.approx(2 / (2 + 1 + 2))
    assert s["f1_visible"] == pytest.approx(2 / (2 + 1 + 1))  # the faint miss counts neither way
    assert s["faint_share"] == pytest.approx(1 / 3)
    assert s["missed_seen_instead"] == {"nothing extra": 1, "jpeg": 1}
    assert s["false_alarm_alongside"] == {"jpeg": 1}
    assert s["recall_by_band"][">= 35 dB"] == {"n": 1, "recall": 0.0}


def test_exact_set_rates_against_the_visible_set() -> None:
    rows = [_row(["noise", "jpeg"], ["jpeg"], 0.1), _row(["jpeg"], ["jpeg"], 0.1)]
    rows[0]["evidence"]["noise"] = 50.0  # noise is faint in the first crop
    rates = limits.exact_set_rates(rows, faint_db=35.0)["mio-a"]
    assert rates == {"n": 2, "exact": 0.5, "exact_visible": 1.0, "exact_faint_either": 1.0}


def test_the_doc_section_renders_from_summaries() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for suite in ("mio-a", "single"):
        for _ in range(20):
            truth = sorted(rng.choice(AGENTICIR_TYPES, size=2, replace=False).tolist())
            probability = {t: float(rng.uniform()) for t in AGENTICIR_TYPES}
            rows.append(
                {
                    "suite": suite,
                    "truth": truth,
                    "found": [t for t in AGENTICIR_TYPES if probability[t] > 0.5],
                    "probability": probability,
                    "evidence": {t: float(rng.uniform(10, 45)) for t in truth},
                }
            )
    results = {
        "command": "python -m benchmarks.perception_limits",
        "crops_per_combination": 1,
        "faint_db": 35.0,
        "sets": {"toy": {"photos": 1, **limits.summarise(rows, 35.0)}},
    }
    text = "\n".join(limits.section(results))
    assert "### toy (1 photos, 40 crops)" in text
    assert "**Verdict.**" in text
    assert text.count("| noise |") == 1
