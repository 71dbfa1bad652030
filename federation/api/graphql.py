"""``POST /graphql/v2``: the ``issueTaskIdentityToken`` mutation, as the Oz CLI and
worker send it (``reference/oz-api.md`` §4c).

The run id travels in ``X-Warp-Cloud-Agent-ID``, the workload token in
``X-Warp-Ambient-Workload-Token`` and the team in ``X-Warp-Team-Uid``. A missing or bad
API key is a 401 problem, as everywhere; a refused issuance is a ``UserFacingError``
inside a 200 answer, which is what Oz clients parse.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    NameNode,
    Visitor,
    build_schema,
    execute_sync,
    parse,
    validate,
    visit,
)
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from federation import __version__
from federation.api.deps import Context, CurrentCaller, DbSession
from federation.api.problems import as_federation_error, trace_id
from federation.auth import Caller
from federation.errors import FederationError, InvalidRequest
from federation.issuance import IssueRequest, TokenIssuer

router = APIRouter(tags=["graphql"])

SDL = """
scalar Time

input OsContext { category: String, linuxKernelVersion: String, name: String, version: String }
input ClientContext { version: String }
input RequestContext { osContext: OsContext, clientContext: ClientContext }

input IssueTaskIdentityTokenInput {
  audience: String!
  requestedDurationSeconds: Int
  subjectTemplate: [String!]
}

type ResponseContext { serverVersion: String }

type IssueTaskIdentityTokenOutput {
  token: String!
  expiresAt: Time!
  issuer: String!
  responseContext: ResponseContext!
}

enum PlatformErrorCode {
  INVALID_REQUEST AUTHENTICATION_REQUIRED NOT_AUTHORIZED RESOURCE_NOT_FOUND CONFLICT
  OPERATION_NOT_SUPPORTED RESOURCE_UNAVAILABLE INTERNAL_ERROR
}

type PlatformErrorInfo { code: PlatformErrorCode!, retryable: Boolean! }

interface UserFacingErrorInterface { message: String! }
type InvalidInputError implements UserFacingErrorInterface { message: String! }
type PlatformError implements UserFacingErrorInterface {
  message: String!
  detail: String
  info: PlatformErrorInfo!
}

type UserFacingError { error: UserFacingErrorInterface!, responseContext: ResponseContext! }

union IssueTaskIdentityTokenResult = IssueTaskIdentityTokenOutput | UserFacingError

type Query { serverVersion: String! }

type Mutation {
  issueTaskIdentityToken(
    requestContext: RequestContext
    input: IssueTaskIdentityTokenInput!
  ): IssueTaskIdentityTokenResult!
}
"""

_RESPONSE_CONTEXT = {"serverVersion": __version__}


@dataclass(frozen=True)
class _Request:
    session: Session
    caller: Caller
    issuer: TokenIssuer
    run_id: str | None
    workload_token: str | None
    team_uid: str | None
    trace_id: str | None


def _typename(value: Any, *_: Any) -> str:
    name: str = value["__typename"]
    return name


def _issue(_root: Any, info: Any, input: dict[str, Any], **_: Any) -> dict[str, Any]:
    context: _Request = info.context
    try:
        if not context.run_id:
            raise InvalidRequest("send the run id in the X-Warp-Cloud-Agent-ID header")
        issued = context.issuer.issue(
            context.session,
            context.caller,
            IssueRequest(
                run_id=context.run_id,
                audience=input["audience"],
                duration=input.get("requestedDurationSeconds"),
                subject_template=input.get("subjectTemplate"),
                team_uid=context.team_uid,
                workload_token=context.workload_token,
                trace_id=context.trace_id,
            ),
        )
        context.session.commit()  # NOTE: the audit row is durable before the token leaves
    except Exception as exc:  # NOTE: graphql-core would echo any message to the client
        context.session.rollback()
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


def build() -> GraphQLSchema:
    schema = build_schema(SDL)
    mutation = schema.mutation_type
    query = schema.query_type
    assert mutation is not None
    assert query is not None
    mutation.fields["issueTaskIdentityToken"].resolve = _issue
    query.fields["serverVersion"].resolve = lambda *_: __version__
    for name in ("IssueTaskIdentityTokenResult", "UserFacingErrorInterface"):
        schema.get_type(name).resolve_type = _typename  # type: ignore[union-attr]
    return schema


class Documents:
    """Parsed and validated queries, cached: clients send the same few again and again."""

    def __init__(self, schema: GraphQLSchema, size: int = 64) -> None:
        self.schema = schema
        self.size = size
        self._cache: OrderedDict[str, DocumentNode | list[dict[str, Any]]] = OrderedDict()

    def get(self, source: str) -> DocumentNode | list[dict[str, Any]]:
        """The document, or its errors (formatted, with its string literals redacted)."""
        found = self._cache.get(source)
        if found is None:
            try:
                document = parse(source)
                errors = validate(self.schema, document)
                found = _format(errors, _names(document)) if errors else document
            except GraphQLError as error:
                found = _format([error])
            self._cache[source] = found
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return found


@router.post(
    "/graphql/v2",
    summary="Oz GraphQL: the issueTaskIdentityToken mutation",
    response_model=None,
)
async def graphql_v2(
    request: Request, context: Context, session: DbSession, caller: CurrentCaller
) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise InvalidRequest("a GraphQL request is a JSON object with a 'query' string")
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise InvalidRequest("'variables' must be a JSON object")
    document = DOCUMENTS.get(body["query"])
    if isinstance(document, list):
        return _json({"errors": document})
    headers = request.headers
    graph_context = _Request(
        session=session,
        caller=caller,
        issuer=context.issuer,
        run_id=headers.get("x-warp-cloud-agent-id"),
        workload_token=headers.get("x-warp-ambient-workload-token"),
        team_uid=headers.get("x-warp-team-uid"),
        trace_id=trace_id(request),
    )
    operation = body.get("operationName")
    result = await run_in_threadpool(
        execute_sync,
        SCHEMA,
        document,
        context_value=graph_context,
        variable_values=variables,
        operation_name=operation if isinstance(operation, str) else None,
    )
    # Data is absent, not null, when variables fail before execution (GraphQL §7.1.2);
    # resolvers never raise, so no error can null it during execution.
    answer: dict[str, Any] = {} if result.data is None else {"data": result.data}
    if result.errors:
        answer["errors"] = _format(result.errors, _names(document))
    return _json(answer)


def _format(
    errors: Iterable[GraphQLError], names: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Errors as GraphQL answers them, minus the values the client sent: graphql-core
    quotes rejected values (and the query's literals) in its messages, and a value may
    be a secret. Only quoted names (of the schema or the query) survive."""
    known = SCHEMA_NAMES | names
    return [
        {**error.formatted, "message": without_values(error.message, known)} for error in errors
    ]


