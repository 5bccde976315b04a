"""Groups in a real Chromium: create one, invite, accept and decline invitations,
request to join a public group and have the request accepted, promote and demote
(member, moderator, administrator), remove a member, leave."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.gateways.http.restsite import RestSite
from tests.web.pages import (
    button,
    by_label,
    find,
    heading,
    link,
    screen,
    sign_in,
    sign_out,
    wait_for,
    wait_text,
)


def _invite(b: Any, login: str, role: str) -> None:
    field = by_label(b, "Find a user to invite")
    field.clear()
    field.send_keys(login)
    Select(by_label(b, "Role")).select_by_visible_text(role)
    button(b, "Find").click()
    button(b, f"Invite {login}").click()
    wait_text(b, f"Invited {login}.", "#flash")


def _roles(site: RestSite, gid: str) -> dict[str, int]:
    access = site.get(f"group/{gid}/access", "admin").json()
    members = site.get(f"group/{gid}/member", "admin").json()
    levels = {u["login"]: u["level"] for u in access["users"]}
    return {u["login"]: levels.get(u["login"], 0) for u in members}


def test_group_life(web_site: RestSite, browser: Any) -> None:
    b, base = browser, web_site.server.url
    sign_in(b, base, "alice", next_path="/groups")
    heading(b, "Groups")
    by_label(b, "Name").send_keys("Crew")
    by_label(b, "Description").send_keys("<b>not bold</b>")
    find(b, "#group-public").click()
    button(b, "Create group").click()
    heading(b, "Crew")
    gid = b.current_url.rsplit("/", 1)[1]
    assert find(b, "p.description").text == "<b>not bold</b>"
    assert _roles(web_site, gid) == {"alice": 2}
    _invite(b, "bobby", "Moderator")
    _invite(b, "admin", "Member")
    assert [e.get_attribute("data-login") for e in
            b.find_elements(By.CSS_SELECTOR, "#invited-list li")] == ["admin", "bobby"]
    screen(b, "group")
    sign_out(b)

    sign_in(b, base, "bobby", next_path="/groups")
    heading(b, "Groups")
    assert "Crew invites you as Moderator." in find(b, "#invitations").text
    link(b, "Crew").click()
    heading(b, "Crew")
    button(b, "Accept invitation").click()
    wait_text(b, "You joined “Crew”.", "#flash")
    assert _roles(web_site, gid) == {"alice": 2, "bobby": 1}
    sign_out(b)

    sign_in(b, base, "admin", next_path=f"/group/{gid}")
    heading(b, "Crew")
    button(b, "Decline").click()
    wait_text(b, "Invitation declined.", "#flash")
    assert web_site.get(f"group/{gid}/invitation", "alice").json() == []
    sign_out(b)

    sign_in(b, base, "carol", next_path=f"/group/{gid}")  # a public group: she may ask
    heading(b, "Crew")
    button(b, "Request to join").click()
    wait_text(b, "Request sent", "#flash")
    sign_out(b)

    sign_in(b, base, "alice", next_path=f"/group/{gid}")
    heading(b, "Crew")
    find(b, "#requests li[data-login='carol'] button.primary").click()  # Accept
    wait_text(b, "carol joined.", "#flash")
    assert _roles(web_site, gid) == {"alice": 2, "bobby": 1, "carol": 0}
    Select(find(b, "tr[data-login='carol'] select")).select_by_visible_text("Administrator")
    find(b, "tr[data-login='carol'] button.set-role").click()
    wait_text(b, "carol is now administrator.", "#flash")
    Select(find(b, "tr[data-login='bobby'] select")).select_by_visible_text("Member")
    find(b, "tr[data-login='bobby'] button.set-role").click()
    wait_text(b, "bobby is now member.", "#flash")
    assert _roles(web_site, gid) == {"alice": 2, "bobby": 0, "carol": 2}
    find(b, "tr[data-login='carol'] button.danger").click()  # Remove
    wait_text(b, "Removed carol.", "#flash")
    assert _roles(web_site, gid) == {"alice": 2, "bobby": 0}
    sign_out(b)

    sign_in(b, base, "bobby", next_path=f"/group/{gid}")
    heading(b, "Crew")
    assert b.find_elements(By.CSS_SELECTOR, "tr select, #manage") == []  # a member only
    button(b, "Leave group").click()
    find(b, "dialog[open] button.danger").click()
    heading(b, "Groups")
    wait_text(b, "You left “Crew”.", "#flash")
    assert _roles(web_site, gid) == {"alice": 2}
    wait_for(lambda: "(member)" not in find(b, "li[data-group='Crew']").text, "not a member")
    sign_out(b)
