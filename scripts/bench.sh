#!/usr/bin/env bash
# make bench: measures estd and writes the results into BENCHMARKS.md.
#
#  1. Go benchmarks (go test -bench): the crypto floor (verify a CSR, sign
#     one certificate), the issuer, the enroll handler in process with the
#     durable SQLite store and an in-memory one, the store insert, and
#     enrollment with a million certificates in the store.
#  2. estd on loopback under `est bench`, for a P-256 and an RSA-2048 CA:
#     cacerts, enroll and reenroll, on kept-alive connections, on a new
#     connection per request (full TLS handshake) and on a new connection
#     resuming the TLS session; estd's CPU per request is read from
#     /proc/PID/stat around each run and set next to the crypto floor.
#  3. estd's resident memory with 256 concurrent keep-alive clients.
#
# Knobs (environment): BENCH_DURATION (each est bench run, default 10s),
# BENCH_GOTIME (-benchtime of the Go benchmarks, default 2s), BENCH_SCALE=0
# skips the million-record benchmark, BENCH_OUT (default BENCHMARKS.md; "-"
# prints the results only). Linux only (/proc).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
DURATION=${BENCH_DURATION:-10s}
GOTIME=${BENCH_GOTIME:-2s}
SCALE=${BENCH_SCALE:-1}
OUT=${BENCH_OUT:-BENCHMARKS.md}
CONC=16
TCK=$(getconf CLK_TCK)

work=$(mktemp -d)
shm= # estd's data directory on tmpfs, while it exists
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
  [ -z "$shm" ] || rm -rf "$shm"
}
trap cleanup EXIT

say() { echo "bench: $*" >&2; }

say "building estd and est"
$GO build -o "$work/bin/" ./cmd/estd ./cmd/est
EST=$work/bin/est

# ---------------------------------------------------------------- Go benchmarks
say "Go benchmarks (-benchtime $GOTIME)"
gobench() { # PKG PATTERN [extra go test flags]
  local pkg=$1 pat=$2; shift 2
  $GO test -run '^$' -bench "$pat" -benchtime "$GOTIME" -timeout 30m "$@" "$pkg" | tee -a "$work/go.txt" >&2
}
: >"$work/go.txt"
gobench ./ca 'CryptoFloor|Issue'
gobench ./server 'BenchmarkEnroll$'
gobench ./store/sqlite 'BenchmarkPut'
if [ "$SCALE" != 0 ]; then
  gobench ./server 'BenchmarkEnrollScale'
fi

# gometric NAME UNIT: the value before UNIT on the benchmark line NAME-<procs>.
gometric() {
  awk -v name="$1" -v unit="$2" '
    { n = $1; sub(/-[0-9]+$/, "", n) }
    n == name { for (i = 3; i <= NF; i++) if ($i == unit) { print $(i-1); exit } }' "$work/go.txt"
}

