// Groups: the list (with your invitations and a form to create one) and a
// group's page: join, request to join, accept or decline an invitation, leave;
// for moderators and admins: invite, accept requests, promote and demote
// (member, moderator, administrator), remove; for admins: delete the group.
import { call, get, restore, session } from "./api.js";
import { confirmDialog } from "./dialogs.js";
import { h, showError } from "./dom.js";
import { checkbox, errorFor, field, onSubmit, pageHeading, panel } from "./forms.js";
import { pager, pageState } from "./table.js";

const PAGE = 50;
const ROLES = ["Member", "Moderator", "Administrator"];
const groupUrl = (g) => `/group/${g._id}`;

export async function groupsView(ctx) {
  const { page } = pageState(ctx.url);
  const { data, total } = await call("GET", "group", { params: { limit: PAGE,
    offset: page * PAGE, sort: "name" } });
  const me = session.user ? await restore() : null;
  const invites = me ? await Promise.all((me.groupInvites || []).map(async (i) =>
    ({ ...i, group: await get(`group/${i.groupId}`).catch(() => null) }))) : [];
  const mine = new Set((me && me.groups) || []);
  const rows = data.map((g) => h("li", { class: "entry", dataset: { group: g.name } },
    h("a", { href: groupUrl(g) }, g.name),
    mine.has(g._id) ? h("span", { class: "muted" }, " (member)") : null,
    g.public ? null : h("span", { class: "muted" }, " · private"),
    g.description ? h("p", { class: "muted description" }, g.description) : null));
  return { title: "Groups", node: h("section", {},
    pageHeading("Groups"),
    invites.filter((i) => i.group).length ? panel("invitations", "Your invitations",
      h("ul", { class: "entries" }, invites.filter((i) => i.group).map((i) =>
        h("li", { class: "entry" }, h("a", { href: groupUrl(i.group) }, i.group.name),
          ` invites you as ${ROLES[i.level] || "member"}.`))))
      : null,
    rows.length ? h("ul", { class: "entries", id: "group-list" }, rows)
      : h("p", { class: "muted" }, "No groups to show."),
    pager(ctx, page, PAGE, total ?? data.length),
    me ? newGroupPanel(ctx) : null) };
}

function newGroupPanel(ctx) {
  const name = field("group-name", "Name", { required: true, autocomplete: "off" });
  const description = field("group-description", "Description", { autocomplete: "off" });
  const isPublic = checkbox("group-public", "Public: anyone can see it and ask to join");
  const error = errorFor("new-group-error");
  const form = h("form", {}, h("div", { class: "form-grid" }, name.row, description.row),
    isPublic.row, error, h("div", {}, h("button", { type: "submit", class: "primary" },
      "Create group")));
  onSubmit(form, error, async () => {
    const { data } = await call("POST", "group", { form: { name: name.input.value.trim(),
      description: description.input.value.trim(), public: isPublic.input.checked } });
    ctx.navigate(groupUrl(data), { flash: `Created the group “${data.name}”.` });
  }, { name, description });
  return panel("new-group", "New group", form);
}

