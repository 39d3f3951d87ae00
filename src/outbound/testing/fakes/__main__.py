"""Run one fake provider server from a shell until SIGTERM or SIGINT.

Examples::

    python -m outbound.testing.fakes twilio --port 8081 --account-sid AC... --auth-token secret
    python -m outbound.testing.fakes telesign --customer-id ... --api-key ... --latency 0.05
    python -m outbound.testing.fakes acs --access-key ... --subscription-url http://.../events

The base URL (``http://HOST:PORT``) is printed on standard output as the first line once the
server listens, so a parent process can read it (``--port 0``, the default, picks a free port).

``twilio-inbound`` posts one customer message to a channel's webhook, signed as Twilio signs
it, and exits (0 when the service accepted it), so that a reply can be tried from a shell::

    python -m outbound.testing.fakes twilio-inbound http://127.0.0.1:8000/webhooks/<channel id> \
        --from +33612345678 --to +15005550006 --body "Merci !" [--whatsapp]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from outbound.testing.fakes.acs import DEFAULT_ACCESS_KEY, FakeACS
from outbound.testing.fakes.base import FakeProviderServer
from outbound.testing.fakes.telesign import DEFAULT_API_KEY, DEFAULT_CUSTOMER_ID, FakeTeleSign
from outbound.testing.fakes.twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio

__all__ = ["build_fake", "main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    root = argparse.ArgumentParser(
        prog="python -m outbound.testing.fakes", description="Run a fake SMS provider."
    )
    commands = root.add_subparsers(dest="provider", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--host", default="127.0.0.1", help="address to listen on")
        sub.add_argument("--port", type=int, default=0, help="port (0 = a free one)")
        sub.add_argument("--latency", type=float, default=0.0, help="seconds before answering")
        sub.add_argument(
            "--callback-delay", type=float, default=0.5, help="seconds between status callbacks"
        )
        sub.add_argument(
            "--max-concurrent", type=int, default=None, help="answer 429 beyond this many"
        )
        sub.add_argument(
            "--slow-share",
            type=float,
            default=0.0,
            help="share of calls (0-1, spread evenly) that wait --slow-seconds more",
        )
        sub.add_argument("--slow-seconds", type=float, default=0.0, help="see --slow-share")

    twilio = commands.add_parser("twilio", help="Twilio Programmable Messaging (SMS, WhatsApp)")
    twilio.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    twilio.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    common(twilio)

    inbound = commands.add_parser(
        "twilio-inbound",
        help="post one customer message (SMS or WhatsApp) to a channel's webhook, as Twilio",
    )
    inbound.add_argument("url", help="the channel's webhook_url, absolute")
    inbound.add_argument("--from", dest="from_", required=True, help="the customer's number")
    inbound.add_argument("--to", required=True, help="the channel's sender")
    inbound.add_argument("--body", required=True, help="the message's text")
    inbound.add_argument(
        "--whatsapp", action="store_true", help="a WhatsApp message (opens the 24-hour window)"
    )
    inbound.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    inbound.add_argument(
        "--auth-token", default=DEFAULT_AUTH_TOKEN, help="the channel's, which signs the request"
    )

    telesign = commands.add_parser("telesign", help="TeleSign Messaging (SMS)")
    telesign.add_argument("--customer-id", default=DEFAULT_CUSTOMER_ID)
    telesign.add_argument("--api-key", default=DEFAULT_API_KEY, help="base64 API key")
    telesign.add_argument("--callback-url", default=None, help="account-level callback URL")
    common(telesign)

    acs = commands.add_parser("acs", help="Azure Communication Services SMS + Event Grid")
    acs.add_argument("--access-key", default=DEFAULT_ACCESS_KEY, help="base64 access key")
    acs.add_argument("--subscription-url", default=None, help="Event Grid webhook URL")
    acs.add_argument("--subscription-name", default="outbound-sms")
    acs.add_argument(
        "--validate", action="store_true", help="run the Event Grid handshake at start"
    )
    common(acs)
    return root


def build_fake(args: argparse.Namespace) -> FakeProviderServer:
    """The fake described by parsed arguments."""
    common = {
        "host": args.host,
        "port": args.port,
        "latency": args.latency,
        "callback_delay": args.callback_delay,
        "max_concurrent": args.max_concurrent,
        "slow_share": args.slow_share,
        "slow_seconds": args.slow_seconds,
    }
    if args.provider == "twilio":
        return FakeTwilio(args.account_sid, args.auth_token, **common)
    if args.provider == "telesign":
        return FakeTeleSign(
            args.customer_id, args.api_key, callback_url=args.callback_url, **common
        )
    return FakeACS(
        args.access_key,
        subscription_url=args.subscription_url,
        subscription_name=args.subscription_name,
        **common,
    )


async def _serve(args: argparse.Namespace) -> None:
    fake = build_fake(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with fake:
        sys.stdout.write(fake.base_url + "\n")
        sys.stdout.flush()
        if isinstance(fake, FakeACS) and args.validate:
            ok = await fake.validate_subscription()
            sys.stderr.write(f"Event Grid subscription validation: {'ok' if ok else 'FAILED'}\n")
        await stop.wait()


async def _inbound(args: argparse.Namespace) -> int:
    async with FakeTwilio(args.account_sid, args.auth_token) as fake:
        status = await fake.send_inbound(
            args.url, from_=args.from_, to=args.to, body=args.body, whatsapp=args.whatsapp
        )
    if status is None:
        sys.stderr.write(f"could not reach {args.url}\n")
        return 1
    sys.stdout.write(f"{status}\n")
    return 0 if 200 <= status < 300 else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, serve until SIGTERM/SIGINT (or post one inbound message), return the
    exit status."""
    args = parser().parse_args(argv)
    if args.provider == "twilio-inbound":
        return asyncio.run(_inbound(args))
    try:
        import uvloop
    except ImportError:  # pragma: no cover - installed with the package
        asyncio.run(_serve(args))
    else:
        # The service's own event loop: a fake that answered more slowly than the service
        # sends would measure the fake in benchmarks.
        uvloop.run(_serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
