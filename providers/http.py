"""HTTP facts every vendor shares: output downloads, Retry-After, and what a status code means."""

from __future__ import annotations

import email.utils
import functools
import time

import httpx

from providers.errors import ErrorKind, ProviderError

#: What a vendor answers for an output link that has expired or been taken down.
GONE_STATUSES = frozenset({401, 403, 404, 410})


@functools.cache
def _downloads() -> httpx.Client:
    """One client for every output download of the process (httpx clients are thread-safe): a client per
    download would load the CA bundle again each time, ~20 ms of CPU, and open a new connection."""
    return httpx.Client(follow_redirects=True)


def download_output(
    url: str, provider: str, http: httpx.Client | None = None, timeout: float = 120.0
) -> tuple[bytes, str]:
    """Fetch a finished job's output at once (vendor links expire): its bytes and MIME type.

    A dropped connection or a 5xx is transient (the caller waits and repeats it); an expired link is not_found.
    """
    try:
        response = (http or _downloads()).get(url, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise ProviderError(
            ErrorKind.generation_failed, f"downloading {url}: {exc}", provider=provider
        ) from exc
    if response.status_code in GONE_STATUSES:
        raise ProviderError(
            ErrorKind.not_found,
            f"output URL expired or gone (HTTP {response.status_code}): {url}",
            provider=provider,
        )
    if response.is_error:
        raise ProviderError(
            ErrorKind.generation_failed, f"downloading {url}: HTTP {response.status_code}", provider=provider
        )
    return response.content, response.headers.get("content-type", "application/octet-stream").split(";")[0]


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if (ms := response.headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def status_kind(status: int) -> ErrorKind:
    """What an HTTP error status means when a vendor says nothing more specific."""
    if status == 429:
        return ErrorKind.rate_limited
    if status == 402:
        return ErrorKind.insufficient_credits
    if status in (401, 403):
        return ErrorKind.auth
    if status in (404, 410):
        return ErrorKind.not_found
    if status in (408, 409, 425) or status >= 500:
        return ErrorKind.generation_failed  # what an SDK itself would retry: passing faults
    return ErrorKind.invalid_input
