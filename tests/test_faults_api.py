"""Fault injection: the ``api-vlm`` agent against a misbehaving server (issue 19).

Each test's docstring is one line, ``<input or fault> | <behaviour>``; ``docs/reliability.md``
is generated from them (``python -m benchmarks.reliability_doc``).
"""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("openai")

from agents.base import make_agent, rollout  # noqa: E402
from benchmarks import fake_openai as fake  # noqa: E402
from benchmarks.evaluate import read_jsonl  # noqa: E402
from tir_env.env import TIREnv  # noqa: E402

SECRET = fake.TEST_API_KEY
KW = dict(images="test", patch_size=32, obs_size=32, max_steps=2)
FAST = dict(timeout=5, retries=1, backoff=0.01, max_backoff=0.05)


@pytest.fixture(scope="module")
def env():
    return TIREnv(**KW)


def _episode(env, agent):
    return rollout(env, agent, seed=3, options={"degradations": ("dark", "noise")})


def test_non_json_200_is_recorded_as_an_error(openai_server, env):
    """api-vlm server answers 200 with a body that is not JSON | an api error recorded for that step; the episode stops cleanly"""  # noqa: E501
    openai_server.script.append(fake.Reply(body=b"<html>not json</html>"))
    agent = make_agent("api-vlm", base_url=openai_server.url, **FAST)
    ep = _episode(env, agent)
    assert [r.call for r in ep.records] == [None]
    assert ep.extra["api_errors"] == 1 and "not JSON" in ep.extra["agent_errors"][0]
    assert ep.extra["requests"] == 1  # an invalid body is not retried


def test_json_that_is_not_a_completion_is_recorded(openai_server, env):
    """api-vlm server answers 200 with JSON that is not a chat completion | an api error recorded for that step"""  # noqa: E501
    openai_server.script.append(fake.Reply(body=json.dumps({"hello": [1, 2]}).encode()))
    agent = make_agent("api-vlm", base_url=openai_server.url, **FAST)
    ep = _episode(env, agent)
    assert ep.extra["api_errors"] == 1 and "not a chat completion" in ep.extra["agent_errors"][0]


def test_bench_goes_on_after_a_non_json_answer(openai_server, tmp_path):
    """tir bench --agents api-vlm with a non-JSON 200 | the episode's record holds the error; the bench exits 0"""  # noqa: E501
    from benchmarks.cli import main

    openai_server.script.append(fake.Reply(body=b"garbage"))
    out = tmp_path / "bench"
    argv = ["bench", "mio-a", "--agents", "api-vlm", "--limit", "1", "--out", str(out),
            "--agent-arg", f"api-vlm.base_url={openai_server.url}",
            "--agent-arg", "api-vlm.image_size=32",
            "--agent-arg", "api-vlm.backoff=0.01"]  # fmt: skip
    assert main(argv) == 0
    records = read_jsonl(out / "mio-a__api-vlm.jsonl")
    assert records and records[0]["api_errors"] == 1


def test_oversized_answer_is_refused_while_streaming(openai_server, env):
    """api-vlm answer larger than max_response_bytes | reading stops at the cap; an api error recorded for the step"""  # noqa: E501
    openai_server.script.append(fake.Reply(content="x" * 400_000, chunks=40))
    agent = make_agent("api-vlm", base_url=openai_server.url, max_response_bytes=50_000, **FAST)
    ep = _episode(env, agent)
    assert ep.extra["api_errors"] == 1
    assert "max_response_bytes" in ep.extra["agent_errors"][0]


def test_trickling_server_hits_the_total_deadline(openai_server, env):
    """api-vlm server trickling its answer in chunks, each within the socket timeout | the request fails at its total deadline (timeout), recorded; never completes late"""  # noqa: E501
    openai_server.script.append(fake.Reply(chunks=10, trickle=0.25))  # 2.5 s in all, 0.25 s a chunk
    agent = make_agent("api-vlm", base_url=openai_server.url, timeout=0.8, retries=0, backoff=0.01)
    ep = _episode(env, agent)
    assert ep.extra["api_errors"] == 1 and "timeout" in ep.extra["agent_errors"][0]


def test_dropped_connection_is_retried(openai_server, env):
    """api-vlm server closing the connection without answering, once | retried; the next answer is used"""  # noqa: E501
    openai_server.script += [fake.Reply(drop=True), fake.Reply()]
    agent = make_agent("api-vlm", base_url=openai_server.url, **FAST)
    ep = _episode(env, agent)
    assert ep.extra["retries"] == 1 and ep.extra["api_errors"] == 0
    assert len(openai_server.requests) == 2


def test_connection_dropped_every_time_is_recorded(openai_server, env):
    """api-vlm server dropping every connection | retried up to retries, then an api error recorded (no crash)"""  # noqa: E501
    openai_server.script += [fake.Reply(drop=True)] * 2
    agent = make_agent("api-vlm", base_url=openai_server.url, **FAST)
    ep = _episode(env, agent)
    assert ep.extra["api_errors"] == 1 and "connection dropped" in ep.extra["agent_errors"][0]


def test_key_prefix_echoed_by_a_401_is_redacted(openai_server, env, caplog):
    """api-vlm 401 whose message echoes the first 12 characters of the key | APIRequestError without any fragment of the key; logs clean too"""  # noqa: E501
    from agents.vlm.remote import APIRequestError

    caplog.set_level(logging.DEBUG)
    openai_server.script.append(fake.Reply(status=401, echo_key=12))
    agent = make_agent("api-vlm", base_url=openai_server.url, **FAST)
    with pytest.raises(APIRequestError, match="HTTP 401") as err:
        _episode(env, agent)
    assert SECRET[:12] not in str(err.value) and SECRET[:6] not in str(err.value)
    assert SECRET[:6] not in caplog.text


@given(
    secret=st.text("abcdefXYZ0123-", min_size=6, max_size=40),
    start=st.integers(0, 40),
    length=st.integers(6, 40),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_redact_removes_every_fragment_of_the_key(secret, start, length, before, after):
    """any text quoting any 6+ character fragment of the API key | redacted: no 6-character piece of the key is left"""  # noqa: E501
    from agents.vlm.remote import redact

    start = min(start, len(secret) - 6)
    fragment = secret[start : start + length]
    out = redact(before + fragment + after, secret)
    assert all(secret[i : i + 6] not in out for i in range(len(secret) - 5))