# ---------------------------------------------------------------- estd + est bench
# jget KEY FILE: a number from est bench -json output.
jget() { sed -n 's/^ *"'"$1"'": *\([0-9.eE+-]*\),\{0,1\}$/\1/p' "$2" | head -1; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

start_estd() { # KEYTYPE [NAME CONFIG] -> sets PID ADDR PASSWORD DATA; $DATA_ROOT: where
  DATA=${DATA_ROOT:-$work}/data-${2:-$1}
  local cfg=()
  [ -z "${3:-}" ] || cfg=(-config "$3")
  "$work/bin/estd" "${cfg[@]}" -data "$DATA" -listen 127.0.0.1:0 -ca-key-type "$1" >"$DATA.out" 2>"$DATA.log" &
  PID=$!
  pids+=("$PID")
  for _ in $(seq 300); do
    grep -q 'serving EST on' "$DATA.out" 2>/dev/null && break
    sleep 0.1
  done
  ADDR=$(sed -n 's|.*serving EST on https://\([^/]*\)/.*|\1|p' "$DATA.out")
  PASSWORD=$(sed -n 's/.*bootstrap user "est", password \([^ ]*\)$/\1/p' "$DATA.out")
  [ -n "$ADDR" ] && [ -n "$PASSWORD" ] || { cat "$DATA.out" "$DATA.log" >&2; exit 1; }
}

RESULTS=$work/results.tsv
: >"$RESULTS"

# scenario NAME CAKEY ARGS...: one est bench run against estd $PID, with
# estd's CPU around it.
scenario() {
  local name=$1 kt=$2; shift 2
  local json=$work/$kt-$name.json t0 t1
  t0=$(ticks "$PID")
  EST_PASSWORD=$PASSWORD "$EST" bench -server "$ADDR" -anchor "$DATA/root-ca.pem" -json -c "$CONC" -d "$DURATION" "$@" >"$json" 2>>"$work/est.log" || true
  t1=$(ticks "$PID")
  local ok req rps p50 p99 ccpu
  ok=$(jget ok "$json"); req=$(jget requests "$json"); rps=$(jget requests_per_second "$json")
  p50=$(jget p50 "$json"); p99=$(jget p99 "$json"); ccpu=$(jget client_cpu_seconds "$json")
  [ -n "$ok" ] || { say "$name ($kt): est bench failed"; tail -5 "$work/est.log" >&2; ok=0 req=0 rps=0 p50=0 p99=0 ccpu=0; }
  local cpu_us
  cpu_us=$(awk -v d="$((t1 - t0))" -v tck="$TCK" -v n="$ok" 'BEGIN { if (n > 0) printf "%.0f", d / tck / n * 1e6; else print "-" }')
  local cli_us
  cli_us=$(awk -v c="$ccpu" -v n="$req" 'BEGIN { if (n > 0) printf "%.0f", c / n * 1e6; else print "-" }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kt" "$rps" "$p50" "$p99" "$((req - ok))" "$cpu_us" "$cli_us" "$ok" >>"$RESULTS"
  say "$(printf '%-22s %-8s %10.1f req/s  server %6s µs/req  errors %s' "$name" "$kt" "$rps" "$cpu_us" "$((req - ok))")"
}

for kt in p256 rsa2048; do
  say "estd with a $kt CA"
  start_estd "$kt"
  # Warm up: the first Basic authentication runs bcrypt, later ones hit the cache.
  EST_PASSWORD=$PASSWORD "$EST" bench -server "$ADDR" -anchor "$DATA/root-ca.pem" -user est -op enroll -c "$CONC" -n 64 >/dev/null 2>>"$work/est.log"
  scenario cacerts-keepalive "$kt" -op cacerts
  scenario cacerts-new "$kt" -op cacerts -conn new
  scenario cacerts-resume "$kt" -op cacerts -conn resume
  scenario enroll-keepalive "$kt" -op enroll -user est
  scenario enroll-new "$kt" -op enroll -user est -conn new
  scenario enroll-resume "$kt" -op enroll -user est -conn resume
  scenario reenroll-keepalive "$kt" -op reenroll -user est
  scenario serverkeygen-keepalive "$kt" -op serverkeygen -user est
  if [ "$kt" = p256 ]; then
    say "memory: 256 keep-alive clients"
    echo 5 >"/proc/$PID/clear_refs" 2>/dev/null || true # reset the peak
    maxrss=$(rss_kib "$PID")
    CONC=256 scenario enroll-keepalive-c256 "$kt" -op enroll -user est -pool 256 &
    bpid=$!
    while kill -0 "$bpid" 2>/dev/null; do
      r=$(rss_kib "$PID"); [ "$r" -gt "$maxrss" ] && maxrss=$r
      sleep 0.2
    done
    wait "$bpid"
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PID/status")
    MEM_MAX=$maxrss MEM_HWM=$hwm
  fi
  kill "$PID"; wait "$PID" 2>/dev/null || true
done

# New connections with plain X25519 (tls.post_quantum: false) instead of the
# X25519MLKEM768 est bench gets by default.
say "estd with a p256 CA and tls.post_quantum: false"
printf 'tls:\n  post_quantum: false\n' >"$work/x25519.yaml"
start_estd p256 p256-x25519 "$work/x25519.yaml"
EST_PASSWORD=$PASSWORD "$EST" bench -server "$ADDR" -anchor "$DATA/root-ca.pem" -user est -op enroll -c "$CONC" -n 64 >/dev/null 2>>"$work/est.log"
scenario cacerts-new-x25519 p256 -op cacerts -conn new
scenario enroll-new-x25519 p256 -op enroll -user est -conn new
kill "$PID"; wait "$PID" 2>/dev/null || true

# The same enrollments with estd's data directory (its SQLite database) on
# tmpfs, where fsync costs nothing: what durability costs end to end.
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
  say "estd with a p256 CA, its data directory on tmpfs"
  shm=$(mktemp -d /dev/shm/estkit-bench-XXXXXX)
  DATA_ROOT=$shm start_estd p256 p256-tmpfs
  EST_PASSWORD=$PASSWORD "$EST" bench -server "$ADDR" -anchor "$DATA/root-ca.pem" -user est -op enroll -c "$CONC" -n 64 >/dev/null 2>>"$work/est.log"
  scenario enroll-keepalive-tmpfs p256 -op enroll -user est
  CONC=256 scenario enroll-keepalive-c256-tmpfs p256 -op enroll -user est -pool 256
  kill "$PID"; wait "$PID" 2>/dev/null || true
  rm -rf "$shm"; shm=
else
  say "no tmpfs at /dev/shm: skipping estd on tmpfs"
fi

# ---------------------------------------------------------------- report
floor_p256=$(gometric BenchmarkCryptoFloor/ca=p256/csr=p256 cpu-ns/op)
floor_rsa=$(gometric BenchmarkCryptoFloor/ca=rsa2048/csr=p256 cpu-ns/op)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && a != "-" && b > 0) printf "%.2f", a / b; else print "-" }'; }

