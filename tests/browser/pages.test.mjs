// Purser's pages in a real browser: headless Chromium (Debian's) driven by playwright-core, against the real
// service started from target/debug/purser on a fresh SQLite file with the sandbox provider. Each test acts as a
// client or an admin would, checks what they would see, and saves a screenshot under target/screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { launch, recordedPage, refusedByPolicy, shots } from "./chromium.mjs";
import { startPurser } from "./purser.mjs";

let service, browser, base;
/** Every request the pages made, to prove no card number reached Purser's API. */
const requests = [];

before(async () => {
  service = await startPurser();
  base = service.base;
  browser = await launch();
});

after(async () => {
  await browser?.close();
  service?.stop();
});

async function signedIn(user, role = "client", options = {}) {
  const page = await recordedPage(browser, requests, options);
  page.on("dialog", (d) => d.accept("checked by the browser test"));
  await page.goto(`${base}/login?next=/${role === "admin" ? "admin" : "checkout"}`);
  await page.getByLabel("User id").fill(user);
  await page.getByLabel("Email").fill(`${user}@example.com`);
  await page.getByLabel("Role").selectOption(role);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/(checkout|admin)$/);
  return page;
}

async function payByCard(page, number, { save = false, packageName = "Pro" } = {}) {
  await page.getByRole("radio", { name: new RegExp(packageName) }).check();
  await page.getByLabel("Card number").fill(number);
  await page.getByLabel("Expiry (MM/YY)").fill("12/34");
  await page.getByLabel("CVC").fill("123");
  if (save) await page.getByLabel("Save for future purchases").check();
  await page.getByRole("button", { name: "Pay by card" }).click();
}

const text = (page, selector) => page.locator(selector).innerText();

test("a client buys credits with a card, sees the new balance, then buys again in one click", async () => {
  const page = await signedIn("browser-card");
  await page.getByText("Sandbox:").first().waitFor();
  await page.getByLabel("Card number").fill("4242 4242 4242 4241");
  await page.getByLabel("Card number").blur();
  assert.match(await text(page, "#number-error"), /not valid/);
  await payByCard(page, "4242 4242 4242 4242", { save: true });
  await page.getByText("Payment complete").waitFor();
  assert.match(await text(page, "#result"), /240 credits were added\. Your balance is now 240 credits/);
  await page.screenshot({ path: join(shots, "checkout-success.png"), fullPage: true });

  await page.reload();
  const saved = page.getByRole("button", { name: /Pay with visa •••• 4242/ });
  await saved.waitFor();
  await page.getByRole("radio", { name: /Starter/ }).check();
  await saved.click();
  await page.getByText("Payment complete").waitFor();
  assert.match(await text(page, "#result"), /25 credits were added\. Your balance is now 265 credits/);
});

test("a declined card shows why and what to do, and the client can try again", async () => {
  const page = await signedIn("browser-declined");
  await payByCard(page, "4000 0000 0000 0002");
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.innerText(), /declined/i);
  await page.screenshot({ path: join(shots, "checkout-declined.png"), fullPage: true });
  await page.getByRole("button", { name: "Try again" }).click();
  await payByCard(page, "4242 4242 4242 4242");
  await page.getByText("Payment complete").waitFor();
});

test("3-D Secure opens the bank's window; approving it completes the payment", async () => {
  const page = await signedIn("browser-3ds");
  await payByCard(page, "4000 0027 6000 3184");
  const modal = page.getByRole("dialog");
  await modal.waitFor();
  await page.screenshot({ path: join(shots, "checkout-3ds.png") });
  await modal.getByRole("button", { name: "Approve payment" }).click();
  await page.getByText("Payment complete").waitFor();
  assert.match(await text(page, "#result"), /Your balance is now 240 credits/);
});

