// The admin console: pauses, the refund queue, fraud review, revenue drawn as SVG, transactions with their history
// and actions, alerts, disputes, webhook health and the events sent to the platform. Every action sends a reason, which the audit trail keeps.
import { $, api, el, money, requireToken, say, table } from "/assets/app.js";

requireToken();
const result = $("#result");
const failed = (e) => say(result, "error", e.message);
/** A compact local time for the tables: "2026-11-27 23:36". */
const when = (at) => {
  const d = new Date(at);
  const two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
};
const act = (label, path, body, done, kind = "secondary") =>
  el("button", { type: "button", class: kind, onclick: async () => {
    try {
      await api("POST", path, body ?? { reason: prompt(`Reason for "${label}" (recorded):`) ?? "" });
      say(result, "ok", `${label}: done.`);
      await done();
    } catch (e) {
      failed(e);
    }
  } }, label);

async function controls() {
  const { data } = await api("GET", "/api/v1/admin/controls");
  $("#paused").replaceChildren(data.paused.length
    ? el("span", { class: "error" }, "Paused: " + data.paused.map((p) => `${p.scope} by ${p.by} (${p.reason})`).join("; "))
    : el("span", { class: "ok" }, "Payments are running."));
}

async function control(action) {
  try {
    await api("POST", `/api/v1/admin/controls/${action}`, { scope: $("#scope").value, reason: $("#control-reason").value });
    say(result, "ok", action === "pause" ? "Paused." : "Resumed.");
    await controls();
  } catch (e) {
    failed(e);
  }
}

async function refundQueue() {
  const { data } = await api("GET", "/api/v1/admin/refunds");
  const items = (data.items ?? data).filter((r) => ["pending_review", "appealed"].includes(r.status));
  $("#refund-queue").replaceChildren(items.length ? table(["Requested", "Client", "Credits", "Amount", "Reason", "Status", ""],
    items.map((r) => [when(r.createdAt), r.clientId ?? "", r.credits, money(r.amount, r.currency),
      `${r.reason}${r.details ? ": " + r.details : ""}`, r.status.replaceAll("_", " "),
      el("span", {}, act("Approve", `/api/v1/admin/refunds/${r.refundRequestId}/approve`, {}, refreshAll, "primary"),
        act("Deny", `/api/v1/admin/refunds/${r.refundRequestId}/deny`, null, refreshAll, "danger"))]))
    : el("p", { class: "muted" }, "Nothing to review."));
}

/** What an admin can do with a payment held for review: grant its credits, or refund it and flag the account. */
const reviewActions = (p) => [
  act("Release", `/api/v1/admin/payments/${p.transactionId}/release`, null, refreshAll),
  act("Confirm fraud", `/api/v1/admin/payments/${p.transactionId}/confirm-fraud`, null, refreshAll, "danger"),
];

async function fraudReview() {
  const [held, flagged] = await Promise.all([
    api("GET", "/api/v1/admin/payments?status=under_review&limit=50"),
    api("GET", "/api/v1/admin/accounts/flagged"),
  ]);
  // Payments confirmed as fraud stay under review until the provider's refund lands, but are decided.
  const undecided = held.data.items.filter((p) => !p.reversing);
  const reversing = held.data.items.length - undecided.length;
  $("#review-queue").replaceChildren(undecided.length ? table(["Created", "Client", "Amount", "Method", "Why held", ""],
    undecided.map((p) => [when(p.createdAt), p.clientId, money(p.amount, p.currency),
      p.method ?? p.provider, p.reviewReason ?? "", el("span", {}, ...reviewActions(p))]))
    : el("p", { class: "muted" }, "No payments held for review."),
    ...(reversing ? [el("p", { class: "muted" }, `${reversing} confirmed as fraud, being given back.`)] : []));
  $("#flagged").replaceChildren(flagged.data.length ? table(["Client", "Flagged", "By", "Reason", ""],
    flagged.data.map((f) => [f.clientId, when(f.flaggedAt), f.flaggedBy, f.reason,
      act("Lift flag", `/api/v1/admin/accounts/${encodeURIComponent(f.clientId)}/unflag`, null, refreshAll)]))
    : el("p", { class: "muted" }, "No flagged accounts."));
}

