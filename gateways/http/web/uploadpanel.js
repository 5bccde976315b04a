// The Upload panel of a folder page: drop files or whole folders (the tree is
// kept), or pick files or a folder; a progress bar per file and overall with
// rate and time left; cancel; resume of interrupted uploads. The transfers
// live in uploads.js, so they go on while the user browses elsewhere.
import { h, formatSize } from "./dom.js";
import { forgetPending, pendingIn, pendingOffset, uploads } from "./uploads.js";

const WRITE = 1;
const MAX_FILES = 10000; // one drop; a bigger tree is better sent by girder-client

function formatRate(rate) {
  return rate > 0 ? `${formatSize(Math.round(rate))}/s` : "";
}

function formatLeft(bytes, rate) {
  if (!(rate > 0) || bytes <= 0) return "";
  const s = Math.ceil(bytes / rate);
  if (s < 60) return `${s} s left`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s left`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min left`;
}

function progressText(sent, size, rate) {
  return [`${formatSize(sent)} of ${formatSize(size)}`, formatRate(rate),
    formatLeft(size - sent, rate)].filter(Boolean).join(" · ");
}

// ---- what was dropped or picked -> [{file, dirs}] and the empty folders

function readAll(reader) {
  return new Promise((resolve, reject) => {
    const all = [];
    const next = () => reader.readEntries((batch) => {
      if (!batch.length) resolve(all);
      else {
        all.push(...batch);
        next(); // readEntries answers in batches (100 in Chromium)
      }
    }, reject);
    next();
  });
}

async function walk(entry, dirs, out) {
  if (out.files.length >= MAX_FILES) throw new Error(
    `More than ${MAX_FILES} files: upload such a tree with girder-client.`);
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.files.push({ file, dirs });
  } else if (entry.isDirectory) {
    const here = [...dirs, entry.name];
    const children = await readAll(entry.createReader());
    if (!children.length) out.emptyDirs.push(here);
    for (const child of children) await walk(child, here, out);
  }
}

// Must be called during the drop event: the items are gone once it returns.
function droppedEntries(dataTransfer) {
  const items = [...(dataTransfer.items || [])].filter((i) => i.kind === "file");
  const entries = items.map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (entries.length && entries.every(Boolean)) return { entries };
  return { files: [...dataTransfer.files] }; // no entry API: plain files
}

async function collect(dropped) {
  const out = { files: [], emptyDirs: [] };
  if (dropped.entries) {
    for (const entry of dropped.entries) await walk(entry, [], out);
  } else {
    out.files = dropped.files.map((file) => ({ file, dirs: [] }));
  }
  return out;
}

function pickedFiles(input) {
  // A folder picker names each file by its path under the chosen folder.
  return [...input.files].map((file) => ({
    file, dirs: (file.webkitRelativePath || file.name).split("/").slice(0, -1) }));
}

// ---- the panel

const LABELS = { queued: "Waiting", running: "", retrying: "Connection lost",
                 done: "Done", canceled: "Canceled", failed: "Failed", interrupted: "Interrupted" };

function row(job, onCancel) {
  const bar = h("progress", { max: job.file.size || 1, value: job.sent,
                              "aria-label": `Upload of ${job.relPath}` });
  const state = h("span", { class: "upload-state" });
  const cancel = h("button", { type: "button", class: "upload-cancel",
                               "aria-label": `Cancel ${job.relPath}`,
                               onclick: () => onCancel(job) }, "Cancel");
  const li = h("li", { class: "upload-row", dataset: { name: job.relPath } },
    h("span", { class: "upload-name" }, job.relPath), bar, state, cancel);
  li.update = () => {
    bar.max = job.file.size || 1;
    bar.value = job.state === "done" ? bar.max : job.sent;
    li.dataset.state = job.state;
    let text = job.state === "retrying"
      ? `Connection lost, trying again (attempt ${job.attempt + 1})…` : LABELS[job.state];
    if (["running", "retrying", "queued"].includes(job.state) && job.sent) {
      const progress = progressText(job.sent, job.file.size, uploads.rate(job));
      text = [text, progress].filter(Boolean).join(" ");
    }
    if (job.resumedFrom !== null && job.state !== "canceled") {
      text += ` (resumed at ${formatSize(job.resumedFrom)})`;
    }
    if (["failed", "interrupted"].includes(job.state) && job.error) text += `: ${job.error}`;
    state.textContent = text;
    state.className = `upload-state${job.state === "failed" ? " error" : ""}`;
    cancel.hidden = ["done", "canceled", "failed"].includes(job.state);
  };
  li.update();
  return li;
}

