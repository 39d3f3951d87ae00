"""The provider registry: every adapter of this package, by provider name.

A provider is one module of :mod:`outbound.adapters.providers` that sets ``ADAPTER`` to its
adapter class (a :class:`~outbound.adapters.providers.base.ProviderAdapter`). The registry
finds those modules itself, so adding a provider is adding its module (and its fake in
:mod:`outbound.testing.fakes`), nothing else. Services ask :func:`adapter_for` for a provider's
facts (credentials, channel types, body limit, webhook authentication and parsing), and the
composition root asks :func:`build_providers` for the adapters it sends through.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from outbound.adapters import providers as _package
from outbound.adapters.providers.base import Provider, ProviderAdapter, ProviderDeps

__all__ = ["ADAPTERS", "adapter_for", "build_providers"]


def _discover() -> dict[str, type[ProviderAdapter]]:
    found: dict[str, type[ProviderAdapter]] = {}
    for module in pkgutil.iter_modules(_package.__path__, _package.__name__ + "."):
        adapter = getattr(importlib.import_module(module.name), "ADAPTER", None)
        if adapter is not None:
            found[adapter.name] = adapter
    return dict(sorted(found.items()))


ADAPTERS: Final[Mapping[str, type[ProviderAdapter]]] = MappingProxyType(_discover())


def adapter_for(provider: str) -> type[ProviderAdapter]:
    """The adapter class of ``provider``; ``KeyError`` for a name no module declares."""
    return ADAPTERS[provider]


def build_providers(deps: ProviderDeps) -> dict[str, Provider]:
    """One adapter per provider, built from what the composition root holds."""
    return {name: adapter.create(deps) for name, adapter in ADAPTERS.items()}
