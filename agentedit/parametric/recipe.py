"""RECIPE (Chen et al., 2024): retrieval-augmented continuous prompts, the LLM left frozen.

An edit is its knowledge statement (the prompt followed by the new target) encoded once, at edit time, by the
trained prompt encoder (:mod:`~agentedit.parametric.recipe_encoder`) into ``k`` virtual tokens in the LLM's
input embedding space; its delta holds those (``extras["prompt"]``, ``[k, hidden]``) and its retrieval key, the
statement's sentence vector (``extras["key"]``). At query time each input row is decoded back to text and
embedded; the nearest edit is retrieved only when the knowledge sentinel says it applies (the store's trained
:class:`~agentedit.scope.sentinel.SentinelModel`: the query must be closer to the edit than to the learned
sentinel, a threshold that moves with the query), and that edit's virtual tokens are put before the row's
tokens. Rows no edit applies to keep their tokens; a batch no edit applies to runs untouched, bit for bit.

The prefix goes in through two hooks on the model's body (:class:`PromptAdapter`): before a pass the input ids
become input embeddings with the prompts in front (attention mask and positions extended), after it the prompt
positions are cut from the hidden states, so callers see the shapes they asked for. Generation steps that
continue a prefixed pass (the same KV cache) get the mask and positions the cache now needs.

The encoder and the sentinel are trained by ``agentedit train-recipe`` and live in ``<store>/recipe/``; without
them this method refuses to edit with a :class:`~agentedit.errors.ConfigError` saying so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, EditError
from .adapters import Adapter, AdapterMethod
from .deltas import Delta
from .requests import EditRequest

logger = logging.getLogger(__name__)

RECIPE_DIRNAME = "recipe"  # <store>/recipe: the sentinel (scope.sentinel) and the prompt encoders


@dataclass
class RECIPEConfig:
    folder: str | None = None  # the trained encoder and sentinel; default <store>/recipe
    margin: float = 0.0  # retrieve an edit when cos(query, edit) beats cos(query, sentinel) by more than this


@dataclass
class Prompts:
    """The active edits' retrieval keys ``[n, dim]`` (numpy) and virtual tokens ``[n, k, hidden]``."""

    keys: Any = None
    prompts: Any = None

    def __len__(self) -> int:
        return 0 if self.keys is None else int(self.keys.shape[0])


@dataclass
class _Session:
    """A prefixed pass whose KV cache later generation steps continue."""

    cache: Any
    extra_mask: Any  # [b, k]: 1 where the row got a prompt
    shift: Any  # [b]: k where the row got a prompt, else 0


