// The checkout: packages; card entry in Stripe's Card Element (Stripe.js) or, on the sandbox, a form validated as
// the client types and tokenized at the sandbox; then intent, confirm, 3-D Secure and the confirmation. PayPal through
// its Smart Payment Buttons (PayPal's JS SDK) or, on the sandbox, its approval page. Card data never goes to
// Purser's API: only the provider's token does.
import { $, api, ApiError, el, money, requireToken, say, sleep } from "/assets/app.js";

requireToken();
const result = $("#result");
const form = $("#card-form");
/** "stripe" or "sandbox" for cards, "paypal" or "sandbox" for PayPal, with the providers' keys and script URLs. */
const providers = document.body.dataset;
let packages = [];
let stripe, cardElement;

function selectedPackage() {
  return document.querySelector("input[name=package]:checked")?.value;
}

/** The currency shown first: the one of the browser's region when the catalogue sells in it, else the first. */
function preferredCurrency(currencies) {
  const region = (navigator.language.split("-")[1] ?? "").toUpperCase();
  const euro = ["AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PT", "SI", "SK"];
  const guess = region === "GB" ? "GBP" : euro.includes(region) ? "EUR" : region === "JP" ? "JPY" : "USD";
  return currencies.includes(guess) ? guess : currencies[0];
}

const currencyOf = (p) => p.currency.toUpperCase();

/** The packages sold in `currency`, the second (or only) one chosen. */
function showPackages(currency) {
  const shown = packages.filter((p) => currencyOf(p) === currency);
  $("#packages").replaceChildren(el("legend", { class: "muted" }, `Credit packages, in ${currency}`), ...shown.map((p, i) =>
    el("label", { class: "package" },
      el("input", { type: "radio", name: "package", value: p.id, checked: i === Math.min(1, shown.length - 1) }),
      " ", el("strong", {}, p.name), el("br"), `${p.credits} credits`, el("br"), money(p.amount, p.currency))));
}