test("PayPal: cancel and try again, then approve and come back to the confirmation", async () => {
  const page = await signedIn("browser-paypal");
  await page.getByRole("button", { name: "Pay with PayPal" }).click();
  await page.waitForURL(/\/sandbox\/paypal\/checkoutnow/);
  await page.getByRole("button", { name: "Cancel and return" }).click();
  // The retry is a new checkout on the checkout page, where the payer is signed in.
  await page.getByRole("link", { name: "Try again" }).click();
  await page.waitForURL(/\/checkout$/);
  await page.getByRole("button", { name: "Pay with PayPal" }).click();
  await page.waitForURL(/\/sandbox\/paypal\/checkoutnow/);
  await page.getByLabel("Venmo").check();
  await page.screenshot({ path: join(shots, "paypal-approval.png"), fullPage: true });
  await page.getByRole("button", { name: "Approve payment" }).click();
  await page.getByRole("heading", { name: "Payment complete" }).waitFor();
  assert.match(await page.locator("main").innerText(), /240 credits\s+were added/);
});

test("billing: history, the invoice PDF, a refund request; the admin approves it, pauses, resumes and sees revenue", async () => {
  const client = await signedIn("browser-billing");
  await payByCard(client, "4242 4242 4242 4242");
  await client.getByText("Payment complete").waitFor();
  await client.goto(`${base}/billing`);
  await client.getByRole("cell", { name: "pro-200" }).waitFor();
  assert.equal(await text(client, "#balance"), "240");
  const [invoice] = await Promise.all([client.waitForEvent("download"), client.getByRole("button", { name: "Invoice PDF" }).click()]);
  assert.equal(readFileSync(await invoice.path()).subarray(0, 5).toString(), "%PDF-");
  assert.match(await text(client, "#policy"), /within 30 days/);
  await client.getByText("All 240 credits from this purchase are unused: a refund gives back 160.00 USD").waitFor();
  await client.getByRole("button", { name: "Ask for a refund" }).click();
  await client.getByText("Refund requested: pending review").waitFor();
  await client.screenshot({ path: join(shots, "billing.png"), fullPage: true });

  // The platform heard of the purchase; the admin console lists that delivery and sends it again.
  const granted = () => service.events.filter((e) => e.type === "purchase.succeeded" && e.data.clientId === "browser-billing");
  for (let i = 0; granted().length === 0; i++) {
    assert.ok(i < 100, "the platform received purchase.succeeded");
    await new Promise((r) => setTimeout(r, 100));
  }
  const admin = await signedIn("browser-admin", "admin");
  const delivery = admin.locator("#deliveries tr", { hasText: "purchase.succeeded" }).filter({ hasText: "delivered" }).first();
  await delivery.waitFor();
  const eventId = await delivery.locator("span[title]").getAttribute("title");
  await delivery.getByRole("button", { name: "Replay" }).click();
  await admin.getByText("Replay: done.").waitFor();
  for (let i = 0; service.events.filter((e) => e.id === eventId).length < 2; i++) {
    assert.ok(i < 100, "the replayed event arrived again");
    await new Promise((r) => setTimeout(r, 100));
  }
  await admin.getByRole("cell", { name: "browser-billing" }).first().waitFor();
  await admin.locator("#refund-queue").getByRole("button", { name: "Approve" }).click();
  await admin.getByText("Approve: done.").waitFor();
  await admin.locator("#payments tr", { hasText: "browser-billing" }).getByText("($160.00 refunded)").waitFor();
  await admin.getByLabel("Reason (recorded)").fill("Maintenance window");
  await admin.getByRole("button", { name: "Pause" }).click();
  await admin.getByText(/Paused: platform by browser-admin \(Maintenance window\)/).waitFor();
  await admin.getByRole("button", { name: "Resume" }).click();
  await admin.getByText("Payments are running.").waitFor();
  await admin.locator("#chart svg rect").first().waitFor();
  // A failed card payment can be retried by an admin; a cancelled PayPal one needs the payer, so it offers no retry.
  const failedRow = (client) => admin.locator("#payments tr", { hasText: client }).filter({ hasText: "failed" });
  assert.equal(await failedRow("browser-declined").getByRole("button", { name: "Retry" }).count(), 1);
  assert.equal(await failedRow("browser-paypal").getByRole("button", { name: "Retry" }).count(), 0);
  await admin.screenshot({ path: join(shots, "admin.png"), fullPage: true });

  await client.reload();
  await client.locator("#refunds").getByRole("cell", { name: "refunded" }).waitFor();
  await client.locator("#history").getByRole("cell", { name: "refunded" }).waitFor();
  assert.ok(await client.getByRole("button", { name: "Ask for a refund" }).isDisabled(), "nothing left to refund");
  assert.equal(await text(client, "#balance"), "0");
});

