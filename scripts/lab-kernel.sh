#!/usr/bin/env bash
# Debian 12's kernels for the netkit lab (see Vagrantfile): install a kernel
# series so that it boots next, or check which series runs.
#
# Usage: scripts/lab-kernel.sh install [--simulate] SERIES
#        scripts/lab-kernel.sh verify SERIES
#   SERIES  a kernel series, e.g. 6.12. Debian 12 offers 6.1 (its own) and
#           6.12 (linux-image-6.12.*+deb12-amd64, from bookworm-security).
#
# install: nothing to do when SERIES already runs. Otherwise installs the
#   meta-package linux-image-SERIES-ARCH (it follows the newest build of the
#   series), first adding Debian's security suite as an apt source if no
#   configured source offers that package (the debootstrap default has only
#   the main suite). Then checks that GRUB boots the new kernel by default.
#   Reboot to run it: the Vagrantfile's "kernel" provisioner has reboot: true.
#   --simulate: stop after resolving the package; show what apt would install
#   (apt's lists are still updated, and the source added if needed).
# verify: exit 1 unless the running kernel is SERIES.x; the message lists the
#   installed kernels and GRUB's default entry.
#
# Meant for the lab VMs (it adds an apt source and changes what boots next).
# Re-runs itself through sudo when not root.
set -eu
set -o pipefail

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
netkit_as_root "$NETKIT_ROOT/scripts/lab-kernel.sh" "$@"

me=lab-kernel
export DEBIAN_FRONTEND=noninteractive

usage() {
    sed -n '/^# Usage:/,/bookworm-security)\.$/s/^# \{0,1\}//p' "$NETKIT_ROOT/scripts/lab-kernel.sh"
}

action=${1:-}
[ "$#" -gt 0 ] && shift
simulate=0
if [ "$action" = install ] && [ "${1:-}" = --simulate ]; then
    simulate=1
    shift
fi
if [ "$#" -ne 1 ] || { [ "$action" != install ] && [ "$action" != verify ]; }; then
    usage >&2
    netkit_die "$me" "expected: install [--simulate] SERIES, or verify SERIES"
fi
series=$1
case "$series" in
[0-9]*.[0-9]*) ;;
*) netkit_die "$me" "invalid kernel series '$series': expected MAJOR.MINOR, e.g. 6.12" ;;
esac

running=$(uname -r)
runs_series() { case "$running" in "$series".*) return 0 ;; *) return 1 ;; esac; }

# The kernel GRUB boots by default: the first menu entry's image, when
# GRUB_DEFAULT is 0 (Debian's default). Prints nothing when that cannot be told.
grub_default_kernel() {
    local cfg=/boot/grub/grub.cfg default
    [ -r "$cfg" ] || return 0
    default=$(sed -n 's/^GRUB_DEFAULT=["'\'']\{0,1\}\([^"'\'']*\).*/\1/p' /etc/default/grub 2>/dev/null | tail -n 1)
    [ "${default:-0}" = 0 ] || return 0
    awk '$1 == "linux" { sub(".*/vmlinuz-", "", $2); print $2; exit }' "$cfg"
}

# Installed kernel images (not meta-packages), e.g. "6.1.0-37-amd64, 6.12.117+deb12-amd64".
installed_kernels() {
    dpkg-query -W -f='${Package} ${Status}\n' 'linux-image-[0-9]*' 2>/dev/null |
        awk '$NF == "installed" && $1 ~ /^linux-image-[0-9]+\.[0-9]+\.[0-9]/ {
                 sub("^linux-image-", "", $1); k = k (k ? ", " : "") $1 }
             END { print (k ? k : "none") }'
}

if [ "$action" = verify ]; then
    if runs_series; then
        netkit_say "$me" "running kernel $running (the $series series), as expected"
        exit 0
    fi
    boots=$(grub_default_kernel)
    installed=$(installed_kernels)
    case ", $installed" in
    *", $series".*) hint="A $series kernel is installed: make it GRUB's default and reboot." ;;
    *) hint="Install it with 'scripts/lab-kernel.sh install $series', then reboot." ;;
    esac
    netkit_die "$me" "running kernel $running, expected the $series series." \
        "Installed kernels: $installed." \
        "GRUB boots by default: ${boots:-unknown (no /boot/grub/grub.cfg, or GRUB_DEFAULT is not 0)}." \
        "$hint"
