"""benchmarks.false_call: what a tool costs where its degradation is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks import false_call

torch.set_num_threads(1)


def _crops() -> list[torch.Tensor]:
    from tir_env import data
    from tir_env.images import u8_to_batch

    photo = data.bundled("test").load("chelsea")
    return [u8_to_batch(data.center_patch(photo, 64))]


def test_a_tool_that_does_nothing_without_its_degradation_costs_nothing() -> None:
    # the defocus tool estimates the blur blindly: a crop without blur is left alone
    # seed 1 blurs enough for the estimator to find the disk on 8-bit input (seed 0 does not:
    # docs/tools.md, "The defocus radius of an 8-bit photo")
    row = false_call.measure_tool("defocus_wiener", _crops(), seed=1)
    assert set(row) == set(false_call.situations())
    assert row[false_call.CLEAN] >= 60.0
    assert row["defocus_blur"] > 0.0


def test_a_brightening_tool_called_on_a_bright_crop_costs() -> None:
    row = false_call.measure_tool("gamma_correction", _crops(), seed=0)
    assert row[false_call.CLEAN] < 30.0 and row["dark"] > 0.0


def _report() -> dict[str, Any]:
    situations = false_call.situations()
    row = {s: -1.0 for s in situations} | {"clean": 20.0, "haze": 5.0}
    variant = {**row, "variant": "kept", "clean": 30.0}
    return {
        "images": "x",
        "crops": 2,
        "seed": 0,
        "situations": situations,
        "own": {"dehazing": "haze"},
        "rows": [
            {"tool": "dark_channel_prior", "task": "dehazing", **row},
            {"tool": "dark_channel_prior", "task": "dehazing", **variant},
        ],
    }


def test_the_section_has_a_row_per_tool_and_variant() -> None:
    text = false_call.section(_report())
    assert text.startswith(false_call.START) and text.endswith(false_call.END)
    assert "| `dark_channel_prior` | 20.0 | +5.00 | -1.00 |" in text
    assert "`dark_channel_prior` (kept) | 30.0" in text


def test_the_committed_section_is_what_the_report_makes() -> None:
    import json

    report = json.loads(false_call.OUT_JSON.read_text())
    page = (Path(__file__).resolve().parents[1] / "docs" / "tools.md").read_text()
    assert (
        false_call.section(report) in page
    )  # regenerate: python -m benchmarks.false_call --doc-only


@pytest.mark.parametrize("text", ["nolabel", "a=", "a=folder", "a=/no/such/folder:tool"])
def test_a_malformed_variant_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="LABEL=FOLDER:TOOL|no such weights folder"):
        false_call.parse_variant(text)


def test_a_report_without_the_keep_share_row_still_makes_its_section() -> None:
    report = _report()
    report["rows"] = [r for r in report["rows"] if "variant" not in r]
    text = false_call.section(report)
    assert "(kept)" not in text and "--keep-share" not in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nolabel", "LABEL=TOOL"),
        ("derain_opening:width=3", "LABEL=TOOL"),  # no label
        ("a=derain_opening", "LABEL=TOOL"),
        ("a=derain_opening:", "LABEL=TOOL"),
        ("a=derain_opening:width", "KEY=VALUE"),
        ("a=derain_opening:width=x", "KEY=VALUE"),
        ("a=no_such_tool:width=3", "unknown tool"),
        ("a=derain_opening:width=99", "outside"),  # never clipped silently
        ("a=derain_opening:colour=1", "colour"),
    ],
)
def test_a_malformed_parameter_variant_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        false_call.parse_params(text)


def test_a_parameter_variant_is_measured_with_its_parameters() -> None:
    label, tool, params = false_call.parse_params("dim=gamma_correction:gamma=1")
    assert (label, tool, params) == ("dim", "gamma_correction", {"gamma": 1.0})
    _, _, rounded = false_call.parse_params("w=derain_opening:width=6.6")
    assert rounded == {"width": 7.0}  # recorded as the tool runs it
    situations = false_call.situations()
    plain = {s: -1.0 for s in situations} | {"clean": 20.0, "dark": 5.0}
    report = {
        **_report(),
        "images": "bundled:test",
        "crops": 4,
        "own": {"dehazing": "haze", "brightening": "dark"},
        "rows": [{"tool": "gamma_correction", "task": "brightening", **plain}],
    }
    with pytest.raises(ValueError, match="--crops"):  # other crops than the report's
        false_call.appended(report, [], ["dim=gamma_correction:gamma=1"], per_photo=2)
    added = false_call.appended(report, [], ["dim=gamma_correction:gamma=1"], per_photo=1)
    row = added["rows"][-1]
    assert row["variant"] == "dim" and row["params"] == {"gamma": 1.0}
    assert row[false_call.CLEAN] >= 60.0  # gamma 1 leaves a clean crop as it is
    assert abs(row["dark"]) < 1e-6  # and a dark one: it gains nothing
    assert added["per_photo"] == 1
    with pytest.raises(ValueError, match="already"):  # one row per label
        false_call.appended(added, [], ["dim=gamma_correction:gamma=1.2"], per_photo=1)
    text = false_call.section(added)
    assert "`gamma_correction` (dim) | 80.0 |" in text
    assert "`gamma_correction` with `gamma=1`: a right call gains +0.00 dB (+5.00" in text


def test_append_without_a_stored_report_is_a_usage_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.json")
    args = ["--append", "--params", "dim=gamma_correction:gamma=1", "--out-json", missing]
    with pytest.raises(SystemExit) as exit_info:
        false_call.main([*args, "--out-md", ""])
    assert exit_info.value.code == 2


def test_a_parameter_row_is_not_read_as_the_keep_share_dehazer() -> None:
    report = _report()
    report["rows"][1] = {**report["rows"][1], "params": {"omega": 0.9}}
    assert "--keep-share" not in false_call.section(report)


def test_the_tools_read_degraded_crops_rounded_to_8_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    # the env rounds every episode's input; a blind estimator reading float input overstates
    seen: list[torch.Tensor] = []

    class Recorder:
        def __call__(self, image: torch.Tensor, params: Any) -> torch.Tensor:
            seen.append(image)
            return image

    from tir_env.tools.base import TOOLS

    monkeypatch.setattr(TOOLS, "get", lambda name: Recorder)
    false_call.measure_tool("anything", _crops(), seed=0)
    assert len(seen) == len(false_call.situations())
    for image in seen:
        assert torch.equal(image, torch.round(image * 255) / 255)
