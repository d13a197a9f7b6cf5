"""Local weights through transformers: the white-box backend (``hf:<source>``).

``source`` is one of:

- a short name known to :mod:`agentedit.provision` (``hf:smollm2-135m-instruct``): the cached GGUF;
- a ``.gguf`` file (dequantised by transformers on load);
- a directory holding ``config.json`` and weights;
- a hub id (``Qwen/Qwen2.5-0.5B-Instruct``), read from the local Hugging Face cache only.

The model loads on first use, on CUDA when present (``device="auto"``), in the
dtype asked for (``"auto"``: bf16 on CUDA, fp32 on CPU). Besides chat and
completion it scores targets teacher-forced in batches (:meth:`LocalBackend.score`),
and exposes the module itself (:attr:`LocalBackend.model`) to the parametric methods.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import BackendError, ConfigError
from .base import Capabilities, Completion

logger = logging.getLogger(__name__)

_DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Source:
    """Where the weights come from: ``kind`` is ``gguf``, ``dir`` or ``hub``."""

    kind: str
    location: str

    @property
    def label(self) -> str:
        return Path(self.location).name if self.kind != "hub" else self.location


@dataclass
class TargetScore:
    """Teacher-forced scores of one target after one prefix.

    ``target_ids`` are the target's tokens; ``top1`` the model's argmax at each of their
    positions; ``logprobs`` the log-probability of each target token.
    """

    target_ids: list[int]
    top1: list[int]
    logprobs: list[float]

    @property
    def accuracy(self) -> float:
        return sum(int(a == b) for a, b in zip(self.target_ids, self.top1)) / len(self.target_ids) if self.target_ids else 0.0

    @property
    def total_logprob(self) -> float:
        return float(sum(self.logprobs))


def resolve_source(spec: str) -> Source:
    """Turn what follows ``hf:`` into a :class:`Source`; raises :class:`ConfigError` if it names nothing usable."""
    spec = spec.strip()
    if not spec:
        raise ConfigError("hf: needs a model: a hub id from the local cache, a directory, a .gguf file or a known short name")
    from ..provision import MODELS, ensure_model

    if spec in MODELS:
        return Source("gguf", str(ensure_model(spec)))
    path = Path(spec).expanduser()
    if spec.lower().endswith(".gguf"):
        if not path.is_file():
            raise ConfigError(f"hf:{spec}: no such GGUF file")
        return Source("gguf", str(path.resolve()))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"hf:{spec}: the directory has no config.json; point at a saved transformers model")
        return Source("dir", str(path.resolve()))
    if path.exists() or spec.startswith((".", "/", "~")):
        raise ConfigError(f"hf:{spec}: not a directory or a .gguf file")
    return Source("hub", spec)


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for but CUDA is not available; use device='cpu' or 'auto'")
    return device


def pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; choose one of {', '.join(_DTYPES)}")
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def load_model(source: Source, *, device: str, dtype: Any) -> tuple[Any, Any]:
    """Load (model, tokenizer) from a :class:`Source` without touching the network."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if source.kind == "gguf":
        path = Path(source.location)
        where, kw = str(path.parent), {"gguf_file": path.name}
    else:
        where, kw = source.location, {}
    try:
        tok = AutoTokenizer.from_pretrained(where, local_files_only=True, **kw)
        model = AutoModelForCausalLM.from_pretrained(where, local_files_only=True, dtype=dtype, **kw)
    except OSError as exc:
        if source.kind == "hub":
            raise ConfigError(f"hf:{source.location}: not in the local Hugging Face cache and downloads are off here; "
                              "download it elsewhere and pass its directory, or use a .gguf file") from exc
        raise BackendError(f"loading {source.location} failed: {exc}") from exc
    except (ImportError, ValueError) as exc:
        if "accelerate" in str(exc) or "gguf" in str(exc).lower():
            raise ConfigError(f"loading {source.location} needs an optional package ({exc}); "
                              "install agentedit[local] (gguf, accelerate)") from exc
        raise
    model.to(device).eval()  # type: ignore[arg-type]
    for p in model.parameters():
        p.requires_grad_(False)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


