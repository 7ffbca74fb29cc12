// Type-checked (not run) by wasm/test.sh with `tsc -p wasm/tests`: the npm package's TypeScript
// types describe the API, and reject wrong uses (each @ts-expect-error must be an error).
import { harden, parseYaml, rules, docs, schema, version } from "kube-harden";
import type { HardenResult, HardeningPolicyInput, KrmResult, RuleInfo } from "kube-harden";
import init, { harden as webHarden } from "kube-harden/web";

const policy: HardeningPolicyInput = { spec: { disable: ["seccomp"], runAsUser: 10001, writablePaths: ["/run"] } };
const result: HardenResult = harden("apiVersion: v1\nkind: Pod\n", policy);
const output: string = result.output;
const first: KrmResult | undefined = result.results[0];
const severity: "info" | "warning" | "error" | undefined = first?.severity;
const form: "stream" | "resourceList" = result.form;
const changes: number = result.stats.changes + result.stats.workloads;
const failed: boolean = result.hasErrors;
const yaml: string = result.resultsYaml;
harden("x", "spec:\n  enforce: true\n");
harden("x");
harden("x", null, { enforce: true, disable: ["writable-tmp"], enable: [] });
const list: RuleInfo[] = rules();
const ids: string[] = list.filter((r) => r.defaultEnabled).map((r) => r.id);
const text: string = docs("seccomp") + docs() + schema() + version();
const parsed: unknown = parseYaml("a: 1\n");

async function inBrowser(): Promise<string> {
  await init();
  return webHarden("x", { spec: {} }).output;
}

// @ts-expect-error the input is a string
harden(42);
// @ts-expect-error runAsUser is a number
harden("x", { spec: { runAsUser: "root" } });
// @ts-expect-error no such option
harden("x", null, { enforced: true });
// @ts-expect-error severities are a closed set
const bad: boolean = first?.severity === "fatal";

export { output, severity, form, changes, failed, yaml, ids, text, parsed, inBrowser, bad };
