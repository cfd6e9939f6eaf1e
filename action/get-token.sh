#!/usr/bin/env bash
# The action's one step (see action.yml): a Python with requests, then token_logic.github_action
# straight from the action's own checkout. Nothing of the server is installed: no pip install
# of this project, only requests when the runner's Python lacks it (a few seconds, once a job).
set -euo pipefail

action_path="${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is set by GitHub Actions}"
python="${KAKAO_TOKEN_PYTHON:-python3}"

if ! command -v "$python" >/dev/null; then
  echo "::error title=kakao-token::no python3 on this runner: add actions/setup-python (3.11 or newer) before this step"
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "::error title=kakao-token::$("$python" --version 2>&1) is too old: add actions/setup-python with python-version 3.11 or newer before this step"
  exit 1
fi
if ! "$python" -c 'import requests' 2>/dev/null; then
  venv="${RUNNER_TEMP:-/tmp}/kakao-token-venv"
  if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "requests>=2.28"
  fi
  python="$venv/bin/python"
fi

PYTHONPATH="$action_path${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m token_logic.github_action
