"""The console's menu: its groups of screens, each entry with the roles that may open it.

A new screen adds its entry to a group here; the menu shows a user only the entries of their
role, and a group of which they may open one screen only as that screen's link (the route
checks the role again: hiding a link is never the only guard).
"""

from __future__ import annotations

from dataclasses import dataclass

from outbound.console.i18n import N_
from outbound.domain.users import UserRole

__all__ = ["ADMINS", "MANAGERS", "MENU", "MENU_GROUPS", "MenuEntry", "MenuGroup", "menu_for"]

ADMINS = (UserRole.ADMIN,)
MANAGERS = (UserRole.ADMIN, UserRole.SUPERVISOR)
EVERYONE = (UserRole.ADMIN, UserRole.SUPERVISOR, UserRole.AGENT)


@dataclass(frozen=True)
class MenuEntry:
    path: str
    label: str
    """An English msgid, translated when shown."""
    roles: tuple[UserRole, ...]

    def current(self, path: str) -> bool:
        """Whether the page at ``path`` is this entry's screen (or one of its objects)."""
        return path == self.path or path.startswith(self.path + "/")


@dataclass(frozen=True)
class MenuGroup:
    label: str
    """An English msgid, translated when shown."""
    entries: tuple[MenuEntry, ...]

    def current(self, path: str) -> bool:
        return any(entry.current(path) for entry in self.entries)


MENU_GROUPS: list[MenuGroup] = [
    MenuGroup(
        N_("Tracking"),
        (
            MenuEntry("/dashboard", N_("Dashboard"), MANAGERS),
            MenuEntry("/messages", N_("Messages"), EVERYONE),
            MenuEntry("/reports", N_("Reports"), MANAGERS),
        ),
    ),
    MenuGroup(
        N_("Sending"),
        (
            MenuEntry("/templates", N_("Templates"), ADMINS),
            MenuEntry("/configurations", N_("Configurations"), ADMINS),
            MenuEntry("/flows", N_("Flows"), ADMINS),
        ),
    ),
    MenuGroup(
        N_("Customers"),
        (
            MenuEntry("/contacts", N_("Contacts"), MANAGERS),
            MenuEntry("/cases", N_("Cases"), MANAGERS),
        ),
    ),
    MenuGroup(
        N_("Agents"),
        (
            MenuEntry("/workspace", N_("Workspace"), EVERYONE),
            MenuEntry("/supervision", N_("Supervision"), MANAGERS),
            MenuEntry("/routing", N_("Routing"), MANAGERS),
        ),
    ),
    MenuGroup(
        N_("Administration"),
        (
            MenuEntry("/channels", N_("Channels"), ADMINS),
            MenuEntry("/users", N_("Users and API keys"), ADMINS),
            MenuEntry("/settings", N_("Settings"), ADMINS),
        ),
    ),
]

MENU: list[MenuEntry] = [entry for group in MENU_GROUPS for entry in group.entries]
"""Every entry, group after group."""


def menu_for(role: UserRole) -> list[MenuGroup]:
    """The groups of the entries ``role`` may open, without the empty ones."""
    groups = []
    for group in MENU_GROUPS:
        entries = tuple(entry for entry in group.entries if role in entry.roles)
        if entries:
            groups.append(MenuGroup(group.label, entries))
    return groups
