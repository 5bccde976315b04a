// Collections, Users and Groups pages, and the folder browser: folders then
// items, sorted and paged by the server (limit/offset), never fetched whole.
import { ApiError, call, get, session } from "./api.js";
import { connectPanel } from "./connect.js";
import { h } from "./dom.js";
import { folderToolbar } from "./folder.js";
import { itemView } from "./item.js";
import { encodeName, urlOfPath } from "./paths.js";
import { breadcrumbs, contentsTable, pager, pageState } from "./table.js";
import { selectionBar } from "./selection.js";
import { uploadPanel } from "./uploadpanel.js";

const PAGE = 50;
const LISTS = {
  collection: { title: "Collections", path: "collection", sort: "name",
                link: (d) => urlOfPath(`/collection/${encodeName(d.name)}`), label: (d) => d.name },
  user: { title: "Users", path: "user", sort: "login",
          link: (d) => urlOfPath(`/user/${d.login}`),
          label: (d) => `${d.login}${d.firstName ? ` (${d.firstName} ${d.lastName || ""})` : ""}` },
  group: { title: "Groups", path: "group", sort: "name", link: null, label: (d) => d.name },
};

export async function listView(ctx, kind) {
  const spec = LISTS[kind];
  const { page } = pageState(ctx.url);
  const heading = h("h1", { id: "page-title", tabindex: "-1" }, spec.title);
  if (kind === "user" && !session.user) { // the server lists users to those signed in
    return { title: spec.title, node: h("section", {}, heading,
      h("p", {}, `Sign in to see the ${spec.title.toLowerCase()}.`)) };
  }
  const { data, total } = await call("GET", spec.path, {
    params: { limit: PAGE, offset: page * PAGE, sort: spec.sort } });
  const rows = data.map((doc) => h("li", { class: "entry" },
    spec.link ? h("a", { href: spec.link(doc), class: `kind-${kind}` }, spec.label(doc))
      : h("span", { class: `kind-${kind}` }, spec.label(doc)),
    doc.description ? h("p", { class: "muted description" }, doc.description) : null));
  return { title: spec.title, node: h("section", {}, heading,
    rows.length ? h("ul", { class: "entries" }, rows)
      : h("p", { class: "muted" }, `No ${spec.title.toLowerCase()} to show.`),
    pager(ctx, page, PAGE, total ?? data.length)) };
}

// A path from the URL: a user, collection or folder shows its contents; an item its page.
export async function resourceView(ctx, path) {
  let doc;
  try {
    doc = await get("resource/lookup", { path });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status === 0) throw err;
    return notFound(ctx, path);
  }
  if (["item", "folder", "collection", "user"].includes(doc._modelType)) {
    // The path lookup may answer from the server's short-lived path cache, which
    // can hold a document from before an edit made through the API: read the
    // document itself by id for what the page shows.
    doc = { ...(await get(`${doc._modelType}/${doc._id}`)), _modelType: doc._modelType };
  }
  if (doc._modelType === "item") return itemView(ctx, path, doc);
  if (doc._modelType === "file") {
    const parent = path.split("/").slice(0, -1).join("/");
    ctx.navigate(urlOfPath(parent), { replace: true });
    return { title: "", node: h("p", {}, "Opening the item…") };
  }
  return containerView(ctx, path, doc);
}

function notFound(ctx, path) {
  return { title: "Not found", node: h("section", {},
    breadcrumbs(path),
    h("h1", { id: "page-title", tabindex: "-1" }, "Not found"),
    h("p", { class: "error", role: "alert" },
      `Path not found: ${path}. It does not exist, or you may not see it.`),
    session.user ? null : h("p", {}, h("a", {
      href: `/login?next=${encodeURIComponent(location.pathname + location.search)}` },
    "Sign in to see more"))) };
}

async function containerView(ctx, path, doc) {
  const type = doc._modelType;
  const { page, sort, dir } = pageState(ctx.url);
  const offset = page * PAGE;
  const sortField = { name: "lowerName", size: "size", updated: "updated" }[sort] || "lowerName";
  const parentParams = { parentType: type, parentId: doc._id };
  // Folders first: the folder page tells how many folders there are, which
  // places the items after them in the same numbering.
  const folders = await call("GET", "folder", { params: { ...parentParams, limit: PAGE, offset,
    sort: sortField, sortdir: dir } });
  const nFolders = folders.total ?? folders.data.length;
  let items = { data: [], total: 0 };
  if (type === "folder") {
    const room = PAGE - folders.data.length;
    const itemOffset = Math.max(0, offset - nFolders);
    items = await call("GET", "item", { params: { folderId: doc._id, limit: room || 1,
      offset: room ? itemOffset : 0, sort: sortField, sortdir: dir } });
    if (!room) items.data = []; // that call only counted the items
  }
  const total = nFolders + (items.total ?? items.data.length);
  const title = type === "user" ? doc.login : doc.name;
  const count = `${total.toLocaleString()} ${total === 1 ? "entry" : "entries"}`;
  const entries = [
    ...folders.data.map((d) => ({ ...d, _modelType: "folder" })),
    ...items.data.map((d) => ({ ...d, _modelType: "item" })),
  ];
  const selection = selectionBar(ctx, path, entries);
  const table = contentsTable(ctx, path, entries, { sort, dir, selection });
  const upload = uploadPanel(ctx, doc);
  const node = h("section", {},
    breadcrumbs(path),
    h("div", { class: "title-row" },
      h("h1", { id: "page-title", tabindex: "-1" }, title),
      h("span", { class: "muted count", id: "total" }, count)),
    doc.description ? h("p", { class: "description", id: "description" }, doc.description)
      : null,
    folderToolbar(ctx, path, doc),
    selection.node,
    upload ? upload.node : null,
    entries.length ? table : h("p", { class: "muted", id: "empty" }, "This folder is empty."),
    pager(ctx, page, PAGE, total),
    connectPanel(path, doc));
  if (upload) upload.attach(node);
  return { title, node };
}
