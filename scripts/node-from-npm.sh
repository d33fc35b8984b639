#!/usr/bin/env bash
# Node from the npm registry, for a machine whose own node is older than the
# project supports (Debian bookworm ships Node 18, these machines Node 20).
# The binary package node-linux-<arch>@VERSION (it holds only `node`; the
# machine's npm runs under it) is installed once into .ci/node/VERSION
# (git-ignored) with `npm i --prefix`; prints the folder to put first on PATH.
#
#   PATH="$(scripts/node-from-npm.sh 24.22.3):$PATH"
#
# No download outside the npm registry. Used by .ci/run and by
# scripts/docker/base-images.sh (the node base image takes its node from here).
set -euo pipefail
version="${1:?usage: node-from-npm.sh VERSION}"
case "$(uname -m)" in
  x86_64|amd64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "node-from-npm: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$root/.ci/node/$version"
bin="$prefix/node_modules/node-linux-$arch/bin"
if [ ! -x "$bin/node" ] || [ "$("$bin/node" --version)" != "v$version" ]; then
  echo "node-from-npm: installing node-linux-$arch@$version into ${prefix#"$root"/}" >&2
  mkdir -p "$prefix"
  npm i --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-linux-$arch@$version" >&2
fi
"$bin/node" --version >/dev/null
echo "$bin"
