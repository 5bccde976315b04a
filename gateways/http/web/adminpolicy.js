// The collection-creation policy (core.collection_create_policy) as a form, as
// Girder has it: when the policy is on ("open"), the users and groups listed
// (found by name) may create collections; site administrators always may.
import { call, get } from "./api.js";
import { h, showError } from "./dom.js";
import { checkbox, errorFor } from "./forms.js";

const KEY = "core.collection_create_policy";

export async function collectionPolicyForm() {
  const current = await get("system/setting/collection_creation_policy/access");
  const chosen = [
    ...current.users.map((u) => ({ type: "user", id: u.id, label: u.login })),
    ...current.groups.map((g) => ({ type: "group", id: g.id, label: `Group: ${g.name}` }))];
  const open = checkbox("policy-open", "Let the users and groups below create collections",
                        current.open);
  const list = h("ul", { class: "entries", id: "policy-list" });
  const draw = () => {
    list.replaceChildren(...chosen.map((entry, n) => h("li", { class: "entry",
      dataset: { principal: entry.label } }, entry.label, " ",
    h("button", { type: "button", "aria-label": `Remove ${entry.label}`, onclick: () => {
      chosen.splice(n, 1);
      draw();
    } }, "Remove"))));
    if (!chosen.length) list.replaceChildren(h("li", { class: "muted" }, "Only site administrators."));
  };
  draw();
  const name = h("input", { id: "policy-add", type: "text", autocomplete: "off",
                            placeholder: "a login, or a group's name" });
  const addError = errorFor("policy-add-error");
  const add = async () => {
    showError(addError, null);
    const text = name.value.trim();
    if (!text) return;
    try {
      const users = (await get("user", { text, limit: 20 })).filter((u) => u.login === text);
      const groups = await get("group", { text, exact: true, limit: 1 });
      const found = users.length ? { type: "user", id: users[0]._id, label: users[0].login }
        : groups.length ? { type: "group", id: groups[0]._id, label: `Group: ${groups[0].name}` }
          : null;
      if (!found) throw new Error(`No user with the login “${text}” and no group named so.`);
      if (!chosen.some((c) => c.id === found.id)) chosen.push(found);
      if (name.value.trim() === text) name.value = ""; // unless they typed on meanwhile
      draw();
    } catch (err) {
      showError(addError, err);
    }
  };
  name.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      add();
    }
  });
  const error = errorFor("policy-error");
  const done = h("span", { class: "copied", role: "status" });
  const form = h("form", { class: "setting", dataset: { key: KEY } },
    h("p", {}, h("code", {}, KEY)),
    h("p", { class: "hint" }, "Who besides site administrators may create collections."),
    open.row, list,
    h("div", { class: "inline" }, h("label", { for: "policy-add" }, "Add"), name,
      h("button", { type: "button", onclick: add }, "Add")), addError,
    h("div", { class: "inline" }, h("button", { type: "submit" }, "Save"), done), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    done.textContent = "";
    const value = { open: open.input.checked,
                    users: chosen.filter((c) => c.type === "user").map((c) => c.id),
                    groups: chosen.filter((c) => c.type === "group").map((c) => c.id) };
    try {
      await call("PUT", "system/setting", { form: { key: KEY, value: JSON.stringify(value) } });
      done.textContent = "Saved.";
    } catch (err) {
      showError(error, err);
    }
  });
  return form;
}
