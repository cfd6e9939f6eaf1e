#!/usr/bin/env bash
# deploy.sh: put kakao-token-function on Google Cloud in one command, safely and repeatably.
# Run `./deploy.sh --help` for the inputs. Every step checks before it creates, so a second run
# changes nothing that is already right.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CALLBACK_FUNCTION="kakao-callback"
REFRESH_FUNCTION="kakao-refresh"
TOKEN_FUNCTION="kakao-token"
SCHEDULER_JOB="kakao-token-refresh"
RUNTIME_ACCOUNT_NAME="kakao-token-fn"
CALLBACK_ACCOUNT_NAME="kakao-token-callback"
SCHEDULER_ACCOUNT_NAME="kakao-token-scheduler"
KEY_SECRET="kakao-rest-api-key"
CLIENT_SECRET_SECRET="kakao-client-secret"
ADMIN_KEY_SECRET="kakao-admin-key"
ALERT_POLICY="kakao-token-function: login dead or refresh failing"
# At most one mail per period: a broken night is a few mails, not one per failed run.
ALERT_RATE_LIMIT="3600s"
ALERT_AUTO_CLOSE="1800s"
# Days a replaced or deleted token document is kept as a noncurrent version (see ensure_bucket).
NONCURRENT_DAYS=3
# Requests one instance of the callback or the token endpoint serves at once: Cloud Run's
# --concurrency and functions-framework's THREADS (its default depends on the CPUs it sees).
SERVER_THREADS=8
GITHUB_POOL="kakao-token-github"
GITHUB_PROVIDER="github"
GITHUB_ACCOUNT_NAME="kakao-token-github"
GITHUB_ISSUER="https://token.actions.githubusercontent.com"
# google.subject is required by every provider. attribute.repository_id names the principal sets
# (grant_github_access); the name and the owner's id are mapped for the audit log's sake.
GITHUB_ATTRIBUTE_MAPPING="google.subject=assertion.sub,attribute.repository=assertion.repository"
GITHUB_ATTRIBUTE_MAPPING+=",attribute.repository_id=assertion.repository_id"
GITHUB_ATTRIBUTE_MAPPING+=",attribute.repository_owner_id=assertion.repository_owner_id"
GITHUB_API="https://api.github.com"
USER_ID_PLACEHOLDER="KAKAO_USER_ID"
KNOWN_INPUTS=(GOOGLE_CLOUD_PROJECT REGION TOKEN_BUCKET KAKAO_REST_API_KEY KAKAO_CLIENT_SECRET
  KAKAO_SCOPE ALLOWED_KAKAO_USER_IDS TOKEN_OBJECT REFRESH_SCHEDULE PYTHON_RUNTIME TOKEN_READERS
  KAKAO_ADMIN_KEY KAKAO_APP_ID ALERT_EMAIL REFRESH_SHARDS GITHUB_REPOSITORY KAKAO_TOKEN_ACTION
  KAKAO_PKCE KAKAO_MEMO_LINK PER_USER_CLAIMS GITHUB_REPOSITORY_IDS GITHUB_BRANCH KAKAO_SENDER
  KAKAO_REDIRECT_URI)
# What the console calls the field the callback URL goes into (../shared/KAKAO_API.md §9).
REDIRECT_URI_FIELD="[앱] > [플랫폼 키] > [REST API 키] > [리다이렉트 URI]"

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [--env-file FILE] [--skip-kakao-check]
       ./deploy.sh claim [--sender] [--env-file FILE]

Deploys kakao-token-function to Google Cloud: the redirect-URI function (public), the refresh
function (private), the token endpoint (private), a Cloud Scheduler job that calls the refresh,
a private bucket for the tokens, the Kakao keys in Secret Manager, and optionally a mail alert.
Safe to run again: it changes only what is not yet right.
카카오 로그인 토큰 함수를 Google Cloud에 배포합니다. 여러 번 실행해도 안전합니다.

Before anything is deployed it asks Kakao whether KAKAO_REST_API_KEY is a key Kakao knows and
KAKAO_CLIENT_SECRET is its client secret (python -m token_logic doctor), and stops if not; once
the callback is deployed, whether its URL is a registered Redirect URI of that key (if not, it
says where to paste it). --skip-kakao-check (or SKIP_KAKAO_CHECK=1) skips both.
배포 전에 카카오에 REST API 키와 클라이언트 시크릿을 확인하고, 배포 뒤 리다이렉트 URI 등록을 확인합니다.

`./deploy.sh claim` prints a fresh claim link for the deployed callback and bucket (a new first
owner, a hand-over, a lost link); `./deploy.sh claim --sender` one for the sender (KAKAO_SENDER=1).
Nothing is deployed. 배포된 함수의 새 소유권 링크(--sender: 보내는 계정의 링크)를 출력합니다.

Inputs come from the environment, or from a deploy.env file next to this script (or
--env-file FILE) with KEY=VALUE lines; the environment wins over the file. GITHUB_REPOSITORY
alone is read from the file only (GitHub sets it in Actions and Codespaces). An env file holds
the client secret: inside this checkout, whose files gcloud uploads, only deploy.env is taken
(.gitignore and .gcloudignore leave it out); keep any other (prod.env) outside it.

Required:
  GOOGLE_CLOUD_PROJECT    your GCP project id
  TOKEN_BUCKET            bucket for kakao_token.json (created if missing; globally unique),
                          the tokens' alone: deploy.sh sets its versioning, lifecycle rule
                          (old versions deleted after 3 days) and soft delete (off)
  KAKAO_REST_API_KEY      Kakao console [앱] > [플랫폼 키] > [REST API 키]
  KAKAO_CLIENT_SECRET     that key's client secret (클라이언트 시크릿, on its page; stored in
                          Secret Manager)
Optional:
  REGION                  default asia-northeast3 (Seoul)
  KAKAO_SCOPE             extra consent items, comma-separated, e.g. talk_message
  ALLOWED_KAKAO_USER_IDS  comma-separated Kakao user ids allowed to store a token; without it
                          (and with one document) the first login needs the claim link
                          deploy.sh prints at the end
  TOKEN_OBJECT            default kakao_token.json; tokens/{user_id}.json for many users,
                          which needs ALLOWED_KAKAO_USER_IDS or PER_USER_CLAIMS=1: the callback
                          is public, and anyone's login would be stored
  PER_USER_CLAIMS         1 = with {user_id} in TOKEN_OBJECT and no ALLOWED_KAKAO_USER_IDS, every
                          account is admitted by a claim link you make for it with
                          `python -m token_logic claim-url` (one link admits one account, once).
                          Without one of the two deploy.sh refuses per-user documents; with
                          one document it changes nothing. Read by deploy.sh only.
                          허용 목록 없이 계정마다 소유권 링크로만 받으려면 1.
  REFRESH_SCHEDULE        cron for the refresh job, default "*/30 * * * *" (Asia/Seoul)
  REFRESH_SHARDS          default 1; N splits the refresh of many users across N scheduler
                          jobs (?shard=I/N), see BENCHMARKS.md for when
  PYTHON_RUNTIME          default python313
  TOKEN_READERS           comma-separated IAM principals that may call the token endpoint
                          (kakao-token) and nothing else: user:me@gmail.com,
                          serviceAccount:ci@PROJECT.iam.gserviceaccount.com, group:team@example.com,
                          principalSet://iam.googleapis.com/projects/N/locations/global/
                          workloadIdentityPools/POOL/attribute.repository/OWNER/REPO
  KAKAO_ADMIN_KEY         the 대표 어드민 키 (primary admin key) at [앱] > [플랫폼 키] > [어드민 키]
                          (stored in Secret Manager): lets the callback check Kakao's unlink
                          webhook
  KAKAO_APP_ID            the app's numeric ID (앱 ID), checked on the unlink webhook
  ALERT_EMAIL             mail address for alerts: a dead login, a refresh failing after its
                          retries, a failed scheduler run (at most one mail an hour)
  KAKAO_PKCE              1 (default) or 0: 0 turns PKCE off, for Kakao's token error about
                          code_verifier (README, troubleshooting)
  KAKAO_MEMO_LINK         http(s) URL a message's link opens (default: the callback's done page,
                          ?login=done; Kakao opens only domains registered at [앱] > [제품 링크
                          관리] > [웹 도메인]: register the callback's, or your link's)
  GITHUB_REPOSITORY       GitHub repositories whose Actions may get an access token, owner/repo
                          spelt as on GitHub, comma-separated (me/bot,me/other): sets up workload
                          identity federation (pool kakao-token-github, no key to store) and a
                          service account that may call kakao-token only, and prints the
                          workflow to paste. 다른 저장소의 GitHub Actions에서 토큰을 받게 합니다.
                          The provider admits each repository by its name and its numeric ids
                          (repository and owner, looked up on api.github.com with curl, or
                          GITHUB_REPOSITORY_IDS): a repository renamed or deleted and its name
                          registered again by someone else gets nothing. pull_request_target
                          runs never get a token.
                          Taking a repository off the list removes its access on the next run;
                          emptying it removes GitHub's access altogether (the provider is
                          disabled, the bindings and the invoker removed).
                          Read from deploy.env only, never from the environment: GitHub sets
                          GITHUB_REPOSITORY itself in Actions and Codespaces. deploy.env 에만
                          적으세요 (환경 변수의 값은 GitHub의 것이라 무시합니다).
  KAKAO_TOKEN_ACTION      the action the printed workflow uses, e.g.
                          me/kakao-token-function@v0; default: this checkout's github.com
                          origin at the major tag each release moves (v0 for 0.x.y); with
                          neither, no workflow is printed
  GITHUB_REPOSITORY_IDS   the repositories' numeric ids instead of a look-up, comma-separated
                          owner/repo=REPOSITORY_ID:OWNER_ID (me/bot=812345678:1234567); needed
                          for a private repository, which api.github.com shows nobody logged
                          out: gh api repos/me/bot --jq '"\(.id):\(.owner.id)"'
  GITHUB_BRANCH           only workflows running on this branch (e.g. main) get a token;
                          default: any branch of the listed repositories
  KAKAO_SENDER            1 = a second Kakao account, the sender, logs in beside the owner
                          and messages the owner (a chat that rings, not a silent memo): the
                          deploy ends with the sender's claim link until one has logged in,
                          and `./deploy.sh claim --sender` makes a new one. Needs a single
                          document (no {user_id} in TOKEN_OBJECT). 보내는 계정을 쓰려면 1.
  KAKAO_REDIRECT_URI      the deployed callback URL this run prints, kept here for
                          `python -m token_logic claim-url` and `doctor` (which read this file);
                          deploy.sh warns when it differs from the callback's URL

Per run, from the environment only:
  PRINT_CLAIM_LINK        the claim link is printed to a terminal only, never when CI is set (a
                          CI log or a piped file would keep a live link): 1 prints it anyway
                          (./deploy.sh | tee), 0 never. 소유권 링크는 터미널에만 출력합니다.
  SKIP_KAKAO_CHECK        1 = skip the Kakao check, as --skip-kakao-check does
  KAKAO_AUTH_BASE_URL     where the Kakao check asks (default https://kauth.kakao.com; tests)

Needs: gcloud, logged in (gcloud auth login) as someone who may create these resources; for
the claim link and the Kakao check, python3 (Python 3.11 or newer, its standard library alone;
without it the check is skipped with a warning); with
GITHUB_REPOSITORY, curl and python3 to look up the ids GITHUB_REPOSITORY_IDS does not give.
At the end it prints the Redirect URI to register in the Kakao console, the claim link that
makes the first login the owner (one document, no ALLOWED_KAKAO_USER_IDS, nobody logged in
yet; on a terminal only, and printed nowhere else), the token endpoint's URL, with
KAKAO_ADMIN_KEY the unlink webhook URL to register and, with GITHUB_REPOSITORY, the GitHub
Actions workflow to paste into those repositories.
EOF
}

