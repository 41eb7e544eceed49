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


def test_the_mean_changes_are_the_table_means() -> None:
    rows = perception_gpu.agent_rows("ensemble")["greedy"]
    expected = sum(new - old for _, old, new in rows.values()) / len(rows)
    assert perception_gpu.mean_change("ensemble", "greedy") == pytest.approx(expected)
    assert set(rows) == set(perception_gpu.SUITES)


@pytest.mark.parametrize(
    ("network", "arch"), [("width64", "PerceptionNetV2"), ("ensemble", "PerceptionEnsemble")]
)
def test_the_weights_folder_reads_with_the_gpu_network(
    tmp_path: Path, network: str, arch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from tir_env import perception

    folder = perception_gpu.weights_folder(tmp_path / "w", network)
    monkeypatch.setenv("TIR_LEARNED_WEIGHTS", str(folder))
    perception.reload()
    try:
        assert perception.record()["architecture"]["class"] == arch
        seen = perception.perceive_photo(np.full((64, 64, 3), 128, np.uint8))
        assert set(seen.probs) == set(perception.AGENTICIR_TYPES)
    finally:
        monkeypatch.delenv("TIR_LEARNED_WEIGHTS")
        perception.reload()
    with pytest.raises(FileExistsError, match="exists"):
        perception_gpu.weights_folder(folder, network)
    with pytest.raises(ValueError, match="network"):
        perception_gpu.weights_folder(tmp_path / "x", "width32")
