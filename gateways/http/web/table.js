// The pieces of a listing page: breadcrumbs, the sortable contents table, the pager.
import { formatDate, formatSize, h } from "./dom.js";
import { childPath, crumbs, urlOfPath } from "./paths.js";

const SORTS = ["name", "size", "updated"];

export function pageState(url) {
  const params = url.searchParams;
  const page = Math.max(0, Number.parseInt(params.get("page") || "1", 10) - 1 || 0);
  const sort = SORTS.includes(params.get("sort")) ? params.get("sort") : "name";
  const dir = params.get("dir") === "desc" ? -1 : 1;
  return { page, sort, dir };
}

function withParams(url, changes) {
  const next = new URL(url);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) next.searchParams.delete(key);
    else next.searchParams.set(key, value);
  }
  return next.pathname + next.search;
}

export function breadcrumbs(path) {
  const list = crumbs(path);
  return h("nav", { "aria-label": "Breadcrumb", class: "crumbs" },
    h("ol", {}, list.map((c, i) => h("li", {}, i === list.length - 1
      ? h("span", { "aria-current": "page" }, c.name)
      : h("a", { href: c.href }, c.name)))));
}

export function pager(ctx, page, size, total) {
  const pages = Math.max(1, Math.ceil(total / size));
  if (pages <= 1) return null;
  const link = (label, target, rel) => (target >= 0 && target < pages
    ? h("a", { href: withParams(ctx.url, { page: target ? String(target + 1) : null }), rel,
               class: "button" }, label)
    : h("span", { class: "button disabled", "aria-disabled": "true" }, label));
  const first = page * size + 1;
  const last = Math.min(total, (page + 1) * size);
  return h("nav", { class: "pager", "aria-label": "Pages" },
    link("Previous", page - 1, "prev"),
    h("span", { id: "page-info" },
      `${first.toLocaleString()}–${last.toLocaleString()} of ${total.toLocaleString()} ` +
      `(page ${page + 1} of ${pages.toLocaleString()})`),
    link("Next", page + 1, "next"));
}

function sortHeader(ctx, label, key, current, dir) {
  const active = current === key;
  const nextDir = active && dir === 1 ? "desc" : null;
  return h("th", { scope: "col", "aria-sort": active ? (dir === 1 ? "ascending" : "descending")
                                                       : "none" },
    h("a", { href: withParams(ctx.url, { sort: key === "name" ? null : key, dir: nextDir,
                                         page: null }),
             class: "sort", title: `Sort by ${label.toLowerCase()}` },
      label, active ? (dir === 1 ? " ▲" : " ▼") : ""));
}

// Folders then items; each row has a checkbox for the selection bar.
export function contentsTable(ctx, path, entries, { sort, dir, selection }) {
  const all = h("input", { type: "checkbox", "aria-label": "Select all on this page",
                           id: "select-all" });
  const boxes = [];
  const rows = entries.map((entry) => {
    const box = h("input", { type: "checkbox", "aria-label": `Select ${entry.name}`,
                             class: "select" });
    box.addEventListener("change", () => {
      selection.toggle(entry, box.checked);
      all.checked = boxes.every((b) => b.checked);
    });
    boxes.push(box);
    const kind = entry._modelType;
    return h("tr", { dataset: { kind } },
      h("td", { class: "check" }, box),
      h("td", { class: "name" },
        h("a", { href: urlOfPath(childPath(path, entry.name)), class: `kind-${kind}` },
          entry.name)),
      // A folder's size is not kept up to date by the server: no number beats a wrong one.
      h("td", { class: "size" }, kind === "item" ? formatSize(entry.size) : ""),
      h("td", { class: "date" }, formatDate(entry.updated || entry.created)));
  });
  all.addEventListener("change", () => {
    boxes.forEach((box, i) => {
      box.checked = all.checked;
      selection.toggle(entries[i], all.checked);
    });
  });
  return h("div", { class: "table-wrap" }, h("table", { class: "contents" },
    h("thead", {}, h("tr", {}, h("th", { class: "check", scope: "col" }, all),
      sortHeader(ctx, "Name", "name", sort, dir),
      sortHeader(ctx, "Size", "size", sort, dir),
      sortHeader(ctx, "Modified", "updated", sort, dir))),
    h("tbody", {}, rows)));
}
