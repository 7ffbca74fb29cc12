// Tests of the npm package in wasm/dist/npm (run by wasm/test.sh: `node --test`), installed the way
// a user gets it: a `node_modules/kube-harden` in a scratch project, loaded with `require`, with
// `import`, and the web build with bytes instead of fetch.
//   KUBE_HARDEN_NPM     the package directory (default wasm/dist/npm)
//   KUBE_HARDEN_NATIVE  the native binary, to compare versions and the package's bin with
"use strict";
const assert = require("node:assert/strict");
const { test } = require("node:test");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawnSync } = require("node:child_process");

const root = path.resolve(__dirname, "../..");
const pkgDir = path.resolve(process.env.KUBE_HARDEN_NPM || path.join(root, "wasm/dist/npm"));
const native = process.env.KUBE_HARDEN_NATIVE;

// A scratch project with the package installed as a dependency (a copy, as `npm install` makes).
const project = fs.mkdtempSync(path.join(os.tmpdir(), "kube-harden-npm-"));
fs.cpSync(pkgDir, path.join(project, "node_modules", "kube-harden"), { recursive: true });
const load = (spec) => require(require.resolve(spec, { paths: [project] }));
const kh = load("kube-harden");

const deployment = fs.readFileSync(path.join(root, "examples/basic/deployment.yaml"), "utf8");
// Its image's digest (WASM has no registry client: digests come from a lock or the policy).
const lockPath = path.join(root, "examples/basic/images.lock");
const lock = fs.readFileSync(lockPath, "utf8");

function goldenCases() {
  const cases = [];
  const base = path.join(root, "testdata");
  const dirs = (d) => fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  for (const area of dirs(base)) {
    for (const name of dirs(path.join(base, area))) {
      const dir = path.join(base, area, name);
      if (fs.existsSync(path.join(dir, "input.yaml"))) cases.push({ name: `${area}/${name}`, area, dir });
    }
  }
  return cases;
}

// Warnings and errors as `<severity> <rule> <Kind/name> <field path, …>`: what precedes the first
// `: ` of every line of a golden results.yaml (one line per object and rule; some are info).
function problemKeys(lines) {
  return lines
    .filter((l) => l.includes(": ") && !l.startsWith("info "))
    .map((l) => l.split(": ")[0])
    .sort();
}

// The rules a case switches off, as tests/golden.rs decides: an area named by a rule id runs that
// rule alone (plus the rules its config.yaml names in spec.enable); the other areas run every rule,
// pin-image-digests only with an images.lock.
const ALL_RULES_AREAS = ["all-rules", "image-facts", "io", "opt-out"];
function disabledRules(area, config, hasLock) {
  if (ALL_RULES_AREAS.includes(area)) return hasLock ? [] : ["pin-image-digests"];
  const spec = config === null ? null : kh.parseYaml(config)?.spec;
  const enabled = ((spec && spec.enable) || []).map((e) => e.trim());
  return kh.rules().map((r) => r.id).filter((id) => id !== area && !enabled.includes(id));
}

// The field paths of a result: its `field.path`, or the `fieldPaths` of a grouped one.
function paths(r) {
  if (r.field) return r.field.path;
  return r.fieldPaths ? r.fieldPaths.join(", ") : "-";
}

test("every golden case: output equals expected.yaml, results match results.yaml and the CLI's --results", () => {
  const cases = goldenCases();
  assert.ok(cases.length > 50, `only ${cases.length} golden cases found`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "kube-harden-golden-"));
  for (const c of cases) {
    const read = (f) => fs.readFileSync(path.join(c.dir, f), "utf8");
    const hasConfig = fs.existsSync(path.join(c.dir, "config.yaml"));
    const config = hasConfig ? read("config.yaml") : null;
    // Rules and digests as in tests/golden.rs: the case's lock, never the network.
    const hasLock = fs.existsSync(path.join(c.dir, "images.lock"));
    const disable = disabledRules(c.area, config, hasLock);
    const options = hasLock ? { lock: read("images.lock"), disable } : { disable };
    const cliPin = ["--offline", ...(hasLock ? ["--lock", path.join(c.dir, "images.lock")] : []), ...(disable.length ? ["--disable", disable.join(",")] : [])];
    if (fs.existsSync(path.join(c.dir, "error.yaml"))) {
      // An expected failure (tests/golden.rs checks the CLI's message and exit status): the
      // package throws or returns error results.
      let failed;
      try {
        failed = kh.harden(read("input.yaml"), config, options).hasErrors;
      } catch {
        failed = true;
      }
      assert.ok(failed, `${c.name}: error.yaml case succeeded`);
      continue;
    }
    const out = kh.harden(read("input.yaml"), config, options);
    assert.equal(out.output, read("expected.yaml"), `${c.name}: output`);
    const mine = out.results
      .filter((r) => r.severity !== "info")
      .map((r) => `${r.severity} ${r.tags.rule} ${r.resourceRef ? `${r.resourceRef.kind}/${r.resourceRef.name}` : "-"} ${paths(r)}`)
      .sort();
    assert.deepEqual(mine, problemKeys(read("results.yaml").split("\n")), `${c.name}: warnings and errors`);
    assert.equal(kh.harden(out.output, config, options).output, out.output, `${c.name}: idempotent`);
    if (native) {
      // Every result, info included, exactly as the CLI writes them with --results.
      const args = ["--quiet", ...cliPin, "--results", path.join(work, "results.yaml")];
      if (hasConfig) args.push("--config", path.join(c.dir, "config.yaml"));
      spawnSync(native, [...args, path.join(c.dir, "input.yaml")], { stdio: "ignore" });
      assert.equal(out.resultsYaml, fs.readFileSync(path.join(work, "results.yaml"), "utf8"), `${c.name}: resultsYaml vs the CLI's --results`);
      fs.rmSync(path.join(work, "results.yaml"));
    }
  }
});

