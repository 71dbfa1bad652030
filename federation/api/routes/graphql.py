"""``POST /graphql/v2``: the ``issueTaskIdentityToken`` mutation, as the Oz CLI and
worker send it (``POST /graphql/v2?op=IssueTaskIdentityToken``), against a schema with
Oz's names, types and nullability (:mod:`federation.api.routes.graphql_schema`).
Introspection (``__schema``, ``__type``) is refused unless
``FEDERATION_GRAPHQL_INTROSPECTION`` is on: Oz's clients never ask for it.

The run id travels in ``X-Warp-Cloud-Agent-ID``, the workload token in
``X-Warp-Ambient-Workload-Token`` and the team in ``X-Warp-Team-Uid``. A missing or bad
API key is a 401 problem, as everywhere; a refused issuance is a ``UserFacingError``
inside a 200 answer, which is what Oz clients parse.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cache
from inspect import isawaitable
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
    execute,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import NoSchemaIntrospectionCustomRule

from federation import __version__
from federation.api.deps import Context, IssuingCaller
from federation.api.openapi import problems
from federation.api.problems import as_federation_error, trace_id
from federation.api.routes.federate import checked_body, issue_request
from federation.api.routes.graphql_errors import format_errors, query_names, schema_names
from federation.api.routes.graphql_schema import SDL
from federation.errors import FederationError, InvalidRequest
from federation.issuing.pipeline import TokenIssuer
from federation.registry.auth import Caller
from federation.settings import Settings

router = APIRouter(tags=["graphql"])

_RESPONSE_CONTEXT = {"serverVersion": __version__}
DEFAULT_DURATION: int = Settings.model_fields["default_duration"].default
MAX_QUERY_LENGTH = 8192


@dataclass(frozen=True)
class _Request:
    caller: Caller
    issuer: TokenIssuer
    run_id: str | None
    workload_token: str | None
    team_uid: str | None
    trace_id: str | None
    attempts: list[None] = field(default_factory=list)


def _typename(value: Any, *_: Any) -> str:
    name: str = value["__typename"]
    return name


async def _issue(_root: Any, info: Any, input: dict[str, Any], **_: Any) -> dict[str, Any]:
    context: _Request = info.context
    context.attempts.append(None)
    try:
        if len(context.attempts) > 1:
            # NOTE: aliases would otherwise mint any number of tokens in one request.
            raise InvalidRequest("one issueTaskIdentityToken per request")
        if not context.run_id:
            raise InvalidRequest("send the run id in the X-Warp-Cloud-Agent-ID header")
        body = checked_body(
            {
                "run_id": context.run_id,
                "audience": input["audience"],
                "requested_duration_seconds": input.get("requestedDurationSeconds"),
                "subject_template": input.get("subjectTemplate"),
            }
        )
        wanted = issue_request(context.trace_id, body, context.workload_token, context.team_uid)
        issued = await context.issuer.issue(context.caller, wanted)
    except Exception as exc:  # NOTE: graphql-core would echo any message to the client
        return user_facing_error(as_federation_error(exc, context.trace_id))
    return {
        "__typename": "IssueTaskIdentityTokenOutput",
        "token": issued.token,
        "expiresAt": issued.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "issuer": issued.claims.issuer,
        "responseContext": _RESPONSE_CONTEXT,
    }


def user_facing_error(error: FederationError) -> dict[str, Any]:
    if isinstance(error, InvalidRequest):
        detail: dict[str, Any] = {
            "__typename": "InvalidInputError",
            "message": error.detail or error.title,
        }
    else:
        detail = {
            "__typename": "PlatformError",
            "message": error.message,
            "detail": error.detail,
            "info": {"code": error.code.upper(), "retryable": error.retryable},
        }
    return {"__typename": "UserFacingError", "error": detail, "responseContext": _RESPONSE_CONTEXT}


def build(default_duration: int = DEFAULT_DURATION) -> GraphQLSchema:
    """The schema with its resolvers; an omitted ``requestedDurationSeconds`` is
    ``default_duration`` seconds."""
    schema = build_schema(SDL)
    mutation = schema.mutation_type
    query = schema.query_type
    assert mutation is not None
    assert query is not None
    mutation.fields["issueTaskIdentityToken"].resolve = _issue
    query.fields["serverVersion"].resolve = lambda *_: __version__
    # NOTE: Oz declares the field `Int!` and its clients always send it. A non-null input
    # field with a default may be omitted but never be null (the GraphQL spec, Input
    # Objects): callers that leave it out get the server's default, as in REST.
    wanted = schema.get_type("IssueTaskIdentityTokenInput")
    assert isinstance(wanted, GraphQLInputObjectType)
    wanted.fields["requestedDurationSeconds"].default_value = default_duration
    for kind in schema.type_map.values():
        if isinstance(kind, GraphQLInterfaceType | GraphQLUnionType):
            kind.resolve_type = _typename
    return schema


@cache
def schema_for(default_duration: int) -> GraphQLSchema:
    """One schema per default duration: an application executes with its settings'."""
    return build(default_duration)


