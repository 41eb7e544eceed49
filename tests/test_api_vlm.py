"""The ``api-vlm`` agent against a scripted chat-completions server on 127.0.0.1 (no network)."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openai")

from agents.base import make_agent, rollout  # noqa: E402
from agents.vlm.remote import (  # noqa: E402
    APIConfigError,
    APIRequestError,
    APIServerUnavailableError,
    encode_png,
)
from benchmarks import fake_openai as fake  # noqa: E402
from benchmarks.evaluate import read_jsonl  # noqa: E402
from tir_env.env import TIREnv  # noqa: E402
from tir_env.errors import ConfigValueError  # noqa: E402
from tir_env.tools.base import tool_info  # noqa: E402

SECRET = fake.TEST_API_KEY
KW = dict(images="test", patch_size=32, obs_size=32, max_steps=2)
FAST = dict(timeout=5, retries=2, backoff=0.01, max_backoff=0.05)


@pytest.fixture(scope="module")
def env():
    return TIREnv(**KW)


def _episode(env, agent):
    return rollout(env, agent, seed=3, options={"degradations": ("dark", "noise")})


def _first_tool(env):
    name = env.tools[0]
    param = next(iter(tool_info(name).params), None)
    return name, param


def test_text_mode_episode_sends_image_schema_and_counts(openai_server, env):
    name, _ = _first_tool(env)
    openai_server.script += [fake.text_call(name), fake.Reply(usage=(50, 5))]
    agent = make_agent("api-vlm", base_url=openai_server.url, model="m", image_size="16", **FAST)
    ep = _episode(env, agent)
    assert [r.call.tool for r in ep.records if r.call] == [name]
    assert ep.extra["requests"] == 2 and ep.extra["retries"] == 0
    assert ep.extra["prompt_tokens"] == 150 and ep.extra["completion_tokens"] == 15
    assert ep.extra["api_model"] == "m" and ep.extra["api_latency_s"] > 0
    assert ep.extra["format_errors"] == 0 and ep.extra["agent_errors"] == []
    first, second = (r["json"] for r in openai_server.requests)
    assert openai_server.requests[0]["path"] == "/v1/chat/completions"
    assert openai_server.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    assert "<tools>" in first["messages"][0]["content"] and name in first["messages"][0]["content"]
    image_part, text_part = first["messages"][1]["content"]
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    from PIL import Image

    png = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert png.format == "PNG" and max(png.size) == 16
    assert "No tools called yet" in text_part["text"]
    assert "History:" in second["messages"][1]["content"][1]["text"]
    assert "tools" not in first


def test_tools_mode_sends_functions_and_parses_tool_calls(openai_server, env):
    name, param = _first_tool(env)
    args = {param: tool_info(name).params[param].default} if param else {}
    openai_server.script += [
        fake.Reply(tool_calls=[(name, args)]),
        fake.Reply(tool_calls=[("stop", {})]),
    ]
    agent = make_agent("api-vlm", base_url=openai_server.url, mode="tools", **FAST)
    ep = _episode(env, agent)
    assert [r.call.tool for r in ep.records if r.call] == [name]
    assert ep.extra["format_errors"] == 0 and ep.extra["api_mode"] == "tools"
    body = openai_server.requests[0]["json"]
    functions = {t["function"]["name"]: t["function"] for t in body["tools"]}
    assert set(functions) == {*env.tools, "stop"}
    if param:
        assert param in functions[name]["parameters"]["properties"]
    assert body["tool_choice"] == "auto"


@pytest.mark.parametrize(
    "reply",
    [
        fake.Reply(content="I would denoise it first."),
        fake.Reply(content='<tool_call>{"name": "no_such_tool", "arguments": {}}</tool_call>'),
        fake.Reply(content="<tool_call>{not json</tool_call>"),
        fake.Reply(content=None, refusal="I can't help with that."),
        fake.Reply(content=None, tool_calls=[("stop", "{oops")]),
        fake.Reply(content=None, tool_calls=[("stop", {}), ("stop", {})]),
    ],
    ids=["prose", "unknown-tool", "bad-json", "refusal", "bad-arguments", "two-calls"],
)
def test_malformed_or_refused_answer_is_recorded_and_stops(openai_server, env, reply):
    openai_server.script.append(reply)
    agent = make_agent("api-vlm", base_url=openai_server.url, mode="tools", **FAST)
    ep = _episode(env, agent)
    assert [r.call for r in ep.records] == [None]  # stopped at once
    assert ep.extra["format_errors"] == 1 and ep.extra["requests"] == 1
    assert ep.extra["agent_errors"][0].startswith("format error:")


def test_5xx_and_429_are_retried_with_backoff(openai_server, env):
    openai_server.script += [
        fake.Reply(status=500),
        fake.Reply(status=429, headers={"Retry-After": "0.02"}),
        fake.Reply(status=503),
    ]
    agent = make_agent("api-vlm", base_url=openai_server.url, **{**FAST, "retries": 3})
    ep = _episode(env, agent)
    assert ep.extra["retries"] == 3 and ep.extra["requests"] == 4
    assert ep.extra["api_errors"] == 0 and ep.extra["agent_errors"] == []


def test_retries_are_bounded_and_recorded(openai_server, env):
    openai_server.script += [fake.Reply(status=502)] * 3
    agent = make_agent("api-vlm", base_url=openai_server.url, **FAST)
    ep = _episode(env, agent)
    assert [r.call for r in ep.records] == [None]
    assert ep.extra["requests"] == 3 and ep.extra["retries"] == 2 and ep.extra["api_errors"] == 1
    assert "HTTP 502" in ep.extra["agent_errors"][0]


def test_slow_answer_times_out_cleanly(openai_server, env):
    openai_server.script += [fake.Reply(delay=1.0)] * 2
    agent = make_agent("api-vlm", base_url=openai_server.url, timeout=0.3, retries=1, backoff=0.01)
    start = time.perf_counter()
    ep = _episode(env, agent)
    assert time.perf_counter() - start < 5
    assert ep.extra["api_errors"] == 1 and ep.extra["retries"] == 1
    assert "timeout" in ep.extra["agent_errors"][0]


def test_timeout_then_success(openai_server, env):
    openai_server.script += [fake.Reply(delay=1.0), fake.Reply()]
    agent = make_agent("api-vlm", base_url=openai_server.url, timeout=0.3, retries=2, backoff=0.01)
    ep = _episode(env, agent)
    assert ep.extra["api_errors"] == 0 and ep.extra["retries"] == 1 and ep.extra["requests"] == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_down_is_a_named_error_not_a_hang(env, monkeypatch):
    monkeypatch.setenv("TIR_API_KEY", SECRET)
    url = f"http://127.0.0.1:{_free_port()}/v1"
    agent = make_agent("api-vlm", base_url=url, timeout=5, retries=3, backoff=1)
    start = time.perf_counter()
    with pytest.raises(APIServerUnavailableError, match="cannot reach") as err:
        _episode(env, agent)
    assert time.perf_counter() - start < 5  # no retry loop on a refused connection
    assert SECRET not in str(err.value) and url in str(err.value)


def test_client_errors_are_named_and_redacted(openai_server, env):
    openai_server.script.append(fake.Reply(status=401))
    agent = make_agent("api-vlm", base_url=openai_server.url, **FAST)
    with pytest.raises(APIRequestError, match="HTTP 401") as err:
        _episode(env, agent)
    assert SECRET not in str(err.value) and len(openai_server.requests) == 1


def test_api_key_env_name_is_configurable(openai_server, env, monkeypatch):
    monkeypatch.setenv("MY_PROVIDER_KEY", "sk-other")
    agent = make_agent("api-vlm", base_url=openai_server.url, api_key_env="MY_PROVIDER_KEY", **FAST)
    _episode(env, agent)
    assert openai_server.requests[0]["headers"]["authorization"] == "Bearer sk-other"


def test_configuration_errors(monkeypatch):
    monkeypatch.delenv("TIR_API_BASE_URL", raising=False)
    with pytest.raises(APIConfigError, match="base_url"):
        make_agent("api-vlm")
    with pytest.raises(ConfigValueError, match="mode"):  # parsed by its Literal type
        make_agent("api-vlm", base_url="http://127.0.0.1:1/v1", mode="chat")


def test_encode_png_downscales_longer_side_only():
    image = np.zeros((40, 80, 3), dtype=np.uint8)
    from PIL import Image

    def size(url: str) -> tuple[int, int]:
        return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size

    assert size(encode_png(image, 20)) == (20, 10)
    assert size(encode_png(image, 500)) == (80, 40)


def test_bench_cli_against_fake_server_writes_accounting_and_no_secret(
    openai_server, tmp_path: Path, capsys, caplog
):
    from benchmarks.cli import main

    caplog.set_level("DEBUG")
    openai_server.script += [fake.Reply(status=500)]  # one retry shows up in the record
    out = tmp_path / "bench"
    argv = ["bench", "mio-a", "--agents", "api-vlm", "--limit", "1", "--out", str(out),
            "--agent-arg", f"api-vlm.base_url={openai_server.url}",
            "--agent-arg", "api-vlm.model=fake-vlm", "--agent-arg", "api-vlm.backoff=0.01",
            "--agent-arg", "api-vlm.image_size=32"]  # fmt: skip
    assert main(argv) == 0
    records = read_jsonl(out / "mio-a__api-vlm.jsonl")
    assert records and len(openai_server.requests) >= len(records)
    fields = {
        "prompt_tokens",
        "completion_tokens",
        "requests",
        "retries",
        "api_latency_s",
        "api_model",
        "format_errors",
        "api_errors",
        "metrics_output",
        "wall_time_s",
    }
    for record in records:
        assert fields <= set(record)
        assert record["api_model"] == "fake-vlm" and record["prompt_tokens"] >= 100
        assert record["api_latency_s"] > 0
    assert sum(r["retries"] for r in records) == 1
    captured = capsys.readouterr()
    texts = [captured.out, captured.err, caplog.text, json.dumps(openai_server.requests[0]["json"])]
    texts += [p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file()]
    assert all(SECRET not in t for t in texts)


def test_concurrency_limit_is_shared_per_endpoint(openai_server, env, monkeypatch):
    import threading

    from agents.vlm import remote

    # the limiter of an endpoint is made by its first agent: an earlier test's server may have
    # had this URL (a reused port) with another limit
    monkeypatch.setattr(remote, "_SEMAPHORES", {})
    openai_server.script += [fake.Reply(delay=0.15)] * 4
    agents = [
        make_agent("api-vlm", base_url=openai_server.url, concurrency=1, **FAST) for _ in range(4)
    ]
    messages = [{"role": "user", "content": "hi"}]
    threads = [threading.Thread(target=a._request, args=(messages, env.tools)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(openai_server.requests) == 4 and openai_server.max_in_flight == 1
