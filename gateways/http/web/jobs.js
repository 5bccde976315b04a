// The jobs plugin's pages for the signed-in user: their jobs (newest first, with
// status, progress and a Cancel button while not finished) and one job's page
// with its log. Without the plugin the page says so.
import { ApiError, call, get, put, session } from "./api.js";
import { formatDate, h, showError } from "./dom.js";
import { errorFor, pageHeading } from "./forms.js";
import { pager, pageState } from "./table.js";

const PAGE = 50;
const STATUS = { 0: "Inactive", 1: "Queued", 2: "Running", 3: "Success", 4: "Error",
                 5: "Canceled", 824: "Canceling" };
const FINISHED = new Set([3, 4, 5]);
const statusName = (s) => STATUS[s] || `Status ${s}`;

function progressOf(job) {
  const p = job.progress;
  if (!p) return null;
  const bar = p.total > 0 ? h("progress", { max: String(p.total), value: String(p.current || 0) })
    : null;
  return h("span", { class: "job-progress" }, bar, p.message ? ` ${p.message}` : "");
}

function notEnabled(err) {
  return err instanceof ApiError && [400, 404].includes(err.status) &&
    /No such resource|No matching route/.test(err.message);
}

export async function jobsView(ctx) {
  if (!session.user) {
    return { title: "Jobs", node: h("section", {}, pageHeading("Jobs"),
      h("p", {}, h("a", { href: "/login?next=/jobs" }, "Log in"), " to see your jobs.")) };
  }
  const { page } = pageState(ctx.url);
  let data;
  try {
    data = (await call("GET", "job", { params: { limit: PAGE + 1, offset: page * PAGE } })).data;
  } catch (err) {
    if (!notEnabled(err)) throw err;
    return { title: "Jobs", node: h("section", {}, pageHeading("Jobs"),
      h("p", { class: "muted", id: "jobs-off" }, "Jobs are not enabled on this server.")) };
  }
  const error = errorFor("jobs-error");
  const cancel = async (job) => {
    showError(error, null);
    try {
      await put(`job/${job._id}/cancel`);
      ctx.navigate(ctx.url.pathname + ctx.url.search, { replace: true,
                                                        flash: `Canceled “${job.title}”.` });
    } catch (err) {
      showError(error, err);
    }
  };
  const rows = data.slice(0, PAGE).map((job) => h("tr", { dataset: { job: job._id } },
    h("td", {}, h("a", { href: `/jobs/${job._id}` }, job.title || job._id)),
    h("td", {}, job.type),
    h("td", { class: "job-status" }, statusName(job.status)),
    h("td", {}, progressOf(job)),
    h("td", {}, formatDate(job.updated)),
    h("td", {}, FINISHED.has(job.status) ? null : h("button", { type: "button",
      class: "job-cancel", onclick: () => cancel(job) }, "Cancel"))));
  const total = page * PAGE + data.length;
  return { title: "Jobs", node: h("section", {}, pageHeading("Jobs"), error,
    rows.length ? h("table", { class: "listing", id: "job-list" },
      h("thead", {}, h("tr", {}, ["Title", "Type", "Status", "Progress", "Updated", ""]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))
      : h("p", { class: "muted", id: "no-jobs" }, "You have no jobs."),
    pager(ctx, page, PAGE, total)) };
}

export async function jobView(ctx, id) {
  const job = await get(`job/${id}`);
  const log = await get(`job/${id}/log`, { limit: 0 });
  return { title: job.title || "Job", node: h("section", {},
    h("p", {}, h("a", { href: "/jobs" }, "All jobs")),
    pageHeading(job.title || "Job"),
    h("dl", { class: "facts" },
      h("dt", {}, "Type"), h("dd", {}, job.type),
      h("dt", {}, "Status"), h("dd", { id: "job-status" }, statusName(job.status)),
      h("dt", {}, "Progress"), h("dd", {}, progressOf(job) || "—"),
      h("dt", {}, "Created"), h("dd", {}, formatDate(job.created)),
      h("dt", {}, "Updated"), h("dd", {}, formatDate(job.updated))),
    h("h2", {}, "Log"),
    log.length ? h("pre", { id: "job-log", class: "report" }, log.join("\n"))
      : h("p", { class: "muted", id: "job-log-empty" }, "The log is empty.")) };
}
