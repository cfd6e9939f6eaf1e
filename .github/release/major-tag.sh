#!/usr/bin/env bash
# Moves the major tag (v0) to the commit of an exact tag (v0.3.0), as GitHub recommends for
# actions, when that tag is the newest vX.Y.Z of its major: a run for an older version never
# moves it back, and a major tag already there is left alone. Exact tags are never moved.
# usage: major-tag.sh vX.Y.Z vX   (GH_TOKEN with contents: write, GITHUB_REPOSITORY)
set -euo pipefail
tag="${1:?usage: major-tag.sh vX.Y.Z vX}"
major="${2:?usage: major-tag.sh vX.Y.Z vX}"
[[ "$tag" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ && "$tag" == "$major".* ]] || {
  echo "::error title=release::'$tag' is not a vX.Y.Z of '$major'"
  exit 1
}
api="repos/$GITHUB_REPOSITORY"

commit="$(gh api "$api/commits/$tag" --jq .sha)"
newest="$(gh api --paginate "$api/git/matching-refs/tags/$major." --jq '.[].ref' |
  sed -n 's|^refs/tags/\(v[0-9]*\.[0-9]*\.[0-9]*\)$|\1|p' | sort -V | tail -n 1)"
if [[ "$newest" != "$tag" ]]; then
  echo "::notice title=release::$major stays: $newest is newer than $tag"
  exit 0
fi
current="$(gh api "$api/git/matching-refs/tags/$major" \
  --jq ".[] | select(.ref == \"refs/tags/$major\") | .object.sha")"
if [[ "$current" == "$commit" ]]; then
  echo "$major is at $tag ($commit) already"
elif [[ -z "$current" ]]; then
  gh api --method POST "$api/git/refs" -f "ref=refs/tags/$major" -f "sha=$commit" >/dev/null
  echo "$major created at $tag ($commit)"
else
  gh api --method PATCH "$api/git/refs/tags/$major" -f "sha=$commit" -F force=true >/dev/null
  echo "$major moved to $tag ($commit)"
fi
