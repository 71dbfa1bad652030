"""GraphQL errors without the values a client sent.

graphql-core quotes rejected values (and the query's string literals) in its messages,
and a value may be a secret: a workload token in the wrong field, a key pasted into a
variable. Every quoted string, object and list in a message is replaced by ``…``,
except quoted names of the schema or of the query (``'IssueTaskIdentityTokenInput'``,
``'input.requestedDurationSeconds'``), which tell the client what to fix; and whatever
is left of a secret's shape, anywhere in the error, is ``[redacted]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, NameNode, Visitor, visit

from federation.domain.secret_shapes import redact_json


def format_errors(errors: Iterable[GraphQLError], known: frozenset[str]) -> list[dict[str, Any]]:
    """Errors as GraphQL answers them, their messages :func:`without_values`, and no
    secret anywhere in them (a path, an extension)."""
    formatted = []
    for error in errors:
        answer = redact_json({**error.formatted, "message": without_values(error.message, known)})
        assert isinstance(answer, dict)
        formatted.append(answer)
    return formatted


def query_names(document: DocumentNode) -> frozenset[str]:
    """The names written in a query: fields, arguments, variables, types (not values)."""
    found: set[str] = set()

    class Names(Visitor):
        def enter_name(self, node: NameNode, *_: Any) -> None:
            found.add(node.value)

    visit(document, Names())
    return frozenset(found)


def schema_names(schema: GraphQLSchema) -> frozenset[str]:
    """Every type, field, argument and enum value name of ``schema``."""
    names: set[str] = set()
    for name, kind in schema.type_map.items():
        names.add(name)
        for field_name, field in (getattr(kind, "fields", None) or {}).items():
            names.add(field_name)
            names.update(getattr(field, "args", None) or {})
        names.update(getattr(kind, "values", None) or {})
    return frozenset(names)


def without_values(message: str, known: frozenset[str]) -> str:
    """``message`` with every quoted string, object and list replaced by ``…``, except
    quoted paths made of ``known`` names."""
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