test("harden: result shape, stats and info results (one per object and rule; options.verbosity)", () => {
  const out = kh.harden(deployment, null, { lock });
  assert.equal(out.form, "stream");
  assert.equal(out.hasErrors, false);
  assert.match(out.output, /allowPrivilegeEscalation: false/);
  assert.match(out.output, /image: memcached:1\.6\.45-alpine@sha256:c29847751abb/);
  assert.match(out.output, /# Source: cache\/templates\/deployment.yaml/);
  assert.deepEqual(Object.keys(out.stats).sort(), ["changed", "changes", "reemitted", "workloads"]);
  assert.equal(out.stats.workloads, 1);
  // One result per object and rule: the three probes are one default-probes result.
  const probes = out.results.filter((r) => r.tags.rule === "default-probes");
  assert.equal(probes.length, 1);
  assert.equal(probes[0].fieldPaths.length, 3);
  assert.equal(probes[0].field, undefined);
  // `changes`: one line per changed or generated object; `problems`: no info at all.
  const changes = kh.harden(deployment, null, { lock, verbosity: "changes" }).results.filter((r) => r.severity === "info");
  assert.deepEqual(changes.map((r) => r.resourceRef.kind), ["Deployment", "PodDisruptionBudget"]);
  assert.match(changes[0].message, /^hardened runAsNonRoot, .* \(\d+ fields\)$/);
  const problems = kh.harden(deployment, { spec: { verbosity: "problems" } }, { lock }).results;
  assert.ok(problems.every((r) => r.severity !== "info"));
  assert.throws(() => kh.harden(deployment, null, { verbosity: "loud" }), /options.verbosity/);
  const r = out.results.find((x) => x.tags.rule === "seccomp");
  assert.equal(r.resourceRef.kind, "Deployment");
  assert.equal(r.field.path, "spec.template.spec.securityContext.seccompProfile");
  assert.match(out.resultsYaml, /^results:\n- message: /);
});

test("harden: the policy as an object ({spec} alone or a full HardeningPolicy), YAML text or ConfigMap", () => {
  const off = ["read-only-root-filesystem", "writable-tmp"];
  const variants = [
    { spec: { disable: off } },
    { apiVersion: "kube-harden.dev/v1alpha1", kind: "HardeningPolicy", spec: { disable: off } },
    "spec:\n  disable: [read-only-root-filesystem, writable-tmp]\n",
    '{"spec": {"disable": ["read-only-root-filesystem", "writable-tmp"]}}',
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "fn" }, data: { disable: off.join(",") } },
  ];
  // With the example's lock: its facts give memcached's uid (runAsNonRoot), its digest pins it.
  const expected = kh.harden(deployment, null, { disable: off, lock }).output;
  assert.doesNotMatch(expected, /readOnlyRootFilesystem|emptyDir/);
  assert.match(expected, /runAsNonRoot: true/);
  for (const config of variants) assert.equal(kh.harden(deployment, config, { lock }).output, expected, JSON.stringify(config));
  // The lock does not know memcached's filesystem: `unknownImages: harden` adds the read-only
  // root and its /tmp emptyDir anyway, sized by the policy.
  const withUser = kh.harden(deployment, { spec: { runAsUser: 10001, tmpSizeLimit: "128Mi", unknownImages: "harden" } }, { lock }).output;
  assert.match(withUser, /runAsUser: 10001/);
  assert.match(withUser, /sizeLimit: 128Mi/);
});

