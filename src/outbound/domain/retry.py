"""Retry timing: capped exponential backoff with jitter, honouring a provider's Retry-After."""

from __future__ import annotations

import random

__all__ = ["retry_delay"]


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1).

    A provider's ``Retry-After`` wins when given: it knows when it will take traffic again.
    Otherwise the delay doubles per attempt up to ``cap``, with "equal jitter" (half fixed,
    half random) so that a burst of failures does not come back as a burst.
    """
    if retry_after is not None and retry_after >= 0:
        return float(retry_after)
    exponent = min(max(attempt, 1) - 1, 62)
    delay = min(cap, base * (2.0**exponent))
    return delay / 2 + (rng or random).uniform(0, delay / 2)
