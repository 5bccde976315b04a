// Administration (site administrators only): users and server settings here;
// assetstores, uploads in progress and the consistency check in adminsys.js.
// The server refuses every one of these calls to anyone else: hiding the pages
// is a courtesy, not the protection.
import { call, get, session } from "./api.js";
import { collectionPolicyForm } from "./adminpolicy.js";
import { assetstoresTab, checkTab, uploadsTab } from "./adminsys.js";
import { confirmDialog } from "./dialogs.js";
import { h, showError } from "./dom.js";
import { checkbox, errorFor, field, notice, onSubmit, pageHeading, panel, say } from "./forms.js";
import { pager, pageState } from "./table.js";

const USERS_PAGE = 50;
const TABS = [["/admin", "Users"], ["/admin/assetstores", "Assetstores"],
  ["/admin/settings", "Settings"], ["/admin/uploads", "Uploads"], ["/admin/check", "Check"]];

export async function adminView(ctx) {
  const path = ctx.url.pathname.replace(/\/$/, "");
  if (!session.user || !session.user.admin) {
    return { title: "Administration", node: h("section", {}, pageHeading("Administration"),
      h("p", { class: "error", role: "alert", id: "admin-refused" },
        "Only site administrators can see this page."),
      session.user ? null : h("a", { href: `/login?next=${encodeURIComponent(path)}` },
        "Sign in")) };
  }
  const tab = TABS.find(([href]) => href === path);
  if (!tab) return { title: "Not found", node: h("p", {}, "There is no such page.") };
  const views = { "/admin": usersTab, "/admin/assetstores": assetstoresTab,
                  "/admin/settings": settingsTab, "/admin/uploads": uploadsTab,
                  "/admin/check": checkTab };
  const body = await views[tab[0]](ctx);
  return { title: `${tab[1]} – Administration`, node: h("section", {},
    pageHeading("Administration"),
    h("nav", { class: "tabs", "aria-label": "Administration" }, TABS.map(([href, label]) =>
      h("a", { href, "aria-current": href === tab[0] ? "page" : null }, label))),
    body) };
}

// ----------------------------------------------------------------- users

