// A Purser for the browser to talk to: the real binary on a fresh SQLite file with the sandbox providers, in
// development mode (so the sign-in page exists), on a free port of 127.0.0.1.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
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

/** Starts `binary` (relative to the repository) and waits until it is ready; `stop()` ends it and its files. */
export async function startPurser(binary = "target/debug/purser") {
  const work = mkdtempSync(join(tmpdir(), "purser-browser-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
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
    rmSync(work, { recursive: true, force: true });
  };
  return { base, stop };
}
