#!/usr/bin/env bash
# make bench, scripted part: measurements on the local cluster, each next to
# the plain-kubectl way of doing the same job, in the same run.
# Called by the Makefile with CLUSTER set and bin/ on PATH.
# BENCH_SECRETS (default 200): Secrets, each consumed by one Deployment.
# BENCH_STATUS_SECRETS (default 10000): Secrets for the key-age check, one
# in ten of them TLS or JWKS; status is measured next to kubectl get and
# next to the floor for a scan, a metadata-only paged list (hack/metafloor).
# BENCH_STATUS_LARGE (default 100000; 0 skips it): the same check over that
# many Secrets (one in ten TLS or JWKS): time and peak memory next to the
# floor, to show that memory follows the report, not the Secrets.
# BENCH_REWRITE_ROUNDS (default 2): kubectl pipe + rewrite pairs of the
# encryption rewrite (hack/bench-rewrite.sh).
# BENCH_FLEET (default 1; 0 skips it): status over three local clusters of
# their own, next to the single scans (hack/bench-fleet.sh, which reads
# BENCH_FLEET_SECRETS and BENCH_FLEET_RUNS; it also runs alone).
# BENCH_CEILING (default 1; 0 skips it): kubectl rotate secret -l and apply
# next to the client-go ceiling, the least work for the same result
# (hack/bench-ceiling.sh, which reads BENCH_CEILING_SECRETS, default
# "200 1000", BENCH_CEILING_RUNS, default 3, and BENCH_CEILING_PLAN,
# default 500; it also runs alone).
# API writes are counted from -v=6 request logs (verb POST/PUT/PATCH/DELETE),
# the same way for kubectl and kubectl rotate.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${BENCH_SECRETS:-200}
m=${BENCH_STATUS_SECRETS:-10000}
results=$(mktemp)
# Secrets are encrypted at rest (aescbc), so that the rewrite rows below
# measure real re-encryption; the key file lives in a private directory.
enc_dir=$(mktemp -d); enc_config=$enc_dir/encryption.yaml
trap 'rm -f "$results"; rm -rf "$enc_dir"' EXIT
now() { date +%s%N; }
since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN {printf "%.1f", (b - a) / 1e9}'; }
row() { printf '| %-58s | %10s | %10s |\n' "$1" "$2" "$3" >> "$results"; }
# Wall seconds and peak RSS (MiB) of one command, via GNU time when present.
measure() {
  local out=$1; shift
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null
    awk '{printf "%.2f %.0f\n", $1, $2/1024}' "$out" > "$out.f" && mv "$out.f" "$out"
  else
    local s; s=$(now); "$@" >/dev/null; echo "$(since "$s") -" > "$out"
  fi
}

echo "== cluster start (warm binaries), Secrets encrypted at rest (aescbc)"
$CLUSTER down
go run ./hack/enckey init -config "$enc_config" >/dev/null
s=$(now)
line=$($CLUSTER up --encryption-config="$enc_config" 2>/dev/null | tail -n 1)
row "local cluster up, cached binaries (s)" "$(since "$s")" "-"
export "${line?}"
kubectl_bin=$($CLUSTER build 2>/dev/null | sed -n 's/^KUBECTL=//p')
k() { "$kubectl_bin" "$@"; }

echo "== $n Secrets, each consumed by one Deployment"
k delete namespace bench --ignore-not-found --wait=true >/dev/null
k delete namespace bench-status --ignore-not-found --wait=true >/dev/null
k create namespace bench >/dev/null
until k -n bench get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
manifest=$(mktemp)
for i in $(seq 1 "$n"); do
  cat >> "$manifest" <<YAML
