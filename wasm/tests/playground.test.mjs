// The playground in headless Chromium (Debian's `chromium`, driven by playwright-core): served by a
// plain static file server, with every request that is not to that server blocked (it must work
// offline). Loads an example, toggles a rule and a setting, and checks the output, the diff and the
// results against the npm package's answer for the same input and policy; keeps screenshots.
//   node playground.test.mjs [PLAYGROUND_DIR] [SCREENSHOT_DIR]
//   CHROMIUM   the browser binary (default: chromium or chromium-browser on PATH)
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, "../dist");
const playground = path.resolve(process.argv[2] ?? path.join(dist, "playground"));
const shots = path.resolve(process.argv[3] ?? path.join(dist, "screenshots"));
const require = createRequire(import.meta.url);

function findChromium() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ["chromium", "chromium-browser"]) {
    try {
      return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
    } catch {}
  }
  return null;
}

// KUBE_HARDEN_E2E_REQUIRED set (not empty, not 0): a missing browser or driver fails the test.
const strict = !["", "0", undefined].includes(process.env.KUBE_HARDEN_E2E_REQUIRED);
function skip(reason) {
  if (strict) {
    console.log(`playground test: FAILED: ${reason} (KUBE_HARDEN_E2E_REQUIRED is set, so it may not be skipped)`);
    process.exit(1);
  }
  console.log(`playground test: SKIPPED: ${reason}`);
  process.exit(0);
}

let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch {
  skip("playwright-core is not installed (bash wasm/setup.sh installs it)");
}
const executablePath = findChromium();
if (!executablePath) skip("no chromium on PATH (Debian: apt-get install chromium)");

// The npm package computes the expected answers.
const kh = require(path.join(dist, "npm"));

const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wasm": "application/wasm", ".png": "image/png" };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const file = path.join(playground, path.normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, ""));
  const target = fs.existsSync(file) && fs.statSync(file).isDirectory() ? path.join(file, "index.html") : file;
  if (!target.startsWith(playground) || !fs.existsSync(target)) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": types[path.extname(target)] ?? "application/octet-stream" });
  fs.createReadStream(target).pipe(res);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const outside = [];