fail() {
  echo "deploy.sh: error: $*" >&2
  exit 2
}

say() {
  echo "==> $*"
}

# The items of a comma-separated list (TOKEN_READERS, GITHUB_REPOSITORY), trimmed, empty ones
# dropped; NUL-terminated, so an item is never split further: read with `read -r -d ''`.
list_items() {
  local item
  local -a items
  IFS=',' read -r -a items <<<"$1"
  for item in "${items[@]}"; do
    item="${item#"${item%%[![:space:]]*}"}"
    item="${item%"${item##*[![:space:]]}"}"
    [[ -z "$item" ]] || printf '%s\0' "$item"
  done
}

ENV_FILE="$HERE/deploy.env"
# GITHUB_REPOSITORY is GitHub's name: Actions sets it for every job and Codespaces for every
# codespace, to the repository running there. Read from the environment it would silently let
# that repository in, so only deploy.env names repositories.
ENVIRONMENT_GITHUB_REPOSITORY="${GITHUB_REPOSITORY:-}"
unset GITHUB_REPOSITORY
COMMAND=deploy
CLAIM_LOGIN=owner
SKIP_KAKAO_CHECK="${SKIP_KAKAO_CHECK:-}"
if [[ "${1:-}" == claim ]]; then
  COMMAND=claim
  shift
fi
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --skip-kakao-check)
      [[ "$COMMAND" == deploy ]] || fail "--skip-kakao-check is for a deploy (claim makes no Kakao check)"
      SKIP_KAKAO_CHECK=1
      shift
      ;;
    --sender)
      [[ "$COMMAND" == claim ]] || fail "--sender goes with claim: ./deploy.sh claim --sender"
      CLAIM_LOGIN=sender
      shift
      ;;
    --env-file)
      [[ $# -ge 2 ]] || fail "--env-file needs a file name"
      ENV_FILE="$2"
      [[ -f "$ENV_FILE" ]] || fail "no such file: $ENV_FILE"
      shift 2
      ;;
    *) fail "unknown argument: $1 (see --help)" ;;
  esac
done

# An env file holds the client secret and the admin key. One inside this checkout sits among
# the files `gcloud functions deploy --source` uploads, kept out only as long as .gcloudignore
# says so, and where git may commit it: only deploy.env, which both ignore, is taken here.
# Compared by physical paths, the file's own name kept (a link in the checkout is in it).
refuse_env_file_in_checkout() {
  local here folder
  here="$(cd "$HERE" && pwd -P)"
  folder="$(cd "$(dirname "$ENV_FILE")" && pwd -P)" || return 0
  [[ "$folder/$(basename "$ENV_FILE")" == "$here/deploy.env" ]] && return 0
  [[ "$folder/" == "$here/"* ]] || return 0
  fail "$ENV_FILE is inside this checkout, whose files are uploaded with the functions and" \
    "may be committed: keep it outside (e.g. ~/kakao/prod.env), or name it deploy.env here" \
    "(git-ignored, never uploaded) / 체크아웃 안의 설정 파일은 deploy.env만 쓸 수 있습니다." \
    "다른 이름의 파일은 체크아웃 밖에 두세요"
}
refuse_env_file_in_checkout

# Read KEY=VALUE lines without executing the file; only known keys, and never over the
# environment.
load_env_file() {
  local line key value known line_number=0
  [[ -f "$1" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    line_number=$((line_number + 1))
    line="${line%$'\r'}" # a file saved with Windows line endings
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    # Never echo the line: it may hold a secret.
    [[ "$line" =~ ^[[:space:]]*([A-Z_]+)=(.*)$ ]] || fail "$1: cannot read line $line_number (want KEY=VALUE)"
    key="${BASH_REMATCH[1]}"
    value="${BASH_REMATCH[2]}"
    value="${value%\"}"
    value="${value#\"}"
    value="${value%\'}"
    value="${value#\'}"
    known=no
    for name in "${KNOWN_INPUTS[@]}"; do [[ "$name" == "$key" ]] && known=yes; done
    [[ "$known" == yes ]] || fail "$1: unknown setting $key (see --help)"
    if [[ -z "${!key:-}" ]]; then
      printf -v "$key" '%s' "$value"
    fi
  done <"$1"
}
load_env_file "$ENV_FILE"
if [[ -n "$ENVIRONMENT_GITHUB_REPOSITORY" && "$ENVIRONMENT_GITHUB_REPOSITORY" != "${GITHUB_REPOSITORY:-}" ]]; then
  echo "deploy.sh: note: GITHUB_REPOSITORY in the environment is ignored (GitHub's own variable);" \
    "repositories come from ${ENV_FILE} only / 환경 변수 GITHUB_REPOSITORY는 무시합니다" >&2
fi

REGION="${REGION:-asia-northeast3}"
TOKEN_OBJECT="${TOKEN_OBJECT:-kakao_token.json}"
REFRESH_SCHEDULE="${REFRESH_SCHEDULE:-*/30 * * * *}"
PYTHON_RUNTIME="${PYTHON_RUNTIME:-python313}"
REFRESH_SHARDS="${REFRESH_SHARDS:-1}"
KAKAO_SCOPE="${KAKAO_SCOPE:-}"
ALLOWED_KAKAO_USER_IDS="${ALLOWED_KAKAO_USER_IDS:-}"
TOKEN_READERS="${TOKEN_READERS:-}"
KAKAO_ADMIN_KEY="${KAKAO_ADMIN_KEY:-}"
KAKAO_APP_ID="${KAKAO_APP_ID:-}"
ALERT_EMAIL="${ALERT_EMAIL:-}"
GITHUB_REPOSITORY="${GITHUB_REPOSITORY:-}"
KAKAO_TOKEN_ACTION="${KAKAO_TOKEN_ACTION:-}"
KAKAO_PKCE="${KAKAO_PKCE:-}"
KAKAO_MEMO_LINK="${KAKAO_MEMO_LINK:-}"
PER_USER_CLAIMS="${PER_USER_CLAIMS:-}"
GITHUB_REPOSITORY_IDS="${GITHUB_REPOSITORY_IDS:-}"
GITHUB_BRANCH="${GITHUB_BRANCH:-}"
KAKAO_SENDER="${KAKAO_SENDER:-}"
KAKAO_REDIRECT_URI="${KAKAO_REDIRECT_URI:-}"
PRINT_CLAIM_LINK="${PRINT_CLAIM_LINK:-}"

missing=()
for name in GOOGLE_CLOUD_PROJECT TOKEN_BUCKET KAKAO_REST_API_KEY KAKAO_CLIENT_SECRET; do
  [[ -n "${!name:-}" ]] || missing+=("$name")
done
[[ ${#missing[@]} -eq 0 ]] || fail "missing ${missing[*]}: set them in the environment or in $ENV_FILE (see --help)"
# Every value reaches gcloud, on its command line, in a file or on stdin. A '|' would end a
# variable inside --set-env-vars, whose delimiter it is (env_vars), and start another one:
# KAKAO_SCOPE='talk_message|KAKAO_DEMO=1' would put the functions in demo mode. A line break or
# another control character belongs in none of them. A value may be a secret: named, never shown.
for name in "${KNOWN_INPUTS[@]}" PRINT_CLAIM_LINK SKIP_KAKAO_CHECK; do
  value="${!name:-}"
  [[ "$value" != *"|"* && "$value" != *[[:cntrl:]]* ]] ||
    fail "$name contains '|', a line break or another control character (its value is not" \
      "shown): refused, gcloud would read a part of it as another setting of the functions"
done
[[ "$GOOGLE_CLOUD_PROJECT" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
  fail "GOOGLE_CLOUD_PROJECT '$GOOGLE_CLOUD_PROJECT' is not a project id (the id, not the name)"
[[ "$TOKEN_BUCKET" =~ ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ ]] ||
  fail "TOKEN_BUCKET '$TOKEN_BUCKET' is not a valid bucket name (lowercase, digits, - _ .)"
[[ "$REGION" =~ ^[a-z]+-[a-z]+[0-9]$ ]] || fail "REGION '$REGION' is not a region like asia-northeast3"
[[ -z "$ALLOWED_KAKAO_USER_IDS" || "$ALLOWED_KAKAO_USER_IDS" =~ ^[0-9]+(,[0-9]+)*$ ]] ||
  fail "ALLOWED_KAKAO_USER_IDS must be Kakao user ids separated by commas"
# Kakao's consent item ids (talk_message, account_email), split on commas and spaces as
# token_logic/config.py splits them.
IFS=', ' read -r -a scope_items <<<"$KAKAO_SCOPE"
for item in "${scope_items[@]}"; do
  [[ -z "$item" || "$item" =~ ^[A-Za-z0-9_]+$ ]] ||
    fail "KAKAO_SCOPE: '$item' is not a Kakao consent item id like talk_message (letters," \
      "digits and _, separated by commas)"
done
# TOKEN_OBJECT as token_logic/config.py takes it (a sweep must find the documents it names),
# and without what gcloud storage reads as a wildcard or a generation (* ? [ ] #): the owner
# check describes gs://TOKEN_BUCKET/TOKEN_OBJECT.
TOKEN_OBJECT_FORMS="e.g. kakao_token.json, tokens/{user_id}.json or users/{user_id}/token.json"
[[ "${TOKEN_OBJECT//"{user_id}"/}" != *"{"* ]] ||
  fail "TOKEN_OBJECT may contain only the placeholder {user_id} ($TOKEN_OBJECT_FORMS)"
[[ "${TOKEN_OBJECT#*"{user_id}"}" != *"{user_id}"* ]] ||
  fail "TOKEN_OBJECT may contain {user_id} only once ($TOKEN_OBJECT_FORMS)"
[[ "/$TOKEN_OBJECT/" != *//* && "/$TOKEN_OBJECT" != *"/."* ]] ||
  fail "TOKEN_OBJECT must be a relative name of plain parts: no leading or doubled /, no part" \
    "that is empty or starts with a dot ($TOKEN_OBJECT_FORMS)"
[[ "$TOKEN_OBJECT" != *[]*?[#]* ]] ||
  fail "TOKEN_OBJECT may not contain * ? [ ] # (gcloud storage reads them as a wildcard or a generation)"
[[ "$PYTHON_RUNTIME" =~ ^python3[0-9]{1,2}$ ]] || fail "PYTHON_RUNTIME '$PYTHON_RUNTIME' is not a runtime like python313"
[[ "$PER_USER_CLAIMS" =~ ^[01]?$ ]] || fail "PER_USER_CLAIMS '$PER_USER_CLAIMS' must be 1 or 0"
[[ "$PRINT_CLAIM_LINK" =~ ^[01]?$ ]] || fail "PRINT_CLAIM_LINK '$PRINT_CLAIM_LINK' must be 1 (print) or 0 (never)"
[[ "$SKIP_KAKAO_CHECK" =~ ^[01]?$ ]] || fail "SKIP_KAKAO_CHECK '$SKIP_KAKAO_CHECK' must be 1 (skip) or 0 (check)"
[[ "$KAKAO_SENDER" =~ ^[01]?$ ]] || fail "KAKAO_SENDER '$KAKAO_SENDER' must be 1 (a sender logs in beside the owner) or 0"
# One document per Kakao account behind a public callback: anyone who logs in there would have a
# token stored, which the owner's scripts could then be handed. The function stores a per-user
# login only for ALLOWED_KAKAO_USER_IDS or an account that came through a claim link; without the
# list, the operator says the links are how every account comes in.
PER_USER=no
[[ "$TOKEN_OBJECT" == *"{user_id}"* ]] && PER_USER=yes
if [[ "$PER_USER" == yes && -z "$ALLOWED_KAKAO_USER_IDS" && "$PER_USER_CLAIMS" != 1 ]]; then
  fail "TOKEN_OBJECT '$TOKEN_OBJECT' keeps one login per Kakao account, and anyone can log in at" \
    "the public callback: set ALLOWED_KAKAO_USER_IDS=ID,ID (those accounts log in there), or" \
    "PER_USER_CLAIMS=1 if every account comes in through a claim link you make for it with" \
    "\`python -m token_logic claim-url\` (a link admits one account, once)." \
    "/ 계정마다 토큰을 저장하는데 콜백은 누구나 열 수 있습니다: ALLOWED_KAKAO_USER_IDS=ID,ID 를" \
    "설정하거나, 모든 계정을 \`python -m token_logic claim-url\` 로 만든 소유권 링크(링크 하나에" \
    "계정 하나)로 받는다면 PER_USER_CLAIMS=1 을 설정하세요."
fi
# The sender messages the deployment's one owner (token_logic/logins.py): with one document per
# Kakao account there is no one owner to message.
if [[ "$KAKAO_SENDER" == 1 && "$PER_USER" == yes ]]; then
  fail "KAKAO_SENDER=1 needs a single-document TOKEN_OBJECT (no {user_id}; '$TOKEN_OBJECT' keeps" \
    "one login per account): the sender messages the deployment's one owner. Unset KAKAO_SENDER" \
    "or use TOKEN_OBJECT=kakao_token.json / 보내는 계정은 문서가 하나인 배포(TOKEN_OBJECT에" \
    "{user_id} 없음)에서만 쓸 수 있습니다"
fi
read -r -a schedule_fields <<<"$REFRESH_SCHEDULE"
[[ ${#schedule_fields[@]} -eq 5 ]] || fail "REFRESH_SCHEDULE '$REFRESH_SCHEDULE' must have 5 cron fields"
[[ "$REFRESH_SHARDS" =~ ^[1-9][0-9]?$ ]] || fail "REFRESH_SHARDS '$REFRESH_SHARDS' must be a number from 1 to 99"
EMAIL_RE='^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$'
POOL_RE='^principal(Set)?://iam\.googleapis\.com/projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]+/[^[:space:],]+$'
token_readers=()
while IFS= read -r -d '' reader; do
  if [[ "$reader" =~ ^(user|serviceAccount|group):(.*)$ && "${BASH_REMATCH[2]}" =~ $EMAIL_RE ]] ||
    [[ "$reader" =~ $POOL_RE ]]; then
    token_readers+=("$reader")
  else
    fail "TOKEN_READERS: '$reader' is not an IAM principal like user:me@gmail.com," \
      "serviceAccount:EMAIL, group:EMAIL or principalSet://iam.googleapis.com/projects/N/..." \
      "(allUsers and allAuthenticatedUsers are refused: the token endpoint stays private)"
  fi
done < <(list_items "$TOKEN_READERS")
# GitHub's rules: an owner of letters, digits and inner hyphens (39 at most), a repository of
# letters, digits, '.', '-' and '_' other than . and ..; no quote, so it is safe inside CEL's ''.
GITHUB_REPO_RE='^[A-Za-z0-9]([A-Za-z0-9-]{0,37}[A-Za-z0-9])?/[A-Za-z0-9._-]{1,100}$'
github_repositories=()
while IFS= read -r -d '' repository; do
  [[ "$repository" =~ $GITHUB_REPO_RE && "${repository#*/}" != "." && "${repository#*/}" != ".." ]] ||
    fail "GITHUB_REPOSITORY: '$repository' is not a GitHub repository like me/bot" \
      "(owner/repo as GitHub spells it, comma-separated)"
  [[ " ${github_repositories[*]} " == *" $repository "* ]] || github_repositories+=("$repository")
done < <(list_items "$GITHUB_REPOSITORY")
# A branch name as git allows one (less a few it rarely holds); no quote, so safe inside CEL's ''.
[[ -z "$GITHUB_BRANCH" ||
  ("$GITHUB_BRANCH" =~ ^[A-Za-z0-9_][A-Za-z0-9._/-]*$ && "$GITHUB_BRANCH" != refs/* &&
  "$GITHUB_BRANCH" != *..* && "$GITHUB_BRANCH" != *//* && "$GITHUB_BRANCH" != */ &&
  "$GITHUB_BRANCH" != *.lock) ]] ||
  fail "GITHUB_BRANCH '$GITHUB_BRANCH' is not a branch name like main (the name, not refs/heads/...)"
[[ -z "$GITHUB_BRANCH" ]] || GITHUB_ATTRIBUTE_MAPPING+=",attribute.ref=assertion.ref"
# GITHUB_REPOSITORY_IDS: owner/repo=REPOSITORY_ID:OWNER_ID, for the listed repositories it names
# (the others are looked up); an entry for a repository no longer listed is left unused.
declare -A given_ids=()
while IFS= read -r -d '' entry; do
  [[ "$entry" =~ ^([^=]+)=([0-9]+):([0-9]+)$ ]] ||
    fail "GITHUB_REPOSITORY_IDS: '$entry' is not owner/repo=REPOSITORY_ID:OWNER_ID like" \
      "me/bot=812345678:1234567"
  given_ids["${BASH_REMATCH[1]}"]="${BASH_REMATCH[2]}:${BASH_REMATCH[3]}"
done < <(list_items "$GITHUB_REPOSITORY_IDS")
github_repository_ids=()
github_owner_ids=()
for repository in "${github_repositories[@]}"; do
  ids="${given_ids[$repository]:-0:0}" # 0 until looked up (look_up_github_ids, below)
  github_repository_ids+=("${ids%%:*}")
  github_owner_ids+=("${ids#*:}")
done

# CEL for the provider: each listed repository by its name and by ids GitHub never gives again,
# the repository's and its owner's (a repository transferred to someone else is out too); never
# a pull_request_target run, which has the repository's rights for a pull request anyone can
# open; with GITHUB_BRANCH, that branch only.
github_condition() {
  local i clauses=""
  for i in "${!github_repositories[@]}"; do
    clauses+="${clauses:+ || }(assertion.repository == '${github_repositories[i]}'"
    clauses+=" && assertion.repository_id == '${github_repository_ids[i]}'"
    clauses+=" && assertion.repository_owner_id == '${github_owner_ids[i]}')"
  done
  [[ ${#github_repositories[@]} -le 1 ]] || clauses="($clauses)"
  clauses+=" && assertion.event_name != 'pull_request_target'"
  [[ -z "$GITHUB_BRANCH" ]] || clauses+=" && assertion.ref == 'refs/heads/$GITHUB_BRANCH'"
  printf '%s' "$clauses"
}

check_github_condition_length() {
  GITHUB_CONDITION="$(github_condition)"
  [[ ${#GITHUB_CONDITION} -le 4096 ]] ||
    fail "GITHUB_REPOSITORY: too many repositories (a provider's condition holds 4096 characters)"
}
check_github_condition_length
[[ -z "$KAKAO_TOKEN_ACTION" ||
  "$KAKAO_TOKEN_ACTION" =~ ^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+(/[A-Za-z0-9._/-]+)?@[A-Za-z0-9._/-]+$ ]] ||
  fail "KAKAO_TOKEN_ACTION '$KAKAO_TOKEN_ACTION' is not an action like me/kakao-token-function@v0"
# The key itself never goes into a message.
[[ -z "$KAKAO_ADMIN_KEY" || "$KAKAO_ADMIN_KEY" =~ ^[A-Za-z0-9_-]{16,}$ ]] ||
  fail "KAKAO_ADMIN_KEY does not look like a Kakao admin key (letters and digits, no spaces)"
[[ -z "$KAKAO_APP_ID" || "$KAKAO_APP_ID" =~ ^[0-9]+$ ]] || fail "KAKAO_APP_ID '$KAKAO_APP_ID' must be the app's numeric ID"
[[ -z "$ALERT_EMAIL" || "$ALERT_EMAIL" =~ $EMAIL_RE ]] || fail "ALERT_EMAIL '$ALERT_EMAIL' is not an email address"
[[ -z "$KAKAO_PKCE" || "$KAKAO_PKCE" =~ ^[01]$ ]] || fail "KAKAO_PKCE '$KAKAO_PKCE' must be 1 (PKCE on) or 0 (off)"
# An absolute http(s) URL with a host, as token_logic/kakao/api.py's memo_link_from wants; no '|', the --set-env-vars delimiter.
MEMO_LINK_RE='^https?://[^/?#[:space:]|]+([/?#][^[:space:]|]*)?$'
[[ -z "$KAKAO_MEMO_LINK" || "$KAKAO_MEMO_LINK" =~ $MEMO_LINK_RE ]] ||
  fail "KAKAO_MEMO_LINK '$KAKAO_MEMO_LINK' is not an http(s) URL like https://github.com/you/your-bot (no spaces or '|')"
[[ -z "$KAKAO_REDIRECT_URI" || "$KAKAO_REDIRECT_URI" =~ $MEMO_LINK_RE ]] ||
  fail "KAKAO_REDIRECT_URI '$KAKAO_REDIRECT_URI' is not an http(s) URL like the callback URL deploy.sh prints"
command -v gcloud >/dev/null || fail "gcloud is not installed: https://cloud.google.com/sdk/docs/install"
# A Python 3 at least 3.$1: python3 first; where it is older (macOS's own), a newer python3.x.
find_python() {
  local candidate
  for candidate in python3 python3.14 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null &&
      "$candidate" -I -c "import sys; sys.exit(sys.version_info < (3, $1))" >/dev/null 2>&1; then
      printf '%s' "$candidate"
      return 0
    fi
  done
  return 1
}
# A single document without an allowlist is owned through a claim link (token_logic/service/claim.py):
# deploy.sh writes the first one, made by that module, which needs Python 3.11 or newer (its
# standard library alone).
NEEDS_CLAIM=no
[[ -z "$ALLOWED_KAKAO_USER_IDS" && "$PER_USER" == no ]] && NEEDS_CLAIM=yes
if [[ "$COMMAND" == claim && "$CLAIM_LOGIN" == sender && "$KAKAO_SENDER" != 1 ]]; then
  fail "this deployment has no sender: set KAKAO_SENDER=1 in $ENV_FILE and run ./deploy.sh," \
    "then ./deploy.sh claim --sender / 보내는 계정이 없는 배포입니다: deploy.env에 KAKAO_SENDER=1"
fi
if [[ "$COMMAND" == claim && "$CLAIM_LOGIN" == owner && -n "$ALLOWED_KAKAO_USER_IDS" ]]; then
  fail "no claim link is needed: ALLOWED_KAKAO_USER_IDS decides who logs in, at the callback URL" \
    "itself / ALLOWED_KAKAO_USER_IDS의 계정은 콜백 URL에서 바로 로그인합니다"
fi
CLAIM_PYTHON=""
if [[ "$NEEDS_CLAIM" == yes || "$KAKAO_SENDER" == 1 || "$COMMAND" == claim ]]; then
  CLAIM_PYTHON="$(find_python 11)" ||
    fail "python3 (Python 3.11 or newer) is needed to write the claim link:" \
      "https://www.python.org/downloads/ / 소유권 링크를 만들려면 Python 3.11 이상(python3)이 필요합니다"
fi
# The Kakao check (kakao_check, below) runs on the same Python; without one it is skipped
# with a warning, as a deployment that needs no claim link never needed Python.
KAKAO_PYTHON=""
if [[ "$COMMAND" == deploy && "$SKIP_KAKAO_CHECK" != 1 ]]; then
  KAKAO_PYTHON="$(find_python 11)" || KAKAO_PYTHON=""
fi

# A repository's ids from GitHub's REST API, logged out (a public repository's). GitHub answers
# a renamed or transferred repository's old name with the repository as it is now, whose jobs
# carry the new name, which the condition compares exactly (case too): the name must match.
READ_GITHUB_REPOSITORY='import json, sys
found = json.load(sys.stdin)
print(int(found["id"]), int(found["owner"]["id"]), found["full_name"])'
look_up_github_ids() {
  local i="$1" repository="${github_repositories[$1]}" answer found python
  local set_ids="set GITHUB_REPOSITORY_IDS=$repository=REPOSITORY_ID:OWNER_ID in deploy.env"
  command -v curl >/dev/null || fail "curl is needed to look up $repository on GitHub, or $set_ids"
  python="$(find_python 0)" || fail "python3 is needed to read GitHub's answer about $repository, or $set_ids"
  if ! answer="$(curl -fsSL --proto =https --max-time 20 -H 'Accept: application/vnd.github+json' \
    "$GITHUB_API/repos/$repository")"; then
    fail "GITHUB_REPOSITORY: could not look up $repository on $GITHUB_API (above). GitHub shows" \
      "a private repository to nobody logged out: $set_ids, from" \
      "gh api repos/$repository --jq '\"\\(.id):\\(.owner.id)\"' / 저장소 id를 찾지 못했습니다." \
      "비공개 저장소는 deploy.env의 GITHUB_REPOSITORY_IDS에 적으세요"
  fi
  found="$(printf '%s' "$answer" | "$python" -I -S -c "$READ_GITHUB_REPOSITORY" 2>/dev/null)" || found=""
  [[ "$found" =~ ^([0-9]+)\ ([0-9]+)\ (.+)$ ]] ||
    fail "GITHUB_REPOSITORY: GitHub's answer about $repository holds no repository id: $set_ids"
  [[ "${BASH_REMATCH[3]}" == "$repository" ]] ||
    fail "GITHUB_REPOSITORY: GitHub calls $repository '${BASH_REMATCH[3]}' now (renamed," \
      "transferred, or spelt otherwise): list it as GitHub spells it"
  github_repository_ids[i]="${BASH_REMATCH[1]}"
  github_owner_ids[i]="${BASH_REMATCH[2]}"
  say "GitHub $repository: repository id ${BASH_REMATCH[1]}, owner id ${BASH_REMATCH[2]} / 저장소 id"
}
for i in "${!github_repositories[@]}"; do
  [[ "$COMMAND" == claim || -n "${given_ids[${github_repositories[i]}]:-}" ]] || look_up_github_ids "$i"
done
check_github_condition_length

PROJECT="$GOOGLE_CLOUD_PROJECT"
RUNTIME_ACCOUNT="$RUNTIME_ACCOUNT_NAME@$PROJECT.iam.gserviceaccount.com"
CALLBACK_ACCOUNT="$CALLBACK_ACCOUNT_NAME@$PROJECT.iam.gserviceaccount.com"
SCHEDULER_ACCOUNT="$SCHEDULER_ACCOUNT_NAME@$PROJECT.iam.gserviceaccount.com"
GITHUB_ACCOUNT="$GITHUB_ACCOUNT_NAME@$PROJECT.iam.gserviceaccount.com"

g() {
  gcloud "$@" --project="$PROJECT" --quiet
}

exists() {
  g "$@" >/dev/null 2>&1
}

enable_apis() {
  local apis=(cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com
    artifactregistry.googleapis.com secretmanager.googleapis.com cloudscheduler.googleapis.com
    storage.googleapis.com iam.googleapis.com logging.googleapis.com monitoring.googleapis.com)
  # A GitHub job trades its OIDC token for a federated one (Security Token Service), then mints
  # the reader account's ID token with it (IAM Credentials): Google's federation guide asks for
  # both. Cloud Run takes only an ID token, which the federated token itself cannot be.
  [[ ${#github_repositories[@]} -gt 0 ]] && apis+=(sts.googleapis.com iamcredentials.googleapis.com)
  say "Enabling APIs / API 사용 설정"
  g services enable "${apis[@]}"
}

# Every write of a token document (a refresh is two) leaves the one before as a noncurrent
# version, with both its tokens. They are what a bad write is rolled back to, so they are kept
# NONCURRENT_DAYS after being replaced: a bad Friday evening found on Monday morning, the alert
# mail having gone out within the hour. Longer would keep weeks of refresh tokens for nothing.
# The account status webhook keeps one small marker per Kakao event it handled (replay
# protection, token_logic/service/account_events.py); an event older than 10 minutes is refused,
# so a day is plenty, and without this rule they would pile up forever.
lifecycle_rule() {
  cat <<EOF
{
  "rule": [
    {
      "action": {"type": "Delete"},
      "condition": {"isLive": false, "daysSinceNoncurrentTime": $NONCURRENT_DAYS}
    },
    {
      "action": {"type": "Delete"},
      "condition": {"age": 1, "matchesPrefix": [".kakao-token-events/"]}
    }
  ]
}
EOF
}

ensure_bucket() {
  say "Bucket gs://$TOKEN_BUCKET (private, versioned, old versions kept $NONCURRENT_DAYS days, no soft delete) / 버킷"
  if ! exists storage buckets describe "gs://$TOKEN_BUCKET"; then
    g storage buckets create "gs://$TOKEN_BUCKET" --location="$REGION" \
      --uniform-bucket-level-access --public-access-prevention
  fi
  local lifecycle="$WORK_DIR/lifecycle.json"
  lifecycle_rule >"$lifecycle"
  # Every setting is stated whole, so a re-run sets the same again and changes nothing. The
  # lifecycle file replaces the bucket's rules: TOKEN_BUCKET is the tokens' bucket alone.
  g storage buckets update "gs://$TOKEN_BUCKET" --versioning \
    --uniform-bucket-level-access --public-access-prevention --lifecycle-file="$lifecycle"
  # Soft delete off: it would keep every deleted object, a logged-out or unlinked user's refresh
  # token and each old version the rule above deletes, restorable for 7 more days (the
  # default). A deleted token must be gone; rolling back a bad write is what the versions are
  # for. Objects already soft-deleted keep the duration they were deleted under. An
  # organization may require soft delete (constraints/storage.softDeletePolicySeconds): then
  # it stays on, and the deploy goes on with a warning, since nothing here can change that.
  if ! g storage buckets update "gs://$TOKEN_BUCKET" --clear-soft-delete; then
    echo "deploy.sh: warning: soft delete stays on for gs://$TOKEN_BUCKET (gcloud's reason" \
      "above): deleted tokens stay restorable for its retention / 소프트 삭제를 끄지 못했습니다" >&2
  fi
}

# The value travels on stdin, never on a command line (where `ps` would show it).
put_secret() {
  local name="$1" value="$2"
  if exists secrets describe "$name"; then
    if [[ "$(g secrets versions access latest --secret="$name" 2>/dev/null || true)" != "$value" ]]; then
      say "Secret $name changed: adding a new version / 새 버전"
      printf '%s' "$value" | g secrets versions add "$name" --data-file=-
    fi
  else
    say "Secret $name / 비밀 저장"
    printf '%s' "$value" | g secrets create "$name" --replication-policy=automatic --data-file=-
  fi
}

ensure_service_account() {
  local name="$1" email="$2" description="$3"
  if ! exists iam service-accounts describe "$email"; then
    say "Service account $email"
    g iam service-accounts create "$name" --display-name="$description"
  fi
}

# A remove-*-binding that finds nothing to remove (the binding, or the secret, account or
# function itself: gcloud says "not found") has nothing left to do: status 1. Any other failure
# stops the deploy with gcloud's words.
revoke() {
  local out
  if out="$(g "$@" 2>&1 >/dev/null)"; then return 0; fi
  [[ "$out" == *"not found"* || "$out" == *NOT_FOUND* ]] && return 1
  printf '%s\n' "$out" >&2
  fail "gcloud $1 $2 $3 failed (above)"
}

# Who gets what; every grant is on the one resource, never project-wide:
#   kakao-token-callback (kakao_callback: login, /claim, /unlink): roles/storage.objectUser on
#     the bucket; secretAccessor on kakao-rest-api-key, kakao-client-secret and, with
#     KAKAO_ADMIN_KEY, kakao-admin-key (the unlink webhook's check, its only use)
#   kakao-token-fn (kakao_refresh, kakao_token): roles/storage.objectUser on the bucket;
#     secretAccessor on kakao-rest-api-key and kakao-client-secret; never kakao-admin-key
#     (revoke_shared_admin_key takes back what the shared account of older deploys had)
#   kakao-token-scheduler: run.invoker on kakao-refresh (main)
#   TOKEN_READERS and kakao-token-github: run.invoker on kakao-token (grant_token_readers,
#     grant_github_access); GITHUB_REPOSITORY's repositories: workloadIdentityUser on
#     kakao-token-github
grant_least_privilege() {
  say "Granting each function's account this bucket and its secrets only / 최소 권한"
  local account secret
  for account in "$CALLBACK_ACCOUNT" "$RUNTIME_ACCOUNT"; do
    g storage buckets add-iam-policy-binding "gs://$TOKEN_BUCKET" \
      --member="serviceAccount:$account" --role=roles/storage.objectUser >/dev/null
    local secrets=("$KEY_SECRET" "$CLIENT_SECRET_SECRET")
    [[ "$account" == "$CALLBACK_ACCOUNT" && -n "$KAKAO_ADMIN_KEY" ]] && secrets+=("$ADMIN_KEY_SECRET")
    for secret in "${secrets[@]}"; do
      g secrets add-iam-policy-binding "$secret" \
        --member="serviceAccount:$account" --role=roles/secretmanager.secretAccessor >/dev/null
    done
  done
}

# Before the callback had its own account, all three functions ran as the runtime account,
# which could read the admin key. Run after the callback is deployed on its own account (an
# instance of the old revision starting in between could not read its secret). With no admin
# key set, a secret left from an earlier run is checked all the same.
revoke_shared_admin_key() {
  if revoke secrets remove-iam-policy-binding "$ADMIN_KEY_SECRET" \
    --member="serviceAccount:$RUNTIME_ACCOUNT" --role=roles/secretmanager.secretAccessor; then
    say "$RUNTIME_ACCOUNT may no longer read $ADMIN_KEY_SECRET (the callback's alone) / 권한 삭제"
  fi
}

function_url() {
  g functions describe "$1" --gen2 --region="$REGION" --format='value(serviceConfig.uri)' 2>/dev/null || true
}

# Values such as KAKAO_SCOPE may hold commas, so '|' delimits (see `gcloud topic escaping`).
# The callback alone answers Kakao's unlink webhook, so it alone gets the app id and admin key.
env_vars() {
  local redirect_uri="$1" role="$2"
  local vars="THREADS=$SERVER_THREADS|TOKEN_BUCKET=$TOKEN_BUCKET|TOKEN_OBJECT=$TOKEN_OBJECT"
  [[ -n "$redirect_uri" ]] && vars+="|KAKAO_REDIRECT_URI=$redirect_uri"
  [[ -n "$KAKAO_SCOPE" ]] && vars+="|KAKAO_SCOPE=$KAKAO_SCOPE"
  [[ -n "$ALLOWED_KAKAO_USER_IDS" ]] && vars+="|ALLOWED_KAKAO_USER_IDS=$ALLOWED_KAKAO_USER_IDS"
  [[ -n "$KAKAO_PKCE" ]] && vars+="|KAKAO_PKCE=$KAKAO_PKCE"
  [[ -n "$KAKAO_MEMO_LINK" ]] && vars+="|KAKAO_MEMO_LINK=$KAKAO_MEMO_LINK"
  [[ -n "$KAKAO_SENDER" ]] && vars+="|KAKAO_SENDER=$KAKAO_SENDER"
  [[ "$role" == callback && -n "$KAKAO_APP_ID" ]] && vars+="|KAKAO_APP_ID=$KAKAO_APP_ID"
  printf '^|^%s' "$vars"
}

secret_vars() {
  local vars="KAKAO_REST_API_KEY=$KEY_SECRET:latest,KAKAO_CLIENT_SECRET=$CLIENT_SECRET_SECRET:latest"
  [[ "$1" == callback && -n "$KAKAO_ADMIN_KEY" ]] && vars+=",KAKAO_ADMIN_KEY=$ADMIN_KEY_SECRET:latest"
  printf '%s' "$vars"
}

deploy_function() {
  local name="$1" entry_point="$2" access="$3" redirect_uri="$4" role=other account="$RUNTIME_ACCOUNT"
  [[ "$name" == "$CALLBACK_FUNCTION" ]] && role=callback account="$CALLBACK_ACCOUNT"
  # A whole vCPU each, billed only while a request runs (BENCHMARKS.md, section 1 and the cost
  # notes): 256Mi alone gives 0.167 vCPU, where a cold start takes 1.6 s before our code runs;
  # with --cpu=1 the login page comes in 0.3 s and a cold first token in 0.4 s. The callback and
  # the token endpoint take SERVER_THREADS requests at once (a fractional vCPU would force one),
  # so a burst of scheduled Actions shares one warm instance instead of waiting on cold ones.
  # The sweep is CPU-bound in the storage client (~8 CPU-seconds per 1,000 refreshes) and runs
  # alone; every shard's job fires at the same minute, each on an instance of its own.
  local resources=(--memory=256Mi --cpu=1 --concurrency="$SERVER_THREADS" --max-instances=5)
  [[ "$name" == "$REFRESH_FUNCTION" ]] &&
    resources=(--memory=512Mi --cpu=1 --concurrency=1
      --max-instances=$((REFRESH_SHARDS > 5 ? REFRESH_SHARDS : 5)))
  say "Deploying $name / 배포"
  g functions deploy "$name" --gen2 --runtime="$PYTHON_RUNTIME" --region="$REGION" \
    --source="$HERE" --entry-point="$entry_point" --trigger-http "$access" \
    --service-account="$account" "${resources[@]}" --timeout=60s \
    --set-env-vars="$(env_vars "$redirect_uri" "$role")" --set-secrets="$(secret_vars "$role")"
  # No startup CPU boost: two vCPUs start these functions no faster than one (a start is one
  # Python thread; BENCHMARKS.md, section 1 and its notes), so the second management call it
  # needs (gcloud run services update --cpu-boost; deploy has no flag) would buy nothing.
}

deployed_url() {
  local url
  url="$(function_url "$1")"
  [[ -n "$url" ]] || fail "deployed $1 but could not read its URL"
  printf '%s' "$url"
}

# Invoker on the token endpoint only: these principals can never call kakao-refresh.
grant_token_readers() {
  local reader
  [[ ${#token_readers[@]} -gt 0 ]] || return 0
  say "Letting ${#token_readers[@]} reader(s) call $TOKEN_FUNCTION only / 토큰 엔드포인트 호출 권한"
  for reader in "${token_readers[@]}"; do
    g functions add-invoker-policy-binding "$TOKEN_FUNCTION" --region="$REGION" \
      --member="$reader" >/dev/null
  done
}

# Deleting a pool or a provider keeps it for 30 days with state DELETED: describe still finds it
# and create fails, so it is brought back instead.
identity_state() {
  g iam workload-identity-pools "$@" --location=global --format='value(state)' 2>/dev/null || true
}

# The provider admits tokens of the listed repositories only, and is rewritten on every run:
# a repository taken off GITHUB_REPOSITORY can no longer get in. --no-disabled: a provider
# disabled by a run with GITHUB_REPOSITORY emptied (revoke_github_access) works again.
ensure_github_identity() {
  local state provider_flags=(--location=global --workload-identity-pool="$GITHUB_POOL")
  local settings=(--issuer-uri="$GITHUB_ISSUER" --attribute-mapping="$GITHUB_ATTRIBUTE_MAPPING"
    --attribute-condition="$GITHUB_CONDITION")
  state="$(identity_state describe "$GITHUB_POOL")"
  if [[ -z "$state" ]]; then
    say "Workload identity pool $GITHUB_POOL (create) / 워크로드 아이덴티티 풀"
    g iam workload-identity-pools create "$GITHUB_POOL" --location=global \
      --display-name="kakao-token GitHub Actions" >/dev/null
  elif [[ "$state" == DELETED ]]; then
    say "Workload identity pool $GITHUB_POOL (undelete) / 풀 복구"
    g iam workload-identity-pools undelete "$GITHUB_POOL" --location=global >/dev/null
  fi
  state="$(identity_state providers describe "$GITHUB_PROVIDER" --workload-identity-pool="$GITHUB_POOL")"
  say "GitHub provider for ${github_repositories[*]} / GitHub 공급자: $GITHUB_CONDITION"
  if [[ -z "$state" ]]; then
    g iam workload-identity-pools providers create-oidc "$GITHUB_PROVIDER" "${provider_flags[@]}" \
      --display-name="GitHub Actions" "${settings[@]}" >/dev/null
  else
    if [[ "$state" == DELETED ]]; then
      g iam workload-identity-pools providers undelete "$GITHUB_PROVIDER" "${provider_flags[@]}" >/dev/null
    fi
    g iam workload-identity-pools providers update-oidc "$GITHUB_PROVIDER" "${provider_flags[@]}" \
      "${settings[@]}" --no-disabled >/dev/null
  fi
}

project_number() {
  local number
  number="$(g projects describe "$PROJECT" --format='value(projectNumber)')"
  [[ "$number" =~ ^[0-9]+$ ]] || fail "could not read the project number of $PROJECT"
  printf '%s' "$number"
}

github_pool_principal() {
  printf 'principalSet://iam.googleapis.com/projects/%s/locations/global/workloadIdentityPools/%s/' \
    "$1" "$GITHUB_POOL"
}

# Each listed repository may act as the reader account, which may call kakao-token and nothing
# else: no project role, no invoker on the callback or the refresh. The principal set is the
# repository's id, which GitHub never gives another repository, not its name: the provider's
# condition already pins the ids, and the binding pins them again, so the account stays shut to
# a newcomer under a listed name even with the provider's condition loosened (by hand, or by an
# older deploy.sh run from another checkout).
grant_github_access() {
  local number="$1" pool member i wanted=()
  pool="$(github_pool_principal "$number")"
  for i in "${!github_repositories[@]}"; do
    wanted+=("${pool}attribute.repository_id/${github_repository_ids[i]}")
  done
  say "Letting ${github_repositories[*]} act as $GITHUB_ACCOUNT / GitHub 저장소 권한"
  for member in "${wanted[@]}"; do
    g iam service-accounts add-iam-policy-binding "$GITHUB_ACCOUNT" \
      --role=roles/iam.workloadIdentityUser --member="$member" >/dev/null
  done
  remove_other_github_bindings "$pool" "${wanted[@]}"
  g functions add-invoker-policy-binding "$TOKEN_FUNCTION" --region="$REGION" \
    --member="serviceAccount:$GITHUB_ACCOUNT" >/dev/null
}

# The provider's condition already shuts out a repository taken off the list; its binding goes
# too, so the account's policy says who may use it. Ours are this pool's principal sets by
# repository id, and by repository name (attribute.repository/OWNER/REPO) as older deploys made
# them: a re-run replaces those with ids (added first, so access never lapses). Bindings not
# made by us are left alone.
remove_other_github_bindings() {
  local pool="$1" policy lines line role member
  shift
  policy="$(g iam service-accounts get-iam-policy "$GITHUB_ACCOUNT" \
    --flatten='bindings[].members' --format='value(bindings.role,bindings.members)')"
  readarray -t lines <<<"$policy"
  for line in "${lines[@]}"; do
    role="${line%%$'\t'*}" member="${line#*$'\t'}"
    [[ "$role" == roles/iam.workloadIdentityUser ]] || continue
    [[ "$member" == "${pool}attribute.repository/"* || "$member" == "${pool}attribute.repository_id/"* ]] ||
      continue
    [[ " $* " == *" $member "* ]] && continue
    if [[ "$member" == "${pool}attribute.repository/"* ]]; then
      say "Binding by name ${member#"$pool"}: removed, repositories are bound by id / 이름 기반 권한 삭제"
    else
      say "Repository ${member#"$pool"} is off GITHUB_REPOSITORY: removing its binding / 권한 삭제"
    fi
    g iam service-accounts remove-iam-policy-binding "$GITHUB_ACCOUNT" \
      --role=roles/iam.workloadIdentityUser --member="$member" >/dev/null
  done
}

# GITHUB_REPOSITORY emptied: whatever an earlier run let in goes, at the start of the run. The
# provider is disabled, not deleted: a disabled provider exchanges no token, and the update is
# the same on every run and undone by the --no-disabled of the next run that lists a
# repository, where a deleted one would sit in DELETED for 30 days, to be undeleted. The
# workloadIdentityUser bindings and the account's invoker on kakao-token go too, so a federated
# token or an ID token got before the provider was disabled (valid up to an hour) is refused.
# The pool and the account stay, holding nothing. Without a pool or an account, nothing to do.
revoke_github_access() {
  local pool_state provider_state account=no
  pool_state="$(identity_state describe "$GITHUB_POOL")"
  exists iam service-accounts describe "$GITHUB_ACCOUNT" && account=yes
  [[ -n "$pool_state" || "$account" == yes ]] || return 0
  say "GITHUB_REPOSITORY is empty: GitHub Actions gets no access (pool $GITHUB_POOL) / GitHub Actions 접근 권한 없음"
  if [[ "$pool_state" == ACTIVE ]]; then
    provider_state="$(identity_state providers describe "$GITHUB_PROVIDER" --workload-identity-pool="$GITHUB_POOL")"
    if [[ "$provider_state" == ACTIVE ]]; then
      g iam workload-identity-pools providers update-oidc "$GITHUB_PROVIDER" --location=global \
        --workload-identity-pool="$GITHUB_POOL" --disabled >/dev/null
    fi
  fi
  [[ "$account" == yes ]] || return 0
  remove_other_github_bindings "$(github_pool_principal "$(project_number)")"
  if revoke functions remove-invoker-policy-binding "$TOKEN_FUNCTION" --region="$REGION" \
    --member="serviceAccount:$GITHUB_ACCOUNT"; then
    say "$GITHUB_ACCOUNT may no longer call $TOKEN_FUNCTION / 호출 권한 삭제"
  fi
}

# This checkout's version (__version__ in token_logic/__init__.py), or nothing.
checkout_version() {
  local line
  [[ -f "$HERE/token_logic/__init__.py" ]] || return 0
  while IFS= read -r line; do
    if [[ "$line" =~ ^__version__[[:space:]]*=[[:space:]]*[\"\']([0-9]+\.[A-Za-z0-9.+-]+)[\"\'] ]]; then
      printf '%s' "${BASH_REMATCH[1]}"
      return 0
    fi
  done <"$HERE/token_logic/__init__.py"
}

# KAKAO_TOKEN_ACTION, else this checkout's github.com origin at the major tag that every
# release moves (v0 for 0.x.y: .github/workflows/release.yml). Fails with no github.com origin
# or no version: a guessed owner or ref is a line that breaks in the user's repository. The
# remote's user and password (an https token) are never printed: only owner/repo is kept.
action_ref() {
  local origin slug version
  if [[ -n "$KAKAO_TOKEN_ACTION" ]]; then
    printf '%s' "$KAKAO_TOKEN_ACTION"
    return 0
  fi
  origin="$(git -C "$HERE" remote get-url origin 2>/dev/null || true)"
  [[ "$origin" =~ ^(https://([^@/]+@)?|ssh://git@|git@)github\.com[:/]([A-Za-z0-9-]+/[A-Za-z0-9._-]+)/?$ ]] ||
    return 1
  slug="${BASH_REMATCH[3]%.git}"
  version="$(checkout_version)"
  [[ -n "$version" ]] || return 1
  printf '%s@v%s' "$slug" "${version%%.*}"
}

# One document per Kakao account: the Action must say whose token (its user_id input). The id
# when the allowlist holds one, else a placeholder saying which ids there are to choose from.
workflow_user_id() {
  [[ "$PER_USER" == yes ]] || return 0
  if [[ "$ALLOWED_KAKAO_USER_IDS" =~ ^[0-9]+$ ]]; then
    printf '\n          user_id: %s' "$ALLOWED_KAKAO_USER_IDS"
  elif [[ -n "$ALLOWED_KAKAO_USER_IDS" ]]; then
    printf '\n          user_id: %s # one of ALLOWED_KAKAO_USER_IDS (%s): whose token / 어느 계정의 토큰인지' \
      "$USER_ID_PLACEHOLDER" "${ALLOWED_KAKAO_USER_IDS//,/, }"
  else
    printf '\n          user_id: %s # the Kakao user id shown by the login through its claim link / 소유권 링크로 로그인한 계정의 사용자 id' \
      "$USER_ID_PLACEHOLDER"
  fi
}

print_github_workflow() {
  local token_url="$1" number="$2" action
  local IFS=,
  if ! action="$(action_ref)"; then
    cat <<EOF

GitHub Actions (${github_repositories[*]}): no workflow printed: this checkout has no github.com
origin (git remote get-url origin) to name the action by. Set KAKAO_TOKEN_ACTION (e.g. me/kakao-token-function@v0)
in deploy.env and run ./deploy.sh again to print it / KAKAO_TOKEN_ACTION 을 설정하고 다시 실행하세요.
EOF
    return 0
  fi
  cat <<EOF

GitHub Actions (${github_repositories[*]}): paste this into .github/workflows/kakao-memo.yml there.
그 저장소의 .github/workflows/kakao-memo.yml 에 아래를 붙여 넣으세요:
# ----- .github/workflows/kakao-memo.yml -----
# Every morning at 09:00 KST (GitHub's cron is UTC) / 매일 오전 9시(KST)
name: kakao-memo
on:
  schedule:
    - cron: "0 0 * * *"
  workflow_dispatch:
permissions:
  id-token: write
  contents: read
jobs:
  memo:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    steps:
      - id: kakao
        uses: $action
        with:
          url: $token_url
          workload_identity_provider: projects/$number/locations/global/workloadIdentityPools/$GITHUB_POOL/providers/$GITHUB_PROVIDER
          service_account: $GITHUB_ACCOUNT$(workflow_user_id)
          # Sent from the sender to you (it rings) when KAKAO_SENDER=1 and a sender logged in,
          # else a memo; needs the talk_message consent. 보내는 계정이 있으면 알림이 울리는 메시지로.
          text: "GitHub Actions에서 보낸 메시지입니다 / Hello from GitHub Actions"
# ----- end / 끝 -----
EOF
  if [[ "$(workflow_user_id)" == *"$USER_ID_PLACEHOLDER"* ]]; then
    echo "Replace $USER_ID_PLACEHOLDER in 'user_id:' with the Kakao user id whose token the workflow gets / user_id: 에 카카오 사용자 id를 넣으세요."
  fi
}

# Shard I of N is job kakao-token-refresh (I = 0, the name one job always had) or
# kakao-token-refresh-I, calling ?shard=I/N; jobs left over from a larger N are deleted.
shard_job() {
  if [[ "$1" -eq 0 ]]; then printf '%s' "$SCHEDULER_JOB"; else printf '%s-%s' "$SCHEDULER_JOB" "$1"; fi
}

ensure_scheduler_job() {
  local refresh_url="$1" shard job uri verb
  for ((shard = 0; shard < REFRESH_SHARDS; shard++)); do
    job="$(shard_job "$shard")" uri="$refresh_url" verb=create
    [[ "$REFRESH_SHARDS" -eq 1 ]] || uri="$refresh_url?shard=$shard/$REFRESH_SHARDS"
    exists scheduler jobs describe "$job" --location="$REGION" && verb=update
    say "Scheduler job $job ($verb): $REFRESH_SCHEDULE / 예약 갱신"
    g scheduler jobs "$verb" http "$job" --location="$REGION" \
      --schedule="$REFRESH_SCHEDULE" --time-zone=Asia/Seoul --uri="$uri" --http-method=POST \
      --oidc-service-account-email="$SCHEDULER_ACCOUNT" --oidc-token-audience="$refresh_url" \
      --attempt-deadline=180s >/dev/null
  done
  # Left over from a larger REFRESH_SHARDS (all of them, even after a run that stopped halfway
  # or a job deleted by hand): they would keep calling ?shard=I/N of a split that is gone.
  local existing
  existing="$(g scheduler jobs list --location="$REGION" --format='value(name.basename())')"
  for job in $existing; do
    shard="${job#"$SCHEDULER_JOB"-}"
    [[ "$job" == "$SCHEDULER_JOB-"* && "$shard" =~ ^[1-9][0-9]?$ ]] || continue # ours: 1-99
    ((shard >= REFRESH_SHARDS)) || continue
    say "Scheduler job $job (delete: REFRESH_SHARDS is $REFRESH_SHARDS) / 남는 작업 삭제"
    g scheduler jobs delete "$job" --location="$REGION" --quiet >/dev/null
  done
}

json_string() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\n'/\\n}"
  s="${s//$'\t'/\\t}"
  printf '"%s"' "$s"
}

# The log contract the function code writes to: a line with jsonPayload.alert (login_dead,
# refresh_failed) from one of our functions, or a failed attempt of our scheduler job.
job_id_filter() {
  if [[ "$REFRESH_SHARDS" -eq 1 ]]; then
    printf '%s' "resource.labels.job_id=\"$SCHEDULER_JOB\""
  else
    printf '%s' "resource.labels.job_id=~\"^$SCHEDULER_JOB(-[0-9]+)?\$\""
  fi
}

alert_filter() {
  printf '%s' "(resource.type=\"cloud_run_revision\"" \
    " AND resource.labels.service_name=(\"$CALLBACK_FUNCTION\" OR \"$REFRESH_FUNCTION\" OR \"$TOKEN_FUNCTION\")" \
    " AND jsonPayload.alert:*)" \
    " OR (resource.type=\"cloud_scheduler_job\" AND $(job_id_filter)" \
    " AND severity>=ERROR)"
}

alert_documentation() {
  local callback_url="$1" at="--region=$REGION --project=$PROJECT"
  cat <<EOF
## 카카오 토큰 알림 / Kakao token alert

The \`alert\` label says which / \`alert\` 라벨이 종류를 알려 줍니다.

**login_dead** — 로그인이 끊겼습니다(KOE322, 앱 연결 해제, 또는 토큰 엔드포인트가 끊긴 로그인을 거절).
브라우저로 다시 로그인하세요 / The Kakao login is dead (KOE322, the user unlinked the app, or the
token endpoint refused a dead login). Open this and log in again: $callback_url

**ownership** — 소유권: 소유권 링크로 소유자가 정해졌거나 바뀌었습니다, 또는 다른 카카오 계정의
로그인을 거절했습니다(그 토큰은 로그아웃됨). 본인이 한 일이 아니면 확인하세요 / A claim link made or
changed the owner, or a stranger's login was refused (their token logged out). If it was not you,
look at the callback's log.

**refresh_deferred** — 예약 갱신이 밀립니다(마감 안에 아무도 갱신하지 못했거나 두 번 연속으로
미룸): \`REFRESH_SHARDS\`를 늘려 \`./deploy.sh\`를 다시 실행하세요 / The scheduled refresh is
falling behind: run \`./deploy.sh\` again with a larger \`REFRESH_SHARDS\`.

**refresh_failed**, or a failed Cloud Scheduler run / 예약 실행 실패 — 재시도 후에도 갱신 실패:
1. Client secret: the latest version of secret \`$CLIENT_SECRET_SECRET\` must equal the client
   secret (클라이언트 시크릿) of the key at [앱] > [플랫폼 키] > [REST API 키] (KOE010). Fix it
   with \`./deploy.sh\`, which asks Kakao first (\`python -m token_logic doctor\` does too).
2. Scheduler account / 스케줄러 계정 \`$SCHEDULER_ACCOUNT\` needs roles/run.invoker on
   \`$REFRESH_FUNCTION\` (a 401/403 in the scheduler log): run \`./deploy.sh\` again.

Where to look / 로그 보기:
- \`gcloud functions logs read $REFRESH_FUNCTION --gen2 $at\`
- \`gcloud functions logs read $TOKEN_FUNCTION --gen2 $at\`
- \`gcloud logging read 'resource.type="cloud_scheduler_job" AND resource.labels.job_id="$SCHEDULER_JOB"' --project=$PROJECT --limit=10\`

Retry now / 지금 다시 실행: \`gcloud scheduler jobs run $SCHEDULER_JOB --location=$REGION --project=$PROJECT\`
EOF
}

write_alert_policy() {
  local channel="$1" callback_url="$2"
  cat <<EOF
{
  "displayName": $(json_string "$ALERT_POLICY"),
  "combiner": "OR",
  "enabled": true,
  "conditions": [
    {
      "displayName": "Kakao login dead, refresh failed or scheduler run failed",
      "conditionMatchedLog": {
        "filter": $(json_string "$(alert_filter)"),
        "labelExtractors": {"alert": "EXTRACT(jsonPayload.alert)"}
      }
    }
  ],
  "notificationChannels": [$(json_string "$channel")],
  "alertStrategy": {
    "notificationRateLimit": {"period": "$ALERT_RATE_LIMIT"},
    "autoClose": "$ALERT_AUTO_CLOSE"
  },
  "documentation": {
    "mimeType": "text/markdown",
    "subject": "kakao-token-function: Kakao login needs you / 카카오 로그인 확인 필요",
    "content": $(json_string "$(alert_documentation "$callback_url")")
  }
}
EOF
}

# Step 2 of the final message. The claim link is the secret: this is the one place it is shown.
login_step() {
  local callback_url="$1" owner="$2"
  if [[ -n "$CLAIM_LINK" ]]; then
    cat <<EOF
2. Then become the owner: open this link in a browser and log in. It works once, within a day;
   \`python -m token_logic claim-url\` makes a new one.
   그다음 소유자가 되려면 이 링크를 브라우저에서 열어 로그인하세요. 하루 안에 한 번만 쓸 수
   있습니다. 새 링크는 \`python -m token_logic claim-url\` 로 만듭니다:
     $CLAIM_LINK
EOF
  elif [[ "$owner" == yes ]]; then
    cat <<EOF
2. This deployment has an owner, who logs in again here; to hand it over, open a link from
   \`python -m token_logic claim-url\` with the new account.
   소유자는 여기서 다시 로그인합니다. 소유자를 바꾸려면 \`python -m token_logic claim-url\` 의
   링크를 새 계정으로 여세요:
     $callback_url
EOF
  elif [[ "$owner" == unknown ]]; then
    cat <<EOF
2. Could not tell whether anyone owns this deployment (above), so no claim link was made: run
   \`python -m token_logic claim-url\` and open its link to become the owner.
   소유자 확인에 실패해 소유권 링크를 만들지 않았습니다. \`python -m token_logic claim-url\` 의
   링크를 여세요. Login / 로그인: $callback_url
EOF
  elif [[ "$owner" == not-shown ]]; then
    cat <<EOF
2. No claim link was made: this output is not a terminal, or CI is set, and a live link would
   stay readable in a CI log or a file. To become the owner, run
   \`python -m token_logic claim-url\` in a terminal and open its link (or \`./deploy.sh claim\`
   there; PRINT_CLAIM_LINK=1 prints it anyway).
   출력이 터미널이 아니거나 CI 환경이라 소유권 링크를 만들지 않았습니다(로그에 남기 때문).
   터미널에서 \`python -m token_logic claim-url\` 의 링크를 여세요. Login / 로그인: $callback_url
EOF
  elif [[ "$PER_USER_CLAIMS" == 1 && "$PER_USER" == yes ]]; then
    local listed=""
    [[ -z "$ALLOWED_KAKAO_USER_IDS" ]] ||
      listed=" (ALLOWED_KAKAO_USER_IDS log in without one / 허용 목록의 계정은 링크 없이)"
    cat <<EOF
2. Each Kakao account comes in through a claim link of its own$listed: make one per
   account with \`python -m token_logic claim-url\` (a link admits one account, once, within a
   day). 계정마다 \`python -m token_logic claim-url\` 로 만든 소유권 링크로 로그인합니다(링크
   하나에 계정 하나, 하루 안에 한 번). Login / 로그인: $callback_url
EOF
  else
    cat <<EOF
2. Then open it in a browser to log in / 그다음 브라우저에서 열어 로그인하세요:
     $callback_url
EOF
  fi
}

first_line() {
  printf '%s' "${1%%$'\n'*}"
}

# Found by display name, so a re-run updates the policy instead of adding a second one.
ensure_alerts() {
  local callback_url="$1" channel policy channel_name="kakao-token-function: $ALERT_EMAIL"
  say "Alert mail to $ALERT_EMAIL / 알림 메일"
  channel="$(first_line "$(g beta monitoring channels list \
    --filter="displayName=\"$channel_name\"" --format='value(name)')")"
  if [[ -z "$channel" ]]; then
    g beta monitoring channels create --type=email --display-name="$channel_name" \
      --channel-labels="email_address=$ALERT_EMAIL" >/dev/null
    channel="$(first_line "$(g beta monitoring channels list \
      --filter="displayName=\"$channel_name\"" --format='value(name)')")"
    [[ -n "$channel" ]] || fail "created the notification channel but could not find it"
  fi
  POLICY_FILE="$WORK_DIR/alert-policy.json"
  write_alert_policy "$channel" "$callback_url" >"$POLICY_FILE"
  policy="$(first_line "$(g alpha monitoring policies list \
    --filter="displayName=\"$ALERT_POLICY\"" --format='value(name)')")"
  if [[ -z "$policy" ]]; then
    say "Alert policy (create) / 알림 정책"
    g alpha monitoring policies create --policy-from-file="$POLICY_FILE" >/dev/null
  else
    say "Alert policy (update) / 알림 정책"
    g alpha monitoring policies update "$policy" --policy-from-file="$POLICY_FILE" >/dev/null
  fi
}

# Whether an object of the bucket exists: yes, no, or unknown (any failure but "not found").
object_exists() {
  local out
  if out="$(g storage objects describe "gs://$TOKEN_BUCKET/$1" --format='value(name)' 2>&1)"; then
    echo yes
  elif [[ "$out" == *"not found"* ]]; then
    echo no
  else
    printf '%s\n' "$out" >&2
    echo unknown
  fi
}

# A claim made by token_logic/service/claim.py as `claim-url` makes one (with --sender, the
# sender's): its lines are where the claim lives beside TOKEN_OBJECT, the secret (43 URL-safe
# base64 characters), the record the bucket keeps for a day (only the secret's SHA-256), and the
# document the claimed login goes to; a newer claim replaces it. The module runs on the standard
# library alone (-S), from this checkout only (-P, PYTHONPATH), so nothing in the current
# directory or site-packages is imported. The secret lives in this shell's variable and travels
# through pipes: never an argument (ps would show it), never a log line; its one way out is the
# link printed at the end. Sets CLAIM_OBJECT, CLAIM_SECRET, CLAIM_RECORD and CLAIM_DOCUMENT;
# nothing is stored yet (store_claim).
new_claim() {
  { set +x; } 2>/dev/null # bash -x would print the secret
  local made rest
  made="$(PYTHONPATH="$HERE" "$CLAIM_PYTHON" -P -S -m token_logic.service.claim "$TOKEN_OBJECT" "$@")" ||
    fail "could not make a claim with $CLAIM_PYTHON -m token_logic.service.claim (above)"
  CLAIM_OBJECT="${made%%$'\n'*}"
  rest="${made#*$'\n'}"
  CLAIM_SECRET="${rest%%$'\n'*}"
  rest="${rest#*$'\n'}"
  CLAIM_RECORD="${rest%%$'\n'*}"
  CLAIM_DOCUMENT="${rest#*$'\n'}"
  [[ "$CLAIM_SECRET" =~ ^[A-Za-z0-9_-]{43}$ ]] || fail "token_logic.service.claim made no claim secret"
  [[ -n "$CLAIM_OBJECT" && "$CLAIM_RECORD" == '{"created_at": '*'}' ]] ||
    fail "token_logic.service.claim made no claim record"
  [[ -n "$CLAIM_DOCUMENT" && "$CLAIM_DOCUMENT" != *$'\n'* ]] ||
    fail "token_logic.service.claim named no document for the claimed login"
}

# Stores the claim new_claim made, and sets CLAIM_LINK_MADE: the callback's /claim page (a
# sender's says so in its query, as token_logic's IssuedClaim.link writes it) with the secret in
# the fragment, which browsers never send.
store_claim() {
  local callback_url="$1" what="$2" query="$3" out
  say "$what: gs://$TOKEN_BUCKET/$CLAIM_OBJECT / 소유권 링크"
  if ! out="$(printf '%s' "$CLAIM_RECORD" | g storage cp - "gs://$TOKEN_BUCKET/$CLAIM_OBJECT" \
    --cache-control=no-store --content-type=application/json 2>&1 >/dev/null)"; then
    printf '%s\n' "$out" >&2
    fail "could not write the claim to gs://$TOKEN_BUCKET/$CLAIM_OBJECT (above)"
  fi
  CLAIM_LINK_MADE="${callback_url%/}/claim$query#$CLAIM_SECRET"
}

# The first owner's claim link, in CLAIM_LINK.
issue_claim() {
  new_claim
  store_claim "$1" "Claim for the first owner" ""
  CLAIM_LINK="$CLAIM_LINK_MADE"
}

# The sender's claim (KAKAO_SENDER=1), while no sender has logged in: its link in SENDER_LINK,
# and SENDER_STATE yes (a sender is stored), no (a link was made), unknown or not-shown.
issue_sender_claim_if_needed() {
  SENDER_LINK=""
  new_claim --sender
  SENDER_STATE="$(object_exists "$CLAIM_DOCUMENT")"
  [[ "$SENDER_STATE" == no ]] || return 0
  if claim_link_wanted; then
    store_claim "$1" "Claim for the sender" "?login=sender"
    SENDER_LINK="$CLAIM_LINK_MADE"
  else
    SENDER_STATE=not-shown
  fi
}

# The live claim link goes to a person's terminal only: a CI log, or a file this output is piped
# to, would keep it readable for its day. With CI set (GitHub Actions, GitLab and most others
# set it) not even to a terminal. No link printed, no claim made: a claim nobody can use would
# only replace one that someone can. PRINT_CLAIM_LINK: 1 always, 0 never.
claim_link_wanted() {
  case "$PRINT_CLAIM_LINK" in
    1) return 0 ;;
    0) return 1 ;;
  esac
  [[ -t 1 && (-z "${CI:-}" || "${CI:-}" == false || "${CI:-}" == 0) ]]
}

# The Kakao check, token_logic/kakao/doctor.py on the standard library alone, as the claim is
# made: the key and the secret reach it in its environment, never in its arguments (ps shows
# those). KAKAO_AUTH_BASE_URL, when the environment sets it, points it at another Kakao (the
# tests' fake). $1 is the Redirect URI to check ("": none yet), the rest the doctor's flags.
kakao_doctor() {
  { set +x; } 2>/dev/null # bash -x would print the secret
  local redirect_uri="$1"
  shift
  KAKAO_REST_API_KEY="$KAKAO_REST_API_KEY" KAKAO_CLIENT_SECRET="$KAKAO_CLIENT_SECRET" \
    KAKAO_REDIRECT_URI="$redirect_uri" PYTHONPATH="$HERE" \
    "$KAKAO_PYTHON" -P -S -m token_logic.kakao.doctor "$@"
}

# Before anything is created: a key Kakao does not know or a secret that is not the key's would
# deploy functions where every login fails. "Could not tell" (Kakao unreachable, an answer we
# cannot read) goes on: only a setting Kakao says is wrong stops the deploy.
kakao_check() {
  if [[ "$SKIP_KAKAO_CHECK" == 1 ]]; then
    say "Kakao check skipped (--skip-kakao-check) / 카카오 설정 확인 건너뜀"
    return 0
  fi
  if [[ -z "$KAKAO_PYTHON" ]]; then
    echo "deploy.sh: warning: the Kakao check needs python3 (Python 3.11 or newer): skipped / 카카오" \
      "설정 확인에는 Python 3.11 이상이 필요해 건너뜁니다" >&2
    return 0
  fi
  say "Asking Kakao about the REST API key and its client secret / 카카오 앱 설정 확인"
  local status=0 out
  out="$(kakao_doctor "")" || status=$?
  [[ -z "$out" ]] || printf '%s\n' "$out"
  [[ "$status" -eq 0 ]] && return 0
  if [[ "$status" -ne 1 || "$out" != *"[실패 / FAIL]"* ]]; then
    echo "deploy.sh: warning: the Kakao check could not run (above): deploying without it /" \
      "카카오 설정 확인을 실행하지 못했습니다" >&2
    return 0
  fi
  fail "Kakao says the app's settings are wrong (above): fix them in the Kakao Developers" \
    "console, then run ./deploy.sh again. Nothing was deployed; --skip-kakao-check deploys" \
    "without this check / 카카오 콘솔 설정을 위와 같이 고친 뒤 다시 실행하세요(아무것도 배포하지 않았습니다)"
}

# Once the callback's URL is known: is it a Redirect URI of the key? Sets REDIRECT_URI_STATE to
# registered, unregistered, unknown or skipped. Never stops the deploy: the fix is one paste in
# the console, and the final message says where.
check_redirect_uri() {
  local callback_url="$1" status=0 out
  REDIRECT_URI_STATE=skipped
  [[ "$SKIP_KAKAO_CHECK" != 1 && -n "$KAKAO_PYTHON" ]] || return 0
  say "Asking Kakao whether $callback_url is a registered Redirect URI / 리다이렉트 URI 확인"
  out="$(kakao_doctor "$callback_url" --redirect-uri-only)" || status=$?
  [[ -z "$out" ]] || printf '%s\n' "$out"
  REDIRECT_URI_STATE=unknown
  if [[ "$status" -eq 1 && "$out" == *"[실패 / FAIL]"* ]]; then
    REDIRECT_URI_STATE=unregistered
  elif [[ "$status" -eq 0 && "$out" == "[ok]"* ]]; then
    REDIRECT_URI_STATE=registered
  fi
}

# Step 1 of the final message: the Redirect URI, as Kakao answered about it.
redirect_step() {
  local callback_url="$1"
  case "$REDIRECT_URI_STATE" in
    registered)
      cat <<EOF
1. Kakao knows this Redirect URI for your REST API key (checked) / 리다이렉트 URI 등록 확인됨:
     $callback_url
EOF
      ;;
    unregistered)
      cat <<EOF
1. NOT REGISTERED YET: Kakao refuses logins to this Redirect URI (KOE006). Paste it, exactly,
   into the Kakao console $REDIRECT_URI_FIELD
   (the key in KAKAO_REST_API_KEY). Everything else is deployed; no need to run deploy.sh again.
   아직 등록되지 않았습니다: 아래 주소를 카카오 콘솔 $REDIRECT_URI_FIELD 에 그대로
   붙여 넣으세요(KAKAO_REST_API_KEY의 키). 배포는 끝났으니 다시 실행할 필요는 없습니다:
     $callback_url
EOF
      ;;
    *)
      cat <<EOF
1. Register this Redirect URI in the Kakao console ($REDIRECT_URI_FIELD):
   카카오 콘솔에 아래 Redirect URI를 그대로 등록하세요:
     $callback_url
EOF
      ;;
  esac
}

# The sender's step (KAKAO_SENDER=1), after the owner's.
sender_step() {
  [[ "$KAKAO_SENDER" == 1 ]] || return 0
  echo # after login_step, whose last line break $(...) took off
  case "$SENDER_STATE" in
    no)
      cat <<EOF
   The sender, AFTER the owner has logged in: open this link in a browser logged in to Kakao as
   the SECOND account, the one that will message the owner (another browser, or a private
   window). It works once, within a day; \`./deploy.sh claim --sender\` makes a new one.
   보내는 계정 (소유자 로그인 다음에): 소유자에게 메시지를 보낼 두 번째 카카오 계정으로 로그인한
   브라우저(다른 브라우저나 시크릿 창)에서 이 링크를 여세요. 하루 안에 한 번만 쓸 수 있습니다:
     $SENDER_LINK
EOF
      ;;
    yes)
      cat <<EOF
   A sender has logged in; \`./deploy.sh claim --sender\` makes a link for another one.
   보내는 계정이 로그인되어 있습니다. 바꾸려면 \`./deploy.sh claim --sender\`.
EOF
      ;;
    not-shown)
      cat <<EOF
   No sender link was made (not a terminal, or CI is set): run \`./deploy.sh claim --sender\`
   in a terminal. 보내는 계정의 링크는 터미널에서 \`./deploy.sh claim --sender\` 로 만드세요.
EOF
      ;;
    *)
      cat <<EOF
   Could not tell whether a sender has logged in (above): \`./deploy.sh claim --sender\` makes
   its link. 보내는 계정 확인에 실패했습니다: \`./deploy.sh claim --sender\`.
EOF
      ;;
  esac
}

# For claim links made later on this machine (`python -m token_logic claim-url` reads
# deploy.env): the callback's URL, when deploy.env does not name it yet.
claim_url_tip() {
  [[ -z "$KAKAO_REDIRECT_URI" ]] || return 0
  [[ "$NEEDS_CLAIM" == yes || "$KAKAO_SENDER" == 1 ||
    ("$PER_USER" == yes && -z "$ALLOWED_KAKAO_USER_IDS") ]] || return 0
  printf '\n%s\n%s' \
    "   For \`python -m token_logic claim-url\` here, add to $ENV_FILE / deploy.env에 추가:" \
    "     KAKAO_REDIRECT_URI=$1"
}

# ./deploy.sh claim [--sender]: a fresh claim link for the deployed callback and bucket, printed
# by the deploy's own rules (claim_link_wanted); nothing is deployed and Kakao is not asked.
claim_command() {
  local callback_url
  claim_link_wanted ||
    fail "the claim link is printed to a terminal only, never when CI is set (a log or a file" \
      "would keep a live link): run this in a terminal, or with PRINT_CLAIM_LINK=1 / 소유권" \
      "링크는 터미널에만 출력합니다"
  callback_url="$(function_url "$CALLBACK_FUNCTION")"
  [[ -n "$callback_url" ]] ||
    fail "$CALLBACK_FUNCTION is not deployed in $PROJECT ($REGION): run ./deploy.sh first" \
      "/ 먼저 ./deploy.sh 로 배포하세요"
  if [[ "$CLAIM_LOGIN" == sender ]]; then
    new_claim --sender
    store_claim "$callback_url" "Claim for the sender" "?login=sender"
    cat <<EOF

Open this link in a browser logged in to Kakao as the SENDER, the second account that will
message the owner (another browser, or a private window). It works once, within a day; a newer
link replaces it.
소유자에게 메시지를 보낼 두 번째 카카오 계정으로 로그인한 브라우저에서 이 링크를 여세요(다른
브라우저나 시크릿 창). 하루 안에 한 번만 쓸 수 있습니다:
  $CLAIM_LINK_MADE
EOF
    return 0
  fi
  local en="becomes this deployment's owner (the first one, or taking it over)"
  local ko="이 배포의 소유자가 됩니다"
  if [[ "$PER_USER" == yes ]]; then
    en="is admitted, with a document of its own (one link, one account)"
    ko="등록됩니다(링크 하나에 계정 하나)"
  fi
  new_claim
  store_claim "$callback_url" "Claim" ""
  cat <<EOF

Open this link in a browser and log in: that Kakao account $en.
It works once, within a day; a newer link replaces it.
이 링크를 브라우저에서 열어 로그인한 카카오 계정이 $ko. 하루 안에 한 번만 쓸 수 있습니다:
  $CLAIM_LINK_MADE
EOF
}

main() {
  kakao_check # before anything is created
  # Files handed to gcloud (the lifecycle rule, the alert policy), gone when the script ends.
  WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/kakao-deploy.XXXXXX")"
  trap 'rm -rf "$WORK_DIR"' EXIT
  enable_apis
  ensure_bucket
  put_secret "$KEY_SECRET" "$KAKAO_REST_API_KEY"
  put_secret "$CLIENT_SECRET_SECRET" "$KAKAO_CLIENT_SECRET"
  if [[ -n "$KAKAO_ADMIN_KEY" ]]; then put_secret "$ADMIN_KEY_SECRET" "$KAKAO_ADMIN_KEY"; fi
  ensure_service_account "$RUNTIME_ACCOUNT_NAME" "$RUNTIME_ACCOUNT" "kakao-token-function runtime"
  ensure_service_account "$CALLBACK_ACCOUNT_NAME" "$CALLBACK_ACCOUNT" "kakao-token-function callback"
  ensure_service_account "$SCHEDULER_ACCOUNT_NAME" "$SCHEDULER_ACCOUNT" "kakao-token-function scheduler"
  # Made early: a new account takes a while to be usable in IAM bindings, which come after the
  # deploys.
  if [[ ${#github_repositories[@]} -gt 0 ]]; then
    ensure_service_account "$GITHUB_ACCOUNT_NAME" "$GITHUB_ACCOUNT" "kakao-token-function GitHub Actions"
    ensure_github_identity
  else
    revoke_github_access
  fi
  grant_least_privilege

  # The callback's own URL is its redirect URI: known only once the function exists.
  local callback_url
  callback_url="$(function_url "$CALLBACK_FUNCTION")"
  if [[ -z "$callback_url" ]]; then
    deploy_function "$CALLBACK_FUNCTION" kakao_callback --allow-unauthenticated ""
    callback_url="$(function_url "$CALLBACK_FUNCTION")"
    [[ -n "$callback_url" ]] || fail "deployed $CALLBACK_FUNCTION but could not read its URL"
  fi
  deploy_function "$CALLBACK_FUNCTION" kakao_callback --allow-unauthenticated "$callback_url"
  deploy_function "$REFRESH_FUNCTION" kakao_refresh --no-allow-unauthenticated "$callback_url"
  deploy_function "$TOKEN_FUNCTION" kakao_token --no-allow-unauthenticated "$callback_url"
  revoke_shared_admin_key
  check_redirect_uri "$callback_url"
  if [[ -n "$KAKAO_REDIRECT_URI" && "${KAKAO_REDIRECT_URI%/}" != "${callback_url%/}" ]]; then
    echo "deploy.sh: warning: KAKAO_REDIRECT_URI ($KAKAO_REDIRECT_URI) is not the callback's URL" \
      "($callback_url): claim-url would build links to the wrong place. Set" \
      "KAKAO_REDIRECT_URI=$callback_url in $ENV_FILE / KAKAO_REDIRECT_URI를 콜백 URL로 고치세요" >&2
  fi

  local refresh_url token_url
  refresh_url="$(deployed_url "$REFRESH_FUNCTION")"
  token_url="$(deployed_url "$TOKEN_FUNCTION")"
  say "Letting only the scheduler call $REFRESH_FUNCTION / 호출 권한"
  g functions add-invoker-policy-binding "$REFRESH_FUNCTION" --region="$REGION" \
    --member="serviceAccount:$SCHEDULER_ACCOUNT" >/dev/null
  grant_token_readers
  local number=""
  if [[ ${#github_repositories[@]} -gt 0 ]]; then
    number="$(project_number)"
    grant_github_access "$number"
  fi
  ensure_scheduler_job "$refresh_url"
  if [[ -n "$ALERT_EMAIL" ]]; then ensure_alerts "$callback_url"; fi
  # Last, once everything else is in place: the link works for a day from now. Only while
  # nobody owns the deployment (no token document yet): a claim link also hands an owned one
  # over, so a re-deploy makes none; `python -m token_logic claim-url` does, when wanted.
  local owner=n/a client=kakao-token version
  version="$(checkout_version)" # the client release that matches this deployment (PyPI)
  [[ -z "$version" ]] || client="kakao-token==$version"
  CLAIM_LINK=""
  if [[ "$NEEDS_CLAIM" == yes ]]; then
    owner="$(object_exists "$TOKEN_OBJECT")"
    if [[ "$owner" == no ]]; then
      if claim_link_wanted; then issue_claim "$callback_url"; else owner=not-shown; fi
    fi
  fi
  # The sender's link, the same way: only while no sender has logged in.
  SENDER_STATE=n/a
  if [[ "$KAKAO_SENDER" == 1 ]]; then issue_sender_claim_if_needed "$callback_url"; fi

  cat <<EOF

Done / 완료.
$(redirect_step "$callback_url")
$(login_step "$callback_url" "$owner")$(sender_step)$(claim_url_tip "$callback_url")
3. Tokens are kept alive by $SCHEDULER_JOB ($REFRESH_SCHEDULE, Asia/Seoul).
4. Token endpoint (private; TOKEN_READERS may call it) / 토큰 엔드포인트:
     $token_url
   KAKAO_TOKEN_URL=$token_url kakao-token access-token
   (kakao-token: pipx install "$client", the version of this checkout; README)
EOF
  cat <<EOF
5. (Recommended) the account status change webhook / (권장) 계정 상태 변경 웹훅:
   카카오 콘솔 [앱] > [웹훅] > [계정 상태 변경 웹훅] (user-unlinked, tokens-revoked, token-revoked):
     ${callback_url%/}/account-status
EOF
  if [[ -n "$KAKAO_ADMIN_KEY" ]]; then
    cat <<EOF
6. Register the unlink webhook / 연결 해제 웹훅 등록:
   카카오 콘솔 [앱] > [웹훅] > [연결 해제 웹훅], 메서드 POST / Kakao console, method POST:
     ${callback_url%/}/unlink
EOF
  fi
  if [[ -n "$ALERT_EMAIL" ]]; then
    echo "Alerts go to $ALERT_EMAIL (at most one mail per $ALERT_RATE_LIMIT) / 알림 메일."
  fi
  if [[ ${#github_repositories[@]} -gt 0 ]]; then print_github_workflow "$token_url" "$number"; fi
}

if [[ "$COMMAND" == claim ]]; then
  claim_command
else
  main
fi