function pendingNotice(folderId, jobs) {
  const known = new Set(jobs.map((j) => j.key));
  const pending = pendingIn(folderId).filter((p) => !known.has(p.key));
  if (!pending.length) return null;
  const list = h("ul", { class: "pending-list" });
  const box = h("div", { class: "notice", id: "upload-pending" },
    h("p", {}, "Unfinished uploads into this folder. Choose the same files again to " +
      "continue where they stopped:"), list);
  const drop = (li) => {
    li.remove();
    if (!list.children.length) box.remove();
  };
  for (const entry of pending) {
    const received = h("span", { class: "muted" });
    const li = h("li", { dataset: { name: entry.name, size: String(entry.size) } },
      `${entry.relPath || entry.name} (${formatSize(entry.size)}) `,
      received, " ", h("button", { type: "button", onclick: () => {
        forgetPending(entry);
        drop(li);
      } }, `Discard ${entry.name}`));
    list.append(li);
    pendingOffset(entry).then((offset) => {
      if (offset === null) drop(li); // finished or canceled elsewhere
      else if (offset !== undefined) received.textContent = `${formatSize(offset)} received`;
    });
  }
  // Files chosen again leave the list (they show as rows now).
  box.chosen = (files) => {
    for (const li of [...list.children]) {
      if (files.some(({ file, dirs }) => !dirs.length && file.name === li.dataset.name &&
                     String(file.size) === li.dataset.size)) drop(li);
    }
  };
  return box;
}