async function loadPackages() {
  const { data } = await api("GET", "/api/v1/packages");
  packages = data;
  const currencies = [...new Set(data.map(currencyOf))];
  $("#currency").replaceChildren(...currencies.map((c) => el("option", { value: c }, c)));
  $("#currency").value = preferredCurrency(currencies);
  $("#currency-choice").hidden = currencies.length < 2;
  showPackages($("#currency").value);
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

/** Back to the card's first field after an error. (localstripe's fake Card Element has no `focus`, Stripe's has.) */
function focusCardForm() {
  if (providers.mode !== "stripe") $("#number").focus();
  else if (cardElement.focus) cardElement.focus();
  else $("#card-element input")?.focus();
}

async function run(step) {
  result.replaceChildren();
  busy(true);
  try {
    await step();
  } catch (e) {
    const action = e instanceof ApiError && e.suggestedAction ? ` ${e.suggestedAction}` : "";
    say(result, "error", e.message + action, el("br"),
      el("button", { type: "button", onclick: () => { result.replaceChildren(); focusCardForm(); } }, "Try again"));
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

/** Stripe's path: the Card Element's token, made into a PaymentMethod by Purser through Stripe's API. */
async function stripeMethod() {
  if (!cardElement) throw new Error("Card entry did not load: reload the page, or pay with PayPal.");
  const { token, error } = await stripe.createToken(cardElement);
  if (error || !token) {
    throw new ApiError(402, { message: error?.message ?? "Stripe could not read this card.", suggestedAction: "Check the card details and try again." });
  }
  const { data } = await api("POST", "/api/v1/payments/methods", { cardToken: token.id });
  return data.paymentMethodId;
}

async function payByCard() {
  const paymentMethodId = providers.mode === "stripe" ? await stripeMethod() : await tokenize();
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
  if (view.status === "requires_action") view = await threeDSecure(view);
  if (view.status === "processing") busy(true, view.estimatedCompletionSeconds ?? 5);
  if (view.status !== "succeeded") view = await until(view.transactionId);
  const balance = (await api("GET", "/api/v1/credits/balance")).data.balance;
  say(result, "ok", `Payment complete: ${view.creditsAdded ?? view.credits} credits were added. Your balance is now ${balance} credits.`);
  loadSaved();
}

/** The bank's challenge (AC9.1.5), then Purser asks the provider how it went: the answer is the outcome. */
async function threeDSecure(view) {
  const { data } = await api("GET", `/api/v1/payments/${view.transactionId}`);
  if (providers.mode === "stripe") {
    // Stripe.js shows the challenge. Its own error is not the last word: a failed challenge, a closed window or a
    // lost connection all end in Purser's answer below.
    await stripe.confirmCardPayment(view.clientSecret);
  } else {
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
  }
  return (await api("POST", "/api/v1/payments/confirm", { paymentIntentId: data.paymentIntentId, packageId: data.packageId })).data;
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
  const valid = providers.mode === "stripe" || Object.keys(checks).map(check).every(Boolean);
  if (valid) run(payByCard);
});

function loadScript(src, attributes = {}) {
  return new Promise((resolve, reject) => document.head.append(el("script", {
    src, ...attributes, onload: resolve, onerror: () => reject(new Error("The payment provider's script did not load; reload the page to try again.")),
  })));
}

async function setUpStripe() {
  if (!providers.stripeKey) throw new Error("Card payments are not configured here (stripe.publishable_key): pay with PayPal.");
  await loadScript(providers.stripeScript);
  stripe = Stripe(providers.stripeKey);
  const elements = stripe.elements();
  cardElement = elements.create("card", { hidePostalCode: true });
  cardElement.mount("#card-element");
  // Stripe's Element validates number, expiry and CVC as the client types (AC9.1.2) and reports it here.
  cardElement.on("change", (event) => ($("#card-element-error").textContent = event?.error?.message ?? ""));
  setUpWallet(elements);
}

/** Apple Pay or Google Pay through Stripe's Payment Request Button, shown only where the browser offers a wallet. */
function setUpWallet(elements) {
  if (typeof stripe.paymentRequest !== "function") return;
  const total = () => {
    const p = packages.find((x) => x.id === selectedPackage()) ?? packages[0];
    return { currency: p.currency.toLowerCase(), total: { label: `${p.name}: ${p.credits} credits`, amount: p.amount } };
  };
  const request = stripe.paymentRequest({ country: providers.stripeCountry, ...total() });
  request.canMakePayment().then((wallet) => {
    if (!wallet) return;
    elements.create("paymentRequestButton", { paymentRequest: request }).mount("#payment-request-button");
    $("#wallet").hidden = false;
    $("#packages").addEventListener("change", () => request.update(total()));
  });
  request.on("paymentmethod", (event) => run(async () => {
    let view;
    try {
      ({ data: view } = await api("POST", "/api/v1/payments/stripe/intent",
        { packageId: selectedPackage(), paymentMethodId: event.paymentMethod.id, confirm: true }));
      event.complete("success");
    } catch (e) {
      event.complete("fail");
      throw e;
    }
    await settle(view);
  }));
}

$("#paypal").addEventListener("click", () => run(async () => {
  const { data } = await api("POST", "/api/v1/payments/paypal/create-order", { packageId: selectedPackage() });
  location.href = data.approvalUrl;
}));

/** PayPal's Smart Payment Buttons (AC9.2.1, AC9.2.4): PayPal, Pay Later and Venmo, each in PayPal's own window. The
 * SDK takes one currency per load, so it is loaded again for another currency. */
async function setUpPaypal(currency) {
  document.querySelector("script[data-paypal-sdk]")?.remove();
  delete window.paypal;
  $("#paypal-buttons").replaceChildren();
  const query = new URLSearchParams({
    "client-id": providers.paypalKey, currency, intent: "capture", "enable-funding": "venmo,paylater",
  });
  await loadScript(`${providers.paypalScript}?${query}`, { "data-paypal-sdk": "" });
  const order = (path) => (data) => run(async () => settle((await api("POST", path, { orderId: data.orderID })).data));
  paypal.Buttons({
    // The button the payer chose: PayPal's order names Pay Later `paypal`, so the buttons' word is the one kept.
    createOrder: async (data) => (await api("POST", "/api/v1/payments/paypal/create-order",
      { packageId: selectedPackage(), ...(data?.paymentSource ? { fundingSource: data.paymentSource } : {}) })).data.orderId,
    onApprove: order("/api/v1/payments/paypal/capture-order"),
    onCancel: order("/api/v1/payments/paypal/cancel-order"),
    onError: (e) => say(result, "error", `${e.message} ${e.suggestedAction ?? "Try PayPal again, or pay by card."}`),
  }).render("#paypal-buttons");
}

document.querySelectorAll("[data-when]").forEach((node) => (node.hidden = node.dataset.when !== providers.mode));
$("#stripe-test-mode").hidden = !providers.stripeKey?.startsWith("pk_test_");
document.querySelectorAll("[data-paypal-when]").forEach((node) => (node.hidden = node.dataset.paypalWhen !== providers.paypal));
// A rail the service switched off is left out of the page.
$("#card-section").hidden = providers.mode === "disabled";
$("#paypal-section").hidden = providers.paypal === "disabled";
$("#currency").addEventListener("change", () => {
  showPackages($("#currency").value);
  if (providers.paypal === "paypal") setUpPaypal($("#currency").value).catch((e) => say(result, "error", e.message));
});
loadPackages()
  .then(() => Promise.all([
    loadSaved(),
    providers.mode === "stripe" && setUpStripe(),
    providers.paypal === "paypal" && setUpPaypal($("#currency").value),
  ]))
  .catch((e) => say(result, "error", e.message));
