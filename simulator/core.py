"""The simulator's frame: runtime config, the request log, transport faults, and vendor mounting.

A vendor module exposes `VENDOR` (its name), `PREFIX` (where it is mounted), `router(sim) -> APIRouter`
and `error_response(status, message, retry_after) -> Response` (its own error body shape).
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from functools import cache
from types import ModuleType
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

T = TypeVar("T")


class Fault(StrEnum):
    """What can go wrong. `moderation` refuses the input (prompt or image); `moderation_output` blocks what the
    model made; `expired` makes a finished job's output link answer as gone. The last four are a language
    model's answers (simulator/answers.py): `invalid_json` is cut mid-object, `schema_violation` is JSON that
    breaks the asked schema, `refusal` declines to answer, `truncated` stops at the token limit."""

    rate_limited = "429"
    server_error = "5xx"
    timeout = "timeout"
    reset = "reset"
    malformed = "malformed"
    failed = "failed"
    throttled = "throttled"
    moderation = "moderation"
    moderation_output = "moderation_output"
    expired = "expired"
    invalid_json = "invalid_json"
    schema_violation = "schema_violation"
    refusal = "refusal"
    truncated = "truncated"

    @property
    def transport(self) -> bool:
        """Faults the frame injects on any request; the rest are job outcomes a vendor module decides."""
        return self in (Fault.rate_limited, Fault.server_error, Fault.timeout, Fault.reset, Fault.malformed)


class SimConfig(BaseModel):
    latency_scale: float = Field(default=1.0, ge=0, description="Multiplies every vendor's job latency.")
    fault_rate: float = Field(
        default=0.0, ge=0, le=1, description="Chance that a request or job gets a fault."
    )
    faults: list[Fault] = Field(default_factory=list, description="Which faults may be drawn.")
    retry_after_s: float = Field(default=1.0, ge=0, description="Retry-After sent with a 429.")
    timeout_s: float = Field(
        default=30.0, ge=0, description="How long a 'timeout' fault stalls the response."
    )
    output_ttl_s: float = Field(default=600.0, gt=0, description="How long output URLs stay valid.")
    latency_jitter: float = Field(
        default=0.25, ge=0, description="Sigma of the lognormal job latency; 0 makes every latency the mean."
    )
    stock_media: bool = Field(
        default=False,
        description="Render each distinct output shape once and hand the same bytes to every job of that shape: "
        "for benchmarks, where a vendor's rendering must not take the client's CPU.",
    )
    llm_inject: str | None = Field(
        default=None,
        description="A word the simulated language models put into every free-text string they answer (not "
        "into enums, formats or keys): to test that a client repairs words a brand says to avoid.",
    )
    seed: int = 0


class RequestRecord(BaseModel):
    method: str
    path: str
    vendor: str
    status: int
    time: float
    body: Any = None
    headers: dict[str, str] = Field(default_factory=dict)
    fault: Fault | None = None


class JobTiming(BaseModel):
    """A vendor job's creation and due finish, on the request log's clock (time.time())."""

    vendor: str
    id: str
    created: float
    finished: float
    started: float | None = Field(
        default=None, description="When it began running, if it first waited on the vendor's concurrency."
    )


#: Headers worth keeping in the log.
LOGGED_HEADERS = (
    "x-runway-version",
    "content-type",
    "user-agent",
    "x-stainless-retry-count",
    "accept",
    "prefer",
    "x-goog-api-client",
)
#: Headers that carry a vendor key: logged as present (authorization: its scheme), never their value.
KEY_HEADERS = ("authorization", "x-key", "xi-api-key", "x-api-key", "api-key", "x-goog-api-key",
               "x-freepik-api-key")  # fmt: skip
#: Query parameters that carry a key (Google's `?key=`): their value is left out of the logged path.
KEY_PARAMS = ("key", "api_key", "apikey")


def _logged_headers(request: Request) -> dict[str, str]:
    kept = {name: request.headers[name] for name in LOGGED_HEADERS if name in request.headers}
    for name in KEY_HEADERS:
        if name in request.headers:
            value = request.headers[name]
            kept[name] = value.split(" ", 1)[0] + " …" if name == "authorization" and " " in value else "…"
    return kept


def _logged_query(request: Request) -> str:
    return "&".join(
        f"{k}=…" if k.lower() in KEY_PARAMS else f"{k}={v}" for k, v in request.query_params.multi_items()
    )


@cache
def outbound_tls() -> ssl.SSLContext:
    """The TLS context of the requests simulated vendors send (webhooks, fetches of a job's input links), built
    once: an httpx client that builds its own loads the CA bundle, 0.1-0.3 s of CPU on the event loop that serves
    every vendor, which would hold up the request (and every other one) just as a job ends."""
    return httpx.create_ssl_context()


class Simulator:
    """Shared state: config, the request log, and a seeded random source for faults and latencies."""

    def __init__(self, config: SimConfig | None = None):
        self.config = config or SimConfig()
        self.requests: list[RequestRecord] = []
        self.jobs: list[JobTiming] = []
        self.random = random.Random(self.config.seed)
        self._stock: dict[tuple[Any, ...], Any] = {}
        self._stock_lock = threading.Lock()
        self._resets: list[Callable[[], None]] = []

    def on_reset(self, forget: Callable[[], None]) -> None:
        """Call `forget` on POST /_sim/reset: a vendor drops its jobs and account state with the request log."""
        self._resets.append(forget)

    def keeps_fresh(self, state: Any, make: Callable[[], Any]) -> None:
        """On reset, put a vendor's account state back as `make()` makes it (its lock kept): what one test set
        does not leak into the next."""

        def forget() -> None:
            for name, value in vars(make()).items():
                if name != "lock":
                    setattr(state, name, value)

        self.on_reset(forget)

    def reset(self) -> None:
        self.requests.clear()
        self.jobs.clear()
        for forget in self._resets:
            forget()

    def configure(self, **changes: Any) -> SimConfig:
        self.config = self.config.model_copy(
            update=SimConfig(**{**self.config.model_dump(), **changes}).model_dump()
        )
        self.random.seed(self.config.seed)
        return self.config

    def record_job(
        self, vendor: str, job_id: str, created: float, finished: float, started: float | None = None
    ) -> None:
        """Log when a job was created and when it finishes, so a client's detection lag can be measured."""
        self.jobs.append(
            JobTiming(vendor=vendor, id=job_id, created=created, finished=finished, started=started)
        )

    def draw(self, *allowed: Fault) -> Fault | None:
        """A fault for this request or job, or None; only faults both configured and allowed here are drawn."""
        choices = [f for f in self.config.faults if f in allowed]
        if not choices or self.random.random() >= self.config.fault_rate:
            return None
        return self.random.choice(choices)

    def media(self, shape: tuple[Any, ...], render: Callable[[], T]) -> T:
        """A job's rendered output; with stock_media on, the first render of this shape serves every later job."""
        if not self.config.stock_media:
            return render()
        with self._stock_lock:
            if shape not in self._stock:
                self._stock[shape] = render()
            return self._stock[shape]

    def latency(self, mean_s: float) -> float:
        """A job's running time: lognormal around the vendor's mean, scaled."""
        return self.config.latency_scale * mean_s * self.random.lognormvariate(0, self.config.latency_jitter)


class _ConnectionDropped(Exception):
    """Raised after the response head went out: uvicorn then closes the socket mid-response."""


class FaultsAndLog:
    """Raw ASGI middleware: logs vendor requests and injects transport faults.

    Raw rather than BaseHTTPMiddleware so a `reset` can drop the connection after the head is sent: raising
    there makes the server close the socket, which the client sees as a transport error, not an HTTP 500.
    """

    def __init__(self, app: ASGIApp, sim: Simulator, vendor_of: Callable[[str], ModuleType | None]):
        self.app, self.sim, self.vendor_of = app, sim, vendor_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        vendor = self.vendor_of(scope["path"]) if scope["type"] == "http" else None
        if vendor is None:
            await self.app(scope, receive, send)
            return
        raw = await _read_body(receive)
        request = Request(scope)
        record = RequestRecord(
            method=request.method,
            path=request.url.path + (f"?{_logged_query(request)}" if request.url.query else ""),
            vendor=vendor.VENDOR,
            status=0,
            time=time.time(),
            body=_json_or_none(raw),
            headers=_logged_headers(request),
        )
        sim = self.sim
        sim.requests.append(record)
        record.fault = sim.draw(*(f for f in Fault if f.transport))

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        response: Response | None = None
        if record.fault is Fault.rate_limited:
            response = vendor.error_response(429, "Too many requests", sim.config.retry_after_s)
        elif record.fault is Fault.server_error:
            response = vendor.error_response(503, "Service temporarily unavailable", None)
        elif record.fault is Fault.malformed:
            response = Response(b'{"id": "trunc', status_code=200, media_type="application/json")
        elif record.fault is Fault.timeout:
            await asyncio.sleep(sim.config.timeout_s)
            response = vendor.error_response(504, "Gateway timeout", None)
        elif record.fault is Fault.reset:
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
            )
            record.status = -1
            raise _ConnectionDropped("simulated connection reset")
        if response is not None:
            await response(scope, receive, logged_send)
            return
        await self.app(scope, _replay(raw, receive), logged_send)


