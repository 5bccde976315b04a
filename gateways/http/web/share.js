// The access dialog of a collection or folder (Girder's "Access control"):
// public or private, users and groups with READ, WRITE or ADMIN, and "apply to
// subfolders". Saved with PUT {model}/{id}/access; the server enforces it on
// every gateway.
import { call, get } from "./api.js";
import { h, showError } from "./dom.js";

const LEVELS = [[0, "Can view"], [1, "Can edit"], [2, "Is owner"]];
const FIND_LIMIT = 8;

function levelSelect(id, level, label) {
  return h("select", { id, "aria-label": label },
    LEVELS.map(([value, text]) => h("option", { value: String(value),
                                                selected: value === level }, text)));
}

// The search box: typing part of a name lists matching users and groups
// (GET user?text=, GET group?text=); choosing one adds it to the list.
function principalFinder(onPick) {
  const input = h("input", { id: "share-find", type: "search", autocomplete: "off",
                             placeholder: "Part of a login, name or group" });
  const list = h("ul", { class: "found", id: "share-found" });
  const error = h("p", { class: "error", id: "share-find-error", role: "alert" });
  let generation = 0;
  let timer = null;
  const search = async () => {
    const text = input.value.trim();
    const mine = ++generation;
    showError(error, null);
    if (!text) {
      list.replaceChildren();
      return;
    }
    try {
      const [users, groups] = await Promise.all([
        get("user", { text, limit: FIND_LIMIT }),
        get("group", { text, limit: FIND_LIMIT })]);
      if (mine !== generation) return; // a newer search is under way
      const rows = [
        ...users.map((u) => ({ type: "user", id: u._id, login: u.login,
                               name: `${u.firstName || ""} ${u.lastName || ""}`.trim() })),
        ...groups.map((g) => ({ type: "group", id: g._id, name: g.name }))];
      list.replaceChildren(...rows.map((row) => h("li", {},
        h("button", { type: "button", class: "link", onclick: () => {
          onPick(row);
          input.value = "";
          list.replaceChildren();
          input.focus();
        } }, row.type === "user" ? `${row.login} (${row.name})` : `Group: ${row.name}`))));
      if (!rows.length) list.replaceChildren(h("li", { class: "muted" }, "No match."));
    } catch (err) {
      showError(error, err);
    }
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 200); // a short pause in typing, not every key
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { // Enter searches now instead of submitting the dialog
      event.preventDefault();
      clearTimeout(timer);
      search();
    }
  });
  return h("div", { class: "finder" },
    h("label", { for: "share-find" }, "Add a user or group"), input, list, error);
}

// Opens the dialog for `doc` (model "folder" or "collection"); resolves true when saved.
export async function shareDialog(model, doc) {
  const access = await get(`${model}/${doc._id}/access`);
  const entries = [
    ...access.users.map((u) => ({ type: "user", id: u.id, level: u.level, flags: u.flags,
                                  label: `${u.login}${u.name ? ` (${u.name})` : ""}` })),
    ...access.groups.map((g) => ({ type: "group", id: g.id, level: g.level, flags: g.flags,
                                   label: `Group: ${g.name}` }))];
  return new Promise((resolve) => {
    let saved = false;
    const tbody = h("tbody", {});
    const draw = () => {
      tbody.replaceChildren(...entries.map((entry, n) => {
        const select = levelSelect(`share-level-${n}`, entry.level, `Access of ${entry.label}`);
        select.addEventListener("change", () => { entry.level = Number(select.value); });
        return h("tr", { dataset: { principal: entry.label } },
          h("td", { class: "name" }, entry.label),
          h("td", {}, select),
          h("td", { class: "row-actions" }, h("button", { type: "button", class: "danger",
            "aria-label": `Remove ${entry.label}`, onclick: () => {
              entries.splice(n, 1);
              draw();
            } }, "Remove")));
      }));
      if (!entries.length) {
        tbody.replaceChildren(h("tr", {}, h("td", { colspan: 3, class: "muted" },
          "Nobody besides site administrators.")));
      }
    };
    draw();
    const finder = principalFinder((row) => {
      const label = row.type === "user" ? `${row.login}${row.name ? ` (${row.name})` : ""}`
        : `Group: ${row.name}`;
      if (!entries.some((e) => e.type === row.type && e.id === row.id)) {
        entries.push({ type: row.type, id: row.id, level: 0, flags: [], label });
      }
      draw();
    });
    const isPublic = Boolean(doc.public);
    const radio = (value, text) => h("label", { class: "check-label" },
      h("input", { type: "radio", name: "share-public", value, id: `share-${value}`,
                   checked: (value === "public") === isPublic }), text);
    const recurse = model === "folder" || model === "collection"
      ? h("label", { class: "check-label" },
        h("input", { type: "checkbox", id: "share-recurse" }),
        "Also apply to all subfolders") : null;
    const error = h("p", { class: "error", id: "share-error", role: "alert" });
    const form = h("form", {},
      h("h2", { id: "dlg-title" }, `Access to “${doc.name}”`),
      h("fieldset", { class: "plain" }, h("legend", {}, "Visibility"),
        radio("public", "Public: anyone can view"),
        radio("private", "Private: only those listed below")),
      h("div", { class: "table-wrap" }, h("table", { class: "access" },
        h("thead", {}, h("tr", {}, h("th", {}, "Who"), h("th", {}, "Access"), h("th", {}))),
        tbody)),
      finder, recurse, error,
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { type: "submit", class: "primary", id: "share-save" }, "Save")));
    const dialog = h("dialog", { "aria-labelledby": "dlg-title", class: "dialog wide" }, form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError(error, null);
      const pick = (type) => entries.filter((e) => e.type === type)
        .map((e) => ({ id: e.id, level: e.level, flags: e.flags || [] }));
      try {
        await call("PUT", `${model}/${doc._id}/access`, { form: {
          access: { users: pick("user"), groups: pick("group") },
          public: form.querySelector("#share-public").checked,
          recurse: Boolean(recurse && form.querySelector("#share-recurse").checked) } });
        saved = true;
        dialog.close();
      } catch (err) {
        showError(error, err);
      }
    });
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(saved);
    });
    dialog.showModal();
    form.querySelector("#share-find").focus();
  });
}