export function uploadPanel(ctx, doc) {
  if (doc._modelType !== "folder" || (doc._accessLevel ?? 0) < WRITE) return null;
  const rows = new Map();
  const error = h("p", { class: "error", id: "upload-error", role: "alert" });
  const filesInput = h("input", { type: "file", multiple: true, id: "upload-files",
                                  class: "sr", tabindex: "-1", "aria-hidden": "true" });
  const folderInput = h("input", { type: "file", multiple: true, id: "upload-folder",
                                   class: "sr", tabindex: "-1", "aria-hidden": "true" });
  folderInput.webkitdirectory = true;
  const list = h("ul", { class: "upload-list", id: "upload-list" });
  const overallBar = h("progress", { id: "upload-overall", max: 1, value: 0,
                                     "aria-label": "All uploads" });
  // Not a live region: it changes many times a second; the end of a batch is
  // announced by the page's notice.
  const summary = h("span", { id: "upload-summary" });
  const resume = h("button", { type: "button", id: "upload-resume",
                               onclick: () => uploads.resumeAll() }, "Resume");
  const cancelAll = h("button", { type: "button", id: "upload-cancel-all", class: "danger",
                                  onclick: () => uploads.cancelAll() }, "Cancel all");
  const clear = h("button", { type: "button", id: "upload-clear",
                              onclick: () => uploads.clearFinished() }, "Clear list");
  const overall = h("div", { class: "upload-overall" }, overallBar, summary, resume,
    cancelAll, clear);
  const zone = h("div", { class: "dropzone", id: "dropzone" },
    h("span", {}, "Drop files or folders here, or "),
    h("button", { type: "button", id: "choose-files", onclick: () => filesInput.click() },
      "Choose files…"), " ",
    h("button", { type: "button", id: "choose-folder", onclick: () => folderInput.click() },
      "Choose a folder…"),
    filesInput, folderInput);
  // The rows of a finished batch fold away (the listing below matters more then).
  const count = h("span", {});
  const details = h("details", { class: "upload-files", id: "upload-details",
                                 open: uploads.active() },
    h("summary", {}, count), list);
  const pending = pendingNotice(doc._id, uploads.jobs);
  const node = h("section", { class: "upload", "aria-labelledby": "upload-title" },
    h("h2", { id: "upload-title" }, "Upload"), zone, error, pending, overall, details);

  const start = (files, emptyDirs = []) => {
    error.textContent = "";
    if (!files.length && !emptyDirs.length) return;
    files.sort((a, b) => (a.dirs.join("/") + "/" + a.file.name).localeCompare(
      b.dirs.join("/") + "/" + b.file.name));
    uploads.add(doc._id, files, emptyDirs);
    details.open = true;
    if (pending) pending.chosen(files);
  };
  const onPick = (input) => () => {
    start(pickedFiles(input));
    input.value = ""; // the same files may be chosen again (to resume)
  };
  filesInput.addEventListener("change", onPick(filesInput));
  folderInput.addEventListener("change", onPick(folderInput));

  let wasActive = uploads.active();
  let frame = 0;
  let tick = 0;
  const render = () => {
    frame = 0;
    const seen = new Set();
    for (const job of uploads.jobs) {
      seen.add(job.id);
      let li = rows.get(job.id);
      if (!li) {
        li = row(job, (j) => uploads.cancel(j));
        rows.set(job.id, li);
        list.append(li);
      }
      li.update();
    }
    for (const [id, li] of rows) {
      if (!seen.has(id)) {
        li.remove();
        rows.delete(id);
      }
    }
    const t = uploads.totals();
    const busy = uploads.active();
    overall.hidden = !uploads.jobs.length;
    details.hidden = !uploads.jobs.length;
    count.textContent = `Files (${uploads.jobs.length})`;
    if (uploads.jobs.some((j) => ["failed", "interrupted", "retrying"].includes(j.state))) {
      details.open = true; // what needs the user's eye stays in view
    }
    overallBar.max = t.size || 1;
    overallBar.value = t.sent;
    summary.textContent = busy
      ? `${t.done} of ${t.files} files · ${progressText(t.sent, t.size, t.rate)}`
      : `${t.done} of ${t.files} files uploaded${t.failed ? `, ${t.failed} did not finish` : ""}.`;
    resume.hidden = !uploads.jobs.some((j) => j.state === "interrupted");
    cancelAll.hidden = !busy;
    clear.hidden = busy;
    clearTimeout(tick);
    if (busy && node.isConnected) tick = setTimeout(render, 1000); // rates age
    if (wasActive && !busy && t.done && node.isConnected) {
      // The batch is over: show the new entries (the panel keeps its list).
      ctx.navigate(location.pathname + location.search, { replace: true,
        flash: `Uploaded ${t.done} of ${t.files} files.` });
    }
    wasActive = busy;
  };
  // Stop listening once this page has been replaced by another.
  let shown = false;
  const unsubscribe = uploads.subscribe(() => {
    if (node.isConnected) shown = true;
    else if (shown) {
      unsubscribe();
      return;
    }
    if (!frame) frame = requestAnimationFrame(render);
  });

  // Drops anywhere on the folder page land in this folder.
  const attach = (page) => {
    const over = (event) => {
      if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("over");
    };
    page.addEventListener("dragenter", over);
    page.addEventListener("dragover", over);
    page.addEventListener("dragleave", (event) => {
      if (!page.contains(event.relatedTarget)) zone.classList.remove("over");
    });
    page.addEventListener("drop", async (event) => {
      if (!event.dataTransfer) return;
      event.preventDefault();
      zone.classList.remove("over");
      const dropped = droppedEntries(event.dataTransfer);
      try {
        const { files, emptyDirs } = await collect(dropped);
        start(files, emptyDirs);
      } catch (err) {
        error.textContent = `Could not read what was dropped: ${err.message || err}`;
      }
    });
  };
  render();
  return { node, attach };
}
