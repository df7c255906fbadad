#!/usr/bin/env bash
# EFS data plane benchmark, in one run, on one disk:
#   1. the backing directory directly (native),
#   2. the emulator's FUSE file system over it (`ecs-emulator efs-mount`, what tasks get),
#   3. Debian's bindfs over it (another FUSE passthrough, the reference).
# Figures: 1 GiB sequential write (fio, 1 MiB blocks, fsync at the end) and sequential read
# (page cache dropped first), then 10,000 small files created, stat'ed and deleted (python3,
# one process, the same code for the three). Goal: faster than bindfs on every figure and at
# least 0.6x native on sequential I/O.
#
# Needs root (FUSE mounts, dropping the page cache), fio, bindfs, python3.
# BIN=<path> uses an already built emulator instead of `cargo build --release -p ecs-emulator`.
# DIR=<dir> puts the files there (default: a temporary directory under /var/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
SIZE=${SIZE:-1G}
FILES=${FILES:-10000}
for tool in fio bindfs python3 fusermount3; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool (apt-get install -y fio bindfs fuse3)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }

if [[ -z ${BIN:-} ]]; then
  echo "== cargo build --release -p ecs-emulator"
  cargo build --release -p ecs-emulator
  BIN=$root/target/release/ecs-emulator
fi

tmp=$(mktemp -d -p "${DIR:-/var/tmp}" efs-bench.XXXXXX)
efs_pid=
cleanup() {
  [[ -n $efs_pid ]] && kill "$efs_pid" 2>/dev/null && wait "$efs_pid" 2>/dev/null || true
  mountpoint -q "$tmp/bindfs" && fusermount3 -u "$tmp/bindfs" || true
  mountpoint -q "$tmp/efs" && umount -l "$tmp/efs" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/backing" "$tmp/efs" "$tmp/bindfs"

"$BIN" efs-mount "$tmp/backing" "$tmp/efs" 2>"$tmp/efs.log" &
efs_pid=$!
bindfs "$tmp/backing" "$tmp/bindfs"
for _ in $(seq 1 100); do
  mountpoint -q "$tmp/efs" && break
  sleep 0.1
done
mountpoint -q "$tmp/efs" || { cat "$tmp/efs.log" >&2; echo "efs-mount did not mount" >&2; exit 1; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# fio's bandwidth (MiB/s) for one job.
seq_io() { # dir rw
  local out
  out=$(fio --name=seq --directory="$1" --filename=seq.dat --rw="$2" --bs=1M --size="$SIZE" \
    --ioengine=psync --end_fsync=1 --output-format=json 2>/dev/null)
  python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; k=sys.argv[1]; print("%.0f" % (j[k]["bw_bytes"]/1048576))' \
    "$([[ $2 == write ]] && echo write || echo read)" <<<"$out"
}

small_files() { # dir → "create/s stat/s delete/s"
  python3 - "$1" "$FILES" <<'EOF'
import os, sys, time
d, n = os.path.join(sys.argv[1], "small"), int(sys.argv[2])
os.mkdir(d)
names = [os.path.join(d, "f%05d" % i) for i in range(n)]
t = time.perf_counter()
for p in names:
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    os.write(fd, b"x")
    os.close(fd)
c = time.perf_counter() - t
t = time.perf_counter()
for p in names:
    os.stat(p)
s = time.perf_counter() - t
t = time.perf_counter()
for p in names:
    os.unlink(p)
u = time.perf_counter() - t
os.rmdir(d)
print("%.0f %.0f %.0f" % (n / c, n / s, n / u))
EOF
}

declare -A W R C S U
for target in native efs bindfs; do
  case $target in
    native) d=$tmp/backing/native ;;
    efs) d=$tmp/efs/efs ;;
    bindfs) d=$tmp/bindfs/bindfs ;;
  esac
  mkdir -p "$d"
  drop_caches
  W[$target]=$(seq_io "$d" write)
  drop_caches
  R[$target]=$(seq_io "$d" read)
  rm -f "$d/seq.dat"
  drop_caches
  read -r C[$target] S[$target] U[$target] < <(small_files "$d")
  echo "$target: write ${W[$target]} MiB/s, read ${R[$target]} MiB/s, create ${C[$target]}/s, stat ${S[$target]}/s, delete ${U[$target]}/s" >&2
done

ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo
echo "| figure | native | efs (FUSE) | bindfs | efs / native | efs / bindfs |"
echo "|---|---|---|---|---|---|"
echo "| sequential write $SIZE (MiB/s) | ${W[native]} | ${W[efs]} | ${W[bindfs]} | $(ratio "${W[efs]}" "${W[native]}") | $(ratio "${W[efs]}" "${W[bindfs]}") |"
echo "| sequential read $SIZE (MiB/s) | ${R[native]} | ${R[efs]} | ${R[bindfs]} | $(ratio "${R[efs]}" "${R[native]}") | $(ratio "${R[efs]}" "${R[bindfs]}") |"
echo "| create $FILES files (files/s) | ${C[native]} | ${C[efs]} | ${C[bindfs]} | $(ratio "${C[efs]}" "${C[native]}") | $(ratio "${C[efs]}" "${C[bindfs]}") |"
echo "| stat $FILES files (files/s) | ${S[native]} | ${S[efs]} | ${S[bindfs]} | $(ratio "${S[efs]}" "${S[native]}") | $(ratio "${S[efs]}" "${S[bindfs]}") |"
echo "| delete $FILES files (files/s) | ${U[native]} | ${U[efs]} | ${U[bindfs]} | $(ratio "${U[efs]}" "${U[native]}") | $(ratio "${U[efs]}" "${U[bindfs]}") |"
