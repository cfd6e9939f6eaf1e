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

# fail KOREAN ENGLISH: one ::error annotation, the Korean line then the English one, as
# token_logic/language.py has the Action speak (a runner's locale is C whoever reads the log);
# the workflow's KAKAO_TOKEN_LANG=ko or en keeps one. %, CR and LF are GitHub's own syntax.
fail() {
  local korean english
  korean="$(escaped "$1")"
  english="$(escaped "$2")"
  case "${KAKAO_TOKEN_LANG:-}" in
  [Kk][Oo]*) echo "::error title=kakao-token::$korean" ;;
  [Ee][Nn]*) echo "::error title=kakao-token::$english" ;;
  *) echo "::error title=kakao-token::$korean%0A$english" ;;
  esac
  exit 1
}

escaped() {
  local data="${1//'%'/%25}"
  data="${data//$'\r'/%0D}"
  printf '%s' "${data//$'\n'/%0A}"
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
  fail "이 러너에 python3이 없습니다: 이 단계 앞에 actions/setup-python(3.11 이상)을 넣으세요" \
    "no python3 on this runner: add actions/setup-python (3.11 or newer) before this step"
# A Python older than 3.11 refuses -P itself: that too is "too old".
if ! "$python" -P -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  version="$("$python" --version 2>&1)"
  fail "$version: 너무 오래되었습니다. 이 단계 앞에 python-version 3.11 이상으로 actions/setup-python을 넣으세요" \
    "$version is too old: add actions/setup-python with python-version 3.11 or newer before this step"
fi

if ! "$python" -P -c 'import requests' 2>/dev/null; then
  venv="${RUNNER_TEMP:?RUNNER_TEMP is set by GitHub Actions}/kakao-token-venv"
  if ! "$venv/bin/python" -P -c 'import requests' 2>/dev/null; then
    # Built aside and moved into place whole, so a failed install is never mistaken for one.
    building="$(mktemp -d "$RUNNER_TEMP/kakao-token-venv.XXXXXX")"
    "$python" -P -m venv "$building" ||
      fail "$python 으로 가상 환경을 만들지 못했습니다(Debian/Ubuntu: apt-get install python3-venv, 또는 actions/setup-python 사용)" \
        "could not create a virtual environment with $python (on Debian/Ubuntu: apt-get install python3-venv, or use actions/setup-python)"
    "$building/bin/python" -P -m pip install --quiet --disable-pip-version-check "$requests_pin" ||
      fail "PyPI에서 $requests_pin 을 설치하지 못했습니다(네트워크?)" \
        "could not install $requests_pin from PyPI (network?)"
    rm -rf "$venv"
    mv "$building" "$venv"
  fi
  python="$venv/bin/python"
fi

PYTHONPATH="$action_path" exec "$python" -P -m token_logic.client.github_action