async def _read_body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the already-read body to the app once, then defers to the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


def create_app(vendors: list[ModuleType], config: SimConfig | None = None) -> FastAPI:
    sim = Simulator(config)
    app = FastAPI(title="Cutroom vendor simulator", docs_url=None, redoc_url=None)
    app.state.sim = sim
    by_prefix = {v.PREFIX: v for v in vendors}

    def vendor_of(path: str) -> ModuleType | None:
        # The longest prefix wins: OpenAI's chat contract is mounted inside its images one.
        prefix = max((p for p in by_prefix if path.startswith(p)), key=len, default=None)
        return by_prefix.get(prefix)

    app.add_middleware(FaultsAndLog, sim=sim, vendor_of=vendor_of)

    @app.get("/_sim/requests")
    async def requests() -> list[dict[str, Any]]:
        return [r.model_dump(mode="json") for r in sim.requests]

    @app.get("/_sim/jobs")
    async def jobs() -> list[dict[str, Any]]:
        return [j.model_dump(mode="json") for j in sim.jobs]

    @app.get("/_sim/config")
    async def get_config() -> SimConfig:
        return sim.config

    @app.post("/_sim/config")
    async def set_config(changes: dict[str, Any]) -> SimConfig:
        return sim.configure(**changes)

    @app.post("/_sim/reset")
    async def reset() -> dict[str, str]:
        sim.reset()
        return {"status": "reset"}

    for vendor in vendors:
        app.include_router(vendor.router(sim), prefix=vendor.PREFIX)
    return app


def _json_or_none(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {"_bytes": len(raw)}