async function usersTab(ctx) {
  const text = ctx.url.searchParams.get("q") || "";
  const { page } = pageState(ctx.url);
  // A search shows its first 100 matches; the full list is paged (50 a page).
  const [users, count] = await Promise.all([
    get("user", text ? { text, limit: 100, sort: "login" }
      : { limit: USERS_PAGE, offset: page * USERS_PAGE, sort: "login" }),
    text ? null : get("user/details")]);
  const listError = errorFor("users-error");
  const done = notice("users-done");
  const act = async (work, message) => {
    showError(listError, null);
    try {
      await work();
      ctx.navigate(ctx.url.pathname + ctx.url.search, { replace: true, flash: message });
    } catch (err) {
      showError(listError, err);
    }
  };
  const profile = (u) => ({ firstName: u.firstName, lastName: u.lastName, email: u.email });
  const rows = users.map((u) => {
    const enabled = (u.status || "enabled") === "enabled";
    const state = u.status === "pending" ? "Awaiting approval" : enabled ? "Enabled" : "Disabled";
    const isMe = u._id === session.user._id;
    return h("tr", { dataset: { login: u.login } },
      h("td", { class: "name" }, u.login),
      h("td", { class: "name person" }, `${u.firstName} ${u.lastName}`),
      h("td", { class: "name email" }, u.email || ""),
      h("td", { class: "state" }, state, u.admin ? ", admin" : ""),
      h("td", { class: "row-actions" },
        h("button", { type: "button", class: "toggle", disabled: isMe, onclick: () => act(
          () => call("PUT", `user/${u._id}`, { form: { ...profile(u),
            status: enabled ? "disabled" : "enabled" } }),
          `${enabled ? "Disabled" : "Enabled"} ${u.login}.`) },
        enabled ? "Disable" : u.status === "pending" ? "Approve" : "Enable"), " ",
        h("button", { type: "button", class: "admin", disabled: isMe, onclick: () => act(
          () => call("PUT", `user/${u._id}`, { form: { ...profile(u), admin: !u.admin } }),
          `${u.login} is ${u.admin ? "no longer" : "now"} a site administrator.`) },
        u.admin ? "Remove admin" : "Make admin"), " ",
        h("button", { type: "button", class: "danger", disabled: isMe, onclick: async () => {
          const ok = await confirmDialog({ title: `Delete the user ${u.login}?`,
            message: "The account and everything it owns will be deleted. This cannot " +
              "be undone.", items: [u.login], confirmLabel: "Delete user" });
          if (ok) act(() => call("DELETE", `user/${u._id}`), `Deleted ${u.login}.`);
        } }, "Delete")));
  });
  const q = h("input", { id: "user-q", type: "search", value: text, autocomplete: "off" });
  const search = h("form", { class: "inline", role: "search" },
    h("label", { for: "user-q" }, "Find users"), q,
    h("button", { type: "submit" }, "Find"));
  search.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = q.value.trim();
    ctx.navigate(value ? `/admin?${new URLSearchParams({ q: value })}` : "/admin");
  });
  return h("div", {}, done, search, listError,
    h("div", { class: "table-wrap" }, h("table", { class: "users" },
      h("thead", {}, h("tr", {}, ["Login", "Name", "Email", "State", ""].map((t) =>
        h("th", { class: { Name: "person", Email: "email" }[t] }, t)))),
      h("tbody", {}, rows.length ? rows
        : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No users match."))))),
    count ? pager(ctx, page, USERS_PAGE, count.nUsers) : null,
    newUserPanel(ctx));
}

function newUserPanel(ctx) {
  const login = field("nu-login", "Login", { required: true, autocomplete: "off" });
  const email = field("nu-email", "Email", { type: "email", required: true,
                                             autocomplete: "off" });
  const first = field("nu-first", "First name", { required: true, autocomplete: "off" });
  const last = field("nu-last", "Last name", { required: true, autocomplete: "off" });
  const password = field("nu-password", "Password", { type: "password", required: true,
                                                      autocomplete: "new-password" });
  const admin = checkbox("nu-admin", "Site administrator");
  const error = errorFor("new-user-error");
  const form = h("form", {}, h("div", { class: "form-grid" }, login.row, email.row, first.row,
    last.row, password.row), admin.row, error,
  h("div", {}, h("button", { type: "submit", class: "primary" }, "Create user")));
  onSubmit(form, error, async () => {
    const { data } = await call("POST", "user", { form: { login: login.input.value.trim(),
      email: email.input.value.trim(), firstName: first.input.value.trim(),
      lastName: last.input.value.trim(), password: password.input.value,
      admin: admin.input.checked } });
    ctx.navigate("/admin", { flash: `Created the user ${data.login}.` });
  }, { login, email, firstName: first, lastName: last, password });
  return panel("new-user", "New user", form);
}

// ----------------------------------------------------------------- settings

function settingInput(def, id) {
  const value = def.value;
  if (def.choices) {
    return h("select", { id }, def.choices.map((c) => h("option", { value: c,
      selected: c === value }, c)));
  }
  if (typeof def.default === "boolean") {
    return h("select", { id }, [["true", "Yes"], ["false", "No"]].map(([v, t]) =>
      h("option", { value: v, selected: String(Boolean(value)) === v }, t)));
  }
  if (typeof def.default === "number") {
    return h("input", { id, type: "number", step: "any", value: String(value) });
  }
  if (typeof def.default === "string") { // a secret reads as a mask; sent back, it is kept
    return h("input", { id, type: def.secret ? "password" : "text", value: value ?? "",
                        autocomplete: def.secret ? "new-password" : "off" });
  }
  const area = h("textarea", { id, rows: 3, spellcheck: "false", class: "json" });
  area.value = JSON.stringify(value, null, 1);
  return area;
}

// The typed value of a setting's input, sent as JSON so that a string stays a
// string (the server parses JSON when it can).
function settingValue(def, input) {
  if (def.choices) return input.value;
  if (typeof def.default === "boolean") return input.value === "true";
  if (typeof def.default === "number") {
    const number = Number(input.value);
    if (input.value.trim() === "" || !Number.isFinite(number)) {
      throw new Error("Enter a number.");
    }
    return number;
  }
  if (typeof def.default === "string") return input.value;
  try {
    return JSON.parse(input.value);
  } catch {
    throw new Error("Enter a JSON value (for example {} or null).");
  }
}

async function settingsTab() {
  const defs = await get("system/setting/definitions");
  const policy = await collectionPolicyForm();
  const rows = defs.map((def, n) => {
    if (def.key === "core.collection_create_policy" && !def.fromEnvironment) return policy;
    const id = `setting-${n}`;
    const input = settingInput(def, id);
    const error = errorFor(`${id}-error`);
    const done = h("span", { class: "copied", role: "status" });
    const save = h("button", { type: "submit" }, "Save");
    const reset = h("button", { type: "button" }, "Default");
    const form = h("form", { class: "setting", dataset: { key: def.key } },
      h("label", { for: id }, h("code", {}, def.key)),
      h("p", { class: "hint" }, def.help,
        def.fromEnvironment ? " Set by the server's environment: a change here is ignored."
          : ""),
      h("div", { class: "inline" }, input, save, reset, done), error);
    const send = async (value) => {
      showError(error, null);
      say(done, "");
      try {
        if (value === null) await call("DELETE", "system/setting", { params: { key: def.key } });
        else {
          await call("PUT", "system/setting", { form: { key: def.key,
                                                        value: JSON.stringify(value) } });
        }
        const fresh = await get("system/setting", { key: def.key });
        def.value = fresh;
        input.replaceWith(settingInput(def, id));
        say(done, value === null ? "Default restored." : "Saved.");
      } catch (err) {
        showError(error, err);
      }
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      let value;
      try {
        value = settingValue(def, form.querySelector(`#${id}`));
      } catch (err) {
        showError(error, err);
        return;
      }
      send(value);
    });
    reset.addEventListener("click", () => send(null));
    return form;
  });
  return h("div", { id: "settings" },
    h("p", { class: "hint" }, "Each setting is saved on its own. Every process of this " +
      "server sees a change within a few seconds."), rows);
}