class Documents:
    """Parsed and validated queries, cached: clients send the same few again and again;
    with ``introspection`` off, a query for ``__schema`` or ``__type`` does not
    validate (``__typename`` still does: Oz's clients select it)."""

    def __init__(
        self, schema: GraphQLSchema, size: int = 64, *, introspection: bool = False
    ) -> None:
        self.schema = schema
        self.size = size
        self.rules = (
            specified_rules
            if introspection
            else (*specified_rules, NoSchemaIntrospectionCustomRule)
        )
        self._cache: OrderedDict[str, DocumentNode | list[dict[str, Any]]] = OrderedDict()

    def get(self, source: str) -> DocumentNode | list[dict[str, Any]]:
        """The document, or its errors (formatted, with its string literals redacted)."""
        found = self._cache.get(source)
        if found is None:
            try:
                document = parse(source)
                errors = validate(self.schema, document, self.rules)
                known = SCHEMA_NAMES | query_names(document)
                found = format_errors(errors, known) if errors else document
            except GraphQLError as error:
                found = format_errors([error], SCHEMA_NAMES)
            self._cache[source] = found
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return found


@router.post(
    "/graphql/v2",
    summary="Oz GraphQL: the issueTaskIdentityToken mutation",
    response_model=None,
    responses=problems(400),  # a refused issuance is a UserFacingError in a 200
)
async def graphql_v2(request: Request, context: Context, caller: IssuingCaller) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise InvalidRequest("a GraphQL request is a JSON object with a 'query' string")
    if len(body["query"]) > MAX_QUERY_LENGTH:
        raise InvalidRequest(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise InvalidRequest("'variables' must be a JSON object")
    documents: Documents = request.app.state.graphql_documents
    document = documents.get(body["query"])
    if isinstance(document, list):
        return _json({"errors": document})
    headers = request.headers
    graph_context = _Request(
        caller=caller,
        issuer=context.issuer,
        run_id=headers.get("x-warp-cloud-agent-id"),
        workload_token=headers.get("x-warp-ambient-workload-token"),
        team_uid=headers.get("x-warp-team-uid"),
        trace_id=trace_id(request),
    )
    operation = body.get("operationName")
    executed = execute(
        schema_for(context.settings.default_duration),
        document,
        context_value=graph_context,
        variable_values=variables,
        operation_name=operation if isinstance(operation, str) else None,
    )
    result = await executed if isawaitable(executed) else executed
    # Data is absent, not null, when variables fail before execution (GraphQL §7.1.2);
    # resolvers never raise, so no error can null it during execution.
    answer: dict[str, Any] = {} if result.data is None else {"data": result.data}
    if result.errors:
        answer["errors"] = format_errors(result.errors, SCHEMA_NAMES | query_names(document))
    return _json(answer)


def _json(document: dict[str, Any]) -> Response:
    return Response(orjson.dumps(document), media_type="application/json")


# Documents are validated against this one: the default duration, the only difference
# between the schemas, does not change what is valid. Each application keeps its own
# cache of documents.
SCHEMA = schema_for(DEFAULT_DURATION)
SCHEMA_NAMES = schema_names(SCHEMA)
