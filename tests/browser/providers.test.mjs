// The checkout's provider paths in headless Chromium: Stripe's Card Element and `stripe.confirmCardPayment` from
// localstripe's fake Stripe.js, and PayPal's Smart Payment Buttons from the PayPal fake's SDK. Run by the Rust test
// `browser::stripe_elements_and_paypal_buttons_in_chromium`, which starts the service on Stripe (localstripe) and
// PayPal (the fake), passes PURSER_URL, STRIPE_URL and the buyers' PURSER_TOKENS, and checks the books afterwards.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { launch, recordedPage, refusedByPolicy, shots } from "./chromium.mjs";

const base = process.env.PURSER_URL;
const stripeUrl = process.env.STRIPE_URL;
const tokens = JSON.parse(process.env.PURSER_TOKENS ?? "{}");
let browser;
const requests = [];

before(async () => {
  assert.ok(base && stripeUrl && tokens.card, "run through the Rust test, which sets PURSER_URL, STRIPE_URL and PURSER_TOKENS");
  browser = await launch();
});
after(() => browser?.close());

async function checkout(buyer) {
  const page = await recordedPage(browser, requests);
  page.on("pageerror", (e) => console.error(`${buyer}'s page: ${e.message}`));
  await page.goto(`${base}/checkout#token=${tokens[buyer]}`);
  await page.locator("#card-element input").first().waitFor();
  return page;
}

/** Types a card into the Card Element (localstripe's fake draws plain inputs where Stripe draws its iframe). */
async function payWithElement(page, number) {
  const field = (name) => page.locator(`#card-element input[placeholder=${name}]`);
  await field("number").fill(number);
  await field("exp_month").fill("12");
  await field("exp_year").fill("34");
  await field("cvc").fill("123");
  await page.getByRole("button", { name: "Pay by card" }).click();
}

const result = (page) => page.locator("#result").innerText();

test("Stripe Elements: a card pays, then a 3-D Secure card pays through confirmCardPayment's challenge", async () => {
  const page = await checkout("card");
  assert.ok(requests.some((r) => r.url === `${stripeUrl}/js.stripe.com/v3/`), "Stripe.js came from Stripe (localstripe)");
  assert.equal(await page.getByText("Sandbox:").isVisible(), false, "no sandbox notice on Stripe");
  assert.ok(await page.getByText("Stripe test mode:").isVisible(), "a pk_test_ key says so");
  assert.ok(await page.getByRole("button", { name: "Pay with PayPal" }).isHidden(), "PayPal is drawn by its own buttons");
  await payWithElement(page, "4242424242424242");
  await page.getByText("Payment complete").waitFor();
  assert.match(await result(page), /240 credits were added\. Your balance is now 240 credits/);
  await page.screenshot({ path: join(shots, "stripe-elements.png"), fullPage: true });

  await page.reload();
  await page.locator("#card-element input").first().waitFor();
  await payWithElement(page, "4000002760003184");
  const challenge = page.getByRole("button", { name: "Complete authentication" });
  await challenge.waitFor();
  await page.screenshot({ path: join(shots, "stripe-3ds.png") });
  await challenge.click();
  await page.getByText("Payment complete").waitFor();
  assert.match(await result(page), /Your balance is now 480 credits/);
});

test("Stripe Elements: a declined card and a failed challenge say why, and offer another try", async () => {
  const page = await checkout("declined");
  await payWithElement(page, "4000000000000341");
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.innerText(), /declined/i);
  assert.match(await alert.innerText(), /Use a different card/);
  await page.screenshot({ path: join(shots, "stripe-declined.png"), fullPage: true });
  await page.getByRole("button", { name: "Try again" }).click();
  assert.ok(await page.evaluate(() => document.activeElement.closest("#card-element") !== null), "back in the card's fields");

  await payWithElement(page, "4000002760003184");
  await page.getByRole("button", { name: "Fail authentication" }).click();
  await alert.waitFor();
  assert.match(await alert.innerText(), /authenticat/i);
  assert.ok(await page.getByRole("button", { name: "Try again" }).isVisible());
});

test("PayPal Smart Buttons: Venmo pays; turning back at PayPal shows why, and PayPal then pays", async () => {
  const page = await checkout("paypal");
  const buttons = page.locator("#paypal-buttons");
  await buttons.getByRole("button", { name: "Venmo" }).click();
  const paypal = page.getByRole("dialog", { name: "PayPal" });
  await paypal.getByText("Venmo checkout").waitFor();
  await page.screenshot({ path: join(shots, "paypal-buttons.png") });
  await paypal.getByRole("button", { name: "Pay now" }).click();
  await page.getByText("Payment complete").waitFor();
  assert.match(await result(page), /240 credits were added\. Your balance is now 240 credits/);

  await buttons.getByRole("button", { name: "PayPal", exact: true }).click();
  await paypal.getByRole("button", { name: "Cancel and return to merchant" }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.innerText(), /cancel/i);
  await buttons.getByRole("button", { name: "PayPal", exact: true }).click();
  await paypal.getByRole("button", { name: "Pay now" }).click();
  await page.getByText("Payment complete").waitFor();
  assert.match(await result(page), /Your balance is now 480 credits/);
});

test("PayPal in euros: the SDK is loaded again for the chosen currency, and Pay Later pays the euro package", async () => {
  const page = await checkout("paylater");
  const sdk = () => page.locator("script[data-paypal-sdk]").getAttribute("src");
  await page.locator("#paypal-buttons").getByRole("button", { name: "Pay Later" }).waitFor();
  assert.match(await sdk(), /currency=USD/);
  await page.getByLabel("Currency").selectOption("EUR");
  await page.getByRole("radio", { name: /Pro/ }).check();
  assert.match(await page.locator("#packages").innerText(), /€149\.00/);
  await page.waitForFunction(() => document.querySelector("script[data-paypal-sdk]")?.src.includes("currency=EUR"));
  const buttons = page.locator("#paypal-buttons");
  await buttons.getByRole("button", { name: "Pay Later" }).click();
  const paypal = page.getByRole("dialog", { name: "PayPal" });
  await paypal.getByRole("button", { name: "Pay now" }).click();
  await page.getByText("Payment complete").waitFor();
  assert.match(await result(page), /240 credits were added/);
});

test("the pages' Content-Security-Policy refused nothing they need", () => {
  assert.deepEqual(refusedByPolicy, []);
});

test("card numbers went to Stripe, never to Purser", () => {
  const digits = (r) => r.body.replace(/\D/g, "");
  const cards = /4242424242424242|4000002760003184|4000000000000341/;
  const purser = requests.filter((r) => r.url.startsWith(base));
  assert.ok(purser.some((r) => r.url.endsWith("/api/v1/payments/methods")), "the pages sent Purser card tokens");
  for (const r of purser) assert.doesNotMatch(digits(r), cards, r.url);
  assert.ok(requests.some((r) => r.url === `${stripeUrl}/v1/tokens` && digits(r).includes("4242424242424242")));
});
