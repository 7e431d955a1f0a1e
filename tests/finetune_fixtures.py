"""Fine-tuning test data: a tiny randomly initialised BERT (word-level vocabulary) saved as a model folder."""

from __future__ import annotations

import re
from pathlib import Path

import torch

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_bert_folder(folder: Path, texts: list[str], *, hidden: int = 32, seed: int = 0) -> Path:
    """Write a 2-layer BERT (hidden `hidden`) with a vocabulary of the words in `texts` to `folder`."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(SPECIAL + words) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(SPECIAL) + len(words),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_shop_classifier(n_labels: int = 2) -> tuple[torch.nn.Module, object]:
    """A 2-layer, 32-wide sequence classifier with random weights and a word vocabulary of the tiny shop."""
    from shop_fixtures import CATALOG
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    words = sorted({w for titles in CATALOG.values() for t in titles for w in re.findall(r"\w+", t.lower())})
    words += sorted({w for c in CATALOG for w in re.findall(r"\w+", c.lower())})
    words += ["bought", "category", "likes", "camping", "outdoors", "loves", "cooking", ".", ";", ":", ">"]
    vocab = [*SPECIAL, *dict.fromkeys(words)]
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=0.2,  # at BERT's 0.02 a model this narrow starts too flat to learn in a few steps
        num_labels=n_labels,
    )
    return BertForSequenceClassification(config), tokenizer
