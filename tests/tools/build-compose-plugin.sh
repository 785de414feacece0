#!/usr/bin/env bash
# Builds the real Docker Compose CLI plugin (the `docker compose` command) from its Go module, for the
# tests that run `docker compose config` on the lab's compose files (tests/foundation/test_compose_config.py).
# It is a test tool, not part of the lab: it goes into the labctl cache under a versioned name and is never
# installed into ~/.docker; the tests point a temporary DOCKER_CONFIG at it.
# Cached and idempotent: a second run with the same pinned version does nothing.
#   Version: LAB_COMPOSE_CLI_VERSION in compose/versions.env.
#   Output:  ${LABCTL_CACHE_DIR:-~/.cache/labctl}/test-tools/docker-compose-<version> (path printed last).
set -euo pipefail

cd "$(dirname "$0")/../.."
version=$(sed -n 's/^LAB_COMPOSE_CLI_VERSION=//p' compose/versions.env)
[ -n "$version" ] || { echo "compose/versions.env has no LAB_COMPOSE_CLI_VERSION" >&2; exit 1; }
module="github.com/docker/compose/${version%%.*}"  # the major version is part of the module path (v5)
out="${LABCTL_CACHE_DIR:-$HOME/.cache/labctl}/test-tools/docker-compose-$version"

if [ -x "$out" ] && "$out" version 2>/dev/null | grep -q "$version"; then
  echo "$out"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "go is not installed: cannot build docker compose $version (the compose config tests need it)" >&2
  exit 1
fi

# `go install module@version` refuses modules whose go.mod has exclude directives (compose's does), so
# build inside the downloaded module itself: its own go.mod and go.sum pin every dependency.
export GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false"
info=$(go mod download -json "$module@$version") || { echo "could not download $module@$version: $info" >&2; exit 1; }
src=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "could not download $module@$version: $info" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
start=$(date +%s)
(cd "$src" && go build -trimpath -ldflags "-s -w -X $module/internal.Version=$version" -o "$out.tmp" ./cmd)
mv "$out.tmp" "$out"
echo "built docker compose $version in $(( $(date +%s) - start ))s" >&2
echo "$out"
