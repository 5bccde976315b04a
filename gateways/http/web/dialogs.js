// Modal dialogs on <dialog>: the browser traps focus, Escape cancels, and focus
// returns to what opened them.
import { ApiError, get } from "./api.js";
import { h, showError } from "./dom.js";

function open(dialog) {
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
}

// Resolves true when confirmed. `items`: names listed (as text) in the dialog.
export function confirmDialog({ title, message, items = [], confirmLabel = "OK" }) {
  return new Promise((resolve) => {
    const ok = h("button", { type: "submit", class: "danger", value: "ok" }, confirmLabel);
    const cancel = h("button", { type: "submit", value: "cancel" }, "Cancel");
    const dialog = h("dialog", { "aria-labelledby": "dlg-title", class: "dialog" },
      h("form", { method: "dialog" },
        h("h2", { id: "dlg-title" }, title),
        h("p", {}, message),
        items.length ? h("ul", { class: "names" }, items.slice(0, 20).map((n) => h("li", {}, n)),
          items.length > 20 ? h("li", {}, `and ${items.length - 20} more`) : null) : null,
        h("div", { class: "actions" },
          cancel, ok)));
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"));
    open(dialog);
    cancel.focus(); // a stray Enter must not destroy anything
  });
}

// Asks for a destination folder, collection or user by path (resource/lookup);
// resolves {type, doc, path} or null when cancelled.
export function destinationDialog({ title, action, initial = "" }) {
  return new Promise((resolve) => {
    const input = h("input", { id: "dest-path", type: "text", value: initial,
                               spellcheck: "false", autocomplete: "off", required: true });
    const error = h("p", { class: "error", id: "dest-error", role: "alert" });
    let result = null;
    const form = h("form", {},
      h("h2", { id: "dlg-title" }, title),
      h("label", { for: "dest-path" }, "Destination folder path"),
      input,
      h("p", { class: "hint" }, "For example /collection/name/folder or /user/login/Public"),
      error,
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { type: "submit" }, action)));
    const dialog = h("dialog", { "aria-labelledby": "dlg-title", class: "dialog" }, form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError(error, null);
      const path = input.value.trim().replace(/(.)\/+$/, "$1");
      try {
        const doc = await get("resource/lookup", { path });
        if (!["folder", "collection", "user"].includes(doc._modelType)) {
          throw new ApiError("That path is not a folder, collection or user.", 400, null);
        }
        result = { type: doc._modelType, doc, path };
        dialog.close();
      } catch (err) {
        showError(error, err);
        input.focus();
      }
    });
    dialog.addEventListener("close", () => resolve(result));
    open(dialog);
    input.focus();
  });
}

// Asks for one value (a name, a description). `submit(value)` does the work; what
// it throws is shown in the dialog, next to the field, and the dialog stays.
// Resolves submit's result, or null when cancelled.
export function promptDialog({ title, label, action, value = "", multiline = false, submit }) {
  return new Promise((resolve) => {
    const input = multiline
      ? h("textarea", { id: "prompt-value", rows: 4 })
      : h("input", { id: "prompt-value", type: "text", autocomplete: "off", required: true });
    input.value = value;
    const error = h("p", { class: "error", id: "prompt-error", role: "alert" });
    let result = null;
    const form = h("form", {},
      h("h2", { id: "dlg-title" }, title),
      h("label", { for: "prompt-value" }, label), input, error,
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { type: "submit", class: "primary" }, action)));
    const dialog = h("dialog", { "aria-labelledby": "dlg-title", class: "dialog" }, form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError(error, null);
      try {
        result = await submit(input.value);
        dialog.close();
      } catch (err) {
        showError(error, err);
        input.focus();
      }
    });
    dialog.addEventListener("close", () => resolve(result));
    open(dialog);
    input.focus();
    if (!multiline) input.select();
  });
}
