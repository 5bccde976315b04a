// Small form helpers shared by the account, groups and administration pages:
// labelled fields with their own error line, panels, and a submit handler that
// shows the API's refusal in words next to the form that caused it.
import { h, showError } from "./dom.js";

export function field(id, label, attrs = {}, hint = null) {
  const input = attrs.tag === "select"
    ? h("select", { id, name: id }, attrs.options || [])
    : h("input", { id, name: id, ...attrs });
  const error = h("p", { class: "error", id: `${id}-error`, role: "alert" });
  input.setAttribute("aria-describedby", error.id);
  return { row: h("div", { class: "field" }, h("label", { for: id }, label), input,
                  hint ? h("p", { class: "hint" }, hint) : null, error), input, error };
}

export function checkbox(id, label, checked = false) {
  const input = h("input", { type: "checkbox", id, name: id, checked });
  return { row: h("label", { class: "check-label" }, input, label), input };
}

export function panel(id, title, ...children) {
  return h("section", { class: "panel", id, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title), children);
}

// Wires `form`'s submit to `work()`; `error` shows what it throws (a field's
// own error line when the server names the field). Returns the form.
export function onSubmit(form, error, work, fields = {}) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    for (const f of Object.values(fields)) showError(f.error, null);
    const buttons = form.querySelectorAll("button[type=submit]");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await work();
    } catch (err) {
      const target = err && err.field && fields[err.field];
      if (target) {
        showError(target.error, err);
        target.input.focus();
      } else {
        showError(error, err);
      }
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
  return form;
}

export function errorFor(id) {
  return h("p", { class: "error", id, role: "alert" });
}

export function notice(id) {
  return h("p", { class: "notice", id, role: "status", hidden: true });
}

export function say(el, text) {
  el.textContent = text;
  el.hidden = !text;
}

export function pageHeading(text) {
  return h("h1", { id: "page-title", tabindex: "-1" }, text);
}