export async function groupView(ctx, id) {
  const group = await get(`group/${id}`);
  const level = group._accessLevel ?? -1;
  const me = session.user ? await restore() : null;
  const [members, access, invited] = await Promise.all([
    get(`group/${id}/member`, { limit: 200 }),
    get(`group/${id}/access`),
    level >= 1 ? get(`group/${id}/invitation`, { limit: 200 }) : []]);
  const roleOf = new Map(access.users.map((u) => [u.id, u.level]));
  const error = errorFor("group-error");
  const act = async (work, flash, away = false) => {
    showError(error, null);
    try {
      await work();
      await restore();
      ctx.navigate(away ? "/groups" : groupUrl(group), { replace: !away, flash });
    } catch (err) {
      showError(error, err);
    }
  };
  const btn = (label, onclick, cls) => h("button", { type: "button", class: cls, onclick },
    label);
  const isMember = Boolean(me && members.some((u) => u._id === me._id));
  const invite = me && (me.groupInvites || []).find((i) => i.groupId === group._id);

  // What you can do about your own membership.
  const own = [];
  if (invite) {
    own.push(h("p", { class: "notice", id: "invited" },
      `You are invited to join as ${ROLES[invite.level] || "member"}.`),
    btn("Accept invitation", () => act(() => call("POST", `group/${id}/member`),
      `You joined “${group.name}”.`), "primary"), " ",
    btn("Decline", () => act(() => call("DELETE", `group/${id}/member`),
      "Invitation declined.")));
  } else if (isMember) {
    own.push(btn("Leave group", async () => {
      const ok = await confirmDialog({ title: `Leave “${group.name}”?`,
        message: "You lose what the group gives you access to.", confirmLabel: "Leave" });
      if (ok) act(() => call("DELETE", `group/${id}/member`), `You left “${group.name}”.`, true);
    }, "danger"));
  } else if (me) {
    own.push(btn("Request to join", () => act(() => call("POST", `group/${id}/member`),
      "Request sent: a group moderator or administrator will answer it.")));
  }

  const memberRows = members.map((u) => {
    const role = roleOf.get(u._id) ?? 0;
    let roleCell = ROLES[role];
    if (level >= 2 && !(me && u._id === me._id)) {
      // Administrators change roles in place: choose, then Set (a keyboard user
      // moving through the choices does not send each one).
      const select = h("select", { "aria-label": `Role of ${u.login}`, class: "role-select" },
        ROLES.map((r, n) => h("option", { value: String(n), selected: n === role }, r)));
      const set = btn("Set", () => {
        const to = Number(select.value);
        if (to !== role) {
          act(() => setRole(id, u._id, role, to),
            `${u.login} is now ${ROLES[to].toLowerCase()}.`);
        }
      }, "set-role");
      set.setAttribute("aria-label", `Set the role of ${u.login}`);
      roleCell = h("span", { class: "inline" }, select, set);
    }
    const remove = level >= 1 && !(me && u._id === me._id)
      ? btn("Remove", () => act(() => call("DELETE", `group/${id}/member`,
        { params: { userId: u._id } }), `Removed ${u.login}.`), "danger") : null;
    const cells = [h("td", { class: "name" }, u.login),
      h("td", { class: "name person" }, `${u.firstName || ""} ${u.lastName || ""}`),
      h("td", { class: "role" }, roleCell), h("td", { class: "row-actions" }, remove)];
    return h("tr", { dataset: { login: u.login } }, cells);
  });

  return { title: group.name, node: h("section", {},
    h("p", { class: "crumbs" }, h("a", { href: "/groups" }, "Groups")),
    pageHeading(group.name),
    h("p", { class: "muted" }, group.public ? "Public group" : "Private group",
      level >= 0 && isMember ? ` · you are ${ROLES[Math.max(0, roleOf.get(me._id) ?? 0)]
        .toLowerCase()}` : ""),
    group.description ? h("p", { class: "description" }, group.description) : null,
    h("div", { class: "toolbar", id: "membership" }, own), error,
    panel("members", `Members (${members.length})`, h("div", { class: "table-wrap" },
      h("table", { class: "members" }, h("thead", {}, h("tr", {},
        ["Login", "Name", "Role", ""].map((t, n) => h("th", { class: n === 1 ? "person" : null },
          t)))),
      h("tbody", {}, memberRows)))),
    level >= 1 ? await managePanel(id, group, invited, act, btn) : null,
    level >= 2 ? h("div", { class: "toolbar" }, btn("Delete group…", async () => {
      const ok = await confirmDialog({ title: `Delete the group “${group.name}”?`,
        message: "Members lose what the group gives them access to. This cannot be undone.",
        items: [group.name], confirmLabel: "Delete group" });
      if (ok) act(() => call("DELETE", `group/${id}`), `Deleted the group “${group.name}”.`, true);
    }, "danger")) : null) };
}

// Roles are two flags on the server (moderator, admin): go from one to another.
async function setRole(id, userId, from, to) {
  const params = { userId };
  if (from === 2) await call("DELETE", `group/${id}/admin`, { params });
  if (from === 1) await call("DELETE", `group/${id}/moderator`, { params });
  if (to === 1) await call("POST", `group/${id}/moderator`, { params });
  if (to === 2) await call("POST", `group/${id}/admin`, { params });
}

async function managePanel(id, group, invited, act, btn) {
  const requests = await Promise.all((group.requests || []).map((uid) =>
    get(`user/${uid}`).catch(() => null)));
  const found = h("ul", { class: "found", id: "invite-found" });
  const who = field("invite-who", "Find a user to invite", { type: "search",
                                                            autocomplete: "off" });
  const role = field("invite-role", "Role", { tag: "select", options: ROLES.map((r, n) =>
    h("option", { value: String(n) }, r)) });
  const error = errorFor("invite-error");
  const form = h("form", {}, h("div", { class: "form-grid" }, who.row, role.row),
    h("div", {}, h("button", { type: "submit" }, "Find")), found, error);
  onSubmit(form, error, async () => {
    const users = await get("user", { text: who.input.value.trim(), limit: 8 });
    found.replaceChildren(...users.map((u) => h("li", {}, btn(`Invite ${u.login}`,
      () => act(() => call("POST", `group/${id}/invitation`, { form: { userId: u._id,
        level: role.input.value } }), `Invited ${u.login}.`)))));
    if (!users.length) found.replaceChildren(h("li", { class: "muted" }, "No match."));
  });
  return panel("manage", "Invitations and requests",
    requests.filter(Boolean).length ? h("div", {}, h("h3", {}, "Asking to join"),
      h("ul", { class: "entries", id: "requests" }, requests.filter(Boolean).map((u) =>
        h("li", { class: "entry", dataset: { login: u.login } }, `${u.login} `,
          btn("Accept", () => act(() => call("POST", `group/${id}/invitation`,
            { form: { userId: u._id, level: 0 } }), `${u.login} joined.`), "primary"), " ",
          btn("Refuse", () => act(() => call("DELETE", `group/${id}/member`,
            { params: { userId: u._id } }), `Refused ${u.login}.`)))))) : null,
    invited.length ? h("div", {}, h("h3", {}, "Invited"),
      h("ul", { class: "entries", id: "invited-list" }, invited.map((u) =>
        h("li", { class: "entry", dataset: { login: u.login } }, `${u.login} `,
          btn("Cancel invitation", () => act(() => call("DELETE", `group/${id}/member`,
            { params: { userId: u._id } }), `Cancelled the invitation of ${u.login}.`))))))
      : null,
    h("h3", {}, "Invite"), form);
}