report() {
  echo "Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -sr), $($GO version | cut -d' ' -f3)"
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "Command: make bench (scripts/bench.sh; BENCH_DURATION=$DURATION, BENCH_GOTIME=$GOTIME)"
  echo
  echo "Crypto floor (Go benchmark, CPU per enrollment: verify a P-256 CSR + sign one certificate):"
  echo "P-256 CA $(awk -v v="$floor_p256" 'BEGIN { printf "%.0f", v / 1000 }') µs, RSA-2048 CA $(awk -v v="$floor_rsa" 'BEGIN { printf "%.0f", v / 1000 }') µs."
  echo
  echo "### estd on loopback, est bench on the same machine, c=$CONC"
  echo
  echo "| scenario | CA key | requests/s | p50 ms | p99 ms | errors | estd CPU µs/request | × crypto floor | est bench CPU µs/request |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  while IFS=$'\t' read -r name kt rps p50 p99 errs cpu cli ok; do
    local floor=$floor_p256 x="-"
    [ "$kt" = rsa2048 ] && floor=$floor_rsa
    case $name in enroll-*|reenroll-*) x=$(ratio "$cpu" "$(awk -v f="$floor" 'BEGIN { print f / 1000 }')") ;; esac
    printf '| %s | %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$name" "$kt" "$rps" "$p50" "$p99" "$errs" "$cpu" "$x" "$cli"
  done <"$RESULTS"
  echo
  local d m c
  for c in "" -c256; do
    d=$(awk -F'\t' -v n="enroll-keepalive$c" '$1 == n && $2 == "p256" { print $3 }' "$RESULTS")
    m=$(awk -F'\t' -v n="enroll-keepalive$c-tmpfs" '$1 == n && $2 == "p256" { print $3 }' "$RESULTS")
    [ -n "$m" ] || continue
    echo "estd end to end, enroll-keepalive$c, P-256: durable SQLite gives $(ratio "$d" "$m") of the throughput with the database on tmpfs (1.00 = as fast; what durability costs)."
    echo
  done
  echo "estd resident memory with 256 concurrent keep-alive clients enrolling: peak sampled $((MEM_MAX / 1024)) MiB (VmHWM since the reset $((MEM_HWM / 1024)) MiB)."
  echo
  echo "### Go benchmarks (same invocation)"
  echo
  echo '```'
  grep -E '^Benchmark' "$work/go.txt"
  echo '```'
  echo
  local sq pg mem c
  for c in 1 16 64; do
    sq=$(gometric "BenchmarkEnroll/ca=p256/c=$c/store=sqlite" ns/op); mem=$(gometric "BenchmarkEnroll/ca=p256/c=$c/store=memory" ns/op)
    echo "- In-process enroll throughput, durable SQLite vs in-memory store, P-256, $c at a time: $(ratio "$mem" "$sq") (1.00 = as fast; target ≥ 0.90); CPU per enrollment $(ratio "$(gometric "BenchmarkEnroll/ca=p256/c=$c/store=sqlite" cpu-ns/op)" "$(gometric "BenchmarkEnroll/ca=p256/c=$c/store=memory" cpu-ns/op)")× the in-memory store's."
  done
  local tmp
  for c in 1 16 64; do
    sq=$(gometric "BenchmarkEnroll/ca=p256/c=$c/store=sqlite" ns/op); tmp=$(gometric "BenchmarkEnroll/ca=p256/c=$c/store=sqlite-tmpfs" ns/op)
    [ -n "$tmp" ] || continue
    echo "- In-process enroll throughput, durable SQLite vs the same store on tmpfs (in memory, fsync free), P-256, $c at a time: $(ratio "$tmp" "$sq"): what durability costs."
  done
  for c in 1 16 64; do
    pg=$(gometric "BenchmarkEnroll/ca=p256/c=$c/store=postgres" ns/op); mem=$(gometric "BenchmarkEnroll/ca=p256/c=$c/store=memory" ns/op)
    [ -n "$pg" ] || continue
    echo "- In-process enroll throughput, PostgreSQL (local, fsync and synchronous_commit on) vs in-memory store, P-256, $c at a time: $(ratio "$mem" "$pg") (estd's CPU only: the server's is not counted)."
  done
  mem=$(gometric BenchmarkEnroll/ca=p256/c=1/store=memory cpu-ns/op)
  echo "- In-process enroll CPU with the in-memory store (no TLS, no HTTP, no disk) vs the crypto floor: $(ratio "$mem" "$floor_p256")×."
  local p1 p16
  p1=$(gometric BenchmarkPut/c=1 ns/op); p16=$(gometric BenchmarkPut/c=16 ns/op)
  echo "- Store insert, durable: one at a time $(awk -v v="$p1" 'BEGIN { printf "%.0f", v / 1000 }') µs/record, 16 at a time with group commit $(awk -v v="$p16" 'BEGIN { printf "%.0f", v / 1000 }') µs/record ($(gometric BenchmarkPut/c=16 records/commit) records per commit)."
  if [ "$SCALE" != 0 ]; then
    local e0 e1 bs st name dash
    for st in sqlite postgres; do
      e0=$(gometric "BenchmarkEnrollScale/store=$st/records=0/enroll" ns/op); e1=$(gometric "BenchmarkEnrollScale/store=$st/records=1000000/enroll" ns/op)
      bs=$(gometric "BenchmarkEnrollScale/store=$st/records=1000000/byserial" ns/op)
      [ -n "$e1" ] || continue
      name="durable SQLite"; [ "$st" = postgres ] && name="PostgreSQL (local)"
      dash=$(gometric "BenchmarkEnrollScale/store=$st/records=1000000/dashboard" ns/op)
      echo "- One million certificates in the store, $name: enroll throughput $(ratio "$e0" "$e1") of an empty store's (target ≥ 0.90); BySerial $(awk -v v="$bs" 'BEGIN { printf "%.0f", v / 1000 }') µs (target < 1000); the dashboard's overview (newest certificates, issuance by hour over the last day, 86,400 of them, and by day over 30 days, all million) $(awk -v v="$dash" 'BEGIN { printf "%.0f", v / 1e6 }') ms."
    done
  fi
}

report >"$work/report.md"
cat "$work/report.md"
if [ "$OUT" != "-" ]; then
  begin='<!-- bench:begin (written by scripts/bench.sh) -->'
  end='<!-- bench:end -->'
  if [ ! -f "$OUT" ] || ! grep -qF "$begin" "$OUT"; then
    printf '# Benchmarks\n\n%s\n%s\n' "$begin" "$end" >>"$OUT"
  fi
  awk -v begin="$begin" -v end="$end" -v report="$work/report.md" '
    $0 == begin { print; while ((getline line < report) > 0) print line; skip = 1; next }
    $0 == end { skip = 0 }
    !skip' "$OUT" >"$work/out.md"
  cp "$work/out.md" "$OUT"
  say "results written to $OUT"
fi
