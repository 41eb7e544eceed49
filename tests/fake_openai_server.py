"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests only.

Standard library only (``http.server``). Each ``POST /v1/chat/completions`` pops the next
:class:`Reply` of the script (when the script is empty, the default reply: a stop call) and
records the request (path, lower-cased headers, JSON body) so tests can check what the agent sent.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer.

    Attributes:
        content: Assistant text (the text protocol, or anything malformed).
        tool_calls: Native calls as ``(name, arguments)``; a string argument is sent verbatim.
        status: HTTP status; not 200 sends an OpenAI-style error body.
        delay: Seconds to wait before answering (beyond the client's timeout: a timeout).
        headers: Extra response headers (``Retry-After``).
        refusal: A refusal message (``message.refusal``).
        usage: ``(prompt_tokens, completion_tokens)``.
    """

    content: str | None = '<tool_call>{"name": "stop", "arguments": {}}</tool_call>'
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    refusal: str | None = None
    usage: tuple[int, int] = (100, 10)


def text_call(name: str, **arguments: float) -> Reply:
    """A text-protocol answer calling ``name``."""
    body = json.dumps({"name": name, "arguments": arguments})
    return Reply(content=f"<tool_call>{body}</tool_call>")


class FakeOpenAI:
    """The server: ``url`` is the ``base_url``; ``script`` and ``requests`` are shared lists."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = server._next(self.path, headers, body)
                if reply.delay:
                    time.sleep(reply.delay)
                with server._lock:
                    server.in_flight -= 1
                payload = server._payload(reply, body)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _next(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "json": body})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.script.pop(0) if self.script else Reply()

    @staticmethod
    def _payload(reply: Reply, body: dict[str, Any]) -> bytes:
        if reply.status != 200:
            error = {"message": f"scripted HTTP {reply.status}", "type": "server_error"}
            return json.dumps({"error": error}).encode()
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.refusal is not None:
            message["refusal"] = reply.refusal
        if reply.tool_calls:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{k}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
                for k, (name, args) in enumerate(reply.tool_calls)
            ]
        prompt_tokens, completion_tokens = reply.usage
        return json.dumps(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "fake"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        ).encode()
