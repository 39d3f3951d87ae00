"""A bare webhook receiver: ``python -m bench.receiver --port PORT``.

Answers every ``POST`` with ``200`` and counts them; ``GET /count`` returns the count. The
benchmark points the fake provider's status callbacks at it to measure what the machine allows
for a whole message (one send and its two signed callbacks) with nothing of the service in the
way -- no parsing, no signature check, no database.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web


async def _serve(port: int) -> None:
    received = 0

    async def count(_request: web.Request) -> web.Response:
        return web.Response(text=str(received))

    async def callback(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        return web.Response(text="")

    app = web.Application()
    app.router.add_get("/count", count)
    app.router.add_post("/{tail:.*}", callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.receiver")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - installed with the package
        asyncio.run(_serve(args.port))
    else:
        uvloop.run(_serve(args.port))


if __name__ == "__main__":
    main()
