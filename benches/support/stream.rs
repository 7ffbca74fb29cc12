//! The benchmark stream: N Deployments + N Services + N ConfigMaps as a Helm chart renders
//! them, as a plain multi-document stream or as the `ResourceList` `kpt fn source` writes for the
//! same objects (its path/index annotations on every item), and the image lock that pins every
//! image of it (synthetic digests; no registry is asked).

use std::fmt::Write as _;

/// One object of the stream: its kind's template with `i`, and the annotations `kpt fn source`
/// would add (empty for the plain stream).
fn object(s: &mut String, kind: usize, i: usize, extra: &str) {
    let ns = i % 7;
    match kind {
        0 => write!(s, "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: team-{ns}\n  labels:\n    app.kubernetes.io/name: app-{i}\n    app.kubernetes.io/instance: release\n    app.kubernetes.io/managed-by: Helm\n    helm.sh/chart: app-1.2.3\n  annotations:\n    deployment.kubernetes.io/revision: \"3\"\n    feature.example.com/enabled: \"on\"\n{extra}spec:\n  replicas: 3\n  revisionHistoryLimit: 5\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: app-{i}\n      app.kubernetes.io/instance: release\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: app-{i}\n        app.kubernetes.io/instance: release\n    spec:\n      serviceAccountName: app-{i}\n      containers:\n      - name: app\n        image: registry.example.com/team/app-{i}:1.2.{i}\n        imagePullPolicy: IfNotPresent\n        args: [\"--port=8080\", \"--log-level=info\"]\n        env:\n        - name: MODE\n          value: \"production\"\n        - name: VERBOSE\n          value: \"yes\"\n        - name: POD_NAME\n          valueFrom:\n            fieldRef:\n              fieldPath: metadata.name\n        ports:\n        - name: http\n          containerPort: 8080\n          protocol: TCP\n        - name: metrics\n          containerPort: 9090\n          protocol: TCP\n        resources:\n          limits:\n            cpu: 500m\n            memory: 256Mi\n          requests:\n            cpu: 100m\n            memory: 128Mi\n        volumeMounts:\n        - name: config\n          mountPath: /etc/app\n          readOnly: true\n      volumes:\n      - name: config\n        configMap:\n          name: app-{i}\n          defaultMode: 0644\n"),
        1 => write!(s, "apiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\n  namespace: team-{ns}\n  labels:\n    app.kubernetes.io/name: app-{i}\n    app.kubernetes.io/instance: release\n{}{extra}spec:\n  type: ClusterIP\n  ports:\n  - name: http\n    port: 80\n    targetPort: http\n    protocol: TCP\n  - name: metrics\n    port: 9090\n    targetPort: metrics\n    protocol: TCP\n  selector:\n    app.kubernetes.io/name: app-{i}\n    app.kubernetes.io/instance: release\n", if extra.is_empty() { "" } else { "  annotations:\n" }),
        _ => write!(s, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{i}\n  namespace: team-{ns}\n  labels:\n    app.kubernetes.io/name: app-{i}\n{}{extra}data:\n  app.properties: |\n    server.port=8080\n    server.shutdown=graceful\n    feature.alpha=true\n    feature.beta=false\n    cache.size=512\n    name=app-{i}\n  logging.yaml: |\n    level: info\n    format: json\n    outputs:\n      - stdout\n  enabled: \"on\"\n  mode: \"0777\"\n  settings.json: '{{\"retries\": 3, \"backoff\": [1, 2, 4], \"name\": \"app-{i}\"}}'\n", if extra.is_empty() { "" } else { "  annotations:\n" }),
    }
    .unwrap();
}

const KINDS: [&str; 3] = ["deployment", "service", "configmap"];

/// The plain stream, each document with Helm's `# Source:` comment.
pub fn generate(n: usize) -> String {
    let mut s = String::with_capacity(n * 3200);
    for i in 0..n {
        for (kind, name) in KINDS.iter().enumerate() {
            write!(s, "---\n# Source: app/templates/{name}-{i}.yaml\n").unwrap();
            object(&mut s, kind, i, "");
        }
    }
    s
}

/// The same objects as one `ResourceList`, the way `kpt fn source` writes a package whose files
/// are `<kind>-<i>.yaml`: every item indented under `items:` and carrying kpt's path and index
/// annotations.
pub fn resource_list(n: usize) -> String {
    let mut s = String::with_capacity(n * 4400);
    s.push_str("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n");
    let mut item = String::with_capacity(4096);
    for i in 0..n {
        for (kind, name) in KINDS.iter().enumerate() {
            let extra = format!(
                "    config.kubernetes.io/index: '0'\n    config.kubernetes.io/path: '{name}-{i}.yaml'\n    internal.config.kubernetes.io/index: '0'\n    internal.config.kubernetes.io/path: '{name}-{i}.yaml'\n    internal.config.kubernetes.io/seqindent: 'compact'\n"
            );
            item.clear();
            object(&mut item, kind, i, &extra);
            for (k, line) in item.lines().enumerate() {
                s.push_str(if k == 0 { "- " } else { "  " });
                s.push_str(line);
                s.push('\n');
            }
        }
    }
    s
}

/// An image lock pinning every image of `generate(n)` / `resource_list(n)`.
pub fn lock(n: usize) -> String {
    let mut lock = String::from("apiVersion: kube-harden.dev/v1alpha1\nkind: ImageLock\nimages:\n");
    for i in 0..n {
        writeln!(
            lock,
            "- image: registry.example.com/team/app-{i}:1.2.{i}\n  digest: sha256:{i:064x}"
        )
        .unwrap();
    }
    lock
}
