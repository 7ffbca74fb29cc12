#!/usr/bin/python3
"""Kubelet rules podman does not apply, checked on a manifest kube-harden wrote.

podman 4.3 runs a pod's containers but never verifies `runAsNonRoot`, and it fills an emptyDir
with what the image has at the mount path (the kubelet gives an empty directory). So before a
hardened manifest is played, this script applies both rules the way the kubelet does, against
the image itself (pulled and mounted with podman, independent of kube-harden's facts):

  static MANIFEST        runAsNonRoot verification (kubelet verifyRunAsNonRoot) and "no emptyDir
                         hides image content" for every container
  expect MANIFEST APP    what kube-harden must have decided for the suite's app APP (proves the
                         hardening happened, and that it left alone what would break the app)
  probes MANIFEST        after `play.sh --keep`: every probe in the manifest passes against the
                         running containers (tcpSocket/httpGet from the host, exec via podman exec)

Exit 0 when every check holds; each failure is printed.
"""
import functools
import json
import os
import socket
import subprocess
import sys
import urllib.request

import yaml


def pod_specs(path):
    """(name, pod spec) of every workload in the stream."""
    out = []
    for doc in yaml.safe_load_all(open(path)):
        if not doc:
            continue
        kind, spec = doc.get("kind"), doc.get("spec") or {}
        if kind == "Pod":
            out.append((doc["metadata"]["name"], spec))
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            out.append((doc["metadata"]["name"], (spec.get("template") or {}).get("spec") or {}))
    return out


