"""The sentence embedder's ONNX Runtime path: the same MiniLM weights, exported once to ONNX and run without torch.

The export (``torch.onnx``, from the local sentence-transformers directory; nothing is downloaded) is cached under
``<agentedit cache>/onnx/<sha256 of the weights>/model.onnx`` and written atomically, so concurrent first uses in
several processes are safe. Tokenisation is the model's own fast tokenizer (``tokenizer.json``), truncated at the
model's ``max_seq_length``; pooling is the attention-masked mean followed by L2 normalisation, as sentence-transformers
does for this model, so vectors match the torch path to about 1e-6 in cosine (a test checks >= 0.9999).

``int8`` runs a dynamically quantised copy instead: about twice as fast, but its vectors differ from the float
ones (cosine about 0.96-0.98), so the store records it as another embedder and refuses to mix the two.

A batch is sorted by length (less padding) and cut into chunks run on parallel threads, each session call using one
core (ONNX Runtime releases the GIL): a single query gets the lowest latency and a large import every core.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError

logger = logging.getLogger(__name__)

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def weights_sha(model_dir: Path) -> str:
    """SHA-256 of the model's weight file (the export cache key), read in 1 MiB blocks."""
    for name in _WEIGHT_FILES:
        path = model_dir / name
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()
    raise ConfigError(f"{model_dir} holds no {' or '.join(_WEIGHT_FILES)}; point the embedder at a "
                      "sentence-transformers directory")


def export_onnx(model_dir: Path, target: Path) -> Path:
    """Export the transformer of ``model_dir`` to ``target`` (token ids in, last hidden state out; dynamic batch and
    length). Written to a temporary file first and moved into place, so a reader never sees half a file."""
    missing = [name for name in ("onnx", "torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:  # torch's exporter serialises through onnx
        raise ConfigError(f"exporting the embedder to ONNX needs {', '.join(missing)}: run `pip install "
                          f"{' '.join(missing)}`, or set AGENTEDIT_EMBEDDER_BACKEND=torch")
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "hidden")}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    logger.info("exporting the embedder %s to ONNX at %s (once per weights)", model_dir, target)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(Hidden(model), (sample, sample, torch.zeros_like(sample)), str(tmp),
                              input_names=list(_INPUTS), output_names=["hidden"], dynamic_axes=axes,
                              opset_version=17, dynamo=False)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def quantise_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation of ``source`` (weights int8, activations quantised per call), written atomically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    logger.info("quantising the ONNX embedder to int8 at %s (once per weights)", target)
    try:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def cached_export(model_dir: Path, cache: Path, *, int8: bool = False) -> Path:
    """The ONNX file for ``model_dir``'s weights (its int8 quantisation with ``int8``), made on first use."""
    folder = cache / "onnx" / weights_sha(model_dir)[:32]
    fp32 = folder / "model.onnx"
    if not fp32.is_file():
        export_onnx(model_dir, fp32)
    if not int8:
        return fp32
    quantised = folder / "model-int8.onnx"
    return quantised if quantised.is_file() else quantise_int8(fp32, quantised)


def _max_length(model_dir: Path, default: int = 256) -> int:
    cfg = model_dir / "sentence_bert_config.json"
    if cfg.is_file():
        return int(json.loads(cfg.read_text("utf-8")).get("max_seq_length") or default)
    return default


class OnnxEncoder:
    """Token ids -> mean-pooled, unit-normalised sentence vectors through ONNX Runtime."""

    def __init__(self, model_dir: str | os.PathLike[str], cache: Path, *, threads: int | None = None,
                 chunk: int = 32, int8: bool = False) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigError(f"the onnx embedder backend needs onnxruntime and tokenizers ({exc}); "
                              "run `pip install onnxruntime`, or set AGENTEDIT_EMBEDDER_BACKEND=torch") from exc
        folder = Path(model_dir)
        if not (folder / "tokenizer.json").is_file():
            raise ConfigError(f"{folder} has no tokenizer.json (a fast tokenizer is needed by the onnx backend); "
                              "set AGENTEDIT_EMBEDDER_BACKEND=torch for this model")
        self.path = cached_export(folder, cache, int8=int8)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(_max_length(folder))
        self.tokenizer.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # one core per call; parallel calls use the others
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        self.chunk = chunk
        self.workers = max(1, threads or os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def _run(self, encodings: Sequence[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, :len(enc.ids)] = enc.ids
            mask[row, :len(enc.ids)] = 1
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="agentedit-embed")
            return self._pool

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        chunks = [[encodings[i] for i in order[s:s + self.chunk]] for s in range(0, len(order), self.chunk)]
        if len(chunks) == 1 or self.workers == 1:
            parts = [self._run(c) for c in chunks]
        else:
            parts = list(self._executor().map(self._run, chunks))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        out[order] = np.concatenate(parts)
        return out