class PromptAdapter(Adapter):
    """RECIPE's hooks on the model body: prompts in before the pass, their positions out after it."""

    def __init__(self, ctx: Any, method: "AdapterMethod", path: str) -> None:
        self.ctx, self.method, self.path = ctx, method, path
        self.pending: list[Delta] = []
        self._key: tuple[str, ...] = ()
        self._state: Any = None
        self.aside = False
        self._session: _Session | None = None
        self._cut = 0
        body = ctx.backend.model.get_submodule(path)
        self.handles = [body.register_forward_pre_hook(self._before, with_kwargs=True),
                        body.register_forward_hook(self._after)]

    def _idle(self) -> bool:
        return (self.ctx.stack.paused or self.aside
                or (not self.pending and not any(d.method == self.method.name for d in self.ctx.stack.deltas)))

    def _before(self, mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import torch

        self._cut = 0
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None or self._idle():  # input embeddings given (training) or nothing to retrieve
            self._session = None
            return None
        past = kwargs.get("past_key_values")
        seen = past.get_seq_length() if past is not None and hasattr(past, "get_seq_length") else 0
        if seen:
            s = self._session
            if s is None or s.cache is not past:
                return None
            return (), self._continue(s, ids, kwargs)
        mask = kwargs.get("attention_mask")
        if mask is None:
            mask = torch.ones_like(ids)
        picks = self.method.choose(self.state(), ids, mask)
        if all(p < 0 for p in picks):
            self._session = None
            return None
        state: Prompts = self.state()
        embed = mod.get_input_embeddings()
        tokens = embed(ids)
        k = state.prompts.shape[1]
        on = torch.tensor([p >= 0 for p in picks], device=ids.device)
        chosen = state.prompts[torch.tensor([max(p, 0) for p in picks], device=state.prompts.device)]
        chosen = chosen.to(device=tokens.device, dtype=tokens.dtype) * on[:, None, None].to(tokens.dtype)
        extra = on[:, None].to(mask.dtype).expand(-1, k)
        full = torch.cat([extra, mask], dim=1)
        kwargs = {**kwargs, "input_ids": None, "inputs_embeds": torch.cat([chosen, tokens], dim=1),
                  "attention_mask": full, "position_ids": (full.long().cumsum(-1) - 1).clamp_min(0)}
        self._session = _Session(cache=past, extra_mask=extra, shift=on.long() * k)
        self._cut = k
        return (), kwargs

    def _continue(self, s: _Session, ids: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A generation step after a prefixed pass: the cache holds the prompt positions too."""
        import torch

        kwargs = dict(kwargs)
        kwargs["input_ids"] = ids
        mask = kwargs.get("attention_mask")
        if mask is not None:
            kwargs["attention_mask"] = torch.cat([s.extra_mask.to(mask.dtype), mask], dim=1)
        pos = kwargs.get("position_ids")
        if pos is not None:
            kwargs["position_ids"] = pos + s.shift[:, None].to(pos.device)
        elif mask is not None:
            full = kwargs["attention_mask"].long()
            kwargs["position_ids"] = (full.cumsum(-1) - 1).clamp_min(0)[:, -ids.shape[1]:]
        if kwargs.get("cache_position") is not None:
            kwargs["cache_position"] = kwargs["cache_position"] + int(s.extra_mask.shape[1])
        return kwargs

    def _after(self, mod: Any, args: tuple[Any, ...], output: Any) -> Any:
        cut, self._cut = self._cut, 0
        if not cut:
            return None
        if self._session is not None and self._session.cache is None:
            self._session.cache = getattr(output, "past_key_values", None)
        if isinstance(output, tuple):
            return (output[0][:, cut:], *output[1:])
        output.last_hidden_state = output.last_hidden_state[:, cut:]
        return output

    def _hook(self, mod: Any, args: tuple[Any, ...], output: Any) -> Any:  # the base class's single hook: unused
        return None


class RECIPE(AdapterMethod):
    name = "recipe"
    config_type = RECIPEConfig
    adapter_type = PromptAdapter

    def __init__(self, ctx: Any, config: Any = None) -> None:
        cfg = config if config is not None else RECIPEConfig()
        self.folder = recipe_folder(ctx, cfg)
        self.sentinel = _cached(ctx, ("recipe-sentinel", str(self.folder)), lambda: _load_sentinel(self.folder, ctx))
        super().__init__(ctx, cfg)

    def module_path(self) -> str:
        return self.ctx.layout.body_path

    @property
    def embedder(self) -> Any:
        if self.ctx.embedder is None:
            from ..memory import shared_embedder

            self.ctx.embedder = shared_embedder()
        return self.ctx.embedder

    # -- state ----------------------------------------------------------------------------------------
    def empty_state(self) -> Prompts:
        return Prompts()

    def extend(self, state: Prompts, deltas: Sequence[Delta]) -> Prompts:
        import numpy as np
        import torch

        if not deltas:
            return state
        dev = self.ctx.backend.device
        keys = [d.extras["key"].float().cpu().numpy() for d in deltas]
        prompts = []
        for d in deltas:
            n = int(d.extras["key"].shape[0])
            p = d.extras["prompt"].to(dev).float()
            prompts.append(p.reshape(n, p.shape[0] // n, p.shape[1]))
        if len({p.shape[1:] for p in prompts} | ({state.prompts.shape[1:]} if len(state) else set())) > 1:
            raise EditError("recipe edits made with encoders of different prompt lengths cannot be mixed; "
                            "forget the older ones or retrain with the same --prompt-tokens")
        return Prompts(np.concatenate(([state.keys] if len(state) else []) + keys),
                       torch.cat(([state.prompts] if len(state) else []) + prompts))

    def choose(self, state: Prompts, ids: Any, mask: Any) -> list[int]:
        """Per row: the index of the edit the sentinel lets through (the nearest one), or -1."""
        if not len(state):
            return [-1] * int(ids.shape[0])
        tok = self.ctx.backend.tokenizer
        texts = [tok.decode(row[m.bool()].tolist(), skip_special_tokens=True).strip() for row, m in zip(ids, mask)]
        vecs = self.embedder.embed(texts)
        out = []
        for text, q in zip(texts, vecs):
            if not text:
                out.append(-1)
                continue
            sims, bar = self.sentinel.scores(q, state.keys)
            best = int(sims.argmax())
            out.append(best if float(sims[best]) > bar + self.config.margin else -1)
        return out

    def forward(self, state: Any, x: Any, out: Any) -> Any:  # the prompt goes in through PromptAdapter's hooks
        return out

    # -- edits ------------------------------------------------------------------------------------------
    def edit_one(self, req: EditRequest) -> dict[str, Any]:
        import torch

        from ..records import make_statement

        encoder = self._encoder()
        statement = make_statement(req.prompt, req.target)
        vec = torch.tensor(self.embedder.embed([statement]), device=self.ctx.backend.device, dtype=torch.float32)
        target = target_ids(self.ctx.backend, req.prompt, req.target)
        with torch.no_grad():
            prompt = encode(self.ctx, encoder, vec, [target])[0]
        logger.debug("recipe: %s -> %s (%d target tokens)", req.prompt, req.target, len(target))
        return {"prompt": prompt.detach().float(), "key": vec.detach().float()}

    def _encoder(self) -> Any:
        from .recipe_encoder import load_encoder

        key = ("recipe-encoder", str(self.folder))
        return _cached(self.ctx, key, lambda: load_encoder(self.folder, self.ctx.backend,
                                                           self.ctx.layout.hidden_size)[0])


def recipe_folder(ctx: Any, config: RECIPEConfig) -> Path:
    if config.folder:
        return Path(config.folder)
    if ctx.store_dir is None:
        raise ConfigError("the recipe method needs the store's folder (its trained encoder is in <store>/recipe); edit "
                          "through an Editor, or set RECIPEConfig(folder=...)")
    return Path(ctx.store_dir) / RECIPE_DIRNAME


def _load_sentinel(folder: Path, ctx: Any) -> Any:
    from ..scope.sentinel import SentinelModel

    try:
        model = SentinelModel.load(folder)
    except ConfigError as exc:
        raise ConfigError(f"the recipe method needs its knowledge sentinel and prompt encoder: {exc}; run "
                          "`agentedit --model hf:... train-recipe`") from exc
    trained_on, ours = model.meta.get("embedder"), getattr(ctx.embedder, "name", None)
    if trained_on and ours and trained_on != ours:
        raise ConfigError(f"the knowledge sentinel in {folder} was trained on embedder {trained_on!r}, the store uses "
                          f"{ours!r}; run `agentedit train-recipe` again for this store")
    return model


def _cached(ctx: Any, key: Any, make: Any) -> Any:
    if key not in ctx.extra:
        ctx.extra[key] = make()
    return ctx.extra[key]


def target_ids(backend: Any, prompt: str, target: str) -> list[int]:
    """The target's token ids as they follow the prompt (split as the teacher-forced scorer splits them)."""
    from ..backends.local import split_target

    full, at = split_target(backend, prompt, target)
    return full[at:]


def encode(ctx: Any, encoder: Any, vecs: Any, targets: Sequence[Sequence[int]]) -> Any:
    """Prompts ``[B, k, hidden]`` of statements (their vectors) and targets (token ids), in the encoder's dtype."""
    import torch

    width = max(1, max(len(t) for t in targets))
    dev = ctx.backend.device
    ids = torch.tensor([list(t) + [0] * (width - len(t)) for t in targets], device=dev)
    mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in targets], device=dev)
    emb = ctx.backend.model.get_input_embeddings()(ids).float()
    return encoder(vecs, emb, mask)
