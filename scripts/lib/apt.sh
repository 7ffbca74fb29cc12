# Sourced by the setup scripts: `apt_install WHO PACKAGE...` installs Debian packages with apt
# (as root, or with sudo), quietly and without recommends; exits with WHO's message when it cannot.
apt_install() {
    local who=$1
    shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$who: apt-get not found; install $* by other means" >&2
        exit 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "$who: not root and no sudo; cannot install $*" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # --no-install-recommends: only what is named (recommends would pull e.g. crun and buildah
    # along with podman).
    $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
