#!/usr/bin/env bash
# The release's build: the sdist, then the wheel built from it (python -m build), with the
# build tools pinned in requirements-dev.txt and no build isolation, so nothing unpinned is
# fetched. Fails unless exactly kakao_token-X.Y.Z.tar.gz and its wheel came out.
# usage: build.sh X.Y.Z OUTDIR   (PYTHON: the interpreter, default python3)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="${1:?usage: build.sh X.Y.Z OUTDIR}"
outdir="${2:?usage: build.sh X.Y.Z OUTDIR}"
python="${PYTHON:-python3}"

requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT
grep -E '^(build|hatchling)==' "$root/requirements-dev.txt" >"$requirements"
"$python" -m pip install --quiet --disable-pip-version-check --requirement "$requirements"
"$python" -m build --no-isolation --outdir "$outdir" "$root"

expected="kakao_token-$version-py3-none-any.whl kakao_token-$version.tar.gz"
built="$(cd "$outdir" && find . -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort | xargs)"
[[ "$built" == "$expected" ]] ||
  { echo "::error title=release::built '$built', expected '$expected'"; exit 1; }
