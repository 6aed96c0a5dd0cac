"""Named SQL queries, read once from their .sql files."""

from __future__ import annotations

from functools import cache
from importlib import resources

SQL = resources.files("runner.store.postgres") / "sql"


@cache
def query(name: str) -> str:
    return (resources.files("runner.store.postgres") / "sql" / f"{name}.sql").read_text(
        encoding="utf-8"
    )


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every numbered file under sql/migrations, in order."""
    folder = SQL / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)
