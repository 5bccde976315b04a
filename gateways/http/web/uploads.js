// The upload engine (no DOM): files go through Girder's REST upload protocol,
// as girder-client sends them: POST file (parent, name, size), then raw chunks
// at the server's offset (POST file/chunk), cancel with DELETE file/upload/{id}.
// An upload id is kept in localStorage under parent+name+size+lastModified, so a
// file selected again after a reload, a lost connection or a server restart goes
// on from GET file/offset instead of starting over.
import { ApiError, apiUrl, call, session } from "./api.js";

const MiB = 1024 * 1024;
const MIN_CHUNK = 5 * MiB; // the server's default minimum for a non-final chunk
const MAX_CHUNK = 64 * MiB; // girder-client's chunk size
// ms between attempts after a lost connection (~30 s in all: a server restart)
const RETRIES = [500, 1000, 2000, 4000, 8000, 15000];
const PARALLEL = 2; // files at once: small files are latency-bound
const PREFIX = "joist.upload:";

// Big files in ~16 chunks (less to resend after an interruption), never below
// the server's minimum nor above girder-client's size.
export function chunkSize(size) {
  return Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, Math.ceil(size / 16 / MiB) * MiB));
}

function storageKey(folderId, file) {
  const user = session.user ? session.user._id : "anonymous";
  return `${PREFIX}${user}:${folderId}:${file.name}:${file.size}:${file.lastModified}`;
}

function remember(job) {
  localStorage.setItem(job.key, JSON.stringify({
    uploadId: job.uploadId, name: job.file.name, size: job.file.size,
    folderId: job.folderId, relPath: job.relPath, started: Date.now() }));
}

function forget(job) {
  if (job.key) localStorage.removeItem(job.key);
}

// Unfinished uploads this user started into a folder (for the "select the same
// files again" notice after a reload).
export function pendingIn(folderId) {
  const user = session.user ? session.user._id : "anonymous";
  const prefix = `${PREFIX}${user}:${folderId}:`;
  const found = [];
  for (let i = 0; i < localStorage.length; i += 1) {
    const key = localStorage.key(i);
    if (!key || !key.startsWith(prefix)) continue;
    try {
      found.push({ key, ...JSON.parse(localStorage.getItem(key)) });
    } catch {
      localStorage.removeItem(key);
    }
  }
  return found;
}

// How much of a remembered upload the server holds (null: it is gone).
export async function pendingOffset(entry) {
  try {
    return (await call("GET", "file/offset", { params: { uploadId: entry.uploadId } })).data.offset;
  } catch (err) {
    if (!transient(err)) localStorage.removeItem(entry.key);
    return transient(err) ? undefined : null;
  }
}

export function forgetPending(entry) {
  localStorage.removeItem(entry.key);
  if (entry.uploadId) call("DELETE", `file/upload/${entry.uploadId}`).catch(() => null);
}

class Canceled extends Error {}

// One request with a raw body by XMLHttpRequest, which reports upload progress
// and can be aborted (`onXhr` sees the request while it runs, then null).
// Resolves with the JSON answer; rejects with ApiError (status 0: the
// connection was lost) or Canceled. The upload panel and the authorized-upload
// page both send through it.
export function sendBytes(method, url, { token, body, onProgress, onXhr } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const settle = () => { if (onXhr) onXhr(null); };
    if (onXhr) onXhr(xhr);
    xhr.open(method, url);
    xhr.setRequestHeader("Accept", "application/json");
    // Raw bytes, never parsed as a form whatever the file's own type.
    if (body) xhr.setRequestHeader("Content-Type", "application/octet-stream");
    if (token) xhr.setRequestHeader("Girder-Token", token);
    if (onProgress) xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
    xhr.addEventListener("load", () => {
      settle();
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError((data && data.message) || `The server answered ${xhr.status}.`,
        xhr.status, data));
    });
    xhr.addEventListener("error", () => {
      settle();
      reject(new ApiError("The connection was lost.", 0, null));
    });
    xhr.addEventListener("abort", () => {
      settle();
      reject(new Canceled("Canceled."));
    });
    xhr.send(body || null);
  });
}

function sendRaw(job, url, body) {
  const base = job.sent;
  return sendBytes("POST", url, {
    token: session.token, body,
    onProgress: (loaded) => job.queue.progress(job, base + loaded),
    onXhr: (xhr) => { job.xhr = xhr; },
  });
}

