"""User checkpoints through spandrel: registration, loading, tiling, errors, presets.

Everything runs offline on tiny randomly initialised spandrel architectures (a DnCNN and a
SwinIR x4) saved to temporary files.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from tir_env.errors import (
    CheckpointError,
    EmptyToolboxError,
    UnknownNameError,
    WeightsNotFoundError,
)
from tir_env.tools import TOOLS, make_tool, tool_info, tool_names
from tir_env.tools.presets import AGENTICIR_TOOLBOX, agenticir_status, toolbox_tools
from tir_env.tools.pretrained import (
    parse_register,
    register_checkpoint,
    register_from_toml,
    run_tiled,
)

pytest.importorskip("spandrel")


def _save(state: dict[str, torch.Tensor], path: Path) -> Path:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


def _dncnn() -> dict[str, torch.Tensor]:
    from spandrel.architectures.DnCNN import DnCNN

    torch.manual_seed(0)
    return DnCNN(in_nc=3, out_nc=3, nc=8, nb=8, act_mode="R").state_dict()


def _swinir_x4() -> dict[str, torch.Tensor]:
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    net = SwinIR(
        upscale=4,
        in_chans=3,
        img_size=16,
        window_size=4,
        img_range=1.0,
        depths=[1],
        embed_dim=12,
        num_heads=[2],
        mlp_ratio=2,
        upsampler="pixelshuffledirect",
        resi_connection="1conv",
    )
    return net.state_dict()


@pytest.fixture
def registered() -> Iterator[list[str]]:
    """Names registered by a test; removed from the registry afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        if name in TOOLS:
            TOOLS.remove(name)
    make_tool.cache_clear()


@pytest.fixture(scope="module")
def dncnn_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save(_dncnn(), tmp_path_factory.mktemp("ckpt") / "tiny_dncnn.safetensors")


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_register_and_run_restoration(suffix: str, tmp_path: Path, registered: list[str]) -> None:
    path = _save(_dncnn(), tmp_path / f"dncnn{suffix}")
    name = register_checkpoint(path, "denoising", "test_dncnn", check=True)
    registered.append(name)
    info = tool_info(name)
    assert (info.kind, info.task, info.scale) == ("pretrained", "denoising", 1)
    assert name in tool_names(kinds=("pretrained",))
    batch = torch.rand(2, 3, 24, 20)
    out = make_tool(name)(batch)
    assert out.shape == batch.shape and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(out, make_tool(name)(batch))  # deterministic


def test_super_resolution_checkpoint(tmp_path: Path, registered: list[str]) -> None:
    path = _save(_swinir_x4(), tmp_path / "swinir.safetensors")
    name = register_checkpoint(path, "super_resolution", "test_swinir_x4")
    registered.append(name)
    assert tool_info(name).scale == 4
    out = make_tool(name)(torch.rand(1, 3, 10, 13))  # smaller than SwinIR's minimum: padded
    assert out.shape == (1, 3, 40, 52)


def test_scale_must_fit_the_task(tmp_path: Path, registered: list[str]) -> None:
    path = _save(_dncnn(), tmp_path / "dncnn_as_sr.safetensors")
    registered.append(register_checkpoint(path, "super_resolution", "test_wrong_scale"))
    with pytest.raises(CheckpointError, match="dncnn_as_sr.safetensors.*x1"):
        make_tool("test_wrong_scale")(torch.rand(1, 3, 8, 8))


def test_default_name_is_the_file_stem(dncnn_file: Path, registered: list[str]) -> None:
    name = register_checkpoint(dncnn_file, "denoising")
    registered.append(name)
    assert name == "tiny_dncnn"
    assert register_checkpoint(dncnn_file, "denoising") == name  # the same checkpoint: a no-op
    with pytest.raises(ValueError, match="already registered"):
        register_checkpoint(dncnn_file, "deraining")  # the name is taken by another tool


# ---------------------------------------------------------------- errors name the file


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="nothing.pth"):
        register_checkpoint(tmp_path / "nothing.pth", "denoising", "test_missing")


def test_unknown_task(dncnn_file: Path) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'denoising'"):
        register_checkpoint(dncnn_file, "denoise", "test_bad_task")


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_corrupt_file(suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"corrupt{suffix}"
    path.write_bytes(b"\x00not a checkpoint" * 64)
    with pytest.raises(CheckpointError, match=f"corrupt{suffix}"):
        register_checkpoint(path, "denoising", "test_corrupt", check=True)
    assert "test_corrupt" not in TOOLS


def test_unsupported_architecture(tmp_path: Path) -> None:
    path = _save({"encoder.weight": torch.zeros(4, 4)}, tmp_path / "mystery.safetensors")
    with pytest.raises(CheckpointError, match="mystery.safetensors.*does not recognise"):
        register_checkpoint(path, "denoising", "test_mystery", check=True)


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"onnx")
    with pytest.raises(CheckpointError, match="model.onnx.*unsupported file type"):
        register_checkpoint(path, "denoising", "test_onnx", check=True)


