"""The client's address: the TCP peer's, or, when the peer is a trusted proxy
(``FEDERATION_TRUSTED_PROXIES``), the address its ``X-Forwarded-For`` names.

Each proxy appends the address it received the request from, so the header is read from
the right: trusted proxies are skipped and the first address that is not one is the
client (as nginx's ``real_ip_recursive`` and Starlette's ``ProxyHeadersMiddleware`` do;
when every address is trusted, the leftmost). Whatever stands left of that address was
written by the client itself and is never read. A peer that is not trusted is the
client whatever its header says, so no one can spoof their way out of the lockout or
into another address's; and a header no trusted proxy could have written (an entry
that is not an address) is ignored as a whole, leaving the peer's.

:class:`ClientAddressMiddleware` decides once, outermost, and puts the answer where
the server put the peer (``scope["client"]``), so the failed-authentication lockout,
the access log and the console (whose calls to the API pass its client on) all see
one address; :func:`client_address` reads it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from federation._internal.networks import Networks, parse_address, within

UNKNOWN = "unknown"  # no peer (a Unix socket, an in-process call without one)


def client_address(scope: Scope) -> str:
    """The address a request came from, as the server and
    :class:`ClientAddressMiddleware` left it: the one the lockout counts by and the
    access log writes."""
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN


def forwarded_client(peer: str, forwarded_for: str | None, trusted: Networks) -> str:
    """The client behind ``peer`` given the ``X-Forwarded-For`` it sent (``None``:
    none): ``peer`` unless it is one of the ``trusted`` proxies."""
    hop = parse_address(peer)
    if hop is None or not forwarded_for or not within(hop, trusted):
        return peer
    for entry in reversed(forwarded_for.split(",")):
        address = parse_address(entry.strip())
        if address is None:
            return peer  # NOTE: no proxy writes this: the peer is what is known
        hop = address
        if not within(hop, trusted):
            break
    return str(hop)


def forwarded_for(scope: Scope) -> str | None:
    """Every ``X-Forwarded-For`` header of the request, joined in order (repeated
    headers are one list, RFC 9110 §5.3); ``None`` when there is none."""
    values = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
    return b",".join(values).decode("latin-1") if values else None


class ClientAddressMiddleware:
    """Puts the client behind trusted proxies in ``scope["client"]`` (port 0: the
    header has none), for every layer inside it."""

    def __init__(self, app: ASGIApp, *, trusted: Networks) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client") if scope["type"] in ("http", "websocket") else None
        if peer:
            client = forwarded_client(str(peer[0]), forwarded_for(scope), self.trusted)
            if client != peer[0]:
                scope = {**scope, "client": (client, 0)}
        await self.app(scope, receive, send)
