"""A host's statement listener, as the direct-path tests need one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from ct_alias.storage.sql import SQLStorage


class Statements:
    """A host's statement listener: SQLAlchemy's path is taken while it listens.

    ``with Statements(store) as seen:`` lists the first word of each statement
    SQLAlchemy executes on the store's engine meanwhile.
    """

    def __init__(self, store: SQLStorage) -> None:
        self.engine = store.engine
        self.seen: list[str] = []

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        del conn, cursor, args
        self.seen.append(statement.split(None, 1)[0].upper())

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._before)
        return self.seen

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
