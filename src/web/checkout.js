// The checkout: packages, card entry validated as the client types, tokenized at the provider (the sandbox's
// tokenizer here), then intent, confirm, 3-D Secure and the confirmation. Card data never goes to Purser's API.
import { $, api, ApiError, el, money, requireToken, say, sleep } from "/assets/app.js";

requireToken();
const result = $("#result");
const form = $("#card-form");

function selectedPackage() {
  return document.querySelector("input[name=package]:checked")?.value;
}

async function loadPackages() {
  const { data } = await api("GET", "/api/v1/packages");
  $("#packages").append(...data.map((p, i) => el("label", { class: "package" },
    el("input", { type: "radio", name: "package", value: p.id, checked: i === 1 || data.length === 1 }),
    " ", el("strong", {}, p.name), el("br"), `${p.credits} credits`, el("br"), money(p.amount, p.currency))));
}

async function loadSaved() {
  const { data } = await api("GET", "/api/v1/payments/methods").catch(() => ({ data: [] }));
  if (!data.length) return;
  $("#saved-section").hidden = false;
  $("#saved").replaceChildren(...data.map((m) => el("button", { type: "button", class: "secondary", onclick: () => run(() => oneClick(m.id)) },
    `Pay with ${m.brand ?? m.type} •••• ${m.last4 ?? ""}`)));
}

// Real-time validation (AC9.1.2): Luhn, an expiry in the future, a CVC of the card's length.
function luhn(digits) {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}

const checks = {
  number: (v) => {
    const digits = v.replace(/[\s-]/g, "");
    if (!/^\d{13,19}$/.test(digits)) return "Enter the 13 to 19 digits on the front of the card.";
    return luhn(digits) ? "" : "This card number is not valid: check for a typo.";
  },
  expiry: (v) => {
    const m = v.match(/^\s*(\d{1,2})\s*\/\s*(\d{2}|\d{4})\s*$/);
    if (!m || Number(m[1]) < 1 || Number(m[1]) > 12) return "Enter the expiry as MM/YY.";
    const year = m[2].length === 2 ? 2000 + Number(m[2]) : Number(m[2]);
    const now = new Date();
    return year > now.getFullYear() || (year === now.getFullYear() && Number(m[1]) >= now.getMonth() + 1)
      ? "" : "This card has expired.";
  },
  cvc: (v) => {
    const amex = /^3[47]/.test($("#number").value.replace(/\D/g, ""));
    return new RegExp(amex ? "^\\d{4}$" : "^\\d{3}$").test(v.trim()) ? "" : `Enter the ${amex ? 4 : 3}-digit security code.`;
  },
};

function check(field) {
  const message = checks[field]($("#" + field).value);
  $("#" + field).setAttribute("aria-invalid", message ? "true" : "false");
  $(`#${field}-error`).textContent = message;
  return !message;
}

for (const field of Object.keys(checks)) {
  $("#" + field).addEventListener("input", () => $("#" + field).value.length > 1 && check(field));
  $("#" + field).addEventListener("blur", () => check(field));
}

let progressTimer;
function busy(on, seconds = 5) {
  document.querySelectorAll("main button").forEach((b) => (b.disabled = on && !b.closest("dialog")));
  $("#progress-section").hidden = !on;
  clearInterval(progressTimer);
  if (!on) return;
  const started = Date.now();
  $("#progress-text").textContent = `Usually done in under ${seconds} seconds.`;
  progressTimer = setInterval(() => {
    $("#progress").value = Math.min(95, ((Date.now() - started) / (seconds * 1000)) * 100);
  }, 100);
}

async function run(step) {
  result.replaceChildren();
  busy(true);
  try {
    await step();
  } catch (e) {
    const action = e instanceof ApiError && e.suggestedAction ? ` ${e.suggestedAction}` : "";
    say(result, "error", e.message + action, el("br"),
      el("button", { type: "button", onclick: () => { result.replaceChildren(); $("#number").focus(); } }, "Try again"));
  } finally {
    busy(false);
  }
}

async function tokenize() {
  const [month, year] = $("#expiry").value.split("/").map((s) => s.trim());
  const response = await fetch("/sandbox/v1/tokens", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ number: $("#number").value, expMonth: Number(month), expYear: Number(year), cvc: $("#cvc").value }),
  });
  const envelope = await response.json();
  if (!envelope.success) throw new ApiError(response.status, envelope.error);
  return envelope.data.id;
}

async function payByCard() {
  const paymentMethodId = await tokenize();
  const packageId = selectedPackage();
  const { data } = await api("POST", "/api/v1/payments/stripe/intent",
    { packageId, paymentMethodId, savePaymentMethod: $("#save").checked });
  const confirmed = await api("POST", "/api/v1/payments/confirm", { paymentIntentId: data.paymentIntentId, packageId });
  await settle(confirmed.data);
}

async function oneClick(paymentMethodId) {
  const { data } = await api("POST", "/api/v1/payments/stripe/intent", { packageId: selectedPackage(), paymentMethodId, confirm: true });
  await settle(data);
}

async function settle(view) {
  if (view.status === "requires_action") view = await threeDSecure(view.transactionId);
  if (view.status === "processing") busy(true, view.estimatedCompletionSeconds ?? 5);
  if (view.status !== "succeeded") view = await until(view.transactionId);
  const balance = (await api("GET", "/api/v1/credits/balance")).data.balance;
  say(result, "ok", `Payment complete: ${view.creditsAdded ?? view.credits} credits were added. Your balance is now ${balance} credits.`);
  loadSaved();
}

async function threeDSecure(transactionId) {
  const { data } = await api("GET", `/api/v1/payments/${transactionId}`);
  const dialog = $("#three-ds");
  dialog.showModal();
  const success = await new Promise((resolve) => {
    $("#three-ds-approve").onclick = () => resolve(true);
    $("#three-ds-fail").onclick = () => resolve(false);
    dialog.oncancel = () => resolve(false);
  });
  dialog.close();
  await fetch(`/sandbox/v1/payment_intents/${data.paymentIntentId}/_authenticate`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ success }),
  });
  return data;
}

/** Polls the transaction until it is paid; a failure is thrown with its reason. */
async function until(transactionId) {
  for (let i = 0; i < 100; i++) {
    const { data } = await api("GET", `/api/v1/payments/${transactionId}`);
    if (data.status === "succeeded") return data;
    if (data.status === "failed" || data.status === "expired") {
      throw new ApiError(402, { message: data.failure?.message ?? "The payment did not go through.", suggestedAction: data.failure?.suggestedAction });
    }
    if (data.status === "under_review") throw new ApiError(202, { message: "Your payment is being reviewed; the credits come once it is approved." });
    await sleep(300);
  }
  throw new Error("The payment is taking longer than usual; your balance updates when it completes.");
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const valid = Object.keys(checks).map(check).every(Boolean);
  if (valid) run(payByCard);
});

$("#paypal").addEventListener("click", () => run(async () => {
  const { data } = await api("POST", "/api/v1/payments/paypal/create-order", { packageId: selectedPackage() });
  location.href = data.approvalUrl;
}));

document.querySelectorAll("[data-when]").forEach((node) => (node.hidden = node.dataset.when !== document.body.dataset.mode));
loadPackages().then(loadSaved).catch((e) => say(result, "error", e.message));
