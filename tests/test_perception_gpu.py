"""The GPU perception records: the doc section renders from them, the opt-in weights load."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import perception_gpu


def test_the_section_renders_every_candidate_and_the_outcome() -> None:
    text = perception_gpu.section()
    assert "## A CNN trained on a GPU (measured; not shipped)" in text
    for label in perception_gpu.NETWORKS.values():
        assert label in text
    for agent in perception_gpu.AGENTS:
        assert f"`{agent}`, ensemble" in text
    assert "wrong -> right" in text and "right -> wrong" in text


def test_the_doc_holds_the_section_as_generated() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "perception.md").read_text()
    assert perception_gpu.section() in doc  # regenerate: perception_report --doc-only


def test_the_mean_change_column_is_the_mean_of_the_suites_changes() -> None:
    line = next(row for row in perception_gpu.agent_lines() if "`greedy`, ensemble" in row)
    cells = [c.strip() for c in line.strip("|").split("|")]
    shipped = next(row for row in perception_gpu.agent_lines() if "`greedy`, shipped" in row)
    old = [float(c) for c in shipped.strip("|").split("|")[1:6]]
    new = [float(c) for c in cells[1:6]]
    expected = sum(n - o for n, o in zip(new, old, strict=True)) / 5
    assert float(cells[6]) == pytest.approx(expected, abs=0.006)  # the cells are rounded


@pytest.mark.parametrize(
    ("network", "arch"),
    [
        ("width64", "PerceptionNetV2"),
        ("run3", "PerceptionNetV2"),
        ("ensemble", "PerceptionEnsemble"),
        ("hybrid", "PerceptionEnsemble"),
    ],
)
def test_the_weights_folder_reads_with_the_gpu_network(
    tmp_path: Path, network: str, arch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from tir_env import perception

    shipped_limits = perception.thresholds()
    folder = perception_gpu.weights_folder(tmp_path / "w", network)
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(folder))
    perception.reload()
    try:
        assert perception.record()["architecture"]["class"] == arch
        seen = perception.perceive_photo(np.full((64, 64, 3), 128, np.uint8))
        assert set(seen.probs) == set(perception.AGENTICIR_TYPES)
        if network == "hybrid":  # darkness and haze read, and thresholded, as shipped
            assert perception.thresholds()["dark"] == shipped_limits["dark"]
            assert perception.thresholds()["noise"] != shipped_limits["noise"]
    finally:
        monkeypatch.delenv("TIR_LEARNED_WEIGHTS")
        perception.reload()
    with pytest.raises(FileExistsError, match="exists"):
        perception_gpu.weights_folder(folder, network)
    with pytest.raises(ValueError, match="network"):
        perception_gpu.weights_folder(tmp_path / "x", "width32")
