#!/usr/bin/env bash
# The rewrite stage of an encryption-at-rest key rotation, measured on a
# cluster that encrypts Secrets with aescbc: Kubernetes' documented
#   kubectl get secrets -A -o json | kubectl replace -f -
# next to pkg/cluster/encryption.Rewrite (hack/rewrite), alternately.
# Before each run a new key is staged and promoted (hack/enckey next: the
# file is edited and the run waits until kube-apiserver reports its hash),
# and etcd is read to check that every Secret is under the previous key;
# after the run, that every one is under the new key. So each run really
# re-encrypts every Secret.
#
# Called by hack/bench.sh; also runs alone against a cluster started with
# `e2e-cluster up --encryption-config=FILE`:
#   KUBECONFIG    the cluster (its directory is the cluster's state dir)
#   KUBECTL       kubectl (default: kubectl on PATH)
#   ENCRYPTION_CONFIG  the EncryptionConfiguration file the API server reads
#   BENCH_REWRITE_ROUNDS  rounds (default 2), each a kubectl pipe run then a
#                 rewrite run
#   BENCH_REWRITE_CPUS    a CPU list (taskset -c, e.g. 0): kube-apiserver,
#                 etcd and both tools run on those CPUs only for this run
#                 (their affinity is put back after), to see how each one
#                 scales with cores
#   RESULTS       file to append the table rows to (default: print them)
#   REWRITE_FLAGS extra hack/rewrite flags (e.g. "-workers 16")
#   ENCKEY_FLAGS  extra hack/enckey next flags ("-direct": promote without
#                 staging first, one wait for the API server instead of two)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${KUBECONFIG:?KUBECONFIG must point at the bench cluster}"
: "${ENCRYPTION_CONFIG:?ENCRYPTION_CONFIG must be the EncryptionConfiguration file kube-apiserver reads}"
kubectl_bin=${KUBECTL:-kubectl}
rounds=${BENCH_REWRITE_ROUNDS:-2}
own_results=false
if [ -z "${RESULTS:-}" ]; then RESULTS=$(mktemp); own_results=true; fi
tools=$(mktemp -d)
trap 'rm -rf "$tools"; if $own_results; then rm -f "$RESULTS"; fi' EXIT
go build -o "$tools/rewrite" ./hack/rewrite
go build -o "$tools/enckey" ./hack/enckey
row() { printf '| %-58s | %10s | %10s |\n' "$1" "$2" "$3" >> "$RESULTS"; }
# CPU seconds (user + system) a process used so far.
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
state_dir=$(dirname "$KUBECONFIG")
apiserver=$(pgrep -f -- "--encryption-provider-config=$ENCRYPTION_CONFIG" | head -n 1)
etcd=$(pgrep -f -- "--data-dir=$state_dir/etcd" | head -n 1)
cpus_label=""
pin=()
if [ -n "${BENCH_REWRITE_CPUS:-}" ]; then
  cpus_label=" on CPUs $BENCH_REWRITE_CPUS"
  pin=(taskset -c "$BENCH_REWRITE_CPUS")
  masks="$(taskset -p "$apiserver" | awk '{print $NF}') $(taskset -p "$etcd" | awk '{print $NF}')"
  trap 'read -r ma me <<<"$masks"; taskset -a -p "$ma" "$apiserver" >/dev/null; taskset -a -p "$me" "$etcd" >/dev/null; rm -rf "$tools"; if $own_results; then rm -f "$RESULTS"; fi' EXIT
  taskset -a -p -c "$BENCH_REWRITE_CPUS" "$apiserver" >/dev/null
  taskset -a -p -c "$BENCH_REWRITE_CPUS" "$etcd" >/dev/null
fi
# Wall seconds, peak RSS (MiB) and CPU seconds of one command (by GNU
# time), and the CPU seconds kube-apiserver and etcd spent meanwhile: on a
# shared machine the wall time moves with the load, the CPU much less.
measure() {
  local out=$1; shift
  local a0 e0; a0=$(cpu "$apiserver"); e0=$(cpu "$etcd")
  /usr/bin/time -f '%e %M %U %S' -o "$out" "$@" >/dev/null
  awk -v a0="$a0" -v a1="$(cpu "$apiserver")" -v e0="$e0" -v e1="$(cpu "$etcd")" \
    '{printf "%.2f %.0f %.1f %.1f %.1f\n", $1, $2/1024, $3+$4, a1-a0, e1-e0}' "$out" > "$out.f" && mv "$out.f" "$out"
}

