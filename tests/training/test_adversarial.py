"""FGM / PGD on the word-embedding output: known answers on a tiny model, and LoRA with frozen embeddings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zsrec.errors import ConfigError
from zsrec.training.adversarial import AdversarialSettings, _project, _unit, backward_with_attack, word_embeddings


class TinyModel(nn.Module):
    """ids (B, T) -> embeddings (+ offset) -> tanh -> sum over tokens -> linear: a nonlinear loss surface."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(11, 4)
        self.out = nn.Linear(4, 1)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed

    def forward(self, ids: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
        e = self.embed(ids)
        if offset is not None:
            e = e + offset
        return self.out(torch.tanh(e).sum(1)).squeeze(1)


IDS = torch.tensor([[1, 2, 3], [4, 5, 6]])
TARGET = torch.tensor([1.0, -1.0])


def loss_of(model: TinyModel, offset: torch.Tensor | None = None) -> torch.Tensor:
    return ((model(IDS, offset) - TARGET) ** 2).mean()


def grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="method"):
        AdversarialSettings(method="fgsm")
    with pytest.raises(ConfigError, match="epsilon"):
        AdversarialSettings(method="fgm", epsilon=0)
    with pytest.raises(ConfigError, match="steps"):
        AdversarialSettings(method="pgd", steps=0)
    with pytest.raises(ConfigError, match="augment"):
        AdversarialSettings(augment=("typo",))
    with pytest.raises(ConfigError, match="string"):
        AdversarialSettings(augment="typos")  # type: ignore[arg-type]
    assert not AdversarialSettings().active and AdversarialSettings(method="pgd").active


def test_none_is_a_plain_backward() -> None:
    a, b = TinyModel(), TinyModel()
    out = backward_with_attack(a, lambda: loss_of(a), AdversarialSettings())
    loss_of(b).backward()
    assert out["loss"] == pytest.approx(float(loss_of(b).detach()))
    assert "adversarial_loss" not in out
    for name, g in grads(b).items():
        torch.testing.assert_close(grads(a)[name], g)


def test_fgm_is_one_normalised_gradient_step() -> None:
    model, reference = TinyModel(), TinyModel()
    eps = 0.5
    out = backward_with_attack(model, lambda: loss_of(model), AdversarialSettings(method="fgm", epsilon=eps))

    # the same by hand: gradient w.r.t. the embedding output, per-example unit norm, times eps
    offset = torch.zeros(2, 3, 4, requires_grad=True)
    (g,) = torch.autograd.grad(loss_of(reference, offset), offset)
    r = eps * g / g.flatten(1).norm(dim=1).view(-1, 1, 1)
    assert r.flatten(1).norm(dim=1) == pytest.approx([eps, eps])
    expected_adv = loss_of(reference, r.detach())
    assert out["adversarial_loss"] == pytest.approx(float(expected_adv.detach()), rel=1e-5)
    assert out["adversarial_loss"] > out["loss"]  # the step goes uphill

    (loss_of(reference) + expected_adv).backward()
    for name, g_ref in grads(reference).items():
        torch.testing.assert_close(grads(model)[name], g_ref)
    assert not model.embed._forward_hooks  # the hook is gone afterwards


def test_pgd_stays_in_the_ball_and_climbs_at_least_as_high_as_one_small_step() -> None:
    eps = 0.6
    pgd_model, fgm_model = TinyModel(), TinyModel()
    pgd = backward_with_attack(
        pgd_model, lambda: loss_of(pgd_model), AdversarialSettings(method="pgd", epsilon=eps, alpha=0.2, steps=5)
    )
    small = backward_with_attack(fgm_model, lambda: loss_of(fgm_model), AdversarialSettings(method="fgm", epsilon=0.2))
    assert pgd["loss"] == pytest.approx(small["loss"])
    assert pgd["adversarial_loss"] > small["adversarial_loss"] > small["loss"]
    r = torch.randn(3, 5, 4) * 10
    assert torch.all(_project(r, eps).flatten(1).norm(dim=1) <= eps + 1e-6)
    small_r = torch.full((1, 2, 2), 0.01)
    torch.testing.assert_close(_project(small_r, eps), small_r)  # inside the ball: untouched
    assert torch.all(_unit(torch.zeros(2, 3)) == 0)


def test_forwards_that_differ_between_passes_are_refused() -> None:
    model = TinyModel()
    calls = iter([IDS, IDS[:, :2]])

    def loss_fn() -> torch.Tensor:
        return model(next(calls)).pow(2).mean()

    with pytest.raises(RuntimeError, match="same forwards"):
        backward_with_attack(model, loss_fn, AdversarialSettings(method="fgm"))
    assert not model.embed._forward_hooks


def test_lora_with_frozen_embeddings_still_gets_an_attack() -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    model = get_peft_model(BertModel(config), LoraConfig(r=2, lora_alpha=4, target_modules=["query", "value"]))
    # LoRA's B starts at zero; give it values so the adapter has a gradient path worth checking
    for name, p in model.named_parameters():
        if "lora_B" in name:
            nn.init.normal_(p, std=0.1)
    assert not word_embeddings(model).weight.requires_grad
    ids = torch.tensor([[2, 5, 7, 9], [3, 4, 0, 0]])
    mask = (ids != 0).long()

    def loss_fn() -> torch.Tensor:
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        return hidden[:, 0].pow(2).sum()

    out = backward_with_attack(model, loss_fn, AdversarialSettings(method="pgd", epsilon=1.0, steps=2))
    assert out["adversarial_loss"] > out["loss"]
    trained = [n for n, p in model.named_parameters() if p.grad is not None]
    assert trained and all("lora_" in n for n in trained)
