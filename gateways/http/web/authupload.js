// The page of an authorized upload link (the `authorized_upload` plugin):
// /#authorized_upload/<folderId>/<token>. Someone without an account picks one
// file and sends it with Girder's upload protocol, authenticated by the link's
// token only (never the browser's own session), then sees "done".
import { apiUrl } from "./api.js";
import { errorLine, formatSize, h, showError } from "./dom.js";
import { chunkSize, sendBytes } from "./uploads.js";

// One request with the link's token only; a 401 means the link itself is dead.
async function send(method, url, token, body, onProgress) {
  try {
    return await sendBytes(method, url, { token, body, onProgress });
  } catch (err) {
    if (err.status === 401) {
      throw new Error("This upload link is no longer valid: it was used, it expired, " +
                      "or it was withdrawn.");
    }
    throw err;
  }
}

export function authorizedUploadView(hash) {
  const [, folderId, token] = hash.slice(1).split("/");
  const input = h("input", { type: "file", id: "authup-file" });
  const button = h("button", { type: "submit", id: "authup-send" }, "Upload");
  const bar = h("progress", { id: "authup-progress", max: "1", value: "0" });
  const status = h("p", { id: "authup-status", role: "status" }, "");
  const error = errorLine("authup-error");
  const form = h("form", { id: "authup-form" }, h("label", {}, "File ", input), " ", button);
  bar.hidden = true;

  async function upload(file) {
    const shown = (sent) => {
      bar.value = file.size ? sent / file.size : 1;
      status.textContent = `Uploading ${file.name}: ${formatSize(sent)} of ` +
        `${formatSize(file.size)}`;
    };
    const params = { parentType: "folder", parentId: folderId, name: file.name,
                     size: file.size, mimeType: file.type || undefined };
    let answer = await send("POST", apiUrl("file", params), token, null, null);
    let sent = 0;
    shown(0);
    const step = chunkSize(file.size);
    while (answer && answer._modelType !== "file" && sent < file.size) {
      const end = Math.min(file.size, sent + step);
      const url = apiUrl("file/chunk", { uploadId: answer._id, offset: sent });
      const base = sent;
      answer = await send("POST", url, token, file.slice(sent, end), (n) => shown(base + n));
      sent = end;
      shown(sent);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = input.files[0];
    showError(error, null);
    if (!file) {
      showError(error, new Error("Choose a file first."));
      return;
    }
    input.disabled = true;
    button.disabled = true;
    bar.hidden = false;
    try {
      await upload(file);
      bar.value = 1;
      form.hidden = true;
      status.textContent = `Done: ${file.name} was uploaded. This link cannot be used again.`;
      status.id = "authup-done";
    } catch (err) {
      bar.hidden = true;
      status.textContent = "";
      showError(error, err);
      input.disabled = false;
      button.disabled = false;
    }
  });

  const valid = /^[0-9a-f]{24}$/.test(folderId || "") && /^[A-Za-z0-9]+$/.test(token || "");
  return { title: "Upload a file", node: h("section", { id: "authorized-upload" },
    h("h1", { id: "page-title", tabindex: "-1" }, "Upload a file"),
    valid ? h("p", {}, "Someone shared this link so you can send them one file. " +
                       "No account is needed.")
      : h("p", { class: "error", role: "alert" }, "This upload link is incomplete."),
    valid ? form : "", bar, status, error) };
}
