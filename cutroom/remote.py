"""The one way Cutroom fetches a URL a user gave it (a brief, a CLI flag, a deployment parameter).

A link is a capability to check, not a string to GET:
- http(s) only; `file:`, `ftp:`, `data:` and the rest are refused by name;
- the host is resolved first and every address it resolves to is checked: no loopback, private, link-local
  (the cloud metadata address among them), unspecified, multicast or reserved address, unless the setting
  `allow_private_urls` allows them (the simulator and tests need it);
- the connection goes to the address that was checked, never to a second lookup (a name that resolves to a
  public address for the check and to loopback for the connect gets nowhere): the request is sent to the IP,
  with the name in the Host header and as the TLS server name, so the certificate is still checked for the name;
- redirects are followed by hand, each hop checked as the first, at most MAX_REDIRECTS of them;
- the body is streamed and cut off at `max_fetch_mb` whatever Content-Length says; connect and total time
  are capped;
- the bytes must be media of the expected kind (sniffed, never taken from a name or a Content-Type).

Vendor output links (providers/http.py) are not user input and do not come through here.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from cutroom.boundary import quote
from cutroom.settings import settings
from cutroom.sniff import sniff

MAX_REDIRECTS = 5
CONNECT_TIMEOUT_S = 10.0
#: The longest silence mid-response: a server that trickles a byte at a time overruns the total by at most this.
IDLE_TIMEOUT_S = 10.0
TOTAL_TIMEOUT_S = 60.0
REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Enough leading bytes for sniff() to tell media from anything else.
HEAD = 64

#: Answers a host and port with the addresses it resolves to (the system's resolver by default).
Resolver = Callable[[str, int], Sequence[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Where clouds serve instance credentials; named in refusals, since that is what an attacker wants.
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
#: IPv6 that carries an IPv4 address inside (NAT64's well-known prefix): the IPv4 one is what is reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RemoteInputError(ValueError):
    """A remote input that was refused or could not be fetched. `transient` is True only for what may pass
    (a dropped connection, a timeout, a 5xx); a refusal is never worth repeating."""

    def __init__(self, url: str, reason: str, *, transient: bool = False):
        self.url = url
        self.reason = reason
        self.transient = transient
        super().__init__(f"cannot fetch {quote(url)}: {reason}")


@dataclass(frozen=True)
class Fetched:
    data: bytes
    mime: str
    url: str  # where the bytes came from, after redirects


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Remote:
    """The fetch policy: what may be reached, how much and how long. `resolver` and `transport` are the test
    seams (a transport given here is the wire after the checks, never a way around them)."""

    allow_private: bool = False
    max_bytes: int = 50 * 1024 * 1024
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    idle_timeout_s: float = IDLE_TIMEOUT_S
    total_timeout_s: float = TOTAL_TIMEOUT_S
    max_redirects: int = MAX_REDIRECTS
    resolver: Resolver = system_resolver
    transport: httpx.BaseTransport | None = None

    @classmethod
    def from_settings(cls, **overrides: object) -> Remote:
        current = settings()
        policy = {
            "allow_private": current.allow_private_urls,
            "max_bytes": int(current.max_fetch_mb * 1024 * 1024),
        }
        return cls(**{**policy, **overrides})  # type: ignore[arg-type]

    def fetch(self, url: str, expect: tuple[str, ...] = ("image",)) -> Fetched:
        """The bytes at `url`, refused unless every hop is allowed and they are media of an `expect` kind
        ("image", "video", "audio")."""
        deadline = time.monotonic() + self.total_timeout_s
        target, location = _parse(url), None
        for _ in range(self.max_redirects + 1):
            try:
                addresses = self._addresses(target, url)
            except RemoteInputError as exc:
                raise exc if location is None else _redirected(url, location, exc) from None
            hop = _Hop(self, target, addresses, url, deadline)
            try:
                response = hop.open()
                if response.status_code not in REDIRECTS:
                    data, mime = hop.read(expect)
                    return Fetched(data=data, mime=mime, url=str(target))
                location = response.headers.get("location")
            finally:
                hop.close()
            if not location:
                raise RemoteInputError(
                    url, f"it redirects (HTTP {response.status_code}) without saying where"
                )
            try:
                target = _parse(str(target.join(location)))
            except RemoteInputError as exc:
                raise _redirected(url, location, exc) from None
        raise RemoteInputError(url, f"it redirects more than {self.max_redirects} times")

    def check(self, url: str) -> None:
        """Refuse a link before anything is fetched (a look-up, no connection): the fetch checks it again, and
        every hop after it."""
        self._addresses(_parse(url), url)

    def _addresses(self, target: httpx.URL, original: str) -> list[IPAddress]:
        """The addresses `target`'s host resolves to, every one of them allowed, or a refusal quoting `original`."""
        host = target.raw_host.decode("ascii")
        try:
            addresses, where = [ipaddress.ip_address(host)], ""
        except ValueError:
            try:
                resolved = self.resolver(host, _port(target))
                addresses, where = (
                    [ipaddress.ip_address(a.split("%")[0]) for a in resolved],
                    "its host resolves to ",
                )
            except (OSError, UnicodeError, ValueError):
                addresses = []
        if not addresses:
            raise RemoteInputError(original, "its host does not resolve", transient=True)
        if not self.allow_private:
            for address in addresses:
                if problem := not_public(address):
                    raise RemoteInputError(
                        original,
                        f"{where}{address}, {problem}; Cutroom fetches from public addresses only "
                        "(CUTROOM_ALLOW_PRIVATE_URLS=true widens this)",
                    )
        return addresses


