// OAuth2 / OpenID Connect sign-in (the oauth plugin): a button per enabled
// provider on the sign-in page, the token the provider's round trip hands back,
// and what an account without a password uses on WebDAV and SFTP.
import { call, session } from "./api.js";
import { h } from "./dom.js";
import { panel } from "./forms.js";

// The providers' sign-in buttons; nothing when the plugin is off or none is enabled.
export async function providerButtons(next) {
  const back = new URL("/login", location.origin);
  if (next && next !== "/") back.searchParams.set("next", next);
  let providers;
  try {
    ({ data: providers } = await call("GET", "oauth/provider",
      { params: { redirect: back.pathname + back.search, list: true }, auth: false }));
  } catch {
    return null; // the plugin is not loaded
  }
  if (!Array.isArray(providers) || !providers.length) return null;
  return h("div", { class: "oauth-providers", id: "oauth-providers" },
    h("p", { class: "muted" }, "Or sign in with"),
    providers.map((p) => p.url
      ? h("a", { class: "button oauth", href: p.url, id: `oauth-${p.id}`,
                 "data-external": "true" }, `Sign in with ${p.name}`)
      : h("p", { class: "error", id: `oauth-${p.id}` },
        `${p.name}: ${p.error || "unavailable"}`)));
}

// The callback redirects to /login?...&girderToken=... (Girder's form): keep the
// token, take it out of the address bar and history at once.
export function takeHandedToken() {
  const url = new URL(location.href);
  const token = url.searchParams.get("girderToken");
  if (!token) return false;
  url.searchParams.delete("girderToken");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
  session.set(token, null);
  return true;
}

// On the account page: how this account signs in, and so what WebDAV and SFTP take.
export async function signInPanel() {
  let account;
  try {
    ({ data: account } = await call("GET", "oauth/account"));
  } catch {
    return null;
  }
  if (!account || (account.hasPassword && !account.providers.length)) return null;
  const names = account.providers.map((p) => p.name).join(", ");
  const parts = [];
  if (names) parts.push(h("p", { id: "oauth-linked" }, `You sign in with ${names}.`));
  if (!account.hasPassword) {
    parts.push(h("p", { class: "notice", id: "no-password" },
      "This account has no password. WebDAV and SFTP cannot ask your provider, so use an " +
      "API key there (your login as the user name, the key as the password), or an SSH " +
      "key for SFTP: both are made below."));
  }
  return panel("sign-in-methods", "How you sign in", h("div", {}, ...parts));
}
