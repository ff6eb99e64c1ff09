"""Signed webhook deliveries that only ever connect to addresses the policy allows.

The address check runs inside the connection itself: a network backend resolves the
host, vets every address and connects to a vetted IP, so a name cannot resolve to a
public address when checked and to 127.0.0.1 when connected (DNS rebinding). TLS still
verifies the certificate against the URL's hostname, which httpcore passes to start_tls.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

import anyio
import httpcore
import httpx

from segmentd.events.addresses import AddressPolicy, AddressRefused, InvalidUrl
from segmentd.events.signing import signature_headers

USER_AGENT = "segmentd-webhook/1"
ERROR_MAX_LENGTH = 200  # DeliveryError messages are stored and shown to admins


class DeliveryError(Exception):
    """A delivery that did not succeed; the message is short and safe to show to admins."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message[:ERROR_MAX_LENGTH])
        self.status = status  # the receiver's HTTP status, when it answered


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpcore's exceptions as their httpx counterparts, as httpx's own transport does."""
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise httpx.TimeoutException(str(exc)) from exc
    except httpcore.NetworkError as exc:
        raise httpx.NetworkError(str(exc)) from exc
    except httpcore.ProtocolError as exc:
        raise httpx.ProtocolError(str(exc)) from exc
    except httpcore.UnsupportedProtocol as exc:
        raise httpx.UnsupportedProtocol(str(exc)) from exc


class _VettedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, chosen at connect time.

    connect_unix_socket is left to the base class (NotImplementedError): the pool is built
    without `uds`, so httpcore never calls it.
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await self._policy.resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:  # socket.gaierror included
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        error: Exception | None = None
        for address in addresses:  # vetted addresses only, in the resolver's order
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise httpcore.ConnectError(f"cannot connect to {host} port {port}: {error}") from error

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _ResponseStream(httpx.AsyncByteStream):
    """httpcore's response body as httpx expects it, with httpx's exceptions."""

    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):  # httpcore's pool streams have it
            with _httpx_errors():
                await self._stream.aclose()


class _VettedTransport(httpx.AsyncBaseTransport):
    """httpx over an httpcore pool whose every connection goes through _VettedBackend."""

    def __init__(self, policy: AddressPolicy) -> None:
        # create_ssl_context honours SSL_CERT_FILE/SSL_CERT_DIR, so a private CA can be trusted.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_VettedBackend(policy)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,  # carries httpx's per-phase timeouts
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class WebhookSender:
    """POSTs signed event bodies to subscribers' URLs; one instance per app, closed on shutdown."""

    def __init__(self, policy: AddressPolicy, timeout: float) -> None:
        self._policy = policy
        self._timeout = timeout
        # Made at the first delivery: loading the CA bundle into an SSL context costs tens
        # of milliseconds, which a process with no webhook subscription never needs to pay.
        self._http: httpx.AsyncClient | None = None

    @property
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=_VettedTransport(self._policy),
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,  # a redirect could point at a refused address
                trust_env=False,  # no proxies or .netrc credentials from the environment
            )
        return self._http

    async def send(self, url: str, secret: str, event_id: str, body: bytes) -> None:
        """Deliver once; return on any 2xx, else raise DeliveryError."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signature_headers(secret, event_id, body),
        }
        try:
            self._policy.check_url(url)
            # httpx's timeouts are per read; the deadline also bounds a receiver that trickles.
            with anyio.fail_after(self._timeout):
                async with self._client.stream("POST", url, content=body, headers=headers) as r:
                    status = r.status_code  # the body is never read: only the status counts
        except InvalidUrl as exc:
            raise DeliveryError(f"invalid url: {exc}") from exc
        except AddressRefused as exc:
            raise DeliveryError(f"refused address: {exc}") from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise DeliveryError(f"timed out after {self._timeout:g}s") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"connection failed: {str(exc) or type(exc).__name__}") from exc
        if not 200 <= status < 300:
            raise DeliveryError(f"HTTP {status}", status=status)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
