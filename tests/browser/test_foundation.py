"""The console's foundation in a browser: signing in and out, roles, CSRF, French, API docs."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from outbound.console.nav import MENU
from outbound.domain.users import UserRole
from tests.browser.conftest import PASSWORD, ConsoleServer
from tests.browser.helpers import sign_in, snap


def test_an_admin_signs_in_and_out(page: Page, console_server: ConsoleServer) -> None:
    base = console_server.url
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", name="Sign in to outbound")).to_be_visible()
    snap(page, "login")

    page.get_by_label("E-mail address").fill(console_server.admin.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The e-mail address or the password is wrong.")
    expect(page.get_by_label("E-mail address")).to_have_value(console_server.admin.email)

    sign_in(page, base, console_server.admin.email, PASSWORD)
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    menu = page.get_by_role("navigation", name="Main menu")
    expect(menu.locator("summary")).to_have_text(
        ["Tracking", "Sending", "Customers", "Agents", "Administration"]
    )
    expect(menu.locator("a")).to_have_count(len(MENU))

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(base + "/dashboard")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fdashboard$"))


def test_an_agent_cannot_reach_the_admin_screens(page: Page, console_server: ConsoleServer) -> None:
    base = console_server.url
    sign_in(page, base, console_server.agent.email, PASSWORD)
    menu = page.get_by_role("navigation", name="Main menu")
    # One screen in a group is its link, not a group.
    expect(menu.get_by_role("link")).to_have_text(["Messages", "Workspace"])
    expect(menu.locator("summary")).to_have_count(0)
    forbidden = [entry for entry in MENU if UserRole.AGENT not in entry.roles]
    assert forbidden
    for entry in forbidden:
        expect(menu.locator(f'a[href="{entry.path}"]')).to_have_count(0)
    for path in [entry.path for entry in forbidden]:
        response = page.goto(base + path)
        assert response is not None and response.status == 403, path
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    snap(page, "not-allowed")


def test_the_menu_works_with_the_keyboard_and_on_a_phone(
    browser: Browser, page: Page, console_server: ConsoleServer
) -> None:
    sign_in(page, console_server.url, console_server.admin.email, PASSWORD)
    menu = page.get_by_role("navigation", name="Main menu")
    tracking = menu.locator("summary", has_text="Tracking")
    # The page's own group is marked; its screen is the current page.
    expect(menu.locator("details[data-current] > summary")).to_have_text("Tracking")
    tracking.focus()
    page.keyboard.press("Enter")
    expect(menu.get_by_role("link", name="Reports")).to_be_visible()
    expect(menu.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    snap(page, "menu")
    # Another group closes the first; Escape closes it and gives the focus back.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(menu.locator("summary", has_text="Sending")).to_be_focused()
    page.keyboard.press("Space")
    expect(menu.get_by_role("link", name="Templates")).to_be_visible()
    expect(menu.get_by_role("link", name="Reports")).to_have_count(0)
    page.keyboard.press("Tab")
    page.keyboard.press("Escape")
    expect(menu.get_by_role("link", name="Templates")).to_have_count(0)
    expect(menu.locator("summary", has_text="Sending")).to_be_focused()
    page.get_by_role("heading", name="Dashboard").click()
    # On a phone, in French: the groups fit, a group opens in the page's flow.
    context = browser.new_context(
        locale="fr-FR", viewport={"width": 320, "height": 640}, timezone_id="Europe/Paris"
    )
    try:
        phone = context.new_page()
        phone.goto(console_server.url + "/login")
        phone.get_by_label("Adresse e-mail").fill(console_server.admin.email)
        phone.get_by_label("Mot de passe").fill(PASSWORD)
        phone.get_by_role("button", name="Se connecter").click()
        menu = phone.get_by_role("navigation", name="Menu principal")
        menu.locator("summary", has_text="Administration").click()
        expect(menu.get_by_role("link", name="Réglages")).to_be_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 320, width
        phone.screenshot(path=str(snap(phone, "menu-phone")), full_page=True)
    finally:
        context.close()


def test_a_form_without_its_csrf_token_is_refused(
    page: Page, console_server: ConsoleServer
) -> None:
    base = console_server.url
    sign_in(page, base, console_server.admin.email, PASSWORD)
    # The sign-out form, stripped of its token as a forged form would be.
    page.locator('form[action="/logout"] input[name="csrf_token"]').evaluate("e => e.remove()")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("This form has expired")
    # Still signed in: the refused form changed nothing.
    page.goto(base + "/dashboard")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    # A request from elsewhere with the session cookie but no token is refused as well.
    response = page.request.post(base + "/logout", form={"x": "1"})
    assert response.status == 403


def test_the_french_console_speaks_french(browser: Browser, console_server: ConsoleServer) -> None:
    context = browser.new_context(
        locale="fr-FR", viewport={"width": 1280, "height": 800}, timezone_id="Europe/Paris"
    )
    try:
        page = context.new_page()
        page.goto(console_server.url + "/login")
        expect(page.get_by_role("heading", name="Connexion à outbound")).to_be_visible()
        assert page.locator("html").get_attribute("lang") == "fr"
        page.get_by_label("Adresse e-mail").fill(console_server.admin.email)
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").click()
        menu = page.get_by_role("navigation", name="Menu principal")
        expect(menu.locator("summary")).to_have_text(
            ["Suivi", "Envoi", "Clients", "Agents", "Administration"]
        )
        menu.locator("summary", has_text="Suivi").click()
        expect(menu.get_by_role("link", name="Tableau de bord")).to_be_visible()
        expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
        expect(page.locator("footer")).to_contain_text("Les heures sont affichées en")
        snap(page, "dashboard-fr")
        # What the service refuses is said in French too, beside its field.
        page.goto(console_server.url + "/templates/new")
        page.locator("#f-name").fill("Rappel")
        page.locator("#f-default_locale").fill("fr-FR")
        page.locator("#f-default_text").fill("Bonjour {CustomerName")
        expect(page.locator("#count-default_text").get_by_role("paragraph").first).to_have_text(
            "Erreur de champ au caractère 9 : champ non fermé"
        )
        page.get_by_role("button", name="Enregistrer le modèle").click()
        expect(page.locator("#e-default_text")).to_have_text(
            "modèle mal formé : champ non fermé à la position 8"
        )
        snap(page, "template-error-fr")
    finally:
        context.close()


def test_the_api_documentation_loads_nothing_from_elsewhere(
    page: Page, console_server: ConsoleServer
) -> None:
    base = console_server.url
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: None if request.url.startswith(base) else elsewhere.append(request.url),
    )
    page.goto(base + "/docs")
    expect(page.get_by_role("button", name=re.compile("Authorize"))).to_be_visible()
    expect(page.get_by_text("POST/v1/outbound/send").first).to_be_visible()
    snap(page, "api-docs")
    page.get_by_role("button", name=re.compile("Authorize")).first.click()
    expect(page.get_by_text("apiKey  (http, Bearer)")).to_be_visible()
    assert [url for url in elsewhere if not url.startswith(("data:", "blob:"))] == []


def test_a_user_signs_out_their_other_sessions(
    browser: Browser, page: Page, console_server: ConsoleServer
) -> None:
    base = console_server.url
    phone = browser.new_context(viewport={"width": 390, "height": 800}, locale="en-GB")
    try:
        other = phone.new_page()
        sign_in(other, base, console_server.agent.email, PASSWORD)
        sign_in(page, base, console_server.agent.email, PASSWORD)
        page.get_by_role("link", name=console_server.agent.name).click()
        expect(page.get_by_role("heading", name="Your sessions")).to_be_visible()
        rows = page.get_by_role("table").get_by_role("row")
        expect(rows).to_have_count(3)  # the header, two sessions
        expect(rows.filter(has_text="this session")).to_have_count(1)
        snap(page, "sessions")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Sign out all other sessions").click()
        expect(page.get_by_role("status")).to_have_text("1 session was signed out.")
        expect(rows).to_have_count(2)
        other.reload()
        expect(other.get_by_role("heading", name="Sign in to outbound")).to_be_visible()
    finally:
        phone.close()
