// A Purser for the browser to talk to: the real binary on a fresh SQLite file with the sandbox providers, in
// development mode (so the sign-in page exists), on a free port of 127.0.0.1.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { root } from "./chromium.mjs";

const freePort = () => new Promise((done) => {
  const server = createServer().listen(0, "127.0.0.1", () => {
    const { port } = server.address();
    server.close(() => done(port));
  });
});

/** The platform's endpoint for Purser's events: keeps each event it is sent (`events`), answers 200. */
async function startPlatform() {
  const events = [];
  const server = createHttpServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => { body += chunk; });
    request.on("end", () => {
      events.push(JSON.parse(body));
      response.writeHead(200).end();
    });
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  return { url: `http://127.0.0.1:${server.address().port}/events`, events, close: () => server.close() };
}

/**
 * Starts `binary` (relative to the repository) with the platform's event endpoint and waits until it is ready;
 * `events` is what the platform received, `stop()` ends it and its files.
 */
export async function startPurser(binary = "target/debug/purser") {
  const work = mkdtempSync(join(tmpdir(), "purser-browser-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const platform = await startPlatform();
  const service = spawn(join(root, binary), ["--config", join(root, "config.toml"), "serve"], {
    env: {
      ...process.env,
      PURSER_SERVER__PORT: String(port),
      PURSER_DATABASE__URL: `sqlite://${join(work, "purser.db")}?mode=rwc`,
      PURSER_EMAIL__DIR: join(work, "mail"),
      PURSER_EMAIL__TRANSPORT: "file",
      PURSER_PAYMENTS__CARD_PROVIDER: "sandbox",
      PURSER_PAYMENTS__PAYPAL_PROVIDER: "sandbox",
      PURSER_ENVIRONMENT: "development",
      PURSER_EVENTS__ENDPOINTS: `[{name="platform",url="${platform.url}",secret_env="PURSER_BROWSER_EVENTS_SECRET"}]`,
      PURSER_EVENTS__POLL_INTERVAL: "100ms",
      PURSER_BROWSER_EVENTS_SECRET: "whsec_browser_platform_events",
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  for (let i = 0; ; i++) {
    const ready = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
    if (ready) break;
    if (i > 300) throw new Error("purser did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = () => {
    service.kill("SIGTERM");
    platform.close();
    rmSync(work, { recursive: true, force: true });
  };
  return { base, stop, events: platform.events };
}
