#!/usr/bin/env bash
# Seed the base image `busybox:1.36.1` into the local Docker Engine, offline.
#
# On a networked host the real upstream image would simply be pulled
# (`docker pull busybox:1.36.1`). No registry can be reached on these
# machines, so we build an equivalent image from Debian's `busybox-static`
# package: a root filesystem with the static binary plus applet symlinks,
# loaded with `docker import`. Debian bookworm ships busybox 1.35, not 1.36.1;
# the tag is kept so Dockerfiles written for upstream (`FROM busybox:1.36.1`)
# build unchanged. Known differences from upstream: this `wget` segfaults
# (exit 139) on any failure (refused, 404) instead of exiting 1, and `nc` has
# no -z. Idempotent: does nothing if the tag already exists.
set -euo pipefail

image="busybox:1.36.1"

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "seed-busybox: $image already present"
    exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/infrad-busybox.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# 1. A static busybox binary: from the installed package if there is one
#    (the plain `busybox` package is dynamically linked, so it won't do),
#    otherwise from the .deb, without installing it system-wide.
if dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
    bb=/bin/busybox
else
    # apt-get download runs as the unprivileged _apt user when it can; let it
    # write here so it doesn't warn about an unsandboxed download.
    chmod 0777 "$work"
    if ! (cd "$work" && apt-get download -q busybox-static >"$work/apt.log" 2>&1); then
        # Fresh machines may have no package lists yet.
        echo "seed-busybox: apt-get download failed, running apt-get update first"
        apt-get update -q >/dev/null
        (cd "$work" && apt-get download -q busybox-static)
    fi
    dpkg-deb -x "$work"/busybox-static_*.deb "$work/deb"
    bb="$work/deb/bin/busybox"
fi

# 2. A minimal root filesystem laid out like the upstream image: everything in
#    /bin, a writable /tmp, and just enough /etc for user lookups.
root="$work/rootfs"
mkdir -p "$root"/{bin,etc,root,tmp,var,home}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
install -m 0755 "$bb" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
GROUP

# 3. Import it. Owner forced to root so the image is the same whoever runs this.
tar -C "$root" --numeric-owner --owner=0 --group=0 -c . |
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["sh"]' \
        - "$image" >/dev/null

# 4. Prove it runs (no network needed or given).
out="$(docker run --rm --network none "$image" busybox echo ok)"
if [ "$out" != ok ]; then
    echo "seed-busybox: $image imported but does not run (got: $out)" >&2
    exit 1
fi
version="$("$root/bin/busybox" 2>&1 | head -n 1 | cut -d' ' -f2)" || true
echo "seed-busybox: $image seeded from Debian busybox-static $version"
