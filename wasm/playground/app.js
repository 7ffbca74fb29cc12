// The kube-harden playground: the npm package's web build (pkg/) runs in the page; every edit of
// the input, a rule toggle or a setting re-runs `harden` and shows the output, a diff against the
// input and the results. No network beyond loading the page's own files.
import init, { harden, parseYaml, rules, version } from "./pkg/kube_harden.js";

const $ = (id) => document.getElementById(id);
const state = { ready: false };

function listSetting(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

/** The HardeningPolicy the settings describe (the extra policy text, if any, underneath). */
function policyFromSettings(ruleList) {
  const spec = {};
  const disable = ruleList.filter((r) => r.defaultEnabled && !$(`rule-${r.id}`).checked).map((r) => r.id);
  const enable = ruleList.filter((r) => !r.defaultEnabled && $(`rule-${r.id}`).checked).map((r) => r.id);
  if (disable.length) spec.disable = disable;
  if (enable.length) spec.enable = enable;
  if ($("enforce").checked) spec.enforce = true;
  for (const key of ["runAsUser", "runAsGroup", "fsGroup"]) {
    const v = $(key).value.trim();
    if (v !== "") spec[key] = Number(v);
  }
  if ($("tmpSizeLimit").value.trim()) spec.tmpSizeLimit = $("tmpSizeLimit").value.trim();
  const paths = listSetting($("writablePaths").value);
  if (paths.length) spec.writablePaths = paths;
  return { apiVersion: "kube-harden.dev/v1alpha1", kind: "HardeningPolicy", metadata: { name: "playground" }, spec };
}

/** Block-style YAML for the small policy object (strings quoted as JSON, which YAML reads too). */
function toYaml(value, indent = "") {
  if (Array.isArray(value)) {
    return value.length ? value.map((v) => `\n${indent}- ${toYaml(v, indent + "  ").trimStart()}`).join("") : " []";
  }
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (!keys.length) return " {}";
    return keys
      .map((k) => {
        const v = value[k];
        // Sequences under a key start at the key's column (kubectl style).
        const inner = toYaml(v, Array.isArray(v) ? indent : indent + "  ");
        return `\n${indent}${k}:${v && typeof v === "object" ? inner : " " + inner.trim()}`;
      })
      .join("");
  }
  return typeof value === "string" && !/^[A-Za-z0-9_./-]+$/.test(value) ? JSON.stringify(value) : String(value);
}

/** Line diff (Myers), shortest edit script as [op, line] with op ' ', '-' or '+'. */
function diffLines(a, b) {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const A = a.slice(start, endA);
  const B = b.slice(start, endB);
  const n = A.length;
  const m = B.length;
  const max = n + m;
  let middle;
  if (max === 0) {
    middle = [];
  } else if (n === 0 || m === 0 || max > 40000) {
    middle = [...A.map((l) => ["-", l]), ...B.map((l) => ["+", l])];
  } else {
    const trace = [];
    let v = new Map([[1, 0]]);
    let found = false;
    for (let d = 0; d <= max && !found; d++) {
      trace.push(v);
      const next = new Map(v);
      for (let k = -d; k <= d; k += 2) {
        let x = k === -d || (k !== d && (v.get(k - 1) ?? -1) < (v.get(k + 1) ?? -1)) ? v.get(k + 1) ?? 0 : (v.get(k - 1) ?? 0) + 1;
        let y = x - k;
        while (x < n && y < m && A[x] === B[y]) {
          x++;
          y++;
        }
        next.set(k, x);
        if (x >= n && y >= m) {
          found = true;
          break;
        }
      }
      v = next;
    }
    trace.push(v);
    middle = [];
    let x = n;
    let y = m;
    for (let d = trace.length - 2; d > 0; d--) {
      const vd = trace[d];
      const k = x - y;
      const down = k === -d || (k !== d && (vd.get(k - 1) ?? -1) < (vd.get(k + 1) ?? -1));
      const prevK = down ? k + 1 : k - 1;
      const prevX = vd.get(prevK) ?? 0;
      const prevY = prevX - prevK;
      while (x > prevX && y > prevY) {
        x--;
        y--;
        middle.push([" ", A[x]]);
      }
      if (down) {
        y--;
        middle.push(["+", B[y]]);
      } else {
        x--;
        middle.push(["-", A[x]]);
      }
    }
    while (x > 0 && y > 0) {
      x--;
      y--;
      middle.push([" ", A[x]]);
    }
    middle.reverse();
  }
  return [...a.slice(0, start).map((l) => [" ", l]), ...middle, ...a.slice(endA).map((l) => [" ", l])];
}

function renderDiff(before, after) {
  const split = (t) => t.replace(/\r\n/g, "\n").split("\n");
  const ops = diffLines(split(before), split(after));
  const pre = $("diff");
  pre.textContent = "";
  const changed = ops.map((o) => o[0] !== " ");
  if (!changed.some(Boolean)) {
    pre.textContent = "No changes.";
    return;
  }
  const CONTEXT = 3;
  const show = ops.map((_, i) => changed.slice(Math.max(0, i - CONTEXT), i + CONTEXT + 1).some(Boolean));
  let hidden = 0;
  const frag = document.createDocumentFragment();
  ops.forEach(([op, line], i) => {
    if (!show[i]) {
      hidden++;
      return;
    }
    if (hidden) {
      const span = document.createElement("span");
      span.className = "hunk";
      span.textContent = `… ${hidden} unchanged line${hidden === 1 ? "" : "s"}`;
      frag.append(span);
      hidden = 0;
    }
    const span = document.createElement("span");
    span.className = op === "+" ? "add" : op === "-" ? "del" : "ctx";
    span.textContent = `${op} ${line}`;
    frag.append(span, op === " " ? "\n" : "");
  });
  if (hidden) frag.append(`… ${hidden} unchanged line${hidden === 1 ? "" : "s"}`);
  pre.append(frag);
}