const transient = (err) => err instanceof ApiError && (err.status === 0 || err.status >= 500);

export class UploadQueue {
  constructor() {
    this.jobs = [];
    this.listeners = new Set();
    this.folders = new Map(); // "<parentId>/<name>" -> Promise of the folder id
    this.running = 0;
    this.serial = 0; // row ids (crypto.randomUUID needs https, which a LAN server may lack)
    this.making = 0; // empty folders of a dropped tree being created
    this.samples = []; // [time, total bytes sent] for the overall rate
    window.addEventListener("online", () => this.resumeAll());
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(job) {
    for (const fn of this.listeners) fn(job);
  }

  // entries: [{file, dirs: ["a", "b"]}]; emptyDirs: [["a", "c"]] (kept as folders too).
  add(folderId, entries, emptyDirs = []) {
    if (!this.active()) {
      this.jobs = this.jobs.filter((j) => !["done", "canceled"].includes(j.state));
      this.samples = [];
    }
    // The same file chosen again replaces its interrupted or failed row.
    const same = (j, { file, dirs }) => j.rootId === folderId && j.file.size === file.size &&
      j.file.lastModified === file.lastModified && j.relPath === [...dirs, file.name].join("/");
    this.jobs = this.jobs.filter((j) => !(["interrupted", "failed"].includes(j.state) &&
                                          entries.some((e) => same(j, e))));
    const added = entries.map(({ file, dirs }) => ({
      id: ++this.serial, queue: this, file, dirs, rootId: folderId, folderId: null,
      relPath: [...dirs, file.name].join("/"), state: "queued", sent: 0, resumedFrom: null,
      uploadId: null, key: null, error: null, attempt: 0, samples: [], xhr: null }));
    this.jobs.push(...added);
    for (const dirs of emptyDirs) { // part of the batch: it is over when they exist
      this.making += 1;
      this.folderFor(folderId, dirs).catch(() => null).finally(() => {
        this.making -= 1;
        this.emit(null);
      });
    }
    this.emit(null);
    this.pump();
    return added;
  }

  active() {
    const busy = ["queued", "running", "retrying"];
    return this.making > 0 || this.jobs.some((j) => busy.includes(j.state));
  }

  totals() {
    const counted = this.jobs.filter((j) => j.state !== "canceled");
    const size = counted.reduce((n, j) => n + j.file.size, 0);
    const sent = counted.reduce((n, j) => n + j.sent, 0);
    return { size, sent, files: counted.length,
             done: counted.filter((j) => j.state === "done").length,
             failed: counted.filter((j) => ["failed", "interrupted"].includes(j.state)).length,
             rate: rateOf(this.samples) };
  }

  rate(job) {
    return job.state === "running" ? rateOf(job.samples) : 0;
  }

  progress(job, sent) {
    const now = performance.now();
    job.sent = Math.min(sent, job.file.size);
    sample(job.samples, now, job.sent);
    const total = this.jobs.reduce((n, j) => n + (j.state === "canceled" ? 0 : j.sent), 0);
    sample(this.samples, now, total);
    this.emit(job);
  }

  pump() {
    while (this.running < PARALLEL) {
      const job = this.jobs.find((j) => j.state === "queued");
      if (!job) return;
      this.running += 1;
      job.state = "running";
      this.run(job).finally(() => {
        this.running -= 1;
        this.emit(job);
        this.pump();
      });
    }
  }

  async run(job) {
    try {
      job.folderId = await this.folderFor(job.rootId, job.dirs);
      if (job.state === "canceled") return;
      job.key = storageKey(job.folderId, job.file);
      await this.transfer(job);
      job.state = "done";
      job.error = null;
      forget(job);
    } catch (err) {
      if (err instanceof Canceled || job.state === "canceled") return;
      job.error = err.message || String(err);
      job.state = transient(err) ? "interrupted" : "failed";
      if (job.state === "failed") forget(job);
    }
  }

  // Create (or reuse) the folders of a dropped tree, each once.
  folderFor(rootId, dirs) {
    let parent = Promise.resolve(rootId);
    let key = rootId;
    for (const name of dirs) {
      key = `${key}/${name}`;
      if (!this.folders.has(key)) {
        const made = parent.then(async (parentId) => (await call("POST", "folder", {
          form: { parentType: "folder", parentId, name, reuseExisting: true } })).data._id);
        made.catch(() => this.folders.delete(key)); // try again next time
        this.folders.set(key, made);
      }
      parent = this.folders.get(key);
    }
    return parent;
  }

  async transfer(job) {
    const { file } = job;
    const saved = JSON.parse(localStorage.getItem(job.key) || "null");
    if (saved && saved.uploadId) {
      try {
        const { data } = await call("GET", "file/offset",
          { params: { uploadId: saved.uploadId } });
        job.uploadId = saved.uploadId;
        job.sent = data.offset;
        job.resumedFrom = data.offset;
      } catch (err) {
        if (transient(err)) throw err;
        localStorage.removeItem(job.key); // finished or canceled meanwhile: start over
      }
    }
    if (!job.uploadId) {
      const params = { parentType: "folder", parentId: job.folderId, name: file.name,
                       size: file.size, mimeType: file.type || undefined };
      const { data } = await call("POST", "file", { params });
      if (!("received" in data)) return; // an empty file is done at once
      job.uploadId = data._id;
      job.sent = 0;
      remember(job);
    }
    this.progress(job, job.sent);
    const step = chunkSize(file.size);
    const retry = { attempt: 0 };
    while (job.sent < file.size) {
      if (job.state === "canceled") throw new Canceled("Canceled.");
      const end = Math.min(file.size, job.sent + step);
      const url = apiUrl("file/chunk", { uploadId: job.uploadId, offset: job.sent });
      try {
        const answer = await sendRaw(job, url, file.slice(job.sent, end));
        this.progress(job, "received" in answer ? answer.received : end);
        retry.attempt = 0;
        if (job.state === "retrying") job.state = "running";
      } catch (err) {
        const outOfStep = err.status === 400 && /has received \d+ bytes/.test(err.message);
        if (!transient(err) && !outOfStep) throw err;
        await this.resync(job, outOfStep ? null : err, retry);
      }
    }
  }

  // Lost connection, server restarting, or out of step: wait (with a growing
  // pause), ask the server where it is, and go on from there.
  async resync(job, err, retry) {
    let last = err;
    for (;;) {
      if (job.state === "canceled") throw new Canceled("Canceled.");
      if (last) {
        if (retry.attempt >= RETRIES.length) throw last;
        job.state = "retrying";
        job.error = last.message;
        job.attempt = retry.attempt + 1;
        this.emit(job);
        await new Promise((resolve) => setTimeout(resolve, RETRIES[retry.attempt]));
        retry.attempt += 1;
        if (job.state === "canceled") throw new Canceled("Canceled.");
      }
      try {
        const { data } = await call("GET", "file/offset",
          { params: { uploadId: job.uploadId } });
        job.samples = []; // the rate restarts from the server's offset
        this.progress(job, data.offset);
        return;
      } catch (failure) {
        if (failure.status === 400) { // the upload record is gone
          throw new ApiError("The server no longer has this upload: it either ended as the " +
            "connection dropped (the file is then in the folder) or was canceled.", 400, null);
        }
        if (!transient(failure)) throw failure;
        last = failure; // the server is still away
      }
    }
  }

  resumeAll() {
    for (const job of this.jobs) {
      if (job.state === "interrupted") job.state = "queued";
    }
    this.emit(null);
    this.pump();
  }

  async cancel(job) {
    if (["done", "canceled"].includes(job.state)) return;
    job.state = "canceled";
    if (job.xhr) job.xhr.abort();
    forget(job);
    this.emit(job);
    if (job.uploadId) {
      try {
        await call("DELETE", `file/upload/${job.uploadId}`);
      } catch {
        // already finalized or gone: nothing left to cancel
      }
    }
  }

  cancelAll() {
    return Promise.all(this.jobs.map((job) => this.cancel(job)));
  }

  clearFinished() {
    this.jobs = this.jobs.filter((j) => !["done", "canceled", "failed"].includes(j.state));
    this.emit(null);
  }
}

// A sliding window of progress samples: bytes per second over the last 3 s.
function sample(list, now, value) {
  list.push([now, value]);
  while (list.length > 2 && now - list[0][0] > 3000) list.shift();
}

// Measured up to now, so a stalled transfer's rate falls instead of freezing.
function rateOf(list) {
  if (list.length < 2) return 0;
  const [t0, v0] = list[0];
  const [t1, v1] = list[list.length - 1];
  const now = Math.max(t1, performance.now());
  return now - t0 > 0 ? ((v1 - v0) * 1000) / (now - t0) : 0;
}

export const uploads = new UploadQueue();
