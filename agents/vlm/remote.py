"""The ``api-vlm`` agent: any VLM behind an OpenAI-compatible chat-completions endpoint.

vLLM, SGLang and proprietary APIs all speak ``POST {base_url}/chat/completions``. The agent
never loads weights: each ``predict`` sends one request with

* a system message: the tool schema from the registry (:func:`agents.vlm.prompt.tool_schema`),
* one user message: the current image as a base64 PNG (longer side downscaled to
  ``image_size``) and the text history of the episode (:func:`agents.vlm.prompt.next_user_text`,
  the same turn text the local ``vlm`` agent sees).

Requests are stateless (the history travels as text, only the current image is attached), so
the cost of a turn does not grow with the number of images.

Two answer modes:

``text`` (default)
    The local VLM agent's prompt (:func:`agents.vlm.prompt.system_prompt`) and its strict
    parser (:func:`agents.vlm.parse.parse_action`): the two agents are directly comparable.
``tools``
    Native function calling: the schema goes in ``tools=`` (plus a ``stop`` function) and
    the answer's ``tool_calls`` are re-serialised to the text protocol and parsed by the same
    strict parser, so argument validation is identical.

Robustness: ``timeout`` is a total deadline per request (headers and the whole body must
arrive within it, so a server trickling bytes cannot stretch a request); the answer is read
as a stream and refused beyond ``max_response_bytes``; up to ``retries`` retries with
exponential backoff (``backoff * 2**k`` seconds, capped at ``max_backoff``, ``Retry-After``
honoured) on timeouts, dropped connections, 429 and 5xx; at most ``concurrency`` requests in
flight per base URL across all agent instances of the process. A server that refuses the
connection raises :class:`APIServerUnavailableError` at once; other 4xx raise
:class:`APIRequestError`. An answer that is not a chat completion (a 200 whose body is not
JSON, or too large), a malformed or refused answer, or a request that still fails after the
retries, stops the episode and is recorded (``format_errors``, ``api_errors``,
``agent_errors``) - never a crash.

The API key is read from the environment variable named by ``api_key_env`` (default
``TIR_API_KEY``, then ``OPENAI_API_KEY``); it is never logged, and it and any fragment of it
of six characters or more (a server echoing a key prefix) are redacted from every message this
module produces.

Accounting (:meth:`APIVLMAgent.episode_extra`, merged into each JSONL record): ``api_model``,
``api_mode``, ``prompt_tokens``, ``completion_tokens``, ``requests``, ``retries``,
``api_latency_s`` (seconds spent in requests, retries and backoff included), ``format_errors``,
``api_errors`` and ``agent_errors`` (messages).

Example:
    ``TIR_API_KEY=... tir bench mio-a --agents api-vlm
    --agent-arg api-vlm.base_url=http://127.0.0.1:8000/v1
    --agent-arg api-vlm.model=Qwen/Qwen2.5-VL-7B-Instruct --agent-arg api-vlm.mode=tools``
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from agents.base import Action, Agent, AgentOptions, Obs, register_agent
from agents.vlm import prompt
from agents.vlm.parse import ParseError, Stop, parse_action
from tir_env.errors import AgentUnavailableError, TIRError
from tir_env.images import resize_u8
from tir_env.spaces import encode_call
from tir_env.types import ImageU8

log = logging.getLogger(__name__)

Mode = Literal["text", "tools"]
#: Environment variables tried, in order, when ``api_key_env`` is not given.
DEFAULT_KEY_ENVS: tuple[str, ...] = ("TIR_API_KEY", "OPENAI_API_KEY")
#: Environment variable read when ``base_url`` is not given.
BASE_URL_ENV = "TIR_API_BASE_URL"
_TOOLS_INTRO = prompt._INTRO + (
    " Call exactly one function per turn. Omitted arguments take their default values. When "
    "the image is clean or no tool helps, call stop."
)
_STOP_FUNCTION = {
    "type": "function",
    "function": {
        "name": prompt.STOP_NAME,
        "description": "End the episode: the image is clean or no tool helps.",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    },
}

_SEMAPHORES: dict[str, threading.BoundedSemaphore] = {}
_SEMAPHORES_LOCK = threading.Lock()


class APIAgentError(TIRError, RuntimeError):
    """A request of the ``api-vlm`` agent failed in a way that retrying cannot fix."""


class APIServerUnavailableError(APIAgentError, ConnectionError):
    """The chat-completions server cannot be reached (not running, wrong URL or port)."""


class APIConfigError(APIAgentError, ValueError):
    """The agent is misconfigured (no base URL, unknown mode, non-positive timeout)."""


class APIServerNotSetError(APIConfigError, AgentUnavailableError):
    """No ``base_url`` and no ``TIR_API_BASE_URL``: there is no server to talk to."""


class APIRequestError(APIAgentError):
    """The server rejected the request (bad key, unknown model, invalid request: 4xx)."""


class APIResponseError(APIAgentError):
    """An answer that is not a usable chat completion: not JSON, the wrong shape, too large.

    Recorded for the step (``api_errors``), never raised out of :meth:`APIVLMAgent.predict`.
    """


class APIDeadlineError(APIAgentError, TimeoutError):
    """A request did not complete (headers and body) within its total deadline."""


class APIConnectionDroppedError(APIAgentError, ConnectionError):
    """The server closed or reset the connection before the answer was complete (retried)."""


#: Default cap of one answer's size in bytes (a chat completion of a few hundred tokens is a
#: few kilobytes; the cap keeps a broken or hostile server from filling memory).
MAX_RESPONSE_BYTES = 4 * 2**20
#: Shortest fragment of the API key redacted from messages (shorter ones say nothing).
REDACT_MIN_CHARS = 6


def _semaphore(base_url: str, size: int) -> threading.BoundedSemaphore:
    """The process-wide request limiter of one endpoint (created by its first agent)."""
    with _SEMAPHORES_LOCK:
        if base_url not in _SEMAPHORES:
            _SEMAPHORES[base_url] = threading.BoundedSemaphore(size)
        return _SEMAPHORES[base_url]


def encode_png(image: ImageU8, size: int) -> str:
    """``data:`` URL of ``image`` as PNG, the longer side downscaled to ``size`` pixels.

    Images already within ``size`` are sent as they are (never upscaled).
    """
    h, w = image.shape[:2]
    scale = size / max(h, w)
    if scale < 1:
        image = resize_u8(image, (max(1, round(h * scale)), max(1, round(w * scale))))
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def function_tools(tools: Sequence[str], detail: prompt.Detail = "full") -> list[dict[str, Any]]:
    """The OpenAI ``tools=`` list: one function per env tool (registry schema), then ``stop``."""
    out = []
    for item in prompt.tool_schema(tools, "full"):
        params = item["parameters"]
        if detail == "brief":
            params = {k: {kk: v[kk] for kk in ("type", "minimum", "maximum", "default")}
                      for k, v in params.items()}  # fmt: skip
        description = f"[{item['task']}] {item.get('description', '')}".strip()
        out.append(
            {
                "type": "function",
                "function": {
                    "name": item["name"],
                    "description": description,
                    "parameters": {
                        "type": "object",
                        "properties": params,
                        "additionalProperties": False,
                    },
                },
            }
        )
    out.append(_STOP_FUNCTION)
    return out


def answer_text(message: Any) -> str:
    """The answer of a chat-completions message as text-protocol ``<tool_call>`` text.

    Native ``tool_calls`` are re-serialised so the strict parser validates them exactly like
    text answers; several calls become several ``<tool_call>`` blocks (rejected by the parser),
    arguments that are not JSON are kept as they are (``bad_json``). Without tool calls, the
    message content (possibly empty) is the answer.
    """
    calls = getattr(message, "tool_calls", None) or []
    if not calls:
        return str(getattr(message, "content", None) or "")
    parts = []
    for call in calls:
        fn = call.function
        raw = fn.arguments or "{}"
        try:
            args = json.dumps(json.loads(raw))
        except ValueError:
            args = raw
        parts.append(
            f'<tool_call>{{"name": {json.dumps(fn.name)}, "arguments": {args}}}</tool_call>'
        )
    return "".join(parts)


@dataclass(frozen=True)
class APIVLMOptions(AgentOptions):
    """Options of the ``api-vlm`` agent (``--agent-arg api-vlm.key=value``).

    Attributes:
        base_url: Endpoint root, e.g. ``http://127.0.0.1:8000/v1`` (``None``: the
            ``TIR_API_BASE_URL`` environment variable; without either the agent is not built,
            so ``tir demo`` skips it).
        model: Model name the server knows (``vllm serve NAME`` or the provider's name).
        api_key_env: Name of the environment variable holding the API key (``None``:
            ``TIR_API_KEY``, then ``OPENAI_API_KEY``; local servers accept any key).
        mode: ``text`` (the local VLM agent's protocol) or ``tools`` (native function calling).
        image_size: Longer side, in pixels, of the image sent each turn.
        detail: Tool-schema detail (``full`` or ``brief``).
        timeout: Total seconds per request: headers and the whole body (a deadline, not a
            socket timeout).
        retries: Retries after a timeout, a dropped connection, 429 or 5xx (0: none).
        backoff: First backoff in seconds; doubles each retry.
        max_backoff: Longest single backoff in seconds.
        concurrency: Requests in flight per base URL in this process.
        temperature: Sampling temperature (``None``: the server's default).
        max_tokens: Longest answer in tokens.
        tool_choice: ``auto`` or ``required`` (tools mode; ``None``: not sent).
        max_response_bytes: Largest answer read, in bytes; a larger one is an error for the
            step (read as a stream, so memory stays bounded).
    """

    base_url: str | None = None
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    api_key_env: str | None = None
    mode: Mode = "text"
    image_size: int = 512
    detail: prompt.Detail = "full"
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0
    concurrency: int = 4
    temperature: float | None = 0.0
    max_tokens: int = 256
    tool_choice: str | None = "auto"
    max_response_bytes: int = MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        """Check the bounds.

        Raises:
            APIConfigError: a bound is violated.
        """
        if (
            self.timeout <= 0
            or self.retries < 0
            or self.concurrency < 1
            or self.image_size < 8
            or self.max_response_bytes < 1
        ):
            raise APIConfigError(
                "need timeout > 0, retries >= 0, concurrency >= 1, image_size >= 8 and "
                "max_response_bytes >= 1"
            )


@register_agent
class APIVLMAgent(Agent):
    """A VLM served over an OpenAI-compatible API (see the module docstring).

    Options: :class:`APIVLMOptions`; the ``seed`` is sent as the request ``seed`` (servers
    that support it sample reproducibly).

    Raises:
        APIConfigError: no ``base_url`` and no ``TIR_API_BASE_URL``, or a bound violated.
    """

    name = "api-vlm"
    description = "any VLM behind an OpenAI-compatible API (vLLM, SGLang, proprietary)"
    Options = APIVLMOptions
    options: APIVLMOptions

    def __init__(self, seed: int | str = 0, **options: Any) -> None:
        super().__init__(seed, **options)
        opts = self.options
        if opts.detail == "none":  # a served model learns the tools from the schema alone
            raise ValueError("api-vlm needs the tool schema: detail must be 'full' or 'brief'")
        base_url = opts.base_url or os.environ.get(BASE_URL_ENV)
        if not base_url:
            raise APIServerNotSetError(
                f"api-vlm needs a server: --agent-arg api-vlm.base_url=http://HOST:PORT/v1 "
                f"or {BASE_URL_ENV}"
            )
        self.base_url = base_url.rstrip("/")
        self.model = opts.model
        self.api_key_env = opts.api_key_env
        self.mode: Mode = opts.mode
        self.image_size = opts.image_size
        self.detail: prompt.Detail = opts.detail
        self.timeout = opts.timeout
        self.retries = opts.retries
        self.backoff = opts.backoff
        self.max_backoff = opts.max_backoff
        self.concurrency = opts.concurrency
        self.temperature = opts.temperature
        self.max_tokens = opts.max_tokens
        self.tool_choice = opts.tool_choice
        self.max_response_bytes = opts.max_response_bytes
        self._client: Any = None
        self._secret: str | None = None
        self._reset_accounting()

    # ------------------------------------------------------------------ protocol
    def reset(self, env: Any = None, info: dict[str, Any] | None = None) -> None:
        """Start an episode: clear the per-episode accounting."""
        super().reset(env, info)
        self._reset_accounting()
        self._answered = 0

    def act(self, observation: Obs, deterministic: bool = True) -> Action:
        """Send the current image, history and schema; return the parsed call (or STOP)."""
        env = self.env
        tools = tuple(env.tools)
        image = env.current_image()
        calls = [r for r in env.history if r.call is not None]
        left = env.config.max_steps - len(calls)
        if self._answered and env.history:
            text = prompt.next_user_text(image, env.history, left)
        else:
            text = prompt.first_user_text(image, left)
        self._answered += 1
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": self._system(tools)},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": encode_png(image, self.image_size)}},
                    {"type": "text", "text": text},
                ],
            },
        ]
        response = self._request(messages, tools)
        if response is None:  # retries exhausted: recorded in api_errors
            return encode_call(None, tools)
        parsed = self._parse(response, tools)
        if isinstance(parsed, ParseError):
            self.format_errors += 1
            self.agent_errors.append(self._redact(f"format error: {parsed}"))
            return encode_call(None, tools)
        return encode_call(None if isinstance(parsed, Stop) else parsed, tools)

    def episode_extra(self) -> dict[str, Any]:
        """The episode's accounting, merged into its JSONL record."""
        return {
            "api_model": self.model,
            "api_mode": self.mode,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "requests": self.requests,
            "retries": self.retry_count,
            "api_latency_s": round(self.latency_s, 4),
            "format_errors": self.format_errors,
            "api_errors": self.api_errors,
            "agent_errors": list(self.agent_errors),
        }

    # ------------------------------------------------------------------ internals
    def _reset_accounting(self) -> None:
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.requests = 0
        self.retry_count = 0
        self.latency_s = 0.0
        self.format_errors = 0
        self.api_errors = 0
        self.agent_errors: list[str] = []

    def _system(self, tools: Sequence[str]) -> str:
        if self.mode == "text":
            return prompt.system_prompt(tools, self.detail)
        return _TOOLS_INTRO

    def _api_key(self) -> str:
        names = (self.api_key_env,) if self.api_key_env else DEFAULT_KEY_ENVS
        for name in names:
            value = os.environ.get(name)
            if value:
                return value
        return "EMPTY"  # local vLLM/SGLang servers started without --api-key accept any key

    def client(self) -> Any:
        """The ``openai`` client (built on first use; the library's own retries are off)."""
        if self._client is None:
            try:
                import openai
            except ImportError as err:
                raise ImportError(
                    "the api-vlm agent needs the openai package: pip install 'tir[api]'"
                ) from err
            key = self._api_key()
            self._secret = key if key != "EMPTY" else None
            self._client = openai.OpenAI(
                base_url=self.base_url, api_key=key, timeout=self.timeout, max_retries=0
            )
        return self._client

    def _redact(self, text: str) -> str:
        return redact(text, self._secret)

    def _request(self, messages: list[dict[str, Any]], tools: Sequence[str]) -> Any | None:
        """One chat completion with retries; ``None`` when it failed (recorded in the episode)."""
        import openai

        client = self.client()
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.mode == "tools":
            kwargs["tools"] = function_tools(tools, self.detail)
            if self.tool_choice is not None:
                kwargs["tool_choice"] = self.tool_choice
        start = time.perf_counter()
        try:
            for attempt in range(self.retries + 1):
                self.requests += 1
                try:
                    with _semaphore(self.base_url, self.concurrency):
                        response = self._send(client, kwargs)
                except (openai.APITimeoutError, APIDeadlineError):
                    why, wait = f"timeout after {self.timeout:g}s", None
                except (openai.APIConnectionError, APIConnectionDroppedError) as err:
                    if _refused(err):
                        raise APIServerUnavailableError(
                            self._redact(
                                f"cannot reach the chat-completions server at {self.base_url} "
                                f"({type(err.__cause__ or err).__name__}); is it running? "
                                "See docs/agents.md, 'API VLM agents', to start vLLM."
                            )
                        ) from None
                    why, wait = f"connection dropped ({_cause_name(err)})", None
                except openai.APIStatusError as err:
                    status = err.status_code
                    if status != 429 and status < 500:
                        detail = self._redact(str(err))[:300]
                        raise APIRequestError(
                            self._redact(
                                f"{self.base_url} rejected the request with HTTP {status} "
                                f"(model {self.model!r}): {detail}"
                            )
                        ) from None
                    why, wait = f"HTTP {status}", _retry_after(err)
                except APIResponseError as err:  # retrying would not make the answer valid
                    self._record_api_error(f"invalid answer: {err}")
                    return None
                else:
                    self._count_usage(response)
                    return response
                if attempt == self.retries:
                    self._record_api_error(f"{why}, gave up after {self.retries} retries")
                    return None
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                delay = min(self.max_backoff, max(delay, wait or 0.0))
                log.info("api-vlm: %s; retry %d in %.2fs", self._redact(why), attempt + 1, delay)
                self.retry_count += 1
                time.sleep(delay)
            return None  # unreachable: the loop returns or raises
        finally:
            self.latency_s += time.perf_counter() - start

    def _record_api_error(self, why: str) -> None:
        """Count a failed request in the episode's accounting (the bench goes on)."""
        message = self._redact(f"api error: {why}")
        self.api_errors += 1
        self.agent_errors.append(message)
        log.warning("api-vlm: %s", message)

    def _send(self, client: Any, kwargs: dict[str, Any]) -> Any:
        """POST one request; read the answer as a stream, within the deadline and size cap.

        Raises:
            APIDeadlineError: the answer was not complete within ``timeout`` seconds.
            APIConnectionDroppedError: the connection broke while the body was read.
            APIResponseError: the body is too large, not JSON, or not a chat completion.
            openai.APIError: what the client raises before the body (status, connection).
        """
        deadline = time.monotonic() + self.timeout
        chunks: list[bytes] = []
        size = 0
        with client.chat.completions.with_streaming_response.create(**kwargs) as raw:
            try:
                for chunk in raw.iter_bytes():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise APIResponseError(
                            f"the answer exceeds max_response_bytes={self.max_response_bytes} "
                            "(stopped reading)"
                        )
                    if time.monotonic() > deadline:
                        raise APIDeadlineError(f"no complete answer within {self.timeout:g}s")
                    chunks.append(chunk)
            except APIAgentError:
                raise
            except Exception as err:  # noqa: BLE001 - the HTTP library's read errors
                if "timeout" in type(err).__name__.lower():
                    raise APIDeadlineError(f"read timed out: {err}") from err
                raise APIConnectionDroppedError(
                    f"{type(err).__name__} while reading the answer"
                ) from err
        if time.monotonic() > deadline:
            raise APIDeadlineError(f"no complete answer within {self.timeout:g}s")
        return _chat_completion(b"".join(chunks))

    def _count_usage(self, response: Any) -> None:
        usage = getattr(response, "usage", None)
        if usage is not None:
            self.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
            self.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)

    def _parse(self, response: Any, tools: Sequence[str]) -> Any:
        choices = getattr(response, "choices", None) or []
        if not choices:
            return ParseError("no_call", "the server returned no choices", "")
        choice = choices[0]
        message = choice.message
        refusal = getattr(message, "refusal", None)
        if refusal:
            return ParseError("no_call", "the model refused", str(refusal)[:200])
        if getattr(choice, "finish_reason", None) == "content_filter":
            return ParseError("no_call", "the answer was filtered", "")
        return parse_action(answer_text(message), tools)


def _chat_completion(body: bytes) -> Any:
    """Parse a chat-completions body.

    Raises:
        APIResponseError: not JSON, or JSON that is not a chat completion.
    """
    from openai.types.chat import ChatCompletion
    from pydantic import ValidationError

    try:
        data = json.loads(body)
    except ValueError:
        head = body[:60].decode("utf-8", "replace")
        raise APIResponseError(
            f"HTTP 200 with a body that is not JSON ({len(body)} bytes, starting {head!r})"
        ) from None
    try:
        return ChatCompletion.model_validate(data)
    except ValidationError as err:
        raise APIResponseError(
            f"HTTP 200 with JSON that is not a chat completion ({err.error_count()} "
            "validation errors)"
        ) from None


def _causes(err: BaseException) -> list[BaseException]:
    """``err`` and its chain of causes (``__cause__``, else ``__context__``)."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _refused(err: BaseException) -> bool:
    """Whether the connection could not be made at all (the server is not there)."""
    return any(
        isinstance(e, ConnectionRefusedError) or type(e).__name__ == "ConnectError"
        for e in _causes(err)
    )


def _cause_name(err: BaseException) -> str:
    """The name of the innermost library error behind ``err`` (for messages)."""
    return type(_causes(err)[-1]).__name__


def redact(text: str, secret: str | None, min_chars: int = REDACT_MIN_CHARS) -> str:
    """``text`` with ``secret`` and every fragment of it of ``min_chars`` or more replaced.

    A server that echoes part of a key (``"Incorrect API key provided: sk-abc123..."``) must
    not leak that part either. Fragments shorter than ``min_chars`` (``"sk-"``) stay.
    """
    if not secret:
        return text
    need = min(min_chars, len(secret))
    out: list[str] = []
    i = 0
    while i < len(text):
        length = 0
        while i + length < len(text) and text[i : i + length + 1] in secret:
            length += 1
        if length >= need:
            out.append("***")
            i += length
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _retry_after(err: Any) -> float | None:
    """Seconds from a ``Retry-After`` header, when the server sent one."""
    try:
        return float(err.response.headers.get("retry-after"))
    except (AttributeError, TypeError, ValueError):
        return None
