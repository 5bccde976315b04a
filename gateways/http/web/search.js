// Quick search: Girder's text and prefix modes over resource/search; every
// result links to its page.
import { call, get } from "./api.js";
import { h } from "./dom.js";
import { urlOfPath } from "./paths.js";

const TYPES = ["collection", "folder", "item", "user", "group"];
const HEADINGS = { collection: "Collections", folder: "Folders", item: "Items", user: "Users",
                   group: "Groups" };

// [link, the Girder path shown under the name] of a result.
async function linkFor(type, doc) {
  if (type === "user") return [urlOfPath(`/user/${doc.login}`), null];
  if (type === "group") return [null, null];
  const path = await get(`resource/${doc._id}/path`, { type });
  return [urlOfPath(path), path];
}

export async function searchView(ctx) {
  const q = ctx.url.searchParams.get("q") || "";
  const mode = ctx.url.searchParams.get("mode") === "prefix" ? "prefix" : "text";
  document.getElementById("search-q").value = q;
  document.getElementById("search-mode").value = mode;
  const heading = h("h1", { id: "page-title", tabindex: "-1" }, `Search: ${q}`);
  if (!q) {
    return { title: "Search",
             node: h("section", {}, heading, h("p", {}, "Type in the box above.")) };
  }
  let results;
  try {
    results = (await call("GET", "resource/search", { params: { q, mode, types: TYPES,
                                                               limit: 20 } })).data;
  } catch (err) {
    return { title: "Search", node: h("section", {}, heading,
      h("p", { class: "error", role: "alert" }, err.message)) };
  }
  const sections = [];
  for (const type of TYPES) {
    const docs = results[type] || [];
    if (!docs.length) continue;
    const links = await Promise.all(docs.map((doc) => linkFor(type, doc)
      .catch(() => [null, null])));
    sections.push(h("section", { class: "results" }, h("h2", {}, HEADINGS[type]),
      h("ul", { class: "entries" }, docs.map((doc, i) => {
        const label = type === "user" ? doc.login : doc.name;
        const [href, path] = links[i];
        return h("li", { class: "entry" }, href
          ? h("a", { href, class: `kind-${type}` }, label)
          : h("span", { class: `kind-${type}` }, label),
        path ? h("p", { class: "muted path" }, path) : null,
        doc.description ? h("p", { class: "muted description" }, doc.description) : null);
      }))));
  }
  return { title: `Search: ${q}`, node: h("section", {}, heading,
    h("p", { class: "muted" }, mode === "prefix" ? "Names starting with the text."
      : "Names and descriptions containing the words."),
    sections.length ? sections : h("p", { id: "no-results" }, "Nothing found.")) };
}