n=$("$kubectl_bin" get secrets -A --no-headers 2>/dev/null | wc -l)
key=$("$tools/enckey" first -config "$ENCRYPTION_CONFIG")
tool_list=(kubectl rewrite)
echo "== encryption rewrite: $n Secrets$cpus_label, $rounds rounds of ${tool_list[*]}, each run under a new aescbc key"
"$tools/enckey" stored -want "$key" >&2
declare -A secs rss cpus
for r in $(seq 1 "$rounds"); do
  for tool in "${tool_list[@]}"; do
    prev=$key
    # shellcheck disable=SC2086 # ENCKEY_FLAGS are words
    key=$("$tools/enckey" next -config "$ENCRYPTION_CONFIG" ${ENCKEY_FLAGS:-})
    # Every Secret is under the previous key, now second: all must move.
    "$tools/enckey" stored -want "$prev" >&2
    case $tool in
    kubectl) measure "$tools/m" "${pin[@]}" sh -c "'$kubectl_bin' get secrets -A -o json | '$kubectl_bin' replace -f -" ;;
    # shellcheck disable=SC2086 # REWRITE_FLAGS are words
    rewrite) measure "$tools/m" "${pin[@]}" "$tools/rewrite" -resources secrets ${REWRITE_FLAGS:-} ;;
    esac
    read -r s m c ca ce < "$tools/m"
    secs[$r$tool]=$s; rss[$r$tool]=$m; cpus[$r$tool]="$c+$ca+$ce"
    "$tools/enckey" stored -want "$key" >&2
    echo "round $r, $tool: $s s, peak $m MiB, CPU s client $c, kube-apiserver $ca, etcd $ce (load $(cut -d' ' -f1 /proc/loadavg)); every Secret now under $key" >&2
  done
done
label() {
  case $1 in
  kubectl) echo "kubectl pipe" ;;
  rewrite) echo "rewrite" ;;
  esac
}
# median of the numbers on stdin, one per line
median() { sort -n | awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2]+v[NR/2+1])/2}'; }
for tool in "${tool_list[@]}"; do
  for r in $(seq 1 "$rounds"); do
    row "$n Secrets$cpus_label, round $r: $(label "$tool") (s / peak MiB)" "${secs[$r$tool]}" "${rss[$r$tool]}"
    row "$n Secrets$cpus_label, round $r: $(label "$tool"), CPU s client+server+etcd" "${cpus[$r$tool]}" "-"
  done
done
for tool in "${tool_list[@]}"; do
  row "$n Secrets$cpus_label, median of $rounds: $(label "$tool") (s / peak MiB)" \
    "$(for r in $(seq 1 "$rounds"); do echo "${secs[$r$tool]}"; done | median)" \
    "$(for r in $(seq 1 "$rounds"); do echo "${rss[$r$tool]}"; done | median)"
done
# The ratio of each round's kubectl run to the run after it (same load,
# minutes apart), then their median and range.
for tool in "${tool_list[@]}"; do
  [ "$tool" = kubectl ] && continue
  ratios=$(for r in $(seq 1 "$rounds"); do awk -v a="${secs[${r}kubectl]}" -v b="${secs[$r$tool]}" 'BEGIN{printf "%.2f\n", a/b}'; done)
  mems=$(for r in $(seq 1 "$rounds"); do awk -v a="${rss[${r}kubectl]}" -v b="${rss[$r$tool]}" 'BEGIN{printf "%.1f\n", a/b}'; done)
  row "$n Secrets$cpus_label: kubectl pipe / $(label "$tool"), time, median (range)" \
    "$(median <<<"$ratios")x" "$(sort -n <<<"$ratios" | sed -n '1p;$p' | paste -sd- -)"
  row "$n Secrets$cpus_label: kubectl pipe / $(label "$tool"), peak memory, median" "$(median <<<"$mems")x" "-"
done
if $own_results; then
  echo
  printf '| %-58s | %10s | %10s |\n' "measurement" "value" "extra"
  printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..12})"
  cat "$RESULTS"
fi
