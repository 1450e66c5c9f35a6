"""The shared vendor base: everything an adapter would otherwise write by hand.

An adapter subclasses VendorAdapter, names its vendor and capability, and writes only what is the vendor's own:
its request shape (`create`, or `generate` for a vendor that answers at once), its state and output reading
(`status`, `result`) and, where the defaults do not say it, its error mapping (`error_kind`, `error_detail`).
The base owns the rest, from the vendor's declaration (providers/<vendor>.toml):

- the client, built on first use against the simulator (CUTROOM_SIMULATOR_URL), the base-URL variable, or the
  vendor, with an injectable base URL, key, `httpx.Client` or SDK client — tests never patch the environment;
- creates sent once: SDK clients are built with their retries off (a retried create is a second paid job);
- the model card: estimate, and `check` before any request (card, options, then the adapter's own checks);
- job ids checked against the vendor's shape before they reach a URL;
- the poll schedule from the card; output downloads; media sizes read from the bytes;
- error mapping: every exception of a call goes through `map_error` into the one taxonomy.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import httpx
from PIL import Image, UnidentifiedImageError

from cutroom import stopping
from cutroom.assets import AssetSpec
from cutroom.capabilities import Capability
from cutroom.media import MediaError, probe
from providers import callbacks, declarations, simulation
from providers.cards import ModelCard
from providers.declarations import Vendor
from providers.errors import ErrorKind, ProviderError
from providers.http import download_output, retry_after, status_kind
from providers.polling import PollSchedule
from providers.protocol import JobRef, JobState, JobStatus, Output

#: Characters of a vendor's error message kept in ours.
DETAIL_CHARS = 300
#: Tries of a sync vendor's output link before giving up (its job cannot be looked at again).
SYNC_DOWNLOAD_ATTEMPTS = 4


class VendorAdapter:
    vendor_name: ClassVar[str]
    capability: ClassVar[Capability]
    #: A vendor whose paid call answers with the output (OpenAI images, Stability …): submit makes it.
    sync: ClassVar[bool] = False
    #: SDK exceptions meaning the call got no answer (a dropped connection, a timeout): transient.
    transport_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    #: SDK exceptions meaning an answer came that cannot be read (a truncated body): transient.
    unreadable_errors: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(
        self,
        model: str | None = None,
        *,
        vendor: Vendor | None = None,
        client: Any = None,
        http_client: httpx.Client | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        time_scale: float | None = None,
    ) -> None:
        self.vendor = vendor or declarations.vendor(self.vendor_name)
        self.name = self.vendor.name
        self.model = model or self.vendor.default_model(self.capability)
        self.vendor.card(self.model, self.capability)  # an unknown model fails here, not at the first job
        self.time_scale = simulation.time_scale() if time_scale is None else time_scale
        self.timeout = timeout or self.vendor.timeout_s
        self._client = client
        self._http = http_client
        self._base_url = base_url
        self._api_key = api_key
        #: Outputs of a sync vendor, made at submit, until fetched.
        self._done: dict[str, Output] = {}

    # -- where and who -------------------------------------------------------------------------------------------

    @property
    def on_simulator(self) -> bool:
        return (
            self._base_url is None and self.vendor.simulator is not None and bool(simulation.simulator_url())
        )

    @property
    def base_url(self) -> str:
        """The given base URL, else the simulator's mount, else the base-URL variable, else the vendor's."""
        if self._base_url is not None:
            return self._base_url.rstrip("/")
        if self.on_simulator:
            return f"{simulation.simulator_url()}{self.vendor.simulator.prefix}"  # type: ignore[union-attr]
        env = self.vendor.base_url_env
        configured = env and settings_value(env)
        return (configured or self.vendor.base_url).rstrip("/")

    def credential(self, index: int = 0) -> str:
        """The vendor's key (keys[index]): the given one, the simulator's dummy, or the environment's."""
        if self._api_key is not None and index == 0:
            return self._api_key
        if self.on_simulator:
            return self.vendor.simulator.key  # type: ignore[union-attr]
        names = self.vendor.keys
        alternatives = names[index].split("|") if index < len(names) else []
        secret = next((v for name in alternatives if (v := settings_value(name))), None)
        if not secret:
            raise ProviderError(
                ErrorKind.not_configured,
                f"no {self.vendor.title} key: set {' and '.join(names) or 'its key'}, "
                "or CUTROOM_SIMULATOR_URL to use the local simulator",
                provider=self.name,
            )
        return secret

    @property
    def api_key(self) -> str:
        return self.credential(0)

    # -- clients ---------------------------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The vendor's SDK client (or this adapter's httpx client), built on first use: an adapter whose key
        is missing can still be listed and checked; its first call says what is missing."""
        if self._client is None:
            self._client = self.make_client()
        return self._client

    def make_client(self) -> Any:
        """An SDK adapter builds its SDK client here, with retries off, `self.base_url`, `self.api_key`,
        `self.timeout` and `self._http` (`sdk_settings` says them to a Stainless-built SDK). The default is the
        plain HTTP client."""
        return self.http

    def sdk_settings(self) -> dict[str, Any]:
        """What a Stainless-built SDK client (openai, lumaai, runwayml) takes besides its key: the base URL, the
        HTTP client and timeout, and no retries (a retried create is a second paid job)."""
        return {
            "base_url": self.base_url,
            "http_client": self._http,
            "timeout": self.timeout,
            "max_retries": 0,
        }

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout)
        return self._http

    def auth_headers(self) -> dict[str, str]:
        """How the vendor wants its key (httpx adapters); Bearer unless the adapter says otherwise."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to the vendor's API (a path under base_url, or a URL the vendor handed out); an error status
        raises, to be mapped by `calling`."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        headers = {**self.auth_headers(), **kwargs.pop("headers", {})}
        response = self.http.request(method, url, headers=headers, **kwargs)
        response.raise_for_status()
        return response

    # -- cards -----------------------------------------------------------------------------------------------------

    def card(self, spec: AssetSpec) -> ModelCard:
        return self.vendor.card(spec.model or self.model, self.capability)

    def estimate(self, spec: AssetSpec) -> float:
        return self.card(spec).price_of(spec)

    def check(self, spec: AssetSpec) -> ModelCard:
        """Everything that can be known without a request: the card, the options, the adapter's own rules."""
        card = self.card(spec)
        card.check(spec)
        self.check_request(spec, card)
        return card

    def check_request(self, spec: AssetSpec, card: ModelCard) -> None:
        """An adapter's own refusals that need no request (input counts, links it needs …); raise
        ProviderError(invalid_input)."""

    def schedule_of(self, model: str | None = None) -> PollSchedule:
        """When to look at a job of a model: near its card's latency, at the vendor's pace, scaled to the
        simulator's clock when it runs against it."""
        card = self.vendor.card(model or self.model, self.capability)
        if self.sync:  # the output exists when submit returns: look at once
            return PollSchedule(expected_s=0.0)
        scale, polling = self.time_scale, self.vendor.polling
        timeout = polling.timeout_s or max(20 * card.expected_latency_s, 600.0)
        return PollSchedule(
            expected_s=card.expected_latency_s * scale,
            min_interval_s=card.min_poll_interval_s * scale,
            max_interval_s=polling.max_interval_s * scale,
            first_share=polling.first_share,
            timeout_s=timeout * scale,
            retry_pause_s=1.0 * scale,
        )

    @property
    def schedule(self) -> PollSchedule:
        return self.schedule_of()

    # -- the protocol ----------------------------------------------------------------------------------------------

    def submit(self, spec: AssetSpec) -> JobRef:
        """The one paid call, after every check; for a sync vendor the output is made and kept."""
        card = self.check(spec)
        if self.sync:
            with self.calling("generate"):
                output = self.generate(spec, card)
            job_id = uuid.uuid4().hex
            self._done[job_id] = self._costed(output, spec)
            return JobRef(provider=self.name, job_id=job_id, spec_key=spec.key(), durable=False, spec=spec)
        with self.calling("create"):
            job_id = self.create(spec, card)
        if not isinstance(job_id, str) or not re.fullmatch(self.vendor.job_id, job_id):
            raise ProviderError(
                ErrorKind.generation_failed, "create answered without a usable job id", provider=self.name
            )
        return JobRef(
            provider=self.name, job_id=job_id, spec_key=spec.key(), spec=spec, handle=self.handle_of(job_id)
        )

    def poll(self, job: JobRef) -> JobStatus:
        if self.sync or not job.durable:
            if job.job_id not in self._done:
                raise ProviderError(ErrorKind.not_found, f"no job {job.job_id} here", provider=self.name)
            return JobStatus(state=JobState.SUCCEEDED, progress=1.0)
        self.vendor.checks_job_id(job.job_id)
        with self.calling("poll"):
            return self.status(job)

    def fetch(self, job: JobRef) -> Output:
        if self.sync or not job.durable:
            try:
                return self._done.pop(job.job_id)
            except KeyError:
                raise ProviderError(
                    ErrorKind.not_found, f"no job {job.job_id} here", provider=self.name
                ) from None
        self.vendor.checks_job_id(job.job_id)
        with self.calling("fetch"):
            output = self.result(job)
        return self._costed(output, job.spec)

    def _costed(self, output: Output, spec: AssetSpec | None) -> Output:
        """A vendor that reports what a job cost says so; otherwise the card's price is what it cost."""
        if output.cost_usd or spec is None or not self.vendor.billable:
            return output
        return output.model_copy(update={"cost_usd": self.estimate(spec)})

    # -- what an adapter writes --------------------------------------------------------------------------------------

    def generate(self, spec: AssetSpec, card: ModelCard) -> Output:
        """A sync vendor's paid call, answered with the output."""
        raise NotImplementedError

    def create(self, spec: AssetSpec, card: ModelCard) -> str:
        """An async vendor's paid call: send the create once, answer the vendor's job id."""
        raise NotImplementedError

    def handle_of(self, job_id: str) -> dict[str, str]:
        """What besides its id finds the job again, journaled with it (a vendor's per-job polling URL)."""
        return {}

    def status(self, job: JobRef) -> JobStatus:
        """The job's state in the shared model; a FAILED one says why (error_kind: moderation vs transient)."""
        raise NotImplementedError

    def result(self, job: JobRef) -> Output:
        """A finished job's media, downloaded at once (vendor links expire)."""
        raise NotImplementedError

    # -- helpers for adapters --------------------------------------------------------------------------------------

    def download(self, url: str) -> Output:
        """An output link's media, with its size and length read from the bytes. A sync vendor's link is
        tried up to SYNC_DOWNLOAD_ATTEMPTS times over passing faults: its job cannot be looked at again, so a
        failure here pays twice. (An async vendor's failed download is repeated by wait_for, within bounds.)"""
        tries = SYNC_DOWNLOAD_ATTEMPTS if self.sync else 1
        for attempt in range(1, tries + 1):
            try:
                data, mime = download_output(url, self.name, self._http, timeout=self.timeout)
                break
            except ProviderError as exc:
                if not exc.kind.transient or attempt == tries:
                    if attempt == 1:
                        raise
                    raise ProviderError(
                        exc.kind,
                        f"gave up downloading after {attempt} tries: {exc.detail}",
                        provider=self.name,
                    ) from exc
                stopping.sleep(0.5 * 2 ** (attempt - 1) * min(1.0, self.time_scale * 100))
        return self.described(data, mime, source_url=url)

    def described(self, data: bytes, mime: str, **fields: Any) -> Output:
        """An Output of these bytes, its width, height and length read from the media itself; bytes that are
        not the media they claim to be are a failed generation."""
        try:
            return Output(data=data, mime=mime, **_measure(data, mime), **fields)
        except (UnidentifiedImageError, OSError, MediaError) as exc:
            raise ProviderError(
                ErrorKind.generation_failed, f"the output is not readable {mime}: {exc}", provider=self.name
            ) from exc

    # -- errors ------------------------------------------------------------------------------------------------------

    @contextmanager
    def calling(self, what: str) -> Iterator[None]:
        """Every failure of a vendor call leaves as a ProviderError; one the mapping does not know stays a bug."""
        try:
            yield
        except ProviderError:
            raise
        except Exception as exc:
            mapped = self.map_error(exc, what)
            if mapped is None:
                raise
            raise mapped from exc

    def map_error(self, exc: Exception, what: str) -> ProviderError | None:
        response = getattr(exc, "response", None)
        if isinstance(response, httpx.Response) and response.is_error:
            return self.from_response(response, what)
        if isinstance(exc, httpx.TimeoutException) or "Timeout" in type(exc).__name__:
            return ProviderError(ErrorKind.generation_failed, f"{what} timed out", provider=self.name)
        if isinstance(exc, (httpx.TransportError, *self.transport_errors)):
            return ProviderError(
                ErrorKind.generation_failed, f"{what}: connection failed", provider=self.name
            )
        if isinstance(exc, (json.JSONDecodeError, *self.unreadable_errors)):
            return ProviderError(
                ErrorKind.generation_failed, f"{what}: unreadable answer", provider=self.name
            )
        return None

    def from_response(self, response: Any, what: str) -> ProviderError:
        status = response.status_code
        body = _json(response)
        detail = " ".join(self.error_detail(body, response).split())
        kind = self.error_kind(status, detail, body) or status_kind(status)
        wait = retry_after(response) if kind is ErrorKind.rate_limited else None
        return ProviderError(
            kind, f"{what}: HTTP {status}: {detail[:DETAIL_CHARS]}", provider=self.name, retry_after=wait
        )

    def error_detail(self, body: Any, response: httpx.Response) -> str:
        """The vendor's error message as one line; the common body shapes are read here."""
        if isinstance(body, dict):
            for key in ("error", "detail", "message", "errors", "title"):
                value = body.get(key)
                if isinstance(value, dict):
                    value = value.get("message") or value.get("msg") or value
                if value:
                    return _text(value)
        return response.text[:DETAIL_CHARS] or response.reason_phrase

    def error_kind(self, status: int, detail: str, body: Any) -> ErrorKind | None:
        """The kind of an error status where the vendor means more than the status says (a 400 that is a
        moderation refusal, a 429 that is an empty account); None keeps the status's own meaning."""
        return None


