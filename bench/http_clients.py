"""Which async HTTP client to use for provider calls: ``python -m bench.http_clients``.

Sends the same form POST to a local aiohttp server (answering at once) with aiohttp and with
httpx2, at the same concurrency, and prints requests per second for each.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
import httpx2
from aiohttp import web
from rich.console import Console
from rich.table import Table

BODY = b"To=%2B33612345678&From=%2B15005550006&Body=Hello+Ana"


async def _server() -> tuple[web.AppRunner, str]:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"sid": "SM" + "0" * 32, "status": "queued"}, status=201)

    app = web.Application()
    app.router.add_post("/send", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/send"


async def _run(send, total: int, concurrency: int) -> float:  # type: ignore[no-untyped-def]
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            await send()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(total)))
    return total / (time.perf_counter() - started)


async def main(total: int, concurrency: int) -> dict[str, float]:
    runner, url = await _server()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    results: dict[str, float] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def aiohttp_send() -> None:
            async with s.post(url, data=BODY, headers=headers) as response:
                await response.read()

        await _run(aiohttp_send, 200, concurrency)
        results["aiohttp"] = await _run(aiohttp_send, total, concurrency)
    limits = httpx2.Limits(max_connections=concurrency)
    async with httpx2.AsyncClient(limits=limits) as client:

        async def httpx_send() -> None:
            response = await client.post(url, content=BODY, headers=headers)
            response.read()

        await _run(httpx_send, 200, concurrency)
        results["httpx2"] = await _run(httpx_send, total, concurrency)
    await runner.cleanup()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.http_clients")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    figures = asyncio.run(main(args.requests, args.concurrency))
    table = Table(title=f"HTTP clients, {args.requests} POSTs, {args.concurrency} in flight")
    table.add_column("client")
    table.add_column("requests/s", justify="right")
    table.add_column("ratio to aiohttp", justify="right")
    for name, rate in figures.items():
        table.add_row(name, f"{rate:.0f}", f"{rate / figures['aiohttp']:.2f}")
    Console().print(table)
