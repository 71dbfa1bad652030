"""Statements compiled once for a dialect, run on a driver's own connection: issuing's.

Through the ORM, each of issue-token's three statements costs about 200 µs of Python
before the driver sees it, against about 13 µs for the driver itself on SQLite (the
performance note). A :class:`DirectStatement` is compiled once, by SQLAlchemy, from the
same Core statement the ORM path runs, for the engine's dialect; its parameters and
result columns go through the column types' own bind and result processors. Nothing
here is hand-written SQL, and nothing is typed twice.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Dialect, Select
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import ClauseElement

if TYPE_CHECKING:
    from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None


class DirectStatement:
    """One statement, compiled for a dialect, with its type processors."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = cast("SQLCompiler", statement.compile(dialect=dialect))
        self.sql = compiled.string
        self._positional = list(compiled.positiontup) if compiled.positiontup else None
        self._binds: dict[str, Processor] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        # NOTE: only the processors that exist, by position: most columns have none
        self._bound = [
            (name, self._binds[name]) for name in (self._positional or list(self._binds))
        ]
        self._results: list[tuple[int, Callable[[Any], Any]]] = []
        self._row: Any = None
        self._width = 0
        if isinstance(statement, Select):
            columns = statement.selected_columns
            processors = [
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in columns
            ]
            self._results = [(i, p) for i, p in enumerate(processors) if p is not None]
            self._width = len(processors)
            self._row = namedtuple("Row", list(columns.keys()))._make  # type: ignore[attr-defined]

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        processed = [
            (name, processor(values[name]) if processor else values[name])
            for name, processor in self._bound
        ]
        if self._positional is not None:
            return tuple(value for _, value in processed)
        return dict(processed)

    def row(self, raw: Sequence[Any] | None) -> Any:
        """The row with its columns by name and processed, as the ORM would give them."""
        if raw is None:
            return None
        if len(raw) != self._width:
            raise ValueError(f"a row of {len(raw)} columns where {self._width} were selected")
        values = list(raw)
        for index, process in self._results:
            values[index] = process(values[index])
        return self._row(values)


def translated(
    dialect: Dialect, exc: Exception, sql: str, *, invalidated: bool = False
) -> StatementError:
    """The SQLAlchemy error a session would have raised for a driver's error."""
    return DBAPIError.instance(
        sql,
        None,  # NOTE: never the values: they hold key hashes
        exc,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=invalidated,
        dialect=dialect,
    )
