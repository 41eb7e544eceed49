"""``tir weights``: manifest, verified resumable downloads, and fetched files resolving.

Every download goes to a loopback ``http.server`` in a thread that serves randomly
initialised spandrel checkpoints (the tiny DnCNN and SwinIR of tests/test_pretrained.py) and
misbehaves on request: cuts a body once, serves wrong bytes, 404s, hangs, trickles.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tir_env import downloads
from tir_env.downloads import FetchConfig, fetch_entry, verify_entry
from tir_env.errors import (
    ChecksumError,
    DownloadError,
    DownloadTimeoutError,
    LicenceNotAcceptedError,
    ManifestError,
    OfflineError,
)
from tir_env.weights_manifest import (
    WeightEntry,
    check_file_name,
    load_manifest,
    parse_entry,
    parse_manifest,
)

pytest.importorskip("spandrel")


def _checkpoint_bytes(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def dncnn_bytes() -> bytes:
    from tests.test_pretrained import _dncnn

    return _checkpoint_bytes(_dncnn())


@pytest.fixture(scope="module")
def swinir_bytes() -> bytes:
    from tests.test_pretrained import _swinir_x4

    return _checkpoint_bytes(_swinir_x4())


class Server:
    """A loopback HTTP server: ``files`` by name, with per-name misbehaviour."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_once: set[str] = set()  # send half the body, then close (once)
        self.hang: set[str] = set()  # never answer (until the test ends)
        self.trickle: set[str] = set()  # one byte every 50 ms
        self.requests: list[tuple[str, str | None]] = []  # (name, Range header)
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                if name in server.hang:
                    server.release.wait(10)
                    return
                if name not in server.files:
                    self.send_error(404)
                    return
                body, start = server.files[name], 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if name in server.cut_once:
                    server.cut_once.discard(name)
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if name in server.trickle:
                    for i in range(start, len(body)):
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(0.05)
                    return
                self.wfile.write(body[start:])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, name: str, body: bytes) -> str:
        self.files[name] = body
        return f"{self.url}/{name}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    thread = threading.Thread(target=s.httpd.serve_forever, daemon=True)
    thread.start()
    yield s
    s.release.set()
    s.httpd.shutdown()
    s.httpd.server_close()


def _entry(file: str, url: str, body: bytes, **overrides: object) -> WeightEntry:
    raw = {
        "name": file.split(".")[0].lower().replace("-", "_"),
        "kind": "tool",
        "task": "denoising",
        "architecture": "DnCNN (random, test)",
        "file": file,
        "url": url,
        "sha256": hashlib.sha256(body).hexdigest(),
        "hash_source": "test",
        "bytes": len(body),
        "licence": "MIT",
    }
    return parse_entry(raw | overrides)


FAST = FetchConfig(timeout=2.0, deadline=10.0, retries=2, progress=False)


def test_fetch_verify_and_keep(server: Server, tmp_path: Path, dncnn_bytes: bytes) -> None:
    entry = _entry("dncnn.pth", server.add("dncnn.pth", dncnn_bytes), dncnn_bytes)
    result = fetch_entry(entry, tmp_path, FAST)
    assert result.status == "downloaded" and result.path == tmp_path / "tools" / "dncnn.pth"
    assert result.path.read_bytes() == dncnn_bytes
    assert not list((tmp_path / "tools").glob("*.part"))
    assert verify_entry(entry, tmp_path).status == "ok"
    assert fetch_entry(entry, tmp_path, FAST).status == "present"
    assert len(server.requests) == 1  # the verified file was kept, not fetched again


