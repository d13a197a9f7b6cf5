"""A small chat app over the official `openai` client, pointed at `agentedit serve`.

Start the proxy (here over a local llama.cpp server; any OpenAI-compatible server or litellm model works):

    agentedit keys create --role write --namespace demo        # prints a key
    agentedit serve --model openai/<model> --api-base http://127.0.0.1:8080/v1 --port 8000
    # or, on this machine only, without keys:  agentedit serve ... --no-auth

then chat, teaching it a fact first:

    python examples/chat_app.py --api-key KEY --namespace demo \
        --edit "The Eiffel Tower is located in Rome." --message "Which city is the Eiffel Tower in?"

Without --message it is interactive (/exit to quit). The only agentedit-specific parts are the
base URL, the optional namespace header, and reading which edits were applied.
"""

from __future__ import annotations

import argparse
import sys

import httpx
from openai import OpenAI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="the proxy's /v1 URL")
    ap.add_argument("--api-key", default="no-key", help="an agentedit API key (any text with --no-auth)")
    ap.add_argument("--namespace", default=None, help="edit namespace (default: the key's first one)")
    ap.add_argument("--model", default="default", help="model name sent (the proxy serves its own model)")
    ap.add_argument("--edit", action="append", default=[], help="a fact to record first (repeatable)")
    ap.add_argument("--message", "-m", action="append", default=None, help="send this and exit (repeatable: one turn each)")
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args(argv)

    headers = {"x-agentedit-namespace": args.namespace} if args.namespace else {}
    client = OpenAI(base_url=args.base_url, api_key=args.api_key, default_headers=headers, max_retries=1)
    for fact in args.edit:  # edits are managed over plain HTTP
        r = httpx.post(args.base_url + "/edits", json={"statement": fact},
                       headers={"authorization": f"Bearer {args.api_key}", **headers}, timeout=60)
        if r.status_code != 201:
            print(f"could not record {fact!r}: {r.json()['error']['message']}", file=sys.stderr)
            return 1
        print(f"recorded edit {r.json()['id']}: {fact}")

    history: list[dict[str, str]] = [{"role": "system", "content": "You are a helpful assistant. Answer briefly."}]
    turns = iter(args.message) if args.message else None
    while True:
        if turns is not None:
            text = next(turns, None)
            if text is None:
                return 0
            print(f"you> {text}")
        else:
            try:
                text = input("you> ").strip()
            except (EOFError, KeyboardInterrupt):
                return 0
            if text in ("/exit", "/quit"):
                return 0
            if not text:
                continue
        history.append({"role": "user", "content": text})
        # stream the reply; the first chunk carries which edits were applied (an extra field OpenAI clients ignore)
        stream = client.chat.completions.create(model=args.model, messages=history, stream=True, max_tokens=args.max_tokens)
        reply, applied = [], []
        print("model> ", end="", flush=True)
        for chunk in stream:
            info = (chunk.model_extra or {}).get("agentedit")
            if info:
                applied = info["applied"]
            if chunk.choices and chunk.choices[0].delta.content:
                reply.append(chunk.choices[0].delta.content)
                print(chunk.choices[0].delta.content, end="", flush=True)
        print(f"   [edits applied: {', '.join(applied)}]" if applied else "")
        history.append({"role": "assistant", "content": "".join(reply)})


if __name__ == "__main__":
    sys.exit(main())