// Revenue as grouped bars per period: net per payment method, with the figures in a table for screen readers.
async function revenue() {
  const { data } = await api("GET", `/api/v1/admin/reports/revenue?period=${$("#period").value}`);
  const periods = [...new Set(data.map((r) => r.periodStart))].sort();
  // A series per method and currency: amounts in different currencies are never added up.
  const series = (r) => `${r.method} ${r.currency.toUpperCase()}`;
  const methods = [...new Set(data.map(series))].sort();
  const colours = ["#0b5cad", "#b35c00", "#1b6e3a", "#7a1fa2", "#a4161a"];
  const max = Math.max(1, ...data.map((r) => r.net));
  const width = Math.max(640, periods.length * (methods.length * 18 + 24) + 60), height = 200;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const node = (tag, attributes, text) => {
    const n = document.createElementNS(ns, tag);
    Object.entries(attributes).forEach(([k, v]) => n.setAttribute(k, v));
    if (text !== undefined) n.textContent = text;
    svg.append(n);
  };
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 40}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Net revenue per ${$("#period").value} by payment method`);
  svg.setAttribute("style", "width: 100%; max-width: 40rem; height: auto");
  node("line", { x1: 40, y1: height, x2: width, y2: height, stroke: "#555" });
  periods.forEach((period, i) => {
    const x0 = 50 + i * (methods.length * 18 + 24);
    methods.forEach((method, j) => {
      const row = data.find((r) => r.periodStart === period && series(r) === method);
      const h = row ? (Math.max(0, row.net) / max) * (height - 20) : 0;
      node("rect", { x: x0 + j * 18, y: height - h, width: 14, height: h, fill: colours[j % colours.length] },);
    });
    node("text", { x: x0, y: height + 16 }, period);
  });
  methods.forEach((method, j) => node("text", { x: 50 + j * 110, y: height + 34, fill: colours[j % colours.length] }, `■ ${method}`));
  $("#chart").replaceChildren(data.length ? svg : el("p", { class: "muted" }, "No revenue in the last 30 days."),
    data.length ? table(["From", "Method", "Gross", "Refunded", "Net"], data.map((r) =>
      [r.periodStart, r.method, money(r.gross, r.currency), money(r.refunded, r.currency), money(r.net, r.currency)])) : "");
}

async function payments() {
  const status = $("#status-filter").value;
  const { data } = await api("GET", `/api/v1/admin/payments?limit=50${status ? "&status=" + status : ""}`);
  $("#payments").replaceChildren(table(["Created", "Client", "Status", "Amount", "Method", "Failure", ""], data.items.map((p) => [
    when(p.createdAt), p.clientId, p.reversing ? "reversing" : p.status,
    p.refunded ? `${money(p.amount, p.currency)} (${money(p.refunded, p.currency)} refunded)` : money(p.amount, p.currency),
    p.method ?? p.provider,
    p.failureCode ?? "", el("span", {},
      el("button", { type: "button", class: "secondary", onclick: () => detail(p.transactionId).catch(failed) }, "Details"),
      p.status === "failed" && p.rail === "card" ? act("Retry", `/api/v1/admin/payments/${p.transactionId}/retry`, null, refreshAll) : "",
      p.status === "under_review" && !p.reversing ? reviewActions(p) : "",
      ["processing", "requires_action"].includes(p.status) ? act("Sync", `/api/v1/admin/payments/${p.transactionId}/sync`, {}, refreshAll) : "")])));
}

async function detail(id) {
  const { data } = await api("GET", `/api/v1/admin/payments/${id}`);
  const events = data.history ?? data.events ?? [];
  $("#detail").replaceChildren(el("h3", {}, `Transaction ${id}`),
    el("p", {}, `${data.status} · ${money(data.amount, data.currency)} · ${data.provider} `,
      data.dashboardUrl ? el("a", { href: data.dashboardUrl, target: "_blank", rel: "noopener" }, "Open at the provider") : ""),
    table(["When", "What", "From", "To"], events.map((e) => [when(e.at ?? e.createdAt), e.input ?? e.kind ?? "", e.from ?? "", e.to ?? ""])));
}

async function alerts() {
  const [open, disputes] = await Promise.all([api("GET", "/api/v1/admin/alerts"), api("GET", "/api/v1/admin/disputes")]);
  $("#alerts").replaceChildren(open.data.length ? table(["Raised", "Kind", "Details", ""], open.data.map((a) => [
    when(a.createdAt), a.kind, a.details.reason ?? JSON.stringify(a.details),
    act("Acknowledge", `/api/v1/admin/alerts/${encodeURIComponent(a.key)}/acknowledge`, {}, alerts)]))
    : el("p", { class: "muted" }, "No open alerts."));
  const items = disputes.data.items ?? disputes.data;
  $("#disputes").replaceChildren(items.length ? table(["Opened", "Dispute", "Reason", "Status", "Amount", "Evidence due", ""],
    items.map((d) => [when(d.createdAt), d.id, d.reason, `${d.status.replaceAll("_", " ")} (${d.providerStatus})`,
      d.amount != null ? money(d.amount, d.currency ?? "USD") : "", d.evidenceDueBy ? when(d.evidenceDueBy) : "",
      el("button", { type: "button", class: "secondary", onclick: () => dispute(d.id).catch(failed) }, "Open")]))
    : el("p", { class: "muted" }, "No disputes."));
}

/** A file as the API takes it: its name and its bytes in base64. */
const upload = (file) => new Promise((resolve, reject) => {
  const reader = new FileReader();
  reader.onload = () => resolve({ name: file.name, contentBase64: String(reader.result).split(",")[1] ?? "" });
  reader.onerror = () => reject(new Error(`Could not read ${file.name}.`));
  reader.readAsDataURL(file);
});

/** One dispute: what it is about, the purchase's history, and (while it is open) evidence or a concession. */
async function dispute(id) {
  const { data: d } = await api("GET", `/api/v1/admin/disputes/${encodeURIComponent(id)}`);
  const path = `/api/v1/admin/disputes/${encodeURIComponent(id)}`;
  const history = d.transaction?.events ?? [];
  const parts = [el("h3", {}, `Dispute ${d.id}`),
    el("p", { id: "dispute-status" }, `${d.status.replaceAll("_", " ")} · ${d.provider} says ${d.providerStatus} · ${d.reason} · `,
      d.amount != null ? money(d.amount, d.currency ?? "USD") : "",
      d.evidenceDueBy ? ` · evidence due ${when(d.evidenceDueBy)}` : "",
      d.creditsDebited ? ` · ${d.creditsDebited} credits taken back` : ""),
    d.sellerProtection ? el("p", {}, `Seller protection: ${d.sellerProtection.status}`) : "",
    d.transaction ? el("p", {}, `Purchase ${d.transactionId} by ${d.clientId}: ${d.transaction.status}, ${d.transaction.credits ?? ""} credits`) : "",
    table(["When", "What", "From", "To"], history.map((e) => [when(e.at), e.kind, e.from, e.to])),
    (d.audit ?? []).length ? table(["When", "Who", "Answer", "Record"], d.audit.map((a) => [when(a.at), a.by, a.action, a.reason])) : ""];
  if (["needs_response", "under_review"].includes(d.status)) {
    const form = el("form", { id: "evidence-form" },
      el("label", { for: "evidence-text" }, "Evidence (what was bought, when the credits were used)"),
      el("textarea", { id: "evidence-text", required: "", rows: "4", maxlength: "20000" }),
      el("label", { for: "evidence-file" }, "Document (PDF, JPEG or PNG, up to 4 MB)"),
      el("input", { id: "evidence-file", type: "file", accept: ".pdf,.jpg,.jpeg,.png" }),
      el("div", {}, el("button", { type: "submit", class: "primary" }, "Submit evidence"),
        el("button", { type: "button", id: "accept-dispute", class: "danger", onclick: async () => {
          const reason = prompt("Why concede this dispute? (recorded)");
          if (!reason) return;
          try {
            await api("POST", `${path}/accept`, { reason });
            await Promise.all([dispute(id), alerts()]);
            say(result, "ok", "Dispute accepted.");
          } catch (e) {
            failed(e);
          }
        } }, "Accept dispute")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const chosen = $("#evidence-file").files[0];
        const body = { text: $("#evidence-text").value, ...(chosen ? { file: await upload(chosen) } : {}) };
        await api("POST", `${path}/evidence`, body);
        await Promise.all([dispute(id), alerts()]);
        say(result, "ok", "Evidence submitted.");
      } catch (e) {
        failed(e);
      }
    });
    parts.push(form);
  }
  $("#dispute").replaceChildren(...parts);
}

async function webhooks() {
  const { data } = await api("GET", "/api/v1/admin/webhooks");
  const items = data.items ?? data;
  $("#webhooks").replaceChildren(items.length ? table(["Received", "Provider", "Event", "Status", "Error", ""], items.map((w) => [
    when(w.receivedAt), w.provider, w.eventType, w.status, w.error ?? "",
    act("Replay", `/api/v1/admin/webhooks/${w.id}/replay`, {}, webhooks)]))
    : el("p", { class: "muted" }, "Every webhook was processed."));
}

async function deliveries() {
  const status = $("#delivery-filter").value;
  const { data } = await api("GET", `/api/v1/admin/events/deliveries?limit=50${status ? `&status=${status}` : ""}`);
  $("#deliveries").replaceChildren(data.items.length ? table(
    ["Created", "Event", "Endpoint", "Status", "Attempts", "Last answer", "Next attempt", ""],
    data.items.map((d) => [
      when(d.createdAt), el("span", { title: d.eventId }, d.eventType), d.endpoint, d.status, String(d.attempts),
      d.lastError ?? (d.lastStatus ? String(d.lastStatus) : ""), d.nextAttemptAt ? when(d.nextAttemptAt) : "",
      act("Replay", `/api/v1/admin/events/deliveries/${d.id}/replay`, undefined, deliveries)]))
    : el("p", { class: "muted" }, status ? `No ${status} deliveries.` : "No events sent yet (is an endpoint configured?)."));
}

async function refreshAll() {
  await Promise.all([controls(), refundQueue(), fraudReview(), revenue(), payments(), alerts(), webhooks(), deliveries()]);
}

$("#control-form").addEventListener("submit", (event) => {
  event.preventDefault();
  control("pause");
});
$("#resume").addEventListener("click", () => control("resume"));
$("#period").addEventListener("change", () => revenue().catch(failed));
$("#status-filter").addEventListener("change", () => payments().catch(failed));
$("#delivery-filter").addEventListener("change", () => deliveries().catch(failed));
refreshAll().catch(failed);
