#!/usr/bin/env bash
# Start a Docker Engine for infrad's tests, if one is not already answering.
#
# No bridge network and no iptables/masquerade rules: containers here get
# `--network none` at most, so nothing ever leaves loopback (see
# docs/architecture.md, "How it is tested"). Idempotent: safe to run any number of times.
set -euo pipefail

log="${TMPDIR:-/tmp}/infrad-dockerd.log"
timeout_s=60

# Already usable (ours from an earlier run, or a system service): nothing to do.
if docker info >/dev/null 2>&1; then
    echo "start-dockerd: docker already answering"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "start-dockerd: dockerd not found (apt-get install docker.io)" >&2
    exit 1
fi

# A dockerd may already be starting (e.g. a concurrent run); don't start a
# second one against the same data root, just wait for it below.
if pgrep -x dockerd >/dev/null 2>&1; then
    echo "start-dockerd: dockerd already running (pid $(pgrep -x -o dockerd)), waiting for it"
else
    echo "start-dockerd: starting dockerd, log in $log"
    # setsid + nohup: the daemon must outlive this script and its caller's
    # terminal/session (CI steps, interactive shells).
    setsid nohup dockerd --bridge=none --iptables=false --ip-masq=false \
        >>"$log" 2>&1 </dev/null &
    pid=$!
fi

for ((i = 0; i < timeout_s * 2; i++)); do
    if docker info >/dev/null 2>&1; then
        echo "start-dockerd: docker ready after ~$((i / 2)) s"
        exit 0
    fi
    # Ours died (bad flag, storage driver, leftover pid file): say so now
    # rather than after the whole timeout.
    if [ -n "${pid:-}" ] && ! kill -0 "$pid" 2>/dev/null; then
        echo "start-dockerd: dockerd exited; last lines of $log:" >&2
        tail -n 40 "$log" >&2 || true
        exit 1
    fi
    sleep 0.5
done

echo "start-dockerd: docker did not answer within ${timeout_s} s; last lines of $log:" >&2
tail -n 40 "$log" >&2 || true
exit 1
