// Generated from the HardeningPolicy schema by `kube_harden::typescript`; do not edit.
// `UPDATE_GOLDEN=1 cargo test --test typescript` rewrites it.

/** Settings. Every field is optional; no policy at all means these defaults. */
export interface HardeningPolicySpec {
  /** Rule ids to switch on (for rules that are off by default, or to undo a `disable`). */
  enable?: string[];
  /** Rule ids to switch off. */
  disable?: string[];
  /** Overwrite explicit values that fail Pod Security "restricted", where the API server would
   * still accept the result. Off by default: explicit values are the user's decision. */
  enforce?: boolean;
  /** Pod `securityContext.runAsUser` to add where none is set (run-as-non-root). */
  runAsUser?: number;
  /** Pod `securityContext.runAsGroup` to add where none is set (run-as-non-root). */
  runAsGroup?: number;
  /** Pod `securityContext.fsGroup` to add where none is set (run-as-non-root). */
  fsGroup?: number;
  /** `sizeLimit` of each emptyDir added by writable-tmp (default `64Mi`). */
  tmpSizeLimit?: string;
  /** Extra writable paths (besides `/tmp`) that writable-tmp mounts as emptyDirs into every
   * container with a read-only root filesystem, e.g. `/var/cache/nginx`. */
  writablePaths?: string[];
  /** Timings and HTTP paths of the probes default-probes adds. */
  probes?: ProbeSettings;
  /** The budget pod-disruption-budget generates. */
  podDisruptionBudget?: DisruptionBudgetSettings;
  /** Extra workload kinds whose pod template kube-harden should harden. */
  workloads?: ExtraWorkload[];
  /** How pin-image-digests resolves images. */
  images?: ImageSettings;
  /** What rules do for a container whose image kube-harden has no facts about (no lock entry
   * with facts, nothing in `images.facts`): `skip` (default) leaves out every change that could
   * stop it from starting (runAsNonRoot without a known non-zero runAsUser, capabilities.drop
   * ALL, allowPrivilegeEscalation false for a non-root user, a read-only root filesystem) and
   * reports each with the fix; `harden` makes them anyway. */
  unknownImages?: UnknownImages;
  /** Which results a run reports: `problems` (warnings and errors, one per object and rule;
   * the default), `changes` (also one info result per changed or generated object saying what
   * was hardened) or `all` (also one info result per object and rule for every change and
   * every deliberate decision, with the field paths). `--verbosity` wins; `--results FILE`
   * defaults to `all`. */
  verbosity?: Verbosity;
}

/** Settings of default-probes. */
export interface ProbeSettings {
  /** Readiness probe timings (default: period 10 s, timeout 3 s, failureThreshold 3). */
  readiness?: ProbeTiming;
  /** Liveness probe timings (default: period 20 s, timeout 5 s, failureThreshold 6), more
   * tolerant than readiness because a failed liveness probe restarts the container. */
  liveness?: ProbeTiming;
  /** Startup probe timings (default: period 10 s, timeout 5 s, failureThreshold 30: five
   * minutes of first-boot grace before liveness takes over). */
  startup?: ProbeTiming;
  /** HTTP paths for probes: a matching container gets `httpGet` on this path instead of
   * `tcpSocket`. The first matching entry wins; the annotation
   * `kube-harden.dev/probe-path.<container>` on the workload or pod template wins over all. */
  httpPaths?: ProbeHttpPath[];
}

/** Probe timings; unset fields take the probe's default. */
export interface ProbeTiming {
  /** `initialDelaySeconds` (default: not set, the startup probe covers slow starts). */
  initialDelaySeconds?: number;
  /** `periodSeconds`. */
  periodSeconds?: number;
  /** `timeoutSeconds`. */
  timeoutSeconds?: number;
  /** `failureThreshold`. */
  failureThreshold?: number;
}

/** An HTTP path for the probes of matching containers; unset selectors match everything. */
export interface ProbeHttpPath {
  /** Workload kind, e.g. `Deployment`. */
  kind?: string;
  /** Workload name (`metadata.name`). */
  name?: string;
  /** Workload namespace. */
  namespace?: string;
  /** Container name. */
  container?: string;
  /** The path, e.g. `/healthz`. */
  path: string;
}

