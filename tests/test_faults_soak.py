"""The soak benchmark, shortened (issue 19): faults injected, every episode still recorded.

The full run is ``python -m benchmarks.soak`` (results in ``benchmarks/results/soak.json``);
this default-tier test runs it with a handful of episodes and a high fault rate.
"""

from __future__ import annotations

import json

import pytest

from benchmarks.soak import main
from tir_env.tools.base import TOOLS

pytest.importorskip("openai")


def test_short_soak_records_every_episode(tmp_path, monkeypatch):
    """soak: 12 vector-env episodes with 30% of tool calls raising, hanging or NaN, and 6 api-vlm episodes with 50% garbage answers | every episode recorded, every fault seen as a recorded error, soak tools unregistered after"""  # noqa: E501
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    out = tmp_path / "soak.json"
    argv = ["--episodes", "12", "--num-envs", "4", "--fault-rate", "0.3", "--timeout-s", "0.1",
            "--api-episodes", "6", "--garbage-rate", "0.5", "--warmup", "2",
            "--out", str(out)]  # fmt: skip
    main(argv)
    result = json.loads(out.read_text())
    tools, api = result["tools"], result["api"]
    assert tools["episodes_recorded"] == 12 and tools["returns_finite"]
    assert sum(tools["faults_injected"].values()) > 0
    # Every injected fault came back as an error the env recorded (none lost, none silent).
    assert sum(tools["tool_errors_seen"].values()) >= sum(tools["faults_injected"].values()) - (
        tools["pool_stats"]["calls"] - tools["tool_calls"]  # calls after the last record
    )
    assert api["episodes_recorded"] == 6 and api["api_errors_recorded"] >= api["garbage_sent"]
    assert result["checks"]["every_tool_episode_recorded"]
    assert not [name for name in TOOLS.names() if name.startswith("soak_")]
