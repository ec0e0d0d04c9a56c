"""Decisions of the SSRF guard.  Nothing here opens a socket or resolves a real name."""

from __future__ import annotations

import pickle
import socket
from ipaddress import IPv4Network, IPv6Network, ip_address

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ConnectionKey

from worker.ssrf import (
    AddressPolicy,
    BlockedDestination,
    GuardedResolver,
    _guarded_socket_factory,
    is_blocked_error,
)

NOTHING_ALLOWED = AddressPolicy()
TEST_POLICY = AddressPolicy.from_cidrs(["127.0.0.1/32"])


def _teredo(server: str, client: str) -> str:
    """Teredo address for ``server``/``client`` (the client's IPv4 is stored inverted)."""
    obfuscated = int(ip_address(client)) ^ 0xFFFFFFFF
    value = (0x20010000 << 96) | (int(ip_address(server)) << 64) | obfuscated
    return str(ip_address(value))


# (address, expected fragment of the reason, or None when the address must be allowed)
DECISIONS: list[tuple[str, str | None]] = [
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.170.2", "cloud metadata"),
    ("169.254.1.1", "link-local"),
    ("100.100.100.200", "cloud metadata"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.255", "CGNAT"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("192.0.0.8", "reserved"),
    ("192.88.99.1", "reserved"),
    ("240.0.0.1", "reserved"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fd00::1", "private"),
    ("fc00::1", "private"),
    ("fd00:ec2::254", "cloud metadata"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("100::1", "discard-only"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("2001:2::1", "benchmarking"),
    ("2001:10::1", "ORCHID"),
    ("5f00::1", "reserved"),
    ("4000::1", "outside 2000::/3"),
    # IPv4-mapped: judged as the IPv4 address it is.
    ("::ffff:10.0.0.1", "10.0.0.1 is in a private range"),
    ("::ffff:127.0.0.2", "127.0.0.2 is in a loopback range"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("::ffff:8.8.8.8", None),
    # NAT64, well-known prefix: the embedded IPv4 decides.
    ("64:ff9b::a00:1", "10.0.0.1 is in a private range"),
    ("64:ff9b::7f00:1", "127.0.0.1 is in a loopback range"),
    ("64:ff9b::a9fe:a9fe", "cloud metadata"),
    ("64:ff9b::808:808", None),
    # NAT64, local-use prefix: embedding is network-specific, so always blocked.
    ("64:ff9b:1::a00:1", "10.0.0.1 is in a private range"),
    ("64:ff9b:1::808:808", "local-use NAT64"),
    # 6to4: the embedded IPv4 decides.
    ("2002:a00:1::", "10.0.0.1 is in a private range"),
    ("2002:7f00:1::1", "127.0.0.1 is in a loopback range"),
    ("2002:a9fe:a9fe::", "cloud metadata"),
    ("2002:808:808::", None),
    # Teredo: a bad embedded IPv4 (server or client) names the reason; otherwise the
    # tunnel itself is refused.
    (_teredo("8.8.8.8", "10.0.0.1"), "10.0.0.1 is in a private range"),
    (_teredo("127.0.0.1", "1.1.1.1"), "127.0.0.1 is in a loopback range"),
    (_teredo("8.8.8.8", "1.1.1.1"), "Teredo"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45 is in a documentation range"),
    # IPv4-compatible and IPv4-translated: deprecated, always blocked.
    ("::127.0.0.2", "127.0.0.2 is in a loopback range"),
    ("::10.0.0.1", "10.0.0.1 is in a private range"),
    ("::8.8.8.8", "IPv4-compatible"),
    ("::ffff:0:127.0.0.1", "127.0.0.1 is in a loopback range"),
    ("::ffff:0:8.8.8.8", "IPv4-translated"),
    # Public destinations.
    ("93.184.215.14", None),
    ("8.8.8.8", None),
    ("1.1.1.1", None),
    ("100.63.255.255", None),
    ("100.128.0.0", None),
    ("172.15.255.255", None),
    ("172.32.0.0", None),
    ("2606:4700::1111", None),
    ("2a00:1450:4001:80b::200e", None),
]


@pytest.mark.parametrize(("address", "expected"), DECISIONS)
def test_default_policy_decision(address: str, expected: str | None) -> None:
    reason = NOTHING_ALLOWED.check(ip_address(address))
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        # The same host through a dual-stack socket.
        ("::ffff:127.0.0.1", True),
        ("127.0.0.2", False),
        ("::ffff:127.0.0.2", False),
        ("::1", False),
        ("127.0.0.0", False),
        # Translators reach 127.0.0.1 from their own vantage point, not ours.
        ("64:ff9b::7f00:1", False),
        ("2002:7f00:1::", False),
        ("::127.0.0.1", False),
        ("10.0.0.1", False),
        ("93.184.215.14", True),
    ],
)
def test_test_allow_list_opens_exactly_one_host(address: str, allowed: bool) -> None:
    assert (TEST_POLICY.check(ip_address(address)) is None) is allowed


@pytest.mark.parametrize(
    ("cidrs", "address", "allowed"),
    [
        (["10.0.0.0/8"], "10.1.2.3", True),
        (["10.0.0.0/8"], "::ffff:10.1.2.3", True),
        (["10.0.0.0/8"], "11.0.0.1", True),
        (["10.0.0.0/8"], "172.16.0.1", False),
        (["10.0.0.0/8"], "64:ff9b::a00:1", False),
        (["::1/128"], "::1", True),
        (["::1/128"], "127.0.0.1", False),
        (["fd00::/8"], "fd12::1", True),
        (["fd00::/8"], "fc00::1", False),
        # An IPv4-mapped entry is stored as the IPv4 network it maps.
        (["::ffff:127.0.0.0/104"], "127.9.9.9", True),
        (["::ffff:127.0.0.0/104"], "::ffff:127.9.9.9", True),
        # Opening a translator prefix deliberately is possible.
        (["64:ff9b::/96"], "64:ff9b::a00:1", True),
        # Metadata endpoints need an exact entry; a broad range does not open them.
        (["169.254.0.0/16"], "169.254.1.1", True),
        (["169.254.0.0/16"], "169.254.169.254", False),
        (["169.254.0.0/16"], "::ffff:169.254.169.254", False),
        (["169.254.169.254/32"], "169.254.169.254", True),
        (["100.64.0.0/10"], "100.64.0.1", True),
        (["100.64.0.0/10"], "100.100.100.200", False),
        (["fd00::/8"], "fd00:ec2::254", False),
        (["fd00:ec2::254/128"], "fd00:ec2::254", True),
        ([], "127.0.0.1", False),
    ],
)
def test_allow_list(cidrs: list[str], address: str, allowed: bool) -> None:
    policy = AddressPolicy.from_cidrs(cidrs)
    assert (policy.check(ip_address(address)) is None) is allowed


def test_from_cidrs_parses_setting_string() -> None:
    policy = AddressPolicy.from_cidrs(" 127.0.0.1/32, ::1/128 ,,10.0.0.0/8 ")
    assert policy.allow == (
        IPv4Network("127.0.0.1/32"),
        IPv6Network("::1/128"),
        IPv4Network("10.0.0.0/8"),
    )
    assert AddressPolicy.from_cidrs("").allow == ()
    assert AddressPolicy.from_cidrs(["127.0.0.1"]).allow == (IPv4Network("127.0.0.1/32"),)


@pytest.mark.parametrize("bad", ["not-a-cidr", "10.0.0.0/33", "10.0.0.5/8", "::1/129", "1.2.3"])
def test_from_cidrs_rejects_bad_entries(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid CIDR in allow-list"):
        AddressPolicy.from_cidrs(["127.0.0.1/32", bad])


def test_reason_names_address_and_range() -> None:
    assert NOTHING_ALLOWED.check(ip_address("127.0.0.2")) == (
        "127.0.0.2 is in a loopback range (127.0.0.0/8)"
    )


class _StaticResolver(AbstractResolver):
    """Answers from a table instead of DNS, and records what it was asked."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self._answers = answers
        self.calls: list[str] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        if host not in self._answers:
            raise OSError(f"{host} is not in the test table")
        return [
            ResolveResult(
                hostname=host,
                host=answer,
                port=port,
                family=socket.AF_INET6 if ":" in answer else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for answer in self._answers[host]
        ]

    async def close(self) -> None:
        self.closed = True


async def test_resolver_passes_allowed_answers_through() -> None:
    base = _StaticResolver({"hooks.example": ["93.184.215.14", "2606:4700::1111"]})
    resolver = GuardedResolver(NOTHING_ALLOWED, base)
    results = await resolver.resolve("hooks.example", 443, socket.AF_UNSPEC)
    assert [r["host"] for r in results] == ["93.184.215.14", "2606:4700::1111"]


@pytest.mark.parametrize(
    ("answers", "blocked_address"),
    [
        (["127.0.0.2"], "127.0.0.2"),
        # One bad answer spoils the host: the connection could pick either.
        (["93.184.215.14", "10.0.0.1"], "10.0.0.1"),
        (["2606:4700::1111", "::ffff:169.254.169.254"], "::ffff:169.254.169.254"),
        (["93.184.215.14", "not-an-ip"], None),
    ],
)
async def test_resolver_blocks_whole_host_on_any_bad_answer(
    answers: list[str], blocked_address: str | None
) -> None:
    resolver = GuardedResolver(NOTHING_ALLOWED, _StaticResolver({"mixed.test": answers}))
    with pytest.raises(BlockedDestination) as excinfo:
        await resolver.resolve("mixed.test", 80, socket.AF_UNSPEC)
    assert excinfo.value.host == "mixed.test"
    assert excinfo.value.address == blocked_address


@pytest.mark.parametrize("host", ["127.0.0.2", "::1", "::ffff:127.0.0.2", "169.254.169.254"])
async def test_resolver_judges_ip_literals_without_dns(host: str) -> None:
    base = _StaticResolver({})
    with pytest.raises(BlockedDestination, match="blocked"):
        await GuardedResolver(TEST_POLICY, base).resolve(host, 80, socket.AF_UNSPEC)
    assert base.calls == []


async def test_resolver_returns_allowed_ip_literal_without_dns() -> None:
    base = _StaticResolver({})
    results = await GuardedResolver(TEST_POLICY, base).resolve("127.0.0.1", 80, socket.AF_UNSPEC)
    assert results == [
        ResolveResult(
            hostname="127.0.0.1",
            host="127.0.0.1",
            port=80,
            family=socket.AF_INET,
            proto=0,
            flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
        )
    ]
    assert base.calls == []
    with pytest.raises(socket.gaierror):
        await GuardedResolver(TEST_POLICY, base).resolve("127.0.0.1", 80, socket.AF_INET6)


async def test_resolver_leaves_callers_base_open() -> None:
    base = _StaticResolver({})
    await GuardedResolver(NOTHING_ALLOWED, base).close()
    assert base.closed is False


def test_socket_factory_refuses_before_creating_a_socket() -> None:
    created: list[aiohttp.AddrInfoType] = []

    def inner(addr_info: aiohttp.AddrInfoType) -> socket.socket:
        created.append(addr_info)
        raise AssertionError("a blocked address reached the socket factory")

    factory = _guarded_socket_factory(TEST_POLICY, inner)
    blocked: list[aiohttp.AddrInfoType] = [
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.2", 80)),
        (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("::1", 80, 0, 0)),
        (
            socket.AF_INET6,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,
            "",
            ("::ffff:127.0.0.2", 80, 0, 0),
        ),
        # A name would be resolved by asyncio at connect time, after every check.
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("localhost", 80)),
    ]
    for addr_info in blocked:
        with pytest.raises(BlockedDestination):
            factory(addr_info)
    assert created == []


def _connection_key(host: str) -> ConnectionKey:
    return ConnectionKey(host, 80, False, True, None, None, None)


def _rewrap_implicitly(blocked: BlockedDestination) -> None:
    try:
        raise aiohttp.ClientConnectorDNSError(_connection_key("rebind.test"), blocked) from blocked
    except aiohttp.ClientError:
        # A caller re-raising without ``from`` keeps the implicit context.
        raise RuntimeError("delivery failed")  # noqa: B904


def _suppress_context(blocked: BlockedDestination) -> None:
    try:
        raise blocked
    except BlockedDestination:
        raise ValueError("unrelated") from None


def test_is_blocked_error_finds_block_in_aiohttp_wrappers() -> None:
    blocked = BlockedDestination("rebind.test", "127.0.0.2 is in a loopback range")
    with pytest.raises(RuntimeError) as excinfo:
        _rewrap_implicitly(blocked)
    assert is_blocked_error(excinfo.value) is blocked

    wrapped = aiohttp.ClientConnectorError(_connection_key("10.0.0.1"), blocked)
    assert is_blocked_error(wrapped) is blocked  # via os_error, without __cause__
    assert is_blocked_error(ExceptionGroup("many", [ValueError(), wrapped])) is blocked
    assert "127.0.0.2 is in a loopback range" in str(wrapped)


def test_is_blocked_error_ignores_other_failures() -> None:
    refused = aiohttp.ClientConnectorError(
        _connection_key("127.0.0.1"), ConnectionRefusedError(111, "Connection refused")
    )
    assert is_blocked_error(refused) is None
    assert is_blocked_error(ValueError("nope")) is None

    with pytest.raises(ValueError, match="unrelated") as excinfo:
        _suppress_context(BlockedDestination("a.test", "reason"))
    # A suppressed context is not part of why this error happened.
    assert is_blocked_error(excinfo.value) is None


def test_blocked_destination_carries_fields_and_pickles() -> None:
    blocked = BlockedDestination("rebind.test", "127.0.0.2 is in a loopback range", "127.0.0.2")
    assert isinstance(blocked, OSError)
    assert str(blocked) == (
        "destination 'rebind.test' is blocked: 127.0.0.2 is in a loopback range"
    )
    clone = pickle.loads(pickle.dumps(blocked))  # noqa: S301 -- round-trips our own object
    assert (clone.host, clone.reason, clone.address) == (
        "rebind.test",
        "127.0.0.2 is in a loopback range",
        "127.0.0.2",
    )
    wrapped = aiohttp.ClientConnectorError(_connection_key("rebind.test"), blocked)
    assert is_blocked_error(pickle.loads(pickle.dumps(wrapped))) is not None  # noqa: S301