test("fraud review: risky payments wait for an admin, who releases one, confirms fraud on the other, then lifts the flag", async () => {
  const client = await signedIn("browser-risky");
  for (let i = 0; i < 2; i++) {
    await payByCard(client, "4000 0000 0000 9235");
    await client.getByText(/being reviewed/).waitFor();
  }
  const admin = await signedIn("browser-fraud-admin", "admin");
  const held = admin.locator("#review-queue tbody tr", { hasText: "browser-risky" });
  await held.first().waitFor();
  assert.equal(await held.count(), 2);
  assert.match(await held.first().innerText(), /Stripe Radar rates this payment's risk elevated, score \d+/, "the admin sees why");
  await held.first().getByRole("button", { name: "Release" }).click();
  await admin.getByText("Release: done.").waitFor();
  await admin.waitForFunction(() => document.querySelectorAll("#review-queue tbody tr").length === 1);
  await held.getByRole("button", { name: "Confirm fraud" }).click();
  await admin.getByText("Confirm fraud: done.").waitFor();
  const flag = admin.locator("#flagged tbody tr", { hasText: "browser-risky" });
  await flag.waitFor();
  assert.match(await flag.innerText(), /browser-fraud-admin/);
  assert.match(await text(admin, "#review-queue"), /No payments held for review/);
  await admin.screenshot({ path: join(shots, "admin-fraud.png"), fullPage: true });
  await flag.getByRole("button", { name: "Lift flag" }).click();
  await admin.getByText("No flagged accounts.").waitFor();

  // The released payment's credits are the client's; the fraudulent one was refunded.
  await client.goto(`${base}/billing`);
  await client.getByRole("cell", { name: "pro-200" }).first().waitFor();
  assert.equal(await text(client, "#balance"), "240");
});

test("disputes: the admin opens one, submits evidence with a document, and sees it lost and the credits taken back", async () => {
  const client = await signedIn("browser-disputed");
  await payByCard(client, "4000 0000 0000 0259");
  await client.getByText("Payment complete").waitFor();
  const admin = await signedIn("browser-dispute-admin", "admin");
  const row = admin.locator("#disputes tbody tr", { hasText: "fraudulent" });
  await row.first().waitFor();
  await row.first().getByRole("button", { name: "Open" }).click();
  await admin.locator("#dispute").getByText("needs response").first().waitFor();
  assert.match(await text(admin, "#dispute"), /dispute_needs_response/, "the purchase's history shows the dispute");
  // Stripe's test mode: evidence reading `losing_evidence` loses.
  await admin.getByLabel(/^Evidence/).fill("losing_evidence");
  await admin.getByLabel(/^Document/).setInputFiles({ name: "usage-log.pdf", mimeType: "application/pdf",
    buffer: Buffer.from("%PDF-1.4\n%%EOF\n") });
  await admin.getByRole("button", { name: "Submit evidence" }).click();
  await admin.getByText("Evidence submitted.").waitFor();
  assert.match(await text(admin, "#dispute"), /usage-log\.pdf/, "the audit trail names the document");
  // The bank's decision arrives by webhook: the admin reopens the dispute to see it.
  for (let i = 0; i < 50 && !/240 credits taken back/.test(await text(admin, "#dispute")); i++) {
    await admin.waitForTimeout(200);
    await row.first().getByRole("button", { name: "Open" }).click();
  }
  assert.match(await text(admin, "#dispute-status"), /^lost .*240 credits taken back/);
  await admin.screenshot({ path: join(shots, "admin-dispute.png"), fullPage: true });
  await admin.reload();
  await admin.locator("#flagged tbody tr", { hasText: "browser-disputed" }).waitFor();
  await client.goto(`${base}/billing`);
  await client.getByRole("cell", { name: "pro-200" }).first().waitFor();
  assert.equal(await text(client, "#balance"), "0");
  // The client's statement shows the credits bought and taken back for the disputed payment.
  const statement = await text(client, "#statement");
  assert.match(statement, /Bought\s+\+240/);
  assert.match(statement, /Disputed payment\s+-240/);
});

test("the checkout fits a phone's width", async () => {
  const page = await signedIn("browser-phone", "client", { viewport: { width: 375, height: 740 } });
  await page.getByRole("button", { name: "Pay by card" }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await page.screenshot({ path: join(shots, "checkout-phone.png"), fullPage: true });
});

test("keyboard only: tab to the card form, type, tick save, press Enter", async () => {
  const page = await signedIn("browser-keyboard");
  await page.getByRole("radio", { name: /Pro/ }).waitFor();
  const focused = () => page.evaluate(() => document.activeElement?.id);
  for (let i = 0; i < 30 && (await focused()) !== "number"; i++) await page.keyboard.press("Tab");
  assert.equal(await focused(), "number", "Tab reaches the card number");
  await page.keyboard.type("4242 4242 4242 4242");
  await page.keyboard.press("Tab");
  assert.equal(await focused(), "expiry");
  await page.keyboard.type("12/34");
  await page.keyboard.press("Tab");
  assert.equal(await focused(), "cvc");
  await page.keyboard.type("123");
  await page.keyboard.press("Tab");
  assert.equal(await focused(), "save");
  await page.keyboard.press("Space");
  await page.keyboard.press("Tab");
  assert.equal(await focused(), "pay");
  await page.keyboard.press("Enter");
  await page.getByText("Payment complete").waitFor();
});

// axe-core (npm, pinned) checks each page against WCAG 2 A and AA: labels, names, contrast, landmarks, ARIA.
test("every page passes axe-core's WCAG 2 A/AA checks", async () => {
  const axe = join(import.meta.dirname, "node_modules/axe-core/axe.min.js");
  for (const [user, role, path] of [["browser-a11y", "client", "/checkout"], ["browser-a11y", "client", "/billing"],
    ["browser-a11y-admin", "admin", "/admin"]]) {
    const page = await signedIn(user, role, { bypassCSP: true });
    await page.waitForLoadState("networkidle");
    if (!page.url().endsWith(path)) await page.goto(`${base}${path}`, { waitUntil: "networkidle" });
    // A late navigation (the sign-in's redirect landing after the goto) destroys the page's context: check again
    // once the page has settled, a few times at most.
    let violations;
    for (let attempt = 1; violations === undefined; attempt++) {
      try {
        await page.addScriptTag({ path: axe });
        violations = await page.evaluate(async () =>
          (await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa"] })).violations.map((v) =>
            `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`));
      } catch (e) {
        if (attempt >= 3 || !/context was destroyed/.test(e.message)) throw e;
        await page.waitForLoadState("networkidle");
        if (!page.url().endsWith(path)) await page.goto(`${base}${path}`, { waitUntil: "networkidle" });
      }
    }
    assert.deepEqual(violations, [], `${path}:\n${violations.join("\n")}`);
  }
});

test("the pages' Content-Security-Policy refused nothing they need", () => {
  assert.deepEqual(refusedByPolicy, []);
});

test("no card number ever reached Purser's API", () => {
  const api = requests.filter((r) => new URL(r.url).pathname.startsWith("/api/"));
  assert.ok(api.length > 20, "the pages called the API");
  for (const r of api) {
    assert.doesNotMatch(r.body.replace(/\D/g, ""), /4242424242424242|4000000000000002|4000002760003184/, r.url);
  }
  assert.ok(requests.some((r) => r.url.endsWith("/sandbox/v1/tokens")), "card numbers went to the sandbox's tokenizer");
});
