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

# --- timed steps and their summary (the check-* scripts) ----------------------
# netkit_step NAME COMMAND...: run one step, show its output, record its time
# and result in netkit_summary (and netkit_failed=1 when it fails); returns the
# command's status. A step may put lines in netkit_step_details (e.g. one per
# README command): they follow its line in the summary.
netkit_summary=()
netkit_failed=0
netkit_step_details=()
netkit_now() { date +%s.%N; }
netkit_since() { awk -v a="$1" -v b="$(netkit_now)" 'BEGIN { printf "%.1f s", b - a }'; }
netkit_step() {
    local name=$1 start status=0
    shift
    printf '\n=== %s\n' "$name"
    netkit_step_details=()
    start=$(netkit_now)
    "$@" || status=$?
    if [ "$status" -eq 0 ]; then
        netkit_summary+=("$(printf '%-4s %-62s %s' ok "$name" "$(netkit_since "$start")")")
    else
        netkit_summary+=("$(printf '%-4s %-62s %s (exit %s)' FAIL "$name" "$(netkit_since "$start")" "$status")")
        netkit_failed=1
    fi
    if [ "${#netkit_step_details[@]}" -gt 0 ]; then netkit_summary+=("${netkit_step_details[@]}"); fi
    netkit_step_details=()
    return "$status"
}

# netkit_print_summary TITLE STARTED: the steps' lines and the total since STARTED (netkit_now).
netkit_print_summary() {
    if [ "${#netkit_summary[@]}" -gt 0 ]; then
        printf '\n=== summary%s\n' "${1:+ ($1)}"
        printf '%s\n' "${netkit_summary[@]}"
        printf 'total %s\n' "$(netkit_since "$2")"
    fi
}

# netkit_sweep_stale NAME SCRIPT DIR...: a run killed before its cleanup (SIGKILL, a lost CI runner)
# leaves its work directory; remove each DIR whose run is gone (its run.pid names no live SCRIPT),
# never one kept on purpose (a "kept" file in it) nor one something is still mounted into.
netkit_sweep_stale() {
    local who=$1 script=$2 old
    shift 2
    for old in "$@"; do
        if [ ! -f "$old/run.pid" ] || [ -e "$old/kept" ]; then
            continue
        fi
        if ! grep -qsF "$script" "/proc/$(cat "$old/run.pid")/cmdline" && ! grep -qF " $old/" /proc/self/mountinfo; then
            netkit_say "$who" "removing $old, left by an earlier run that was killed"
            rm -rf --one-file-system "$old"
        fi
    done
}

# netkit_copy_repo DEST [HEAD]: the repository's files (tracked and untracked, not ignored) copied to
# DEST; with HEAD=1, the last commit's files instead.
netkit_copy_repo() {
    local dest=$1 head=${2:-0}
    mkdir -p "$dest"
    if [ "$head" = 1 ]; then
        git -C "$NETKIT_ROOT" archive --format=tar HEAD | tar -C "$dest" -xf -
        return
    fi
    git -C "$NETKIT_ROOT" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            if [ -e "$NETKIT_ROOT/$f" ]; then printf '%s\0' "$f"; fi
        done |
        tar -C "$NETKIT_ROOT" --null -T - -cf - | tar -C "$dest" -xf -
}

# netkit_nspawn_settings: append to the caller's nspawn_args the host's CA bundle for pip (PIP_CERT or
# REQUESTS_CA_BUNDLE, bound read-only) and its proxy, index and CI variables, so that a container
# reaches what the host reaches.
netkit_nspawn_settings() {
    local cert=${PIP_CERT:-${REQUESTS_CA_BUNDLE:-}} var
    if [ -n "$cert" ] && [ -r "$cert" ]; then
        nspawn_args+=(--bind-ro="$(readlink -f "$cert")":/etc/netkit-host-ca.pem
            --setenv=PIP_CERT=/etc/netkit-host-ca.pem)
    fi
    for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY PIP_INDEX_URL CI; do
        if [ -n "${!var:-}" ]; then nspawn_args+=(--setenv="$var=${!var}"); fi
    done
}

# netkit_nspawn NSPAWN_ARGS...: systemd-nspawn, with its stdin from /dev/null. nspawn keeps a scratch
# directory under /run/systemd/nspawn and, on exit, refuses to delete it unless it is on a tmpfs
# ("Attempted to remove disk file system ..."). Where /run is not a tmpfs (no systemd here), each
# nspawn gets its own tmpfs there, in a private mount namespace that vanishes with it.
netkit_nspawn() {
    mkdir -p /run/systemd/nspawn
    unshare --mount --propagation private -- bash -c '
        mount -t tmpfs -o mode=0755 netkit-nspawn /run/systemd/nspawn && exec "$@"' netkit_nspawn \
        systemd-nspawn "$@" </dev/null
}
