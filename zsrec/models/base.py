"""The one contract every recommender implements: fit, score, recommend, save, load (after implicit's base).

Also the optional abilities some recommenders add (`Explainable`, `ReadsItemText`, `HasUserVectors`,
`HasMembers`, `AcceptsNewItems`, `ScoresAgainstReference`) as runtime-checkable protocols, so that callers ask
`isinstance` instead of probing attributes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd
from scipy import sparse

from zsrec._version import __version__
from zsrec.data.dataset import Dataset
from zsrec.errors import ConfigError, CorruptModelError, DataValidationError, NotFittedError, ZsrecError
from zsrec.io import atomic_write_text, load_arrays, save_arrays
from zsrec.manifest import verify_folder, write_manifest
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.ids import CatalogIds, recommend_users
from zsrec.vectors import standardise


class SettingsFromDict(Protocol):
    """A settings class that reads itself back from its JSON form."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any: ...


@dataclass(frozen=True)
class Ranking:
    """Top-k recommendations: `items[u, j]` is the j-th best item index for the u-th requested user."""

    items: np.ndarray  # (n_users, k) int64 item indexes
    scores: np.ndarray  # (n_users, k) float32, descending along each row


class Recommender(ABC):
    """Base of every recommender.

    `fit(data)` sees a `Dataset` whose `interactions` are everything the model may learn from; a user's
    history is their interactions there (in leave-category-out: everything outside the held-out categories).
    Learned state lives in attributes ending in `_`, listed in `_state` so that `save`/`load` can write them
    as `.npy` files next to a `config.json` (no pickle anywhere).
    """

    name: ClassVar[str]
    #: where a long `fit` reports progress (the Reporter protocol of zsrec.evaluation.run), set by callers such
    #: as `zsrec train`; None = silent
    reporter: Any = None
    #: names of learned attributes (numpy arrays) that save/load persist
    _state: ClassVar[tuple[str, ...]] = ()
    #: the item, user and category ids behind the indexes (set by `fit`; None in a folder saved without them)
    ids_: CatalogIds | None = None
    #: the settings class whose `from_dict` reads the settings back from config.json (None: the model has no
    #: settings, or overrides `_settings_from_dict`)
    settings_class: ClassVar[type[SettingsFromDict] | None] = None

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every save/load override goes through the manifest hooks, so no model can skip them.
        super().__init_subclass__(**kwargs)
        if "save" in cls.__dict__:
            cls.save = _writes_manifest(cls.__dict__["save"])  # type: ignore[method-assign]
        for name in ("load", "load_with_members"):
            method = cls.__dict__.get(name)
            if isinstance(method, classmethod):
                setattr(cls, name, classmethod(_checks_folder(method.__func__)))

    # -- the contract ---------------------------------------------------------------------------------
    @abstractmethod
    def fit(self, data: Dataset) -> Self:
        """Learn from `data` (and remember user histories); returns self."""

    @abstractmethod
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of shape (len(users), len(items)); higher is better. Users and items are indexes."""

    def recommend(
        self,
        users: np.ndarray,
        k: int = 10,
        candidates: np.ndarray | None = None,
        exclude_seen: bool = True,
    ) -> Ranking:
        """Top-`k` items per user among `candidates` (default: the whole catalog)."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        cand = np.arange(self.n_items_) if candidates is None else np.asarray(candidates, dtype=np.int64)
        scores = self.score(users, cand).astype(np.float32, copy=True)
        if exclude_seen:
            mask_seen(scores, users, cand, self.histories_)
        k = min(k, len(cand))
        top = (
            np.argpartition(-scores, k - 1, axis=1)[:, :k]
            if k < len(cand)
            else np.tile(np.arange(len(cand)), (len(users), 1))
        )
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        return Ranking(items=cand[top], scores=np.take_along_axis(top_scores, order, axis=1))

    def partial_fit(self, events: pd.DataFrame) -> Self:
        """Take in new interactions after `fit`: int columns `user`, `item` (indexes), optional `timestamp`.

        This default appends each event's item to its user's history (in time order, skipping items already
        there), so that `recommend` stops proposing them and history-based scores read them. Models that learn
        from interactions override it and call it too.
        """
        self._check_fitted()
        missing = {"user", "item"} - set(events.columns)
        if missing:
            raise DataValidationError(f"events need int columns user and item; missing {sorted(missing)}")
        if "timestamp" in events.columns:
            events = events.sort_values("timestamp", kind="stable")
        users, items = events["user"].to_numpy(), events["item"].to_numpy()
        for column, values, size in (("user", users, self.n_users_), ("item", items, self.n_items_)):
            if values.dtype.kind not in "iu" or (len(values) and not (0 <= values.min() and values.max() < size)):
                bad = values[:5]
                raise DataValidationError(f"events column {column} must hold int indexes in [0, {size}), got {bad}")
        for user in np.unique(users):
            history = self.histories_[int(user)]
            seen = set(history.tolist())
            added = list(dict.fromkeys(int(i) for i in items[users == user] if int(i) not in seen))
            if added:
                self.histories_[int(user)] = np.concatenate([history, np.asarray(added, dtype=np.int64)])
        return self

    def recommend_users(
        self,
        user_ids: Sequence[object],
        k: int = 10,
        *,
        new_only: bool = False,
        categories: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Top-`k` unseen items per user id, as rows `user_id, item_id, score, rank` (rank 1 = best).

        Args:
            new_only: only items with no interaction in the data the model was fitted on.
            categories: only items whose category path starts with one of these paths ("A > B") or names.

        Raises:
            ConfigError: an unknown user id or category, or a model saved without its ids.
        """
        return recommend_users(self, user_ids, k, new_only=new_only, categories=categories)

    # -- shared helpers -------------------------------------------------------------------------------
    def _remember(self, data: Dataset) -> None:
        """Store what every model needs at scoring time: catalog size and each user's history."""
        self.n_items_ = data.n_items
        self.n_users_ = data.n_users
        self.histories_ = data.histories()
        self.ids_ = CatalogIds.of(data)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit(data) before using it")

    def get_config(self) -> dict[str, Any]:
        settings = dataclasses.asdict(self.settings) if dataclasses.is_dataclass(self.settings) else None
        return {"model": self.name, "zsrec_version": __version__, "settings": settings}

    def save(self, directory: str | Path) -> None:
        """Write `config.json` and one `.npy` per learned array into `directory` (atomically, file by file)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in self._state}
        arrays["n_items_"] = np.asarray(self.n_items_)
        arrays["n_users_"] = np.asarray(self.n_users_)
        lengths = np.asarray([len(h) for h in self.histories_], dtype=np.int64)
        arrays["history_lengths_"] = lengths
        arrays["history_items_"] = (
            np.concatenate(self.histories_) if len(self.histories_) else np.empty(0, dtype=np.int64)
        )
        save_arrays(directory, arrays)
        if self.ids_ is not None:
            self.ids_.write(directory)
        atomic_write_text(directory / "config.json", json.dumps(self.get_config(), indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Rebuild a fitted model written by `save` (settings from config.json, arrays from .npy)."""
        directory = Path(directory)
        config = json.loads((directory / "config.json").read_text())
        if config.get("model") not in cls.loadable_names():
            raise ValueError(f"{directory} holds a {config.get('model')!r} model, not {cls.name!r}")
        model = cls(cls._settings_from_dict(config["settings"]))
        arrays = load_arrays(directory, (*cls._state, "n_items_", "n_users_", "history_lengths_", "history_items_"))
        for name in cls._state:
            setattr(model, name, arrays[name])
        model.n_items_ = int(arrays["n_items_"])
        model.n_users_ = int(arrays["n_users_"])
        check_histories(directory, arrays["history_lengths_"], arrays["history_items_"], model.n_users_, model.n_items_)
        bounds = np.cumsum(arrays["history_lengths_"])[:-1]
        model.histories_ = np.split(arrays["history_items_"], bounds)
        model.ids_ = CatalogIds.read(directory)
        return model

    @classmethod
    def loadable_names(cls) -> tuple[str, ...]:
        """Model names in config.json that this class can load."""
        return (cls.name,)

    @classmethod
    def _settings_from_dict(cls, values: dict[str, Any] | None) -> Any:
        """The settings saved in config.json, read back by `settings_class` (None without one)."""
        if cls.settings_class is None:
            return None
        if values is not None and not isinstance(values, dict):
            raise CorruptModelError(f"config.json: settings must be an object, got {type(values).__name__}")
        if dataclasses.is_dataclass(cls.settings_class) and values:
            known = {f.name for f in dataclasses.fields(cls.settings_class)}
            unknown = sorted(set(values) - known)
            if unknown:
                raise CorruptModelError(f"config.json: unknown settings field {unknown[0]!r} for model {cls.name!r}")
        return cls.settings_class.from_dict(values or {})


# -- manifests and value checks around every save and load ------------------------------------------------
#: folders being saved / loaded in this context: a nested save or load of the same folder (an override calling
#: `super()`, a wrapper saving its inner model) neither writes the manifest nor verifies it again
_SAVING: ContextVar[frozenset[Path]] = ContextVar("zsrec_saving", default=frozenset())
_LOADING: ContextVar[frozenset[Path]] = ContextVar("zsrec_loading", default=frozenset())


def _writes_manifest(save: Callable[..., None]) -> Callable[..., None]:
    """`save`, then (outermost call only) the folder's manifest, written last."""

    @functools.wraps(save)
    def wrapper(self: Recommender, directory: str | Path, *args: Any, **kwargs: Any) -> None:
        key = Path(directory).resolve()
        active = _SAVING.get()
        if key in active:
            return save(self, directory, *args, **kwargs)
        token = _SAVING.set(active | {key})
        try:
            save(self, directory, *args, **kwargs)
        finally:
            _SAVING.reset(token)
        write_manifest(directory)

    return wrapper


def _checks_folder(load: Callable[..., Recommender]) -> Callable[..., Recommender]:
    """`load`, after the folder's manifest is verified (outermost folder only) and followed by value checks;
    whatever a damaged file makes the readers raise becomes one CorruptModelError line naming the folder."""

    @functools.wraps(load)
    def wrapper(cls: type[Recommender], directory: str | Path, *args: Any, **kwargs: Any) -> Recommender:
        directory = Path(directory)
        key = directory.resolve()
        active = _LOADING.get()
        token = _LOADING.set(active | {key})
        try:
            if key not in active and not any(parent in active for parent in key.parents):
                verify_folder(directory)
            model = load(cls, directory, *args, **kwargs)
            check_loaded(model, directory)
        except ZsrecError as err:
            if str(directory) in str(err):
                raise
            raise type(err)(f"{directory}: {err}") from err
        except (FileNotFoundError, PermissionError, MemoryError):
            raise
        except Exception as err:  # whatever a damaged file makes numpy, json, safetensors or torch raise
            detail = " ".join(str(err).split())[:300] or type(err).__name__
            raise CorruptModelError(f"{directory}: damaged model folder ({type(err).__name__}: {detail})") from err
        finally:
            _LOADING.reset(token)
        return model

    return wrapper


def check_histories(directory: Path, lengths: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> None:
    """The saved histories must describe `n_users` users and hold item indexes in [0, n_items)."""
    if lengths.ndim != 1 or len(lengths) != n_users or (len(lengths) and lengths.min() < 0):
        raise CorruptModelError(f"{directory / 'history_lengths_.npy'}: needs {n_users} non-negative lengths")
    if items.ndim != 1 or int(lengths.sum()) != len(items):
        raise CorruptModelError(
            f"{directory / 'history_items_.npy'}: {len(items)} items, the lengths add up to {int(lengths.sum())}"
        )
    if items.dtype.kind not in "iu" or (len(items) and not (0 <= items.min() and items.max() < n_items)):
        raise CorruptModelError(f"{directory / 'history_items_.npy'}: item indexes out of range [0, {n_items})")


def check_loaded(model: Recommender, directory: Path) -> None:
    """Values a damaged folder can carry without breaking a reader: NaN or infinite floats, counts below
    zero, item vectors that do not match the catalog."""
    if not hasattr(model, "n_items_"):
        return
    if model.n_items_ < 0 or model.n_users_ < 0:
        raise CorruptModelError(f"{directory / 'n_items_.npy'}: negative catalog or user count")
    for name in type(model)._state:
        value = getattr(model, name, None)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
            raise CorruptModelError(f"{directory / (name + '.npy')}: holds NaN or infinite values")
    vectors = getattr(model, "item_vectors_", None)
    if isinstance(vectors, np.ndarray) and "item_vectors_" in type(model)._state and len(vectors) != model.n_items_:
        raise CorruptModelError(
            f"{directory / 'item_vectors_.npy'}: {len(vectors)} rows for a catalog of {model.n_items_} items"
        )


Recommender.save = _writes_manifest(Recommender.save)  # type: ignore[method-assign]
Recommender.load = classmethod(_checks_folder(Recommender.load.__func__))  # type: ignore[method-assign, assignment]


class RefitsOnInteractions(Recommender):
    """A recommender that keeps the interactions it learned from and, on `partial_fit`, refits from scratch
    (same seed) on them plus the events: for models with no cheap exact update for new items. After `load`
    the interactions are read back from the saved histories."""

    _pairs: tuple[np.ndarray, np.ndarray] | None = None

    @abstractmethod
    def _refit(self) -> None:
        """Fit the learned state from scratch on `_interaction_pairs()`."""

    def _fit_interactions(self, data: Dataset) -> None:
        """Keep `data`'s interactions as the ones learned from, then fit on them."""
        self._pairs = (data.interactions["user"].to_numpy(), data.interactions["item"].to_numpy())
        self._refit()

    def _interaction_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(users, items) learned from so far; after load, rebuilt from the saved histories."""
        if self._pairs is None:
            lengths = [len(h) for h in self.histories_]
            users = np.repeat(np.arange(self.n_users_), lengths)
            items = np.concatenate(self.histories_) if self.histories_ else np.empty(0, dtype=np.int64)
            self._pairs = (users, items)
        return self._pairs

    def partial_fit(self, events: pd.DataFrame) -> Self:
        """Refit on the interactions learned from so far plus `events`; histories grow too."""
        users, items = self._interaction_pairs()  # before the histories take in the events
        super().partial_fit(events)
        self._pairs = (
            np.concatenate([users, events["user"].to_numpy()]),
            np.concatenate([items, events["item"].to_numpy()]),
        )
        self._refit()
        return self


def history_counts(histories: list[np.ndarray], users: np.ndarray, n_items: int) -> sparse.csr_matrix:
    """(len(users), n_items) float32: 1 for each item in each user's history (all zeros for an empty one)."""
    rows, cols = [], []
    for r, u in enumerate(users):
        h = histories[int(u)]
        rows.extend([r] * len(h))
        cols.extend(h.tolist())
    return sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), n_items))


