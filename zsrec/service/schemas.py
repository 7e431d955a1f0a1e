"""Request and response bodies of the HTTP API (pydantic): limits here are the service's first line of defence.

Numbers and flags are strict: "10", true and 1e3 are not a `k`. Ids are NFC-normalised (the same text typed on
two systems names one item) and refused when they hold control or invisible characters (an id that cannot be
seen cannot be checked by the person who deletes it). The JSON schema states these rules too (patterns), so a
client generated from the OpenAPI document, or a fuzzer, sees what the server accepts.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator

MAX_K = 1000
MAX_BATCH = 1000
MAX_QUERIES = 100  # queries in one batch /recommend
MAX_PAGE = 1000  # items in one page of GET /items
# Unicode categories refused in ids: control (Cc), format (Cf: zero-width spaces and joiners, bidi marks),
# line and paragraph separators (Zl, Zp), surrogates (Cs)
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# The same rule for the JSON schema (a subset of it, so whatever the schema refuses the server refuses too)
_UNSEEN = "\\x00-\\x1f\\x7f-\\x9f\\u00ad\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2064\\ufeff"
ID_PATTERN = f"^[^{_UNSEEN}]*[^\\s{_UNSEEN}][^{_UNSEEN}]*$"
TEXT_PATTERN = "^[^\\x00]*[^\\x00\\s][^\\x00]*$"
LONG_TEXT_PATTERN = "^[^\\x00]*$"


def _clean_text(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800") that no UTF-8 consumer (SQLite, the tokenizer) accepts; NUL
    # truncates strings in C libraries. Both are refused here, as a 422, rather than failing deeper.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from error
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


def _strip_nonempty(value: str) -> str:
    value = _clean_text(value).strip()
    if not value:
        raise ValueError("must not be empty or blank")
    return value


def _clean_id(value: str) -> str:
    value = unicodedata.normalize("NFC", _strip_nonempty(value))
    bad = next((c for c in value if unicodedata.category(c) in _INVISIBLE), None)
    if bad is not None:
        raise ValueError(f"ids must not contain control or invisible characters (found U+{ord(bad):04X})")
    return value


def _pattern(pattern: str) -> Field:  # type: ignore[valid-type]
    return Field(json_schema_extra={"pattern": pattern})


Id = Annotated[str, Field(min_length=1, max_length=256), _pattern(ID_PATTERN), AfterValidator(_clean_id)]
Title = Annotated[str, Field(min_length=1, max_length=1_000), _pattern(TEXT_PATTERN), AfterValidator(_strip_nonempty)]
Category = Annotated[
    str, Field(min_length=1, max_length=1_000), _pattern(TEXT_PATTERN), AfterValidator(_strip_nonempty)
]
LongText = Annotated[str, Field(max_length=20_000), _pattern(LONG_TEXT_PATTERN), AfterValidator(_clean_text)]
QueryText = Annotated[
    str, Field(min_length=1, max_length=20_000), _pattern(TEXT_PATTERN), AfterValidator(_strip_nonempty)
]
K = Annotated[int, Field(ge=1, le=MAX_K, strict=True, description="how many results")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _one_of(*names: str) -> ConfigDict:
    """The settings of a body that takes exactly one of `names`: extra fields refused, and the rule in the
    JSON schema too (one of the names present and not null), so that generated clients see it."""
    branches = [{"required": [n], "properties": {n: {"not": {"type": "null"}}}} for n in names]
    return ConfigDict(extra="forbid", json_schema_extra={"oneOf": branches})


def _exactly_one(model: BaseModel, names: tuple[str, ...]) -> None:
    given = [n for n in names if getattr(model, n) is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(names)}; got {given or 'none'}")


# -- requests --------------------------------------------------------------------------------------------
class RecommendRequest(_Strict):
    model_config = _one_of("user_id", "history", "profile")
    user_id: Id | None = None
    history: Annotated[list[Id], Field(min_length=1, max_length=MAX_BATCH)] | None = Field(
        default=None, description="item ids, oldest first, for a visitor the service does not know"
    )
    profile: QueryText | None = Field(default=None, description="free text about the user")
    k: K = 10
    categories: Annotated[list[Category], Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="only items in these categories (a name covers its sub-categories)"
    )
    exclude_seen: StrictBool = True

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        _exactly_one(self, ("user_id", "history", "profile"))
        return self


_EXTRA_VALUE = {"anyOf": [{"type": "string", "maxLength": 5_000}, {"type": "number"}, {"type": "boolean"}]}


class ItemIn(BaseModel):
    """A catalog item; attributes beyond the named ones are kept as text (e.g. "color": "red")."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"additionalProperties": _EXTRA_VALUE, "maxProperties": 55}
    )
    item_id: Id
    title: Title
    category: Category
    description: LongText = ""
    brand: Annotated[str, Field(max_length=1_000), _pattern(LONG_TEXT_PATTERN), AfterValidator(_clean_text)] = ""

    @model_validator(mode="after")
    def _extra_as_text(self) -> Self:
        extra = self.model_extra or {}
        if len(extra) > 50:
            raise ValueError(f"at most 50 extra attributes, got {len(extra)}")
        for key, value in extra.items():
            if not isinstance(value, str | int | float | bool) or len(str(value)) > 5_000:
                raise ValueError(f"extra attribute {key!r} must be a string or number of at most 5000 characters")
            _clean_text(key)
            _clean_text(str(value))
        return self

    def extra_text(self) -> dict[str, str]:
        return {k: str(v) for k, v in (self.model_extra or {}).items() if str(v).strip()}


