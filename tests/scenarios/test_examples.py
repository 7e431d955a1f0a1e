"""The demo's scenario examples on the two-department shop: each block present and right."""

from __future__ import annotations

from zsrec.data.splits import SplitSettings, leave_category_out_split
from zsrec.scenarios.examples import example_lines, scenario_examples


def test_one_example_of_each_scenario(shop2, embeddings) -> None:
    split = leave_category_out_split(shop2, SplitSettings(level=2, categories=("Lanterns", "Mugs"), min_history=3))
    ex = scenario_examples(
        shop2,
        split,
        embeddings,
        ad_text="lantern for camping outdoor",
        ad_category="Outdoor > Lanterns",
        profile_user=1,
    )
    assert [c for c, _, _ in ex.forecast] == ["Outdoor > Lanterns", "Kitchen > Mugs"]
    assert [a for _, _, a in ex.forecast] == [23, 23]  # a quarter of each department's 30 users skip each
    assert all(abs(e - a) <= 0.3 * a for _, e, a in ex.forecast)
    assert all(int(m.user_id[1:]) % 2 == 0 for m in ex.audience)  # the ad reaches campers
    assert len(ex.audience_bought) == len(ex.audience) and abs(ex.ad_category_rate - 23 / 60) < 1e-9
    assert all(s.category.split(" > ")[0] != ex.similar_query.category.split(" > ")[0] for s in ex.similar)
    assert ex.profile and all(not t.in_history for t in ex.profile)
    assert all(t.category.startswith("Kitchen > ") for t in ex.profile)  # user 1 cooks
    text = "\n".join(example_lines(ex))
    for heading in ("Trend forecast", "Audience for the ad", "Cross-category", "Interest profile"):
        assert heading in text


def test_forecast_example_uses_the_method_chosen_on_validation(shop2, embeddings) -> None:
    split = leave_category_out_split(shop2, SplitSettings(level=2, categories=("Lanterns", "Mugs"), min_history=3))
    ex = scenario_examples(
        shop2, split, embeddings, ad_text="lantern", ad_category="Outdoor > Lanterns", profile_user=1
    )
    assert [f.category for f in ex.chosen_forecasts] == ["Outdoor > Lanterns", "Kitchen > Mugs"]
    assert all(f.low <= f.adopters <= f.high and f.n_validation > 0 for f in ex.chosen_forecasts)
    lines = [line.strip() for line in example_lines(ex)]
    for f, (_, _, real) in zip(ex.chosen_forecasts, ex.forecast, strict=True):
        name = f.category.split(" > ")[-1]
        line = next(line for line in lines if line.startswith(f"{name}: forecast "))
        assert f"method: {f.method}, chosen on {f.n_validation} validation categories" in line
        assert line.endswith(f"; real: {real}")
