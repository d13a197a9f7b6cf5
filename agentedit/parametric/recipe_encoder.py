"""RECIPE's prompt encoder: an edit's knowledge statement -> ``k`` continuous prompt vectors in one LLM's input
embedding space.

The paper encodes the statement with a small LM (RoBERTa) and an MLP. Here the statement is read twice: its
sentence vector (the store's MiniLM embedder) goes through an MLP to ``k`` vectors, and ``k`` learned queries
attend over the LLM's own input embeddings of the new target's tokens (plus a learned position per token), so the
prompt can carry the exact tokens to produce, which a 384-d sentence vector cannot name. The two are added. The
LLM stays frozen; only this encoder is trained (:mod:`~agentedit.parametric.recipe_training`), per LLM (its
hidden size and vocabulary), and saved with the store as ``<store>/recipe/encoder-<model tag>.safetensors`` with
a JSON of its settings and training figures beside it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

ENCODER_PREFIX = "encoder-"


class PromptEncoder(nn.Module):
    """``(statement vector [B, in], target embeddings [B, T, d], target mask [B, T]) -> prompts [B, k, d]``."""

    def __init__(self, in_dim: int, hidden_size: int, k: int = 8, width: int = 512, max_target: int = 16,
                 scale: float = 1.0) -> None:
        super().__init__()
        self.in_dim, self.hidden_size, self.k, self.width, self.max_target = in_dim, hidden_size, k, width, max_target
        self.mlp = nn.Sequential(nn.Linear(in_dim, width), nn.GELU(), nn.Linear(width, k * hidden_size))
        self.queries = nn.Parameter(torch.randn(k, hidden_size) / hidden_size ** 0.5)
        self.positions = nn.Parameter(torch.zeros(max_target, hidden_size))
        self.register_buffer("scale", torch.tensor(float(scale)))  # the LLM's embedding size per coordinate

    @property
    def settings(self) -> dict[str, Any]:
        return {"in_dim": self.in_dim, "hidden_size": self.hidden_size, "k": self.k, "width": self.width,
                "max_target": self.max_target, "scale": float(self.scale)}

    def forward(self, vec: Any, target: Any, mask: Any) -> Any:
        b = vec.shape[0]
        base = self.mlp(vec).view(b, self.k, self.hidden_size) * self.scale
        t = min(target.shape[1], self.max_target)
        target, mask = target[:, :t], mask[:, :t]
        keys = target / self.scale.clamp_min(1e-6) + self.positions[:t]  # unit scale: the queries pick by token and place
        att = (self.queries[None] @ keys.transpose(1, 2)) / self.hidden_size ** 0.5  # [B, k, T]
        att = att.masked_fill(~mask.bool()[:, None, :], float("-inf")).softmax(-1)
        return base + att @ target


def model_tag(backend: Any) -> str:
    """A file-name-safe tag of the LLM an encoder is trained for (its name's last path part)."""
    name = Path(str(getattr(backend, "name", "") or "model").replace(":", "/")).name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"


def encoder_paths(folder: Path, backend: Any) -> tuple[Path, Path]:
    base = f"{ENCODER_PREFIX}{model_tag(backend)}"  # names hold dots (qwen2.5): no with_suffix
    return folder / f"{base}.safetensors", folder / f"{base}.json"


def save_encoder(encoder: PromptEncoder, folder: Path, backend: Any, meta: dict[str, Any]) -> Path:
    """Write the encoder and its JSON (settings, the LLM it serves, training figures) atomically."""
    import os

    from safetensors.torch import save_file

    weights, info = encoder_paths(folder, backend)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".tmp")
    save_file({k: v.detach().float().cpu().contiguous() for k, v in encoder.state_dict().items()}, str(tmp))
    os.replace(tmp, weights)
    info.write_text(json.dumps({**meta, "settings": encoder.settings}, indent=2) + "\n", "utf-8")
    return weights


def load_encoder(folder: Path, backend: Any, hidden_size: int) -> tuple[PromptEncoder, dict[str, Any]]:
    """The encoder trained for this LLM, on its device; a ConfigError saying how to train one if there is none."""
    from safetensors.torch import load_file

    weights, info = encoder_paths(folder, backend)
    if not weights.is_file() or not info.is_file():
        raise ConfigError(f"no RECIPE prompt encoder for {getattr(backend, 'name', 'this model')!r} in {folder}; train "
                          f"one with `agentedit --model hf:{model_tag(backend)} train-recipe` (on a training file; a few "
                          "minutes on CPU at small scale) or choose another method")
    meta = json.loads(info.read_text("utf-8"))
    settings = meta["settings"]
    if int(settings["hidden_size"]) != int(hidden_size):
        raise ConfigError(f"the RECIPE encoder in {weights} was trained for hidden size {settings['hidden_size']}, this "
                          f"model has {hidden_size}; run `agentedit train-recipe` again for this model")
    if meta.get("fingerprint") not in (None, getattr(backend, "fingerprint", None)):
        raise ConfigError(f"the RECIPE encoder in {weights} was trained for model {meta.get('model')} (weights "
                          f"{meta.get('fingerprint')}), not this one ({backend.fingerprint}); run `agentedit train-recipe` "
                          "again for this model")
    encoder = PromptEncoder(**{k: settings[k] for k in ("in_dim", "hidden_size", "k", "width", "max_target", "scale")})
    encoder.load_state_dict(load_file(str(weights)))
    return encoder.to(backend.device).eval(), meta
