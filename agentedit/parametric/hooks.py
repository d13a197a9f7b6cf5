"""The one hooking utility: read a module's input or output, or change its output, for one forward pass.

>>> with trace(model, {"k": "model.layers.3.mlp.down_proj"}, keep_input=True) as seen:   # doctest: +SKIP
...     model(ids)
>>> seen["k"].input      # [batch, seq, in_features]                                      # doctest: +SKIP

Hooks are removed when the block exits, even on error. A module returning a tuple (most
transformer blocks) has its first element read and changed.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

EditFn = Callable[[Any, Any], Any]  # (module input, module output) -> new output


@dataclass
class Seen:
    """What a traced module saw in the last forward pass."""

    input: Any = None
    output: Any = None


@contextmanager
def trace(model: Any, paths: Mapping[str, str], *, keep_input: bool = False, keep_output: bool = False,
          edit: Mapping[str, EditFn] | None = None, detach: bool = True) -> Iterator[dict[str, Seen]]:
    """Hook the modules at ``paths`` (label -> dotted path) for the duration of the block.

    ``edit[label](input, output)`` returns the output to use instead (tensors; tuples are handled here).
    """
    seen = {label: Seen() for label in paths}
    handles = []

    def make(label: str) -> Callable[..., Any]:
        fn = (edit or {}).get(label)

        def hook(mod: Any, args: tuple[Any, ...], output: Any) -> Any:
            x = args[0] if args else None
            first = output[0] if isinstance(output, tuple) else output
            if fn is not None:
                first = fn(x, first)
            if keep_input:
                seen[label].input = x.detach() if detach and x is not None else x
            if keep_output:
                seen[label].output = first.detach() if detach else first
            if fn is None:
                return None
            return (first, *output[1:]) if isinstance(output, tuple) else first

        return hook

    try:
        for label, path in paths.items():
            handles.append(model.get_submodule(path).register_forward_hook(make(label)))
        yield seen
    finally:
        for h in handles:
            h.remove()
