"""Remote inputs are capabilities, not strings: what Cutroom refuses to fetch, it does not connect to.

Each refusal is proved twice: by its message, and by a loopback server of the test's own that counts every
connection it accepts (none may come). Addresses a test cannot listen on (169.254.169.254, 10.x) are proved by
a wire that records every request handed to it (none may be). A name that resolves to loopback comes from an
injected resolver (`Remote.resolver`); a "public" first hop that redirects to loopback is a wire that answers
for one global address itself and hands everything else to a real HTTP transport, so a second hop that got
through would reach the counting server.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from cutroom.assets import AssetKind, AssetSpec, InputRef
from cutroom.remote import Remote, RemoteInputError, not_public
from providers.errors import ErrorKind, ProviderError
from providers.inputs import remote_media, upload_media
from providers.local.video import LocalAnimatic
from tests.helpers import cutroom

#: A global address no test ever connects to: the routing wire below answers for it.
PUBLIC_IP = "93.184.215.14"


def png_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = png_bytes()


class Counting(ThreadingHTTPServer):
    """A loopback server that counts the connections it accepts and keeps every request's path and Host."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], family: int = socket.AF_INET):
        self.address_family = family
        self.connections = 0
        self.requests: list[tuple[str, str]] = []
        self.streamed = 0
        self.stream_done = threading.Event()
        super().__init__(address, Handler)

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1
        return True

    def handle_error(self, request, client_address) -> None:
        pass  # a client that stops reading early (a refusal) breaks the pipe: that is the point

    @property
    def port(self) -> int:
        return self.server_address[1]


