"""Adversarial training on the word-embedding layer (FGM, PGD) and the one option object that turns it on.

Why the word-embedding *output* and not the embedding matrix: with LoRA the matrix is frozen (no gradient
reaches it), and perturbing the whole matrix moves every occurrence of a token by the same vector. A forward
hook on the word-embedding module adds a per-example perturbation r to its output (B, T, d) instead, so the
same code serves full fine-tuning, LoRA and any trainer whose model has a word-embedding module (the two-tower
and the cross-encoder trainers both take `AdversarialSettings`).

- FGM (Miyato et al., 2017): r = epsilon · g / ||g||, g the gradient of the clean loss w.r.t. the embedding
  output, normalised per example over (tokens, dims). One extra forward/backward.
- PGD (Madry et al., 2018): `steps` ascent steps of size `alpha` (each r += alpha · g / ||g||, then projected
  back onto the ball ||r|| <= epsilon); only the last adversarial loss trains the parameters. steps + 1
  forward passes per batch.

The parameters' gradient is clean + `weight` · adversarial. A trainer calls `backward_with_attack` where it
would call `loss.backward()`; its `loss_fn` must run the same forward passes in the same order each time
(the hook matches perturbations to embedding calls by position).

Text-level augmentation (`augment`) names perturbations from `zsrec.data.perturb` applied to training
item texts; the trainers apply it, since only they know which texts are training texts (never test items).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from zsrec.data.perturb import (
    casing_noise,
    frequent_words,
    punctuation_noise,
    remove_brand,
    stuff_keywords,
    stuffing_keywords,
    typos,
)
from zsrec.encoders.templates import ItemTextTemplate
from zsrec.errors import ConfigError, check_at_least, check_choice, check_positive
from zsrec.training.options import parse_fields

METHODS = ("none", "fgm", "pgd")
#: text perturbations a trainer may apply to training texts (names of `zsrec.data.perturb` kinds)
AUGMENTATIONS = ("typos", "casing", "punctuation", "stuffing", "brand")
#: how stuffed copies train: as extra negatives beside the positive, or (heads only) "no-gain": a logistic
#: penalty whenever a stuffed copy outscores its own original for the pair's user
STUFFING_LOSSES = ("negatives", "no-gain")


@dataclass(frozen=True)
class AdversarialSettings:
    """Adversarial training of a text encoder: embedding-space attacks and text augmentation (both optional)."""

    method: str = "none"  # "none", "fgm" (one gradient step) or "pgd" (projected gradient ascent)
    epsilon: float = 1.0  # L2 radius of the per-example perturbation of the word-embedding output (B, T, d)
    steps: int = 3  # pgd: ascent steps (forward passes beyond the clean one); fgm uses 1
    alpha: float = 0.4  # pgd: L2 size of each ascent step
    weight: float = 1.0  # the adversarial loss's weight next to the clean loss
    # Text perturbations of training texts, e.g. ("typos", "stuffing"); empty = none. "stuffing" adds hard
    # negatives: other training items stuffed with the user's own keywords.
    augment: tuple[str, ...] = ()
    augment_prob: float = 0.3  # chance that a training text gets one of the `augment` perturbations
    stuffing_words: int = 10  # "stuffing": at most this many foreign frequent words stuffed into a negative
    stuffing_loss: str = "negatives"  # "negatives" or "no-gain" (heads only): see STUFFING_LOSSES
    seed: int = 0  # seed of the augmentation draws

    def __post_init__(self) -> None:
        check_choice(self, "method", METHODS)
        check_positive(self, "epsilon")
        check_at_least(self, steps=1)
        check_positive(self, "alpha")
        check_at_least(self, weight=0)
        if isinstance(self.augment, str):  # a bare string would be read letter by letter
            raise ConfigError(f"augment must be a tuple of names, got the string {self.augment!r}")
        unknown = [a for a in self.augment if a not in AUGMENTATIONS]
        if unknown:
            raise ConfigError(f"augment must name perturbations among {AUGMENTATIONS}, got {unknown[0]!r}")
        check_at_least(self, stuffing_words=1)
        if not 0.0 <= self.augment_prob <= 1.0:
            raise ConfigError(f"augment_prob must be in [0, 1], got {self.augment_prob}")
        check_choice(self, "stuffing_loss", STUFFING_LOSSES)

    @classmethod
    def from_dict(cls, values: dict) -> AdversarialSettings:
        """Settings read back from JSON (a model folder's config.json), where `augment` became a list."""
        values = dict(values)
        values["augment"] = tuple(values.get("augment", ()))
        return cls(**values)

    @property
    def active(self) -> bool:
        """Whether embedding-space attacks are on."""
        return self.method != "none" and self.weight > 0


def parse_adversarial(spec: str) -> AdversarialSettings:
    """`AdversarialSettings` from the CLI's one-option form: comma-separated `field=value` pairs, several
    augmentations joined by `+`, e.g. `method=pgd,epsilon=0.5` or `augment=typos+stuffing,augment_prob=0.5`."""
    return AdversarialSettings(**parse_fields(AdversarialSettings, spec, "--adversarial"))


def word_embeddings(model: nn.Module) -> nn.Embedding:
    """The word (token) embedding module of a transformers model, also inside peft or sentence-transformers
    wrappers: the input embeddings of the first submodule that has them."""
    for module in model.modules():
        get = getattr(module, "get_input_embeddings", None)
        if callable(get):
            try:
                found = get()
            except (NotImplementedError, AttributeError):
                continue
            if isinstance(found, nn.Embedding):
                return found
    raise ConfigError(f"{type(model).__name__} has no word-embedding layer to attack (no get_input_embeddings)")


class _EmbeddingHook:
    """Adds perturbations to the word-embedding output, or records zero-valued leaves to read its gradient."""

    def __init__(self) -> None:
        self.mode = "off"  # "record": add a zero leaf per call; "perturb": add `perturbations[i]` to call i
        self.leaves: list[torch.Tensor] = []
        self.perturbations: list[torch.Tensor] = []
        self.calls = 0

    def __call__(self, module: nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor | None:
        if self.mode == "off":
            return None
        i = self.calls
        self.calls += 1
        if self.mode == "record":
            leaf = torch.zeros_like(output, requires_grad=True)
            self.leaves.append(leaf)
            return output + leaf  # same values; leaf.grad = d loss / d embedding output
        if i >= len(self.perturbations) or self.perturbations[i].shape != output.shape:
            raise RuntimeError(
                "the adversarial pass did not repeat the clean pass's forward calls (call "
                f"{i}, shape {tuple(output.shape)}); loss_fn must run the same forwards each time"
            )
        return output + self.perturbations[i]

    def start(self, mode: str) -> None:
        self.mode, self.calls = mode, 0
        if mode == "record":
            self.leaves = []


@contextmanager
def _hooked(embedding: nn.Module) -> Iterator[_EmbeddingHook]:
    hook = _EmbeddingHook()
    handle = embedding.register_forward_hook(hook)
    try:
        yield hook
    finally:
        handle.remove()  # the model is left exactly as it was


def _unit(g: torch.Tensor) -> torch.Tensor:
    """g / ||g|| per example (norm over every axis but the first); zero where g is zero."""
    norms = g.flatten(1).norm(dim=1).clamp(min=1e-12)
    return g / norms.view(-1, *([1] * (g.dim() - 1)))


def _project(r: torch.Tensor, epsilon: float) -> torch.Tensor:
    """r scaled back onto the ball ||r|| <= epsilon, per example."""
    norms = r.flatten(1).norm(dim=1).clamp(min=1e-12)
    scale = torch.clamp(epsilon / norms, max=1.0)
    return r * scale.view(-1, *([1] * (r.dim() - 1)))


def backward_with_attack(
    model: nn.Module, loss_fn: Callable[[], torch.Tensor], settings: AdversarialSettings
) -> dict[str, float]:
    """Backpropagate the clean loss and, if `settings.method` is fgm or pgd, the adversarial loss too.

    Args:
        model: the module holding the word embeddings (a transformers, peft or sentence-transformers model).
        loss_fn: runs the forward passes and returns the scalar training loss.

    Returns {"loss": clean loss, "adversarial_loss": loss under the final perturbation (absent for "none")};
    the parameters' `.grad` hold clean + weight · adversarial gradients, ready for `optimizer.step()`.
    """
    if not settings.active:
        loss = loss_fn()
        loss.backward()
        return {"loss": float(loss.detach())}
    with _hooked(word_embeddings(model)) as hook:
        hook.start("record")
        loss = loss_fn()
        loss.backward()
        grads = [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in hook.leaves]
        if settings.method == "fgm":
            perturbations = [settings.epsilon * _unit(g) for g in grads]
        else:  # pgd: steps - 1 ascent steps that touch only the perturbations, then the training step
            perturbations = [_project(settings.alpha * _unit(g), settings.epsilon) for g in grads]
            for _ in range(settings.steps - 1):
                leaves = [r.detach().requires_grad_(True) for r in perturbations]
                hook.perturbations = leaves
                hook.start("perturb")
                grads = list(torch.autograd.grad(loss_fn(), leaves, allow_unused=True))
                perturbations = [
                    _project(
                        r.detach() + settings.alpha * _unit(g if g is not None else torch.zeros_like(r)),
                        settings.epsilon,
                    )
                    for r, g in zip(leaves, grads, strict=True)
                ]
        hook.perturbations = [r.detach() for r in perturbations]
        hook.start("perturb")
        adversarial = loss_fn()
        (settings.weight * adversarial).backward()
        hook.start("off")
    return {"loss": float(loss.detach()), "adversarial_loss": float(adversarial.detach())}


# -- text augmentation -------------------------------------------------------------------------------------
class TextAugmenter:
    """Applies `AdversarialSettings.augment` to training item texts, re-rendering perturbed titles.

    Positives get, with probability `augment_prob`, one of the enabled title perturbations (typos, casing,
    punctuation, brand removal: the model should still find the item). "stuffing" adds hard negatives to
    each batch: training items whose titles carry the most frequent title words of *other* categories, the
    attack a keyword-stuffing seller makes (the model should not be pulled to them by foreign words).
    Built by `for_training` from the training items only, so no test item is ever perturbed or seen.
    """

    def __init__(
        self,
        settings: AdversarialSettings,
        *,
        render: Callable[[int, str, bool], str] | None = None,
        titles: list[str] | None = None,
        brands: list[str] | None = None,
        keywords: dict[int, list[str]] | None = None,
        pool: np.ndarray | None = None,
    ) -> None:
        self.settings = settings
        self._render = render  # (item, new title, drop brand) -> the item's full text
        self._titles = titles or []
        self._brands = brands or []
        self._keywords = keywords or {}  # item -> words to stuff (training items only)
        self._pool = np.empty(0, dtype=np.int64) if pool is None else pool  # items eligible as stuffed negatives
        self._title_kinds = [a for a in settings.augment if a != "stuffing"]

    @classmethod
    def none(cls) -> TextAugmenter:
        return cls(AdversarialSettings())

    @classmethod
    def for_training(
        cls,
        items: pd.DataFrame,
        categories: np.ndarray,
        training_items: np.ndarray,
        template: ItemTextTemplate,
        settings: AdversarialSettings,
    ) -> TextAugmenter:
        """An augmenter over `training_items` (indexes into `items`), `categories` the items' categories."""
        if not settings.augment:
            return cls(settings)
        titles = items["title"].astype(str).tolist()
        brands = items["brand"].fillna("").astype(str).tolist() if "brand" in items else [""] * len(items)
        pool = np.unique(np.asarray(training_items, dtype=np.int64))
        keywords: dict[int, list[str]] = {}
        if "stuffing" in settings.augment:
            by_category: dict[str, list[str]] = {}
            for i in pool:
                by_category.setdefault(str(categories[i]), []).append(titles[i])
            frequent = frequent_words(by_category, 50)
            per_category = {c: stuffing_keywords(frequent, c, settings.stuffing_words) for c in by_category}
            keywords = {int(i): per_category[str(categories[i])] for i in pool}

        def render(item: int, title: str, drop_brand: bool) -> str:
            row = items.iloc[[item]].copy()
            row["title"] = title
            if drop_brand and "brand" in row:
                row["brand"] = ""
            return template.render(row)[0]

        return cls(settings, render=render, titles=titles, brands=brands, keywords=keywords, pool=pool)

    def positive(self, text: str, item: int, rng: np.random.Generator) -> str:
        """`text` of training item `item`, perturbed with probability `augment_prob`."""
        if not self._title_kinds or self._render is None or rng.random() >= self.settings.augment_prob:
            return text
        kind = self._title_kinds[int(rng.integers(len(self._title_kinds)))]
        title = self._titles[item]
        if kind == "typos":
            return self._render(item, typos(title, 0.05, rng), False)
        if kind == "casing":
            return self._render(item, casing_noise(title, rng), False)
        if kind == "punctuation":
            return self._render(item, punctuation_noise(title, rng), False)
        return self._render(item, remove_brand(title, self._brands[item]), True)  # "brand"

    def negatives(self, positives: np.ndarray, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
        """Keyword-stuffed hard negatives for a batch: about `augment_prob` · len(positives) training items
        (other than the batch's positives) with foreign frequent words appended to their titles."""
        if not self._keywords or self._render is None:
            return [], np.empty(0, dtype=np.int64)
        pool = self._pool[~np.isin(self._pool, positives)]
        n = min(len(pool), int(rng.binomial(len(positives), self.settings.augment_prob)))
        chosen = rng.choice(pool, size=n, replace=False) if n else np.empty(0, dtype=np.int64)
        return [self._stuffed(int(i), rng) for i in chosen], np.asarray(chosen, dtype=np.int64)

    def stuffed_copies(self, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
        """One keyword-stuffed text per training item (for trainers over frozen embeddings, which encode each
        text once): (texts, items). Empty without "stuffing"."""
        if not self._keywords or self._render is None:
            return [], np.empty(0, dtype=np.int64)
        return [self._stuffed(int(i), rng) for i in self._pool], self._pool.copy()

    def _stuffed(self, item: int, rng: np.random.Generator) -> str:
        """Item `item`'s text with 1 to `stuffing_words` of its foreign frequent words appended to the title."""
        words = self._keywords[item]
        k = int(rng.integers(1, len(words) + 1)) if words else 0
        return self._render(item, stuff_keywords(self._titles[item], words[:k]), False)  # type: ignore[misc]
