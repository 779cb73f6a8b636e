# shellcheck shell=bash
# Helpers shared by netkit's scripts; sourced, never run.
#
# After sourcing, NETKIT_ROOT is the repository root (the parent of scripts/),
# whatever the caller's working directory.
#
# Environment:
#   NETKIT_VERBOSE=1   show the full output of apt-get and pip instead of one
#                      line per step.

# shellcheck disable=SC2034  # used by the scripts that source this file
NETKIT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

# Variables kept across the sudo re-exec: proxy, CA and index settings for pip,
# pytest's own, and ours.
NETKIT_SUDO_KEEP=PIP_CERT,REQUESTS_CA_BUNDLE,PIP_INDEX_URL,PIP_EXTRA_INDEX_URL
NETKIT_SUDO_KEEP=$NETKIT_SUDO_KEEP,PIP_TRUSTED_HOST,PIP_FIND_LINKS,PIP_NO_INDEX
NETKIT_SUDO_KEEP=$NETKIT_SUDO_KEEP,http_proxy,https_proxy,no_proxy
NETKIT_SUDO_KEEP=$NETKIT_SUDO_KEEP,HTTP_PROXY,HTTPS_PROXY,NO_PROXY
NETKIT_SUDO_KEEP=$NETKIT_SUDO_KEEP,PYTEST_ADDOPTS,PYTEST_TIMEOUT,CI,NETKIT_VERBOSE

# Tools such as ip, nft and tcpdump live in sbin, which a non-login root shell
# may not have on PATH.
case ":$PATH:" in
*:/usr/sbin:*) ;;
*) PATH=$PATH:/usr/sbin:/sbin ;;
esac
export PATH

# netkit_say NAME MESSAGE...: one progress line, prefixed with the step's owner.
netkit_say() {
    local who=$1
    shift
    printf '%s: %s\n' "$who" "$*"
}

# Exit statuses, as in docs/cli.md's table (the netkit command's own): 1 is
# reserved for a failed proof (a test or a scenario failed); a script exits 2
# for input it cannot use (a bad argument: netkit_die) and 4 when it cannot
# run here (not root and no sudo, a package that will not install, a machine
# netkit cannot run on: netkit_cannot_run), kselftest's skip.
NETKIT_EXIT_BAD_INPUT=2
NETKIT_EXIT_CANNOT_RUN_HERE=4

# netkit_die NAME MESSAGE...: print an error to stderr and exit 2 (bad input:
# an argument, a file or a setting the script cannot use).
netkit_die() {
    local who=$1
    shift
    printf '%s: error: %s\n' "$who" "$*" >&2
    exit "$NETKIT_EXIT_BAD_INPUT"
}

# netkit_cannot_run NAME MESSAGE...: print an error to stderr and exit 4
# (cannot run here: this machine or user, not the arguments).
netkit_cannot_run() {
    local who=$1
    shift
    printf '%s: error: %s\n' "$who" "$*" >&2
    exit "$NETKIT_EXIT_CANNOT_RUN_HERE"
}

# netkit_as_root SCRIPT [ARGS...]: return if we are root; otherwise run
# SCRIPT again through sudo (never returns), or fail with a clear message
# (exit 4, cannot run here: not root and no sudo).
# netkit creates network namespaces, which needs root (CAP_SYS_ADMIN and
# CAP_NET_ADMIN), and so does installing apt packages.
netkit_as_root() {
    local script=$1
    shift
    if [ "$(id -u)" -eq 0 ]; then
        return 0
    fi
    if command -v sudo >/dev/null 2>&1; then
        exec sudo --preserve-env="$NETKIT_SUDO_KEEP" -- bash "$script" "$@"
    fi
    netkit_cannot_run "$(basename "$script")" \
        "netkit must run as root (it creates network namespaces and installs" \
        "packages) and sudo is not installed; run this again as root" \
        "(e.g. su -c '$script${*:+ $*}')."
}

# netkit_quiet NAME DESCRIPTION COMMAND [ARGS...]: run COMMAND with its output
# kept in a log; print the log's tail only if it fails (then exit 4, cannot
# run here: the machine could not be made ready).  With NETKIT_VERBOSE=1 the output goes straight to the terminal.
netkit_quiet() {
    local who=$1 what=$2 log status=0
    shift 2
    if [ "${NETKIT_VERBOSE:-0}" = 1 ]; then
        "$@" || netkit_cannot_run "$who" "$what failed (exit $?): $*"
        return 0
    fi
    log=$(mktemp "${TMPDIR:-/tmp}/netkit-log.XXXXXX")
    "$@" >"$log" 2>&1 </dev/null || status=$?
    if [ "$status" -ne 0 ]; then
        printf '%s: error: %s failed (exit %s): %s\n' "$who" "$what" "$status" "$*" >&2
        printf '%s: last lines of its output:\n' "$who" >&2
        tail -n 40 "$log" | sed 's/^/    /' >&2
        rm -f "$log"
        exit "$NETKIT_EXIT_CANNOT_RUN_HERE"
    fi
    rm -f "$log"
}