---
apiVersion: v1
kind: Secret
metadata: {name: app-$i, namespace: bench, labels: {bench: "true"}}
stringData: {password: "$(head -c 24 /dev/urandom | base64)"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app-$i, namespace: bench}
spec:
  replicas: 1
  selector: {matchLabels: {app: app-$i}}
  template:
    metadata: {labels: {app: app-$i}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
        env:
        - name: PASSWORD
          valueFrom: {secretKeyRef: {name: app-$i, key: password}}
YAML
done
k apply -f "$manifest" >/dev/null; rm -f "$manifest"
k -n bench wait --for=condition=Available deployment --all --timeout=300s >/dev/null

writes() { grep -cE '"Response" verb="(POST|PUT|PATCH|DELETE)"' "$1" || true; }
log=$(mktemp)

echo "== the runbook way: kubectl patch + rollout restart per Secret, then rollout status for each"
patchfile=$(mktemp)
runbook() {
  for i in $(seq 1 "$n"); do
    # New value through a patch file, not the command line.
    printf '{"stringData":{"password":"%s"}}' "$(head -c 24 /dev/urandom | base64)" > "$patchfile"
    k -n bench patch secret "app-$i" --type=merge --patch-file="$patchfile" -v=6 >/dev/null 2>>"$log"
    k -n bench rollout restart "deployment/app-$i" -v=6 >/dev/null 2>>"$log"
  done
  for i in $(seq 1 "$n"); do
    k -n bench rollout status "deployment/app-$i" --timeout=300s >/dev/null
  done
}
: > "$log"; s=$(now); runbook; e=$(since "$s")
rm -f "$patchfile"
row "plain kubectl: $n Secrets, patch+restart+status (s)" "$e" "$((3 * n)) runs"
row "plain kubectl: API writes" "$(writes "$log")" "$(awk -v w="$(writes "$log")" -v n="$n" 'BEGIN{printf "%.1f/secret", w/n}')"

echo "== kubectl rotate: the same $n Secrets in one run (-l), previous values kept"
: > "$log"
if [ -x /usr/bin/time ]; then
  s=$(now)
  /usr/bin/time -f '%M' -o "$results.rss" kubectl-rotate secret -n bench -l bench=true --key password --generate password:24 --timeout 5m -v=6 >/dev/null 2>>"$log"
  e=$(since "$s"); rss=$(awk '{printf "%.0f", $1/1024}' "$results.rss"); rm -f "$results.rss"
else
  s=$(now); kubectl-rotate secret -n bench -l bench=true --key password --generate password:24 --timeout 5m -v=6 >/dev/null 2>>"$log"; e=$(since "$s"); rss="-"
fi
row "kubectl rotate: $n Secrets + restart + wait, one run (s)" "$e" "peak ${rss} MiB"
w=$(writes "$log")
row "kubectl rotate: API writes" "$w" "$(awk -v w="$w" -v n="$n" 'BEGIN{printf "%.1f/secret", w/n}')"
rm -f "$log"

k delete namespace bench --wait=false >/dev/null

echo "== a 50-item RotationPlan (no hooks) next to 50 runs of kubectl rotate secret"
k delete namespace bench-plan --ignore-not-found --wait=true >/dev/null
k create namespace bench-plan >/dev/null
until k -n bench-plan get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
manifest=$(mktemp); plan=$(mktemp --suffix=.yaml)
printf 'apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPlan\nmetadata: {name: bench}\nspec:\n  namespace: bench-plan\n  items:\n' > "$plan"
for i in $(seq 1 50); do
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata: {name: p-%s, namespace: bench-plan}\nstringData: {K: "%s"}\n' "$i" "$(head -c 16 /dev/urandom | base64)" >> "$manifest"
  printf '  - {name: p-%s, secret: {name: p-%s, generate: [{key: K, spec: "hex:32"}]}}\n' "$i" "$i" >> "$plan"
done
# 10 Deployments, each reading 5 of the Secrets.
for d in $(seq 0 9); do
  env=""
  for j in $(seq 1 5); do env="$env{secretRef: {name: p-$((d * 5 + j))}}, "; done
  cat >> "$manifest" <<YAML
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reader-$d, namespace: bench-plan}
spec:
  replicas: 1
  selector: {matchLabels: {app: reader-$d}}
  template:
    metadata: {labels: {app: reader-$d}}
    spec:
      terminationGracePeriodSeconds: 0
      containers: [{name: app, image: registry.k8s.io/pause:3.10, envFrom: [${env%, }]}]
YAML
done
k apply -f "$manifest" >/dev/null; rm -f "$manifest"
k -n bench-plan wait --for=condition=Available deployment --all --timeout=300s >/dev/null
: > "$log"; s=$(now)
kubectl-rotate apply -f "$plan" -v=6 >/dev/null 2>>"$log"
row "kubectl rotate apply: 50-item plan, 10 consumers (s)" "$(since "$s")" "-"
w=$(writes "$log"); row "kubectl rotate apply: API writes" "$w" "$(awk -v w="$w" 'BEGIN{printf "%.1f/item", w/50}')"
restarts=$(grep -cE '"Response" verb="PATCH" url=".*/deployments/' "$log" || true)
row "kubectl rotate apply: Deployment restarts" "$restarts" "-"
: > "$log"; s=$(now)
for i in $(seq 1 50); do
  kubectl-rotate secret -n bench-plan "p-$i" --key K --generate hex:32 -v=6 >/dev/null 2>>"$log"
done
row "50 x kubectl rotate secret, one Secret each (s)" "$(since "$s")" "-"
w=$(writes "$log"); row "50 x kubectl rotate secret: API writes" "$w" "$(awk -v w="$w" 'BEGIN{printf "%.1f/item", w/50}')"
restarts=$(grep -cE '"Response" verb="PATCH" url=".*/deployments/' "$log" || true)
row "50 x kubectl rotate secret: Deployment restarts" "$restarts" "-"
rm -f "$plan"
k delete namespace bench-plan --wait=false >/dev/null

