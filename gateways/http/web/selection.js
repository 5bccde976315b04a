// Several folders and items at once: download as zip, move, copy, delete.
import { apiUrl, call } from "./api.js";
import { confirmDialog, destinationDialog } from "./dialogs.js";
import { h, showError } from "./dom.js";
import { withProgress } from "./progress.js";

export function selectionBar(ctx, path, entries) {
  const chosen = new Map(); // id -> entry
  const count = h("span", { id: "selected-count", "aria-live": "polite" });
  const error = h("p", { class: "error", id: "selection-error", role: "alert" });
  const download = h("a", { class: "button", id: "download-selected", download: "" },
    "Download zip");
  const buttons = {
    move: h("button", { type: "button", id: "move-selected" }, "Move…"),
    copy: h("button", { type: "button", id: "copy-selected" }, "Copy…"),
    del: h("button", { type: "button", id: "delete-selected", class: "danger" }, "Delete…"),
  };

  const resources = () => {
    const out = {};
    for (const entry of chosen.values()) (out[entry._modelType] ||= []).push(entry._id);
    return out;
  };
  const refresh = () => {
    const n = chosen.size;
    count.textContent = n ? `${n} selected` : "Select entries to download, move, copy or " +
                                               "delete several at once.";
    count.classList.toggle("muted", !n);
    // The actions appear with a selection (fewer buttons to pass on a small screen).
    for (const b of Object.values(buttons)) b.hidden = !n;
    download.hidden = !n;
    // The download rides on the session cookie (SameSite=Strict, accepted by
    // download routes only), so a large zip streams to disk, not to memory.
    if (n) download.href = apiUrl("resource/download", { resources: resources() }).href;
    else download.removeAttribute("href");
  };

  const run = async (label, work) => {
    showError(error, null);
    try {
      await work();
      ctx.navigate(location.pathname + location.search, { replace: true, flash: label });
    } catch (err) {
      showError(error, err);
    }
  };
  const names = () => [...chosen.values()].map((e) => e.name);
  const transfer = async (verb) => {
    const where = await destinationDialog({ title: `${verb} ${chosen.size} selected`,
                                            action: verb, initial: path });
    if (!where) return;
    const n = chosen.size;
    await run(`${verb === "Move" ? "Moved" : "Copied"} ${n} ${n === 1 ? "entry" : "entries"} ` +
              `to ${where.path}.`, () => withProgress(`${verb === "Move" ? "Moving" : "Copying"} ` +
      "resources", () => call(verb === "Move" ? "PUT" : "POST",
        verb === "Move" ? "resource/move" : "resource/copy",
        { form: { resources: resources(), parentType: where.type, parentId: where.doc._id,
                  progress: true } })));
  };
  buttons.move.addEventListener("click", () => transfer("Move"));
  buttons.copy.addEventListener("click", () => transfer("Copy"));
  buttons.del.addEventListener("click", async () => {
    const ok = await confirmDialog({ title: `Delete ${chosen.size} selected?`,
      message: "These and everything in them will be deleted. This cannot be undone.",
      items: names(), confirmLabel: "Delete" });
    if (ok) {
      const n = chosen.size;
      await run(`Deleted ${n} ${n === 1 ? "entry" : "entries"}.`,
        () => withProgress("Deleting resources", () => call("DELETE", "resource",
          { params: { resources: resources(), progress: true } })));
    }
  });
  refresh();
  return {
    node: entries.length ? h("div", { class: "selection", role: "group",
                                      "aria-label": "Selected entries" },
      count, download, buttons.move, buttons.copy, buttons.del, error) : null,
    toggle(entry, on) {
      if (on) chosen.set(entry._id, entry);
      else chosen.delete(entry._id);
      refresh();
    },
  };
}
