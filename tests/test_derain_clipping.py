"""The clipped-channel study of the deraining tools (benchmarks.derain_clipping)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.derain_clipping import END, START, former_rule, psnr, section, summary
from tir_env.tools import make_tool
from tir_env.tools.classical import deraining

torch.set_num_threads(1)


def test_summary_pairs_the_crops() -> None:
    s = summary([10.0, 20.0, 30.0], [11.0, 20.0, 29.5])
    assert s["n"] == 3 and s["better"] == 1 and s["worse"] == 1
    assert s["change"] == pytest.approx(0.5 / 3)
    assert s["now"] - s["former"] == pytest.approx(s["change"])


def test_psnr_is_the_repositorys_one_capped_for_an_exact_image() -> None:
    image = np.full((4, 4, 3), 0.5, np.float32)
    assert psnr(image, image) == pytest.approx(80.0)
    assert psnr(image + 0.1, image) == pytest.approx(20.0, abs=1e-4)


@pytest.mark.parametrize("name", ["derain_opening", "derain_median"])
def test_the_former_rule_is_put_back_only_inside_and_does_worse_where_rain_clips(
    name: str,
) -> None:
    from tests.test_tools import _rain_on_saturated_colour
    from tir_env.tools.classical._common import PerImageTool

    clean, rainy = (x[0].permute(1, 2, 0).numpy() for x in _rain_on_saturated_colour())
    tool = make_tool(name)
    assert isinstance(tool, PerImageTool)
    params = {k: p.default for k, p in tool.info.params.items()}
    now = tool.restore(rainy, params)  # the NumPy reference, which the study runs
    batch = torch.from_numpy(rainy).permute(2, 0, 1)[None]
    now_port = tool.apply(batch, params)[0].permute(1, 2, 0).numpy()
    saved = deraining._rain_layer, deraining._remove_rain, deraining._rain_layer_torch
    with former_rule():
        former = tool.restore(rainy, params)
        former_port = tool.apply(batch, params)[0].permute(1, 2, 0).numpy()
    assert (deraining._rain_layer, deraining._remove_rain, deraining._rain_layer_torch) == saved
    assert psnr(now, clean) > psnr(former, clean) + 5.0
    # the torch port follows the same rule as the reference, then and now
    np.testing.assert_allclose(now_port, now, atol=1e-5)
    np.testing.assert_allclose(former_port, former, atol=1e-5)


def test_the_doc_section_holds_every_row_and_case() -> None:
    one = summary([20.0, 21.0], [20.5, 21.0])
    rows = {"derain_median": {case: one for case in ("clean", "rain", "haze>rain")}}
    text = section({"images": "corpus:val", "crops_per_photo": 2, "seed": 1, "rows": rows})
    assert text.startswith(START) and text.endswith(END)
    assert "| `derain_median` | 20.50 -> 20.75, +0.250 (0.250), 1/0 |" in text


def test_the_tool_table_keeps_the_section(tmp_path: Path) -> None:
    from benchmarks.speed import with_kept_sections
    from benchmarks.tool_table import kept_sections

    page = tmp_path / "tools.md"
    kept = f"{START}\nkept\n{END}"
    page.write_text(f"# old page\n\n{kept}\n")
    assert kept in with_kept_sections(page, "# new page\n", kept_sections())
