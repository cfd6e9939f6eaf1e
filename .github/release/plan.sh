#!/usr/bin/env bash
# The release's plan (release.yml's first job): the version in token_logic/__init__.py, its
# tag vX.Y.Z and major tag vX, and whether that tag exists already; if it does, nothing is
# built, published or tagged again (the exact tag is never moved). Writes version=, tag=,
# major= and released= to $GITHUB_OUTPUT. Reads the tags with `gh api` (GH_TOKEN,
# GITHUB_REPOSITORY); a failed call fails the job, never reads as "no tag".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

fail() {
  echo "::error title=release::$*"
  exit 1
}

version="$(sed -n 's/^__version__ = "\([^"]*\)"$/\1/p' "$root/token_logic/__init__.py")"
[[ "$version" =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$ ]] ||
  fail "token_logic/__init__.py: __version__ '$version' is not X.Y.Z"
tag="v$version"
major="v${BASH_REMATCH[1]}"
"$here/notes.sh" "$version" >/dev/null ||
  fail "CHANGELOG.md has no notes under '## [$version] - YYYY-MM-DD': write them first"

existing="$(gh api "repos/$GITHUB_REPOSITORY/git/matching-refs/tags/$tag" \
  --jq ".[] | select(.ref == \"refs/tags/$tag\") | .object.sha")"
released=false
if [[ -n "$existing" ]]; then
  released=true
  echo "::notice title=release::$tag exists already: nothing is built, published or tagged" \
    "again (a new release needs a new __version__)"
else
  # No tag, yet the version may be on PyPI (a run that published, then failed to tag): a new
  # run would test, build and tag another commit than the one PyPI serves. Stop for a person.
  status="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 \
    "${PYPI_URL:-https://pypi.org}/pypi/kakao-token/$version/json")" ||
    fail "PyPI did not answer: try again later"
  case "$status" in
    404) ;;
    200) fail "kakao-token $version is on PyPI but $tag does not exist: tag the commit its" \
      "attestation names by hand (git tag $tag <sha>; git push origin $tag), or release a new" \
      "__version__" ;;
    *) fail "PyPI answered HTTP $status for kakao-token $version: try again later" ;;
  esac
fi
{
  echo "version=$version"
  echo "tag=$tag"
  echo "major=$major"
  echo "released=$released"
} >>"$GITHUB_OUTPUT"