/** Settings of pod-disruption-budget. Give at most one of `maxUnavailable` and `minAvailable`. */
export interface DisruptionBudgetSettings {
  /** Pods that may be down at once (default 1). 0 or 0% is refused: it blocks every drain. */
  maxUnavailable?: IntOrPercent;
  /** Pods that must stay up, instead of `maxUnavailable`. 100% is refused: it blocks every
   * drain. */
  minAvailable?: IntOrPercent;
  /** `AlwaysAllow` (default: a crash-looping pod never blocks a drain) or `IfHealthyBudget`. */
  unhealthyPodEvictionPolicy?: string;
}

/** An integer or a percentage such as `"25%"`, as PodDisruptionBudgets take them. */
export type IntOrPercent = number | string;

/** A custom resource that embeds a pod template. */
export interface ExtraWorkload {
  /** `group/version` of the kind; a version of `*` (e.g. `example.com/*`) matches any version. */
  apiVersion: string;
  /** The kind. */
  kind: string;
  /** Dotted path to the PodTemplateSpec (the object with `metadata` and `spec`), e.g.
   * `spec.template`. */
  podTemplatePath?: string;
  /** Dotted path to a bare PodSpec, for kinds that embed one without a template. */
  podSpecPath?: string;
  /** Whether its pods run until deleted (default true): then default-probes adds probes and
   * pod-disruption-budget considers it. Set false for run-to-completion kinds. */
  longRunning?: boolean;
  /** Dotted path to the replica count (default `spec.replicas`), for pod-disruption-budget. */
  replicasPath?: string;
  /** Dotted path to the label selector (default `spec.selector`), for pod-disruption-budget. */
  selectorPath?: string;
}

/** Settings of pin-image-digests. */
export interface ImageSettings {
  /** Pin this platform's manifest (`linux/amd64`, `linux/arm64/v8`) instead of the
   * multi-arch index. Pods whose `spec.os.name` or `kubernetes.io/os`/`kubernetes.io/arch`
   * node selector names another platform keep the index digest. */
  platform?: string;
  /** What an image that cannot be pinned does: `fail` (default: error, nothing written) or
   * `warn` (the tag stays, a warning says why). */
  onUnresolved?: OnUnresolved;
  /** Ask the registry whether digests already written in the manifests exist (an error when
   * one does not). Same as `--verify-digests`. */
  verifyDigests?: boolean;
  /** Registries (`host` or `host:port`) reached over plain HTTP instead of TLS. */
  insecureRegistries?: string[];
  /** Digests given in the policy itself, in the entry format of an `ImageLock` file. They are
   * asked before the lock file and the registry (the only source besides a lock in WASM). */
  digests?: DigestEntry[];
  /** Image fields of custom resources to pin, besides every container image of every pod. */
  fields?: ImageField[];
  /** Image facts stated in the policy (for images that cannot be pulled, or to correct what the
   * lock records). See `docs/image-facts.md`. */
  facts?: StatedFacts[];
  /** Most decompressed layer bytes `kube-harden lock` reads per image for its filesystem
   * facts (`1Gi` by default; `512Mi`, `2G` or a number of bytes). Past it the filesystem
   * facts are recorded as unknown. */
  layerBudget?: string;
  /** One deadline in seconds for all registry traffic of a run, retries and backoff included
   * (default 30; `--registry-timeout` wins). A run that reaches it fails closed, naming it. */
  registryTimeoutSeconds?: number;
}

/** What to do with an image that cannot be pinned. */
export type OnUnresolved = "fail" | "warn";

/** A digest given in the policy. */
export interface DigestEntry {
  /** The image as written in the manifests, without digest (`nginx:1.27`). */
  image: string;
  /** `os/arch[/variant]` when `digest` names that platform's manifest rather than the index. */
  platform?: string;
  /** `sha256:` and 64 lowercase hex digits. */
  digest: string;
}

