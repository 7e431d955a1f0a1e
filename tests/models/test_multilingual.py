"""A Chinese shop: the multilingual encoder must send each user to the matching new category."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zsrec.data.dataset import Dataset
from zsrec.data.splits import SplitSettings, make_split
from zsrec.models.embedding_source import EmbeddingSource
from zsrec.models.registry import ModelContext, build_model

CATALOG = {
    "数码 > 手机配件": ["快充手机充电器 20W", "手机钢化膜 防摔高清", "无线充电板 苹果安卓通用", "手机壳 硅胶 防摔"],
    "数码 > 耳机": ["蓝牙耳机 主动降噪 长续航", "运动蓝牙耳机 挂耳式 防汗", "有线耳机 入耳式 重低音"],
    "数码 > 智能手表": ["智能手表 心率血氧监测 运动手环", "儿童智能手表 定位通话", "智能运动手表 GPS 跑步 游泳防水"],
    "户外 > 帐篷": ["户外帐篷 双人 防雨 露营", "自动速开帐篷 三到四人 野营", "超轻单人登山帐篷"],
    "户外 > 炉具": ["便携式卡式炉 户外野炊", "露营气炉 折叠 迷你", "野营炊具套装 锅碗"],
    "户外 > 睡袋": ["羽绒睡袋 冬季 加厚 露营", "信封式睡袋 成人 户外旅行", "木乃伊睡袋 登山 保暖"],
    "厨房 > 锅具": ["不粘锅 炒锅 家用", "铸铁炖锅 珐琅", "不锈钢汤锅 加厚"],
    "厨房 > 刀具": ["菜刀 不锈钢 切片刀", "厨房刀具套装 五件套", "陶瓷水果刀"],
}
# (categories of the history, held-out category they also bought from)
PERSONAS = [(("数码 > 手机配件", "数码 > 耳机"), "数码 > 智能手表"), (("户外 > 帐篷", "户外 > 炉具"), "户外 > 睡袋")]


def chinese_shop() -> Dataset:
    rows = [(f"c{n}", t, c) for n, (c, t) in enumerate((c, t) for c, ts in CATALOG.items() for t in ts)]
    items = pd.DataFrame(rows, columns=["item_id", "title", "category"]).assign(description="", brand="")
    by_cat = {c: items.index[items["category"] == c].to_numpy() for c in CATALOG}
    rng = np.random.default_rng(0)
    inter = []
    for u in range(24):
        history, target = PERSONAS[u % 2]
        for c in history:
            for i in rng.choice(by_cat[c], size=2, replace=False):
                inter.append((u, int(i), float(len(inter))))
        inter.append((u, int(rng.choice(by_cat[target])), float(len(inter))))
    interactions = pd.DataFrame(inter, columns=["user", "item", "timestamp"])
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(24)], "profile": ""})
    return Dataset("chinese", items, users, interactions)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["zero-shot-mean", "zero-shot-hybrid"])
def test_multilingual_encoder_ranks_the_matching_new_category_first(name, tmp_path) -> None:
    shop = chinese_shop()
    split = make_split(shop, SplitSettings(level=2, categories=("智能手表", "睡袋"), min_history=3))
    ctx = ModelContext(embeddings=EmbeddingSource("e5-multilingual", cache_dir=tmp_path), encoder="e5-multilingual")
    model = build_model(name, ctx).fit(split.train)
    ranking = model.recommend(split.test_users, k=3, candidates=split.new_items)
    cats = split.train.items["category"].to_numpy()
    for row, u in enumerate(split.test_users):
        want = PERSONAS[int(u) % 2][1]
        assert list(cats[ranking.items[row]]) == [want] * 3, f"user {u}: {list(cats[ranking.items[row]])}"