def _names(document: DocumentNode) -> frozenset[str]:
    """The names written in a query: fields, arguments, variables, types (not values)."""
    found: set[str] = set()

    class Names(Visitor):
        def enter_name(self, node: NameNode, *_: Any) -> None:
            found.add(node.value)

    visit(document, Names())
    return frozenset(found)


def _schema_names(schema: GraphQLSchema) -> frozenset[str]:
    names: set[str] = set()
    for name, kind in schema.type_map.items():
        names.add(name)
        for field_name, field in (getattr(kind, "fields", None) or {}).items():
            names.add(field_name)
            names.update(getattr(field, "args", None) or {})
        names.update(getattr(kind, "values", None) or {})
    return frozenset(names)


def without_values(message: str, names: frozenset[str] | None = None) -> str:
    """``message`` with every quoted string, object and list replaced by ``…``, except
    quoted names of the schema (``'IssueTaskIdentityTokenInput'``)."""
    known = SCHEMA_NAMES if names is None else names
    out: list[str] = []
    index = 0
    while index < len(message):
        char = message[index]
        if char in "'\"":
            end = _closing_quote(message, index)
            content = message[index + 1 : end]
            kept = _is_name_path(content, known)
            out.append(message[index : end + 1] if kept else f"{char}…{char}")
            index = end + 1
        elif char in "{[":
            end = _closing_bracket(message, index)
            out.append(f"{char}…{'}' if char == '{' else ']'}")
            index = end + 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _is_name_path(text: str, known: frozenset[str]) -> bool:
    """``$input``, ``Int!``, ``[String!]``, ``input.subjectTemplate[0]``: names of the
    schema, indices and punctuation only."""
    parts = [part for part in re.split(r"[.\[\]!$():]", text) if part]
    return bool(parts) and all(part in known or part.isdigit() for part in parts)


def _closing_quote(text: str, start: int) -> int:
    quote, index = text[start], start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            return index
        index += 1
    return len(text) - 1


def _closing_bracket(text: str, start: int) -> int:
    depth, index = 0, start
    while index < len(text):
        char = text[index]
        if char in "'\"":
            index = _closing_quote(text, index) + 1
            continue
        depth += 1 if char in "{[" else -1 if char in "}]" else 0
        if depth == 0:
            return index
        index += 1
    return len(text) - 1


def _json(document: dict[str, Any]) -> Response:
    return Response(orjson.dumps(document), media_type="application/json")


SCHEMA = build()
SCHEMA_NAMES = _schema_names(SCHEMA)
DOCUMENTS = Documents(SCHEMA)
