"""The live recommender behind the HTTP API: catalog vectors and histories in memory, every write committed to
the store first, then applied to memory, the vector index and the served model.

A known user's recommendations are scored by the folder's own model (zsrec.service.served): the tuned
`zero-shot` fusion, a trained head, `launch-ranker`, whatever `zsrec train` saved there, so the API ranks as
`Recommender.recommend_users` does. Below the index threshold the model scores every live item; above it the
vector index proposes candidates (cosine to the user's history vector) and the model re-scores them. Posted
items, events and new users reach the model before the write is acknowledged.

Two kinds of request have no fitted user behind them and are ranked by the semantic cosine alone: an ad-hoc
`history` or `profile`, and a user whose history has no live item. So is every request on a bare service
folder (written by `write_service_folder` with no model beside it): its /health names the model "semantic".
`/audience` ranks users by the soft count of their history items close to the ad (zsrec.models.audience), as
`zsrec audience` does.

Concurrency: searches hold a shared lock, in-memory updates an exclusive one (faiss forbids a search during an
add); writers are serialised by the store, and the SQLite commit happens before the exclusive lock is taken,
so readers are only paused for the in-memory update.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from zsrec.encoders.base import TextEncoder
from zsrec.errors import ZsrecError
from zsrec.models.audience import AudienceSettings, audience_scores
from zsrec.service.bundle import DATABASE, INDEX_DIR, Manifest
from zsrec.service.index import ExactIndex, IndexSettings, IVFIndex, VectorIndex, load_snapshot, save_snapshot
from zsrec.service.served import SEMANTIC, RescoringSettings, ServedModel, check_servable
from zsrec.service.store import CatalogStore, ItemRecord
from zsrec.vectors import history_weights

CATEGORY_SEP = " > "
EXPLAIN_TOP = 3  # history items named in each recommendation's explanation


class NotFoundError(ZsrecError):
    """A request names a user, item or category the service does not have (HTTP 404)."""


class UnusableRequestError(ZsrecError):
    """A well-formed request that cannot be answered as asked (HTTP 422)."""


@dataclass(frozen=True)
class Hit:
    row: int
    score: float
    because: list[tuple[int, float]]  # (history item row, contribution), largest first


class RWLock:
    """Many readers or one writer; a waiting writer blocks new readers so writes are not starved."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class Engine:
    """Everything a request needs, loaded from a service folder; see `open`."""

    def __init__(self, folder: Path, manifest: Manifest, store: CatalogStore, encoder: TextEncoder) -> None:
        self.folder, self.manifest, self.store, self.encoder = folder, manifest, store, encoder
        self.served: ServedModel | None = None  # the folder's model; None for a bare service folder
        self.audience_settings = AudienceSettings()
        # share of the exact top-10 that the index's candidates, re-scored by the model, find (sampled users);
        # 1.0 when every item is scored, None until measured
        self.served_recall: float | None = 1.0
        self._rw = RWLock()
        self._write = threading.Lock()  # one writer at a time from commit to in-memory update
        self._encode_lock = threading.Lock()
        dim = manifest.dim
        self._vectors = np.zeros((1, dim), dtype=np.float32)
        self._alive = np.zeros(1, dtype=bool)
        self._item_ids: dict[int, str] = {}
        self._titles: dict[int, str] = {}
        self._categories: dict[int, str] = {}
        self._row_of: dict[str, int] = {}
        self._category_rows: dict[str, set[int]] = {}
        self._user_row: dict[str, int] = {}
        self._user_ids: dict[int, str] = {}
        self._profiles: dict[int, str] = {}
        self._histories: dict[int, list[int]] = {}
        self._buyers: dict[int, set[int]] = {}  # item row -> user rows whose history holds it
        self.index: VectorIndex = ExactIndex(lambda: self._vectors, lambda: self._alive)
        self._snapshot_version = 0

    # -- start-up and shut-down ----------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        folder: Path,
        encoder: TextEncoder,
        settings: IndexSettings,
        rescoring: RescoringSettings | None = None,
    ) -> Engine:
        """Load the folder: store, model (ConfigError when it cannot be served), index."""
        manifest = Manifest.read(folder)
        if encoder.model_id != manifest.encoder_model_id:
            raise ZsrecError(
                f"encoder {encoder.model_id!r} differs from the one that made {folder}'s vectors "
                f"({manifest.encoder_model_id!r}): new items would not be comparable"
            )
        check_servable(folder)  # before the store and index load: a wrong folder fails at once
        store = CatalogStore(folder / DATABASE)
        try:
            return cls._open(folder, manifest, store, encoder, settings, rescoring or RescoringSettings())
        except BaseException:
            store.close()
            raise

    @classmethod
    def _open(
        cls,
        folder: Path,
        manifest: Manifest,
        store: CatalogStore,
        encoder: TextEncoder,
        settings: IndexSettings,
        rescoring: RescoringSettings,
    ) -> Engine:
        engine = cls(folder, manifest, store, encoder)
        catalog = store.live_items()
        engine._set_items(catalog.rows, catalog.item_ids, catalog.titles, catalog.categories, catalog.vectors)
        for row, user_id, profile in store.users():
            engine._user_row[user_id], engine._user_ids[row], engine._profiles[row] = row, user_id, profile
            engine._histories[row] = []
        for user_row, item_row in store.events():
            engine._histories[user_row].append(item_row)
            engine._buyers.setdefault(item_row, set()).add(user_row)
        if check_servable(folder) is not None:
            engine.served = ServedModel.open(
                folder, store, manifest.n_items, manifest.n_users, manifest.n_events, rescoring
            )
        engine._open_index(settings)
        if engine.served is not None and not isinstance(engine.index, ExactIndex):
            engine.served_recall = None
            threading.Thread(target=engine.measure_served_recall, name="zsrec-served-recall", daemon=True).start()
        return engine

    @property
    def model_name(self) -> str:
        """The model that scores known users: the folder's, or "semantic" for a bare service folder."""
        return SEMANTIC if self.served is None else self.served.name

    def measure_served_recall(self) -> float:
        """Mean share of the exact top-10 (the model scoring every live item) that the served top-10 (index
        candidates re-scored by the model) holds, over a seeded sample of users with a live history."""
        assert self.served is not None
        rng = np.random.default_rng(self.served.settings.seed)
        users = [u for u in sorted(self._histories) if self.served.knows(u)]
        sample = rng.permutation(users)[: self.served.settings.recall_users]
        found = []
        for user in sample.tolist():
            with self._rw.read():
                rows = [r for r in self._histories[user] if self._is_alive(r)]
                if not rows:
                    continue
                served, _ = self._model_rank(user, rows, 10, None, True, exact=False)
                exact, _ = self._model_rank(user, rows, 10, None, True, exact=True)
            if len(exact):
                found.append(len(set(served.tolist()) & set(exact.tolist())) / len(exact))
        self.served_recall = float(np.mean(found)) if found else 1.0
        return self.served_recall

    def _open_index(self, settings: IndexSettings) -> None:
        rows = np.flatnonzero(self._alive)
        if len(rows) < settings.ann_threshold:
            return
        version, snapshots = self.store.version, self.folder / INDEX_DIR
        exact = lambda: self._vectors  # noqa: E731 - the matrix is replaced when it grows
        found = load_snapshot(
            snapshots,
            generation=self.store.generation,
            max_version=version,
            exact=exact,
            refine=settings.refine,
        )
        if found is None:
            index = IVFIndex.build(rows, self._vectors[rows], settings, exact=exact)
            self._snapshot_version = 0
        else:
            index, self._snapshot_version = found
            changed = self.store.changed_rows(self._snapshot_version)  # written after the snapshot: replay
            index.remove(changed)
            live = changed[changed < len(self._alive)]
            live = live[self._alive[live]]
            index.add(live, self._vectors[live])
        self.index = index
        self.save_snapshot()

    def save_snapshot(self) -> None:
        """Persist the IVF index when the store has moved on since the last snapshot (start-up, shut-down)."""
        if not isinstance(self.index, IVFIndex):
            return
        with self._write, self._rw.read():
            version = self.store.version
            if version != self._snapshot_version:
                save_snapshot(self.index, self.folder / INDEX_DIR, generation=self.store.generation, version=version)
                self._snapshot_version = version

    def close(self) -> None:
        self.save_snapshot()
        self.store.close()

    # -- reading ---------------------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self._row_of)

    def item_id(self, row: int) -> str:
        return self._item_ids[row]

    def title(self, row: int) -> str:
        return self._titles[row]

    def category(self, row: int) -> str:
        return self._categories[row]

    def user_history(self, user_id: str) -> list[int]:
        return list(self._histories[self._user(user_id)])

    def recommend(
        self,
        *,
        user_id: str | None = None,
        history: Sequence[str] | None = None,
        profile: str | None = None,
        k: int = 10,
        categories: Sequence[str] | None = None,
        exclude_seen: bool = True,
    ) -> list[Hit]:
        """Top-k items for a known user, an ad-hoc history of item ids, or a free-text profile."""
        with self._rw.read():
            rows: list[int] = []
            if user_id is not None:
                user = self._user(user_id)
                rows = [r for r in self._histories[user] if self._is_alive(r)]
                if not rows:
                    profile = self._profiles[user]
                    if not profile.strip():
                        raise UnusableRequestError(
                            f"user {user_id!r} has no history of live items and no profile yet; "
                            "record events first, or send a profile or history instead"
                        )
            elif history is not None:
                rows = [self._item(i) for i in history]
            include = self._category_filter(categories) if categories else None
            weights = self._history_weights(len(rows))
            if user_id is not None and rows and self.served is not None and self.served.knows(user):
                found, scores = self._model_rank(user, rows, k, include, exclude_seen)
            else:
                if rows:
                    query = _unit(weights @ self._vectors[rows])
                else:
                    query = self._encode(profile or "", kind="query")
                    weights = np.zeros(0, dtype=np.float32)
                exclude = np.asarray(sorted(set(rows)), dtype=np.int64) if exclude_seen and rows else None
                scores, found = self.index_search(query, k, include=include, exclude=exclude)
            because = self._explain(found, rows, weights)
            return [Hit(int(r), float(s), b) for s, r, b in zip(scores, found, because, strict=True)]

    def _model_rank(
        self,
        user: int,
        rows: list[int],
        k: int,
        include: np.ndarray | None,
        exclude_seen: bool,
        *,
        exact: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of a known user's top-k by the served model (callers hold the read lock): every live
        item scored below the index threshold (or with `exact`), else the index's candidates re-scored."""
        assert self.served is not None
        pool = self.served.pool(include)
        if exact is None:
            exact = isinstance(self.index, ExactIndex)
        if exact:
            return self.served.rank(user, k, pool=pool, exclude_seen=exclude_seen)
        query = _unit(self._history_weights(len(rows)) @ self._vectors[rows])
        exclude = np.asarray(sorted(set(rows)), dtype=np.int64) if exclude_seen else None
        wanted = max(k, self.served.settings.candidates)
        # a long list that the model re-scores anyway: no exact re-scoring of a longer one first
        _, candidates = self.index_search(query, wanted, include=include, exclude=exclude, refine=1)
        return self.served.rank(user, k, pool=pool, exclude_seen=exclude_seen, candidate_rows=candidates)

    def similar(
        self, *, item_id: str | None = None, text: str | None = None, k: int = 10, other_categories_only: bool = False
    ) -> list[Hit]:
        with self._rw.read():
            if item_id is not None:
                row = self._item(item_id)
                query = self._vectors[row]
                exclude = {row}
                if other_categories_only:
                    exclude |= self._category_rows[self._categories[row]]
            else:
                if other_categories_only:
                    raise UnusableRequestError("other_categories_only needs an item_id (a text has no category)")
                query, exclude = self._encode(text or "", kind="passage"), set()
            scores, found = self.index_search(query, k, exclude=np.fromiter(exclude, dtype=np.int64))
            return [Hit(int(r), float(s), []) for s, r in zip(scores, found, strict=True)]

    def audience(
        self, *, text: str | None = None, item_id: str | None = None, category: str | None = None, k: int = 10
    ) -> list[tuple[str, float, int]]:
        """The users who bought most things close to the text, item or category: (user_id, score, history).

        The soft count of zsrec.models.audience, as `zsrec audience` scores (same order, same scale): users
        with fewer than `min_history` distinct live items are not ranked, nor those who already bought the item.
        """
        s = self.audience_settings
        with self._rw.read():
            bought: set[int] = set()
            if item_id is not None:
                row = self._item(item_id)
                query = self._vectors[row]
                bought = self._buyers.get(row, set())
            elif category is not None:
                rows = self._category_filter([category])
                query = _unit(self._vectors[rows].mean(axis=0))
            else:
                query = _unit(self._encode(text or "", kind="passage"))
            users, histories = [], []
            for user, history in self._histories.items():
                live = [r for r in history if self._is_alive(r)]
                if user not in bought and len(set(live)) >= s.min_history:
                    users.append(user)
                    histories.append(live)
            if not users:
                return []
            vectors = self._vectors
            scores = audience_scores(vectors, [np.asarray(h, dtype=np.int64) for h in histories], query[None, :], s)
            scores = scores[:, 0]
            top = np.argsort(-scores, kind="stable")[:k]
            return [(self._user_ids[users[i]], float(scores[i]), len(set(histories[i]))) for i in top]

    def index_search(
        self,
        query: np.ndarray,
        k: int,
        *,
        include: np.ndarray | None = None,
        exclude: np.ndarray | None = None,
        refine: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One query's top-k live rows (callers hold the read lock); fewer when fewer qualify."""
        if exclude is not None and len(exclude) == 0:
            exclude = None
        scores, rows = self.index.search(query[None, :], k, include=include, exclude=exclude, refine=refine)
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep]

    # -- writing ---------------------------------------------------------------------------------------------
    def upsert_items(self, items: Sequence[ItemRecord]) -> list[int]:
        """Embed, commit, then serve `items` (added, or replaced when the id exists); returns their rows."""
        latest = {item.item_id: item for item in items}  # a batch naming an id twice: the last one wins
        items = list(latest.values())
        if self.served is not None:  # refused before anything is written
            self.served.require_live_items("items were posted")
        vectors = self._encode_items(items)
        with self._write:
            rows = self.store.upsert_items(items, vectors)  # acknowledged from here on
            grown = self._grown(max(rows) + 1)  # copied before readers are paused (writers are serialised)
            with self._rw.write():
                if grown is not None:
                    self._vectors, self._alive = grown
                replaced = np.asarray([r for r in rows if self._is_alive(r)], dtype=np.int64)
                self.index.remove(replaced)
                self._set_items(
                    np.asarray(rows),
                    [i.item_id for i in items],
                    [i.title for i in items],
                    [i.category for i in items],
                    vectors,
                )
                self.index.add(np.asarray(rows, dtype=np.int64), vectors)
                if self.served is not None:
                    same = self.served.accepts_vectors_of(self.manifest.template.id)
                    self.served.add_items(np.asarray(rows, dtype=np.int64), items, vectors if same else None)
        return rows

    def delete_item(self, item_id: str) -> None:
        with self._write:
            row = self.store.delete_item(item_id)
            if row is None:
                raise NotFoundError(f"unknown item_id {item_id!r}")
            with self._rw.write():
                self.index.remove(np.asarray([row], dtype=np.int64))
                self._alive[row] = False
                del self._row_of[item_id]
                self._category_rows[self._categories[row]].discard(row)
                if self.served is not None:
                    self.served.remove(np.asarray([row], dtype=np.int64))

    def add_events(self, events: Sequence[tuple[str, str, float | None, str | None]]) -> int:
        """Append (user_id, item_id, timestamp, event) to histories, creating unknown users; returns users created."""
        with self._write:
            resolved = [(u, self._item(i), t, e) for u, i, t, e in events]
            new_users = sorted({u for u, *_ in events if u not in self._user_row})
            if new_users and self.served is not None:  # refused before anything is written
                self.served.require_live_items(f"events name {len(new_users)} unknown users")
            created = self.store.add_events(resolved, new_users)
            with self._rw.write():
                for user_id, row in created.items():
                    self._user_row[user_id], self._user_ids[row], self._profiles[row] = row, user_id, ""
                    self._histories[row] = []
                for user_id, item_row, _, _ in resolved:
                    user = self._user_row[user_id]
                    self._histories[user].append(item_row)
                    self._buyers.setdefault(item_row, set()).add(user)
                if self.served is not None:
                    if created:
                        self.served.add_users(list(created.values()), list(created))
                    self.served.add_events([self._user_row[u] for u, *_ in resolved], [r for _, r, *_ in resolved])
        return len(created)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _grown(self, rows_needed: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Copies of the vector matrix and live flags with room for `rows_needed` rows and an eighth more (at
        least 1,024), or None when they already fit. The catalog is loaded the same way, so the first items
        posted after a start fit without a copy. Copying 1M rows takes about half a second: callers do it
        outside the exclusive lock and swap the copies in under it. An eighth, not a doubling: at 1M items a
        doubling held 1.5 GB more from the first post on."""
        if rows_needed <= len(self._alive):
            return None
        capacity = rows_needed + max(rows_needed // 8, 1024)
        vectors = np.zeros((capacity, self._vectors.shape[1]), dtype=np.float32)
        vectors[: len(self._vectors)] = self._vectors
        alive = np.zeros(capacity, dtype=bool)
        alive[: len(self._alive)] = self._alive
        return vectors, alive

    def _set_items(
        self, rows: np.ndarray, ids: list[str], titles: list[str], categories: list[str], vectors: np.ndarray
    ) -> None:
        if len(rows):
            grown = self._grown(int(rows.max()) + 1)
            if grown is not None:
                self._vectors, self._alive = grown
        self._vectors[rows] = vectors
        self._alive[rows] = True
        for row, item_id, title, category in zip(rows.tolist(), ids, titles, categories, strict=True):
            old = self._categories.get(row)
            if old is not None:
                self._category_rows[old].discard(row)
            self._item_ids[row], self._titles[row], self._categories[row] = item_id, title, category
            self._row_of[item_id] = row
            self._category_rows.setdefault(category, set()).add(row)

    def _is_alive(self, row: int) -> bool:
        return row < len(self._alive) and bool(self._alive[row])

    def _item(self, item_id: str) -> int:
        row = self._row_of.get(item_id)
        if row is None:
            raise NotFoundError(f"unknown item_id {item_id!r}")
        return row

    def _user(self, user_id: str) -> int:
        row = self._user_row.get(user_id)
        if row is None:
            raise NotFoundError(f"unknown user_id {user_id!r}")
        return row

    def _category_filter(self, categories: Sequence[str]) -> np.ndarray:
        """Live rows in the named categories; a name covers its sub-categories ("Outdoor" covers "Outdoor > Tents")."""
        rows: set[int] = set()
        for name in categories:
            matches = [c for c in self._category_rows if c == name or c.startswith(name + CATEGORY_SEP)]
            live = set().union(*(self._category_rows[c] for c in matches)) if matches else set()
            if not live:
                raise NotFoundError(f"unknown category {name!r} (no live item in it)")
            rows |= live
        return np.fromiter(rows, dtype=np.int64)

    def _history_weights(self, n: int) -> np.ndarray:
        return history_weights(n, self.manifest.aggregation, self.manifest.half_life)

    def _explain(self, found: np.ndarray, history: list[int], weights: np.ndarray) -> list[list[tuple[int, float]]]:
        """Per hit, the history items with the largest share w_h·cos(h, item) of its score, largest first."""
        if not history or not len(found):
            return [[] for _ in found]
        unique, inverse = np.unique(np.asarray(history), return_inverse=True)
        merged = np.bincount(inverse, weights=weights, minlength=len(unique)).astype(np.float32)  # bought twice: twice
        contributions = merged[:, None] * (self._vectors[unique] @ self._vectors[found].T)  # (history, hits)
        best = np.argsort(-contributions, axis=0, kind="stable")[:EXPLAIN_TOP]  # (top, hits)
        shares = np.take_along_axis(contributions, best, axis=0).tolist()
        names = unique[best].tolist()
        return [
            [(names[t][col], shares[t][col]) for t in range(len(names)) if shares[t][col] > 0]
            for col in range(len(found))
        ]

    def _encode(self, text: str, *, kind: str) -> np.ndarray:
        with self._encode_lock:
            return self.encoder.encode([text], kind=kind)[0]  # type: ignore[arg-type]

    def _encode_items(self, items: Sequence[ItemRecord]) -> np.ndarray:
        fields = self.manifest.template.fields
        frame = pd.DataFrame(
            [
                {
                    "item_id": i.item_id,
                    "title": i.title,
                    "category": i.category,
                    "description": i.description,
                    "brand": i.brand,
                    **(i.extra or {}),
                }
                for i in items
            ]
        )
        for f in fields:
            if f not in frame:
                frame[f] = ""
        with self._encode_lock:
            return self.encoder.encode(self.manifest.template.render(frame), kind="passage")

    # -- pages of the catalog (GET /items) ---------------------------------------------------------------------
    def items_after(self, after: int, limit: int) -> tuple[list[tuple[int, str, str, str]], bool]:
        """Up to `limit` live items with a row above `after`, in row order, as (row, item_id, title, category),
        and whether more follow."""
        with self._rw.read():
            start = max(after + 1, 0)
            rows = (np.flatnonzero(self._alive[start:])[: limit + 1] + start).tolist()
            page = [(r, self._item_ids[r], self._titles[r], self._categories[r]) for r in rows[:limit]]
            return page, len(rows) > limit


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-12)