def mask_seen(scores: np.ndarray, users: np.ndarray, candidates: np.ndarray, histories: list[np.ndarray]) -> None:
    """Set scores of candidates already in each user's history to -inf, in place."""
    seen = [np.asarray(histories[int(u)], dtype=np.int64) for u in users]
    lengths = np.fromiter((len(h) for h in seen), dtype=np.int64, count=len(seen))
    if not lengths.sum() or not len(candidates):
        return
    rows = np.repeat(np.arange(len(users)), lengths)
    items = np.concatenate(seen)
    # searchsorted rather than a dict of positions: a million candidates per chunk of users stays cheap
    candidates = np.asarray(candidates, dtype=np.int64)
    ascending = bool(np.all(candidates[1:] > candidates[:-1]))
    order = np.arange(len(candidates)) if ascending else np.argsort(candidates, kind="stable")
    ordered = candidates if ascending else candidates[order]
    pos = np.minimum(np.searchsorted(ordered, items), len(ordered) - 1)
    hit = ordered[pos] == items
    scores[rows[hit], order[pos[hit]]] = -np.inf


#: builds an unfitted recommender from a registered model name (what composite models receive)
ModelBuilder = Callable[[str], "Recommender"]
#: loads a fitted recommender from a saved model folder
ModelLoader = Callable[[Path], "Recommender"]


