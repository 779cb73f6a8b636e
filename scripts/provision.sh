#!/usr/bin/env bash
# Make this machine ready to run netkit: system tools, then a virtual
# environment in <repo>/.venv with netkit installed (editable, with the `test`
# and `docs` extras), the `netkit` command in /usr/local/bin, then `netkit
# doctor` to prove that netkit can run here. Exits 4 (cannot run here) when a
# tool cannot be installed or doctor finds that netkit cannot run, 2 for a bad
# argument.
#
# Usage: scripts/provision.sh [--no-doctor]
#   --no-doctor  skip the final `netkit doctor`, e.g. when building an image
#                where network namespaces cannot be created yet.
#
# Works on a fresh Debian 12 or 13 machine or container that has only
# python3. Idempotent and fast when everything is already there: apt is asked
# (and its lists updated) only when a tool is missing, and pip runs only when
# pyproject.toml changed since the last install (a hash kept in
# .venv/.netkit-installed). Runs from any working directory; re-runs itself
# through sudo when not root.
#
# Environment:
#   PIP_CERT or REQUESTS_CA_BUNDLE  a CA bundle for a proxy that intercepts
#                                   TLS; passed to pip as --cert.
#   NETKIT_VERBOSE=1                full apt-get and pip output.
set -eu
set -o pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
netkit_as_root "$NETKIT_ROOT/scripts/provision.sh" "$@"

export DEBIAN_FRONTEND=noninteractive
me=provision
venv=$NETKIT_ROOT/.venv
stamp=$venv/.netkit-installed

doctor=1
while [ "$#" -gt 0 ]; do
    case "$1" in
    --no-doctor) doctor=0; shift ;;
    -h | --help) sed -n '/^# Usage:/,/^#  *where network/s/^# \{0,1\}//p' "$NETKIT_ROOT/scripts/provision.sh"; exit 0 ;;
    *) netkit_die "$me" "unknown argument: $1 (usage: scripts/provision.sh [--no-doctor])" ;;
    esac
done

# --- 1. system packages -----------------------------------------------------
# Each package is checked by what netkit uses from it, so a machine that has
# the tools by other means is left alone.
missing=()
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# netkit starts programs in a namespace with `setpriv --pdeathsig KILL --
# nsenter --net=...`.
{ command -v nsenter && command -v setpriv; } >/dev/null 2>&1 || missing+=(util-linux)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
# A real server with its own keepalive setting, for the `netkit check-server`
# tests; they run it in the foreground inside a lab namespace, never as a
# service (see below).
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# socat, a second real program with its own keepalive options (keepidle=...,
# keepintvl=..., keepcnt=...), for the `netkit inspect` and `check-client` tests.
command -v socat >/dev/null 2>&1 || missing+=(socat)
# Real clients for the `netkit check-client` tests and docs/check-client.md: psql
# (libpq's keepalives_* and tcp_user_timeout; the client only, no database
# server) and curl (--keepalive-time).
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The HTML report's browser tests (tests/test_report_browser.py) and
# scripts/render-html-report: Chromium, driven through its own chromedriver.
{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || missing+=(chromium chromium-driver)
case "$(dpkg-query -W -f='${Status}' ca-certificates 2>/dev/null || true)" in
*" installed") ;;
*) missing+=(ca-certificates) ;;
esac

if [ "${#missing[@]}" -eq 0 ]; then
    netkit_say "$me" "system packages present"
else
    command -v apt-get >/dev/null 2>&1 ||
        netkit_cannot_run "$me" "missing ${missing[*]} and there is no apt-get;" \
            "install them with this system's package manager"
    netkit_say "$me" "installing ${missing[*]}"
    netkit_quiet "$me" "apt-get update" apt-get update
    # Installing must start no service on this machine (redis-server's would
    # listen on the host). Debian's maintainer scripts ask policy-rc.d first:
    # exit 101 denies; one is in place during the install if there is none.
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# netkit provisioning: start no service while installing\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=1
        trap 'rm -f "$policy"' EXIT
    fi
    netkit_quiet "$me" "apt-get install" \
        apt-get install -y --no-install-recommends "${missing[@]}"
    if [ "$own_policy" = 1 ]; then
        rm -f "$policy"
        trap - EXIT
    fi
    # ... nor at the next boot (update-rc.d disables the systemd unit too).
    case " ${missing[*]} " in
    *" redis-server "*) update-rc.d redis-server disable >/dev/null 2>&1 || true ;;
    esac
fi

# --- 2. virtual environment -------------------------------------------------
# A venv whose interpreter no longer runs (python upgraded or removed) or that
# has no pip (created before python3-venv was installed) is made anew.
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import pip' >/dev/null 2>&1; then
    netkit_say "$me" "virtual environment $venv present"
else
    netkit_say "$me" "creating virtual environment $venv"
    rm -rf "$venv"
    netkit_quiet "$me" "python3 -m venv" python3 -m venv "$venv"
fi