class Handler(BaseHTTPRequestHandler):
    server: Counting

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        route = self.path.split("?")[0]
        if route == "/k.png":
            self._send(200, PNG, "image/png")
        elif route == "/page":
            self._send(200, b"<!doctype html><html>" + b"x" * 200 + b"</html>", "image/png")
        elif route == "/clip":
            self._send(200, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "video/mp4")
        elif route == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/k.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif route == "/big":
            self._send(200, PNG + b"\x00" * (2 * 1024 * 1024), "image/png")
        elif route == "/endless":
            self._endless()
        elif route == "/stall":
            time.sleep(3)
        else:
            self._send(404, b"no", "text/plain")

    def _send(self, status: int, body: bytes, mime: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _endless(self) -> None:
        """An image with no Content-Length that does not end (up to 256 MB): only the client can stop it."""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"\x00" * 65536
        try:
            self.wfile.write(PNG)
            while self.server.streamed < 256 * 1024 * 1024:
                self.wfile.write(chunk)
                self.server.streamed += len(chunk)
        except OSError:
            pass
        finally:
            self.server.stream_done.set()


def serve(host: str = "127.0.0.1", family: int = socket.AF_INET) -> Counting:
    server = Counting((host, 0), family)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.fixture
def server() -> Iterator[Counting]:
    s = serve()
    yield s
    s.shutdown()
    s.server_close()


@pytest.fixture
def server6() -> Iterator[Counting]:
    try:
        s = serve("::1", socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    yield s
    s.shutdown()
    s.server_close()


class Spy(httpx.BaseTransport):
    """A wire that records every request handed to it and answers each with an image."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(200, content=PNG)


def resolver(names: dict[str, str], calls: list[str] | None = None):
    def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        return [names[host]]

    return resolve


def refused(remote: Remote, url: str, *words: str) -> RemoteInputError:
    with pytest.raises(RemoteInputError) as err:
        remote.fetch(url)
    message = str(err.value)
    for word in words:
        assert word in message, message
    assert not err.value.transient
    return err.value


# Refused, and nothing connected to.


@pytest.mark.parametrize(("host", "words"), [("127.0.0.1", "loopback"), ("localhost", "loopback")])
def test_loopback_is_refused_and_never_connected_to(server: Counting, host: str, words: str) -> None:
    url = f"http://{host}:{server.port}/k.png"
    error = refused(Remote(), url, words, "CUTROOM_ALLOW_PRIVATE_URLS", f"'{url}'")
    assert error.url == url
    assert server.connections == 0 and server.requests == []


def test_ipv6_loopback_is_refused_and_never_connected_to(server6: Counting) -> None:
    refused(Remote(), f"http://[::1]:{server6.port}/k.png", "::1, a loopback address")
    assert server6.connections == 0


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "the cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "the cloud metadata address"),
        ("http://10.1.2.3/k.png", "10.1.2.3, a private address"),
        ("http://192.168.0.10:8080/k.png", "a private address"),
        ("http://[fe80::1]/k.png", "a link-local address"),
        ("http://0.0.0.0/k.png", "an unspecified address"),
        ("http://224.0.0.1/k.png", "a multicast address"),
        ("http://[::ffff:127.0.0.1]/k.png", "a loopback address"),
        ("http://2130706433/k.png", "resolves to 127.0.0.1, a loopback address"),
    ],
)
def test_internal_addresses_are_refused_before_any_request(url: str, words: str) -> None:
    spy = Spy()
    refused(Remote(transport=spy), url, words)
    assert spy.sent == []


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("file:///etc/passwd", "file:"),
        ("ftp://example.com/k.png", "ftp:"),
        ("data:image/png;base64,iVBORw0KGgo=", "data:"),
        ("gopher://example.com/", "gopher:"),
        ("/etc/passwd", "anything else"),
    ],
)
def test_only_http_links_are_fetched(url: str, scheme: str) -> None:
    spy, calls = Spy(), []
    error = refused(Remote(transport=spy, resolver=resolver({}, calls)), url, "http(s) links only", scheme)
    assert f"'{url}'" in str(error)  # quoted as given, never mangled into a path
    assert spy.sent == [] and calls == []


def test_a_name_that_resolves_to_loopback_is_refused_and_never_connected_to(server: Counting) -> None:
    remote = Remote(resolver=resolver({"cdn.test": "127.0.0.1"}))
    refused(
        remote, f"http://cdn.test:{server.port}/k.png", "its host resolves to 127.0.0.1, a loopback address"
    )
    assert server.connections == 0


def test_every_address_of_a_name_must_be_public() -> None:
    def both(host: str, port: int) -> list[str]:
        return [PUBLIC_IP, "10.0.0.5"]

    spy = Spy()
    refused(Remote(resolver=both, transport=spy), "https://cdn.test/k.png", "10.0.0.5, a private address")
    assert spy.sent == []


class Routing(httpx.BaseTransport):
    """The 'public' first hop answered here (a redirect); a request to the counting server goes out on a real
    transport, so a second hop let through would reach it; anything else is recorded, never sent."""

    def __init__(self, location: str, server: Counting) -> None:
        self.location = location
        self.server = server
        self.real = httpx.HTTPTransport()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if request.url.host == PUBLIC_IP:
            return httpx.Response(302, headers={"Location": self.location})
        if (request.url.host, request.url.port) == ("127.0.0.1", self.server.port):
            return self.real.handle_request(request)
        return httpx.Response(599)


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("http://127.0.0.1:{port}/k.png", "127.0.0.1, a loopback address"),
        ("http://localhost:{port}/k.png", "resolves to 127.0.0.1, a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata address"),
        ("file:///etc/passwd", "http(s) links only, not file:"),
    ],
)
def test_a_public_link_that_redirects_inward_is_refused_at_the_hop(
    server: Counting, target: str, words: str
) -> None:
    location = target.format(port=server.port)
    wire = Routing(location, server)
    names = resolver({"cdn.test": PUBLIC_IP, "localhost": "127.0.0.1"})
    error = refused(Remote(resolver=names, transport=wire), "https://cdn.test/k.png", words)
    assert f"redirects to '{location}'" in str(error) and "'https://cdn.test/k.png'" in str(error)
    assert [r.url.host for r in wire.sent] == [PUBLIC_IP]
    assert server.connections == 0


# The address checked is the address connected to.


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host_and_tls_name() -> None:
    """One look-up per hop, and the request sent to its answer: a second answer (DNS rebinding) is never asked
    for. The name still goes as Host and as the TLS server name, so the certificate is checked for it."""
    calls: list[str] = []
    spy = Spy()
    fetched = Remote(resolver=resolver({"cdn.test": PUBLIC_IP}, calls), transport=spy).fetch(
        "https://cdn.test/img/k.png?v=2"
    )
    assert fetched.data == PNG and fetched.mime == "image/png"
    assert calls == ["cdn.test"]
    (request,) = spy.sent
    assert str(request.url) == f"https://{PUBLIC_IP}/img/k.png?v=2"
    assert request.headers["host"] == "cdn.test"
    assert request.extensions["sni_hostname"] == "cdn.test"


def test_a_real_connection_is_pinned_to_the_checked_address(server: Counting) -> None:
    remote = Remote(allow_private=True, resolver=resolver({"cdn.test": "127.0.0.1"}))
    assert remote.fetch(f"http://cdn.test:{server.port}/k.png").data == PNG
    assert server.requests == [("/k.png", f"cdn.test:{server.port}")]


# Allowed, and fetched within bounds.


def test_a_good_image_on_loopback_is_fetched_when_the_setting_allows_it(server: Counting) -> None:
    fetched = Remote(allow_private=True).fetch(f"http://127.0.0.1:{server.port}/k.png")
    assert (fetched.data, fetched.mime) == (PNG, "image/png")


def test_redirects_are_followed_by_hand_and_bounded(server: Counting) -> None:
    remote = Remote(allow_private=True, max_redirects=3)
    fetched = remote.fetch(f"http://127.0.0.1:{server.port}/redirect")
    assert fetched.data == PNG and fetched.url.endswith("/k.png")
    assert [path for path, _ in server.requests] == ["/redirect", "/k.png"]
    refused(remote, f"http://127.0.0.1:{server.port}/loop", "redirects more than 3 times")
    assert len(server.requests) == 2 + 4


def test_a_body_that_is_not_the_expected_media_is_refused(server: Counting) -> None:
    remote = Remote(allow_private=True)
    refused(remote, f"http://127.0.0.1:{server.port}/page", "not image media (its bytes are not media)")
    refused(remote, f"http://127.0.0.1:{server.port}/clip", "not image media (its bytes are video/mp4)")
    assert remote.fetch(f"http://127.0.0.1:{server.port}/clip", expect=("video",)).mime == "video/mp4"


def test_a_declared_size_over_the_cap_is_refused_unread(server: Counting) -> None:
    remote = Remote(allow_private=True, max_bytes=1024 * 1024)
    refused(remote, f"http://127.0.0.1:{server.port}/big", "is 2.1 MB", "up to 1 MB", "CUTROOM_MAX_FETCH_MB")


def test_an_undeclared_size_is_cut_off_at_the_cap(server: Counting) -> None:
    remote = Remote(allow_private=True, max_bytes=1024 * 1024)
    refused(remote, f"http://127.0.0.1:{server.port}/endless", "larger than that", "up to 1 MB")
    assert server.stream_done.wait(10), "the server was still sending: the client kept reading"
    assert server.streamed < 32 * 1024 * 1024  # the cap plus what the sockets' buffers held


def test_a_server_that_does_not_answer_is_given_up_on_in_time(server: Counting) -> None:
    started = time.monotonic()
    with pytest.raises(RemoteInputError) as err:
        Remote(allow_private=True, total_timeout_s=0.5).fetch(f"http://127.0.0.1:{server.port}/stall")
    assert err.value.transient and "timed out" in str(err.value)
    assert time.monotonic() - started < 2


def test_errors_quote_little_of_a_long_url() -> None:
    url = "http://10.0.0.1/" + "a" * 5000
    error = refused(Remote(), url, "a private address")
    assert len(str(error)) < 250 and "…" in str(error)


def test_not_public_names_what_an_address_is() -> None:
    import ipaddress

    assert not_public(ipaddress.ip_address(PUBLIC_IP)) is None
    assert not_public(ipaddress.ip_address("2606:4700::1")) is None
    assert not_public(ipaddress.ip_address("100.64.0.1")) == "not a public address"  # carrier-grade NAT
    assert not_public(ipaddress.ip_address("64:ff9b::a00:1")) == "a private address"  # NAT64 of 10.0.0.1
    assert not_public(ipaddress.ip_address("2002:7f00:1::")) == "a loopback address"  # 6to4 of 127.0.0.1


# Through the providers.


def video_spec(uri: str) -> AssetSpec:
    return AssetSpec(
        kind=AssetKind.video, provider="local", model="animatic-1", prompt="x", width=320, height=240,
        fps=12, duration_s=1.0, inputs=(InputRef(role="keyframe", uri=uri, sha256="0" * 64),),
    )  # fmt: skip


def test_the_local_video_provider_fetches_its_keyframe_through_the_guard(server: Counting) -> None:
    good = f"http://127.0.0.1:{server.port}/k.png"
    with pytest.raises(ProviderError) as err:
        LocalAnimatic(Remote()).render(video_spec(good))
    assert err.value.kind is ErrorKind.invalid_input and "loopback" in str(err.value)
    assert server.connections == 0

    out = LocalAnimatic(Remote(allow_private=True)).render(video_spec(good))
    assert (out.width, out.height) == (320, 240)
    with pytest.raises(ProviderError) as err:
        LocalAnimatic(Remote(allow_private=True)).render(video_spec(good.replace("k.png", "gone.png")))
    assert err.value.kind is ErrorKind.invalid_input and "HTTP 404" in str(err.value)


def test_the_local_video_providers_check_refuses_an_internal_keyframe_before_the_run(
    server: Counting,
) -> None:
    spec = video_spec("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(ProviderError) as err:
        LocalAnimatic(Remote()).check(spec)
    assert err.value.kind is ErrorKind.invalid_input and "cloud metadata" in str(err.value)
    LocalAnimatic(Remote(allow_private=True)).check(video_spec(f"http://127.0.0.1:{server.port}/k.png"))
    assert server.connections == 0  # a check looks the name up; it connects to nothing


def test_a_passing_fault_is_transient_for_the_provider() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    remote = Remote(resolver=resolver({"cdn.test": PUBLIC_IP}), transport=httpx.MockTransport(down))
    with pytest.raises(ProviderError) as err:
        LocalAnimatic(remote).render(video_spec("https://cdn.test/k.png"))
    assert err.value.kind is ErrorKind.generation_failed and "HTTP 503" in str(err.value)


def test_upload_media_fetches_a_link_through_the_guard_within_the_vendors_cap(
    server: Counting, tmp_path: Path
) -> None:
    link = InputRef(role="reference", uri=f"http://127.0.0.1:{server.port}/k.png", sha256="0" * 64)
    with pytest.raises(ProviderError) as err:
        upload_media(link, "openai", remote=Remote())
    assert err.value.kind is ErrorKind.invalid_input and "the reference input" in str(err.value)
    assert server.connections == 0

    assert upload_media(link, "openai", remote=Remote(allow_private=True)) == (PNG, "image/png")
    big = link.model_copy(update={"uri": link.uri.replace("k.png", "big")})
    with pytest.raises(ProviderError) as err:
        remote_media(big, "openai", limit=1024 * 1024, remote=Remote(allow_private=True))
    assert "up to 1 MB" in str(err.value)

    # A local file with a link beside it is read, not fetched.
    (local := tmp_path / "k.png").write_bytes(PNG)
    both = InputRef(role="reference", uri=local.as_uri(), url=link.uri, sha256="0" * 64)
    before = server.connections
    assert upload_media(both, "openai", remote=Remote(allow_private=True)) == (PNG, "image/png")
    assert server.connections == before


# The command, as a user meets it.


def test_generate_video_refuses_a_loopback_keyframe_unless_the_setting_allows_it(
    prefect_server, server: Counting, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{server.port}/k.png"
    args = ["generate", "video", "--prompt", "a kite", "--image", url, "--duration", "1",
            "--out", str(tmp_path / "clip.mp4")]  # fmt: skip
    env = {"CUTROOM_OUT": str(tmp_path / "work"), "CUTROOM_ALLOW_PRIVATE_URLS": "false"}
    result = cutroom(*args, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "127.0.0.1, a loopback address" in result.stderr and f"'{url}'" in result.stderr
    assert server.connections == 0

    result = cutroom(*args, env={**env, "CUTROOM_ALLOW_PRIVATE_URLS": "true"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "clip.mp4").stat().st_size > 0
    assert ("/k.png", f"127.0.0.1:{server.port}") in server.requests