test("harden: options are the CLI's --enable/--disable/--enforce, on top of the policy", () => {
  const explicit = fs.readFileSync(path.join(root, "testdata/no-privilege-escalation/explicit-true/input.yaml"), "utf8");
  // As the golden case runs it: its image has no facts, and the case is about manifest logic.
  const harden = { spec: { unknownImages: "harden" } };
  const kept = kh.harden(explicit, harden);
  assert.ok(kept.results.some((r) => r.severity === "warning"));
  const enforced = kh.harden(explicit, harden, { enforce: true });
  assert.notEqual(enforced.output, kept.output);
  assert.equal(kh.harden(explicit, { spec: { enforce: true, unknownImages: "harden" } }).output, enforced.output);
  const both = kh.harden(deployment, { spec: { disable: ["seccomp"] } }, { disable: ["writable-tmp"] }).output;
  assert.doesNotMatch(both, /seccompProfile|emptyDir/);
});

test("harden: without a digest for an image, pin-image-digests fails closed", () => {
  const out = kh.harden(deployment);
  assert.equal(out.hasErrors, true);
  const e = out.results.find((r) => r.severity === "error");
  assert.equal(e.tags.rule, "pin-image-digests");
  assert.match(e.message, /memcached:1\.6\.45-alpine: not in the lock file/);
  assert.throws(() => kh.harden(deployment, null, { lock: "kind: Nope\n" }), /options\.lock/);
});

test("harden: malformed input and bad policies throw Errors naming the problem", () => {
  assert.throws(() => kh.harden("apiVersion: v1\nkind: Pod\nmetadata: {name: x\n"), /document 1/);
  assert.throws(() => kh.harden(deployment, { spec: { disable: ["no-such-rule"] } }), /no-such-rule/);
  assert.throws(() => kh.harden(deployment, { spec: { unknownKey: 1 } }), /unknownKey/);
  assert.throws(() => kh.harden(deployment, "spec: [\n"), /config/);
  assert.throws(() => kh.harden(deployment, null, { disabel: [] }), /disabel/);
  assert.throws(() => kh.harden(deployment, { kind: "Secret", apiVersion: "v1" }), /Secret/);
});

test("harden: a ResourceList comes back as a ResourceList with its results", () => {
  const input = fs.readFileSync(path.join(root, "testdata/io/resourcelist-warnings/input.yaml"), "utf8");
  const out = kh.harden(input);
  assert.equal(out.form, "resourceList");
  assert.match(out.output, /kind: ResourceList/);
  assert.match(out.output, /\nresults:\n/);
});

test("parseYaml reads YAML with Kubernetes' meaning and throws on syntax errors", () => {
  assert.deepEqual(kh.parseYaml("a: 0644\nb: on\nc: 'on'\nd: [x, 1]\n"), { a: 420, b: true, c: "on", d: ["x", 1] });
  assert.equal(kh.parseYaml(""), null);
  assert.throws(() => kh.parseYaml("a: [\n"), /line 2/);
});

