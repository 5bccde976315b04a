// "My account": profile, password, two-step sign-in (TOTP), then API keys and
// SSH keys (keys.js). Everything goes through the REST API as the signed-in user.
import { apiUrl, call, get, restore, session } from "./api.js";
import { h, showError } from "./dom.js";
import { errorFor, field, notice, onSubmit, pageHeading, panel, say } from "./forms.js";
import { apiKeysPanel, sshKeysPanel } from "./keys.js";
import { signInPanel } from "./oauth.js";

export async function accountView(ctx) {
  if (!session.user) {
    ctx.navigate(`/login?next=${encodeURIComponent("/account")}`, { replace: true });
    return { title: "Sign in", node: h("p", {}, "Sign in to see your account.") };
  }
  const me = await get(`user/${session.user._id}`);
  // A part the server refuses (API keys turned off, say) says so in its place.
  const part = (id, title, promise) => promise.catch((err) => panel(id, title,
    h("p", { class: "error", role: "alert" }, err.message || String(err))));
  const [keys, ssh, methods] = await Promise.all([
    part("api-keys", "API keys", apiKeysPanel(me)),
    part("ssh-keys", "SSH keys for SFTP", sshKeysPanel(me)), signInPanel()]);
  const noPassword = methods && methods.querySelector("#no-password");
  return { title: "My account", node: h("section", {},
    pageHeading("My account"),
    h("p", { class: "muted" }, `Signed in as ${me.login}.`), methods,
    // Without a password there is nothing to change, nor a password to add a code to.
    profilePanel(me), noPassword ? null : passwordPanel(), noPassword ? null : otpPanel(me),
    keys, ssh) };
}

function profilePanel(me) {
  const first = field("first-name", "First name", { value: me.firstName || "", required: true,
                                                    autocomplete: "given-name" });
  const last = field("last-name", "Last name", { value: me.lastName || "", required: true,
                                                 autocomplete: "family-name" });
  const email = field("email", "Email", { type: "email", value: me.email || "", required: true,
                                          autocomplete: "email" });
  const error = errorFor("profile-error");
  const done = notice("profile-done");
  const form = h("form", {}, h("div", { class: "form-grid" }, first.row, last.row, email.row),
    error, done, h("button", { type: "submit", class: "primary" }, "Save profile"));
  onSubmit(form, error, async () => {
    say(done, "");
    await call("PUT", `user/${me._id}`, { form: { firstName: first.input.value.trim(),
      lastName: last.input.value.trim(), email: email.input.value.trim() } });
    await restore();
    say(done, "Profile saved.");
  }, { firstName: first, lastName: last, email });
  return panel("profile", "Profile", form);
}

function passwordPanel() {
  const old = field("old-password", "Current password", { type: "password", required: true,
                                                         autocomplete: "current-password" });
  const fresh = field("new-password", "New password", { type: "password", required: true,
                                                       autocomplete: "new-password" });
  const again = field("new-password-2", "New password again", { type: "password",
                                                                required: true,
                                                                autocomplete: "new-password" });
  const error = errorFor("password-error");
  const done = notice("password-done");
  const form = h("form", {}, h("div", { class: "form-grid" }, old.row, fresh.row, again.row),
    error, done, h("button", { type: "submit", class: "primary" }, "Change password"));
  onSubmit(form, error, async () => {
    say(done, "");
    if (fresh.input.value !== again.input.value) {
      showError(again.error, { message: "The two new passwords differ." });
      again.input.focus();
      return;
    }
    await call("PUT", "user/password", { form: { old: old.input.value,
                                                 new: fresh.input.value } });
    form.reset();
    say(done, "Password changed.");
  }, { old, new: fresh, password: fresh });
  return panel("password", "Password", form);
}

// The QR code is rendered by the server (segno) from the pending otpauth URI and
// fetched with the token header, then shown from a blob: URL (an <img> never
// runs script, and the CSP allows blob: images only).
async function qrImage(userId) {
  const reply = await fetch(apiUrl(`user/${userId}/otp/qr`),
    { headers: { "Girder-Token": session.token } });
  if (!reply.ok) return null;
  const img = h("img", { class: "qr", id: "otp-qr", alt: "QR code of the setup link" });
  img.src = URL.createObjectURL(await reply.blob());
  img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
  return img;
}

function otpPanel(me) {
  const body = h("div", {});
  const error = errorFor("otp-error");
  const draw = (enabled, message) => {
    if (enabled) {
      const remove = h("button", { type: "button", class: "danger", id: "otp-remove" },
        "Turn off two-step sign-in");
      remove.addEventListener("click", async () => {
        showError(error, null);
        try {
          await call("DELETE", `user/${me._id}/otp`);
          draw(false, "Two-step sign-in is off.");
        } catch (err) {
          showError(error, err);
        }
      });
      body.replaceChildren(message ? h("p", { class: "notice", role: "status" }, message) : "",
        h("p", { id: "otp-state" }, "Two-step sign-in is on: signing in asks for a code " +
          "from your authenticator app."), remove, error);
      return;
    }
    const start = h("button", { type: "button", class: "primary", id: "otp-start" },
      "Set up two-step sign-in");
    start.addEventListener("click", () => enrol().catch((err) => showError(error, err)));
    body.replaceChildren(message ? h("p", { class: "notice", role: "status" }, message) : "",
      h("p", { id: "otp-state" }, "Two-step sign-in is off."), start, error);
  };
  const enrol = async () => {
    showError(error, null);
    const { data } = await call("POST", `user/${me._id}/otp`);
    const uri = data.totpUri;
    const secret = new URL(uri).searchParams.get("secret") || "";
    const code = field("otp-code", "Code from the app", { inputmode: "numeric", required: true,
                                                          autocomplete: "one-time-code",
                                                          pattern: "[0-9 ]*" });
    const form = h("form", {},
      h("p", {}, "Scan this code with an authenticator app, then enter the code it shows."),
      await qrImage(me._id),
      h("p", { class: "hint" }, "Or enter this key by hand: ",
        h("code", { id: "otp-secret", class: "secret" }, secret)),
      code.row, error,
      h("div", { class: "inline" },
        h("button", { type: "submit", class: "primary" }, "Confirm"),
        h("button", { type: "button", onclick: () => draw(false) }, "Cancel")));
    onSubmit(form, error, async () => {
      await call("PUT", `user/${me._id}/otp`,
        { headers: { "Girder-OTP": code.input.value.replace(/\s/g, "") } });
      draw(true, "Two-step sign-in is on.");
    });
    body.replaceChildren(form);
    code.input.focus();
  };
  draw(Boolean(me.otp));
  return panel("otp", "Two-step sign-in", body);
}
