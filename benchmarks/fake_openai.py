"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests and the soak.

Standard library only (``http.server``). Each ``POST /v1/chat/completions`` pops the next
:class:`Reply` of the script (when the script is empty, the default reply: a stop call, or with
probability ``garbage_rate`` a 200 whose body is not JSON) and records the request (path,
lower-cased headers, JSON body) so tests can check what the agent sent. Faults a reply can
script: a delay, a raw body, a body trickled in chunks, a dropped connection, a 4xx echoing
the start of the caller's key. Used by the test suite (the ``openai_server`` fixture of
``tests/conftest.py``) and by the soak benchmark (:mod:`benchmarks.soak`).
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The API key tests give the agent (and check never leaks into records, logs or errors).
TEST_API_KEY = "sk-test-SECRET-4f9c2e"


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
        body: Raw body sent instead of the JSON answer (garbage, HTML, a truncated answer).
        chunks: Send the body in this many pieces ...
        trickle: ... waiting this many seconds before each piece (a slow-drip server).
        drop: Close the connection without answering (after reading the request).
        echo_key: For a status other than 200: the error message quotes this many leading
            characters of the caller's bearer key (as some providers do on a 401).
    """

    content: str | None = '<tool_call>{"name": "stop", "arguments": {}}</tool_call>'
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    refusal: str | None = None
    usage: tuple[int, int] = (100, 10)
    body: bytes | None = None
    chunks: int = 1
    trickle: float = 0.0
    drop: bool = False
    echo_key: int = 0


def text_call(name: str, **arguments: float) -> Reply:
    """A text-protocol answer calling ``name``."""
    body = json.dumps({"name": name, "arguments": arguments})
    return Reply(content=f"<tool_call>{body}</tool_call>")


class FakeOpenAI:
    """The server: ``url`` is the ``base_url``; ``script`` and ``requests`` are shared lists."""

    def __init__(self, garbage_rate: float = 0.0, seed: int = 0) -> None:
        self.script: list[Reply] = []
        self.garbage_rate = garbage_rate
        self.garbage_sent = 0
        self._rng = random.Random(seed)
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
                if reply.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                payload = server._payload(reply, body, headers.get("authorization", ""))
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    step = -(-len(payload) // max(1, reply.chunks))
                    for start in range(0, len(payload), step):
                        if reply.trickle:
                            time.sleep(reply.trickle)
                        self.wfile.write(payload[start : start + step])
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> FakeOpenAI:
        """Serve in a daemon thread; returns ``self``."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def _next(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "json": body})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.script:
                return self.script.pop(0)
            if self.garbage_rate and self._rng.random() < self.garbage_rate:
                self.garbage_sent += 1
                return Reply(body=b"<html><body>502 Bad Gateway (garbage)</body></html>")
            return Reply()

    @staticmethod
    def _payload(reply: Reply, body: dict[str, Any], authorization: str = "") -> bytes:
        if reply.body is not None:
            return reply.body
        if reply.status != 200:
            text = f"scripted HTTP {reply.status}"
            if reply.echo_key:
                key = authorization.removeprefix("Bearer ")
                text += f": Incorrect API key provided: {key[: reply.echo_key]}..."
            error = {"message": text, "type": "server_error"}
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
