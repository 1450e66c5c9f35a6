"""Vendor callbacks: an in-process HTTP receiver that wakes a job's waiter when its vendor posts news of it.

A vendor that calls back (Luma POSTs the Generation at each state change to the create's `callback_url`)
saves polling for the finish. The posts are unauthenticated (Luma documents no signature), so news is only
ever a hint: it wakes the waiting job, which then asks the vendor once for the authoritative state and output
URL. Nothing in a posted body is trusted beyond "look at job X now"; a forged one costs one poll. A body no
vendor reader understands gets a 400; news of a job nobody waits on yet is kept (a bounded few) in case its
waiter comes late.

Configuration (read when a job is submitted or waited on):
- CUTROOM_CALLBACK_URL: the public URL vendors post to. It must reach this process.
- CUTROOM_CALLBACK_LISTEN: host:port to bind; default 0.0.0.0 and the URL's port.

One receiver per process, started on first use in a daemon thread. With several processes (Prefect workers,
flow runs in subprocesses) give each its own URL and port: a process that cannot bind its address (taken by
another) logs a warning and finds its jobs by polling alone, and news posted to another process's receiver
is dropped there. Either way a lost callback only makes a job seen later, never lost.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from cutroom.settings import settings

URL_ENV = "CUTROOM_CALLBACK_URL"
LISTEN_ENV = "CUTROOM_CALLBACK_LISTEN"
#: A Generation with its request echo is a few KB; anything much larger is not a vendor's news.
MAX_BODY_BYTES = 256 * 1024
#: Vendor job ids are UUIDs; a longer "id" is not one, and would bloat the memory of early news.
MAX_JOB_ID_CHARS = 128
#: News of ended jobs nobody waits on yet, kept so a waiter that registers late still hears it; bounded, so
#: posts for made-up ids cannot grow memory.
KEPT_EARLY_NEWS = 1024
#: A client that opens a connection and sends nothing is dropped after this many seconds.
REQUEST_TIMEOUT_S = 10.0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallbackNews:
    """What a vendor's post says, as far as we use it: which job, and whether it claims the job has ended."""

    job_id: str
    ended: bool


#: Reads a posted JSON body: its news, or None when the body is not this vendor's.
Reader = Callable[[Any], CallbackNews | None]


class CallbackReceiver:
    """Hears posted news and wakes whoever waits on that job."""

    def __init__(self, address: tuple[str, int]):
        self._lock = threading.Lock()
        self._readers: dict[str, Reader] = {}
        self._waiting: dict[str, set[threading.Event]] = {}
        self._early: OrderedDict[str, None] = OrderedDict()
        server = _Server(address, self)
        threading.Thread(target=server.serve_forever, name="cutroom-callbacks", daemon=True).start()

    def read_with(self, provider: str, reader: Reader) -> None:
        with self._lock:
            self._readers[provider] = reader

    def hear(self, body: Any) -> int:
        """Take one posted body; returns the HTTP status to answer. Only news that a job ended wakes anyone:
        a waiter has nothing to do with "it started"."""
        with self._lock:
            readers = list(self._readers.values())
        news = next((n for read in readers if (n := read(body)) is not None), None)
        if news is None or not news.job_id or len(news.job_id) > MAX_JOB_ID_CHARS:
            return 400
        if news.ended:
            with self._lock:
                waiters = self._waiting.get(news.job_id)
                if waiters:
                    for event in waiters:
                        event.set()
                else:
                    self._early[news.job_id] = None
                    self._early.move_to_end(news.job_id)
                    while len(self._early) > KEPT_EARLY_NEWS:
                        self._early.popitem(last=False)
        return 200

    @contextmanager
    def watching(self, job_id: str) -> Iterator[threading.Event]:
        """An event set when news comes that the job ended (already set if it came before this call)."""
        event = threading.Event()
        with self._lock:
            self._waiting.setdefault(job_id, set()).add(event)
            if job_id in self._early:
                del self._early[job_id]
                event.set()
        try:
            yield event
        finally:
            with self._lock:
                waiters = self._waiting.get(job_id, set())
                waiters.discard(event)
                if not waiters:
                    self._waiting.pop(job_id, None)


class _Server(ThreadingHTTPServer):
    """Serves each post in its own daemon thread, so a slow sender holds up no one."""

    def __init__(self, address: tuple[str, int], receiver: CallbackReceiver):
        super().__init__(address, _Handler)
        self.receiver = receiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT_S

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("content-length", ""))
        except ValueError:
            self._answer(411)
            return
        if not 0 <= length <= MAX_BODY_BYTES:
            self._answer(413)
            return
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:  # also bad UTF-8
            self._answer(400)
            return
        self._answer(self.server.receiver.hear(body))

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("callback %s: " + format, self.client_address[0], *args)


#: By listen address (None: unusable settings), each started once; None where it could not start.
_receivers: dict[tuple[str, int] | None, CallbackReceiver | None] = {}
_receivers_lock = threading.Lock()


def listen(url: str, provider: str, reader: Reader) -> CallbackReceiver | None:
    """The process's receiver for news posted to `url`, started on first use, reading `provider`'s bodies
    with `reader`. None when its address is unusable or cannot be bound (warned once): polling alone then
    finds the jobs."""
    address = listen_address(url)
    with _receivers_lock:
        if address not in _receivers:
            _receivers[address] = _start(address, url)
        receiver = _receivers[address]
    if receiver is not None:
        receiver.read_with(provider, reader)
    return receiver


def _start(address: tuple[str, int] | None, url: str) -> CallbackReceiver | None:
    if address is None:
        logger.warning(
            "no address to listen on for vendor callbacks (%s=%r, %s=%r); polling instead",
            URL_ENV,
            url,
            LISTEN_ENV,
            settings().callback_listen,
        )
        return None
    try:
        return CallbackReceiver(address)
    except OSError as exc:
        logger.warning("cannot listen for vendor callbacks on %s:%d (%s); polling instead", *address, exc)
        return None


def listen_address(url: str) -> tuple[str, int] | None:
    """Where to bind: CUTROOM_CALLBACK_LISTEN, else all interfaces on the URL's port; None if unusable."""
    configured = settings().callback_listen
    try:
        if configured:
            host, _, port = configured.rpartition(":")
            return host.strip("[]") or "0.0.0.0", int(port)
        parts = urlsplit(url)
        return "0.0.0.0", parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
