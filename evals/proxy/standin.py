"""The stand-in upstream: a minimal OpenAI-compatible server that answers at once (its own process, started by
proxy_bench.py with ``--stand-in-upstream PORT``)."""

from __future__ import annotations

import asyncio
import json

_REPLY = {"id": "chatcmpl-standin", "object": "chat.completion", "created": 0, "model": "standin",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}


def _stream_body() -> bytes:
    base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0, "model": "standin"}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
              {**base, "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}]},
              {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
              {**base, "choices": [], "usage": _REPLY["usage"]}]
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"


async def _standin_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    plain, stream = json.dumps(_REPLY).encode(), _stream_body()
    try:
        for _ in range(1_000_000):  # keep-alive: one request per turn, bounded
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            streamed = b'"stream": true' in body or b'"stream":true' in body
            payload, ctype = (stream, b"text/event-stream") if streamed else (plain, b"application/json")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: " + ctype + b"\r\ncontent-length: "
                         + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def run_standin(port: int) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_standin_connection, "127.0.0.1", port, limit=2**24)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