class ItemsRequest(_Strict):
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=MAX_BATCH)]


class SimilarRequest(_Strict):
    model_config = _one_of("item_id", "text")
    item_id: Id | None = None
    text: QueryText | None = None
    k: K = 10
    other_categories_only: StrictBool = Field(default=False, description="leave out items of the query item's category")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        _exactly_one(self, ("item_id", "text"))
        return self


class AudienceRequest(_Strict):
    model_config = _one_of("text", "item_id", "category")
    text: QueryText | None = None
    item_id: Id | None = None
    category: Category | None = None
    k: K = 10

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        _exactly_one(self, ("text", "item_id", "category"))
        return self


class EventIn(_Strict):
    user_id: Id
    item_id: Id
    timestamp: Annotated[float, Field(allow_inf_nan=False, strict=True)] | None = None
    event: Annotated[str, Field(max_length=64), _pattern(LONG_TEXT_PATTERN), AfterValidator(_clean_text)] | None = None


class EventsRequest(_Strict):
    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_BATCH)]


# -- responses -------------------------------------------------------------------------------------------
class Health(BaseModel):
    status: str
    model_id: str  # the model that scores known users: the folder's, or "semantic" for a bare service folder
    encoder: str
    items: int
    users: int
    index: str
    index_recall_at_10: float  # the vector index alone, against exact cosine
    # share of the exact top-10 (the model scoring every live item) in the served top-10 (index candidates
    # re-scored by the model), on sampled users; 1.0 when every item is scored; null while being measured
    served_recall_at_10: float | None = None
    store_version: int


class Because(BaseModel):
    item_id: str
    title: str
    contribution: float


class ScoredItem(BaseModel):
    item_id: str
    title: str
    category: str
    score: float
    because: list[Because] = Field(description="history items that contributed most to the score")


class RecommendResponse(BaseModel):
    items: list[ScoredItem]


class SimilarItem(BaseModel):
    item_id: str
    title: str
    category: str
    score: float


class SimilarResponse(BaseModel):
    items: list[SimilarItem]


class ScoredUser(BaseModel):
    user_id: str
    score: float  # soft count of history items close to the ad, as `zsrec audience` scores
    history_size: int  # distinct live items in the user's history


class AudienceResponse(BaseModel):
    users: list[ScoredUser]


class ItemsResponse(BaseModel):
    upserted: int
    item_ids: list[str]
    items_total: int


class DeleteResponse(BaseModel):
    deleted: str
    items_total: int


class EventsResponse(BaseModel):
    recorded: int
    users_created: int


# -- operations: batch, pagination, deletion by body, probes, errors -------------------------------------------
class BatchRecommendRequest(_Strict):
    queries: Annotated[list[RecommendRequest], Field(min_length=1, max_length=MAX_QUERIES)]


class BatchAnswer(BaseModel):
    """One query's answer: its status (200, or the 404/422 the query would get alone) and items or detail."""

    status: int
    items: list[ScoredItem] = Field(default_factory=list)
    detail: str | None = None


class BatchRecommendResponse(BaseModel):
    results: list[BatchAnswer] = Field(description="one answer per query, in the order of the queries")


class ItemSummary(BaseModel):
    item_id: str
    title: str
    category: str


class ItemPage(BaseModel):
    items: list[ItemSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class DeleteRequest(_Strict):
    item_id: Id


class Probe(BaseModel):
    status: str


class Error(BaseModel):
    """Every error answer: one line saying what was wrong."""

    detail: str
