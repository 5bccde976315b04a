// Girder's path codec (a "/" in a name is written "\-", a "\" as "\\") and the
// mapping between Girder paths and this client's URLs (history routing: the URL
// of a folder is its Girder path, each segment percent-encoded).

export function encodeName(name) {
  return String(name).replaceAll("\\", "\\\\").replaceAll("/", "\\-");
}

export function decodeName(segment) {
  return String(segment).replaceAll("\\-", "/").replaceAll("\\\\", "\\");
}

// "/collection/a b/c\-d" -> "/collection/a%20b/c%5C-d"
export function urlOfPath(path) {
  return path.split("/").map(encodeURIComponent).join("/");
}

// location.pathname -> the Girder path it names, or null when the URL is not one.
export function pathOfUrl(pathname) {
  const segments = pathname.split("/").filter((s) => s !== "");
  if (segments.length < 2 || !["collection", "user"].includes(segments[0])) return null;
  try {
    return "/" + segments.map(decodeURIComponent).join("/");
  } catch {
    return null;
  }
}

export function childPath(parentPath, name) {
  return `${parentPath.replace(/\/$/, "")}/${encodeName(name)}`;
}

// Breadcrumbs for a Girder path: [{name, path}] from the root kind down.
export function crumbs(path) {
  const segments = path.split("/").filter((s) => s !== "");
  const out = [];
  for (let i = 0; i < segments.length; i += 1) {
    const sub = "/" + segments.slice(0, i + 1).join("/");
    if (i === 0) {
      out.push({ name: segments[0] === "user" ? "Users" : "Collections",
                 href: segments[0] === "user" ? "/users" : "/collections" });
    } else {
      out.push({ name: decodeName(segments[i]), href: urlOfPath(sub), path: sub });
    }
  }
  return out;
}
