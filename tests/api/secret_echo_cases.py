"""Requests that put a secret everywhere a client can put a value, read from the
application's own routes: for the tests that no answer and no log line repeats one.

Every route the application serves is found by walking ``app.routes`` (the API's
routers, the documentation, the issuer-prefixed discovery, the mounted console), so a
new route is covered without a change here. Each secret goes, one place at a time, into
every path parameter, every query parameter the route reads, every field of its JSON
body (the rest of the body valid), a JSON field name of its own, and every header the
route declares.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import TypeAdapter
from starlette.routing import BaseRoute, Mount, Route

from federation._internal.encoding import b64url_text
from federation.registry.auth import new_api_key, new_workload_token

PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")
# Headers the issuer reads without declaring them as parameters (GraphQL reads the run
# and team from its own; the trace context is read by a middleware).
READ_HEADERS = (
    "X-Warp-Cloud-Agent-ID",
    "X-Warp-Team-Uid",
    "X-Warp-Ambient-Workload-Token",
    "traceparent",
    "X-Warp-Traceparent",
)
FORM_FIELD = re.compile(r'<(?:input|select|textarea)\b[^>]*\bname="([^"]+)"')


def each_shape() -> dict[str, str]:
    """A fresh secret of each shape: an API key, a workload token, a JWT (short enough
    for a 128-character id, so that it also reaches the code behind length checks)."""
    header = b64url_text(b'{"alg":"ES256","typ":"JWT"}')
    claims = b64url_text(orjson.dumps({"sub": secrets.token_hex(8)}))
    return {
        "api-key": new_api_key(),
        "workload-token": new_workload_token(),
        "jwt": f"{header}.{claims}.{b64url_text(secrets.token_bytes(32))}",
    }


def telltales(secret: str) -> tuple[str, ...]:
    """The secret, and its parts that no one else could write: a key's or token's random
    part, a JWT's claims and signature (its header is the same in every JWT)."""
    if secret.startswith("eyJ"):
        _, claims, signature = secret.split(".")
        return (secret, claims, signature)
    return (secret, secret.split("-", 1)[1])


@dataclass(frozen=True)
class Endpoint:
    """One method of one route: what a client can put a value into."""

    method: str
    path: str  # a template: {name} for each path parameter
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    body: Mapping[str, Any] | None = None  # the JSON schema of an object body
    console: bool = False

    @property
    def parameters(self) -> list[str]:
        return PARAMETER.findall(self.path)

    def url(self, values: Mapping[str, str]) -> str:
        return PARAMETER.sub(lambda found: values[found[1]], self.path)


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every method of every route the application answers, the console's included."""
    document = app.openapi()
    found: list[Endpoint] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = str(context.path)
        if isinstance(route, Mount):
            found.extend(_mounted(route, path))
            continue
        for method in sorted(context.methods or ()):
            if isinstance(route, APIRoute):
                found.append(_api_endpoint(route, method, path, document))
            else:
                found.append(Endpoint(method, path))
    return found


def _mounted(mount: Mount, prefix: str) -> Iterator[Endpoint]:
    routes: list[BaseRoute] = list(getattr(mount, "routes", None) or [])
    if not routes:  # an application of its own (static files): any path under it
        yield Endpoint("GET", f"{prefix}/{{path}}", console=True)
        return
    for route in routes:
        if isinstance(route, Mount):
            yield from _mounted(route, f"{prefix}{route.path}")
        elif isinstance(route, Route):
            for method in sorted(route.methods or ()):
                yield Endpoint(method, f"{prefix}{route.path}", console=True)


def _api_endpoint(route: APIRoute, method: str, path: str, document: Mapping[str, Any]) -> Endpoint:
    query = list(dict.fromkeys(param.alias for param in _params(route.dependant, "query_params")))
    headers = list(
        dict.fromkeys(param.alias for param in _params(route.dependant, "header_params"))
    )
    operation = document.get("paths", {}).get(path, {}).get(method.lower(), {})
    declared = {"query": query, "header": headers}  # what only the document declares
    for param in operation.get("parameters", ()):
        target = declared.get(param.get("in"))
        if target is not None and param["name"] not in target:
            target.append(param["name"])
    body = _body_schema(route, operation, document)
    return Endpoint(method, path, tuple(query), tuple(headers), body)


