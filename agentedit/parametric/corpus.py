"""Text for the second-moment statistics, available offline.

ROME and MEMIT estimate ``E[k kᵀ]`` over Wikipedia; nothing can be downloaded here, so the
default is text the model itself writes (:class:`SampledCorpus`): prose-like continuations of
common sentence openings, sampled at temperature 1 from the unedited weights. It matches the
model's own distribution of keys but is narrower than Wikipedia, so the statistics see fewer
kinds of facts. :class:`TextCorpus` takes any text you have (a file or strings) instead.
Both yield token-id rows and have an ``id`` that keys the statistics cache.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

from ..errors import ConfigError

logger = logging.getLogger(__name__)

OPENINGS = ("The", "In", "A", "It", "He", "She", "This", "On", "After", "During", "His", "Her", "According to",
            "Many", "When", "There")


class Corpus(Protocol):
    @property
    def id(self) -> str: ...

    def rows(self, backend: Any, cache_dir: Path | None) -> list[list[int]]: ...


@dataclass(frozen=True)
class SampledCorpus:
    """``n_samples`` texts of ``length`` tokens sampled from the model (cached per model under ``cache_dir``)."""

    n_samples: int = 64
    length: int = 128
    seed: int = 0
    batch_size: int = 16

    @property
    def id(self) -> str:
        return f"sampled-{self.n_samples}x{self.length}-seed{self.seed}"

    def rows(self, backend: Any, cache_dir: Path | None) -> list[list[int]]:
        import torch

        path = cache_dir / f"{self.id}.pt" if cache_dir else None
        if path is not None and path.exists():
            return torch.load(path)
        logger.info("sampling %d texts of %d tokens from %s for the statistics", self.n_samples, self.length, backend.name)
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        tok, model = backend.tokenizer, backend.model
        out: list[list[int]] = []
        for start in range(0, self.n_samples, self.batch_size):
            n = min(self.batch_size, self.n_samples - start)
            prompts = [backend.encode(OPENINGS[(start + i) % len(OPENINGS)]) for i in range(n)]
            width = max(map(len, prompts))
            ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompts], device=backend.device)
            mask = (torch.arange(width, device=backend.device)[None, :] >= torch.tensor(
                [width - len(p) for p in prompts], device=backend.device)[:, None]).long()
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            with torch.no_grad():
                res = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                                     top_p=1.0, max_new_tokens=self.length - width, min_new_tokens=self.length - width,
                                     pad_token_id=tok.pad_token_id)
            for i, row in enumerate(res.tolist()):
                out.append(row[width - len(prompts[i]):])
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(out, path)
        return out


class TextCorpus:
    """Your own text: strings, or a UTF-8 file, cut into rows of ``length`` tokens."""

    def __init__(self, texts: Sequence[str] | str | Path, *, length: int = 128, max_rows: int = 256) -> None:
        if isinstance(texts, (str, Path)) and Path(texts).is_file():
            texts = [Path(texts).read_text("utf-8")]
        elif isinstance(texts, (str, Path)):
            raise ConfigError(f"corpus file {texts} not found")
        self.texts = [t for t in texts if t.strip()]
        if not self.texts:
            raise ConfigError("the corpus is empty; give some text for the statistics")
        self.length, self.max_rows = length, max_rows
        digest = hashlib.sha256("\x00".join(self.texts).encode()).hexdigest()[:12]
        self.id = f"text-{digest}-{length}x{max_rows}"

    def rows(self, backend: Any, cache_dir: Path | None) -> list[list[int]]:
        out: list[list[int]] = []
        for text in self.texts:
            ids = backend.encode(text)
            out += [ids[i:i + self.length] for i in range(0, len(ids), self.length) if len(ids[i:i + self.length]) > 8]
        return out[: self.max_rows]


def batches(rows: list[list[int]], pad: int, size: int, device: str) -> Iterator[tuple[Any, Any]]:
    """Right-padded (ids, mask) batches."""
    import torch

    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        width = max(map(len, chunk))
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in chunk], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in chunk], device=device)
        yield ids, mask
