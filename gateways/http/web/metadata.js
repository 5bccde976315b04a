// The metadata editor: add, edit and delete keys. A value that parses as JSON
// is stored as JSON (numbers, lists, objects), otherwise as text; the server's
// key rules (no ".", no leading "$", not empty) come back as its own words.
import { call } from "./api.js";
import { h, showError } from "./dom.js";

export function display(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function parseValue(text, asJson) {
  if (!asJson) return text;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`The value is not valid JSON: ${err.message}`);
  }
}

export function metadataEditor(item, reload) {
  const meta = item.meta || {};
  const error = h("p", { class: "error", id: "meta-error", role: "alert" });
  const save = async (key, value, oldKey) => {
    showError(error, null);
    const body = { [key]: value };
    if (oldKey !== undefined && oldKey !== key) body[oldKey] = null; // a rename
    await call("PUT", `item/${item._id}/metadata`, {
      json: body, params: oldKey !== undefined && oldKey !== key ? { allowNull: true } : {} });
    reload();
  };

  const editorForm = (key, value, submitLabel, onCancel, oldKey) => {
    const keyInput = h("input", { class: "meta-key", value: key, required: true,
                                  placeholder: "Key", "aria-label": "Key" });
    const text = h("textarea", { class: "meta-value", rows: 1, "aria-label": "Value",
                                 placeholder: "Value" });
    text.value = value === undefined ? "" : display(value);
    const json = h("input", { type: "checkbox", class: "meta-json",
                              checked: value !== undefined && typeof value !== "string" });
    const formError = h("p", { class: "error", role: "alert" });
    const form = h("form", { class: "meta-form" }, keyInput, text,
      h("label", { class: "check-label" }, json, "JSON"),
      h("button", { type: "submit", class: "primary" }, submitLabel),
      onCancel ? h("button", { type: "button", onclick: onCancel }, "Cancel") : null,
      formError);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError(formError, null);
      try {
        await save(keyInput.value, parseValue(text.value, json.checked), oldKey);
      } catch (err) {
        showError(formError, err);
        keyInput.focus();
      }
    });
    return form;
  };

  const rows = Object.keys(meta).sort().map((key) => {
    const row = h("tr", { dataset: { key } });
    const show = () => {
      const edit = h("button", { type: "button", class: "meta-edit",
                                 "aria-label": `Edit ${key}` }, "Edit");
      const del = h("button", { type: "button", class: "meta-delete danger",
                                "aria-label": `Delete ${key}` }, "Delete");
      edit.addEventListener("click", () => {
        row.replaceChildren(h("td", { colspan: 3 },
          editorForm(key, meta[key], "Save", () => { show(); edit.focus(); }, key)));
        row.querySelector(".meta-value").focus();
      });
      del.addEventListener("click", async () => {
        showError(error, null);
        try {
          await call("DELETE", `item/${item._id}/metadata`, { json: [key] });
          reload();
        } catch (err) {
          showError(error, err);
        }
      });
      row.replaceChildren(h("th", { scope: "row", class: "meta-k" }, key),
        h("td", { class: "meta-v" }, display(meta[key])),
        h("td", { class: "row-actions" }, edit, " ", del));
    };
    show();
    return row;
  });

  return h("section", { class: "metadata", "aria-labelledby": "meta-title" },
    h("h2", { id: "meta-title" }, "Metadata"),
    rows.length ? h("table", { class: "meta" }, h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No metadata yet."),
    error,
    h("h3", {}, "Add a key"),
    editorForm("", undefined, "Add", null));
}
