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
from collections.abc import Callable, Mapping
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
        self._results: list[Processor] = []
        self._row: Any = None
        if isinstance(statement, Select):
            columns = statement.selected_columns
            self._results = [
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in columns
            ]
            self._row = namedtuple("Row", list(columns.keys()))  # type: ignore[misc]

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        processed = {
            name: (processor(values[name]) if processor else values[name])
            for name, processor in self._binds.items()
        }
        if self._positional is not None:
            return tuple(processed[name] for name in self._positional)
        return processed

    def row(self, raw: tuple[Any, ...] | None) -> Any:
        """The row with its columns by name and processed, as the ORM would give them."""
        if raw is None:
            return None
        return self._row(
            *(
                process(value) if process else value
                for process, value in zip(self._results, raw, strict=True)
            )
        )


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
