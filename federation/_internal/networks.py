"""IP addresses and networks as a setting and a proxy's header write them."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
Networks = tuple[Network, ...]


def parse_networks(text: str) -> Networks:
    """``10.0.0.5, 10.1.0.0/16, fd00::/8``: addresses and CIDR networks, separated by
    commas (an address is its own network); empty text is none. ``ValueError`` names
    the first entry that is neither; no host names (nothing here resolves a name)."""
    networks: list[Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue  # NOTE: a stray or trailing comma trusts nothing more
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError as exc:
            if "host bits set" in str(exc):
                network = ipaddress.ip_network(entry, strict=False)
                raise ValueError(
                    f"{entry!r} has bits set past its prefix: write the network "
                    f"({network}) or a single address"
                ) from None
            raise ValueError(
                f"{entry[:64]!r} is not an IP address or CIDR network "
                "(such as 10.0.0.5, 10.0.0.0/8 or fd00::/8)"
            ) from None
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    """An address as a server or a proxy writes a peer's: ``203.0.113.7``,
    ``2001:db8::1``, ``[2001:db8::1]``, either with a port (``203.0.113.7:4711``,
    ``[2001:db8::1]:4711``); ``None`` for anything else. An IPv4-mapped IPv6 address
    (a dual-stack socket's ``::ffff:203.0.113.7``) is its IPv4 address."""
    host = text
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
        # NOTE: brackets hold IPv6 only, and only a port may follow them
        if not bracket or ":" not in host or (rest and (rest == port or not _is_port(port))):
            return None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not _is_port(port):
            return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(address: Address, networks: Networks) -> bool:
    return any(address in network for network in networks)


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5
