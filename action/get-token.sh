#!/usr/bin/env bash
# The action's one step (see action.yml): a Python with requests, then token_logic.client.github_action
# straight from the action's own checkout. Nothing of the server is installed: no pip install
# of this project, only requests when the runner's Python lacks it (a few seconds, once a job).
#
# The job's working directory is the workflow's checkout, which may be anyone's code (a pull
# request's), and GitHub's OIDC request token is in this step's environment: nothing of that
# checkout may run here. So every Python call is `-P` (no script or current directory on
# sys.path), runs from the action's own directory (where a subprocess's current directory holds
# only the action's code), and sees no PYTHONPATH but the action's own (a workflow's
# `PYTHONPATH: .` would put the checkout's requests.py or venv.py ahead of the real ones).
set -euo pipefail

action_path="${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is set by GitHub Actions}"
python="${KAKAO_TOKEN_PYTHON:-python3}"
requests_pin="requests==2.34.2" # the version requirements.txt deploys

fail() {
  echo "::error title=kakao-token::$*"
  exit 1
}

# Paths the workflow gave relative to its working directory keep naming the same files.
if [[ $python == */* && $python != /* ]]; then
  python="$PWD/$python"
fi
for name in GOOGLE_APPLICATION_CREDENTIALS REQUESTS_CA_BUNDLE CURL_CA_BUNDLE; do
  if [[ -n ${!name:-} && ${!name} != /* ]]; then
    export "$name=$PWD/${!name}"
  fi
done
unset PYTHONPATH
cd "$action_path"

command -v "$python" >/dev/null ||
  fail "no python3 on this runner: add actions/setup-python (3.11 or newer) before this step"
# A Python older than 3.11 refuses -P itself: that too is "too old".
"$python" -P -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
  fail "$("$python" --version 2>&1) is too old: add actions/setup-python with python-version 3.11 or newer before this step"

if ! "$python" -P -c 'import requests' 2>/dev/null; then
  venv="${RUNNER_TEMP:?RUNNER_TEMP is set by GitHub Actions}/kakao-token-venv"
  if ! "$venv/bin/python" -P -c 'import requests' 2>/dev/null; then
    # Built aside and moved into place whole, so a failed install is never mistaken for one.
    building="$(mktemp -d "$RUNNER_TEMP/kakao-token-venv.XXXXXX")"
    "$python" -P -m venv "$building" ||
      fail "could not create a virtual environment with $python (on Debian/Ubuntu: apt-get install python3-venv, or use actions/setup-python)"
    "$building/bin/python" -P -m pip install --quiet --disable-pip-version-check "$requests_pin" ||
      fail "could not install $requests_pin from PyPI (network?)"
    rm -rf "$venv"
    mv "$building" "$venv"
  fi
  python="$venv/bin/python"
fi

PYTHONPATH="$action_path" exec "$python" -P -m token_logic.client.github_action
