"""The service's source of truth: one SQLite file (WAL, synchronous=FULL) with the catalog, vectors, users and events.

Every write is one transaction that also bumps a global `version` counter and stamps the rows it touched, so a
vector-index snapshot taken at version v can be brought up to date by re-reading only rows with version > v.
Deleted items stay as tombstone rows (vector NULL): their row number, which is also their id in the vector
index, is never reused, and a re-added item id revives its old row.

A write is acknowledged only after `commit()` returns; with WAL and synchronous=FULL that means the WAL frame is
on disk, so a `kill -9` (or a power cut) after the acknowledgement cannot lose it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    row INTEGER PRIMARY KEY AUTOINCREMENT,  -- stable; the item's id in the vector index
    item_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    category TEXT NOT NULL,
    description TEXT NOT NULL,
    brand TEXT NOT NULL,
    extra TEXT NOT NULL,                    -- other attributes, a JSON object of strings
    vector BLOB,                            -- float32 little-endian, unit length; NULL once deleted
    version INTEGER NOT NULL                -- the store version of the last write to this row
);
CREATE INDEX IF NOT EXISTS items_version ON items (version);
CREATE TABLE IF NOT EXISTS users (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL UNIQUE,
    profile TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- history order
    user_row INTEGER NOT NULL,
    item_row INTEGER NOT NULL,
    timestamp REAL,
    event TEXT
);
"""


@dataclass(frozen=True)
class ItemRecord:
    """One catalog item as stored (text fields plus its unit-length embedding)."""

    item_id: str
    title: str
    category: str
    description: str = ""
    brand: str = ""
    extra: dict[str, str] | None = None


@dataclass(frozen=True)
class CatalogRows:
    """The live items as arrays, row-aligned: what the in-memory state is built from at start-up."""

    rows: np.ndarray  # (n,) int64 store rows
    item_ids: list[str]
    titles: list[str]
    categories: list[str]
    vectors: np.ndarray  # (n, dim) float32


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """An autocommit-off connection usable from any thread (callers serialise writes themselves)."""
    if not create and not path.exists():
        raise FileNotFoundError(f"service database not found: {path}")
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