function renderResults(results) {
  const body = $("results").querySelector("tbody");
  body.textContent = "";
  for (const r of results) {
    const tr = document.createElement("tr");
    const ref = r.resourceRef ? `${r.resourceRef.kind}/${r.resourceRef.namespace ? r.resourceRef.namespace + "/" : ""}${r.resourceRef.name}` : "";
    const cells = [r.severity, r.tags?.rule ?? "", ref, r.field?.path ?? (r.fieldPaths ?? []).join(", "), r.message];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 0) td.className = `sev-${r.severity}`;
      tr.append(td);
    });
    body.append(tr);
  }
  const problems = results.filter((r) => r.severity !== "info").length;
  $("results-count").textContent = `(${results.length}${problems ? `, ${problems} ⚠` : ""})`;
}

function update(ruleList) {
  const policy = policyFromSettings(ruleList);
  const extra = $("policy-extra").value;
  $("policy").textContent = toYaml(policy).trimStart() + "\n";
  const input = $("input").value;
  const error = $("error");
  try {
    // The policy text is the base; rule switches and enforce apply on top like the CLI's flags,
    // the other settings replace the base's values.
    const s = policy.spec;
    const options = { disable: s.disable ?? [], enable: s.enable ?? [], enforce: !!s.enforce };
    if ($("lock").value.trim()) options.lock = $("lock").value;
    const settings = Object.fromEntries(Object.entries(s).filter(([k]) => !["disable", "enable", "enforce"].includes(k)));
    let base = { spec: settings };
    if (extra.trim()) {
      base = parseYaml(extra) ?? {};
      if (base && typeof base === "object" && (base.kind ?? "HardeningPolicy") === "HardeningPolicy") {
        base.spec = { ...(base.spec ?? {}), ...settings };
      }
    }
    const out = harden(input, base, options);
    error.hidden = true;
    $("output").textContent = out.output;
    renderDiff(input, out.output);
    renderResults(out.results);
    const warnings = out.results.filter((r) => r.severity === "warning").length;
    const errors = out.results.filter((r) => r.severity === "error").length;
    const st = out.stats;
    $("summary").textContent = `${st.changed} of ${st.workloads} workloads changed (${st.changes} changes), ${warnings} warnings, ${errors} errors` +
      (out.hasErrors && out.form === "stream" ? " (the CLI would write nothing and exit 1)" : "");
    document.body.dataset.state = "done";
  } catch (e) {
    error.hidden = false;
    error.textContent = String(e.message ?? e);
    $("output").textContent = "";
    $("diff").textContent = "";
    renderResults([]);
    $("summary").textContent = "";
    document.body.dataset.state = "error";
  }
}

function selectTab(name) {
  for (const b of document.querySelectorAll("[role=tab]")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const p of document.querySelectorAll("[data-pane]")) p.hidden = p.dataset.pane !== name;
}

async function main() {
  await init({ module_or_path: new URL("./pkg/kube_harden_bg.wasm", import.meta.url) });
  $("version").textContent = `v${version()}`;
  const ruleList = rules();
  for (const r of ruleList) {
    const label = document.createElement("label");
    label.title = r.summary;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = `rule-${r.id}`;
    box.checked = r.defaultEnabled;
    label.append(box, ` ${r.id}`);
    $("rules").append(label);
  }
  const examples = window.KUBE_HARDEN_EXAMPLES ?? [];
  examples.forEach((ex, i) => {
    const opt = document.createElement("option");
    opt.value = String(i);
    opt.textContent = ex.title;
    $("example").append(opt);
  });
  const run = () => update(ruleList);
  let timer;
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(run, 150);
  };
  $("example").addEventListener("change", () => {
    const ex = examples[Number($("example").value)];
    if (!ex) return;
    $("input").value = ex.input;
    $("policy-extra").value = ex.config ?? "";
    $("lock").value = ex.lock ?? "";
    // No registry here: an example without a lock starts with pin-image-digests off.
    const pin = $("rule-pin-image-digests");
    if (pin) pin.checked = !!ex.lock;
    run();
  });
  $("input").addEventListener("input", later);
  $("policy-extra").addEventListener("input", later);
  $("lock").addEventListener("input", later);
  $("settings").addEventListener("change", run);
  for (const id of ["runAsUser", "runAsGroup", "fsGroup", "tmpSizeLimit", "writablePaths"]) $(id).addEventListener("input", later);
  for (const b of document.querySelectorAll("[role=tab]")) b.addEventListener("click", () => selectTab(b.dataset.tab));
  $("copy").addEventListener("click", () => navigator.clipboard?.writeText($("output").textContent));
  if (examples.length) {
    $("example").value = "0";
    $("example").dispatchEvent(new Event("change"));
  } else {
    run();
  }
  state.ready = true;
  document.body.dataset.ready = "true";
}

main().catch((e) => {
  $("error").hidden = false;
  $("error").textContent = `Could not start: ${e.message ?? e}`;
});