# --- 3. netkit into the venv ------------------------------------------------
want=$(sha256sum "$NETKIT_ROOT/pyproject.toml" | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$want" = "$have" ] && [ -x "$venv/bin/netkit" ]; then
    netkit_say "$me" "netkit installed and pyproject.toml unchanged"
else
    pip_args=(install --disable-pip-version-check --quiet --editable "${NETKIT_ROOT}[test,docs]")
    cert=${PIP_CERT:-${REQUESTS_CA_BUNDLE:-}}
    if [ -n "$cert" ]; then
        [ -r "$cert" ] || netkit_die "$me" "CA bundle $cert (from PIP_CERT or REQUESTS_CA_BUNDLE) is not readable"
        pip_args+=(--cert "$cert")
    fi
    netkit_say "$me" "installing netkit and its dependencies with pip${cert:+ (CA: $cert)}"
    rm -f "$stamp"
    # This distribution was called "netkit" before it became netkit-tcp (PyPI's netkit is another project): a
    # venv made then drops the old one, so that one distribution owns the `netkit` command and the pytest plugin.
    # From / so that pip does not take a netkit.egg-info in the working directory for an installed distribution.
    if env -C / "$venv/bin/python" -m pip show netkit >/dev/null 2>&1; then
        netkit_quiet "$me" "pip uninstall netkit (the old name)" \
            env -C / "$venv/bin/python" -m pip uninstall --disable-pip-version-check --yes netkit
        rm -rf "$NETKIT_ROOT/netkit.egg-info"  # its build metadata in the checkout (netkit_tcp.egg-info now)
    fi
    netkit_quiet "$me" "pip install" "$venv/bin/python" -m pip "${pip_args[@]}"
    printf '%s\n' "$want" >"$stamp"
fi

# What we made in the checkout belongs to whoever owns the checkout: a user's
# clone provisioned through sudo gets its .venv back (removable without root);
# a root-owned clone stays root's, whoever ran sudo.
owner=$(stat -c '%u:%g' "$NETKIT_ROOT")
if [ "$owner" != "0:0" ]; then
    chown -R "$owner" "$venv"
    for egg in "$NETKIT_ROOT"/*.egg-info; do
        if [ -e "$egg" ]; then chown -R "$owner" "$egg"; fi
    done
fi

# --- 4. `netkit` on PATH ---------------------------------------------------------
# /usr/local/bin is on every user's PATH and on sudo's secure_path. The command
# there is a small wrapper, not a link: it re-runs netkit through sudo when not
# root, like the scripts here, so `netkit demo` works as root and as a user
# with sudo. A /usr/local/bin/netkit that netkit did not install is left alone.
command_path=/usr/local/bin/netkit
marker="# netkit-wrapper: installed by scripts/provision.sh"
install_command() {
    local tmp
    tmp=$(mktemp "$command_path.XXXXXX")
    cat >"$tmp" <<WRAPPER
#!/bin/sh
$marker of $NETKIT_ROOT
# Runs that checkout's netkit; through sudo when not root (netkit creates
# network namespaces, which needs root). Run scripts/provision.sh in another
# checkout to point this command there.
netkit=$venv/bin/netkit
if [ ! -x "\$netkit" ]; then
    echo "netkit: \$netkit is gone (checkout moved or removed?): run scripts/provision.sh in your netkit checkout" >&2
    exit 2
fi
case "\${1:-}" in
"" | -h | --help | --version) exec "\$netkit" "\$@" ;;
esac
if [ "\$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    exec sudo --preserve-env=$NETKIT_SUDO_KEEP,NETKIT_KEEP_FAILED,NETKIT_PCAP_DIR,NETKIT_REQUIRE_PRIVILEGES -- "\$netkit" "\$@"
fi
exec "\$netkit" "\$@"
WRAPPER
    chmod 755 "$tmp"
    mv -f "$tmp" "$command_path"
}
on_path="$command_path -> $venv/bin/netkit"
if [ ! -e "$command_path" ] && [ ! -L "$command_path" ]; then
    install_command
elif grep -qF "$marker" "$command_path" 2>/dev/null ||
    case "$(readlink "$command_path" 2>/dev/null)" in */.venv/bin/netkit) true ;; *) false ;; esac; then
    install_command  # ours (or the link older versions made): point it at this checkout
else
    netkit_say "$me" "warning: $command_path exists and is not netkit's; left alone (run $venv/bin/netkit)" >&2
    on_path="$venv/bin/netkit (not on PATH)"
fi

version=$("$venv/bin/python" -c 'import importlib.metadata as m, sys; print(m.version("netkit-tcp"), "on Python", sys.version.split()[0])')
netkit_say "$me" "ready: netkit $version; command: $on_path"

# --- 5. can netkit run here? --------------------------------------------------
# `netkit doctor` probes the real thing (privileges, a namespace, a veth pair,
# tools, qdiscs) and exits non-zero only when netkit cannot run at all; then
# provisioning has failed, whatever it installed. Missing optional features
# (e.g. sch_netem) are listed and do not fail.
if [ "$doctor" = 1 ]; then
    netkit_say "$me" "netkit doctor:"
    status=0
    "$venv/bin/netkit" doctor 2>&1 | sed 's/^/    /' || status=$?
    if [ "$status" -ne 0 ]; then
        netkit_cannot_run "$me" "netkit doctor exited $status: netkit is installed but cannot run on this" \
            "machine (see the MISSING lines above). Building an image without privileges?" \
            "Then skip this check with --no-doctor."
    fi
fi
