// Measures AC9.1.1, "the payment form is usable within 2 s of opening": opens /checkout in headless Chromium, each
// time in a fresh browser context (nothing cached), on a sandbox Purser started from the given binary, and reports
// when the form became usable (the packages drawn, Pay enabled) counted from the start of navigation.
// Usage: node page-timing.mjs [loads=30] [binary=target/release/purser]
import { launch } from "./chromium.mjs";
import { startPurser } from "./purser.mjs";

const loads = Number(process.argv[2] ?? 30);
const service = await startPurser(process.argv[3] ?? "target/release/purser");
const browser = await launch();
try {
  const minted = await fetch(`${service.base}/dev/token`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user: "timing", role: "client" }),
  }).then((r) => r.json());
  const usable = [], loaded = [];
  for (let i = 0; i < loads; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${service.base}/checkout#token=${minted.data.token}`);
    await page.waitForFunction(() => document.querySelector("input[name=package]:checked") && !document.querySelector("#pay").disabled,
      null, { polling: "raf" });
    usable.push(await page.evaluate(() => performance.now()));
    loaded.push(await page.evaluate(() => performance.getEntriesByType("navigation")[0].loadEventEnd));
    await context.close();
  }
  const at = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))].toFixed(0);
  console.log(`checkout, ${loads} cold loads: form usable p50 ${at(usable, 0.5)} ms, p95 ${at(usable, 0.95)} ms, ` +
    `max ${at(usable, 1)} ms (load event p50 ${at(loaded, 0.5)} ms); target 2000 ms`);
} finally {
  await browser.close();
  service.stop();
}