echo "== key ages: $m Secrets ($((m / 20)) TLS, $((m / 20)) JWKS), kubectl rotate status next to kubectl get"
s=$(now)
go run ./hack/seedsecrets -n bench-status -count "$m" -tls $((m / 20)) -jwks $((m / 20)) >/dev/null
row "seed $m Secrets (s)" "$(since "$s")" "-"
timed() { # label, command...
  local label=$1; shift
  measure "$results.m" "$@"
  read -r secs rss < "$results.m"; rm -f "$results.m"
  row "$label (s / peak MiB)" "$secs" "$rss"
  last_secs=$secs
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "-"}'; }
floor_bin=$(mktemp -d)/metafloor
go build -o "$floor_bin" ./hack/metafloor
timed "kubectl get secrets -A -o json" "$kubectl_bin" get secrets -A -o json
timed "kubectl get secrets -A (server-side table)" "$kubectl_bin" get secrets -A
timed "metadata-only paged list, client-go (hack/metafloor: floor)" "$floor_bin" -A
floor_secs=$last_secs
timed "kubectl rotate status -A -o json" kubectl-rotate status -A -o json
row "kubectl rotate status -A -o json / floor" "$(ratio "$last_secs" "$floor_secs")" "-"
timed "kubectl rotate status -A (table)" kubectl-rotate status -A
row "kubectl rotate status -A (table) / floor" "$(ratio "$last_secs" "$floor_secs")" "-"
# The rewrite stage of an encryption key rotation, on the same Secrets
# (and the cluster's others): Kubernetes' documented pipe next to
# pkg/cluster/encryption.Rewrite, alternately, each run moving every Secret
# to a new key (hack/bench-rewrite.sh stages and promotes it first, and
# reads etcd before and after). The namespaces deleted above must be gone
# first: a Secret deleted under the pipe fails kubectl replace.
k wait --for=delete namespace/bench namespace/bench-plan --timeout=300s >/dev/null 2>&1 || true
KUBECTL=$kubectl_bin ENCRYPTION_CONFIG=$enc_config RESULTS=$results hack/bench-rewrite.sh
# The same on one CPU: kubectl's pipe is bound by its round trips, one
# object after another, so its time hardly moves with cores; the rewrite is
# bound by kube-apiserver's CPU, so its time falls as cores are added.
if [ "$(nproc)" -ge 2 ]; then
  KUBECTL=$kubectl_bin ENCRYPTION_CONFIG=$enc_config RESULTS=$results BENCH_REWRITE_ROUNDS=1 BENCH_REWRITE_CPUS=0 hack/bench-rewrite.sh
fi
# Status over many more Secrets (after the rewrite rows, which need a
# cluster whose Secrets stay put): the scan holds one page of them at a
# time, so its peak grows with the report (one item per Secret), not with
# the Secrets' objects.
large=${BENCH_STATUS_LARGE:-100000}
if [ "$large" != 0 ]; then
  echo "== key ages: $large Secrets, kubectl rotate status next to the floor"
  s=$(now)
  go run ./hack/seedsecrets -n bench-status-large -count "$large" -tls $((large / 20)) -jwks $((large / 20)) >/dev/null
  row "seed $large more Secrets (s)" "$(since "$s")" "-"
  total=$((m + large))
  timed "$total Secrets: metadata-only paged list (floor)" "$floor_bin" -A
  floor_secs=$last_secs
  timed "$total Secrets: kubectl rotate status -A -o json" kubectl-rotate status -A -o json
  row "$total Secrets: kubectl rotate status -A -o json / floor" "$(ratio "$last_secs" "$floor_secs")" "-"
  timed "$total Secrets: kubectl get secrets -A -o json" "$kubectl_bin" get secrets -A -o json
  k delete namespace bench-status-large --wait=false >/dev/null
fi
rm -rf "$(dirname "$floor_bin")"
k delete namespace bench-status --wait=false >/dev/null
# status over a fleet: three clusters of its own (hack/bench-fleet.sh);
# this cluster's namespace controller is done deleting first, so that it
# does not compete with them for the CPUs.
if [ "${BENCH_FLEET:-1}" != 0 ]; then
  k wait --for=delete namespace/bench-status namespace/bench-status-large --timeout=900s >/dev/null 2>&1 || true
  KUBECTL=$kubectl_bin RESULTS=$results hack/bench-fleet.sh
fi
# The ceiling on this cluster (hack/bench-ceiling.sh), once its namespace
# controller is done with the namespaces deleted above.
if [ "${BENCH_CEILING:-1}" != 0 ]; then
  k wait --for=delete namespace/bench-status namespace/bench-status-large --timeout=900s >/dev/null 2>&1 || true
  KUBECTL=$kubectl_bin RESULTS=$results hack/bench-ceiling.sh
fi

echo
printf '| %-58s | %10s | %10s |\n' "measurement" "value" "extra"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..12})"
cat "$results"
echo
