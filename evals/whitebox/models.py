"""The benchmark's cases and models: CounterFact (or generated prompts for timing runs), and random-weight models
of real shapes with a word-level tokenizer over the benchmark's own words."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("whitebox_bench")


SHAPES = {  # the real models' configs, random weights: the same compute and memory as the real thing
    "llama-7b": ("llama", dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                               num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)),
    "qwen2-7b": ("qwen2", dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                               num_key_value_heads=4, vocab_size=152064, max_position_embeddings=4096)),
    "small": ("llama", dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8,
                            num_key_value_heads=8, vocab_size=32000, max_position_embeddings=2048)),
}
METHODS = ("rome", "memit", "ft", "alphaedit", "grace", "wise")


# -- data and models ---------------------------------------------------------------------------
def load_cases(data_dir: str | None, limit: int) -> list[dict[str, Any]]:
    """CounterFact cases as plain dicts; a built-in stand-in when the data is absent (timing runs only)."""
    from agentedit.evaluation import EvalDataError, load_dataset

    try:
        cases = load_dataset("counterfact-edit", data_dir)[:limit]
    except EvalDataError as exc:
        logger.warning("%s; using generated prompts (fine for timing, not for quality)", exc)
        countries = ["France", "Spain", "Italy", "Germany", "Japan", "Brazil", "Canada", "Egypt", "India", "Kenya"]
        return [{"id": str(i), "prompt": f"The capital city of {c} number {i} is", "subject": f"{c} number {i}",
                 "target": "Rome", "probes": []} for i, c in enumerate(countries * (limit // len(countries) + 1))][:limit]
    out = []
    for c in cases:
        e = c.edits[0]
        out.append({"id": c.case_id, "prompt": e["prompt"], "subject": e["subject"], "target": e["target_new"],
                    "probes": [{"kind": p.kind, "prompt": p.prompt, "targets": p.targets} for p in c.probes]})
    return out


def word_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A word-level tokenizer over the benchmark's own words (random-weight runs have no tokenizer files)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from agentedit.parametric.corpus import OPENINGS

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    pre = pre_tokenizers.Whitespace()
    for text in [*texts, *OPENINGS, "is a"]:
        for word, _ in pre.pre_tokenize_str(text):
            if len(vocab) < vocab_size:
                vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def synthetic_backend(shape: str, device: str, dtype: str, texts: list[str]) -> Any:
    import torch
    import transformers as tf

    from agentedit.backends.local import LocalBackend, pick_device, pick_dtype

    kind, kw = SHAPES[shape]
    cfg = (tf.LlamaConfig if kind == "llama" else tf.Qwen2Config)(**kw, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    dev = pick_device(device)
    torch_dtype = pick_dtype(dtype, dev)
    torch.manual_seed(0)
    with torch.device(dev):
        model = tf.AutoModelForCausalLM.from_config(cfg, dtype=torch_dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LocalBackend.from_model(model, word_tokenizer(texts, cfg.vocab_size), name=f"random-{shape}")
