// "Connect": the ways to reach this folder from other tools, each copyable. The
// server reports where WebDAV and SFTP listen (GET system/endpoints).
import { get, session } from "./api.js";
import { copyText, h } from "./dom.js";
import { urlOfPath } from "./paths.js";

const WILDCARD = ["", "0.0.0.0", "::", "[::]"];

function hostFor(host) {
  return !host || WILDCARD.includes(host) ? location.hostname : host;
}

function bracket(host) {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

function quote(text) {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

export function connectLines(path, doc, endpoints, login) {
  const lines = [];
  const user = login || "LOGIN";
  const dav = endpoints.webdav;
  if (dav) {
    const base = dav.port
      ? `${location.protocol}//${bracket(location.hostname)}:${dav.port}`
      : `${location.origin}${dav.path}`;
    const url = base + urlOfPath(path);
    lines.push({ label: "WebDAV URL", text: url });
    lines.push({ label: "File manager (dav://)",
                 text: url.replace(/^http(s?):/, (m, s) => (s ? "davs:" : "dav:")) });
  }
  if (endpoints.sftp) {
    const host = bracket(hostFor(endpoints.sftp.host));
    lines.push({ label: "SFTP (read-only)",
                 text: `sftp -P ${endpoints.sftp.port} ${user}@${host}:${quote(path)}` });
    lines.push({ label: "SFTP path", text: path });
  }
  lines.push({ label: "Mount (on the server machine; JOIST_API_KEY holds your API key)",
               text: `joist mount --user ${user} ~/joist && cd ~/joist${quote(path)}` });
  const api = `${location.origin}/api/v1`;
  const type = doc._modelType;
  const parentType = type === "folder" ? "" : ` --parent-type ${type}`;
  lines.push({ label: "girder-client: upload a local folder into this one",
               text: `girder-client --api-url ${api} --api-key KEY upload${parentType} ` +
                     `${doc._id} ./local-folder` });
  lines.push({ label: "girder-client: download this folder",
               text: `girder-client --api-url ${api} --api-key KEY download${parentType} ` +
                     `${doc._id} ./${quote(type === "user" ? doc.login : doc.name)}` });
  return lines;
}

export function connectPanel(path, doc) {
  const body = h("div", { class: "connect-body" }, h("p", { class: "muted" }, "Loading…"));
  const panel = h("details", { class: "connect", id: "connect" },
    h("summary", {}, "Connect"), body);
  let loaded = false;
  panel.addEventListener("toggle", async () => {
    if (!panel.open || loaded) return;
    loaded = true;
    let endpoints;
    try {
      endpoints = await get("system/endpoints");
    } catch (err) {
      body.replaceChildren(h("p", { class: "error", role: "alert" }, err.message));
      loaded = false;
      return;
    }
    const login = session.user ? session.user.login : null;
    body.replaceChildren(
      h("p", {}, "Reach this folder from other tools. Credentials: your login and password, " +
        "or an API key (needed when your account uses a one-time code)."),
      h("dl", {}, connectLines(path, doc, endpoints, login).map((line, i) => {
        const input = h("input", { id: `connect-${i}`, readonly: true, value: line.text,
                                   spellcheck: "false", class: "copy-text" });
        const done = h("span", { class: "copied", role: "status" });
        const button = h("button", { type: "button", "aria-label": `Copy ${line.label}` },
          "Copy");
        button.addEventListener("click", async () => {
          const ok = await copyText(line.text, input);
          done.textContent = ok ? "Copied" : "Press Ctrl+C to copy";
        });
        return [h("dt", {}, h("label", { for: input.id }, line.label)),
                h("dd", {}, input, button, done)];
      })));
  });
  return panel;
}
