// What both browser test files share: Debian's Chromium through playwright-core, and where screenshots go.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

export const root = resolve(import.meta.dirname, "../..");
export const shots = join(root, "target", "screenshots");

export async function launch() {
  mkdirSync(shots, { recursive: true });
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
}

/** Everything the pages' Content-Security-Policy refused, across all pages; the tests expect none. */
export const refusedByPolicy = [];

/** A new page whose every request (URL and body) lands in `requests`, to prove where card numbers went.
 * `bypassCSP` is for tools the test injects into the page (axe-core), which the policy rightly refuses. */
export async function recordedPage(browser, requests, { viewport = { width: 1100, height: 900 }, bypassCSP = false } = {}) {
  const context = await browser.newContext({ viewport, acceptDownloads: true, bypassCSP });
  const page = await context.newPage();
  page.on("request", (r) => requests.push({ url: r.url(), body: r.postData() ?? "" }));
  await page.exposeFunction("reportRefusal", (what) => refusedByPolicy.push(`${page.url()}: ${what}`));
  await page.addInitScript(() => document.addEventListener("securitypolicyviolation",
    (e) => window.reportRefusal(`${e.effectiveDirective} refused ${e.blockedURI || "inline"}`)));
  return page;
}