const pageErrors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && pageErrors.push(m.text()));
  await page.route("**/*", (route) => {
    if (route.request().url().startsWith(origin)) return route.continue();
    outside.push(route.request().url());
    return route.abort();
  });
  await page.goto(`${origin}/index.html`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  assert.match(await page.textContent("#version"), new RegExp(`v${kh.version().replace(/\./g, "\\.")}`));

  const examples = await page.$$eval("#example option", (os) => os.map((o) => o.textContent));
  assert.ok(examples.length > 3, "examples are listed");

  // 1. Load the first example (the basic example, with its image lock): the output is the npm
  // package's answer with the default policy and that lock, images pinned.
  await page.selectOption("#example", "0");
  const input = await page.inputValue("#input");
  assert.match(input, /kind: Deployment/);
  const lock = fs.readFileSync(path.resolve(here, "../../examples/basic/images.lock"), "utf8");
  assert.equal(await page.inputValue("#lock"), lock, "the example's lock is loaded with it");
  assert.equal(await page.isChecked("#rule-pin-image-digests"), true);
  const defaults = kh.harden(input, { spec: {} }, { disable: [], enable: [], enforce: false, lock });
  await page.waitForFunction((want) => document.getElementById("output").textContent === want, defaults.output);
  // memcached names its user: the lock's facts give the numeric uid the kubelet needs. Its layers
  // were not read (filesystem facts unknown), so the root filesystem stays writable.
  assert.match(defaults.output, /runAsUser: 11211/);
  assert.doesNotMatch(defaults.output, /readOnlyRootFilesystem/);
  assert.match(defaults.output, /image: .*@sha256:[0-9a-f]{64}/);
  await page.screenshot({ path: path.join(shots, "playground-output.png") });

  // 2. Toggle a rule off: the output changes exactly as the package says it should.
  await page.uncheck("#rule-default-probes");
  const withoutProbes = kh.harden(input, { spec: {} }, { disable: ["default-probes"], enable: [], enforce: false, lock });
  assert.doesNotMatch(withoutProbes.output, /readinessProbe|livenessProbe|startupProbe/);
  await page.waitForFunction((want) => document.getElementById("output").textContent === want, withoutProbes.output);
  assert.match(await page.textContent("#output"), /allowPrivilegeEscalation: false/);
  // The policy shown is a valid --config file with the same effect.
  const policyText = await page.textContent("#policy");
  assert.match(policyText, /disable:\n  - default-probes/);
  assert.equal(kh.harden(input, policyText, { lock }).output, withoutProbes.output);

  // 3. A setting: runAsUser appears in the output.
  await page.fill("#runAsUser", "10001");
  await page.waitForFunction(() => document.getElementById("output").textContent.includes("runAsUser: 10001"));
  const withUser = kh.harden(input, { spec: { runAsUser: 10001 } }, { disable: ["default-probes"], enable: [], enforce: false, lock });
  assert.equal(await page.textContent("#output"), withUser.output);

  // 4. The diff shows the added lines, and only additions (kube-harden never rewrites what it keeps)
  // except the image line, which gains its digest.
  await page.click("[data-tab=diff]");
  assert.equal(await page.isVisible("#diff"), true);
  const added = await page.$$eval("#diff .add", (els) => els.map((e) => e.textContent));
  const removed = await page.$$eval("#diff .del", (els) => els.map((e) => e.textContent));
  const expectedAdded = withUser.output.split("\n").length - input.split("\n").length + 1;
  assert.equal(added.length, expectedAdded, "every added line is in the diff");
  assert.equal(removed.length, 1, JSON.stringify(removed));
  const image = removed[0].replace(/^- /, "");
  assert.match(image, /^ +image: /);
  assert.ok(added.some((l) => new RegExp(`^\\+ ${image.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}@sha256:[0-9a-f]{64}$`).test(l)), JSON.stringify(added));
  assert.ok(added.includes("+         runAsUser: 10001") || added.some((l) => /^\+ +runAsUser: 10001$/.test(l)));
  await page.screenshot({ path: path.join(shots, "playground-diff.png") });

  // 5. The results table lists every result.
  await page.click("[data-tab=results]");
  const rows = await page.$$eval("#results tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.equal(rows.length, withUser.results.length);
  assert.ok(rows.some((r) => r[1] === "run-as-non-root" && r[2] === "Deployment/cache"));
  assert.match(await page.textContent("#summary"), /1 of 1 workloads changed/);
  await page.screenshot({ path: path.join(shots, "playground-results.png") });

  // 6. A policy file underneath: its settings apply, the switches above still win.
  await page.click("#policy-box summary");
  await page.fill("#policy-extra", "apiVersion: kube-harden.dev/v1alpha1\nkind: HardeningPolicy\nspec:\n  tmpSizeLimit: 32Mi\n  disable: [seccomp]\n");
  const layered = kh.harden(input, { spec: { tmpSizeLimit: "32Mi", disable: ["seccomp"], runAsUser: 10001 } }, { disable: ["default-probes"], lock });
  await page.waitForFunction((want) => document.getElementById("output").textContent === want, layered.output);
  assert.doesNotMatch(layered.output, /seccompProfile/);
  await page.fill("#policy-extra", "");

  // 7. Without the lock the image cannot be pinned (no registry in a browser): it fails closed, as
  // the CLI does offline, and the results say which image.
  await page.click("#lock-box summary");
  await page.fill("#lock", "");
  const noLock = kh.harden(input, { spec: { runAsUser: 10001 } }, { disable: ["default-probes"] });
  assert.ok(noLock.hasErrors);
  await page.waitForFunction((want) => document.getElementById("output").textContent === want, noLock.output);
  const noLockErrors = noLock.results.filter((r) => r.severity === "error").length;
  assert.ok(noLockErrors >= 1);
  assert.match(await page.textContent("#summary"), new RegExp(` ${noLockErrors} errors \\(the CLI would write nothing and exit 1\\)`));
  const pinRows = await page.$$eval("#results tbody tr", (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.ok(pinRows.some((r) => r[0] === "error" && r[1] === "pin-image-digests" && r[4].includes("memcached")), JSON.stringify(pinRows));
  await page.fill("#lock", lock);

  // 8. An example without a lock starts with pin-image-digests off, and no pin errors.
  await page.selectOption("#example", "1");
  assert.equal(await page.inputValue("#lock"), "");
  assert.equal(await page.isChecked("#rule-pin-image-digests"), false);
  await page.waitForFunction(() => document.body.dataset.state === "done");
  assert.match(await page.textContent("#summary"), / 0 errors$/);
  const exampleRules = await page.$$eval("#results tbody tr", (trs) => trs.map((tr) => tr.children[1].textContent));
  assert.ok(!exampleRules.includes("pin-image-digests"), JSON.stringify(exampleRules));

  // 9. Malformed input is reported, not thrown.
  await page.fill("#input", "apiVersion: v1\nkind: Pod\nmetadata: {name: x\n");
  await page.waitForSelector("#error:not([hidden])");
  assert.match(await page.textContent("#error"), /document 1/);

  assert.deepEqual(pageErrors, [], "no errors in the page");
  assert.deepEqual(outside, [], "no request left the static server");
  console.log(`playground test: passed (${examples.length} examples; screenshots in ${shots})`);
} finally {
  await browser.close();
  server.close();
}