def test_unpublished_hash_is_pinned_then_checked(
    server: Server, tmp_path: Path, dncnn_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    entry = _entry("pin.pth", server.add("pin.pth", dncnn_bytes), dncnn_bytes, sha256="", bytes=0)
    result = fetch_entry(entry, tmp_path, FAST)
    assert result.pinned and "no full SHA-256 is published" in caplog.text
    assert downloads.read_pins(tmp_path) == {"tools/pin.pth": result.sha256}
    assert verify_entry(entry, tmp_path).status == "ok"
    result.path.write_bytes(dncnn_bytes[:-1] + b"x")  # changed after pinning
    assert verify_entry(entry, tmp_path).status == "mismatch"


def test_published_prefix_must_match(server: Server, tmp_path: Path, dncnn_bytes: bytes) -> None:
    url = server.add("pre.pth", dncnn_bytes)
    wrong = "0" * 8 if not hashlib.sha256(dncnn_bytes).hexdigest().startswith("0") else "1" * 8
    with pytest.raises(ChecksumError):
        fetch_entry(_entry("pre.pth", url, dncnn_bytes, sha256=wrong, bytes=0), tmp_path, FAST)
    good = hashlib.sha256(dncnn_bytes).hexdigest()[:8]
    assert fetch_entry(_entry("pre.pth", url, dncnn_bytes, sha256=good), tmp_path, FAST).pinned


def test_resume_after_a_cut_connection(server: Server, tmp_path: Path, dncnn_bytes: bytes) -> None:
    entry = _entry("cut.pth", server.add("cut.pth", dncnn_bytes), dncnn_bytes)
    server.cut_once.add("cut.pth")
    result = fetch_entry(entry, tmp_path, FAST)
    assert result.path.read_bytes() == dncnn_bytes
    ranges = [r for name, r in server.requests if name == "cut.pth"]
    assert ranges[0] is None and ranges[1] == f"bytes={len(dncnn_bytes) // 2}-"


def test_resume_on_the_next_call(server: Server, tmp_path: Path, dncnn_bytes: bytes) -> None:
    entry = _entry("later.pth", server.add("later.pth", dncnn_bytes), dncnn_bytes)
    server.cut_once.add("later.pth")
    with pytest.raises(DownloadError, match="run the fetch again to resume"):
        fetch_entry(entry, tmp_path, dataclasses.replace(FAST, retries=0))
    part = tmp_path / "tools" / "later.pth.part"
    assert part.stat().st_size == len(dncnn_bytes) // 2
    assert not (tmp_path / "tools" / "later.pth").exists()
    assert fetch_entry(entry, tmp_path, FAST).sha256 == hashlib.sha256(dncnn_bytes).hexdigest()
    assert server.requests[-1][1] == f"bytes={len(dncnn_bytes) // 2}-"


def test_corrupted_download_is_not_placed(
    server: Server, tmp_path: Path, dncnn_bytes: bytes
) -> None:
    entry = _entry("bad.pth", server.add("bad.pth", dncnn_bytes[:-4] + b"XXXX"), dncnn_bytes)
    with pytest.raises(ChecksumError, match="SHA-256"):
        fetch_entry(entry, tmp_path, FAST)
    assert list((tmp_path / "tools").iterdir()) == []  # neither the file nor a .part


def test_http_404(server: Server, tmp_path: Path, dncnn_bytes: bytes) -> None:
    entry = _entry("gone.pth", f"{server.url}/gone.pth", dncnn_bytes)
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_entry(entry, tmp_path, FAST)


def test_hanging_server_times_out(server: Server, tmp_path: Path, dncnn_bytes: bytes) -> None:
    entry = _entry("hang.pth", server.add("hang.pth", dncnn_bytes), dncnn_bytes)
    server.hang.add("hang.pth")
    config = dataclasses.replace(FAST, timeout=0.3, deadline=2.0)
    with pytest.raises(DownloadTimeoutError):
        fetch_entry(entry, tmp_path, config)


def test_trickling_server_meets_the_deadline(
    server: Server, tmp_path: Path, dncnn_bytes: bytes
) -> None:
    entry = _entry("slow.pth", server.add("slow.pth", dncnn_bytes), dncnn_bytes)
    server.trickle.add("slow.pth")
    with pytest.raises(DownloadTimeoutError, match="deadline"):
        fetch_entry(entry, tmp_path, dataclasses.replace(FAST, deadline=0.3))
    assert not (tmp_path / "tools" / "slow.pth").exists()


def test_no_network_is_a_named_error(tmp_path: Path, dncnn_bytes: bytes) -> None:
    with socket.socket() as s:  # a port nothing listens on: refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = _entry("x.pth", f"http://127.0.0.1:{port}/x.pth", dncnn_bytes)
    with pytest.raises(DownloadError, match="cannot connect"):
        fetch_entry(entry, tmp_path, FAST)


def test_offline_mode_opens_no_socket(
    tmp_path: Path, dncnn_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_socket(*args: object, **kwargs: object) -> None:
        raise AssertionError("offline mode opened a socket")

    monkeypatch.setattr(socket, "create_connection", no_socket)
    monkeypatch.setenv(downloads.OFFLINE_ENV, "1")
    entry = _entry("x.pth", "https://example.com/x.pth", dncnn_bytes)
    with pytest.raises(OfflineError, match="offline"):
        fetch_entry(entry, tmp_path, FAST)
    monkeypatch.delenv(downloads.OFFLINE_ENV)
    with pytest.raises(OfflineError):
        fetch_entry(entry, tmp_path, dataclasses.replace(FAST, offline=True))


def test_noncommercial_needs_consent(server: Server, tmp_path: Path, dncnn_bytes: bytes) -> None:
    url = server.add("nc.pth", dncnn_bytes)
    entry = _entry("nc.pth", url, dncnn_bytes, noncommercial=True, licence="Academic")
    with pytest.raises(LicenceNotAcceptedError, match="--accept-noncommercial"):
        fetch_entry(entry, tmp_path, FAST)
    assert server.requests == []
    config = dataclasses.replace(FAST, accept_noncommercial=True)
    assert fetch_entry(entry, tmp_path, config).status == "downloaded"


def test_mirror_and_manual_entries(server: Server, tmp_path: Path, dncnn_bytes: bytes) -> None:
    server.add("m.pth", dncnn_bytes)
    manual = _entry("m.pth", "https://drive.example.com/m", dncnn_bytes, direct=False)
    with pytest.raises(DownloadError, match=str(tmp_path / "tools" / "m.pth")):
        fetch_entry(manual, tmp_path, FAST)
    mirror = dataclasses.replace(FAST, base_url=server.url + "/")
    assert fetch_entry(manual, tmp_path, mirror).status == "downloaded"


# ------------------------------------------------------------------------------ manifest


@given(st.text(min_size=1, max_size=30))
def test_unsafe_file_names_are_refused(name: str) -> None:
    unsafe = "/" in name or "\\" in name or ".." in name
    try:
        check_file_name(name)
    except ManifestError:
        return
    assert not unsafe and (Path("root") / name).parent == Path("root")


@given(
    st.builds(
        lambda a, sep, b: a + sep + b,
        st.text(max_size=6),
        st.sampled_from(["/", "..", "\\", "/../"]),
        st.text(max_size=6),
    )
)
def test_manifest_refuses_path_escapes(file: str) -> None:
    with pytest.raises(ManifestError, match="unsafe"):
        _entry(file, "https://example.com/x", b"", name="x")


def test_manifest_errors() -> None:
    with pytest.raises(ManifestError, match="unknown keys"):
        _entry("a.pth", "https://x/a", b"", sha265="")
    with pytest.raises(ManifestError, match="sha256"):
        _entry("a.pth", "https://x/a", b"", sha256="abc")
    with pytest.raises(ManifestError, match="a tool needs a task"):
        _entry("a.pth", "https://x/a", b"", task="juggling")
    text = '[[weight]]\nname="a"\nkind="tool"\ntask="denoising"\narchitecture="x"\nfile="a.pth"\n'
    text += 'url="https://x/a"\nsha256=""\nhash_source="none"\n'
    with pytest.raises(ManifestError, match="duplicate"):
        parse_manifest(text + text)


def test_shipped_manifest_matches_the_slots_and_the_metrics() -> None:
    from tir_env.metrics.weights import REQUIRED_WEIGHTS
    from tir_env.tools.presets import AGENTICIR_TOOLBOX

    manifest = load_manifest()
    slots = {n: task for task, names in AGENTICIR_TOOLBOX.items() for n in names}
    for entry in manifest.tools():
        assert slots[entry.name] == entry.task, entry.name
    wanted = {f.relpath: f.url for files in REQUIRED_WEIGHTS.values() for f in files}
    shipped = {e.relpath: e.url for e in manifest.entries if e.kind == "metric"}
    assert shipped == wanted
    for name, files in REQUIRED_WEIGHTS.items():
        for f in files:
            assert any(e.relpath == f.relpath and name in e.metrics for e in manifest.entries)


# ------------------------------------------------------------------------------ resolving


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh $TIR_WEIGHTS_DIR; tools registered from it are removed afterwards."""
    from tir_env.tools import TOOLS
    from tir_env.tools.base import make_tool

    monkeypatch.setenv("TIR_WEIGHTS_DIR", str(tmp_path))
    before = set(TOOLS.names())
    yield tmp_path
    for name in set(TOOLS.names()) - before:
        TOOLS.remove(name)
    make_tool.cache_clear()


def test_agenticir_toolbox_resolves_fetched_files(
    server: Server, weights_dir: Path, dncnn_bytes: bytes, swinir_bytes: bytes
) -> None:
    from tir_env.env import TIREnv
    from tir_env.spaces import encode_call
    from tir_env.types import ToolCall

    manifest = load_manifest()
    fakes = {"swinir_denoise_15": dncnn_bytes, "swinir_sr": swinir_bytes}
    for name, body in fakes.items():
        real = manifest.get(name)
        server.add(real.file, body)
        fake = dataclasses.replace(real, sha256=hashlib.sha256(body).hexdigest(), bytes=len(body))
        fetch_entry(fake, None, dataclasses.replace(FAST, base_url=server.url))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the slots still empty are listed in a warning
        env = TIREnv(toolbox="agenticir", images="test", patch_size=32, obs_size=32)
    assert {"swinir_denoise_15", "swinir_sr"} <= set(env.tools)
    env.reset(seed=0)
    for name in fakes:
        _, _, _, _, info = env.step(encode_call(ToolCall(name, {}), env.tools))
        assert info["error"] is None, info["error"]


def test_adaptive_metrics_see_fetched_metric_files(weights_dir: Path) -> None:
    from tir_env.metrics import unavailable_reason

    manifest = load_manifest()
    for name in ("clip_rn50", "musiq_koniq"):
        path = manifest.get(name).path(weights_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"placeholder: placement only, never loaded")
    pytest.importorskip("pyiqa")
    assert unavailable_reason("clipiqa") is None and unavailable_reason("musiq") is None
    assert unavailable_reason("maniqa") is not None
    from tir_env.adaptive_reward import AdaptiveReward

    auto = AdaptiveReward(metrics="auto").required_metrics
    assert auto == ("psnr", "ssim", "niqe", "clipiqa", "musiq")  # built lazily: nothing loads
    assert AdaptiveReward().required_metrics == ("psnr", "ssim", "niqe")  # opt-in only


def test_adaptive_auto_without_files_keeps_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIR_WEIGHTS_DIR", str(tmp_path))
    from tir_env.adaptive_reward import AdaptiveReward

    assert AdaptiveReward(metrics="auto").required_metrics == ("psnr", "ssim", "niqe")


# ------------------------------------------------------------------------------ CLI


def test_cli_list_fetch_verify(
    server: Server, tmp_path: Path, dncnn_bytes: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.cli import main
    from tir_env.tools.presets import AGENTICIR_TOOLBOX

    assert main(["weights", "list", "--weights-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in (n for names in AGENTICIR_TOOLBOX.values() for n in names):
        assert f"\n{name} | " in out
    assert "| 274 MiB | Apache-2.0 |" in out  # fbcnn_blind's size and licence

    sha = hashlib.sha256(dncnn_bytes).hexdigest()
    manifest = tmp_path / "m.toml"
    manifest.write_text(
        f'[[weight]]\nname = "nc_tool"\nkind = "tool"\ntask = "denoising"\narchitecture = "x"\n'
        f'file = "nc.pth"\nurl = "https://example.invalid/nc.pth"\nsha256 = "{sha}"\n'
        f'hash_source = "test"\nlicence = "Academic"\nnoncommercial = true\n'
    )
    server.add("nc.pth", dncnn_bytes)
    args = ["weights", "fetch", "nc_tool", "--manifest", str(manifest)]
    args += ["--weights-dir", str(tmp_path), "--base-url", server.url, "--no-progress"]
    assert main(args) == 1
    assert "licence: Academic, NON-COMMERCIAL" in capsys.readouterr().out
    assert main([*args, "--accept-noncommercial"]) == 0
    verify = ["weights", "verify", "--manifest", str(manifest), "--weights-dir", str(tmp_path)]
    assert main(verify) == 0
    assert "nc_tool" in capsys.readouterr().out


def test_weights_doc_is_generated_from_the_manifest() -> None:
    from benchmarks.gen_docs import DOCS, weights_markdown

    text = weights_markdown()
    assert (DOCS / "weights.md").read_text() == text, "run: python -m benchmarks.gen_docs"
    assert "none of these\nreal downloads was run" in text
    for entry in load_manifest().entries:
        assert f"| `{entry.name}` |" in text
