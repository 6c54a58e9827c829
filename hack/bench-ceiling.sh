#!/usr/bin/env bash
# make bench, ceiling part (issue 19): kubectl rotate secret -l next to the
# "ceiling", hack/ceiling: the plain client-go program that does the least
# work for the same end result (one list of the Secrets, one of each
# workload kind, a merge patch per Secret, a rollout-restart patch per
# reader, one watch per kind until every rollout is complete), under the
# same client rate limits. Paired runs, ceiling then kubectl rotate, on the
# same Secrets; medians, ranges, the ratio of medians and the range of the
# per-pair ratios (odd pairs run the ceiling first, even pairs kubectl
# rotate first); API writes per Secret for both (kubectl rotate's from its
# -v=6 log, the ceiling's from its own request count), and reads. The
# Secret cases also run the ceiling with -records between the two: the
# ceiling plus kubectl rotate's other writes (the previous values copied
# first, each Secret annotated once its readers rolled out), so that the
# table says what those writes cost on their own.
#
# Needs a running cluster (KUBECONFIG exported); called by hack/bench.sh
# (before its table; BENCH_CEILING=0 skips it), also runs alone:
#   KUBECONFIG=... PATH=$PWD/bin:$PATH hack/bench-ceiling.sh
# BENCH_CEILING_SECRETS (default "200 1000"): sizes; for each, N Secrets
#   (label bench=true, key password), each read by one Deployment.
# BENCH_CEILING_RUNS (default 3): pairs per case.
# BENCH_CEILING_PLAN (default 500; 0 skips it): Secrets of the plan case,
#   each read by one Deployment: kubectl rotate apply of a RotationPlan with
#   one item per Secret (a new plan name each run) next to the ceiling.
# Each case's Deployments (pause, replicas 1) roll out with kubectl's
# default surge of one pod; where the kwok nodes lack the pod slots for
# that (2N pods), they roll out one pod down first (maxSurge 0), as the
# row labels say.
# BENCH_CEILING_KEEP_LOGS (default unset): a directory to copy kubectl
#   rotate's -v=6 request logs to (URLs and status codes, no values).
# KUBECTL         kubectl (default: kubectl on PATH)
# KUBECTL_ROTATE  the plugin binary to measure (default: kubectl-rotate on PATH)
# RESULTS         file to append the table rows to (default: print the table)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${BENCH_CEILING_SECRETS:-200 1000}
runs=${BENCH_CEILING_RUNS:-3}
plan_n=${BENCH_CEILING_PLAN:-500}
kubectl_bin=${KUBECTL:-$(command -v kubectl || true)}
rotate=${KUBECTL_ROTATE:-$(command -v kubectl-rotate || true)}
[ -n "${KUBECONFIG:-}" ] || { echo "bench-ceiling: KUBECONFIG is not set: point it at a running test cluster" >&2; exit 2; }
[ -x "$kubectl_bin" ] || { echo "bench-ceiling: no kubectl: set KUBECTL or put kubectl on PATH" >&2; exit 2; }
[ -x "$rotate" ] || { echo "bench-ceiling: no kubectl-rotate: run make build and put bin/ on PATH, or set KUBECTL_ROTATE" >&2; exit 2; }
own_results=false
if [ -z "${RESULTS:-}" ]; then RESULTS=$(mktemp); own_results=true; fi
base=$(mktemp -d "${TMPDIR:-/tmp}/kube-rotate-bench-ceiling.XXXXXX")
namespaces=()
cleanup() {
  if [ "${#namespaces[@]}" -gt 0 ]; then
    "$kubectl_bin" delete namespace "${namespaces[@]}" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
  rm -rf "$base"
  if $own_results; then rm -f "$RESULTS"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

k() { "$kubectl_bin" "$@"; }
now() { date +%s%N; }
since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN {printf "%.2f", (b - a) / 1e9}'; }
row() { printf '| %-58s | %10s | %10s |\n' "$1" "$2" "$3" >> "$RESULTS"; }
writes() { grep -cE '"Response" verb="(POST|PUT|PATCH|DELETE)"' "$1" || true; }
gets() { grep -cE '"Response" verb="GET"' "$1" || true; }

# The ceiling is built once, before anything is timed.
go build -o "$base/ceiling" ./hack/ceiling
ceiling=$base/ceiling

# Pod slots left on schedulable nodes: allocatable pods of the nodes
# without a NoSchedule taint, less the pods that are not finished.
free_pods() {
  local cap used
  cap=$(k get nodes -o jsonpath='{range .items[*]}{.status.allocatable.pods} {.spec.taints[*].effect}{"\n"}{end}' | awk '$0 !~ /NoSchedule|NoExecute/ {s += $1} END {print s + 0}')
  used=$(k get pods -A --no-headers --field-selector=status.phase!=Succeeded,status.phase!=Failed 2>/dev/null | wc -l)
  echo $((cap - used))
}

# setup NS N KEY PREFIX: a fresh namespace with N Secrets PREFIX-i (label
# bench=true, one KEY each), each read by Deployment PREFIX-i; waits until
# all are Available. Sets $surge_note ("" or a label suffix).
setup() {
  local ns=$1 n=$2 key=$3 prefix=$4 manifest strategy="" free
  k delete namespace "$ns" --ignore-not-found --wait=true --timeout=600s >/dev/null
  free=$(free_pods)
  surge_note=""
  if [ $((2 * n)) -gt "$free" ]; then
    strategy="strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 1}}"
    surge_note=" (no surge)"
    echo "   $free free pod slots < 2 x $n: Deployments roll out with maxSurge 0" >&2
  fi
  k create namespace "$ns" >/dev/null
  namespaces+=("$ns")
  until k -n "$ns" get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
  manifest=$base/manifest.yaml
  : > "$manifest"
  for i in $(seq 1 "$n"); do
    cat >> "$manifest" <<YAML
---
apiVersion: v1
kind: Secret
metadata: {name: $prefix-$i, namespace: $ns, labels: {bench: "true"}}
stringData: {$key: "$(head -c 24 /dev/urandom | base64)"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: $prefix-$i, namespace: $ns}
spec:
  replicas: 1
  $strategy
  selector: {matchLabels: {app: $prefix-$i}}
  template:
    metadata: {labels: {app: $prefix-$i}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
        env:
        - name: VALUE
          valueFrom: {secretKeyRef: {name: $prefix-$i, key: $key}}
YAML
  done
  k create -f "$manifest" >/dev/null; rm -f "$manifest"
  settle "$ns" "$n"
}

# settle NS N: every Deployment Available, every rollout complete and
# exactly N pods left (the old ones gone), so that a run starts quiet.
settle() {
  local ns=$1 n=$2 deadline=$((SECONDS + 600)) pods
  k -n "$ns" wait --for=condition=Available deployment --all --timeout=600s >/dev/null
  while :; do
    pods=$(k -n "$ns" get pods --no-headers 2>/dev/null | wc -l)
    [ "$pods" -eq "$n" ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "bench-ceiling: $ns: $pods pods, want $n, after 600 s" >&2; exit 1
    fi
    sleep 0.5
  done
}

# One line per pair: ceiling_s rotate_s ratio ceiling_writes rotate_writes
# ceiling_gets rotate_gets ceiling_restarted_s rotate_restarted_s (when the
# last restart patch was sent, from the start)
per_run=$base/runs
log=$base/log
out=$base/out

# run_ceiling NS KEY N [FLAG...]: one timed ceiling run; sets c_s c_w c_g c_r.
run_ceiling() {
  local s line
  s=$(now)
  if ! "$ceiling" -n "$1" -l bench=true -key "$2" "${@:4}" >"$out" 2>"$out.err"; then
    echo "bench-ceiling: the ceiling failed:" >&2; cat "$out.err" >&2; exit 1
  fi
  c_s=$(since "$s")
  line=$(tail -n 1 "$out")
  # "ceiling: N secrets, M workloads restarted ... (writes done after T s); requests R (GET g, ...), writes W"
  case $line in "ceiling: $3 secrets, $3 workloads"*) ;; *) echo "bench-ceiling: unexpected ceiling summary: $line" >&2; exit 1 ;; esac
  c_w=$(sed -n 's/.*, writes \([0-9]*\)$/\1/p' <<< "$line")
  c_g=$(sed -n 's/.*(GET \([0-9]*\).*/\1/p' <<< "$line")
  c_r=$(sed -n 's/.*(writes done after \([0-9.]*\) s).*/\1/p' <<< "$line")
  : "${c_g:=0}" "${c_r:=0}"
}

# klog's time of day of a log line (HH:MM:SS.micro), in seconds.
klog_s() { awk '{split($2, t, ":"); printf "%.3f\n", t[1] * 3600 + t[2] * 60 + t[3]}'; }
# run_rotate LOGNAME COMMAND...: one timed kubectl rotate run with -v=6;
# sets r_s r_w r_g r_r (the last restart patch, seconds after the log's
# first line) and keeps the log as $base/LOGNAME.log.
run_rotate() {
  local name=$1 s; shift
  : > "$log"
  s=$(now)
  if ! "$@" -v=6 >"$out" 2>"$log"; then
    echo "bench-ceiling: failed: $*" >&2; grep -v '"Response" verb=' "$log" | tail -n 20 >&2; exit 1
  fi
  r_s=$(since "$s")
  r_w=$(writes "$log"); r_g=$(gets "$log")
  local t0 t1
  t0=$(head -n 1 "$log" | klog_s)
  t1=$(grep -E '"Response" verb="PATCH" url=".*/(deployments|statefulsets|daemonsets)/' "$log" | tail -n 1 | klog_s)
  r_r=$(awk -v a="$t0" -v b="${t1:-$t0}" 'BEGIN {d = b - a; if (d < 0) d += 86400; printf "%.2f", d}')
  cp "$log" "$base/$name.log"
}

# Median and range of column $1 of the per-run file: prints "median min-max".
stats() {
  awk -v c="$1" '{print $c}' "$per_run" | sort -g | awk '
    {v[NR] = $1}
    END {
      med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.2f %.2f-%.2f\n", med, v[1], v[NR]
    }'
}
srow() { # label, column
  local med range
  read -r med range <<< "$(stats "$2")"
  row "$1" "$med" "$range"
}
per() { awk -v a="$1" -v n="$2" 'BEGIN {printf "%.2f", a / n}'; }

# report TITLE WHO N: the rows of one case from $per_run; WHO is the
# kubectl rotate command measured, in a few words.
report() {
  local title=$1 who=$2 n=$3 c_med r_med pr cw rw cg rg pk
  read -r c_med _ <<< "$(stats 1)"
  read -r r_med _ <<< "$(stats 2)"
  read -r _ pr <<< "$(stats 3)"
  read -r cw _ <<< "$(stats 4)"; read -r rw _ <<< "$(stats 5)"
  read -r cg _ <<< "$(stats 6)"; read -r rg _ <<< "$(stats 7)"
  row "$title, $runs pairs" "median" "range"
  srow "ceiling: $n Secrets + restart + wait (s)" 1
  srow "$who: $n Secrets + restart + wait (s)" 2
  srow "ceiling: last restart sent after (s)" 8
  srow "$who: last restart sent after (s)" 9
  row "$who / ceiling (x; extra: per-pair range)" "$(awk -v a="$r_med" -v b="$c_med" 'BEGIN {printf "%.2f", a / b}')" "$pr"
  row "ceiling: API writes per Secret (extra: per run)" "$(per "$cw" "$n")" "${cw%.*}"
  row "$who: API writes per Secret (extra: per run)" "$(per "$rw" "$n")" "${rw%.*}"
  row "ceiling: GETs per Secret, watches too (extra: per run)" "$(per "$cg" "$n")" "${cg%.*}"
  row "$who: GETs per Secret (extra: per run)" "$(per "$rg" "$n")" "${rg%.*}"
  if [ "$(awk 'NR == 1 {print NF}' "$per_run")" -ge 12 ]; then
    local k_med kw
    read -r k_med _ <<< "$(stats 10)"
    read -r kw _ <<< "$(stats 11)"
    read -r _ pk <<< "$(stats 12)"
    srow "ceiling -records (previous kept, Secrets recorded) (s)" 10
    row "ceiling -records: API writes per Secret (extra: per run)" "$(per "$kw" "$n")" "${kw%.*}"
    row "ceiling -records / ceiling (x): what the extra writes cost" "$(awk -v a="$k_med" -v b="$c_med" 'BEGIN {printf "%.2f", a / b}')" "-"
    row "$who / ceiling -records (x; extra: per-pair range)" "$(awk -v a="$r_med" -v b="$k_med" 'BEGIN {printf "%.2f", a / b}')" "$pk"
  fi
}

for n in $sizes; do
  ns=bench-ceiling-$n
  echo "== ceiling: $n Secrets, each read by one Deployment, ceiling vs kubectl rotate secret -l, $runs pairs"
  setup "$ns" "$n" password app
  : > "$per_run"
  for r in $(seq 1 "$runs"); do
    replace=()
    # Runs after the first find NAME-previous holding the values of a
    # rotation nobody finished.
    if [ "$r" -gt 1 ]; then replace=(--replace-previous); fi
    # Odd pairs run the ceiling first, even pairs kubectl rotate first:
    # the second run of a pair starts on a cluster still cleaning up
    # after the first (old ReplicaSets, pod deletions), and alternating
    # cancels that out.
    # Between the two, the ceiling with kubectl rotate's other writes
    # (-records: the previous values kept, each Secret recorded).
    records() { run_ceiling "$ns" password "$n" -records; k_s=$c_s k_w=$c_w; settle "$ns" "$n"; }
    if [ $((r % 2)) -eq 1 ]; then
      run_ceiling "$ns" password "$n"; settle "$ns" "$n"
      cs=$c_s cw=$c_w cg=$c_g cr=$c_r
      records
      run_rotate "secret-$n-$r" "$rotate" secret -n "$ns" -l bench=true --key password --generate hex:16 --timeout 5m "${replace[@]}"; settle "$ns" "$n"
    else
      run_rotate "secret-$n-$r" "$rotate" secret -n "$ns" -l bench=true --key password --generate hex:16 --timeout 5m "${replace[@]}"; settle "$ns" "$n"
      records
      run_ceiling "$ns" password "$n"; settle "$ns" "$n"
      cs=$c_s cw=$c_w cg=$c_g cr=$c_r
    fi
    c_s=$cs c_w=$cw c_g=$cg c_r=$cr
    ratio=$(awk -v a="$r_s" -v b="$c_s" 'BEGIN {printf "%.2f", a / b}')
    kratio=$(awk -v a="$r_s" -v b="$k_s" 'BEGIN {printf "%.2f", a / b}')
    echo "$c_s $r_s $ratio $c_w $r_w $c_g $r_g $c_r $r_r $k_s $k_w $kratio" >> "$per_run"
    echo "   pair $r: ceiling ${c_s}s ($c_w writes, $c_g GETs, last restart at ${c_r}s), ceiling -records ${k_s}s ($k_w writes), kubectl rotate ${r_s}s ($r_w writes, $r_g GETs, last restart at ${r_r}s), ${ratio}x the ceiling, ${kratio}x the ceiling with records"
  done
  report "ceiling vs rotate secret -l, $n Secrets$surge_note" "rotate secret -l" "$n"
  k delete namespace "$ns" --wait=true --timeout=600s >/dev/null
done

if [ "$plan_n" -gt 0 ]; then
  n=$plan_n ns=bench-ceiling-plan
  echo "== ceiling: a $n-item RotationPlan, one Deployment per Secret, ceiling vs kubectl rotate apply, $runs pairs"
  setup "$ns" "$n" K pl
  : > "$per_run"
  for r in $(seq 1 "$runs"); do
    # A finished plan is not rotated again: a new name (and journal) per
    # run; replacePrevious since the earlier runs left NAME-previous
    # unfinished.
    plan=$base/plan-$r.yaml
    printf 'apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPlan\nmetadata: {name: bench-ceiling-%s}\nspec:\n  namespace: %s\n  replacePrevious: true\n  items:\n' "$r" "$ns" > "$plan"
    for i in $(seq 1 "$n"); do
      printf '  - {name: pl-%s, secret: {name: pl-%s, generate: [{key: K, spec: "hex:16"}]}}\n' "$i" "$i" >> "$plan"
    done
    # The order alternates, as above.
    if [ $((r % 2)) -eq 1 ]; then
      run_ceiling "$ns" K "$n"; settle "$ns" "$n"
      run_rotate "plan-$n-$r" "$rotate" apply -f "$plan"; settle "$ns" "$n"
    else
      run_rotate "plan-$n-$r" "$rotate" apply -f "$plan"; settle "$ns" "$n"
      run_ceiling "$ns" K "$n"; settle "$ns" "$n"
    fi
    ratio=$(awk -v a="$r_s" -v b="$c_s" 'BEGIN {printf "%.2f", a / b}')
    echo "$c_s $r_s $ratio $c_w $r_w $c_g $r_g $c_r $r_r" >> "$per_run"
    echo "   pair $r: ceiling ${c_s}s ($c_w writes, $c_g GETs, last restart at ${c_r}s), kubectl rotate apply ${r_s}s ($r_w writes, $r_g GETs, last restart at ${r_r}s), ${ratio}x"
  done
  report "ceiling vs rotate apply, $n-item plan$surge_note" "rotate apply" "$n"
  k delete namespace "$ns" --wait=true --timeout=600s >/dev/null
fi

if [ -n "${BENCH_CEILING_KEEP_LOGS:-}" ]; then
  mkdir -p "$BENCH_CEILING_KEEP_LOGS" && cp "$base"/*.log "$BENCH_CEILING_KEEP_LOGS"/ 2>/dev/null || true
fi

if $own_results; then
  echo
  printf '| %-58s | %10s | %10s |\n' "measurement" "value" "extra"
  printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..12})"
  cat "$RESULTS"
  echo
fi