class _Payload:
    """Unpickling this would run code; ``weights_only=True`` must refuse it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with path.open("wb") as f:
        pickle.dump({"model.0.weight": _Payload()}, f)
    with pytest.raises(CheckpointError, match="evil.pth"):
        register_checkpoint(path, "denoising", "test_evil", check=True)


# ---------------------------------------------------------------- tiling


def test_tiles_blend_exactly_for_local_operators() -> None:
    image = torch.rand(1, 3, 70, 53)
    calls: list[tuple[int, ...]] = []

    def upscale(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape))
        return t.repeat_interleave(4, -2).repeat_interleave(4, -1) * 0.5

    tiled = run_tiled(upscale, image, scale=4, tile=24, overlap=8)
    whole = image.repeat_interleave(4, -2).repeat_interleave(4, -1) * 0.5
    torch.testing.assert_close(tiled, whole)
    assert len(calls) > 4 and max(max(s[-2:]) for s in calls) <= 24  # bounded tiles


def test_tiled_network_is_close_to_whole(dncnn_file: Path, registered: list[str]) -> None:
    registered.append(register_checkpoint(dncnn_file, "denoising", "test_tiled", tile=32))
    registered.append(register_checkpoint(dncnn_file, "denoising", "test_whole", tile=0))
    image = torch.rand(1, 3, 80, 72)
    tiled, whole = make_tool("test_tiled")(image), make_tool("test_whole")(image)
    assert (tiled - whole).abs().mean() < 0.01


# ---------------------------------------------------------------- configuration


def test_parse_register() -> None:
    assert parse_register("/w/m.pth:denoising:my_tool") == ("/w/m.pth", "denoising", "my_tool")
    assert parse_register("C:/w/m.pth:denoising") == ("C:/w/m.pth", "denoising", None)
    with pytest.raises(ValueError, match="PATH:TASK"):
        parse_register("model.pth")


def test_toml(dncnn_file: Path, tmp_path: Path, registered: list[str]) -> None:
    (tmp_path / "weights").mkdir()
    _save(_dncnn(), tmp_path / "weights" / "d.safetensors")
    toml = tmp_path / "tools.toml"
    toml.write_text(
        f'[[tool]]\nname = "test_toml_a"\ntask = "denoising"\npath = "{dncnn_file}"\n'
        '[[tool]]\nname = "test_toml_b"\ntask = "deraining"\npath = "weights/d.safetensors"\n'
        "tile = 64\noverlap = 8\n"
    )
    names = register_from_toml(toml)
    registered.extend(names)
    assert names == ["test_toml_a", "test_toml_b"]
    assert tool_info("test_toml_b").task == "deraining"
    assert make_tool("test_toml_b")(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)


def test_toml_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[tool]]\nname = 'x'\n")
    with pytest.raises(Exception, match="lacks path, task"):
        register_from_toml(bad)
    with pytest.raises(WeightsNotFoundError, match="nope.toml"):
        register_from_toml(tmp_path / "nope.toml")


def _builtin(kind: str) -> tuple[str, ...]:
    """The built-in tools of ``kind`` a preset offers (never an exploit tool)."""
    return tuple(
        n for n in tool_names(kinds=(kind,)) if TOOLS.is_builtin(n) and not tool_info(n).exploit
    )


def test_toolbox_presets(dncnn_file: Path, registered: list[str]) -> None:
    assert toolbox_tools("classical") == _builtin("classical")
    assert toolbox_tools(("classical", "learned")) == tuple(  # never an exploit tool
        n for n in tool_names(kinds=("classical", "learned")) if not tool_info(n).exploit
    )
    assert set(toolbox_tools("learned")) == set(tool_names(kinds=("learned",)))
    with pytest.raises(UnknownNameError, match="Did you mean 'classical'"):
        toolbox_tools("clasical")
    assert sum(len(v) for v in AGENTICIR_TOOLBOX.values()) == 33
    before = agenticir_status()
    assert "restormer_denoise" in before.missing and "gamma_correction" in before.available
    registered.append(register_checkpoint(dncnn_file, "denoising", "restormer_denoise"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tools = toolbox_tools("agenticir")
    assert "restormer_denoise" in tools and "swinir_sr" not in tools
    message = str(caught[0].message)
    assert "29 of 33" in message and " swinir_sr," in message
    assert "restormer_denoise" not in agenticir_status().missing


def test_env_toolbox_presets(dncnn_file: Path, registered: list[str]) -> None:
    from tir_env.env import TIREnv
    from tir_env.spaces import encode_call
    from tir_env.types import ToolCall

    assert TIREnv(toolbox="learned").tools == toolbox_tools("learned")
    assert TIREnv(toolbox=["classical", "learned"]).config.toolbox == ("classical", "learned")
    if not tool_names(kinds=("pretrained",)):  # nothing registered yet: an empty toolbox
        with pytest.raises(EmptyToolboxError, match="no registered tools"):
            TIREnv(toolbox=("pretrained",))
    registered.append(register_checkpoint(dncnn_file, "denoising", "test_full_dncnn"))
    env = TIREnv(toolbox="full", images="test", patch_size=32, obs_size=32)
    assert "test_full_dncnn" in env.tools and "learned_denoising" in env.tools
    env.reset(seed=0)
    _, _, _, _, info = env.step(encode_call(ToolCall("test_full_dncnn", {}), env.tools))
    assert info["error"] is None and info["tool"].startswith("test_full_dncnn")
    if not set(agenticir_status().available) - set(AGENTICIR_TOOLBOX["brightening"]):
        with pytest.raises(EmptyToolboxError, match="no checkpoint"):
            TIREnv(toolbox="agenticir")  # brightening alone is not the AgenticIR toolbox
    registered.append(register_checkpoint(dncnn_file, "denoising", "swinir_denoise_15"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tools = TIREnv(toolbox="agenticir").tools
    assert "swinir_denoise_15" in tools and "gamma_correction" in tools
    with pytest.raises(UnknownNameError, match="Did you mean 'full'"):
        TIREnv(toolbox="ful")
    with pytest.raises(UnknownNameError, match=r"\('pretrained',\)"):
        TIREnv(toolbox="pretrained")


def test_cli_register(
    dncnn_file: Path, registered: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.cli import main

    registered.append("test_cli_dncnn")
    assert main(["tools", "--register", f"{dncnn_file}:denoising:test_cli_dncnn"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "test_cli_dncnn" in line)
    assert "pretrained" in row and "| yes |" in row


def test_bench_and_restore_with_a_registered_checkpoint(
    dncnn_file: Path, registered: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.cli import main
    from benchmarks.evaluate import read_jsonl
    from tir_env.images import save_image

    registered.append("test_bench_dncnn")
    register = ["--register", f"{dncnn_file}:denoising:test_bench_dncnn", "--toolbox", "full"]
    out = tmp_path / "bench"
    args = ["bench", "single", "--agents", "random", "--limit", "1", "--out", str(out)]
    assert main([*args, *register]) == 0
    records = read_jsonl(out / "single__random@full.jsonl")
    assert {r["agent"] for r in records} == {"random@full"}
    assert {r["toolbox"] for r in records} == {"full"}
    assert "| random@full |" in (out / "leaderboard.md").read_text()
    photo = save_image(tmp_path / "mine.png", np.full((30, 44, 3), 128, np.uint8))
    restored = tmp_path / "restored.png"
    assert main(["restore", str(photo), "-o", str(restored), "--max-steps", "1", *register]) == 0
    assert restored.exists()
    assert main(["restore", str(photo), "--register", "/nope.pth:denoising:x"]) == 2
    assert "nope.pth" in capsys.readouterr().err
    header = (out / "leaderboard.md").read_text().split("## ")[0]
    assert "tir bench single --agents random" in header and "--toolbox full" in header
    assert main([*args[:-2], "--out", str(tmp_path / "b2"), "--toolbox", "agenticir"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not a preset
        main([*args, "--toolbox", "clasical"])


def test_re_registering_still_checks(tmp_path: Path, registered: list[str]) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    registered.append(register_checkpoint(junk, "denoising", "test_junk"))  # no check: cheap
    with pytest.raises(CheckpointError, match="junk.pth"):
        register_checkpoint(junk, "denoising", "test_junk", check=True)


@pytest.mark.gpu
def test_runs_on_cuda(dncnn_file: Path, registered: list[str]) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    registered.append(register_checkpoint(dncnn_file, "denoising", "test_cuda"))
    tool = TOOLS.get("test_cuda")().to("cuda")
    image = torch.rand(1, 3, 40, 40)
    out = tool(image.cuda())
    assert out.is_cuda
    torch.testing.assert_close(out.cpu(), make_tool("test_cuda")(image), atol=1e-4, rtol=0)
