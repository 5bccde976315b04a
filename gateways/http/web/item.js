// The item page: files (download), rename, description, metadata editor, and
// move, copy or delete with confirmation.
import { apiUrl, call, get } from "./api.js";
import { confirmDialog, destinationDialog } from "./dialogs.js";
import { metadataEditor } from "./metadata.js";
import { formatDate, formatSize, h, showError } from "./dom.js";
import { childPath, urlOfPath } from "./paths.js";
import { breadcrumbs } from "./table.js";

function parentOf(path) {
  return path.split("/").slice(0, -1).join("/");
}

export async function itemView(ctx, path, item) {
  const files = await get(`item/${item._id}/files`, { limit: 0 });
  const heading = h("h1", { id: "page-title", tabindex: "-1" }, item.name);
  const actionError = h("p", { class: "error", id: "item-error", role: "alert" });

  const reload = (newPath) => ctx.navigate(urlOfPath(newPath || path), { replace: true });

  // Rename: an inline form under the title; Escape or Cancel gives up.
  const renameButton = h("button", { type: "button", id: "rename" }, "Rename…");
  const renameSlot = h("div");
  renameButton.addEventListener("click", () => {
    const input = h("input", { id: "new-name", value: item.name, required: true });
    const error = h("p", { class: "error", id: "rename-error", role: "alert" });
    const cancel = () => {
      renameSlot.replaceChildren();
      renameButton.focus();
    };
    const form = h("form", { class: "inline" },
      h("label", { for: "new-name" }, "New name"), input,
      h("button", { type: "submit", class: "primary" }, "Save name"),
      h("button", { type: "button", onclick: cancel }, "Cancel"), error);
    form.addEventListener("keydown", (e) => { if (e.key === "Escape") cancel(); });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const updated = await call("PUT", `item/${item._id}`, { form: { name: input.value } });
        ctx.navigate(urlOfPath(childPath(parentOf(path), updated.data.name)),
                     { replace: true, flash: "Renamed." });
      } catch (err) {
        showError(error, err);
        input.focus();
      }
    });
    renameSlot.replaceChildren(form);
    input.focus();
    input.select();
  });

  // Description: shown as text; edited in a textarea.
  const description = h("p", { class: "description", id: "description" },
    item.description || "");
  const describeButton = h("button", { type: "button", id: "edit-description" },
    item.description ? "Edit description" : "Add description");
  const describeSlot = h("div");
  describeButton.addEventListener("click", () => {
    const area = h("textarea", { id: "description-input", rows: 4 });
    area.value = item.description || "";
    const error = h("p", { class: "error", role: "alert" });
    const cancel = () => {
      describeSlot.replaceChildren();
      describeButton.focus();
    };
    const form = h("form", { class: "stack" },
      h("label", { for: "description-input" }, "Description"), area,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary" }, "Save description"),
        h("button", { type: "button", onclick: cancel }, "Cancel")), error);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await call("PUT", `item/${item._id}`, { form: { description: area.value } });
        reload();
      } catch (err) {
        showError(error, err);
      }
    });
    describeSlot.replaceChildren(form);
    area.focus();
  });

  const transfer = async (verb) => {
    const where = await destinationDialog({ title: `${verb} “${item.name}”`, action: verb,
                                            initial: parentOf(path) });
    if (!where) return;
    showError(actionError, null);
    if (where.type !== "folder") {
      showError(actionError, { message: "Items live in folders: choose a folder." });
      return;
    }
    try {
      if (verb === "Move") {
        await call("PUT", `item/${item._id}`, { form: { folderId: where.doc._id } });
        ctx.navigate(urlOfPath(childPath(where.path, item.name)),
                     { replace: true, flash: `Moved to ${where.path}.` });
      } else {
        await call("POST", `item/${item._id}/copy`, { form: { folderId: where.doc._id } });
        ctx.navigate(urlOfPath(where.path), { flash: `Copied “${item.name}” here.` });
      }
    } catch (err) {
      showError(actionError, err);
    }
  };
  const remove = async () => {
    const ok = await confirmDialog({ title: `Delete “${item.name}”?`,
      message: "The item and its files will be deleted. This cannot be undone.",
      items: [item.name], confirmLabel: "Delete" });
    if (!ok) return;
    try {
      await call("DELETE", `item/${item._id}`);
      ctx.navigate(urlOfPath(parentOf(path)), { replace: true,
                                                flash: `Deleted “${item.name}”.` });
    } catch (err) {
      showError(actionError, err);
    }
  };

  const fileRows = files.map((file) => h("tr", {},
    h("td", { class: "name" }, file.name),
    h("td", { class: "size" }, formatSize(file.size)),
    h("td", { class: "type" }, file.mimeType || "unknown"),
    h("td", {}, h("a", { href: apiUrl(`file/${file._id}/download`).href, download: file.name,
                         class: "download" }, "Download"))));

  const node = h("section", { class: "item" },
    breadcrumbs(path),
    h("div", { class: "title-row" }, heading,
      h("span", { class: "muted" }, `${formatSize(item.size)} · modified ` +
        formatDate(item.updated || item.created))),
    h("div", { class: "toolbar" }, renameButton, describeButton,
      h("a", { class: "button", href: apiUrl(`item/${item._id}/download`).href, download: "" },
        "Download"),
      h("button", { type: "button", id: "move-item", onclick: () => transfer("Move") }, "Move…"),
      h("button", { type: "button", id: "copy-item", onclick: () => transfer("Copy") }, "Copy…"),
      h("button", { type: "button", id: "delete-item", class: "danger", onclick: remove },
        "Delete…")),
    actionError, renameSlot, description, describeSlot,
    h("h2", {}, "Files"),
    files.length ? h("div", { class: "table-wrap" }, h("table", { class: "files" },
      h("thead", {}, h("tr", {}, ["Name", "Size", "Type", ""].map((t) =>
        h("th", { scope: "col" }, t)))),
      h("tbody", {}, fileRows))) : h("p", { class: "muted" }, "This item has no files."),
    metadataEditor(item, () => reload()));
  return { title: item.name, node };
}
