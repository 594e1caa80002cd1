#!/usr/bin/env bash
# Static checks run by `make test`: staticcheck, and govulncheck against the
# Go vulnerability database. The database comes as the golang.org/x/vulndb
# module (its OSV files, indexed here with its own indexdb command), so the
# check needs only the Go module proxy; the index is cached per version.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2
GOVULNCHECK_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

# The tools must be built by the Go that builds the code they read.
gobin="${XDG_CACHE_HOME:-$HOME/.cache}/estkit/bin-$(go env GOVERSION)"
mkdir -p "$gobin"
[ -x "$gobin/staticcheck" ] && "$gobin/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}" ||
  GOBIN="$gobin" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
[ -x "$gobin/govulncheck" ] && "$gobin/govulncheck" -version 2>/dev/null | grep -q "$GOVULNCHECK_VERSION" ||
  GOBIN="$gobin" go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"

echo "staticcheck ./..."
"$gobin/staticcheck" ./...

cache="${XDG_CACHE_HOME:-$HOME/.cache}/estkit/vulndb-$VULNDB_VERSION"
if [ ! -f "$cache/index/db.json" ]; then
  echo "lint: indexing the Go vulnerability database $VULNDB_VERSION"
  src=$(GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  rm -rf "$cache.tmp" && mkdir -p "$(dirname "$cache")"
  (cd "$src" && GOFLAGS=-mod=mod go run ./cmd/indexdb -vulns "$src/data/osv" -out "$cache.tmp")
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
echo "govulncheck ./... (database $VULNDB_VERSION)"
"$gobin/govulncheck" -db "file://$cache" ./...
