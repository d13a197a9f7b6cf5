"""Weight deltas and the stack that applies and reverts them.

A :class:`Delta` maps parameter names to low-rank factors (``W += left @ right`` in the
``[out, in]`` orientation; ``right=None`` means ``left`` is the dense change). It is computed
without touching the model and applied in one place, :meth:`DeltaStack.push`.

:meth:`DeltaStack.remove` restores bit-exact weights: the stack keeps a copy of each parameter
as it was before its first change and rebuilds it from that copy plus the remaining deltas in
their original order, the same floating-point operations as if the removed delta had never
been applied.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import EditError, StoreError

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Factor:
    """``left @ right`` ([out, r] @ [r, in]), or ``left`` alone when dense."""

    left: Any
    right: Any = None

    def matrix(self) -> Any:
        return self.left if self.right is None else self.left @ self.right


@dataclass(eq=False)
class Delta:
    """One applied edit (or batch): what each parameter gains, plus method-specific tensors in ``extras``."""

    method: str
    parts: dict[str, Factor]
    transposed: bool = False  # the parameters are stored [in, out] (gpt2's Conv1D)
    meta: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: "d_" + uuid.uuid4().hex[:16])

    def norm(self) -> float:
        return float(sum(float(f.matrix().float().norm()) ** 2 for f in self.parts.values()) ** 0.5)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write as safetensors (tensors in fp32 on the CPU, the rest as JSON metadata); atomic."""
        from safetensors.torch import save_file

        tensors = {}
        for name, f in self.parts.items():
            tensors[f"part::{name}::left"] = f.left.detach().float().cpu().contiguous()
            if f.right is not None:
                tensors[f"part::{name}::right"] = f.right.detach().float().cpu().contiguous()
        for name, t in self.extras.items():
            tensors[f"extra::{name}"] = t.detach().float().cpu().contiguous()
        head = {"id": self.id, "method": self.method, "transposed": self.transposed, "meta": self.meta}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp), metadata={"agentedit": json.dumps(head)})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str = "cpu") -> "Delta":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt", device=device) as fh:
                head = json.loads((fh.metadata() or {})["agentedit"])
                parts: dict[str, Factor] = {}
                extras = {}
                for key in fh.keys():
                    kind, _, rest = key.partition("::")
                    if kind == "part":
                        name, _, side = rest.rpartition("::")
                        f = parts.setdefault(name, Factor(None))
                        setattr(f, side, fh.get_tensor(key))
                    elif kind == "extra":
                        extras[rest] = fh.get_tensor(key)
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise StoreError(f"{path} is not a readable agentedit delta ({exc}); restore it or forget its edits") from exc
        return cls(method=head["method"], parts=parts, transposed=bool(head.get("transposed")), meta=head.get("meta", {}),
                   extras=extras, id=head["id"])


class DeltaStack:
    """The deltas applied to one model, in order, with the original values of every changed parameter."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._params = dict(model.named_parameters())
        self._base: dict[str, Any] = {}
        self._order: list[Delta] = []
        self.paused = False  # True inside pristine(): editors that act through hooks (GRACE, WISE) stand aside

    @property
    def deltas(self) -> list[Delta]:
        return list(self._order)

    def __contains__(self, delta_id: str) -> bool:
        return any(d.id == delta_id for d in self._order)

    def get(self, delta_id: str) -> Delta:
        for d in self._order:
            if d.id == delta_id:
                return d
        raise EditError(f"delta {delta_id!r} is not applied to this model")

    def _param(self, name: str) -> Any:
        p = self._params.get(name)
        if p is None:
            raise EditError(f"the model has no parameter {name!r}; the delta was made for another model")
        return p

    def _change(self, delta: Delta, name: str) -> Any:
        p = self._param(name)
        m = delta.parts[name].matrix().to(device=p.device, dtype=p.dtype)
        if delta.transposed:
            m = m.T
        if tuple(m.shape) != tuple(p.shape):
            raise EditError(f"delta {delta.id} does not fit {name}: shape {tuple(m.shape)} against {tuple(p.shape)}")
        return m

    def push(self, delta: Delta) -> Delta:
        """Apply ``delta``. Every change is computed before the first parameter is written."""
        import torch

        if delta.id in self:
            raise EditError(f"delta {delta.id} is already applied")
        changes = {name: self._change(delta, name) for name in delta.parts}
        with torch.no_grad():
            for name, m in changes.items():
                p = self._param(name)
                if name not in self._base:
                    self._base[name] = p.detach().to("cpu", copy=True)
                p.add_(m)
        self._order.append(delta)
        return delta

    def remove(self, delta_id: str) -> Delta:
        """Revert one delta exactly; later deltas stay applied as if it had never been."""
        delta = self.get(delta_id)
        self._order = [d for d in self._order if d is not delta]
        self._rebuild(list(delta.parts))
        return delta

    def _rebuild(self, names: list[str]) -> None:
        import torch

        with torch.no_grad():
            for name in names:
                p = self._param(name)
                p.copy_(self._base[name].to(p.device))
                users = [d for d in self._order if name in d.parts]
                for d in users:
                    p.add_(self._change(d, name))
                if not users:
                    del self._base[name]

    def clear(self) -> None:
        """Revert every delta (the weights are the loaded ones again, bit for bit)."""
        names = list(self._base)
        self._order.clear()
        self._rebuild(names)

    @contextmanager
    def pristine(self) -> Iterator[None]:
        """Within the block the model has its loaded weights (and hook-based edits stand aside); on exit the deltas are back, bit for bit."""
        import torch

        saved = {}
        paused, self.paused = self.paused, True
        with torch.no_grad():
            for name, base in self._base.items():
                p = self._param(name)
                saved[name] = p.detach().clone()
                p.copy_(base.to(p.device))
        try:
            yield
        finally:
            self.paused = paused
            with torch.no_grad():
                for name, value in saved.items():
                    self._param(name).copy_(value)
