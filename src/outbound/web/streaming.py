"""Request bodies read a chunk at a time by code that runs in a worker thread.

Uploaded lists may be large: the synchronous service pulls the body chunk by chunk while the
event loop keeps receiving it, so at most a chunk or two of it is in memory at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio.from_thread

__all__ = ["blocking_chunks"]


def blocking_chunks(chunks: AsyncIterator[bytes]) -> Iterator[bytes]:
    """An async body stream as a blocking iterator, for a consumer in a worker thread."""

    async def next_chunk() -> bytes | None:
        try:
            return await anext(chunks)
        except StopAsyncIteration:
            return None

    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        if chunk:
            yield chunk
