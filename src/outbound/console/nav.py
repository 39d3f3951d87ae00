"""The console's menu: one entry per screen, with the roles that may open it.

A new screen adds its entry here; the menu shows a user only the entries of their role (the
route checks the role again: hiding a link is never the only guard).
"""

from __future__ import annotations

from dataclasses import dataclass

from outbound.console.i18n import N_
from outbound.domain.users import UserRole

__all__ = ["ADMINS", "MANAGERS", "MENU", "MenuEntry", "menu_for"]

ADMINS = (UserRole.ADMIN,)
MANAGERS = (UserRole.ADMIN, UserRole.SUPERVISOR)
EVERYONE = (UserRole.ADMIN, UserRole.SUPERVISOR, UserRole.AGENT)


@dataclass(frozen=True)
class MenuEntry:
    path: str
    label: str
    """An English msgid, translated when shown."""
    roles: tuple[UserRole, ...]


MENU: list[MenuEntry] = [
    MenuEntry("/dashboard", N_("Dashboard"), MANAGERS),
    MenuEntry("/workspace", N_("Workspace"), EVERYONE),
    MenuEntry("/supervision", N_("Supervision"), MANAGERS),
    MenuEntry("/messages", N_("Messages"), EVERYONE),
    MenuEntry("/reports", N_("Reports"), MANAGERS),
    MenuEntry("/templates", N_("Templates"), ADMINS),
    MenuEntry("/channels", N_("Channels"), ADMINS),
    MenuEntry("/configurations", N_("Configurations"), ADMINS),
    MenuEntry("/flows", N_("Flows"), ADMINS),
    MenuEntry("/contacts", N_("Contacts"), MANAGERS),
    MenuEntry("/routing", N_("Routing"), MANAGERS),
    MenuEntry("/users", N_("Users"), ADMINS),
    MenuEntry("/settings", N_("Settings"), ADMINS),
]


def menu_for(role: UserRole) -> list[MenuEntry]:
    return [entry for entry in MENU if role in entry.roles]
