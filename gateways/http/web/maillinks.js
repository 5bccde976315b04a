// The pages the server's mail links open (core/mail/notices.py writes them in
// Girder's form, `#useraccount/<id>/verification/<token>` and
// `#useraccount/<id>/token/<token>`): verify an email address, and set a new
// password after a reset. The token travels in the fragment, never to a server log.
import { call, login, session } from "./api.js";
import { h, showError } from "./dom.js";
import { errorFor, field, notice, onSubmit, pageHeading, say } from "./forms.js";

const LINK = /^#useraccount\/([0-9a-f]{24})\/(verification|token)\/([^/?#]+)$/;

// The mail link in the address bar, if any: {userId, kind, token}.
export function mailLink(hash) {
  const found = LINK.exec(hash || "");
  return found ? { userId: found[1], kind: found[2], token: decodeURIComponent(found[3]) }
    : null;
}

export async function mailLinkView(ctx, link) {
  return link.kind === "verification" ? verifyView(ctx, link) : resetView(ctx, link);
}

async function verifyView(ctx, link) {
  const node = h("section", {}, pageHeading("Email verification"));
  try {
    const { data } = await call("PUT", `user/${link.userId}/verification`,
                                { params: { token: link.token }, auth: false });
    if (data && data.authToken) {
      session.set(data.authToken.token, data.user || null);
      await ctx.signedInQuietly();
    }
    node.append(h("p", { class: "notice", id: "verify-done", role: "status" },
      "Your email address is verified. You can now use your account."),
    h("a", { href: "/" }, "Go to the start"));
  } catch (err) {
    const error = errorFor("verify-error");
    showError(error, err);
    node.append(error, h("p", {}, "The link may have been used already. ",
      h("a", { href: "/login" }, "Log in"), " to ask for a new one."));
  }
  return { title: "Email verification", node };
}

async function resetView(ctx, link) {
  const node = h("section", {}, pageHeading("Choose a new password"));
  let loginToken;
  let user;
  try {
    const { data } = await call("GET", `user/password/temporary/${link.userId}`,
                                { params: { token: link.token }, auth: false });
    loginToken = data.authToken.token;
    user = data.user;
  } catch (err) {
    const error = errorFor("reset-error");
    showError(error, err);
    node.append(error, h("p", {}, "This reset link is not valid any more. ",
      h("a", { href: "/login" }, "Log in"), " to ask for a new one."));
    return { title: "Password reset", node };
  }
  const fresh = field("reset-password", "New password",
                      { type: "password", required: true, autocomplete: "new-password" });
  const again = field("reset-password-2", "New password again",
                      { type: "password", required: true, autocomplete: "new-password" });
  const error = errorFor("reset-error");
  const done = notice("reset-done");
  const form = h("form", { id: "reset-form", novalidate: true }, fresh.row, again.row, error,
    done, h("button", { type: "submit", class: "primary" }, "Set password"));
  onSubmit(form, error, async () => {
    if (fresh.input.value !== again.input.value) {
      showError(again.error, { message: "The two passwords differ." });
      return;
    }
    // Girder's flow: signed in by the login token the link gave, the mailed
    // token stands for the old password (and is used up by the change).
    await call("PUT", "user/password", { form: { old: link.token, new: fresh.input.value },
                                         headers: { "Girder-Token": loginToken }, auth: false });
    form.replaceChildren(done);
    try {
      session.set(loginToken, user);
      if (!(await ctx.signedInQuietly())) {
        await login(user.login, fresh.input.value);
        await ctx.signedInQuietly();
      }
      say(done, "Your password is changed. You are signed in. ");
      done.append(h("a", { href: "/" }, "Go to the start"));
    } catch {
      session.set(null, null);
      say(done, "Your password is changed. Log in with it.");
      done.append(" ", h("a", { href: "/login" }, "Log in"));
    }
  }, { new: fresh, password: fresh });
  node.append(form);
  return { title: "Password reset", node, after: () => fresh.input.focus() };
}

// "Forgot your password?": the server mails a reset link (PUT user/password/temporary).
export function forgotView() {
  const email = field("forgot-email", "Email address",
                      { type: "email", required: true, autocomplete: "email" });
  const error = errorFor("forgot-error");
  const done = notice("forgot-done");
  const form = h("form", { class: "card narrow", id: "forgot-form", novalidate: true },
    pageHeading("Reset your password"),
    h("p", {}, "Enter the email address of your account: we send you a link to choose a " +
               "new password."), email.row, error, done,
    h("button", { type: "submit", class: "primary" }, "Send the link"));
  onSubmit(form, error, async () => {
    await call("PUT", "user/password/temporary",
               { params: { email: email.input.value.trim() }, auth: false });
    say(done, "The link is on its way. Check your email.");
  }, { email });
  return { title: "Reset your password", node: form, after: () => email.input.focus() };
}
