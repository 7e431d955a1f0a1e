"""The model folder's own model behind the service: what `/recommend` scores with, kept in step with live writes.

The service keeps its catalog in the store by *row* (zsrec.service.store); the model works on item and user
*indexes*. Rows 1..n of a fresh service folder are the n items (and users) the model was fitted on, in order,
so index = row - 1 for them. An item posted live is appended to the model (`AcceptsNewItems.add_items`) under a
new index; an item replaced by a new text gets a new index too (the old one stays behind, out of every pool),
and a deleted item leaves every pool. Events reach the model through `partial_fit`, new users through
`add_users`, so every write counts from the next request on.

Ranking: below the index threshold every live item is scored by the model itself (`Recommender.recommend` over
the pool, exactly what `recommend_users` ranks). Above it the vector index proposes a generous candidate set and
the model scores those; a model whose parts are standardised over the candidates (`ScoresAgainstReference`)
takes the standardisation from a fixed random sample of the pool, so that the short list is ranked as it would
be in the whole pool. How often this finds the exact top-10 is measured on sampled users (`served_recall`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from zsrec.errors import ConfigError
from zsrec.models.base import AcceptsNewItems, Recommender, ScoresAgainstReference, mask_seen
from zsrec.models.registry import load_model, saved_model_classes
from zsrec.service.store import CatalogStore, ItemRecord

#: what /health and service.json say of a folder without a model of its own (written by write_service_folder)
SEMANTIC = "semantic"


@dataclass(frozen=True)
class RescoringSettings:
    """How many index candidates the model re-scores, against how large a reference sample of the pool."""

    candidates: int = 1000  # index candidates per request, scored exactly by the model
    reference: int = 1024  # pool items a candidate list is standardised against (ScoresAgainstReference)
    recall_users: int = 50  # users sampled to measure the served top-10 against the exact ranking
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("candidates", "reference", "recall_users"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


def model_name(folder: Path) -> str | None:
    """The model a folder was trained as (`zsrec train --model`: training.json, else service.json, else the
    config.json of the class that scores), or None for a bare service folder (no config.json)."""
    config = _json(folder / "config.json")
    if config is None:
        return None
    record = _json(folder / "training.json") or {}
    manifest = _json(folder / "service.json") or {}
    return str(record.get("model") or manifest.get("model") or config.get("model"))


def check_servable(folder: Path) -> str | None:
    """The model `zsrec serve` would load from `folder` (None: a bare service folder, served by the semantic
    cosine it declares), or ConfigError saying in one line why it cannot be served. Reads no model arrays."""
    config = _json(folder / "config.json")
    if config is None:
        return None
    saved = str(config.get("model"))
    if not any(saved in cls.loadable_names() for cls in saved_model_classes()):
        raise ConfigError(f"{folder} holds a {saved!r} model, which zsrec cannot load, so it cannot be served")
    if not (folder / "ids.json").is_file():
        raise ConfigError(
            f"{folder} holds a {saved} model saved without its item and user ids (an older zsrec): "
            "train it again to serve it"
        )
    return model_name(folder)


def _json(path: Path) -> dict | None:
    """A JSON object file, None when absent; ConfigError when it is not one."""
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path} is not readable JSON: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return values


class ServedModel:
    """The loaded model and the row <-> index maps between it and the store; callers serialise writes and hold
    the engine's lock (reads shared, writes exclusive)."""

    def __init__(
        self, model: Recommender, n_items: int, n_users: int, settings: RescoringSettings, name: str | None = None
    ) -> None:
        self.model, self.settings = model, settings
        self.name = name or model.name  # as trained (`zero-shot`), not the class that scores (`zero-shot-custom`)
        self.takes_live_items = isinstance(model, AcceptsNewItems)
        self._row_of_index = np.arange(1, n_items + 1, dtype=np.int64)  # model item index -> store row
        self._index_of_row = np.concatenate([[-1], np.arange(n_items, dtype=np.int64)])  # store row -> index
        self._live = np.ones(n_items, dtype=bool)  # per index: the current version of a live item
        self._user_index = {row: row - 1 for row in range(1, n_users + 1)}  # store user row -> model user index
        self._reference: np.ndarray | None = None
        self._full_pool: np.ndarray | None = None

    # -- loading -------------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, folder: Path, store: CatalogStore, n_items: int, n_users: int, n_events: int, settings: RescoringSettings
    ) -> ServedModel:
        """Load `folder`'s model, check that it is the one the store was written for, and replay the writes the
        store holds beyond it (items and events posted live before this start)."""
        name = check_servable(folder)
        try:
            model = load_model(folder)
        except (OSError, ValueError, KeyError) as error:
            raise ConfigError(f"cannot serve {folder}: its model does not load ({error})") from error
        ids = model.ids_
        assert ids is not None  # check_servable saw ids.json
        if (len(ids.items), len(ids.users)) != (n_items, n_users) or store.item_ids_by_row(n_items) != [
            str(i) for i in ids.items
        ]:
            raise ConfigError(
                f"cannot serve {folder}: its service.db was not written for its {model.name} model "
                f"({n_items} items and {n_users} users there, {len(ids.items)} and {len(ids.users)} in the model)"
            )
        served = cls(model, n_items, n_users, settings, name)
        served._replay(store, n_items, n_events)
        return served

    def _replay(self, store: CatalogStore, n_items: int, n_events: int) -> None:
        changed = store.live_items(since_version=1)  # posted or replaced after the folder was written
        if len(changed.rows):
            self.require_live_items(f"its store holds {len(changed.rows)} items posted live")
            self.add_items(changed.rows, store.item_records(changed.rows.tolist()), changed.vectors)
        dead = np.setdiff1d(np.arange(1, n_items + 1), store.live_items().rows)
        self.remove(dead)
        users = [(row, user_id) for row, user_id, _ in store.users() if row not in self._user_index]
        if users:
            self.add_users([row for row, _ in users], [user_id for _, user_id in users])
        events = list(store.events())[n_events:]
        if events:
            self.add_events([u for u, _ in events], [i for _, i in events])

    def accepts_vectors_of(self, template_id: str) -> bool:
        """Whether the service's item vectors (encoded with the item template `template_id`) are what the model's
        `add_items` would compute itself; if not, the model encodes posted items with its own template."""
        return template_id in _template_ids(self.model)

    def require_live_items(self, why: str) -> None:
        if not self.takes_live_items:
            raise ConfigError(
                f"the served {self.name} model cannot take new items or users ({why}): it has no add_items; "
                "retrain it on the new catalog instead"
            )

    # -- writes --------------------------------------------------------------------------------------------
    def add_items(self, rows: np.ndarray, records: Sequence[ItemRecord], vectors: np.ndarray | None) -> None:
        """Append the items at store `rows` (new, or new versions of existing ones) to the model."""
        self.require_live_items("items were posted")
        frame = pd.DataFrame(
            [
                {
                    "item_id": r.item_id,
                    "title": r.title,
                    "category": r.category,
                    "description": r.description,
                    "brand": r.brand,
                    **(r.extra or {}),
                }
                for r in records
            ]
        )
        assert isinstance(self.model, AcceptsNewItems)
        new = np.asarray(self.model.add_items(frame, vectors), dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        self.remove(rows)  # an earlier version of a replaced item leaves the pools
        if rows.max(initial=0) >= len(self._index_of_row):
            grow = np.full(int(rows.max()) + 1 - len(self._index_of_row) + 1024, -1, dtype=np.int64)
            self._index_of_row = np.concatenate([self._index_of_row, grow])
        self._index_of_row[rows] = new
        self._row_of_index = np.concatenate([self._row_of_index, rows])
        self._live = np.concatenate([self._live, np.ones(len(new), dtype=bool)])
        self._reference = self._full_pool = None

    def remove(self, rows: np.ndarray) -> None:
        """Take the items at store `rows` out of every pool (the model keeps them for histories)."""
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[rows < len(self._index_of_row)]
        index = self._index_of_row[rows]
        self._live[index[index >= 0]] = False
        self._reference = self._full_pool = None

    def add_users(self, rows: Sequence[int], user_ids: Sequence[str]) -> None:
        self.require_live_items("users were created")
        assert isinstance(self.model, AcceptsNewItems)
        for row, index in zip(rows, self.model.add_users(list(user_ids)).tolist(), strict=True):
            self._user_index[int(row)] = int(index)

    def add_events(self, user_rows: Sequence[int], item_rows: Sequence[int]) -> None:
        """Feed events (store rows) to the model's `partial_fit`: they count from the next request on."""
        users = np.asarray([self._user_index[int(u)] for u in user_rows], dtype=np.int64)
        items = self._index_of_row[np.asarray(item_rows, dtype=np.int64)]
        self.model.partial_fit(pd.DataFrame({"user": users, "item": items}))

    # -- ranking -------------------------------------------------------------------------------------------
    def knows(self, user_row: int) -> bool:
        return user_row in self._user_index

    def pool(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Model indexes of the live items (at `rows` only, for a category filter), ascending."""
        if rows is None:
            if self._full_pool is None:  # kept until the next write: a request at 1M items should not rebuild it
                self._full_pool = np.flatnonzero(self._live)
            return self._full_pool
        rows = np.asarray(rows, dtype=np.int64)
        index = self._index_of_row[rows[rows < len(self._index_of_row)]]
        index = index[index >= 0]
        return np.sort(index[self._live[index]])

    def rank(
        self,
        user_row: int,
        k: int,
        *,
        pool: np.ndarray,
        exclude_seen: bool = True,
        candidate_rows: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(store rows, scores) of the user's top-`k` among `pool` (model indexes), best first: every item of the
        pool scored, or only the `candidate_rows` the index proposed."""
        user = np.asarray([self._user_index[int(user_row)]], dtype=np.int64)
        if candidate_rows is None:
            if len(pool) == 0:
                return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
            ranking = self.model.recommend(user, k=k, candidates=pool, exclude_seen=exclude_seen)
            items, scores = ranking.items[0], ranking.scores[0]
        else:
            items = self._index_of_row[np.asarray(candidate_rows, dtype=np.int64)]
            items = items[(items >= 0)]
            items = items[self._live[items]]
            scores = self._score(user, items, pool).astype(np.float32, copy=True)
            if exclude_seen:
                mask_seen(scores, user, items, self.model.histories_)
            order = np.argsort(-scores[0], kind="stable")[:k]
            items, scores = items[order], scores[0][order]
        keep = np.isfinite(scores)
        return self._row_of_index[items[keep]], scores[keep]

    def _score(self, user: np.ndarray, items: np.ndarray, pool: np.ndarray) -> np.ndarray:
        if not isinstance(self.model, ScoresAgainstReference):
            return np.asarray(self.model.score(user, items))
        return self.model.score_against(user, items, self._reference_of(pool))

    def _reference_of(self, pool: np.ndarray) -> np.ndarray:
        """A fixed random sample of the pool (all of it when small) to standardise a short list against."""
        size = self.settings.reference
        if len(pool) <= size:
            return pool
        whole = pool is self._full_pool
        if whole and self._reference is not None:
            return self._reference
        rng = np.random.default_rng(self.settings.seed)
        sample = np.sort(rng.choice(pool, size=size, replace=False))
        if whole:
            self._reference = sample
        return sample


def _template_ids(model: object) -> set[str]:
    """The ids of the item text templates a model and its parts encode with (a wrapper's `model_`, `base_`)."""
    found, stack = set(), [model]
    while stack:
        current = stack.pop()
        settings = getattr(current, "settings", None)
        for holder in (settings, getattr(settings, "base", None)):
            template = getattr(holder, "template", None)
            if template is not None and hasattr(template, "id"):
                found.add(str(template.id))
        stack += [getattr(current, name) for name in ("model_", "base_") if hasattr(current, name)]
    return found
