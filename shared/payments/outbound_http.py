"""POSTing to a URL an operator registered (outbound webhooks, docs/webhooks-outbound.md#ssrf-rules): the only
code that does, and the rules that keep it from reaching inside the network.

A URL must be https, carry no credentials, and its host must resolve only to public addresses: every address
the resolver gives is checked (`refusal`), at registration and again before each delivery, and the connection
is made to the address just checked (the TLS handshake still names and verifies the host), so a DNS answer
that changes between the check and the connection (DNS rebinding) is never used. Redirects are not followed,
the request has a deadline, and at most `max_bytes` of the answer are read.

`allow_loopback` (WEBHOOK_ALLOW_LOOPBACK, set by the local stack and tests only) also allows http:// and the
loopback addresses (127.0.0.0/8, ::1): never any other private address.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL breaks a rule; the message says which (safe to show the operator)."""


@dataclass(frozen=True, slots=True)
class Destination:
    scheme: str  # http or https
    host: str  # as the URL names it, without brackets
    port: int
    target: str  # path and query, as sent on the request line
    host_header: str  # host[:port], as the Host header and TLS name it


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int | None  # the HTTP status, None if there was no answer
    error: str | None  # what went wrong without an answer (refused, timeout, connection failed), else None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def destination(url: str, *, allow_loopback: bool = False) -> Destination:
    """The URL's parts, or UrlRefused: https only (http too with `allow_loopback`), no user or password, a
    host, a port in range, no fragment."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"must be a URL of at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise UrlRefused("must not contain spaces or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_loopback else ("https",)
    if scheme not in allowed:
        raise UrlRefused("must be an https:// URL")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise UrlRefused("must not carry a user name or password")
    if parts.fragment:
        raise UrlRefused("must not have a #fragment")
    host = parts.hostname
    if not host:
        raise UrlRefused("must name a host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UrlRefused("has an invalid port") from None
    if not 0 < port < 65536:
        raise UrlRefused("has an invalid port")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    literal = f"[{host}]" if ":" in host else host
    default_port = 443 if scheme == "https" else 80
    return Destination(scheme, host, port, target, literal if port == default_port else f"{literal}:{port}")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, NAT64, 6to4, Teredo's client), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why a delivery may not go to `address` (None: it may): private, loopback, link-local, carrier-grade NAT,
    reserved, multicast, unspecified, or anything else not globally routable."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return refusal(embedded, allow_loopback=allow_loopback)
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    for kind, flag in (
        ("an unspecified address", address.is_unspecified),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a reserved address", address.is_reserved),
        ("a private address", address.is_private),
    ):
        if flag:
            return kind
    if not address.is_global:  # 100.64.0.0/10 (carrier-grade NAT) and the other special-purpose ranges
        return "a non-public address"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal: itself). Tests replace this: they do no DNS."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in answers))


def checked_addresses(target: Destination, *, allow_loopback: bool = False) -> list[IPAddress]:
    """The host's addresses, each allowed; UrlRefused if it does not resolve or any address is not allowed."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(target.host, target.port)]
        except (OSError, UnicodeError, ValueError):
            raise UrlRefused("its host does not resolve") from None
    if not found:
        raise UrlRefused("its host does not resolve")
    for address in found:
        why = refusal(address, allow_loopback=allow_loopback)
        if why is not None:
            raise UrlRefused(f"its host resolves to {why} ({address})")
    return found


def check_url(url: str, *, allow_loopback: bool = False) -> Destination:
    """`destination` and `checked_addresses` at once: what registration asks."""
    target = destination(url, allow_loopback=allow_loopback)
    checked_addresses(target, allow_loopback=allow_loopback)
    return target


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    max_bytes: int,
    allow_loopback: bool = False,
) -> PostResult:
    """POST `body` to `url` under the rules above: the result, never an exception. The connection goes to the
    first address checked; `timeout` bounds connecting, each read, and the whole answer."""
    import urllib3

    started = time.monotonic()

    def result(status: int | None, error: str | None) -> PostResult:
        return PostResult(status, error, int((time.monotonic() - started) * 1000))

    try:
        target = destination(url, allow_loopback=allow_loopback)
        address = checked_addresses(target, allow_loopback=allow_loopback)[0]
    except UrlRefused as exc:
        return result(None, f"refused: the URL {exc}")
    pool: urllib3.HTTPConnectionPool
    options = {"port": target.port, "timeout": urllib3.Timeout(connect=timeout, read=timeout), "retries": False}
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            str(address), server_hostname=target.host, assert_hostname=target.host, cert_reqs="CERT_REQUIRED",
            **options,  # type: ignore[arg-type]
        )  # fmt: skip
    else:
        pool = urllib3.HTTPConnectionPool(str(address), **options)  # type: ignore[arg-type]
    try:
        answer = pool.urlopen(
            "POST",
            target.target,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            read = 0
            while read < max_bytes:  # the answer is read (and dropped) up to its cap, within the deadline
                if time.monotonic() - started > timeout:
                    return result(None, "timeout")
                chunk = answer.read(min(8192, max_bytes - read))
                if not chunk:
                    break
                read += len(chunk)
            return result(answer.status, None)
        finally:
            answer.release_conn()
    except urllib3.exceptions.TimeoutError:
        return result(None, "timeout")
    except urllib3.exceptions.SSLError:
        return result(None, "TLS handshake failed")
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return result(None, f"connection failed ({type(exc).__name__})")
    finally:
        pool.close()