fi

# --- install ------------------------------------------------------------------
if runs_series && [ "$simulate" = 0 ]; then
    netkit_say "$me" "kernel $running (the $series series) already runs; nothing to install"
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || netkit_die "$me" "no apt-get: this script installs Debian's kernels"
arch=$(dpkg --print-architecture)

candidate() { apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'; }

# find_package: set pkg and version to the package that installs (and keeps
# updating) the series' kernel: linux-image-SERIES-ARCH (e.g. 6.12 on Debian
# 12), or linux-image-ARCH when that is the series (6.1 on Debian 12).
find_package() {
    pkg=linux-image-$series-$arch
    version=$(candidate "$pkg")
    [ -z "$version" ] || return 0
    version=$(candidate "linux-image-$arch")
    case "$version" in
    "$series".*)
        pkg=linux-image-$arch
        return 0
        ;;
    esac
    pkg=linux-image-$series-$arch
    version=
    return 1
}

netkit_say "$me" "looking for Debian's $series kernel ($arch)"
netkit_quiet "$me" "apt-get update" apt-get update
if ! find_package; then
    # shellcheck source=/dev/null
    codename=$(. /etc/os-release && [ "${ID:-}" = debian ] && printf '%s' "${VERSION_CODENAME:-}") || codename=
    [ -n "$codename" ] ||
        netkit_die "$me" "no apt source offers $pkg, and this is not Debian: install the $series kernel by other means"
    sources=$(apt-cache policy)
    if grep -q " $codename-security/" <<<"$sources"; then
        netkit_die "$me" "no apt source offers $pkg (the $codename-security suite is configured)." \
            "Debian's kernel series are listed by 'apt-cache search linux-image-'; Debian 12 has 6.1 and 6.12."
    fi
    list=/etc/apt/sources.list.d/netkit-$codename-security.list
    netkit_say "$me" "no configured apt source offers $pkg; adding Debian's $codename-security suite ($list)"
    printf '# Added by netkit scripts/lab-kernel.sh: Debian %s kernels.\n%s\n' "$codename" \
        "deb http://deb.debian.org/debian-security $codename-security main" >"$list"
    netkit_quiet "$me" "apt-get update" apt-get update
    find_package ||
        netkit_die "$me" "no apt source offers $pkg, not even $codename-security." \
            "Debian's kernel series are listed by 'apt-cache search linux-image-'; Debian 12 has 6.1 and 6.12."
fi

if [ "$simulate" = 1 ]; then
    plan=$(apt-get install -s -y --no-install-recommends "$pkg")
    image=$(awk '$1 == "Inst" && $2 ~ /^linux-image-[0-9]+\.[0-9]+\.[0-9]/ { print $2; exit }' <<<"$plan")
    count=$(grep -c '^Inst ' <<<"$plan" || true)
    if [ -n "$image" ]; then
        netkit_say "$me" "simulated: $pkg $version would install $image ($count packages in all)"
    elif [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" = "install ok installed" ]; then
        netkit_say "$me" "simulated: $pkg $version is already installed"
    else
        netkit_die "$me" "apt would not install a kernel image for $pkg; its plan: $plan"
    fi
    exit 0
fi

if [ "$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null || true)" = "install ok installed $version" ]; then
    netkit_say "$me" "$pkg $version is already installed"
else
    netkit_say "$me" "installing $pkg $version (about 110 MB)"
    netkit_quiet "$me" "apt-get install" apt-get install -y --no-install-recommends "$pkg"
fi
release=$(dpkg-query -W -f='${Depends}' "$pkg" | sed -n 's/^linux-image-\([^ ,]*\).*/\1/p')
[ -n "$release" ] || netkit_die "$me" "cannot tell which kernel $pkg installed"
boots=$(grub_default_kernel)
if [ -z "$boots" ]; then
    netkit_say "$me" "installed kernel $release; cannot tell what GRUB boots by default," \
        "'scripts/lab-kernel.sh verify $series' after the reboot will"
elif [ "$boots" != "$release" ]; then
    netkit_die "$me" "installed kernel $release, but GRUB's default entry boots $boots." \
        "Make $release the default (GRUB_DEFAULT in /etc/default/grub, then update-grub) and reboot."
else
    netkit_say "$me" "installed kernel $release; GRUB boots it by default: reboot to run it"
fi
