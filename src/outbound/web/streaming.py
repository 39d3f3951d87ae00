"""Request bodies read as text lines, a chunk at a time, by code that runs in a thread.

Uploaded lists may be large: they are decoded incrementally and handed to the (synchronous)
service line by line while the event loop keeps receiving the body, so at most a chunk or
two of it is in memory at once.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator, Iterator

from starlette.requests import Request

from outbound.errors import InvalidRequestError

__all__ = ["body_lines"]


async def _text_lines(request: Request) -> AsyncIterator[list[str]]:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    pending = ""
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            pending += decoder.decode(chunk)
            lines = pending.splitlines(keepends=True)
            # The last piece may be an unfinished line; keep it for the next chunk.
            pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
            if lines:
                yield lines
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("the body must be UTF-8 text", field="body") from exc
    if pending:
        yield [pending]


def body_lines(request: Request, loop: asyncio.AbstractEventLoop) -> Iterator[str]:
    """The body's lines (with their line endings), for a consumer running in a worker thread.

    Each step asks the event loop ``loop`` for the next chunk and waits for it.
    """
    source = _text_lines(request)
    while True:
        future = asyncio.run_coroutine_threadsafe(anext(source, None), loop)
        lines = future.result()
        if lines is None:
            return
        yield from lines
