#!/usr/bin/env bash
# make bench, fleet part (issue 18): `kubectl rotate status` over three
# local clusters in one run (--context a,b,c) next to the same three scans
# one after another, and plain `kubectl get secrets -A -o json` for each,
# in the same paired runs. Goal: the fleet scan takes at most 1.3x the
# slowest single-cluster scan.
#
# It starts three clusters of its own (bin/e2e-cluster up, no real node,
# state under $TMPDIR) with the same Secrets as the status rows of
# hack/bench.sh, and stops them at the end, also on failure or Ctrl-C.
# Called by hack/bench.sh (before its table; BENCH_FLEET=0 skips it); also
# runs alone after `make build bin/e2e-cluster`:
#   hack/bench-fleet.sh
# BENCH_FLEET_SECRETS (default 10000): Secrets per cluster, one in ten of
#   them TLS or JWKS.
# BENCH_FLEET_RUNS (default 3): paired runs; medians and ranges are shown.
#   Odd runs scan the fleet first, even runs the single clusters first.
# KUBECTL     kubectl (default: the one bin/e2e-cluster builds)
# KUBECTL_ROTATE  the plugin binary to measure (default bin/kubectl-rotate)
# RESULTS     file to append the table rows to (default: print the table)
set -euo pipefail
cd "$(dirname "$0")/.."
m=${BENCH_FLEET_SECRETS:-10000}
runs=${BENCH_FLEET_RUNS:-3}
rotate=${KUBECTL_ROTATE:-$PWD/bin/kubectl-rotate}
e2e_cluster=$PWD/bin/e2e-cluster
[ -x /usr/bin/time ] || { echo "bench-fleet: needs GNU time (/usr/bin/time; Debian package time)" >&2; exit 2; }
for b in "$rotate" "$e2e_cluster"; do
  [ -x "$b" ] || { echo "bench-fleet: $b missing: run make build bin/e2e-cluster" >&2; exit 2; }
done
kubectl_bin=${KUBECTL:-$("$e2e_cluster" build 2>/dev/null | sed -n 's/^KUBECTL=//p')}
own_results=false
if [ -z "${RESULTS:-}" ]; then RESULTS=$(mktemp); own_results=true; fi
names=(fleet-a fleet-b fleet-c)
base=$(mktemp -d "${TMPDIR:-/tmp}/kube-rotate-bench-fleet.XXXXXX")
cleanup() {
  for n in "${names[@]}"; do
    if [ -e "$base/$n/state.json" ]; then "$e2e_cluster" --state-dir="$base/$n" down || true; fi
  done
  rm -rf "$base"
  if $own_results; then rm -f "$RESULTS"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s%N; }
since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN {printf "%.1f", (b - a) / 1e9}'; }
row() { printf '| %-58s | %10s | %10s |\n' "$1" "$2" "$3" >> "$RESULTS"; }

echo "== fleet: three local clusters (${names[*]}), $m Secrets each, one fleet scan next to three single scans"
s=$(now)
for n in "${names[@]}"; do
  # One after another: each picks free ports, and two starts at once could
  # pick the same one.
  if ! line=$("$e2e_cluster" --state-dir="$base/$n" up 2>"$base/$n.up.log" | tail -n 1); then
    cat "$base/$n.up.log" >&2; exit 1
  fi
  case $line in KUBECONFIG=*) ;; *) cat "$base/$n.up.log" >&2; exit 1 ;; esac
done
row "fleet: 3 local clusters up, one after another (s)" "$(since "$s")" "-"
go build -o "$base/seedsecrets" ./hack/seedsecrets
go build -o "$base/mergekubeconfig" ./hack/mergekubeconfig
args=()
for n in "${names[@]}"; do args+=("$n=$base/$n/kubeconfig"); done
"$base/mergekubeconfig" -o "$base/fleet.kubeconfig" "${args[@]}"
export KUBECONFIG=$base/fleet.kubeconfig

s=$(now); pids=()
for n in "${names[@]}"; do
  KUBECONFIG=$base/$n/kubeconfig "$base/seedsecrets" -n bench-status -count "$m" -tls $((m / 20)) -jwks $((m / 20)) >/dev/null &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
row "fleet: seed 3 x $m Secrets, concurrently (s)" "$(since "$s")" "-"

# CPU seconds (user + system) the clusters' kube-apiservers and etcds used
# so far, from /proc: what the servers spent on a scan.
server_pids=()
for n in "${names[@]}"; do
  mapfile -t -O "${#server_pids[@]}" server_pids < <(awk '/"name": "(etcd|kube-apiserver)"/ {want = 1; next} want && /"pid":/ {gsub(/[^0-9]/, ""); print; want = 0}' "$base/$n/state.json")
