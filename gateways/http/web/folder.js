// What a folder page offers besides its contents: new folder, new item, rename,
// description and delete (for those allowed to write; the server decides).
import { call } from "./api.js";
import { confirmDialog, promptDialog } from "./dialogs.js";
import { h, showError } from "./dom.js";
import { childPath, urlOfPath } from "./paths.js";
import { withProgress } from "./progress.js";
import { shareDialog } from "./share.js";

const WRITE = 1;
const ADMIN = 2;

function parentOf(path) {
  return path.split("/").slice(0, -1).join("/");
}

export function folderToolbar(ctx, path, doc) {
  const type = doc._modelType;
  if ((doc._accessLevel ?? 0) < WRITE) return null;
  const error = h("p", { class: "error", id: "folder-error", role: "alert" });
  // Replace the history entry when the old address is gone or unchanged; a new
  // folder or item is a step forward (Back returns here).
  const go = (url, flash, replace = true) => ctx.navigate(urlOfPath(url), { replace, flash });

  const newFolder = async () => {
    const made = await promptDialog({ title: "New folder", label: "Folder name",
      action: "Create folder", submit: (name) => call("POST", "folder",
        { form: { parentType: type, parentId: doc._id, name } }) });
    if (made) go(childPath(path, made.data.name), `Created folder “${made.data.name}”.`, false);
  };
  const newItem = async () => {
    const made = await promptDialog({ title: "New item", label: "Item name",
      action: "Create item", submit: (name) => call("POST", "item",
        { form: { folderId: doc._id, name } }) });
    if (made) go(childPath(path, made.data.name), `Created item “${made.data.name}”.`, false);
  };
  const rename = async () => {
    const done = await promptDialog({ title: `Rename “${doc.name}”`, label: "New name",
      action: "Rename", value: doc.name,
      submit: (name) => call("PUT", `folder/${doc._id}`, { form: { name } }) });
    if (done) go(childPath(parentOf(path), done.data.name), "Renamed.");
  };
  const describe = async () => {
    const done = await promptDialog({ title: `Description of “${doc.name}”`,
      label: "Description", action: "Save", value: doc.description || "", multiline: true,
      submit: (description) => call("PUT", `folder/${doc._id}`, { form: { description } }) });
    if (done) go(path, "Description saved.");
  };
  const remove = async () => {
    const ok = await confirmDialog({ title: `Delete the folder “${doc.name}”?`,
      message: "The folder and everything in it will be deleted. This cannot be undone.",
      items: [doc.name], confirmLabel: "Delete" });
    if (!ok) return;
    try {
      await withProgress(`Deleting folder ${doc.name}`,
        () => call("DELETE", `folder/${doc._id}`, { params: { progress: true } }));
      go(parentOf(path), `Deleted the folder “${doc.name}”.`);
    } catch (err) {
      showError(error, err);
    }
  };

  const button = (id, label, onclick, cls) => h("button", { type: "button", id, onclick,
                                                             class: cls }, label);
  const buttons = [button("new-folder", "New folder…", newFolder)];
  if (type === "folder") {
    buttons.push(button("new-item", "New item…", newItem),
      button("rename-folder", "Rename…", rename),
      button("describe-folder", doc.description ? "Edit description" : "Add description",
             describe),
      button("delete-folder", "Delete folder…", remove, "danger"));
  }
  if (type !== "user" && (doc._accessLevel ?? 0) >= ADMIN) {
    const share = async () => {
      try {
        if (await shareDialog(type, doc)) go(path, "Access saved.");
      } catch (err) {
        showError(error, err);
      }
    };
    buttons.push(button("share", "Share…", share));
  }
  return h("div", { class: "toolbar", role: "group", "aria-label": "Folder actions" },
    buttons, error);
}
