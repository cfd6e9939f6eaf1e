#!/usr/bin/env bash
# One version's section of CHANGELOG.md, without its heading and blank edges: the GitHub
# release's notes. usage: notes.sh X.Y.Z (exit 1 when there is no such section, or it is empty)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="${1:?usage: notes.sh X.Y.Z}"

awk -v heading="## [$version] - " '
  index($0, heading) == 1 { inside = 1; next }
  inside && /^## / { inside = 0 }
  inside { lines[++n] = $0 }
  END {
    first = 1
    while (first <= n && lines[first] == "") first++
    last = n
    while (last >= first && lines[last] == "") last--
    for (i = first; i <= last; i++) print lines[i]
    exit (last >= first ? 0 : 1)
  }
' "$root/CHANGELOG.md"
