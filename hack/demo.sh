#!/usr/bin/env bash
# make demo: start the local cluster, deploy the sample app, and walk
# through the rotation the DiracX runbook (shared seed 000) does by hand.
# Called by the Makefile with CLUSTER set and bin/ on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

say()  { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
run()  { printf '    $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/      /'; }

say "Step 1: a real local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok nodes)"
note "First run builds the binaries from the Go module proxy (~15 min on 2 cores); later runs start in seconds."
kubeconfig_line=$($CLUSTER up | tail -n 1)
export "${kubeconfig_line?}"
kubectl_bin=$($CLUSTER build 2>/dev/null | sed -n 's/^KUBECTL=//p')
# kubectl of the same version as the API server; plugins on PATH work with it as with any kubectl.
kubectl() { "$kubectl_bin" "$@"; }
note "$kubeconfig_line"
run kubectl get nodes -o wide

say "Step 2: the sample app: Deployments consuming Secrets through envFrom, env and a volume"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
rand() { head -c "$1" /dev/urandom | base64 | tr -d '\n'; }
db_password=$(rand 18 | tr -d '/+=')
# Values go through a file, never through a command line.
cat > "$tmp/secrets.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: diracx-secrets, namespace: demo}
stringData:
  DIRACX_SERVICE_AUTH_STATE_KEY: "$(rand 32)"
---
apiVersion: v1
kind: Secret
metadata: {name: diracx-sql-connection-urls, namespace: demo}
stringData:
  DIRACX_DB_URL_AUTHDB: "mysql+aiomysql://diracx:$db_password@mysql.demo.svc:3306/DiracXAuthDB"
  DIRACX_DB_URL_JOBDB: "mysql+aiomysql://diracx:$db_password@mysql.demo.svc:3306/JobDB"
---
apiVersion: v1
kind: Secret
metadata: {name: diracx-jwks, namespace: demo}
stringData:
  jwks.json: '{"keys":[]}'
YAML
run kubectl apply -f hack/demo/sample-app.yaml
run kubectl apply -f "$tmp/secrets.yaml"
for d in diracx diracx-web docs; do
  run kubectl -n demo rollout status deployment/$d --timeout=120s
done
run kubectl -n demo get deployments,secrets

say "Step 3: kube-rotate is a kubectl plugin"
run kubectl plugin list --name-only
run kubectl rotate version

say "Step 4: the runbook way, for comparison (not run)"
note "kubectl patch secret diracx-secrets -p '{\"data\":{\"DIRACX_SERVICE_AUTH_STATE_KEY\":\"<base64 typed in a shell>\"}}'"
note "kubectl rollout restart deployment -n demo        # restarts docs too, which uses no Secret"
note "...and hope: no copy of the old value, no health check, no record of what changed."

say "Step 5: plan first: what would change, who reads it, how to undo (nothing is changed)"
run kubectl rotate secret diracx-secrets -n demo --key DIRACX_SERVICE_AUTH_STATE_KEY --generate random:32 --dry-run=client

say "Step 6: rotate the auth state key: previous value kept, only its readers restarted, rollouts watched"
run kubectl rotate secret diracx-secrets -n demo --key DIRACX_SERVICE_AUTH_STATE_KEY --generate random:32

say "Step 7: one new password in both SQL URLs (nothing else in the URLs changes)"
run kubectl rotate secret diracx-sql-connection-urls -n demo --url-password DIRACX_DB_URL_AUTHDB,DIRACX_DB_URL_JOBDB
note "The URLs still point at the same host and database; only the password part is new:"
kubectl -n demo get secret diracx-sql-connection-urls -o jsonpath='{.data.DIRACX_DB_URL_JOBDB}' | base64 -d \
  | sed -E 's#(://[^:]+:)[^@]+@#\1<new password>@#; s/^/      /'; echo

say "Step 8: the record: history with fingerprints, never values"
run kubectl rotate history secret/diracx-secrets -n demo

say "Step 9: changed your mind? undo puts the previous value back and restarts the readers"
run kubectl rotate undo secret/diracx-secrets -n demo

say "Step 10: JWT signing keys (DiracX JWKS): publish, let verifiers load it, then sign with it"
if [ "$(kubectl -n demo get secret diracx-jwks -o jsonpath='{.data.jwks\.json}' | base64 -d)" = '{"keys":[]}' ]; then
  run kubectl rotate jwk add --secret diracx-jwks -n demo --layout diracx   # the installation's first key
fi
run kubectl rotate jwk list --secret diracx-jwks -n demo
run kubectl rotate jwk rotate --secret diracx-jwks -n demo
note "The previous key keeps verifying tokens it signed; 'jwk delete' refuses it for 24h (--min-overlap)."
run kubectl rotate jwk public --secret diracx-jwks -n demo

say "Step 11: done with the old values: finish deletes the previous copies"
run kubectl rotate finish secret/diracx-secrets -n demo
run kubectl rotate finish secret/diracx-sql-connection-urls -n demo
run kubectl -n demo get deployments

say "Step 12: how old is every credential of the app, against a rotation policy?"
note "Ages come from kube-rotate's records, else managedFields, else creationTimestamp (a lower bound);"
note "-o json gives ids, ages in seconds and the commands; --fail-on overdue exits 3 for CI."
run kubectl rotate status -n demo --policy hack/demo/rotation-policy.yaml

say "Done. The cluster keeps running:"
note "$kubeconfig_line"
note "stop it with: make cluster-down"