done
[ "${#server_pids[@]}" -eq 6 ] || { echo "bench-fleet: want 6 server pids, found ${server_pids[*]:-none}" >&2; exit 1; }
tck=$(getconf CLK_TCK)
# CPU ticks (user + system) the given processes used so far.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
server_cpu() { awk -v t="$(ticks "${server_pids[@]}")" -v h="$tck" 'BEGIN {printf "%.2f", t / h}'; }
# One measured command: "wall peak_MiB client_cpu server_cpu" into $1, its
# stderr into $1.err.
measure() {
  local out=$1; shift
  local c0; c0=$(server_cpu)
  if ! /usr/bin/time -f '%e %M %U %S' -o "$out.t" "$@" >/dev/null 2>"$out.err"; then
    echo "bench-fleet: failed: $*" >&2; cat "$out.err" >&2; exit 1
  fi
  awk -v c0="$c0" -v c1="$(server_cpu)" '{printf "%.2f %.0f %.2f %.2f\n", $1, $2 / 1024, $3 + $4, c1 - c0}' "$out.t" > "$out"
  rm -f "$out.t"
}
# The count of the "N credentials: ..." line of a status run's stderr (a
# fleet scan's "N credentials in 3 of 3 clusters: ...").
credentials() { sed -n 's/^\([0-9][0-9]*\) credentials[ :].*/\1/p' "$1" | tail -n 1; }

fleet=false serial=false
help=$("$rotate" status --help 2>&1) # not piped into grep -q: pipefail and SIGPIPE
case $help in *--all-contexts*) fleet=true ;; esac
case $help in *--concurrency*) serial=true ;; esac
cores=$(nproc)
ctxs=$(IFS=,; echo "${names[*]}")
# Warm-up, not measured: each cluster scanned once.
for n in "${names[@]}"; do "$rotate" status -A --context "$n" >/dev/null 2>&1; done

# One line per run: run fleet_s fleet_mib fleet_cpu fleet_srv sum_s slowest_s
# single_mib single_cpu single_srv kget_sum kget_slowest kget_mib ratio
# serial_s floor_s
per_run=$base/runs
: > "$per_run"
m_out=$base/m
singles() {
  sum=0; slowest=0; single_mib=0; single_cpu=0; single_srv=0; single_n=0; singles_s=""
  local n secs mib cpu srv
  for n in "${names[@]}"; do
    measure "$m_out" "$rotate" status -A --context "$n"
    read -r secs mib cpu srv < "$m_out"
    single_n=$((single_n + $(credentials "$m_out.err")))
    singles_s="$singles_s$secs "
    sum=$(awk -v a="$sum" -v b="$secs" 'BEGIN {print a + b}')
    slowest=$(awk -v a="$slowest" -v b="$secs" 'BEGIN {print (b > a) ? b : a}')
    single_mib=$(awk -v a="$single_mib" -v b="$mib" 'BEGIN {print (b > a) ? b : a}')
    single_cpu=$(awk -v a="$single_cpu" -v b="$cpu" 'BEGIN {print a + b}')
    single_srv=$(awk -v a="$single_srv" -v b="$srv" 'BEGIN {print a + b}')
  done
}
fleet_scan() {
  if ! $fleet; then fleet_s=- fleet_mib=- fleet_cpu=- fleet_srv=- fleet_n=- floor=- serial_s=-; return; fi
  measure "$m_out" "$rotate" status -A --context "$ctxs"
  read -r fleet_s fleet_mib fleet_cpu fleet_srv < "$m_out"
  fleet_n=$(credentials "$m_out.err")
  floor=$(awk -v a="$fleet_cpu" -v b="$fleet_srv" -v c="$cores" 'BEGIN {printf "%.2f", (a + b) / c}')
  serial_s=-
  if $serial; then
    # The same fleet scan one cluster at a time: what the concurrency buys.
    measure "$m_out" "$rotate" status -A --context "$ctxs" --concurrency 1
    read -r serial_s _ _ _ < "$m_out"
  fi
}
# How busy the CPUs are over 5 s while the bench runs nothing, as
# ALL/OWN: percent of all CPUs, and the part of it the three clusters' own
# processes used (about 5 when idle). ALL well above OWN means
# something else shares the machine and the figures below are noisy.
all_pids=()
for n in "${names[@]}"; do
  mapfile -t -O "${#all_pids[@]}" all_pids < <(awk '/"pid":/ {gsub(/[^0-9]/, ""); print}' "$base/$n/state.json")
