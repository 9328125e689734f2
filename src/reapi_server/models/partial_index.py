"""Partial indexes declared once for both databases, without loading the PostgreSQL dialect.

A dialect keyword on a construct (`postgresql_where=`) makes SQLAlchemy import that dialect to
check it: SQLAlchemy's PostgreSQL package with its four drivers' dialects, ~2 MiB resident in
every gateway on SQLite, for three indexes. The condition is declared with SQLite's keyword and
given to PostgreSQL when a CREATE INDEX is compiled for it (that compilation has the dialect
loaded already): the DDL on either database is what it was with both keywords.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex
from sqlalchemy.sql.compiler import DDLCompiler

__all__ = ["partial_index"]


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index holding only the rows for which `where` (SQL text) is true."""
    return Index(name, *columns, unique=unique, sqlite_where=text(where))


@compiles(CreateIndex, "postgresql")
def _partial_on_postgresql(create: CreateIndex, compiler: DDLCompiler, **kw: Any) -> str:
    index = create.element
    where = index.dialect_options["sqlite"]["where"]
    if where is not None and index.dialect_options["postgresql"]["where"] is None:
        index.dialect_kwargs["postgresql_where"] = where
    return str(compiler.visit_create_index(create, **kw))  # type: ignore[no-untyped-call]
