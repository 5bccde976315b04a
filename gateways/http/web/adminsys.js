// Administration, continued: assetstores (capacity, create filesystem and S3,
// make current, import), uploads in progress (cancel) and `check` with its report.
import { call, get } from "./api.js";
import { confirmDialog } from "./dialogs.js";
import { formatDate, formatSize, h, showError } from "./dom.js";
import { checkbox, errorFor, field, onSubmit, panel } from "./forms.js";

const TYPES = { 0: "Filesystem", 1: "GridFS", 2: "S3" };

function capacity(store) {
  const cap = store.capacity;
  if (!cap || cap.total === null || cap.total === undefined) return "Unknown";
  return `${formatSize(cap.free)} free of ${formatSize(cap.total)}`;
}

function where(store) {
  if (store.type === 2) return `s3://${store.bucket}/${store.prefix || ""}`;
  return store.root || "";
}

export async function assetstoresTab(ctx) {
  const stores = await get("assetstore", { limit: 100 });
  const listError = errorFor("stores-error");
  const reload = (flash) => ctx.navigate("/admin/assetstores", { replace: true, flash });
  const rows = stores.map((s) => h("tr", { dataset: { name: s.name } },
    h("td", { class: "name" }, s.name, s.current ? h("strong", {}, " (current)") : null),
    h("td", {}, TYPES[s.type] || String(s.type)),
    h("td", { class: "name" }, where(s)),
    h("td", { class: "nowrap" }, capacity(s)),
    h("td", { class: "row-actions" },
      s.current ? null : h("button", { type: "button", onclick: async () => {
        showError(listError, null);
        try {
          await call("PUT", `assetstore/${s._id}`, { form: { name: s.name, current: true } });
          reload(`${s.name} is now the current assetstore.`);
        } catch (err) {
          showError(listError, err);
        }
      } }, "Make current"))));
  return h("div", {},
    h("div", { class: "table-wrap" }, h("table", { class: "stores" },
      h("thead", {}, h("tr", {}, ["Name", "Type", "Location", "Capacity", ""].map((t) =>
        h("th", {}, t)))),
      h("tbody", {}, rows))), listError,
    newStorePanel(reload), importPanel(stores));
}

function newStorePanel(reload) {
  const name = field("as-name", "Name", { required: true, autocomplete: "off" });
  const type = field("as-type", "Type", { tag: "select", options: [
    h("option", { value: "0" }, "Filesystem"), h("option", { value: "2" }, "S3")] });
  const root = field("as-root", "Root directory on the server", { autocomplete: "off" });
  const bucket = field("as-bucket", "Bucket", { autocomplete: "off" });
  const prefix = field("as-prefix", "Prefix (optional)", { autocomplete: "off" });
  const service = field("as-service", "Service URL (empty for AWS)", { autocomplete: "off" });
  const region = field("as-region", "Region", { value: "us-east-1", autocomplete: "off" });
  const keyId = field("as-key", "Access key ID", { autocomplete: "off" });
  const secret = field("as-secret", "Secret key", { type: "password",
                                                   autocomplete: "new-password" });
  const current = checkbox("as-current", "Make it the current assetstore");
  const s3 = h("div", { class: "form-grid", hidden: true }, bucket.row, prefix.row,
    service.row, region.row, keyId.row, secret.row);
  const fs = h("div", { class: "form-grid" }, root.row);
  type.input.addEventListener("change", () => {
    s3.hidden = type.input.value !== "2";
    fs.hidden = !s3.hidden;
  });
  const error = errorFor("new-store-error");
  const form = h("form", {}, h("div", { class: "form-grid" }, name.row, type.row), fs, s3,
    current.row, error, h("div", {}, h("button", { type: "submit", class: "primary" },
      "Create assetstore")));
  onSubmit(form, error, async () => {
    const isS3 = type.input.value === "2";
    const common = { name: name.input.value.trim(), type: type.input.value,
                     current: current.input.checked };
    const extra = isS3 ? { bucket: bucket.input.value.trim(), prefix: prefix.input.value,
      service: service.input.value.trim(), region: region.input.value.trim(),
      accessKeyId: keyId.input.value.trim() || undefined,
      secret: secret.input.value || undefined } : { root: root.input.value.trim() };
    const { data } = await call("POST", "assetstore", { form: { ...common, ...extra } });
    reload(`Created the assetstore ${data.name}.`);
  }, { name, root, bucket, prefix, service, region, accessKeyId: keyId, secret });
  return panel("new-store", "New assetstore", form);
}

