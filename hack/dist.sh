#!/usr/bin/env bash
# make dist: release archives of kubectl-rotate and kops-rotate, and
# checksums.txt. Stripped, -trimpath, version/commit/date stamped.
# DIST_PLATFORMS (default: every krew platform) limits the targets, e.g.
# DIST_PLATFORMS=linux/amd64 for CI's offline krew install.
# Called by the Makefile with VERSION, LDFLAGS and DIST set.
set -euo pipefail
cd "$(dirname "$0")/.."
platforms=${DIST_PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64}
pkg=github.com/kube-rotate/kube-rotate/pkg/version
LDFLAGS=${LDFLAGS:-"-s -w -X $pkg.version=$VERSION -X $pkg.commit=$(git rev-parse HEAD 2>/dev/null) -X $pkg.date=${DATE:-}"}
mkdir -p "$DIST"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for p in $platforms; do
  os=${p%/*} arch=${p#*/} ext=""
  [ "$os" = windows ] && ext=.exe
  for bin in kubectl-rotate kops-rotate; do
    dir="$work/$bin-$os-$arch"; mkdir -p "$dir"
    GOOS=$os GOARCH=$arch CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o "$dir/$bin$ext" "./plugins/$bin"
    cp LICENSE "$dir/"
    # kubectl's plugin completion helper (kubectl 1.26+ runs it for <TAB>).
    complete=$(basename "plugins/$bin"/kubectl_complete-*)
    cp "plugins/$bin/$complete" "$dir/"
    archive="$DIST/${bin}_${VERSION}_${os}_${arch}.tar.gz"
    # Reproducible: fixed order, owner and mtime (the commit's).
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="${DATE:-1970-01-01T00:00:00Z}" \
      -C "$dir" -czf "$archive" "$bin$ext" LICENSE "$complete"
    echo "$archive"
  done
done
(cd "$DIST" && sha256sum ./*.tar.gz | sed 's# \./# #' > checksums.txt)
