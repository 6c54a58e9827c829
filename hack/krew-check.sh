#!/usr/bin/env bash
# make krew-check (part of make lint): the krew manifests are rendered from
# krew/*.krew.yaml, validated with krew's own validator, and installed for
# real, offline, from a linux/amd64 archive built here; then both plugins
# run through kubectl's plugin dispatch.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${VERSION:-v0.0.0-dev}
case $tag in v*) ;; *) tag=v0.0.0-$tag ;; esac
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
DIST="$work/dist" VERSION="$tag" DIST_PLATFORMS=linux/amd64 hack/dist.sh >/dev/null
go run ./hack/krewmanifest -tag "$tag" -dist "$work/dist" -out "$work/krew" -allow-missing krew/rotate.krew.yaml krew/kops-rotate.krew.yaml >/dev/null
for m in "$work"/krew/*.yaml; do
  go tool validate-krew-manifest -manifest "$m" -skip-install
done
export KREW_ROOT="$work/krew-root"
go tool krew install --manifest="$work/krew/rotate.yaml" --archive="$work/dist/kubectl-rotate_${tag}_linux_amd64.tar.gz"
go tool krew install --manifest="$work/krew/kops-rotate.yaml" --archive="$work/dist/kops-rotate_${tag}_linux_amd64.tar.gz"
export PATH="$KREW_ROOT/bin:$PATH"
# Capture, then match: grep -q on a pipe exits at the first match, and the
# writer's next line then dies of SIGPIPE, which pipefail reports as a failure.
out=$(kubectl rotate --help)
grep -q 'kubectl rotate \[command\]' <<<"$out" || { echo "krew-check: kubectl rotate --help through krew's link failed" >&2; exit 1; }
out=$(kubectl kops-rotate --help)
grep -q 'kubectl kops-rotate \[command\]' <<<"$out" || { echo "krew-check: kubectl kops-rotate --help through krew's link failed" >&2; exit 1; }
got=$(kubectl rotate version --short)
[ "$got" = "$tag" ] || { echo "krew-check: the installed plugin reports version '$got', want $tag" >&2; exit 1; }
echo "krew-check: manifests valid; rotate and kops-rotate installed offline with krew and run through kubectl ($tag)"
