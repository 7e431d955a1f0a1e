"""Item and user text templates: exact renderings, missing values, limits, stable ids, setting checks."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from zsrec.encoders import ItemTextTemplate, UserTextTemplate
from zsrec.errors import ConfigError


@pytest.fixture()
def items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3"],
            "title": ["Trail Tent 2P", "Rice cooker!", "智能手表"],
            "category": ["Outdoor > Camping > Tents", "", "数码 > 智能穿戴"],
            "description": ["Light  tent\nfor two.", None, "心率监测"],
            "brand": ["Acme", float("nan"), ""],
            "color": ["green", "white", pd.NA],
        }
    )


def test_default_item_rendering(items: pd.DataFrame) -> None:
    assert ItemTextTemplate().render(items) == [
        "Trail Tent 2P. Brand: Acme. Category: Outdoor > Camping > Tents. Light tent for two.",
        "Rice cooker!",
        "智能手表. Category: 数码 > 智能穿戴. 心率监测.",
    ]


def test_field_order_levels_separator_and_extra_columns(items: pd.DataFrame) -> None:
    template = ItemTextTemplate(
        fields=("category", "title", "color"), category_levels=2, category_separator=" / "
    )
    assert template.render(items) == [
        "Category: Outdoor / Camping. Trail Tent 2P. Color: green.",
        "Rice cooker! Color: white.",
        "Category: 数码 / 智能穿戴. 智能手表.",
    ]


def test_description_is_cut_at_a_word_boundary_or_hard_for_cjk() -> None:
    frame = pd.DataFrame(
        {"title": ["A", "B"], "description": ["word " * 30, "长" * 50]}
    )
    english, chinese = ItemTextTemplate(fields=("description",), max_description_chars=22).render(frame)
    assert english == "word word word word…"
    assert chinese == "长" * 22 + "…"
    full = ItemTextTemplate(fields=("description",), max_description_chars=None).render(frame)
    assert full[1] == "长" * 50 + "."


def test_id_is_stable_and_tracks_every_setting() -> None:
    base = ItemTextTemplate()
    assert base.id == ItemTextTemplate().id
    # A literal: cache keys and past result files depend on this value not drifting between versions.
    assert base.id == "item-487d913c28f8"
    assert UserTextTemplate().id == "user-eacbc4290ab0"
    others = {
        ItemTextTemplate(fields=("title",)).id,
        ItemTextTemplate(max_description_chars=100).id,
        ItemTextTemplate(category_levels=1).id,
        ItemTextTemplate(category_separator=" / ").id,
        ItemTextTemplate(field_separator="\n").id,
    }
    assert base.id not in others and len(others) == 5
    from_json = ItemTextTemplate(fields=["title", "brand"])  # type: ignore[arg-type]  # lists are accepted
    assert from_json.id == ItemTextTemplate(fields=("title", "brand")).id
    as_dict = base.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["id"] == base.id and as_dict["fields"] == ["title", "brand", "category", "description"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": ()}, "fields must name at least one column, got ()"),
        ({"fields": ("title", "title")}, "fields must not repeat a column"),
        ({"fields": ("title", "")}, "fields must be a tuple of non-empty column names"),
        ({"max_description_chars": 0}, "max_description_chars must be None or an integer >= 1, got 0"),
        ({"category_levels": -1}, "category_levels must be None or an integer >= 1, got -1"),
        ({"category_separator": ""}, "category_separator must be a non-empty string, got ''"),
    ],
)
def test_item_template_settings_are_checked(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        ItemTextTemplate(**kwargs)
    assert message in str(err.value)


def test_render_names_a_missing_column(items: pd.DataFrame) -> None:
    message = r"ItemTextTemplate.fields names columns the frame lacks: \['size'\]"
    with pytest.raises(ConfigError, match=message):
        ItemTextTemplate(fields=("title", "size")).render(items)


@pytest.fixture()
def users() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "profile": ["Loves hiking and camping", "", None],
            "age_band": ["25-34", "45-54", None],
            "city": ["Lyon", float("nan"), ""],
        }
    )


def test_user_rendering_profile_then_attributes_and_empty_when_unknown(users: pd.DataFrame) -> None:
    assert UserTextTemplate().render(users) == [
        "Loves hiking and camping. Age band: 25-34. City: Lyon.",
        "Age band: 45-54.",
        "",
    ]
    city_only = UserTextTemplate(include_profile=False, attributes=("city",))
    assert city_only.render(users) == ["City: Lyon.", "", ""]
    assert UserTextTemplate(attributes=()).render(users) == ["Loves hiking and camping.", "", ""]
    assert UserTextTemplate(max_profile_chars=12).render(users)[0].startswith("Loves hiking… Age band")


def test_user_template_settings_and_ids(users: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="attributes must not list \\['user_id'\\]"):
        UserTextTemplate(attributes=("user_id", "city"))
    with pytest.raises(ConfigError, match="max_profile_chars must be None or an integer >= 1, got 0"):
        UserTextTemplate(max_profile_chars=0)
    with pytest.raises(ConfigError, match="lacks: \\['gender'\\]"):
        UserTextTemplate(attributes=("gender",)).render(users)
    assert UserTextTemplate().id.startswith("user-")
    assert UserTextTemplate().id != UserTextTemplate(attributes=()).id
    assert UserTextTemplate().to_dict()["attributes"] is None


def test_templates_round_trip_through_json() -> None:
    templates = (ItemTextTemplate(fields=("title", "color"), category_levels=2), UserTextTemplate(attributes=("city",)))
    for template in templates:
        restored = type(template).from_dict(json.loads(json.dumps(template.to_dict())))
        assert restored == template and restored.id == template.id
    with pytest.raises(ConfigError, match=r"unknown ItemTextTemplate settings \['max_chars'\]"):
        ItemTextTemplate.from_dict({"max_chars": 10})