function importPanel(stores) {
  const store = field("imp-store", "Assetstore", { tag: "select", options: stores.map((s) =>
    h("option", { value: s._id }, s.name)) });
  const source = field("imp-path", "Path within the assetstore (empty: all of it)",
    { autocomplete: "off" });
  const dest = field("imp-dest", "Destination path", { required: true, autocomplete: "off",
    placeholder: "/collection/name/folder" });
  const leaves = checkbox("imp-leaves", "Import leaf folders as items");
  const error = errorFor("import-error");
  const result = h("p", { class: "notice", id: "import-done", role: "status", hidden: true });
  const form = h("form", {}, h("div", { class: "form-grid" }, store.row, source.row, dest.row),
    leaves.row, error, result,
    h("div", {}, h("button", { type: "submit", class: "primary" }, "Import")));
  onSubmit(form, error, async () => {
    result.hidden = true;
    const target = await get("resource/lookup", { path: dest.input.value.trim() });
    const { data } = await call("POST", `assetstore/${store.input.value}/import`, { form: {
      importPath: source.input.value, destinationId: target._id,
      destinationType: target._modelType, leafFoldersAsItems: leaves.input.checked } });
    result.textContent = `Imported: ${Object.entries(data || {}).map(([k, v]) =>
      `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ")}`;
    result.hidden = false;
  }, { importPath: source, destinationId: dest });
  return panel("import", "Import existing data", h("p", { class: "hint" },
    "Files are registered where they are, without copying."), form);
}

// ----------------------------------------------------------------- uploads

export async function uploadsTab(ctx) {
  const uploads = await get("system/uploads", { limit: 200 });
  const error = errorFor("uploads-error");
  const reload = (flash) => ctx.navigate("/admin/uploads", { replace: true, flash });
  const discard = async (params, names, what) => {
    const ok = await confirmDialog({ title: what, message: "Their bytes received so far " +
      "are deleted. This cannot be undone.", items: names, confirmLabel: "Discard" });
    if (!ok) return;
    try {
      const { data } = await call("DELETE", "system/uploads", { params });
      reload(`Discarded ${data.length} ${data.length === 1 ? "upload" : "uploads"}.`);
    } catch (err) {
      showError(error, err);
    }
  };
  const label = (u) => u.name || u.path || u._id || "temporary data";
  const rows = uploads.map((u) => h("tr", { dataset: { name: label(u) } },
    h("td", { class: "name" }, label(u)),
    h("td", { class: "nowrap" }, u.size !== undefined
      ? `${formatSize(u.received ?? 0)} of ${formatSize(u.size)}` : formatSize(u.tempBytes)),
    h("td", { class: "date" }, formatDate(u.updated || u.created)),
    h("td", {}, u.abandoned ? "Abandoned" : u._id ? "In progress" : "Untracked"),
    h("td", { class: "row-actions" }, u._id ? h("button", { type: "button", class: "danger",
      onclick: () => discard({ uploadId: u._id }, [label(u)], "Cancel this upload?") },
    "Cancel") : null)));
  return h("div", {},
    uploads.length ? h("div", { class: "table-wrap" }, h("table", { class: "uploads" },
      h("thead", {}, h("tr", {}, ["Name", "Received", "Last activity", "State", ""]
        .map((t) => h("th", {}, t)))), h("tbody", {}, rows)))
      : h("p", { class: "muted", id: "no-uploads" }, "No uploads in progress."),
    uploads.length ? h("button", { type: "button", class: "danger", id: "discard-all",
      onclick: () => discard({}, uploads.map(label), "Discard every unfinished upload?") },
    "Discard all") : null, error);
}

// ----------------------------------------------------------------- check

export async function checkTab() {
  const out = h("div", { id: "check-report" });
  const error = errorFor("check-error");
  const run = async (mode) => {
    showError(error, null);
    out.replaceChildren(h("p", { class: "muted" }, "Checking…"));
    try {
      const report = await get("system/check", { mode });
      const problems = report.problems;
      out.replaceChildren(
        problems === undefined ? null : h("p", { id: "check-verdict",
          class: problems.length ? "error" : "notice" },
        problems.length ? `${problems.length} problem${problems.length === 1 ? "" : "s"} found.`
          : "No problems found."),
        problems && problems.length ? h("ul", { id: "check-problems" },
          problems.map((p) => h("li", {}, p))) : null,
        h("pre", { class: "report" }, JSON.stringify(report, null, 2)));
    } catch (err) {
      out.replaceChildren();
      showError(error, err);
    }
  };
  return panel("check", "Check", h("p", { class: "hint" },
    "The quick check reports on the server process; the full check also compares the " +
    "metadata store with the stored bytes (slower on a large site)."),
  h("div", { class: "inline" },
    h("button", { type: "button", id: "check-quick", onclick: () => run("quick") },
      "Quick check"),
    h("button", { type: "button", id: "check-slow", class: "primary",
                  onclick: () => run("slow") }, "Full check")), error, out);
}
