"""Restoration tools: the contract, the registry and the built-in toolbox."""

from tir_env.tools.base import (
    TOOLS,
    Tool,
    ToolInfo,
    make_tool,
    register_tool,
    tool_info,
    tool_names,
    validate_call,
)

__all__ = [
    "TOOLS",
    "Tool",
    "ToolInfo",
    "make_tool",
    "register_tool",
    "tool_info",
    "tool_names",
    "validate_call",
]
