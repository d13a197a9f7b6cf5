"""Commands that ask: ask, chat, demo, models."""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.markup import escape

from .common import app, console, err_console, _emit_json, _status, _editor


@app.command()
def ask(
    ctx: typer.Context,
    question: str = typer.Argument(..., help="The question (or sentence prefix with --style complete)."),
    style: str = typer.Option("chat", "--style", help="chat | complete (finish a sentence) | text (raw completion)."),
    system: Optional[str] = typer.Option(None, "--system", help="A system message of your own."),
    max_tokens: int = typer.Option(256, "--max-tokens"),
    trace: bool = typer.Option(False, "--trace", help="Show retrieved edits, scope decisions, hops and timings."),
    multihop: str = typer.Option("auto", "--multihop", help="Decompose chained questions: auto (when needed) | always | never."),
    hop_limit: int = typer.Option(4, "--hop-limit", help="Most sub-questions per decomposed question."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole Answer as JSON."),
) -> None:
    """Ask a question; in-scope edits are applied, others are not."""
    with _editor(ctx, multihop=multihop, hop_limit=hop_limit) as ed:
        ans = ed.ask(question, style=style, system=system, max_tokens=max_tokens)  # type: ignore[arg-type]
    if as_json:
        _emit_json(ans.to_dict())
        return
    console.print(ans.text)
    if trace or ans.applied:
        err_console.print(f"[dim]mode={ans.mode} applied={ans.applied or '-'}[/dim]")
    if trace:
        err_console.print(f"  [dim]routing: {'decomposed' if ans.decomposed else 'single pass'} ({ans.plan_reason})[/dim]")
        for i, h in enumerate(ans.hops, 1):
            settled = f" -> [green]{h['answer']}[/green] (edit {h['accepted']})" if h["contradicted"] else ""
            err_console.print(f"  hop {i}: {h['sub_question']} | model: {h['tentative']}{settled} | retrieved {h['retrieved'] or '-'}, "
                              f"in scope {h['accepted'] or '-'}")
        if ans.decomposed:
            err_console.print(f"  [dim]stopped: {ans.stop}; {ans.model_calls} model call(s)[/dim]")
        for d in ans.decisions:
            mark = "[green]in[/green]" if d.in_scope else "[red]out[/red]"
            err_console.print(f"  {mark} {d.edit_id} sim={d.similarity:.3f} ({d.checker}: {d.reason})")
        err_console.print("  timings (ms): " + ", ".join(f"{k}={v:.1f}" for k, v in ans.timings.items()))


@app.command()
def chat(
    ctx: typer.Context,
    message: Optional[str] = typer.Option(None, "--message", "-M", help="Send one message and exit (otherwise interactive)."),
    system: Optional[str] = typer.Option(None, "--system"),
    as_json: bool = typer.Option(False, "--json", help="Print OpenAI-shaped responses as JSON."),
) -> None:
    """Chat with the edited model (interactive, or one --message)."""
    history: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    with _editor(ctx) as ed:
        lines = [message] if message is not None else None
        while True:
            if lines is not None:
                if not lines:
                    break
                text = lines.pop(0)
            else:
                try:
                    text = console.input("[bold]you>[/bold] ")
                except (EOFError, KeyboardInterrupt):
                    break
                if text.strip() in ("/exit", "/quit"):
                    break
                if not text.strip():
                    continue
            history.append({"role": "user", "content": text})
            resp = ed.chat(history)
            reply = resp["choices"][0]["message"]["content"]
            history.append({"role": "assistant", "content": reply})
            if as_json:
                _emit_json(resp)
            else:
                applied = resp["agentedit"]["applied"]
                console.print(f"[bold cyan]model>[/bold cyan] {reply}" + (f"  [dim](edits: {', '.join(applied)})[/dim]" if applied else ""))
                if resp["agentedit"].get("resolved_query"):  # a follow-up: what the scope check read it as
                    console.print(f"  [dim](read as: {escape(resp['agentedit']['resolved_query'])})[/dim]")



@app.command()
def models(fetch: Optional[str] = typer.Option(None, "--fetch", help="Provision this model into the cache now.")) -> None:
    """List the local models agentedit can provision (and fetch one)."""
    from ..provision import cache_dir, ensure_model, known_models

    if fetch:
        path = ensure_model(fetch, progress=_status)
        console.print(f"{fetch}: {path}")
        return
    for name in known_models():
        path = cache_dir() / "models" / f"{name}.gguf"
        console.print(f"{name}\t{'cached' if path.exists() else 'not fetched'}")


@app.command()
def demo(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show edits at work on the embedded local model: answers before and after, and an unrelated question."""
    from ..demo import run_demo

    run_demo(ctx.obj, console=console, status=_status, as_json=as_json)