def podman(*args, check=True):
    r = subprocess.run(["podman", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {r.stderr.strip()}")
    return r


@functools.lru_cache(maxsize=None)
def pull(image):
    """Pulls `image` once per run."""
    podman("pull", "-q", "--tls-verify=false", image)


def read_in_image(image, path, read):
    """`read(full_path)` on `path` inside the image's root filesystem (mounted for the call)."""
    pull(image)
    root = podman("image", "mount", image).stdout.strip()
    try:
        return read(os.path.join(root, path.lstrip("/")))
    finally:
        podman("image", "unmount", image, check=False)


def image_user(image):
    pull(image)
    out = podman("image", "inspect", image).stdout
    return (json.loads(out)[0].get("Config") or {}).get("User") or ""


def verify_run_as_non_root(pod, c, image):
    """The kubelet's verifyRunAsNonRoot: None when the container may start, else its error."""
    psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
    non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
    if not non_root:
        return None
    run_as = csc.get("runAsUser", psc.get("runAsUser"))
    if run_as is not None:
        return "container's runAsUser breaks non-root policy" if run_as == 0 else None
    user = image_user(image).split(":")[0]
    if user == "":
        return "container has runAsNonRoot and image will run as root"
    if not user.isdigit():
        return f"container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root"
    if int(user) == 0:
        return "container has runAsNonRoot and image will run as root"
    return None


def shipped(image, path):
    """What the image has at `path` (names), [] when nothing or no such directory."""
    return read_in_image(
        image, path, lambda full: sorted(os.listdir(full)) if os.path.isdir(full) else []
    )


def static(path):
    failures = []
    for name, pod in pod_specs(path):
        empty = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
        for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
            image = c["image"]
            err = verify_run_as_non_root(pod, c, image)
            if err:
                failures.append(f"{name}/{c['name']}: the kubelet refuses it: {err}")
            for m in c.get("volumeMounts") or []:
                if m["name"] in empty:
                    hidden = shipped(image, m["mountPath"])
                    if hidden:
                        failures.append(
                            f"{name}/{c['name']}: emptyDir at {m['mountPath']} hides what the image ships there: {hidden[:5]}"
                        )
    return failures


def get(d, dotted):
    for k in dotted.split("."):
        if isinstance(d, list):
            d = d[int(k)] if k.isdigit() and int(k) < len(d) else None
        elif isinstance(d, dict):
            d = d.get(k)
        else:
            return None
    return d


# What kube-harden must decide for each app of the suite, from the image facts it read:
# (field path under the pod spec, expected value; None = must be absent).
EXPECT = {
    # root, writes outside /tmp, binds port 80: stays root with a writable root filesystem.
    "nginx": [
        ("securityContext.runAsNonRoot", None),
        ("containers.0.securityContext.readOnlyRootFilesystem", None),
        ("containers.0.securityContext.capabilities", None),
        ("securityContext.seccompProfile.type", "RuntimeDefault"),
    ],
    # root whose data dir belongs to redis: keeps its capabilities (DAC_OVERRIDE).
    "redis": [
        ("securityContext.runAsNonRoot", None),
        ("containers.0.securityContext.capabilities", None),
        ("containers.0.securityContext.readOnlyRootFilesystem", None),
    ],
    # USER memcache (a name): the numeric uid from the image's passwd, then everything.
    "memcached": [
        ("securityContext.runAsNonRoot", True),
        ("containers.0.securityContext.runAsUser", "uid-of:memcache"),
        ("containers.0.securityContext.readOnlyRootFilesystem", True),
        ("containers.0.securityContext.capabilities.drop", ["ALL"]),
        ("containers.0.securityContext.allowPrivilegeEscalation", False),
        ("containers.0.volumeMounts.0.mountPath", "/tmp"),
    ],
    # USER 10001 (numeric, no passwd entry).
    "numeric": [
        ("securityContext.runAsNonRoot", True),
        ("containers.0.securityContext.readOnlyRootFilesystem", True),
        ("containers.0.securityContext.capabilities.drop", ["ALL"]),
        ("containers.0.volumeMounts.0.mountPath", "/tmp"),
    ],
    # Ships its site in /tmp, which its user can write: no emptyDir there, root stays writable.
    "tmpsite": [
        ("securityContext.runAsNonRoot", True),
        ("containers.0.securityContext.capabilities.drop", ["ALL"]),
        ("containers.0.securityContext.readOnlyRootFilesystem", None),
        ("containers.0.volumeMounts", None),
    ],
    # HEALTHCHECK: exec probes running the image's own check.
    "health": [
        ("securityContext.runAsNonRoot", True),
        ("containers.0.securityContext.readOnlyRootFilesystem", True),
        ("containers.0.livenessProbe.exec.command.0", "busybox"),
        ("containers.0.readinessProbe.exec.command.0", "busybox"),
    ],
    # VOLUME /data owned by its user: an emptyDir there besides /tmp, read-only root.
    "volume": [
        ("securityContext.runAsNonRoot", True),
        ("containers.0.securityContext.readOnlyRootFilesystem", True),
        ("containers.0.volumeMounts.1.mountPath", "/data"),
    ],
}


def expect(path, app):
    failures = []
    specs = pod_specs(path)
    if len(specs) != 1:
        return [f"{app}: expected one workload, found {len(specs)}"]
    name, pod = specs[0]
    for field, want in EXPECT[app]:
        got = get(pod, field)
        if isinstance(want, str) and want.startswith("uid-of:"):
            image = pod["containers"][0]["image"]
            passwd = read_in_image(image, "/etc/passwd", lambda full: open(full).read())
            user = want.split(":", 1)[1]
            want = next(int(l.split(":")[2]) for l in passwd.splitlines() if l.split(":")[0] == user)
        if got != want:
            failures.append(f"{app}: {field} is {got!r}, expected {want!r}")
    return failures


def port_of(c, port):
    if isinstance(port, int):
        return port
    for p in c.get("ports") or []:
        if p.get("name") == port:
            return p["containerPort"]
    raise ValueError(f"no port named {port}")


def container_name(container):
    names = podman("ps", "--format", "{{.Names}}").stdout.split()
    match = [n for n in names if n.endswith("-" + container)]
    if len(match) != 1:
        raise RuntimeError(f"container {container}: running are {names}")
    return match[0]


def probes(path):
    failures = []
    for name, pod in pod_specs(path):
        for c in pod.get("containers") or []:
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = c.get(kind)
                if not probe:
                    continue
                where = f"{name}/{c['name']} {kind}"
                try:
                    if "tcpSocket" in probe:
                        port = port_of(c, probe["tcpSocket"]["port"])
                        socket.create_connection(("127.0.0.1", port), timeout=3).close()
                    elif "httpGet" in probe:
                        g = probe["httpGet"]
                        url = f"http://127.0.0.1:{port_of(c, g['port'])}{g.get('path', '/')}"
                        urllib.request.urlopen(url, timeout=3).read()
                    elif "exec" in probe:
                        r = podman("exec", container_name(c["name"]), *probe["exec"]["command"], check=False)
                        if r.returncode != 0:
                            failures.append(f"{where}: exec exited {r.returncode}: {r.stderr.strip()}")
                            continue
                    else:
                        failures.append(f"{where}: unknown probe {probe}")
                        continue
                    print(f"kubelet-checks: {where} passes")
                except Exception as e:  # noqa: BLE001 - any failure is the probe failing
                    failures.append(f"{where}: {e}")
    return failures


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "static":
        failures = static(path)
    elif mode == "expect":
        failures = expect(path, sys.argv[3])
    elif mode == "probes":
        failures = probes(path)
    else:
        print(f"kubelet-checks: unknown mode {mode}", file=sys.stderr)
        return 2
    for f in failures:
        print(f"kubelet-checks: FAIL {f}")
    if not failures:
        print(f"kubelet-checks: {mode} {os.path.basename(path)}: ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