class CatalogStore:
    """The SQLite store behind a running service. Reads happen at start-up; writes are serialised by a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")  # an acknowledged write survives power loss too
        self._lock = threading.Lock()
        self.dim = int(self.meta("dim"))
        self.generation = self.meta("generation")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- reading -----------------------------------------------------------------------------------------
    def meta(self, key: str) -> str:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(f"{self.path} has no meta entry {key!r}")
        return str(row[0])

    @property
    def version(self) -> int:
        return int(self.meta("version"))

    def integrity_ok(self) -> bool:
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def live_items(self, *, since_version: int | None = None) -> CatalogRows:
        """Every live item (or only those written after `since_version`), ordered by row."""
        where = "vector IS NOT NULL" + ("" if since_version is None else " AND version > ?")
        args = () if since_version is None else (since_version,)
        cur = self._conn.execute(
            f"SELECT row, item_id, title, category, vector FROM items WHERE {where} ORDER BY row", args
        )
        rows, ids, titles, cats, blobs = [], [], [], [], []
        for row, item_id, title, category, blob in cur:
            rows.append(row)
            ids.append(item_id)
            titles.append(title)
            cats.append(category)
            blobs.append(blob)
        vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), self.dim).astype(np.float32)
        return CatalogRows(np.asarray(rows, dtype=np.int64), ids, titles, cats, vectors)

    def changed_rows(self, since_version: int) -> np.ndarray:
        """Rows (live or deleted) written after `since_version`."""
        cur = self._conn.execute("SELECT row FROM items WHERE version > ?", (since_version,))
        return np.asarray([r for (r,) in cur], dtype=np.int64)

    def users(self) -> Iterator[tuple[int, str, str]]:
        yield from self._conn.execute("SELECT row, user_id, profile FROM users ORDER BY row")

    def events(self) -> Iterator[tuple[int, int]]:
        """(user_row, item_row) in history order."""
        yield from self._conn.execute("SELECT user_row, item_row FROM events ORDER BY seq")

    def item_ids_by_row(self, last_row: int) -> list[str]:
        """The item ids of rows 1..`last_row`, live or deleted (the catalog a model was fitted on)."""
        cur = self._conn.execute("SELECT row, item_id FROM items WHERE row <= ? ORDER BY row", (last_row,))
        found = dict(cur.fetchall())
        return [found.get(row, "") for row in range(1, last_row + 1)]

    def item_records(self, rows: Sequence[int]) -> list[ItemRecord]:
        """The stored text of the items at `rows`, in that order (a row that does not exist raises KeyError)."""
        found = {}
        for start in range(0, len(rows), 500):  # SQLite caps a statement's parameters
            chunk = [int(r) for r in rows[start : start + 500]]
            marks = ",".join("?" * len(chunk))
            cur = self._conn.execute(
                f"SELECT row, item_id, title, category, description, brand, extra FROM items WHERE row IN ({marks})",
                chunk,
            )
            for row, *fields in cur:
                found[row] = ItemRecord(*fields[:5], extra=json.loads(fields[5]))
        return [found[int(r)] for r in rows]

    def item_details(self, item_id: str) -> ItemRecord | None:
        row = self._conn.execute(
            "SELECT item_id, title, category, description, brand, extra FROM items WHERE item_id = ? "
            "AND vector IS NOT NULL",
            (item_id,),
        ).fetchone()
        return None if row is None else ItemRecord(*row[:5], extra=json.loads(row[5]))

    # -- writing: each method is one committed transaction -------------------------------------------------
    def upsert_items(self, items: Sequence[ItemRecord], vectors: np.ndarray) -> list[int]:
        """Add or replace `items` with their `vectors`; returns their rows. Committed when it returns."""
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        with self._lock, _transaction(self._conn) as conn:
            version = _bump_version(conn)
            rows = []
            for item, vector in zip(items, vectors, strict=True):
                (row,) = conn.execute(
                    "INSERT INTO items (item_id, title, category, description, brand, extra, vector, version) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (item_id) DO UPDATE SET title = excluded.title, "
                    "category = excluded.category, description = excluded.description, brand = excluded.brand, "
                    "extra = excluded.extra, vector = excluded.vector, version = excluded.version RETURNING row",
                    _item_values(item, vector, version),
                ).fetchone()
                rows.append(int(row))
            return rows

    def delete_item(self, item_id: str) -> int | None:
        """Tombstone `item_id`; returns its row, or None when it is not a live item."""
        with self._lock, _transaction(self._conn) as conn:
            found = conn.execute(
                "SELECT row FROM items WHERE item_id = ? AND vector IS NOT NULL", (item_id,)
            ).fetchone()
            if found is None:
                return None
            version = _bump_version(conn)
            conn.execute("UPDATE items SET vector = NULL, version = ? WHERE row = ?", (version, found[0]))
            return int(found[0])

    def add_events(
        self, events: Sequence[tuple[str, int, float | None, str | None]], new_users: Sequence[str]
    ) -> dict[str, int]:
        """Create `new_users`, then append (user_id, item_row, timestamp, event) rows; returns new users' rows."""
        with self._lock, _transaction(self._conn) as conn:
            created = {}
            for user_id in new_users:
                (row,) = conn.execute(
                    "INSERT INTO users (user_id, profile) VALUES (?, '') RETURNING row", (user_id,)
                ).fetchone()
                created[user_id] = int(row)
            rows = dict(
                conn.execute(
                    "SELECT user_id, row FROM users WHERE user_id IN (SELECT value FROM json_each(?))",
                    (json.dumps(sorted({e[0] for e in events})),),
                ).fetchall()
            )
            conn.executemany(
                "INSERT INTO events (user_row, item_row, timestamp, event) VALUES (?, ?, ?, ?)",
                [(rows[u], item_row, ts, ev) for u, item_row, ts, ev in events],
            )
            return created


def create_store(
    path: Path,
    *,
    dim: int,
    items: Sequence[ItemRecord],
    vectors: np.ndarray,
    users: Sequence[tuple[str, str]],
    events: Sequence[tuple[int, int, float | None]],
) -> None:
    """Write a fresh store at `path` (which must not exist): items get rows 1..n, users 1..m in the given order.

    `events` are (user position, item position, timestamp), 0-based positions in `users` / `items`, in
    history order. One transaction; the caller renames the finished file into place.
    """
    if path.exists():
        raise FileExistsError(path)
    conn = connect(path, create=True)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file until it is served
        conn.executescript(SCHEMA)
        with _transaction(conn):
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("schema", str(SCHEMA_VERSION)),
                    ("dim", str(dim)),
                    ("version", "1"),
                    ("generation", uuid.uuid4().hex),
                ],
            )
            vectors = np.ascontiguousarray(vectors, dtype="<f4")
            conn.executemany(
                "INSERT INTO items (row, item_id, title, category, description, brand, extra, vector, version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((n + 1, *_item_values(item, vectors[n], 1)) for n, item in enumerate(items)),
            )
            conn.executemany(
                "INSERT INTO users (row, user_id, profile) VALUES (?, ?, ?)",
                ((n + 1, user_id, profile) for n, (user_id, profile) in enumerate(users)),
            )
            conn.executemany(
                "INSERT INTO events (user_row, item_row, timestamp) VALUES (?, ?, ?)",
                ((u + 1, i + 1, ts) for u, i, ts in events),
            )
    finally:
        conn.close()


def _item_values(item: ItemRecord, vector: np.ndarray, version: int) -> tuple[object, ...]:
    extra = json.dumps(item.extra or {}, ensure_ascii=False, sort_keys=True)
    blob = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    return (item.item_id, item.title, item.category, item.description, item.brand, extra, blob, version)


def _bump_version(conn: sqlite3.Connection) -> int:
    (version,) = conn.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version' RETURNING CAST(value AS INTEGER)"
    ).fetchone()
    return int(version)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error (the connection runs in autocommit mode)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
