#!/bin/bash
# Capture the apt fixtures of this directory from real apt and dpkg.
#
# usage (as root): tests/data/apt/capture.sh ROOTFS OUTDIR
#
# ROOTFS is a Debian root filesystem with apt, su and a user `deployer`,
# e.g. the testbed's cache (target/testbed-cache/rootfs-N). It is used
# read-only, as the lower layer of a throwaway overlay in a private mount
# namespace; nothing on this machine is installed or changed. The packages
# are throwaway .debs built here with dpkg-deb and served from a `file:`
# repository. Each scenario records what the exact command deployer sends
# printed and how it exited: stdout in NAME.txt,
# stderr in NAME.stderr.txt (when there is any), and `NAME STATUS` lines in
# statuses.txt. The lock scenarios hold apt's and dpkg's locks the way apt
# does (fcntl, with python3 on this machine) and record stdout and stderr
# together.
set -euo pipefail
rootfs=$(realpath "$1")
out=$(realpath -m "$2")
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
repo=$tmp/repo
mkdir -p "$repo"

deb() { # NAME VERSION [CONTROL-LINE...]; ARCH=... for an arch-specific one
    local pkg=$1 ver=$2 arch=${ARCH:-all} work
    shift 2
    work=$(mktemp -d)
    mkdir -p "$work/DEBIAN" "$work/usr/share/$pkg"
    echo "$ver" >"$work/usr/share/$pkg/VERSION"
    {
        echo "Package: $pkg"
        echo "Version: $ver"
        echo "Architecture: $arch"
        echo "Maintainer: deployer fixtures <fixtures@example.invalid>"
        echo "Section: misc"
        echo "Priority: optional"
        for l in "$@"; do echo "$l"; done
        echo "Description: throwaway package $pkg"
        echo " Built to capture real apt output for deployer's tests."
    } >"$work/DEBIAN/control"
    dpkg-deb --root-owner-group -Zgzip --build "$work" "$repo/${pkg}_${ver}_$arch.deb" >/dev/null
    rm -rf "$work"
}
deb libfastpath 1.0-1
deb libfastpath 2.0-1
deb fastpath-data 1.0-1
deb fastpath-legacy 0.1-1
deb fastpath-plugin 1.0-1 "Depends: libfastpath (<< 2.0)"
deb fastpath-plugin 2.0-1 "Depends: libfastpath (>= 2.0)"
for a in amd64 i386; do
    ARCH=$a deb libmulti 1.0-1 "Multi-Arch: same"
    ARCH=$a deb libmulti 2.0-1 "Multi-Arch: same"
done
deb fastpath 0.70-1 "Depends: libfastpath (= 1.0-1)"
deb fastpath 0.77~pr705-119 "Depends: libfastpath (>= 1.0)"
deb fastpath 0.81~pr748-191 "Depends: libfastpath (>= 2.0), fastpath-data" "Conflicts: fastpath-legacy"
deb fastpath 0.90-1 "Depends: libfastpath (>= 2.0), fastpath-data, libmulti (>= 2.0)"
(cd "$repo" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null)
gzip -9nk "$repo/Packages"
{
    echo "Origin: deployer-fixtures"
    echo "Label: deployer-fixtures"
    echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
    echo "SHA256:"
    for f in Packages Packages.gz; do
        echo " $(sha256sum <"$repo/$f" | cut -d' ' -f1) $(stat -c %s "$repo/$f") $f"
    done
} >"$repo/Release"

# The scenarios, run inside the root filesystem as root; the simulations run
# as the unprivileged `deployer`, as deployer sends them.
cat >"$tmp/scenarios.sh" <<'EOF'
set -u
echo 'deb [trusted=yes] file:/srv/repo ./' >/etc/apt/sources.list
apt-get update -q >/dev/null 2>&1
OPTS="-q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=60"
record() { # NAME STATUS: keep stderr only when there is some
    [ -s /out/$1.stderr.txt ] || rm -f /out/$1.stderr.txt
    echo "$1 $2" >>/out/statuses.txt
}
sim() { # NAME ARGS...: deployer's simulation
    n=$1; shift
    su -s /bin/sh deployer -c "env LC_ALL=C apt-get -s install $OPTS $*" >/out/$n.txt 2>/out/$n.stderr.txt
    record $n $?
}
real() { # NAME ARGS...: deployer's real install
    n=$1; shift
    env DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get install -y $OPTS "$@" >/out/$n.txt 2>/out/$n.stderr.txt
    record $n $?
}
mark() { # NAME ARGS...
    n=$1; shift
    env LC_ALL=C apt-mark "$@" >/out/$n.txt 2>/out/$n.stderr.txt
    record $n $?
}
query() { # NAME: deployer's dpkg-query
    dpkg-query -W -f '${binary:Package}\t${Version}\t${db:Status-Abbrev}\n' -- \
        fastpath fastpath-data fastpath-legacy fastpath-plugin libfastpath >/out/$1.txt 2>/out/$1.stderr.txt
    record $1 $?
}
setup() { apt-get install -y -q --allow-downgrades "$@" >/dev/null 2>&1 || echo "setup failed: $*" >&2; }