test("rules, docs, schema and version are the CLI's", () => {
  const rules = kh.rules();
  assert.ok(rules.length >= 6);
  assert.ok(rules.every((r) => typeof r.id === "string" && typeof r.summary === "string" && typeof r.defaultEnabled === "boolean"));
  assert.match(kh.docs("seccomp"), /RuntimeDefault/);
  assert.throws(() => kh.docs("nope"), /unknown rule id/);
  assert.ok(kh.docs().length > kh.docs("seccomp").length);
  const schema = JSON.parse(kh.schema());
  assert.equal(schema.title, "HardeningPolicy");
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  assert.equal(kh.version(), pkg.version);
  const cargo = fs.readFileSync(path.join(root, "Cargo.toml"), "utf8").match(/^version = "(.*)"$/m)[1];
  assert.equal(pkg.version, cargo, "the npm package carries the CLI crate's version");
  if (native) {
    const run = (args, input) => spawnSync(native, args, { input, encoding: "utf8" });
    assert.equal(run(["--version"]).stdout.trim(), `kube-harden ${kh.version()}`);
    const rulesOut = run(["rules"]).stdout;
    for (const r of rules) assert.match(rulesOut, new RegExp(`^${r.id} +${r.summary.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"));
    assert.equal(run(["schema"]).stdout, kh.schema() + "\n");
    assert.equal(run(["docs", "seccomp"]).stdout, kh.docs("seccomp"));
  }
});

test("ES module import and the web build (initialised with bytes) give the same answers", async () => {
  const esm = await import(require.resolve("kube-harden", { paths: [project] }));
  assert.equal(esm.harden(deployment).output, kh.harden(deployment).output);
  const webEntry = path.join(project, "node_modules/kube-harden/web/kube_harden.js");
  const web = await import(webEntry);
  await web.default({ module_or_path: fs.readFileSync(path.join(path.dirname(webEntry), "kube_harden_bg.wasm")) });
  assert.equal(web.harden(deployment, { spec: { disable: ["seccomp"] } }).output, kh.harden(deployment, { spec: { disable: ["seccomp"] } }).output);
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  assert.equal(pkg.exports["./web"].default, "./web/kube_harden.js");
});

// KUBE_HARDEN_E2E_REQUIRED set (not empty, not 0): the comparison with the native binary may not be skipped.
const strict = !["", "0", undefined].includes(process.env.KUBE_HARDEN_E2E_REQUIRED);
test("the package's bin is the CLI (WASI build) and matches the native binary", { skip: !native && !strict && "KUBE_HARDEN_NATIVE not set" }, () => {
  assert.ok(native, "KUBE_HARDEN_NATIVE (the native binary) is not set and KUBE_HARDEN_E2E_REQUIRED is");
  const bin = path.join(project, "node_modules/kube-harden/bin/kube-harden.cjs");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "kube-harden-bin-"));
  fs.writeFileSync(path.join(work, "d.yaml"), deployment);
  fs.writeFileSync(path.join(work, "images.lock"), lock);
  const offline = ["--offline", "--lock", "images.lock"];
  for (const args of [[...offline, "d.yaml"], [...offline, "--disable", "seccomp", "-"], ["--offline", "d.yaml"], ["--no-such-flag"], ["--version"]]) {
    const a = spawnSync(native, args, { cwd: work, input: deployment });
    const b = spawnSync(process.execPath, [bin, ...args], { cwd: work, input: deployment });
    assert.equal(b.status, a.status, `${args}: exit status`);
    assert.ok(Buffer.compare(a.stdout, b.stdout) === 0, `${args}: stdout`);
    assert.equal(b.stderr.toString(), a.stderr.toString(), `${args}: stderr`);
  }
});

// V8 (node, browsers, kpt's nodejs runtime) answers every `memory.grow` past a threshold with a full
// GC ("external memory pressure"). std's allocator grew the memory by about each request, which cost
// ~600 such GCs, a third of the time, on the 26 MB benchmark stream; kube_harden::wasm_alloc grows in
// large steps. Counted with --trace-gc on a ~12 MB stream (the old allocator: ~400 here, none below ~8 MB).
test("memory grows in a few large steps: few GCs for external memory pressure (npm library and WASI bin)", () => {
  const docs = [];
  for (let i = 0, size = 0; size < 12e6; i++) {
    docs.push(deployment.replace(/name: cache\b/g, `name: cache-${i}`));
    size += docs[i].length;
  }
  const big = docs.join("");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "kube-harden-gc-"));
  fs.writeFileSync(path.join(work, "big.yaml"), big);
  const pressureGcs = (run) => {
    assert.equal(run.status, 0, run.stderr.toString());
    return (run.stdout.toString().match(/external memory pressure/g) || []).length;
  };
  const lib = spawnSync(process.execPath, ["--trace-gc", "-e", `
    const kh = require(${JSON.stringify(require.resolve("kube-harden", { paths: [project] }))});
    const out = kh.harden(require("node:fs").readFileSync("big.yaml", "utf8"), { spec: { disable: ["pin-image-digests"] } });
    if (out.output.length <= ${big.length}) throw new Error("output not hardened");`], { cwd: work, maxBuffer: 1 << 28 });
  const libGcs = pressureGcs(lib);
  const binDir = path.join(project, "node_modules/kube-harden/bin");
  const wasi = spawnSync(process.execPath, ["--no-warnings", "--single-threaded-gc", "--no-incremental-marking", "--trace-gc",
    path.join(binDir, "run-node.mjs"), path.join(binDir, "kube-harden-wasi.wasm"), "--quiet", "--disable", "pin-image-digests", "big.yaml"],
    { cwd: work, maxBuffer: 1 << 28 });
  const wasiGcs = pressureGcs(wasi);
  assert.ok(wasi.stdout.length > big.length, "WASI output not hardened");
  assert.ok(libGcs <= 10, `npm library: ${libGcs} GCs for external memory pressure`);
  assert.ok(wasiGcs <= 10, `WASI bin: ${wasiGcs} GCs for external memory pressure`);
});