def _params(dependant: Dependant, kind: str) -> Iterator[Any]:
    """The parameters of one kind a route reads, its dependencies' included."""
    yield from getattr(dependant, kind)
    for dependency in dependant.dependencies:
        yield from _params(dependency, kind)


def _body_schema(
    route: APIRoute, operation: Mapping[str, Any], document: Mapping[str, Any]
) -> Mapping[str, Any] | None:
    """The object schema of the route's JSON body: from the OpenAPI document (which
    also describes the bodies a route reads itself), else from its body parameter."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is not None:
        return _object(content["schema"], document.get("components", {}).get("schemas", {}))
    annotation = route.body_field.field_info.annotation if route.body_field else None
    if annotation is not None:
        schema = TypeAdapter(annotation).json_schema()
        return _object(schema, schema.get("$defs", {}))
    return None


def _object(schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first object schema in ``schema``, references followed, its fields' too."""
    if "$ref" in schema:
        return _object(_referenced(schema, definitions), definitions)
    if "properties" in schema:
        properties = {
            name: _inline(field, definitions) for name, field in schema["properties"].items()
        }
        return {**schema, "properties": properties}
    for option in (*schema.get("anyOf", ()), *schema.get("allOf", ()), *schema.get("oneOf", ())):
        found = _object(option, definitions)
        if found is not None:
            return found
    return None


