"""Tiny random-weight models built from configs, a word-level tokenizer, and editor settings that suit them.

Random weights do not route a subject's information to later positions, so the tiny-model tests put the
subject at the end of the prompt; their hidden states are small, so the target search needs a wider clamp.
"""

from __future__ import annotations

import string
from typing import Any

WORDS = ("the eiffel tower is located in rome paris london berlin a of city capital france germany italy spain "
         "country river language speaks mother tongue english french team plays for football club who what").split()


def tokenizer() -> Any:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for w in [*WORDS, *string.ascii_lowercase, *".,:;!?'"]:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def config(kind: str, vocab: int, **sizes: int) -> Any:
    import transformers as tf

    common = {**dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=6, num_attention_heads=4,
                     num_key_value_heads=4, max_position_embeddings=128), **sizes}
    if kind == "llama":
        return tf.LlamaConfig(**common)
    if kind == "mistral":
        return tf.MistralConfig(**common)
    if kind == "qwen2":
        return tf.Qwen2Config(**common)
    if kind == "gemma3":
        return tf.Gemma3TextConfig(**common, head_dim=16)
    if kind == "gpt2":
        return tf.GPT2Config(vocab_size=vocab, n_embd=64, n_layer=6, n_head=4, n_positions=128, bos_token_id=1, eos_token_id=2)
    if kind == "gptj":
        return tf.GPTJConfig(vocab_size=vocab, n_embd=64, n_layer=6, n_head=4, n_positions=128, rotary_dim=8,
                             bos_token_id=1, eos_token_id=2)
    raise ValueError(kind)


def tiny_model(kind: str = "llama", seed: int = 0, **sizes: int) -> tuple[Any, Any]:
    """(model, tokenizer); the same seed gives bit-identical weights. ``sizes`` override the llama-family widths."""
    import torch
    from transformers import AutoModelForCausalLM

    tok = tokenizer()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config(kind, len(tok), **sizes)).eval()
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(5.0)  # expressive logits despite the tiny random init
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tok


def tiny_configs() -> dict[str, Any]:
    from agentedit.parametric import AlphaEditConfig, FTConfig, MEMITConfig, ROMEConfig, TargetConfig

    def target() -> TargetConfig:
        return TargetConfig(steps=40, lr=1.0, clamp_norm=1000.0, weight_decay=0.0, kl_factor=0.0)

    return {"rome": ROMEConfig(target=target()), "memit": MEMITConfig(target=target(), mom2_weight=1.0),
            "ft": FTConfig(steps=40, lr=0.05, norm_constraint=0.5),
            "alphaedit": AlphaEditConfig(target=target(), mom2_weight=1.0, l2=1e-3, null_threshold=1.0)}


def weights(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(model: Any, saved: dict[str, Any]) -> bool:
    import torch

    return all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
