"""Where the editable parts of a causal LM live, found from its config and module tree.

No model-name substring checks: the block list is the ``ModuleList`` whose length is the
config's layer count; inside a block, the MLP is the child that holds a projection from the
intermediate size back to the hidden size, and that projection is the output projection the
editors change. Works for llama, mistral, qwen2, gemma3 (``nn.Linear``) and gpt2, gptj
(``Conv1D`` in gpt2, stored transposed). Anything else that has this shape works too; a model
that lacks a piece gets an :class:`ArchitectureError` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import AgentEditError

_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model")
_INNER_KEYS = ("intermediate_size", "n_inner", "ffn_dim")
_MLP_NAMES = ("mlp", "feed_forward", "ffn")


class ArchitectureError(AgentEditError, ValueError):
    """The model lacks a part the parametric methods need (blocks, MLP output projection, norms, embeddings)."""


def text_config(config: Any) -> Any:
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _first(config: Any, keys: tuple[str, ...]) -> int | None:
    for k in keys:
        v = getattr(config, k, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


@dataclass(frozen=True)
class Layout:
    """Module paths of one model. Weight matrices are handled as ``[out, in]`` whatever their storage."""

    model_type: str
    n_layers: int
    hidden_size: int
    inner_size: int
    blocks_path: str
    mlp_out_paths: tuple[str, ...]
    transposed: bool  # True for gpt2's Conv1D, whose weight is stored [in, out]
    final_norm_path: str | None
    embed_path: str
    lm_head_path: str
    body_path: str  # the module that returns hidden states (the model without its LM head)

    def block_path(self, layer: int) -> str:
        self._check(layer)
        return f"{self.blocks_path}.{layer}"

    def mlp_out_path(self, layer: int) -> str:
        self._check(layer)
        return self.mlp_out_paths[layer]

    def weight_name(self, layer: int) -> str:
        return self.mlp_out_path(layer) + ".weight"

    def _check(self, layer: int) -> None:
        if not 0 <= layer < self.n_layers:
            raise ArchitectureError(f"layer {layer} does not exist: the model has layers 0..{self.n_layers - 1}")

    def default_layers(self, count: int) -> tuple[int, ...]:
        """``count`` consecutive early-middle layers, where ROME/MEMIT find factual recall (GPT-J: 3-8 of 28)."""
        count = max(1, min(count, self.n_layers // 2))  # leave later layers to carry the edit to the prediction
        end = max(count, round(self.n_layers * 0.3))
        return tuple(range(end - count, end))


def module(model: Any, path: str) -> Any:
    return model.get_submodule(path) if path else model


def _shape_out_in(mod: Any) -> tuple[int, int] | None:
    w = getattr(mod, "weight", None)
    if w is None or getattr(w, "ndim", 0) != 2:
        return None
    kind = type(mod).__name__
    if kind == "Conv1D":
        return int(w.shape[1]), int(w.shape[0])
    if kind == "Linear" or hasattr(mod, "in_features"):
        return int(w.shape[0]), int(w.shape[1])
    return None


def discover(model: Any) -> Layout:
    """Find the :class:`Layout` of a transformers causal LM; raises :class:`ArchitectureError` naming what is missing."""
    import torch

    cfg = text_config(model.config)
    model_type = str(getattr(cfg, "model_type", type(model).__name__))
    missing = []
    n_layers = _first(cfg, _LAYER_KEYS)
    hidden = _first(cfg, _HIDDEN_KEYS)
    if n_layers is None:
        missing.append(f"a layer count in the config (one of {', '.join(_LAYER_KEYS)})")
    if hidden is None:
        missing.append(f"a hidden size in the config (one of {', '.join(_HIDDEN_KEYS)})")
    if missing or n_layers is None or hidden is None:
        raise ArchitectureError(f"{model_type}: cannot edit this model: missing {'; '.join(missing)}")
    inner = _first(cfg, _INNER_KEYS) or 4 * hidden  # gpt2's n_inner=None means 4 * n_embd

    blocks = [(name, m) for name, m in model.named_modules()
              if isinstance(m, torch.nn.ModuleList) and len(m) == n_layers]
    if not blocks:
        raise ArchitectureError(f"{model_type}: no list of {n_layers} transformer blocks found in the module tree")
    blocks_path, block_list = min(blocks, key=lambda b: b[0].count("."))

    out_paths, transposed = [], False
    for i, block in enumerate(block_list):
        found = None
        for mlp_name in _MLP_NAMES:
            mlp = getattr(block, mlp_name, None)
            if mlp is None:
                continue
            for child_name, child in mlp.named_children():
                if _shape_out_in(child) == (hidden, inner):
                    found = (f"{blocks_path}.{i}.{mlp_name}.{child_name}", type(child).__name__ == "Conv1D")
                    break
            if found:
                break
        if found is None:
            raise ArchitectureError(
                f"{model_type}: block {i} has no MLP output projection: looked for a child named "
                f"{'/'.join(_MLP_NAMES)} holding a linear map from {inner} to {hidden} features "
                "(mixture-of-experts and other MLP shapes are not supported)")
        out_paths.append(found[0])
        transposed = found[1]

    embed = model.get_input_embeddings()
    head = model.get_output_embeddings()
    if embed is None or head is None:
        raise ArchitectureError(f"{model_type}: {'input embeddings' if embed is None else 'an LM head'} not found")
    names = {id(m): n for n, m in model.named_modules()}
    body_path = getattr(model, "base_model_prefix", "") or ""
    if not body_path or not hasattr(model, body_path):
        raise ArchitectureError(f"{model_type}: the model body (base_model_prefix) was not found")
    norm_path = None
    body = module(model, body_path)
    for name, child in body.named_children():
        if "norm" in type(child).__name__.lower() or name in ("ln_f", "norm", "final_layernorm"):
            norm_path = f"{body_path}.{name}"
    if norm_path is None:
        raise ArchitectureError(f"{model_type}: no final normalisation layer found under {body_path}")
    return Layout(model_type=model_type, n_layers=n_layers, hidden_size=hidden, inner_size=inner,
                  blocks_path=blocks_path, mlp_out_paths=tuple(out_paths), transposed=transposed,
                  final_norm_path=norm_path, embed_path=names[id(embed)], lm_head_path=names[id(head)],
                  body_path=body_path)