done
busy() {
  local a b o0 o1
  a=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat); o0=$(ticks "${all_pids[@]}"); sleep 5
  b=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat); o1=$(ticks "${all_pids[@]}")
  awk -v a="$a" -v b="$b" -v o=$((o1 - o0)) 'BEGIN {split(a, x, " "); split(b, y, " "); u = y[1] - x[1]; i = y[2] - x[2]; printf "%.0f/%.0f\n", 100 * u / (u + i), 100 * o / (u + i)}'
}
busy0=$(busy)
for r in $(seq 1 "$runs"); do
  echo "== fleet: paired run $r of $runs"
  if [ $((r % 2)) -eq 1 ]; then fleet_scan; singles; else singles; fleet_scan; fi
  if $fleet && [ "$fleet_n" != "$single_n" ]; then
    echo "bench-fleet: the fleet scan reported ${fleet_n:-no} credentials, the single scans $single_n" >&2
  fi
  kget_sum=0; kget_slowest=0; kget_mib=0
  for n in "${names[@]}"; do
    measure "$m_out" "$kubectl_bin" get secrets -A -o json --context "$n"
    read -r secs mib _ _ < "$m_out"
    kget_sum=$(awk -v a="$kget_sum" -v b="$secs" 'BEGIN {print a + b}')
    kget_slowest=$(awk -v a="$kget_slowest" -v b="$secs" 'BEGIN {print (b > a) ? b : a}')
    kget_mib=$(awk -v a="$kget_mib" -v b="$mib" 'BEGIN {print (b > a) ? b : a}')
  done
  ratio=-
  if $fleet; then ratio=$(awk -v f="$fleet_s" -v s="$slowest" 'BEGIN {printf "%.2f", f / s}'); fi
  echo "$r $fleet_s $fleet_mib $fleet_cpu $fleet_srv $sum $slowest $single_mib $single_cpu $single_srv $kget_sum $kget_slowest $kget_mib $ratio $serial_s $floor" >> "$per_run"
  echo "   fleet ${fleet_s}s (${fleet_mib} MiB), single scans $(echo "${singles_s% }" | tr " " /)s (sum ${sum}s), fleet/slowest ${ratio}, kubectl get sum ${kget_sum}s"
done

# Median and range of column $1 of the per-run file: prints "median min-max".
stats() {
  awk -v c="$1" '{print $c}' "$per_run" | sort -g | awk '
    {v[NR] = $1}
    END {
      if (v[1] == "-") {print "- -"; exit}
      med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.2f %.2f-%.2f\n", med, v[1], v[NR]
    }'
}
srow() { # label, column, [integer]
  local med range
  read -r med range <<< "$(stats "$2")"
  if [ "${3:-}" = int ] && [ "$med" != - ]; then
    med=$(printf '%.0f' "$med"); range=$(awk -v r="$range" 'BEGIN {split(r, a, "-"); printf "%.0f-%.0f", a[1], a[2]}')
  fi
  row "$1" "$med" "$range"
}
row "fleet: $runs paired runs, medians (value) and ranges (extra):" "" ""
row "fleet: CPU busy in 5 s idle, before | after (all/own %)" "$busy0" "$(busy)"
if $fleet; then
  srow "status -A --context ${ctxs} (s)" 2
else
  row "status --context a,b,c: not in this kubectl-rotate build" "-" "-"
fi
srow "status -A --context X, X = a, b, c in turn: sum (s)" 6
srow "status -A --context X: slowest of the three (s)" 7
if $fleet; then
  srow "fleet scan / slowest single scan, per run (x)" 14
  read -r med _ <<< "$(stats 14)"
  row "goal: fleet scan <= 1.3 x slowest single scan" "$(awk -v r="$med" 'BEGIN {print (r <= 1.3) ? "met" : "missed"}')" "${med}x"
  srow "status fleet scan: peak RSS (MiB)" 3 int
fi
srow "status single scan: peak RSS, largest of the three (MiB)" 8 int
if $fleet; then
  srow "status fleet scan: client CPU, user+sys (s)" 4
  srow "status fleet scan: kube-apiservers + etcds CPU (s)" 5
  srow "status fleet scan: (client + servers CPU) / $cores cores (s)" 16
  if $serial; then srow "status fleet scan with --concurrency 1 (s)" 15; fi
fi
srow "status single scans, all three: client CPU (s)" 9
srow "status single scans, all three: apiservers + etcds CPU (s)" 10
srow "kubectl get secrets -A -o json, a, b, c in turn: sum (s)" 11
srow "kubectl get secrets -A -o json: slowest of the three (s)" 12
srow "kubectl get secrets -A -o json: peak RSS, largest (MiB)" 13 int

if $own_results; then
  echo
  printf '| %-58s | %10s | %10s |\n' "measurement" "value" "extra"
  printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..12})"
  cat "$RESULTS"
  echo
fi
