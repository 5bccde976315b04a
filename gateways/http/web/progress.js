// Progress of long operations: the call is made with progress=true and the
// server's notification stream (server-sent events, on the session cookie)
// drives a progress bar until the call returns. Without EventSource, or when
// the server refuses the stream (503: every slot taken), the call still runs.
import { apiUrl } from "./api.js";
import { h } from "./dom.js";

export async function withProgress(title, work) {
  const bar = h("progress", { id: "operation-progress" });
  const label = h("span", { id: "operation-progress-message" }, title);
  const box = h("div", { class: "operation-progress", role: "status", "aria-live": "polite" },
                label, bar);
  let source = null;
  if (typeof EventSource !== "undefined") {
    // A second of slack: the server's clock may be a little behind ours.
    const since = Math.floor(Date.now() / 1000) - 1;
    source = new EventSource(apiUrl("notification/stream", { since, timeout: 60 }),
                             { withCredentials: true });
    source.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      const data = event.type === "progress" ? event.data : null;
      if (!data || data.title !== title) return;
      if (data.total > 0) {
        bar.max = data.total;
        bar.value = Math.min(data.current, data.total);
      }
      label.textContent = data.message ? `${title}: ${data.message}` : title;
    };
    source.onerror = () => source.close(); // no retries: the call goes on regardless
    document.body.append(box);
  }
  try {
    return await work();
  } finally {
    if (source) source.close();
    box.remove();
  }
}
