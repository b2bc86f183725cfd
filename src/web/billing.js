// The client's billing page: balance, credit statement, history with invoice PDFs, CSV export, saved cards, refunds
// and appeals.
import { $, api, download, el, money, requireToken, say, table } from "/assets/app.js";

requireToken();
const result = $("#result");
const failed = (e) => say(result, "error", e.message);

async function load() {
  const [balance, history, methods, policy, refunds, statement] = await Promise.all([
    api("GET", "/api/v1/credits/balance"),
    api("GET", "/api/v1/billing/history"),
    api("GET", "/api/v1/payments/methods"),
    api("GET", "/api/v1/payments/refund-policy"),
    api("GET", "/api/v1/payments/refunds"),
    api("GET", "/api/v1/credits/ledger?limit=500"),
  ]);
  // Every move of credits, with what moved them: purchases, what the platform's service spent them on, refunds.
  const what = { purchase_grant: "Bought", spend: "Spent", spend_reversal: "Given back", refund_debit: "Refunded",
    refund_credit_back: "Refund undone", dispute_debit: "Disputed payment", adjustment: "Adjusted by support" };
  const moves = statement.data.items;
  $("#statement").replaceChildren(moves.length ? table(["Date", "What", "Credits", "Reference"], moves.map((m) =>
    [new Date(m.at).toLocaleDateString(), what[m.kind] ?? m.kind, m.credits > 0 ? `+${m.credits}` : String(m.credits),
      m.reference ?? m.source])) : el("p", { class: "muted" }, "No credits moved yet."));
  $("#balance").textContent = balance.data.balance;
  const items = history.data.items ?? history.data;
  // A purchase with a refund on its way or made is shown as such, and is not offered for another request.
  const refundOf = new Map(refunds.data.filter((r) => r.status !== "denied").map((r) => [r.transactionId, r.status]));
  const shownStatus = (h) => (refundOf.get(h.transactionId) === "refunded" ? "refunded" : h.status);
  $("#history").replaceChildren(items.length ? table(["Date", "Package", "Credits", "Amount", "Method", "Status", "Invoice"],
    items.map((h) => [new Date(h.date).toLocaleDateString(), h.packageId, h.credits, money(h.amount, h.currency), h.method, shownStatus(h),
      h.invoiceUrl ? el("button", { type: "button", class: "secondary", onclick: () => download(h.invoiceUrl, `invoice-${h.transactionId}.pdf`).catch(failed) }, "Invoice PDF") : "—"]))
    : el("p", { class: "muted" }, "No payments yet."));
  $("#cards").replaceChildren(methods.data.length ? table(["Card", "Expires", ""], methods.data.map((m) => [
    `${m.brand ?? m.type} •••• ${m.last4 ?? ""}`, m.expMonth ? `${m.expMonth}/${m.expYear}` : "—",
    el("button", { type: "button", class: "danger", onclick: () => removeCard(m.id) }, "Remove")]))
    : el("p", { class: "muted" }, "No saved cards."));
  const p = policy.data;
  $("#policy").textContent = `Refunds can be asked for within ${p.windowDays} days of a purchase, for credits you have not used. ` +
    `An admin reviews each request, usually in ${p.estimatedProcessing ?? "1-2 business days"}.`;
  const refundable = items.filter((h) => h.status === "succeeded" && !refundOf.has(h.transactionId));
  $("#refund-form button[type=submit]").disabled = !refundable.length;
  $("#refund-transaction").replaceChildren(...refundable.map((h) =>
    el("option", { value: h.transactionId }, `${new Date(h.date).toLocaleDateString()} · ${h.packageId} · ${money(h.amount, h.currency)}`)));
  await quote();
  $("#refunds").replaceChildren(refunds.data.length ? table(["Requested", "Credits", "Amount", "Status", ""], refunds.data.map((r) => [
    new Date(r.createdAt).toLocaleDateString(), r.credits, money(r.amount, r.currency),
    r.status.replaceAll("_", " ") + (r.denialReason ? `: ${r.denialReason}` : ""),
    r.appealAvailable ? el("button", { type: "button", class: "secondary", onclick: () => appeal(r.refundRequestId) }, "Appeal") : ""]))
    : el("p", { class: "muted" }, "No refund requests."));
}

/** What a refund of the chosen purchase would give back, and why: spent credits are not refunded. */
async function quote() {
  const chosen = $("#refund-transaction").value;
  if (!chosen) {
    $("#refund-quote").textContent = "";
    return;
  }
  const { data } = await api("GET", `/api/v1/payments/${chosen}/refundable`);
  $("#refund-quote").textContent = data.why;
  $("#refund-form button[type=submit]").disabled = !data.refundable;
}

async function removeCard(id) {
  await api("DELETE", `/api/v1/payments/methods/${id}`).catch(failed);
  say(result, "ok", "The card was removed.");
  load().catch(failed);
}

async function appeal(id) {
  const message = prompt("Tell us why the refund should be reconsidered:");
  if (!message) return;
  await api("POST", `/api/v1/payments/refunds/${id}/appeal`, { message }).catch(failed);
  load().catch(failed);
}

$("#refund-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const { data } = await api("POST", "/api/v1/payments/refund", {
      transactionId: $("#refund-transaction").value, reason: $("#refund-reason").value, details: $("#refund-details").value,
    });
    say(result, "ok", `Refund requested: ${data.status.replaceAll("_", " ")}. Estimated processing: ${data.estimatedProcessing}.`);
    await load();
  } catch (e) {
    failed(e);
  }
});

$("#refund-transaction").addEventListener("change", () => quote().catch(failed));
$("#export").addEventListener("click", () => download("/api/v1/billing/export", "purser-history.csv").catch(failed));
load().catch(failed);