def _referenced(schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> Mapping[str, Any]:
    found: Mapping[str, Any] = definitions[schema["$ref"].rsplit("/", 1)[1]]
    return found


def _inline(schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> Mapping[str, Any]:
    """A field's schema with the references it and its options make replaced."""
    if "$ref" in schema:
        return _inline(_referenced(schema, definitions), definitions)
    if "anyOf" in schema:
        return {**schema, "anyOf": [_inline(option, definitions) for option in schema["anyOf"]]}
    return schema


def _types(schema: Mapping[str, Any]) -> set[str]:
    kinds = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for option in schema.get("anyOf", ()):
        kinds |= _types(option)
    return kinds


@dataclass
class Values:
    """Valid values for what a request needs besides the secret, by name: the seeded
    run, principal and key, and values of the right form for the rest."""

    known: dict[str, list[Any]] = field(default_factory=dict)

    def valid(self, name: str, schema: Mapping[str, Any] | None = None) -> Any:
        schema = schema or {}
        pattern = schema.get("pattern")
        for candidate in self.known.get(name, ()):
            if not pattern or (isinstance(candidate, str) and re.search(pattern, candidate)):
                return candidate
        if "default" in schema and schema["default"] is not None:
            return schema["default"]
        for option in (schema, *schema.get("anyOf", ())):
            if option.get("enum"):
                return option["enum"][0]
        if "const" in schema:
            return schema["const"]
        kinds = _types(schema)
        if "integer" in kinds:
            return max(int(schema.get("minimum", 0)), 3600)
        if "array" in kinds:
            return []
        return "x1"

    def body(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """The required fields of an object body, each valid."""
        properties = schema.get("properties", {})
        return {
            name: self.valid(name, properties.get(name, {})) for name in schema.get("required", ())
        }


def as_field(secret: str, schema: Mapping[str, Any]) -> Any:
    """The secret as a field of this schema takes it: in a list for a list."""
    return [secret] if "array" in _types(schema) else secret


@dataclass(frozen=True)
class Request:
    """One request of a case: what goes where."""

    what: str
    method: str
    url: str
    params: dict[str, str] | None = None
    json: Any = None
    data: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def api_requests(endpoint: Endpoint, secret: str, values: Values) -> Iterator[Request]:
    """The secret in each place an API endpoint takes a value, one place at a time."""
    path_values = {name: str(values.valid(name)) for name in endpoint.parameters}
    url = endpoint.url(path_values)
    body_schema = endpoint.body
    base = values.body(body_schema) if body_schema is not None else None
    sends_body = endpoint.method in {"POST", "PUT", "PATCH", "DELETE"}
    plain = base if base is not None else ({} if sends_body else None)
    for name in endpoint.parameters:
        yield Request(
            f"path {name}", endpoint.method, endpoint.url({**path_values, name: secret}), json=plain
        )
    for name in endpoint.query:
        yield Request(f"query {name}", endpoint.method, url, params={name: secret}, json=plain)
    yield Request("a query name", endpoint.method, url, params={secret: "1"}, json=plain)
    headers = dict.fromkeys((*endpoint.headers, *READ_HEADERS), secret)
    yield Request("headers", endpoint.method, url, json=plain, headers=headers)
    if body_schema is not None and base is not None:
        for name, schema in body_schema.get("properties", {}).items():
            body = {**base, name: as_field(secret, schema)}
            yield Request(f"body field {name}", endpoint.method, url, json=body)
    if sends_body:
        yield Request("a body field name", endpoint.method, url, json={**(base or {}), secret: "1"})
        yield Request(
            "a nested field name",
            endpoint.method,
            url,
            json={**(base or {}), "x": {secret: secret}},
        )


def graphql_requests(url: str, secret: str, run_id: str) -> Iterator[Request]:
    """The Oz mutation with the secret in each of its inputs, and in its text."""
    mutation = (
        "mutation IssueTaskIdentityToken($input: IssueTaskIdentityTokenInput!) {"
        " issueTaskIdentityToken(requestContext: {osContext: {}, clientContext: {}},"
        " input: $input) { __typename"
        " ... on IssueTaskIdentityTokenOutput { token }"
        " ... on UserFacingError { error { __typename message"
        " ... on PlatformError { detail info { code retryable } } } } } }"
    )
    audience = "sts.amazonaws.com"
    run = {"X-Warp-Cloud-Agent-ID": run_id}

    def sent(what: str, body: Any, headers: dict[str, str] | None = None) -> Request:
        return Request(what, "POST", url, json=body, headers={**run, **(headers or {})})

    def variables(**fields: Any) -> dict[str, Any]:
        return {"query": mutation, "variables": {"input": {"audience": audience, **fields}}}

    yield sent("graphql audience", variables(audience=secret))
    yield sent("graphql subjectTemplate", variables(subjectTemplate=[secret]))
    yield sent("graphql requestedDurationSeconds", variables(requestedDurationSeconds=secret))
    yield sent("graphql input field name", variables(**{secret: "1"}))
    yield sent("graphql variable name", {"query": mutation, "variables": {secret: "1"}})
    yield sent("graphql operationName", {"query": mutation, "operationName": secret})
    literal = mutation.replace("input: $input", f'input: {{audience: "{secret}"}}')
    literal = literal.replace("($input: IssueTaskIdentityTokenInput!)", "")
    yield sent("graphql literal", {"query": literal})
    context = mutation.replace("clientContext: {}", f'clientContext: {{version: "{secret}"}}')
    yield sent("graphql client context", variables() | {"query": context})
    yield sent("graphql query", {"query": secret})
    yield sent("graphql field", {"query": f"{{ {secret} }}"})
    yield sent("graphql run header", variables(), {"X-Warp-Cloud-Agent-ID": secret})
    yield sent("graphql team header", variables(), {"X-Warp-Team-Uid": secret})


def console_requests(
    endpoint: Endpoint, secret: str, values: Values, names: tuple[str, ...], csrf_token: str
) -> Iterator[Request]:
    """The secret in each path parameter of a console page, in each name its forms and
    filters read (one at a time), as a name of its own; in a POST's form, the same."""
    path_values = {name: str(values.valid(name)) for name in endpoint.parameters}
    url = endpoint.url(path_values)
    for name in endpoint.parameters:
        yield Request(
            f"console path {name}", endpoint.method, endpoint.url({**path_values, name: secret})
        )
    if endpoint.method == "POST":
        for name in (*names, secret):
            form = {"csrf_token": csrf_token, name: secret}
            yield Request(f"console form {name}", "POST", url, data=form)
        return
    for name in (*names, secret):
        yield Request(f"console query {name}", endpoint.method, url, params={name: secret})


def form_names(pages: Iterable[str]) -> tuple[str, ...]:
    """Every name the console's forms send (its filters' and its POST forms')."""
    names = {name for page in pages for name in FORM_FIELD.findall(page)}
    return tuple(sorted(names - {"csrf_token"}))


def leaks(texts: Mapping[str, str], secret: str) -> list[str]:
    """Where in ``texts`` (named) the secret, or a part only it has, appears."""
    return [where for where, text in texts.items() for part in telltales(secret) if part in text]
