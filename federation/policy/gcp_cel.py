"""GCP's dialect of CEL: the language of attribute mappings and attribute conditions.

Expressions run on Google's own CEL implementation (``cel-expr-python``, the C++ runtime
the CEL team maintains), type-checked, with the CEL strings extension (``split()``,
``lowerAscii()``, ...) and GCP's ``extract()`` registered. Mappings see ``assertion``
only; conditions see ``assertion``, ``google`` and ``attribute``.

``assertion`` is the token's claims as JSON, so numbers reach CEL as doubles, as in
CEL's own JSON mapping (``google.protobuf.Value``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_strings

ROOTS = ("assertion", "google", "attribute")
MAPPING_ROOTS = ("assertion",)

# A literal in CEL source: quoted strings (raw or not, single or triple quoted) whose
# contents must not count as references when the expression is read for names.
_LITERAL = re.compile(
    r"""[rR]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""",
    re.DOTALL,
)
_SELECT = re.compile(r"\b(assertion|google|attribute)\s*\.\s*([A-Za-z_]\w*)")
_INDEX = re.compile(r"""\b(assertion|google|attribute)\s*\[\s*(['"])([^'"\\]*)\2\s*\]""")
_TEMPLATE = re.compile(r"(?P<prefix>[^{}]*)\{(?P<name>[^{}]*)\}(?P<suffix>[^{}]*)")


class CelSyntaxError(ValueError):
    """An expression that GCP would refuse to store: it does not parse or type-check."""


@dataclass(frozen=True)
class Result:
    """What an expression evaluated to: a value, or CEL's error."""

    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def extract(text: str, template: str) -> str:
    """GCP's ``extract()``: the part of ``text`` that ``{name}`` stands for in ``template``.

    As in GCP's default AWS mapping, ``'assumed-role/{role_name}/'`` takes what follows
    the first ``assumed-role/`` up to the next ``/``, and ``'{account_arn}assumed-role/'``
    what precedes ``assumed-role/``. Text that does not fit the template gives ``''``.
    """
    shape = _TEMPLATE.fullmatch(template)
    if shape is None:
        raise ValueError(f"extract() template {template!r} needs exactly one {{name}}")
    prefix, suffix = shape["prefix"], shape["suffix"]
    start = text.find(prefix)
    if start < 0:
        return ""
    start += len(prefix)
    if not suffix:
        return text[start:]
    end = text.find(suffix, start)
    return text[start:end] if end >= 0 else ""


def quote(text: str) -> str:
    """``text`` as a single-quoted CEL string literal that evaluates back to ``text``."""
    out = []
    for char in text:
        if char in "\\'":
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "'" + "".join(out) + "'"


def check(expression: str, *, roots: tuple[str, ...] = ROOTS) -> None:
    """Parse and type-check ``expression``; :class:`CelSyntaxError` says why not."""
    _compile(expression, roots)


def evaluate(
    expression: str, variables: Mapping[str, Any], *, roots: tuple[str, ...] = ROOTS
) -> Result:
    """Evaluate ``expression`` over ``variables`` (JSON values, by root name)."""
    program = _compile(expression, roots)
    data = {name: as_json(variables.get(name, {})) for name in roots}
    if _has_nul(data):
        # NOTE: the runtime cuts strings passed in at a NUL character; an answer
        # computed on the cut value would be wrong, so give none.
        return Result(error="a value holds a NUL character, which cannot be evaluated here")
    try:
        found = program.eval(data=data)
    except (RuntimeError, ValueError, TypeError) as exc:
        # NOTE: the runtime reports most failures as error values; a value it cannot
        # carry into CEL (say, a float NaN key) raises instead. Both are CEL errors.
        return Result(error=_first_line(exc))
    if found.type() == cel.Type.ERROR:
        return Result(error=str(found.plain_value()))
    return Result(value=_plain(found.plain_value()))


def references(expression: str) -> frozenset[tuple[str, str]]:
    """The ``(root, name)`` pairs an expression selects: ``assertion.sub`` gives
    ``("assertion", "sub")``. Read from the source text, string literals left out."""
    source = _LITERAL.sub("''", expression)
    found = set(_SELECT.findall(source))
    for root, _, name in _INDEX.findall(_LITERAL.sub(_keep_index_keys, expression)):
        found.add((root, name))
    return frozenset(found)


def type_name(value: Any) -> str:
    """The CEL name of a plain value's type, for explanations."""
    if value is None:
        return "null"
    for kind, name in (
        (bool, "bool"),
        (int, "int"),
        (float, "double"),
        (str, "string"),
        (bytes, "bytes"),
        (list, "list"),
        (dict, "map"),
    ):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def as_json(value: Any) -> Any:
    """A JSON value as CEL sees JSON: numbers as doubles."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, Mapping):
        return {str(key): as_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(item) for item in value]
    return value


def _keep_index_keys(match: re.Match[str]) -> str:
    # Inside `assertion['sub']` the literal is a key, not data: keep it readable.
    text = match.group(0)
    return text if re.fullmatch(r"""(['"])[A-Za-z_]\w*\1""", text) else "''"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _compile(expression: str, roots: tuple[str, ...]) -> Any:
    try:
        return _environment(roots).compile(expression)
    except RuntimeError as exc:
        raise CelSyntaxError(_compile_message(exc)) from None


def _compile_message(exc: RuntimeError) -> str:
    # "INVALID_ARGUMENT: ERROR: <input>:1:5: undeclared reference to 'x' ..." -> the
    # position and the message, without the status prefix and the source excerpt.
    first = _first_line(exc)
    found = re.search(r"<input>:(\d+:\d+): (.*)", first)
    if found is None:
        return first.removeprefix("INVALID_ARGUMENT: ")
    return f"{found.group(2)} (at {found.group(1)})"


@cache
def _environment(roots: tuple[str, ...]) -> Any:
    json_map = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
    extract_decl = cel.FunctionDecl(
        "extract",
        [
            cel.Overload(
                "string_extract_string",
                cel.Type.STRING,
                [cel.Type.STRING, cel.Type.STRING],
                is_member=True,
                impl=extract,
            )
        ],
    )
    return cel.NewEnv(
        variables=dict.fromkeys(roots, json_map),
        extensions=[ext_strings.ExtStrings()],
        functions=[extract_decl],
    )
