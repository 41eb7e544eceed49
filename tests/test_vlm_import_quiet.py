"""Loading the VLM's LoRA library asks nothing of the network and prints nothing of its own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

#: What bitsandbytes (imported by peft) printed at import: its Hub kernel lookup.
NOISE = ("gemm_4bit_forward", "publisher trust", "kernels-community")


def test_import_peft_is_quiet_and_offline() -> None:
    """A fresh process imports peft through TIR without the Hub lookup's warnings."""
    pytest.importorskip("peft")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    code = (
        "import os; from agents.vlm.model import import_peft; import_peft(); "
        "print('offline after:', os.environ.get('HF_HUB_OFFLINE'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert not [n for n in NOISE if n in done.stderr + done.stdout], done.stderr
    assert "offline after: None" in done.stdout  # the environment is restored