class LocalBackend:
    """A transformers model on this machine: chat, complete, batched scoring, and editable weights."""

    def __init__(self, source: str | Source, *, device: str = "auto", dtype: str = "auto",
                 default_params: dict[str, Any] | None = None, progress: Callable[[str], None] | None = None,
                 model: Any = None, tokenizer: Any = None) -> None:
        self.source = source if isinstance(source, Source) else resolve_source(source)
        self.name = f"hf:{self.source.label}"
        self.capabilities = Capabilities(editable_weights=True, logprobs=True, chat_template=True)
        self.device = pick_device(device) if model is None else str(next(model.parameters()).device)
        self._dtype = pick_dtype(dtype, self.device) if model is None else next(model.parameters()).dtype
        self.default_params = {"temperature": 0.0, "max_tokens": 256, **(default_params or {})}
        self._progress = progress
        self._model, self._tok = model, tokenizer
        self._lock = threading.RLock()
        self._fingerprint: str | None = None

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, *, name: str = "in-memory") -> "LocalBackend":
        """Wrap a model already in memory (tests, benchmarks with random weights)."""
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return cls(Source("dir", name), model=model, tokenizer=tokenizer)

    # -- loading ---------------------------------------------------------------------------------
    def _load(self) -> None:
        with self._lock:
            if self._model is None:
                if self._progress:
                    self._progress(f"loading {self.source.label} with transformers on {self.device}")
                self._model, self._tok = load_model(self.source, device=self.device, dtype=self._dtype)
                logger.info("loaded %s on %s (%s)", self.source.label, self.device, self._dtype)

    @property
    def model(self) -> Any:
        self._load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self._load()
        return self._tok

    @property
    def lock(self) -> threading.RLock:
        """Held while generating or changing weights, so the two never interleave."""
        return self._lock

    @property
    def fingerprint(self) -> str:
        """Identifies the weights as first loaded (before any edit): config, then a sample of every tensor."""
        with self._lock:
            if self._fingerprint is None:
                self._fingerprint = weights_fingerprint(self.model)
            return self._fingerprint

    # -- text ------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of a raw text with the special tokens the tokenizer adds (Gemma's <bos>: MODELS.md)."""
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def chat_prompt(self, messages: Sequence[dict[str, Any]]) -> str:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template([dict(m) for m in messages], tokenize=False, add_generation_prompt=True)
        lines = [f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages]
        return "\n".join(lines) + "\nassistant:"

    def _generate(self, texts: Sequence[str], *, chat: bool, params: dict[str, Any]) -> list[Completion]:
        import torch

        p = {**self.default_params, **{k: v for k, v in params.items() if v is not None}}
        unknown = sorted(set(p) - {"temperature", "max_tokens", "top_p", "stop", "seed", "tools", "tool_choice", "n"})
        if unknown:
            logger.debug("%s ignores parameter(s) %s", self.name, ", ".join(unknown))
        tok, model = self.tokenizer, self.model
        batch = [self._ids_for(t, chat) for t in texts]
        width = max(len(b) for b in batch)
        pad = tok.pad_token_id
        ids = torch.tensor([[pad] * (width - len(b)) + b for b in batch], device=self.device)
        mask = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch], device=self.device)
        temperature = float(p.get("temperature") or 0.0)
        gen: dict[str, Any] = {"max_new_tokens": int(p.get("max_tokens") or 256), "pad_token_id": pad,
                               "do_sample": temperature > 0}
        if temperature > 0:
            gen.update(temperature=temperature, top_p=float(p.get("top_p") or 1.0))
            if p.get("seed") is not None:
                torch.manual_seed(int(p["seed"]))
        with self._lock, torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, **gen)
        results = []
        stops = [p["stop"]] if isinstance(p.get("stop"), str) else list(p.get("stop") or [])
        for row in out[:, width:].tolist():
            text, finish = self._decode(row, stops)
            results.append(Completion(text=text, finish_reason=finish, model=self.name,
                                      usage={"prompt_tokens": width, "completion_tokens": len(row),
                                             "total_tokens": width + len(row)}))
        return results

    def _ids_for(self, text: str, chat: bool) -> list[int]:
        if chat:  # the template already holds the special tokens it needs
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return self.encode(text)

    def _decode(self, row: list[int], stops: list[str]) -> tuple[str, str]:
        tok = self.tokenizer
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        ends = {tok.eos_token_id, *(eos if isinstance(eos, list) else [eos])}
        finish = "length"
        for i, t in enumerate(row):
            if t in ends:
                row, finish = row[:i], "stop"
                break
        text = tok.decode(row, skip_special_tokens=True)
        for s in stops:
            cut = text.find(s) if s else -1
            if cut >= 0:
                text, finish = text[:cut], "stop"
        return text, finish

    def chat(self, messages: Sequence[dict[str, Any]], **params: Any) -> Completion:
        return self._generate([self.chat_prompt(messages)], chat=True, params=params)[0]

    async def achat(self, messages: Sequence[dict[str, Any]], **params: Any) -> Completion:
        return await asyncio.to_thread(self.chat, messages, **params)

    def complete(self, prompt: str, **params: Any) -> Completion:
        return self._generate([prompt], chat=False, params=params)[0]

    async def acomplete(self, prompt: str, **params: Any) -> Completion:
        return await asyncio.to_thread(self.complete, prompt, **params)

    def complete_many(self, prompts: Sequence[str], **params: Any) -> list[Completion]:
        """Greedy completions of several raw prompts in one left-padded batch."""
        return self._generate(list(prompts), chat=False, params=params) if prompts else []

    # -- scoring ---------------------------------------------------------------------------------
    def score(self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 16) -> list[TargetScore]:
        """Teacher-forced scores of each ``(prefix, target)``: the target follows the prefix after one space."""
        import torch

        out: list[TargetScore] = []
        for start in range(0, len(pairs), batch_size):
            chunk = [split_target(self, pre, tgt) for pre, tgt in pairs[start:start + batch_size]]
            width = max(len(ids) for ids, _ in chunk)
            pad = self.tokenizer.pad_token_id
            ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in chunk], device=self.device)
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in chunk], device=self.device)
            with self._lock, torch.no_grad():
                logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            for row, (full, k) in enumerate(chunk):
                tgt = full[k:]
                pos = torch.arange(k - 1, len(full) - 1, device=self.device)
                lp = logp[row, pos]
                out.append(TargetScore(target_ids=tgt, top1=lp.argmax(-1).tolist(),
                                       logprobs=lp[torch.arange(len(tgt)), torch.tensor(tgt, device=self.device)].tolist()))
        return out

    def top1(self, prefix: str, target: str) -> tuple[list[int], list[int]]:
        """The interface of the harness's teacher-forced scorer, over these (possibly edited) weights."""
        s = self.score([(prefix, target)])[0]
        return s.target_ids, s.top1

    def close(self) -> None:
        """Drop the model (its memory is freed when nothing else holds it)."""
        with self._lock:
            self._model = None


def split_target(backend: LocalBackend, prefix: str, target: str) -> tuple[list[int], int]:
    """Token ids of ``prefix + " " + target`` and the index where the target's tokens start."""
    pre = backend.encode(prefix)
    full = backend.encode(prefix + " " + target.strip())
    k = len(pre)
    while k > 0 and (k > len(full) or full[:k] != pre[:k]):  # a merge across the boundary moves the split left
        k -= 1
    if k == 0 or k >= len(full):
        raise ConfigError(f"cannot split target {target!r} from prefix {prefix!r} into tokens")
    return full, k


def weights_fingerprint(model: Any) -> str:
    """sha256 over the config and the first 256 values of every tensor (cheap, and changes with the weights)."""
    import torch

    h = hashlib.sha256(model.config.to_json_string(use_diff=False).encode())
    with torch.no_grad():
        for name, p in model.state_dict().items():
            h.update(name.encode())
            h.update(str(tuple(p.shape)).encode())
            h.update(p.detach().reshape(-1)[:256].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]
