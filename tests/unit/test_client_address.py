"""The client's address: ``FEDERATION_TRUSTED_PROXIES`` as written and as refused, the
addresses a proxy writes, and ``X-Forwarded-For`` read from the right through trusted
proxies only."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from federation._internal.networks import parse_address, parse_networks
from federation.api.middleware.client_address import (
    ClientAddressMiddleware,
    client_address,
    forwarded_client,
    forwarded_for,
)
from federation.errors import ConfigurationError
from federation.settings import Settings
from tests.cli.helpers import assert_error_line, invoke_main
from tests.conftest import make_settings

PROXIES = parse_networks("10.0.0.0/8, 192.0.2.1, fd00::/8")

# ---- the setting ------------------------------------------------------------------------


def test_no_proxy_is_trusted_unless_the_setting_names_it() -> None:
    assert Settings().trusted_proxies == ()


def test_the_setting_reads_addresses_and_networks_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEDERATION_TRUSTED_PROXIES", " 10.0.0.0/8,192.0.2.1 , fd00::/8,")
    assert Settings().trusted_proxies == (
        ip_network("10.0.0.0/8"),
        ip_network("192.0.2.1/32"),
        ip_network("fd00::/8"),
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("proxy.internal", "'proxy.internal' is not an IP address or CIDR network"),
        ("10.0.0.0/8 10.1.0.0/16", "'10.0.0.0/8 10.1.0.0/16' is not an IP address"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not an IP address or CIDR network"),
        ("*", "'*' is not an IP address or CIDR network"),
        ("10.0.0.5/8", "'10.0.0.5/8' has bits set past its prefix: write the network (10.0.0.0/8)"),
    ],
)
def test_a_bad_setting_names_its_variable_and_entry(
    tmp_path: Path, value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        make_settings(tmp_path, trusted_proxies=f"192.0.2.1, {value}")
    assert f"FEDERATION_TRUSTED_PROXIES: {message}" in str(raised.value)


def test_the_cli_refuses_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    result = invoke_main("serve", env={"FEDERATION_TRUSTED_PROXIES": "proxy"}, cwd=tmp_path)
    message = assert_error_line(result, 78)
    assert "FEDERATION_TRUSTED_PROXIES: 'proxy' is not an IP address" in message


# ---- addresses as proxies write them ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:4711", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # a dual-stack socket's IPv4 peer
    ],
)
def test_addresses_as_servers_and_proxies_write_them(text: str, address: str) -> None:
    assert parse_address(text) == ip_address(address)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "unknown",
        "_hidden",
        "proxy.internal",
        "203.0.113.7:",
        "203.0.113.7:http",
        "203.0.113.7:123456",
        "[203.0.113.7]",
        "[2001:db8::1",
        "[2001:db8::1]443",
        "[2001:db8::1]:",
        "203.0.113.7/32",
        "0203.0.113.7",
    ],
)
def test_anything_else_is_no_address(text: str) -> None:
    assert parse_address(text) is None


# ---- X-Forwarded-For ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        # No trusted peer: the header is the client's own words, never read.
        ("203.0.113.7", "198.51.100.9", "203.0.113.7"),
        ("203.0.113.7", "10.0.0.2", "203.0.113.7"),
        ("testclient", "198.51.100.9", "testclient"),
        # A trusted proxy: the address it appended, the last one.
        ("10.0.0.2", "198.51.100.9", "198.51.100.9"),
        ("10.0.0.2", "spoofed, 198.51.100.9", "198.51.100.9"),
        ("10.0.0.2", "192.0.2.99, 198.51.100.9", "198.51.100.9"),
        # Proxies behind proxies are skipped from the right, whatever their form.
        ("10.0.0.2", "192.0.2.99, 198.51.100.9, 10.1.2.3, 192.0.2.1", "198.51.100.9"),
        ("::ffff:10.0.0.2", "198.51.100.9 ,[fd00::5]:8080", "198.51.100.9"),
        ("fd00::1", "2001:DB8::7", "2001:db8::7"),
        # Every address trusted: the leftmost (a proxy's own request).
        ("10.0.0.2", "10.0.0.3, 192.0.2.1", "10.0.0.3"),
        # Nothing a proxy writes where the walk reaches: the peer, which is known.
        ("10.0.0.2", "unknown", "10.0.0.2"),
        ("10.0.0.2", "198.51.100.9, ", "10.0.0.2"),
        ("10.0.0.2", "198.51.100.9,,10.0.0.3", "10.0.0.2"),
        ("10.0.0.2", "", "10.0.0.2"),
        # ... but what the client wrote past the first untrusted address is not read.
        ("10.0.0.2", "junk, 198.51.100.9", "198.51.100.9"),
    ],
)
def test_the_client_is_read_from_the_right_through_trusted_proxies_only(
    peer: str, header: str, client: str
) -> None:
    assert forwarded_client(peer, header, PROXIES) == client


def test_no_header_leaves_the_peer() -> None:
    assert forwarded_client("10.0.0.2", None, PROXIES) == "10.0.0.2"


def test_repeated_headers_are_one_list_in_order() -> None:
    scope = {
        "headers": [
            (b"x-forwarded-for", b"198.51.100.9"),
            (b"host", b"issuer"),
            (b"x-forwarded-for", b"10.0.0.3"),
        ]
    }
    assert forwarded_for(scope) == "198.51.100.9,10.0.0.3"
    assert forwarded_client("10.0.0.2", forwarded_for(scope), PROXIES) == "198.51.100.9"
    assert forwarded_for({"headers": []}) is None


# ---- the middleware -------------------------------------------------------------------------


def passed_on(scope: dict[str, Any]) -> dict[str, Any]:
    """The scope the middleware hands to the layers inside it."""
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        pass

    middleware = ClientAddressMiddleware(inner, trusted=PROXIES)
    asyncio.run(middleware({"headers": [], **scope}, receive, send))
    return dict(seen[0])


def test_every_layer_inside_sees_the_client_behind_the_proxy() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.7")]
    for kind in ("http", "websocket"):
        inner = passed_on({"type": kind, "client": ("10.0.0.2", 4711), "headers": headers})
        assert inner["client"] == ("203.0.113.7", 0)
        assert client_address(inner) == "203.0.113.7"
    direct = passed_on({"type": "http", "client": ("203.0.113.7", 4711), "headers": headers})
    assert direct["client"] == ("203.0.113.7", 4711)
    no_peer = passed_on({"type": "http", "client": None, "headers": headers})
    assert client_address(no_peer) == "unknown"
    assert passed_on({"type": "lifespan"}) == {"type": "lifespan", "headers": []}