/** An image field of a custom resource. */
export interface ImageField {
  /** `group/version` of the kind; a version of `*` (e.g. `example.com/*`) matches any version. */
  apiVersion: string;
  /** The kind. */
  kind: string;
  /** Dotted path to a field holding an image reference; `[*]` (or `*`) stands for every item
   * of a list, e.g. `spec.image` or `spec.workers[*].image`. */
  path: string;
}

/** Facts about an image stated in the policy: they fill in or override what the lock records. */
export interface StatedFacts {
  /** The image: `name:tag` (that tag), `name@sha256:…` (that digest) or `name` (every tag). */
  image: string;
  /** The facts; each field given replaces the lock's. */
  facts: ImageFacts;
}

/** What is known about one image (one platform's manifest). `None` everywhere means unknown. */
export interface ImageFacts {
  /** The platform (`os/arch[/variant]`) whose manifest these facts describe, when the lock
   * entry is a multi-arch index. */
  platform?: string;
  /** The image config's `User` as written (`""`: not set, which means root). */
  user?: string;
  /** The numeric uid the image runs as: `User` itself when numeric, else its `/etc/passwd`
   * entry. */
  uid?: number;
  /** The numeric primary gid: the group part of `User`, else the user's `/etc/passwd` group. */
  gid?: number;
  /** Supplementary gids of the user (`/etc/group` memberships). */
  groups?: number[];
  /** `ExposedPorts` (`8080/tcp`, `53/udp`). */
  exposedPorts?: string[];
  /** `Volumes` (paths). */
  volumes?: string[];
  /** `Healthcheck`, when the image has one (`NONE` is recorded as absent). */
  healthcheck?: Healthcheck;
  /** `WorkingDir`. */
  workingDir?: string;
  /** `Entrypoint`. */
  entrypoint?: string[];
  /** `Cmd`. */
  cmd?: string[];
  /** The `PATH` of the image's `Env` (how a bare command name is found). */
  path?: string;
  /** Facts from the layers; absent when they were not read (or could not be, see `unknown`). */
  filesystem?: FsFacts;
  /** Facts that could not be learned, each with the reason (`filesystem: layer budget of
   * 1 GiB exceeded`). */
  unknown?: string[];
}

/** A Docker `HEALTHCHECK`. */
export interface Healthcheck {
  /** `["CMD", arg…]` (exec form) or `["CMD-SHELL", command]`. */
  test: string[];
  /** Seconds between checks (Docker's default 30 when absent). */
  intervalSeconds?: number;
  /** Seconds one check may take (Docker's default 30 when absent). */
  timeoutSeconds?: number;
  /** Seconds after start during which failures do not count (default 0). */
  startPeriodSeconds?: number;
  /** Consecutive failures that make the container unhealthy (Docker's default 3). */
  retries?: number;
}

/** Facts read from the image's layers (top layer first, whiteouts honoured). */
export interface FsFacts {
  /** Every directory someone other than root can write (owner not 0, or group/other write
   * bits), plus `/tmp`, the image's `Volumes` and any path asked about when the lock was
   * written, sorted by path. A path that is not listed is a root-only directory, or was not
   * asked about. */
  dirs?: DirFact[];
  /** Regular files with the setuid or setgid bit or a `security.capability` xattr. */
  privilegedFiles?: PrivilegedFile[];
}

/** One directory of the image. */
export interface DirFact {
  /** Absolute path, no trailing slash. */
  path: string;
  /** Owner uid; absent when the image has no such directory. */
  uid?: number;
  /** Owner gid. */
  gid?: number;
  /** Permission bits in octal (`"1777"`, `"0755"`). */
  mode?: string;
  /** True when the image ships anything inside it (an emptyDir there would hide it). */
  files?: boolean;
}

/** A file whose execution gains privileges. */
export interface PrivilegedFile {
  /** Absolute path. */
  path: string;
  /** The setuid bit. */
  setuid?: boolean;
  /** The setgid bit. */
  setgid?: boolean;
  /** A `security.capability` xattr (file capabilities). */
  capabilities?: boolean;
}

/** What to do for a container whose image facts are unknown. */
export type UnknownImages = "skip" | "harden";

/** Which results a run reports (warnings and errors always). */
export type Verbosity = "problems" | "changes" | "all";