@runtime_checkable
class Explainable(Protocol):
    """Can say, for each recommended item, which history items led to it."""

    def explain(self, user: int, items: np.ndarray, top: int = 3) -> list[list[tuple[int, float]]]:
        """Per item: up to `top` (history item, contribution) pairs, strongest first."""
        ...


@runtime_checkable
class ReadsItemText(Protocol):
    """A fitted model that can re-read (tampered) item text without being refitted."""

    def with_item_text(self, data: Dataset) -> Recommender:
        """A copy of this fitted model whose item vectors come from `data`'s item text."""
        ...


@runtime_checkable
class HasUserVectors(Protocol):
    """Places users and items in one text-embedding space (the zero-shot models)."""

    item_vectors_: np.ndarray

    @property
    def embeddings(self) -> EmbeddingSource: ...

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        """One unit vector per user, in the items' space."""
        ...


@runtime_checkable
class HasMembers(Protocol):
    """Made of other saved models (ensemble members, a re-ranker's base): loading it loads them too."""

    @classmethod
    def load_with_members(cls, directory: str | Path, load_member: ModelLoader) -> Recommender:
        """`load`, with `load_member` reading each member's folder."""
        ...


@runtime_checkable
class AcceptsNewItems(Protocol):
    """Takes items and users added after `fit` (a live catalog), scoring them with every part fitted at training
    time: their text goes through the fitted vectorisers and encoder, and category statistics follow.

    Items and users are appended: existing indexes never move. Nothing is retrained.
    """

    def add_items(self, items: pd.DataFrame, vectors: np.ndarray | None = None) -> np.ndarray:
        """Append `items` (catalog rows: item_id, title, category, ...) and return their new indexes.

        `vectors`: their text embeddings by the model's encoder and item template, when the caller already has
        them (row i = items' row i, unit length); None = the model encodes the text itself.
        """
        ...

    def add_users(self, user_ids: Sequence[str]) -> np.ndarray:
        """Append users with empty histories (their events come through `partial_fit`); returns their indexes."""
        ...