def _is_a(exc: BaseException, name: str) -> bool:
    """Whether an exception is httpx's (or an httpx fork's) class of that name."""
    return any(c.__name__ == name and c.__module__.startswith("httpx") for c in type(exc).__mro__)


def settings_value(name: str) -> str | None:
    from cutroom.settings import settings

    secret = settings().secret(name)
    return secret.get_secret_value() if secret else None


def _json(response: Any) -> Any:
    try:
        return response.json()
    except Exception:  # not JSON, or a streamed body not read: the detail falls back to the text
        return None


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_text(v.get("msg") or v.get("message") or v) if isinstance(v, dict) else str(v)
                         for v in value)  # fmt: skip
    return str(value)


def _measure(data: bytes, mime: str) -> dict[str, Any]:
    """Width, height and length of media bytes (images by Pillow, video and audio by ffmpeg)."""
    if mime.startswith("image/"):
        with Image.open(io.BytesIO(data)) as image:
            return {"width": image.width, "height": image.height}
    with tempfile.TemporaryDirectory(prefix="cutroom-output-") as tmp:
        path = Path(tmp) / "output"
        path.write_bytes(data)
        info = probe(path)
    if mime.startswith("video/") and not info.has_video:
        raise MediaError("no video stream")
    return {"width": info.width, "height": info.height, "duration_s": info.duration_s}


class CalledBack(VendorAdapter):
    """An adapter whose vendor posts news of its jobs to a URL (providers/callbacks.py), so `wait_for` wakes on
    it: the constructor's `callback_url`, else CUTROOM_CALLBACK_URL."""

    def __init__(self, model: str | None = None, *, callback_url: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        self._callback_url = callback_url

    @property
    def callback_url(self) -> str | None:
        from cutroom.settings import settings

        return self._callback_url or settings().callback_url or None

    def listening(self) -> str | None:
        """The callback URL a create carries, with this process's receiver already up to hear it (a vendor may
        post before the create has answered); None without one."""
        if url := self.callback_url:
            callbacks.listen(url, self.name, self.callback_news)
        return url
