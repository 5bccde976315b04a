// The client's entry: session, header, and the router (history routing: the URL
// of a folder or item is its Girder path, so a deep link works on reload).
import { accountView } from "./account.js";
import { adminView } from "./admin.js";
import { get, logout, restore, session } from "./api.js";
import { authorizedUploadView } from "./authupload.js";
import { loginView, publicSettings, registerView, safeNext } from "./auth.js";
import { listView, resourceView } from "./browse.js";
import { forgotView, mailLink, mailLinkView } from "./maillinks.js";
import { h, showError } from "./dom.js";
import { groupsView, groupView } from "./groups.js";
import { jobsView, jobView } from "./jobs.js";
import { takeHandedToken } from "./oauth.js";
import { pathOfUrl, urlOfPath } from "./paths.js";
import { searchView } from "./search.js";

const state = { policy: "open", brand: "Joist", generation: 0, expired: false, flash: null };

function here() {
  return location.pathname + location.search;
}

// `flash`: a short message the next page shows once ("Deleted 2 entries.").
export function navigate(url, { replace = false, flash = null } = {}) {
  state.flash = flash;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
}

function toLogin(expired) {
  const next = location.pathname.startsWith("/login") ? "/" : here();
  state.expired = expired;
  navigate(`/login?next=${encodeURIComponent(next)}`, { replace: expired });
}

session.onExpired = () => {
  if (!session.token) return;
  session.set(null, null);
  renderAccount();
  toLogin(true);
};

function renderAccount() {
  const box = document.getElementById("account");
  if (session.user) {
    const out = h("button", { type: "button", id: "sign-out" }, "Sign out");
    out.addEventListener("click", async () => {
      await logout().catch(() => null);
      renderAccount();
      navigate("/");
    });
    box.replaceChildren(
      h("a", { href: urlOfPath(`/user/${session.user.login}`), class: "me",
               title: "Your folders" }, session.user.login),
      h("a", { href: "/account", id: "my-account" }, "Account"),
      h("a", { href: "/jobs", id: "my-jobs" }, "Jobs"),
      ...(session.user.admin ? [h("a", { href: "/admin", id: "admin-link" }, "Admin")] : []), out);
  } else {
    const next = encodeURIComponent(location.pathname.startsWith("/login") ? "/" : here());
    box.replaceChildren(h("a", { href: `/login?next=${next}`, id: "sign-in" }, "Log in"),
      state.policy !== "closed" ? h("a", { href: "/register" }, "Register") : null);
  }
}

const isAuthorizedUpload = (hash) => hash.startsWith("#authorized_upload/");

function route(url) {
  const path = url.pathname;
  const ctx = { url, policy: state.policy, expired: state.expired, navigate,
                signedIn: async (next) => {
                  state.expired = false;
                  await restore();
                  renderAccount();
                  navigate(safeNext(next), { replace: true });
                },
                signedInQuietly: async () => {
                  const me = await restore();
                  renderAccount();
                  return me;
                } };
  const link = mailLink(url.hash);
  if (link) return mailLinkView(ctx, link);
  // the authorized_upload plugin's links (Girder's form): /#authorized_upload/<folder>/<token>
  if (path === "/" && isAuthorizedUpload(url.hash)) return authorizedUploadView(url.hash);
  if (path === "/login") return loginView(ctx);
  if (path === "/register") return registerView(ctx);
  if (path === "/forgot") return forgotView();
  if (path === "/" || path === "/collections") return listView(ctx, "collection");
  if (path === "/users") return listView(ctx, "user");
  if (path === "/groups") return groupsView(ctx);
  if (/^\/group\/[0-9a-f]{24}$/.test(path)) return groupView(ctx, path.slice(7));
  if (path === "/search") return searchView(ctx);
  if (path === "/jobs") return jobsView(ctx);
  if (/^\/jobs\/[0-9a-f]{24}$/.test(path)) return jobView(ctx, path.slice(6));
  if (path === "/account") return accountView(ctx);
  if (path === "/admin" || path.startsWith("/admin/")) return adminView(ctx);
  const girderPath = pathOfUrl(path);
  if (girderPath) return resourceView(ctx, girderPath);
  return { title: "Not found", node: h("section", {},
    h("h1", { id: "page-title", tabindex: "-1" }, "Page not found"),
    h("p", {}, "There is no page at this address. "), h("a", { href: "/" }, "Go to the start")) };
}

async function render() {
  const generation = ++state.generation;
  const main = document.getElementById("main");
  const url = new URL(location.href);
  const input = document.getElementById("path-input");
  input.value = pathOfUrl(url.pathname) || "";
  showError(document.getElementById("path-error"), null);
  main.setAttribute("aria-busy", "true");
  const section = url.pathname.startsWith("/user/") ? "/users"
    : url.pathname.startsWith("/group/") ? "/groups"
    : url.pathname.startsWith("/collection/") || url.pathname === "/" ? "/collections"
      : url.pathname;
  for (const a of document.querySelectorAll(".bar nav a")) {
    if (a.getAttribute("href") === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  let view;
  try {
    view = await route(url);
  } catch (err) {
    view = { title: "Error", node: h("section", {},
      h("h1", { id: "page-title", tabindex: "-1" }, "Something went wrong"),
      h("p", { class: "error", role: "alert" }, err.message || String(err))) };
  }
  if (generation !== state.generation) return; // a newer navigation won
  const flash = state.flash;
  state.flash = null;
  main.replaceChildren(flash ? h("p", { class: "notice", id: "flash", role: "status" }, flash)
    : "", view.node);
  main.removeAttribute("aria-busy");
  document.title = `${view.title} – ${state.brand}`;
  if (!view.keepFocus && !main.contains(document.activeElement)) {
    const heading = main.querySelector("h1");
    if (heading && state.generation > 1) heading.focus({ preventScroll: false });
  }
  if (view.after) view.after();
}

function interceptLinks() {
  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
        event.shiftKey || event.altKey) return;
    const link = event.target.closest("a[href]");
    if (!link || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || /^\/(api|dav|assets)(\/|$)/.test(url.pathname)) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener("popstate", render);
}

function wireHeader() {
  document.getElementById("search").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = document.getElementById("search-q").value.trim();
    const mode = document.getElementById("search-mode").value;
    if (q) navigate(`/search?${new URLSearchParams({ q, mode })}`);
  });
  document.getElementById("pathbar").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("path-error");
    const raw = document.getElementById("path-input").value.trim().replace(/(.)\/+$/, "$1");
    showError(error, null);
    const path = raw.startsWith("/") ? raw : `/${raw}`;
    try {
      await get("resource/lookup", { path }); // says "Path not found" here, next to the bar
      navigate(urlOfPath(path));
    } catch (err) {
      showError(error, err);
    }
  });
}

async function start() {
  interceptLinks();
  wireHeader();
  const settings = await publicSettings();
  state.policy = settings["core.registration_policy"] || "open";
  state.brand = settings["core.brand_name"] || "Joist";
  document.getElementById("brand").textContent = state.brand;
  const handed = takeHandedToken(); // back from an OAuth provider, signed in
  const hadToken = Boolean(session.token);
  try {
    await restore();
  } catch {
    session.set(null, null);
  }
  renderAccount();
  if (handed && session.user && location.pathname === "/login") {
    navigate(safeNext(new URL(location.href).searchParams.get("next")), { replace: true });
    return;
  }
  if (hadToken && !session.user && !location.pathname.startsWith("/login") &&
      !isAuthorizedUpload(location.hash)) {
    toLogin(true); // the stored token ran out: sign in, then come back here
    return;
  }
  render();
}

start();
