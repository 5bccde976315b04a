// The REST API, as girder-client uses it: every call sends the token as the
// Girder-Token header. Errors become ApiError with the server's message.

const ROOT = "/api/v1/";
const KEY = "joist.token";

export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.field = body && body.field;
    this.body = body;
  }
}

export const session = {
  token: localStorage.getItem(KEY),
  user: null,
  onExpired: null, // set by main.js: back to the sign-in form
  set(token, user) {
    this.token = token;
    this.user = user;
    if (token) localStorage.setItem(KEY, token);
    else localStorage.removeItem(KEY);
  },
};

export function apiUrl(path, params) {
  const url = new URL(ROOT + path.replace(/^\//, ""), location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null) continue;
    url.searchParams.set(key, typeof value === "object" ? JSON.stringify(value) : value);
  }
  return url;
}

// Returns {data, total} where total is Girder-Total-Count (or null).
export async function call(method, path, { params, form, json, headers, auth = true } = {}) {
  const init = { method, headers: { Accept: "application/json", ...(headers || {}) } };
  if (auth && session.token) init.headers["Girder-Token"] = session.token;
  if (form) {
    init.body = new URLSearchParams(Object.entries(form).filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)]));
  }
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  }
  let reply;
  try {
    reply = await fetch(apiUrl(path, params), init);
  } catch {
    throw new ApiError("The server could not be reached. Check your connection.", 0, null);
  }
  const text = await reply.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!reply.ok) {
    const message = (data && data.message) || `The server answered ${reply.status}.`;
    const error = new ApiError(message, reply.status, data);
    // A token that ran out or was revoked counts as anonymous on the server, so
    // it shows as a refusal or a "not found": ask who we are before saying so.
    if ([400, 401, 403].includes(reply.status) && auth && session.token &&
        session.onExpired && path !== "user/me" && !(await signedIn())) {
      session.onExpired(error);
      error.expired = true;
    }
    throw error;
  }
  const total = reply.headers.get("Girder-Total-Count");
  return { data, total: total === null ? null : Number(total) };
}

async function signedIn() {
  try {
    const reply = await fetch(apiUrl("user/me"), { headers: { "Girder-Token": session.token } });
    return reply.ok && (await reply.json()) !== null;
  } catch {
    return true; // unreachable is not expired
  }
}

export const get = async (path, params) => (await call("GET", path, { params })).data;
export const post = async (path, form) => (await call("POST", path, { form })).data;
export const put = async (path, form) => (await call("PUT", path, { form })).data;
export const del = async (path, params) => (await call("DELETE", path, { params })).data;

export async function login(loginOrEmail, password, otp) {
  const utf8 = new TextEncoder().encode(`${loginOrEmail}:${password}`);
  const basic = btoa(String.fromCharCode(...utf8));
  const headers = { Authorization: `Basic ${basic}` };
  if (otp) headers["Girder-OTP"] = otp;
  const { data } = await call("GET", "user/authentication", { headers, auth: false });
  session.set(data.authToken.token, data.user);
  return data.user;
}

export async function logout() {
  try {
    if (session.token) await call("DELETE", "user/authentication");
  } finally {
    session.set(null, null);
  }
}

// The signed-in user, or null (a stale token is dropped).
export async function restore() {
  if (!session.token) return null;
  const me = await get("user/me");
  if (!me) {
    session.set(null, null);
    return null;
  }
  session.user = me;
  return me;
}
