"""``tir bench --tool-timeout``: whole photos get a longer tool timeout than crops."""

from __future__ import annotations

import pytest

from benchmarks.cli import main, parse_command
from benchmarks.commands.bench import (
    WHOLE_PHOTO_TOOL_TIMEOUT_S,
    tool_timeout,
    use_tool_timeout,
)
from tir_env.tools.pool import default_pool, set_default_pool


def _config(*argv: str):
    return parse_command(["bench", "mio-a", *argv])[0]


def test_whole_photos_get_the_long_timeout_and_crops_the_pools_default():
    assert tool_timeout(_config(), whole=False) is None
    assert tool_timeout(_config("--whole"), whole=True) == WHOLE_PHOTO_TOOL_TIMEOUT_S
    assert tool_timeout(_config("--tool-timeout", "12.5"), whole=True) == 12.5
    assert tool_timeout(_config("--tool-timeout", "12.5"), whole=False) == 12.5


@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_timeout_that_is_not_positive_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "mio-a", "--tool-timeout", value])
    assert exit_.value.code == 2
    assert "--tool-timeout must be > 0" in capsys.readouterr().err


def test_use_tool_timeout_replaces_the_default_pool():
    before = default_pool()
    try:
        use_tool_timeout(None)
        assert default_pool() is before  # None keeps the pool
        use_tool_timeout(7.0)
        assert default_pool() is not before and default_pool().timeout_s == 7.0
        assert before.closed
    finally:
        set_default_pool(None)
