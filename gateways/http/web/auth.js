// Sign in (with the one-time code when the account has one), registration, sign out.
import { ApiError, call, login, session } from "./api.js";
import { h, showError } from "./dom.js";
import { providerButtons } from "./oauth.js";

const OTP_NEEDED = /one-time password/i;

function field(id, label, attrs = {}) {
  const input = h("input", { id, name: id, ...attrs });
  const error = h("p", { class: "error", id: `${id}-error`, role: "alert" });
  input.setAttribute("aria-describedby", error.id);
  return { row: h("div", { class: "field" }, h("label", { for: id }, label), input, error),
           input, error };
}

export function loginView(ctx) {
  const next = safeNext(ctx.url.searchParams.get("next"));
  // Filled when the server has listed its OAuth providers (a slow provider's
  // discovery must not hold up the password form).
  const providers = h("div", { id: "oauth-slot" });
  providerButtons(next).then((buttons) => { if (buttons) providers.replaceChildren(buttons); });
  const who = field("login", "Login or email", { autocomplete: "username", required: true });
  const secret = field("password", "Password", { type: "password", required: true,
                                                 autocomplete: "current-password" });
  const otp = field("otp", "One-time code", { inputmode: "numeric", autocomplete: "one-time-code",
                                              pattern: "[0-9 ]*" });
  otp.row.hidden = true;
  const error = h("p", { class: "error", id: "signin-error", role: "alert" });
  const button = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h("form", { class: "card narrow", "aria-labelledby": "page-title" },
    h("h1", { id: "page-title", tabindex: "-1" }, "Sign in"),
    ctx.expired ? h("p", { class: "notice" }, "Your session has ended. Sign in again to continue.")
      : null,
    who.row, secret.row, otp.row, error, button, providers,
    h("p", {}, h("a", { href: "/forgot", id: "forgot-link" }, "Forgot your password?")),
    ctx.policy !== "closed" ? h("p", {}, "No account yet? ",
      h("a", { href: "/register" + (next !== "/" ? `?next=${encodeURIComponent(next)}` : "") },
        "Register")) : null);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null);
    button.disabled = true;
    try {
      const code = otp.row.hidden ? null : otp.input.value.replace(/\s/g, "");
      await login(who.input.value.trim(), secret.input.value, code);
      await ctx.signedIn(next);
    } catch (err) {
      if (err instanceof ApiError && OTP_NEEDED.test(err.message) && otp.row.hidden) {
        otp.row.hidden = false;
        otp.input.required = true;
        showError(error, { message: "This account uses a one-time code: enter the code " +
                                    "from your authenticator app." });
        otp.input.focus();
      } else {
        showError(error, err);
      }
    } finally {
      button.disabled = false;
    }
  });
  // The oauth plugin's callback sends failures back here (oauthError=...).
  const refused = ctx.url.searchParams.get("oauthError");
  if (refused) showError(error, { message: refused });
  queueMicrotask(() => who.input.focus());
  return { title: "Sign in", node: form };
}

export function registerView(ctx) {
  const next = safeNext(ctx.url.searchParams.get("next"));
  if (ctx.policy === "closed") {
    return { title: "Register", node: h("section", { class: "card narrow" },
      h("h1", { id: "page-title", tabindex: "-1" }, "Register"),
      h("p", {}, "Registration on this server is closed. Ask an administrator for an account.")) };
  }
  const fields = {
    login: field("reg-login", "Login", { autocomplete: "username", required: true }),
    email: field("reg-email", "Email", { type: "email", autocomplete: "email", required: true }),
    firstName: field("reg-first", "First name", { autocomplete: "given-name", required: true }),
    lastName: field("reg-last", "Last name", { autocomplete: "family-name", required: true }),
    password: field("reg-password", "Password", { type: "password", required: true,
                                                  autocomplete: "new-password" }),
  };
  const error = h("p", { class: "error", id: "register-error", role: "alert" });
  const outcome = h("div", { role: "status" });
  const form = h("form", { class: "card narrow" },
    h("h1", { id: "page-title", tabindex: "-1" }, "Register"),
    ctx.policy === "approve" ? h("p", { class: "notice" },
      "New accounts on this server wait for an administrator's approval.") : null,
    Object.values(fields).map((f) => f.row), error,
    h("button", { type: "submit", class: "primary" }, "Create account"), outcome);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const f of Object.values(fields)) showError(f.error, null);
    showError(error, null);
    const values = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.input.value]));
    try {
      const { data } = await call("POST", "user", { form: values, auth: false });
      if (data.authToken) {
        session.set(data.authToken.token, data);
        await ctx.signedIn(next);
        return;
      }
      outcome.replaceChildren(h("p", { class: "notice" }, data.status === "pending"
        ? "Your account was created and now waits for an administrator's approval. " +
          "You can sign in once it is approved."
        : "Your account was created. Check your email for the verification link, " +
          "then sign in."));
      form.querySelector("button[type=submit]").disabled = true;
    } catch (err) {
      const target = err.field && fields[err.field];
      showError(target ? target.error : error, err);
      (target ? target.input : fields.login.input).focus();
    }
  });
  return { title: "Register", node: form };
}

// Only same-site paths may be a "next" (no open redirect).
export function safeNext(next) {
  if (!next || !next.startsWith("/")) return "/";
  try {
    const url = new URL(next, location.origin); // "//x" and "/\\x" leave the site
    return url.origin === location.origin ? url.pathname + url.search : "/";
  } catch {
    return "/";
  }
}

// Public settings (registration policy, brand name); {} when unreachable.
export async function publicSettings() {
  try {
    return (await call("GET", "system/public_settings", { auth: false })).data || {};
  } catch {
    return {};
  }
}