@runtime_checkable
class ScoresAgainstReference(Protocol):
    """A model whose score standardises its parts over the candidates scored together (so a candidate's score
    depends on the others). `score_against` takes the standardisation from a separate `reference` set instead:
    scoring a short list against a sample of the whole pool approximates the score in the whole pool, and with
    `reference` = the pool it is exactly `score(users, pool)` restricted to `items`."""

    def score_against(self, users: np.ndarray, items: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """(len(users), len(items)) scores, each part standardised by its mean and spread over `reference`."""
        ...


def standardise_against(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`values` z-scored per row by the mean and standard deviation of the same row of `reference`
    (`standardise(values)` when `reference` is `values`)."""
    if reference is values:
        return standardise(values)
    ref = np.asarray(reference, dtype=np.float32)
    mean = ref.mean(axis=1, keepdims=True)
    std = ref.std(axis=1, keepdims=True)
    std[std == 0] = 1.0
    return (np.asarray(values, dtype=np.float32) - mean) / std


def append_item_ids(model: Recommender, items: pd.DataFrame) -> np.ndarray:
    """Grow a fitted model's catalog by `items` (ids, categories, item count): the part of `add_items` every
    model shares. Returns the new indexes. An id already in the catalog is refused (a replaced item comes in
    under a new index only through the caller's own mapping)."""
    model._check_fitted()
    if model.ids_ is None:
        raise ConfigError(f"this {model.name} model was saved without its item ids; it cannot take new items")
    missing = {"item_id"} - set(items.columns)
    if missing:
        raise DataValidationError(f"new items need an item_id column; missing {sorted(missing)}")
    start = model.n_items_
    new_ids = items["item_id"].fillna("").astype(str).to_numpy(dtype=object)
    categories = (
        items["category"].fillna("").astype(str).to_numpy(dtype=object)
        if "category" in items
        else np.full(len(items), "", dtype=object)
    )
    model.ids_ = dataclasses.replace(
        model.ids_,
        items=np.concatenate([model.ids_.items, new_ids]),
        categories=np.concatenate([model.ids_.categories, categories]),
    )
    model.n_items_ = start + len(items)
    return np.arange(start, model.n_items_, dtype=np.int64)


def append_users(model: Recommender, user_ids: Sequence[str]) -> np.ndarray:
    """Grow a fitted model's users by `user_ids` with empty histories; returns their new indexes."""
    model._check_fitted()
    if model.ids_ is None:
        raise ConfigError(f"this {model.name} model was saved without its user ids; it cannot take new users")
    start = model.n_users_
    model.ids_ = dataclasses.replace(
        model.ids_, users=np.concatenate([model.ids_.users, np.asarray([str(u) for u in user_ids], dtype=object)])
    )
    if len(model.histories_) == start:  # a history list shared with a part may have grown already
        model.histories_.extend(np.empty(0, dtype=np.int64) for _ in user_ids)
    model.n_users_ = start + len(user_ids)
    return np.arange(start, model.n_users_, dtype=np.int64)


def append_users_with_profiles(model: Recommender, user_ids: Sequence[str]) -> np.ndarray:
    """`append_users`, and an empty (zero) profile-text vector for each new user where the model has profiles."""
    new = append_users(model, user_ids)
    profiles = model.profile_vectors_  # type: ignore[attr-defined]
    if len(profiles):
        zeros = np.zeros((len(new), profiles.shape[1]), dtype=np.float32)
        model.profile_vectors_ = np.vstack([profiles, zeros])  # type: ignore[attr-defined]
    return new


def append_rows(owner: object, name: str, rows: np.ndarray) -> None:
    """Set `owner.<name>` to its rows followed by `rows`, in amortised O(len(rows)) time.

    The attribute becomes a view into a buffer with room for an eighth more (at least 1,024 rows), so that a live
    catalog growing item by item does not copy a million-row matrix on every post.
    """
    current = getattr(owner, name)
    buffers = owner.__dict__.setdefault("_row_buffers", {})
    buffer = buffers.get(name)
    n, m = len(current), len(current) + len(rows)
    if buffer is None or current.base is not buffer or len(buffer) < m or buffer.shape[1:] != current.shape[1:]:
        buffer = np.empty((m + max(m // 8, 1024), *current.shape[1:]), dtype=current.dtype)
        buffer[:n] = current
        buffers[name] = buffer
    buffer[n:m] = rows
    setattr(owner, name, buffer[:m])


#: the catalog's text columns; new items may leave any of them out
TEXT_COLUMNS = ("title", "category", "description", "brand")


def with_text_columns(items: pd.DataFrame) -> pd.DataFrame:
    """`items` with every missing text column added as empty text (a posted item need not have a brand)."""
    missing = [c for c in TEXT_COLUMNS if c not in items.columns]
    return items.assign(**dict.fromkeys(missing, "")) if missing else items
