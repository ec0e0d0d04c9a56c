"""SSRF guard for outbound webhook deliveries (PRODUCT.md §6).

Tenants choose the URLs the worker POSTs to, so every address the worker is about to
connect to is judged by an :class:`AddressPolicy` first.  The guard sits in three places
of a :class:`GuardedConnector`, because no single aiohttp hook sees every connection:

1. :class:`GuardedResolver` vets every DNS answer.  If *any* answer for a host is blocked
   the whole host is refused: attacker-controlled DNS that mixes a public and a private
   answer must not get a chance at the private one (happy eyeballs would try both).
2. A socket factory vets the exact ``sockaddr`` aiohttp hands to ``connect()``.  aiohttp
   3.14 never calls the resolver for IP-literal hosts (``TCPConnector._resolve_host``
   short-circuits on ``helpers.is_ip_address``, i.e. anything containing ``:`` or made
   of digits and dots), so ``http://127.0.0.2/`` or ``http://[::ffff:127.0.0.2]/`` would
   bypass (1).  The factory also covers anything served from aiohttp's DNS cache.  A
   sockaddr host that is not an IP address is refused, so asyncio never gets to resolve
   a name at connect time.
3. Proxied requests (``proxy=`` or ``trust_env=True`` with proxy variables) are refused:
   through a proxy the guard could only vet the proxy's address, never the destination's.

Redirects need nothing extra: every hop opens its connections through the same connector.

There is no DNS rebinding window: aiohttp connects to the ``host`` of the resolver
results it was given (no second lookup), and (2) re-checks that very address.

Allow-list semantics (``HERALD_ALLOW_CIDRS``):

* An allow-listed network opens exactly the addresses it contains.  ``127.0.0.1/32``
  does not open ``127.0.0.2`` or ``::1``.
* An allow-listed IPv4 network also opens the IPv4-mapped IPv6 form of its addresses
  (``::ffff:127.0.0.1``): a dual-stack socket connecting to the mapped form reaches the
  very same host.  Conversely an IPv6 entry inside ``::ffff:0:0/96`` is stored as the
  IPv4 network it maps.
* It does *not* open NAT64, 6to4, Teredo or IPv4-compatible forms of the address: those
  are delivered by a translator or relay, which reaches "10.0.0.1" from its own vantage
  point, not ours.  Allow-list the IPv6 prefix itself if that is really wanted.
* Cloud metadata endpoints stay blocked even inside a broader allow-listed network
  (allowing ``100.64.0.0/10`` for a cluster must not open Alibaba's ``100.100.100.200``);
  only an entry naming exactly that address (``/32`` or ``/128``) opens one.

Blocked destinations surface from ``session.post(...)`` as ``aiohttp.ClientConnectorError``
(``ClientConnectorDNSError`` when the block came from the resolver) whose ``os_error`` and
``__cause__`` are the :class:`BlockedDestination`; use :func:`is_blocked_error` to tell
them apart from ordinary connection failures, which are worth retrying while a blocked
destination is not.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Final

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.tracing import Trace

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

__all__ = [
    "AddressPolicy",
    "BlockedDestination",
    "GuardedConnector",
    "GuardedResolver",
    "IPAddress",
    "IPNetwork",
    "guarded_connector",
    "is_blocked_error",
]


class BlockedDestination(OSError):
    """A destination refused by the SSRF guard.

    It is an ``OSError`` on purpose: aiohttp only wraps ``OSError`` from resolvers and
    socket creation into ``ClientConnectorError``, so the block reaches callers through
    aiohttp's ordinary error path instead of escaping as an unexpected exception type.
    """

    def __init__(self, host: str, reason: str, address: str | None = None) -> None:
        message = f"destination {host!r} is blocked: {reason}"
        super().__init__(message)
        # ClientConnectorError copies strerror into its own message.
        self.strerror = message
        self.host = host
        self.reason = reason
        self.address = address

    def __reduce__(self) -> tuple[type[BlockedDestination], tuple[str, str, str | None]]:
        # OSError's default reduction replays ``args`` (the message) as ``host``; arq
        # pickles job exceptions, so keep the fields intact.
        return (type(self), (self.host, self.reason, self.address))


def is_blocked_error(exc: BaseException) -> BlockedDestination | None:
    """Find the :class:`BlockedDestination` behind an exception raised by aiohttp.

    Follows ``__cause__``, the displayed ``__context__``, ``ClientConnectorError.os_error``
    and exception-group members, so callers may wrap the aiohttp error in their own.
    """
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BlockedDestination):
            return current
        if isinstance(current, aiohttp.ClientConnectorError):
            pending.append(current.os_error)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        if current.__context__ is not None and not current.__suppress_context__:
            pending.append(current.__context__)
        if current.__cause__ is not None:
            pending.append(current.__cause__)
    return None


# Listed separately so that a broad allow-list entry cannot open them (see module doc).
_METADATA: Final[frozenset[IPAddress]] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
    )
)


def _ranges(*entries: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), label) for cidr, label in entries)


# First match wins, so narrower ranges precede the ranges that contain them.
_BLOCKED_V4: Final = _ranges(
    # Linux connects 0.0.0.0 to the local host, so "unspecified" is not harmless.
    ("0.0.0.0/32", "an unspecified"),
    ("0.0.0.0/8", "a reserved ('this network')"),
    ("10.0.0.0/8", "a private"),
    ("100.64.0.0/10", "a CGNAT (shared address space)"),
    ("127.0.0.0/8", "a loopback"),
    ("169.254.0.0/16", "a link-local"),
    ("172.16.0.0/12", "a private"),
    ("192.0.0.0/24", "a reserved (IETF protocol assignments)"),
    ("192.0.2.0/24", "a documentation"),
    ("192.88.99.0/24", "a reserved (deprecated 6to4 relay anycast)"),
    ("192.168.0.0/16", "a private"),
    ("198.18.0.0/15", "a benchmarking"),
    ("198.51.100.0/24", "a documentation"),
    ("203.0.113.0/24", "a documentation"),
    ("224.0.0.0/4", "a multicast"),
    ("255.255.255.255/32", "a broadcast"),
    ("240.0.0.0/4", "a reserved"),
)

_BLOCKED_V6: Final = _ranges(
    ("100::/64", "a discard-only"),
    ("2001:2::/48", "a benchmarking"),
    ("2001:10::/28", "a reserved (ORCHID)"),
    ("2001:20::/28", "a reserved (ORCHIDv2)"),
    ("2001::/23", "a reserved (IETF protocol assignments)"),
    ("2001:db8::/32", "a documentation"),
    ("3fff::/20", "a documentation"),
    ("5f00::/16", "a reserved (SRv6 SIDs)"),
    ("fc00::/7", "a private (unique local)"),
    ("fe80::/10", "a link-local"),
    ("fec0::/10", "a reserved (deprecated site-local)"),
    ("ff00::/8", "a multicast"),
)

_V6_UNSPECIFIED: Final = IPv6Address("::")
_V6_LOOPBACK: Final = IPv6Address("::1")
_V4_MAPPED: Final = IPv6Network("::ffff:0:0/96")
_V4_COMPATIBLE: Final = IPv6Network("::/96")
_V4_TRANSLATED: Final = IPv6Network("::ffff:0:0:0/96")
_NAT64_WELL_KNOWN: Final = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL: Final = IPv6Network("64:ff9b:1::/48")
_SIX_TO_FOUR: Final = IPv6Network("2002::/16")
_TEREDO: Final = IPv6Network("2001::/32")
# Anything outside it is unallocated or special-purpose; new special ranges keep
# appearing, so default-deny is safer than enumerating them.
_GLOBAL_UNICAST: Final = IPv6Network("2000::/3")


def _low32(address: IPv6Address) -> IPv4Address:
    return IPv4Address(int(address) & 0xFFFFFFFF)


def _range_reason(address: IPAddress, table: tuple[tuple[IPNetwork, str], ...]) -> str | None:
    for network, label in table:
        if address.version == network.version and address in network:
            return f"{address} is in {label} range ({network})"
    return None


def _judge_v4(address: IPv4Address) -> str | None:
    if address in _METADATA:
        return f"{address} is a cloud metadata endpoint"
    return _range_reason(address, _BLOCKED_V4)


def _embedded(address: IPv6Address, v4: IPv4Address, form: str) -> str | None:
    reason = _judge_v4(v4)
    return None if reason is None else f"{address} embeds {v4} ({form}), and {reason}"


def _judge_v6(address: IPv6Address) -> str | None:
    """The verdict on ``address`` without any allow-list."""
    if address in _METADATA:
        return f"{address} is a cloud metadata endpoint"
    if address == _V6_UNSPECIFIED:
        return f"{address} is in an unspecified range (::/128)"
    if address == _V6_LOOPBACK:
        return f"{address} is in a loopback range (::1/128)"
    if address in _V4_MAPPED:
        return _embedded(address, _low32(address), f"IPv4-mapped, {_V4_MAPPED}")
    for network, kind in ((_V4_COMPATIBLE, "compatible"), (_V4_TRANSLATED, "translated")):
        if address in network:
            # Deprecated forms nothing legitimate uses: blocked even around a public
            # IPv4, but a bad embedded address makes the more useful reason.
            return _embedded(address, _low32(address), f"IPv4-{kind}, {network}") or (
                f"{address} is in a reserved range ({network}, deprecated IPv4-{kind})"
            )
    if address in _NAT64_WELL_KNOWN:
        return _embedded(address, _low32(address), f"NAT64, {_NAT64_WELL_KNOWN}")
    if address in _NAT64_LOCAL:
        # RFC 6052 lets each network choose where the IPv4 bits sit inside a local-use
        # prefix, so no extraction can be trusted; the common /96 layout only serves to
        # give a better reason.
        form = f"local-use NAT64, {_NAT64_LOCAL}"
        return _embedded(address, _low32(address), form) or (
            f"{address} is in a local-use NAT64 range ({_NAT64_LOCAL}) whose IPv4 "
            "embedding is network-specific and cannot be vetted"
        )
    if address in _SIX_TO_FOUR and address.sixtofour is not None:
        return _embedded(address, address.sixtofour, f"6to4, {_SIX_TO_FOUR}")
    if address in _TEREDO and address.teredo is not None:
        server, client = address.teredo
        return (
            _embedded(address, client, f"Teredo client, {_TEREDO}")
            or _embedded(address, server, f"Teredo server, {_TEREDO}")
            # Teredo is defunct and relays deliver from their own vantage point.
            or f"{address} is in a Teredo tunnelling range ({_TEREDO})"
        )
    reason = _range_reason(address, _BLOCKED_V6)
    if reason is None and address not in _GLOBAL_UNICAST:
        reason = f"{address} is in a reserved range (outside {_GLOBAL_UNICAST} global unicast)"
    return reason


def _without_scope(address: IPAddress) -> IPAddress:
    # Scoped addresses (fe80::1%eth0) compare unequal to their unscoped twin.
    if isinstance(address, IPv6Address) and address.scope_id is not None:
        return IPv6Address(int(address))
    return address


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class AddressPolicy:
    """Decides whether the worker may connect to an address.

    ``allow`` holds the deliberately opened networks (``HERALD_ALLOW_CIDRS``); everything
    else that is not public unicast is blocked.  See the module docstring for how the
    allow-list treats IPv4-mapped, NAT64, 6to4 and metadata addresses.
    """

    allow: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> AddressPolicy:
        """Build a policy from CIDR strings; a single string may be comma/space separated.

        Raises ``ValueError`` naming the offending entry.  Host bits must be zero
        (``10.0.0.5/8`` is rejected) because such a typo makes the intent ambiguous.
        """
        entries = cidrs.replace(",", " ").split() if isinstance(cidrs, str) else cidrs
        networks: list[IPNetwork] = []
        for entry in entries:
            text = entry.strip()
            if not text:
                continue
            try:
                network = ipaddress.ip_network(text, strict=True)
            except ValueError as exc:
                raise ValueError(f"invalid CIDR in allow-list: {entry!r}: {exc}") from exc
            if isinstance(network, IPv6Network) and network.subnet_of(_V4_MAPPED):
                network = IPv4Network(
                    (int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96)
                )
            networks.append(network)
        return cls(allow=tuple(networks))

    def check(self, address: IPAddress) -> str | None:
        """Return ``None`` if ``address`` may be connected to, else why it may not."""
        address = _without_scope(address)
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            # Same host as the IPv4 address, so the IPv4 allow-list applies too.
            v4 = address.ipv4_mapped
            reason = self.check(v4)
            if reason is None:
                return None
            return f"{address} is the IPv4-mapped form of {v4}, and {reason}"
        if self._allowed(address):
            return None
        if isinstance(address, IPv4Address):
            return _judge_v4(address)
        return _judge_v6(address)

    def _allowed(self, address: IPAddress) -> bool:
        for network in self.allow:
            if address.version != network.version or address not in network:
                continue
            if address in _METADATA and network.num_addresses != 1:
                continue
            return True
        return False


_NUMERIC_FLAGS: Final = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class GuardedResolver(AbstractResolver):
    """Resolves through ``base`` and refuses hosts with any blocked answer.

    ``base`` defaults to aiohttp's ``DefaultResolver`` (``ThreadedResolver``, or
    ``AsyncResolver`` when aiodns is installed), created lazily so the resolver can be
    built outside a running loop.  A caller-supplied ``base`` stays owned by the caller,
    matching how ``TCPConnector`` treats a supplied resolver.  IP-literal hosts are judged
    directly, without consulting ``base``.
    """

    def __init__(self, policy: AddressPolicy, base: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._base = base
        self._owns_base = base is None

    @property
    def policy(self) -> AddressPolicy:
        return self._policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        literal = _parse_ip(host)
        if literal is not None:
            self._vet(host, literal, str(literal))
            literal_family = socket.AF_INET if literal.version == 4 else socket.AF_INET6
            if family not in (socket.AF_UNSPEC, literal_family):
                raise socket.gaierror(
                    socket.EAI_FAMILY, f"{host} is not of address family {family!r}"
                )
            return [
                ResolveResult(
                    hostname=host,
                    host=str(literal),
                    port=port,
                    family=literal_family,
                    proto=0,
                    flags=_NUMERIC_FLAGS,
                )
            ]

        if self._base is None:
            self._base = aiohttp.DefaultResolver()
        results = await self._base.resolve(host, port, family)
        for result in results:
            address = _parse_ip(result["host"])
            if address is None:
                raise BlockedDestination(
                    host, f"the resolver answered {result['host']!r}, which is not an IP address"
                )
            self._vet(host, address, result["host"])
        return results

    def _vet(self, host: str, address: IPAddress, shown: str) -> None:
        reason = self._policy.check(address)
        if reason is not None:
            raise BlockedDestination(host, reason, address=shown)

    async def close(self) -> None:
        if self._owns_base and self._base is not None:
            await self._base.close()


def _guarded_socket_factory(
    policy: AddressPolicy, inner: aiohttp.SocketFactoryType | None
) -> aiohttp.SocketFactoryType:
    def factory(addr_info: aiohttp.AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        host = str(sockaddr[0])
        address = _parse_ip(host)
        if address is None:
            # asyncio's sock_connect would resolve a name here, after every check.
            raise BlockedDestination(host, f"{host!r} is not an IP address")
        reason = policy.check(address)
        if reason is not None:
            raise BlockedDestination(host, reason, address=host)
        if inner is not None:
            return inner(addr_info)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


class GuardedConnector(aiohttp.TCPConnector):
    """``TCPConnector`` that only connects to addresses ``policy`` allows.

    Accepts every ``TCPConnector`` keyword.  A ``resolver`` becomes the base of the
    :class:`GuardedResolver` (never a way around it) and a ``socket_factory`` is called
    only for vetted addresses.  DNS caching stays safe: only vetted answers are cached,
    and the socket factory re-checks whatever the cache hands out.
    """

    def __init__(self, policy: AddressPolicy, **connector_kwargs: Any) -> None:
        base: AbstractResolver | None = connector_kwargs.pop("resolver", None)
        inner: aiohttp.SocketFactoryType | None = connector_kwargs.pop("socket_factory", None)
        self._policy = policy
        self._guarded_resolver = GuardedResolver(policy, base)
        super().__init__(
            resolver=self._guarded_resolver,
            socket_factory=_guarded_socket_factory(policy, inner),
            **connector_kwargs,
        )

    @property
    def policy(self) -> AddressPolicy:
        return self._policy

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 -- aiohttp's signature
    ) -> Connection:
        if req.proxy is not None:
            # The proxy URL is left out of the message: it may carry credentials.
            blocked = BlockedDestination(
                req.url.raw_host or "",
                "requests through a proxy are refused: only the proxy's address could be "
                "vetted, not the destination's",
            )
            raise aiohttp.ClientConnectorError(req.connection_key, blocked) from blocked
        return await super().connect(req, traces, timeout)

    async def close(self, *, abort_ssl: bool = False) -> None:
        # TCPConnector never closes a resolver it was handed; this one is ours.
        try:
            await super().close(abort_ssl=abort_ssl)
        finally:
            await self._guarded_resolver.close()


def guarded_connector(policy: AddressPolicy, **connector_kwargs: Any) -> aiohttp.TCPConnector:
    """Build the connector the worker must use for tenant URLs (see :class:`GuardedConnector`)."""
    return GuardedConnector(policy, **connector_kwargs)