class _Hop:
    """One GET to a checked address: the URL's host swapped for the IP, the name kept as Host and TLS name.
    Whoever opens a hop closes it, whatever happened."""

    def __init__(
        self, remote: Remote, target: httpx.URL, addresses: list[IPAddress], original: str, deadline: float
    ):
        self.remote, self.target, self.addresses = remote, target, addresses
        self.original, self.deadline = original, deadline
        self.client: httpx.Client | None = None
        self.response: httpx.Response | None = None

    def open(self) -> httpx.Response:
        name = self.target.raw_host.decode("ascii")
        # A fresh transport per hop: a pooled TLS connection to the same IP made for another name is never reused.
        # No proxies from the environment (trust_env): a proxy would connect wherever it liked.
        transport = self.remote.transport or httpx.HTTPTransport(verify=_tls(), retries=0)
        self.client = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
        last: Exception | None = None
        for address in self.addresses:
            remaining = self._remaining()
            request = self.client.build_request(
                "GET",
                self.target.copy_with(host=str(address)),
                headers={"Host": _netloc(self.target), "Accept-Encoding": "identity"},
                extensions={"sni_hostname": name},
                timeout=httpx.Timeout(
                    min(self.remote.idle_timeout_s, remaining),
                    connect=min(self.remote.connect_timeout_s, remaining),
                ),
            )
            try:
                self.response = self.client.send(request, stream=True)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last = exc  # the next address of the name may answer
            except httpx.HTTPError as exc:
                raise self._failed(exc) from None
        else:
            raise self._failed(last or httpx.ConnectError("no address"))
        response = self.response
        if response.status_code in REDIRECTS:
            return response
        if response.is_error:
            raise RemoteInputError(
                self.original,
                f"the server answered HTTP {response.status_code}",
                transient=response.status_code >= 500,
            )
        if response.headers.get("content-encoding", "identity").lower() != "identity":
            raise RemoteInputError(
                self.original, "the server sent it compressed; Cutroom takes media as it is"
            )
        return response

    def read(self, expect: tuple[str, ...]) -> tuple[bytes, str]:
        assert self.response is not None
        limit = self.remote.max_bytes
        declared = self.response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_big(int(declared))
        body = bytearray()
        mime: str | None = None
        try:
            for chunk in self.response.iter_bytes():  # as sent: open() refused any Content-Encoding
                body += chunk
                if len(body) > limit:
                    raise self._too_big(None)
                if mime is None and len(body) >= HEAD:
                    mime = self._media(bytes(body[:HEAD]), expect)  # stop early: no need to read a web page
                if time.monotonic() > self.deadline:
                    raise RemoteInputError(
                        self.original,
                        f"it took longer than {self.remote.total_timeout_s:g} s",
                        transient=True,
                    )
        except httpx.HTTPError as exc:
            raise self._failed(exc) from None
        return bytes(body), mime or self._media(bytes(body[:HEAD]), expect)

    def close(self) -> None:
        if self.response is not None:
            self.response.close()
        if self.client is not None and self.remote.transport is None:
            self.client.close()  # and the transport it made; a transport given to Remote is its owner's

    def _remaining(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise RemoteInputError(
                self.original, f"it took longer than {self.remote.total_timeout_s:g} s", transient=True
            )
        return remaining

    def _media(self, head: bytes, expect: tuple[str, ...]) -> str:
        mime = sniff(head)
        if mime is None or mime.split("/")[0] not in expect:
            found = "not media" if mime is None else mime
            raise RemoteInputError(
                self.original, f"it is not {' or '.join(expect)} media (its bytes are {found})"
            )
        return mime

    def _too_big(self, declared: int | None) -> RemoteInputError:
        size = f"{declared / 1e6:.1f} MB" if declared is not None else "larger than that"
        cap = self.remote.max_bytes / (1024 * 1024)
        return RemoteInputError(
            self.original, f"it is {size}; Cutroom fetches up to {cap:g} MB (CUTROOM_MAX_FETCH_MB)"
        )

    def _failed(self, exc: Exception) -> RemoteInputError:
        what = "timed out" if isinstance(exc, httpx.TimeoutException) else f"failed ({type(exc).__name__})"
        return RemoteInputError(self.original, f"the connection {what}", transient=True)


def not_public(address: IPAddress) -> str | None:
    """What kind of non-public address this is, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return not_public(embedded)
    if address.is_loopback:
        return "a loopback address"
    if address in _METADATA:
        return "the cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


def fetch(url: str, expect: tuple[str, ...] = ("image",), remote: Remote | None = None) -> Fetched:
    """The bytes at a user-given URL under the settings' policy (or `remote`'s)."""
    return (remote or Remote.from_settings()).fetch(url, expect)


def _redirected(url: str, location: str, exc: RemoteInputError) -> RemoteInputError:
    return RemoteInputError(url, f"it redirects to {quote(location)}: {exc.reason}", transient=exc.transient)


def _parse(url: str) -> httpx.URL:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("http", "https"):
        named = f"not {scheme}:" if scheme.isalnum() else "not anything else"
        raise RemoteInputError(url, f"Cutroom fetches http(s) links only, {named}")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise RemoteInputError(url, f"it is not a valid URL ({quote(str(exc), 60)})") from None
    if not parsed.raw_host:
        raise RemoteInputError(url, "the link names no host")
    return parsed


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def _netloc(url: httpx.URL) -> str:
    host = url.raw_host.decode("ascii")
    host = f"[{host}]" if ":" in host else host
    return host if url.port is None else f"{host}:{url.port}"


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every fetch: loading the CA bundle costs ~20 ms of CPU each time."""
    return httpx.create_ssl_context()
