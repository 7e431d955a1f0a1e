"""Request and response bodies of the HTTP API (pydantic): limits here are the service's first line of defence."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_K = 1000
MAX_BATCH = 1000


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


Id = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_strip_nonempty)]
Title = Annotated[str, Field(min_length=1, max_length=1_000), AfterValidator(_strip_nonempty)]
Category = Annotated[str, Field(min_length=1, max_length=1_000), AfterValidator(_strip_nonempty)]
LongText = Annotated[str, Field(max_length=20_000), AfterValidator(_clean_text)]
QueryText = Annotated[str, Field(min_length=1, max_length=20_000), AfterValidator(_strip_nonempty)]
K = Annotated[int, Field(ge=1, le=MAX_K, description="how many results")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _exactly_one(model: BaseModel, names: tuple[str, ...]) -> None:
    given = [n for n in names if getattr(model, n) is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(names)}; got {given or 'none'}")


# -- requests --------------------------------------------------------------------------------------------
class RecommendRequest(_Strict):
    user_id: Id | None = None
    history: Annotated[list[Id], Field(min_length=1, max_length=MAX_BATCH)] | None = Field(
        default=None, description="item ids, oldest first, for a visitor the service does not know"
    )
    profile: QueryText | None = Field(default=None, description="free text about the user")
    k: K = 10
    categories: Annotated[list[Category], Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="only items in these categories (a name covers its sub-categories)"
    )
    exclude_seen: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        _exactly_one(self, ("user_id", "history", "profile"))
        return self


class ItemIn(BaseModel):
    """A catalog item; attributes beyond the named ones are kept as text (e.g. "color": "red")."""

    model_config = ConfigDict(extra="allow")
    item_id: Id
    title: Title
    category: Category
    description: LongText = ""
    brand: Annotated[str, Field(max_length=1_000), AfterValidator(_clean_text)] = ""

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
    item_id: Id | None = None
    text: QueryText | None = None
    k: K = 10
    other_categories_only: bool = Field(default=False, description="leave out items of the query item's category")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        _exactly_one(self, ("item_id", "text"))
        return self


class AudienceRequest(_Strict):
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
    timestamp: Annotated[float, Field(allow_inf_nan=False)] | None = None
    event: Annotated[str, Field(max_length=64), AfterValidator(_clean_text)] | None = None


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
