// API keys (name, scopes, token lifetime, active; the key is shown once, when
// it is made) and SSH public keys for SFTP, on the "My account" page.
import { call, get } from "./api.js";
import { confirmDialog } from "./dialogs.js";
import { copyText, formatDate, h, showError } from "./dom.js";
import { checkbox, errorFor, field, onSubmit, panel } from "./forms.js";

function scopeText(key, names) {
  if (!key.scope) return "Full access";
  return key.scope.map((s) => names.get(s) || s).join(", ") || "No scopes";
}

// The new key, once: a read-only field with a Copy button.
function shownOnce(key) {
  const input = h("input", { type: "text", readonly: true, id: "new-key", class: "copy-text",
                             value: key.key, "aria-label": "The new API key" });
  const copied = h("span", { class: "copied", role: "status" });
  return h("div", { class: "notice", id: "new-key-box" },
    h("p", {}, `API key “${key.name || "(unnamed)"}” created. Copy it now: it is not shown ` +
      "again on this page."),
    h("div", { class: "inline" }, input, h("button", { type: "button", onclick: async () => {
      copied.textContent = (await copyText(key.key, input)) ? "Copied." : "Press Ctrl+C to copy.";
    } }, "Copy"), copied));
}

export async function apiKeysPanel(me) {
  const [scopes, first] = await Promise.all([get("token/scopes"),
    get("api_key", { userId: me._id, limit: 100 })]);
  const choices = [...scopes.custom, ...(me.admin ? scopes.adminCustom : [])];
  const names = new Map(choices.map((s) => [s.id, s.name]));
  const tbody = h("tbody", {});
  const listError = errorFor("key-list-error");
  const fresh = h("div", {});
  const draw = (keys) => {
    tbody.replaceChildren(...keys.map((key) => {
      const toggle = h("button", { type: "button", onclick: () => act(() => call("PUT",
        `api_key/${key._id}`, { form: { active: !key.active } })) },
      key.active ? "Deactivate" : "Activate");
      const remove = h("button", { type: "button", class: "danger", onclick: async () => {
        const ok = await confirmDialog({ title: `Delete the API key “${key.name}”?`,
          message: "Scripts that use it will stop working. This cannot be undone.",
          items: [key.name || "(unnamed)"], confirmLabel: "Delete" });
        if (ok) act(() => call("DELETE", `api_key/${key._id}`));
      } }, "Delete");
      return h("tr", { dataset: { key: key.name } },
        h("td", { class: "name" }, key.name || "(unnamed)"),
        h("td", {}, scopeText(key, names)),
        h("td", { class: "nowrap" }, key.tokenDuration ? `${key.tokenDuration} days`
          : "Default"),
        h("td", { class: "state" }, key.active ? "Active" : "Inactive"),
        h("td", { class: "date" }, key.lastUse ? formatDate(key.lastUse) : "Never"),
        h("td", { class: "row-actions" }, toggle, " ", remove));
    }));
    if (!keys.length) {
      tbody.replaceChildren(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No API keys.")));
    }
  };
  const reload = async () => draw(await get("api_key", { userId: me._id, limit: 100 }));
  const act = async (work) => {
    showError(listError, null);
    try {
      await work();
      fresh.replaceChildren(); // the new key is gone from view once the list changes
      await reload();
    } catch (err) {
      showError(listError, err);
    }
  };
  draw(first);

  const name = field("key-name", "Name", { required: true, autocomplete: "off" });
  const days = field("key-days", "Token lifetime (days)", { type: "number", min: "0.01",
    step: "any", placeholder: "the server's default" });
  const full = checkbox("key-full", "Full access (everything you can do)", true);
  const boxes = choices.map((s) => checkbox(`scope-${s.id}`, s.name));
  const scopeList = h("fieldset", { class: "plain", id: "key-scopes", disabled: true },
    h("legend", {}, "Or only these scopes"),
    boxes.map((box, n) => h("div", {}, box.row, h("p", { class: "hint" },
      choices[n].description))));
  full.input.addEventListener("change", () => { scopeList.disabled = full.input.checked; });
  const error = errorFor("key-error");
  const form = h("form", { id: "key-form" },
    h("div", { class: "form-grid" }, name.row, days.row), full.row, scopeList, error,
    h("button", { type: "submit", class: "primary" }, "Create API key"));
  onSubmit(form, error, async () => {
    const scope = full.input.checked ? null
      : choices.filter((_, n) => boxes[n].input.checked).map((s) => s.id);
    const { data } = await call("POST", "api_key", { form: { name: name.input.value.trim(),
      scope: scope === null ? "null" : JSON.stringify(scope),
      tokenDuration: days.input.value || undefined } });
    form.reset();
    scopeList.disabled = true;
    await reload();
    fresh.replaceChildren(shownOnce(data));
    fresh.querySelector("input").select();
  }, { name, tokenDuration: days, scope: full });
  return panel("api-keys", "API keys",
    h("p", { class: "hint" }, "Scripts and girder-client sign in with an API key instead of " +
      "your password."),
    fresh, h("div", { class: "table-wrap" }, h("table", { class: "keys" },
      h("thead", {}, h("tr", {}, ["Name", "Scopes", "Lifetime", "State", "Last used", ""]
        .map((t) => h("th", {}, t)))), tbody)), listError,
    h("h3", {}, "New API key"), form);
}

export async function sshKeysPanel(me) {
  const list = h("ul", { class: "entries", id: "ssh-keys" });
  const listError = errorFor("ssh-list-error");
  const draw = (keys) => {
    list.replaceChildren(...keys.map((key) => h("li", { class: "entry", dataset: {
      fingerprint: key.fingerprint } },
    h("strong", {}, key.name || "(unnamed)"), " ",
    h("span", { class: "muted" }, `${key.type} ${key.fingerprint}`), " ",
    h("button", { type: "button", class: "danger", onclick: async () => {
      showError(listError, null);
      try {
        await call("DELETE", `user/${me._id}/sshkey/${key._id}`);
        draw(await get(`user/${me._id}/sshkey`));
      } catch (err) {
        showError(listError, err);
      }
    } }, "Remove"))));
    if (!keys.length) list.replaceChildren(h("li", { class: "muted" }, "No SSH keys."));
  };
  draw(await get(`user/${me._id}/sshkey`));
  const key = field("ssh-key", "Public key (OpenSSH format)", { required: true,
    autocomplete: "off", spellcheck: "false", placeholder: "ssh-ed25519 AAAA… you@host" });
  const name = field("ssh-name", "Name (optional)", { autocomplete: "off" });
  const error = errorFor("ssh-error");
  const form = h("form", {}, key.row, name.row, error,
    h("button", { type: "submit", class: "primary" }, "Add SSH key"));
  onSubmit(form, error, async () => {
    await call("POST", `user/${me._id}/sshkey`, { form: { key: key.input.value.trim(),
      name: name.input.value.trim() || undefined } });
    form.reset();
    draw(await get(`user/${me._id}/sshkey`));
  }, { key, name });
  return panel("ssh-keys", "SSH keys for SFTP",
    h("p", { class: "hint" }, `Sign in to the SFTP server as ${me.login} with one of these keys.`),
    list, listError, form);
}