sim sim-fresh-install 'fastpath=0.81~pr748-191'
# a removal (Conflicts), an upgraded and a new dependency
setup 'fastpath=0.77~pr705-119' 'libfastpath=1.0-1' fastpath-legacy
sim sim-side-effects 'fastpath=0.81~pr748-191'
sim sim-side-effects-purge --purge 'fastpath=0.81~pr748-191'
sim sim-no-remove --no-remove 'fastpath=0.81~pr748-191'
real install-no-remove --no-remove 'fastpath=0.81~pr748-191'
query dpkg-query-after-no-remove
# only the package itself changes
apt-get remove -y -q fastpath-legacy >/dev/null 2>&1
setup 'libfastpath=2.0-1' fastpath-data
sim sim-upgrade-only 'fastpath=0.81~pr748-191'
# a held package
mark apt-mark-hold hold fastpath
query dpkg-query-held
sim sim-held 'fastpath=0.81~pr748-191'
real install-held --no-remove 'fastpath=0.81~pr748-191'
real install-held-allowed --no-remove --allow-change-held-packages 'fastpath=0.81~pr748-191'
query dpkg-query-after-allow-change-held
env LC_ALL=C apt-mark hold fastpath >/dev/null
mark apt-mark-hold-again hold fastpath
mark apt-mark-unhold unhold fastpath
mark apt-mark-unhold-again unhold fastpath
mark apt-mark-hold-unknown hold no-such-package
setup 'fastpath=0.81~pr748-191'
sim sim-already-newest 'fastpath=0.81~pr748-191'
sim sim-downgrade --allow-downgrades 'fastpath=0.77~pr705-119'
sim sim-unsatisfiable --allow-downgrades 'fastpath=0.70-1'
sim sim-no-version 'fastpath=9.9-1'
# hold = yes: unhold, install, hold
env LC_ALL=C apt-mark hold fastpath >/dev/null
mark hold-cycle-unhold unhold fastpath
real hold-cycle-install --no-remove --allow-downgrades 'fastpath=0.77~pr705-119'
mark hold-cycle-hold hold fastpath
query dpkg-query-hold-cycle
env LC_ALL=C apt-mark unhold fastpath >/dev/null
# a dependency upgraded while it breaks another package
setup 'fastpath-plugin=1.0-1' 'libfastpath=1.0-1'
sim sim-plugin-upgrade 'fastpath=0.81~pr748-191'
# a Multi-Arch: same dependency installed for two architectures
dpkg --add-architecture i386
apt-get update -q >/dev/null 2>&1
setup 'libmulti:amd64=1.0-1' 'libmulti:i386=1.0-1' 'libfastpath=2.0-1' 'fastpath-plugin=2.0-1' 'fastpath=0.81~pr748-191'
sim sim-multiarch 'fastpath=0.90-1'
EOF

s=$tmp/s
mkdir -p "$s/upper" "$s/work" "$s/merged"
unshare --mount --fork --propagation private bash -euc '
s=$1 rootfs=$2 repo=$3 out=$4 script=$5
m=$s/merged
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$s/upper,workdir=$s/work" "$m"
mkdir -p "$m/srv/repo" "$m/out"
mount --bind -o ro "$repo" "$m/srv/repo"
mount --bind "$out" "$m/out"
mount -t tmpfs tmpfs "$m/dev"
for d in null zero urandom random full tty; do touch "$m/dev/$d"; mount --bind "/dev/$d" "$m/dev/$d"; done
mkdir -p "$m/dev/pts"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$m/dev/pts"
ln -s pts/ptmx "$m/dev/ptmx"
mount -t proc proc "$m/proc"
cp "$script" "$m/scenarios.sh"
chroot "$m" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root /bin/sh /scenarios.sh

# Locks held by another process, as apt-daily or unattended-upgrades hold them.
locked() { # NAME SECONDS LOCK... -- COMMAND...
    local name=$1 secs=$2 files=() holder status
    shift 2
    while [ "$1" != -- ]; do files+=("$m$1"); shift; done
    shift
    python3 -c "import fcntl, sys, time
fs = [open(p, \"w\") for p in sys.argv[2:]]
for f in fs: fcntl.lockf(f, fcntl.LOCK_EX)
print(\"locked\", flush=True)
time.sleep(float(sys.argv[1]))" "$secs" "${files[@]}" >"$s/holder" &
    holder=$!
    while ! grep -q locked "$s/holder"; do sleep 0.1; done
    status=0
    chroot "$m" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C "$@" \
        >"$out/$name.txt" 2>&1 || status=$?
    echo "$name $status" >>"$out/statuses.txt"
    kill "$holder"; wait "$holder" || true
}
locked update-lists-locked 30 /var/lib/apt/lists/lock -- apt-get update -q
locked update-lists-locked-timeout 30 /var/lib/apt/lists/lock -- apt-get update -q -o DPkg::Lock::Timeout=5
locked apt-mark-dpkg-locked 30 /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock -- apt-mark hold fastpath
locked apt-mark-dpkg-db-locked 30 /var/lib/dpkg/lock -- apt-mark hold fastpath
' capture "$s" "$rootfs" "$repo" "$out" "$tmp/scenarios.sh"
echo "captured into $out"
