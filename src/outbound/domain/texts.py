"""What text and numbers the service can store, compare and send back.

PostgreSQL can neither store nor compare the NUL character; half of a surrogate pair (JSON can
escape one alone, ``"\\ud800"``) is taken by no database and no UTF-8 encoder; JSON has no NaN
or infinity, though Python's parser reads them (and ``1e309``); and integers beyond signed 64
bits fit no column and lose digits in most JSON readers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

from outbound.texts import N_

__all__ = ["INT_MAX", "INT_MIN", "TOO_LARGE", "storable", "unstorable"]

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
TOO_LARGE: Final = N_("must be an integer between -2^63 and 2^63-1")


def unstorable(value: object, *, numbers: bool = True) -> str | None:
    """Why ``value`` (looking into the keys and items of mappings and lists) cannot be stored
    or sent back, or None when it can; ``numbers=False`` looks at texts only.

    >>> unstorable({"name": "a\\x00b"})
    'must not contain the NUL character (U+0000)'
    """
    if isinstance(value, str):
        if "\x00" in value:
            return N_("must not contain the NUL character (U+0000)")
        # isascii() reads a flag: most texts skip the search.
        if value.isascii() or _SURROGATE.search(value) is None:
            return None
        return N_("must not contain half of a surrogate pair (U+D800 to U+DFFF)")
    if numbers and isinstance(value, float) and not math.isfinite(value):
        return N_("must be a finite number (not NaN or infinity)")
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return None if INT_MIN <= value <= INT_MAX else TOO_LARGE
    if isinstance(value, dict):
        for key, item in value.items():
            problem = unstorable(key, numbers=numbers) or unstorable(item, numbers=numbers)
            if problem is not None:
                return problem
    elif isinstance(value, list | tuple):
        for item in value:
            problem = unstorable(item, numbers=numbers)
            if problem is not None:
                return problem
    return None


def storable(value: Any) -> Any:
    """``value`` made storable, for what the service cannot refuse (a provider's callback):
    NUL removed, half surrogates as U+FFFD, non-finite numbers and integers beyond 64 bits as
    text; mappings and lists looked into. A storable value comes back as it is.

    >>> storable({"body": "a\\x00b", "n": float("nan")})
    {'body': 'ab', 'n': 'nan'}
    """
    if isinstance(value, str):
        if value.isascii():
            return value.replace("\x00", "") if "\x00" in value else value
        return _SURROGATE.sub("\ufffd", value.replace("\x00", ""))
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        return str(value)
    if isinstance(value, Mapping):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value
