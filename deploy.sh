#!/usr/bin/env bash
# deploy.sh: put kakao-token-function on Google Cloud in one command, safely and repeatably.
# Run `./deploy.sh --help` for the inputs. Every step checks before it creates, so a second run
# changes nothing that is already right.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CALLBACK_FUNCTION="kakao-callback"
REFRESH_FUNCTION="kakao-refresh"
SCHEDULER_JOB="kakao-token-refresh"
RUNTIME_ACCOUNT_NAME="kakao-token-fn"
SCHEDULER_ACCOUNT_NAME="kakao-token-scheduler"
KEY_SECRET="kakao-rest-api-key"
CLIENT_SECRET_SECRET="kakao-client-secret"
KNOWN_INPUTS=(GOOGLE_CLOUD_PROJECT REGION TOKEN_BUCKET KAKAO_REST_API_KEY KAKAO_CLIENT_SECRET
  KAKAO_SCOPE ALLOWED_KAKAO_USER_IDS TOKEN_OBJECT REFRESH_SCHEDULE PYTHON_RUNTIME)

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [--env-file FILE]

Deploys kakao-token-function to Google Cloud: the redirect-URI function (public), the refresh
function (private), a Cloud Scheduler job that calls it, a private bucket for the tokens, and
the Kakao keys in Secret Manager. Safe to run again: it changes only what is not yet right.
카카오 로그인 토큰 함수를 Google Cloud에 배포합니다. 여러 번 실행해도 안전합니다.

Inputs come from the environment, or from a deploy.env file next to this script (or
--env-file FILE) with KEY=VALUE lines; the environment wins over the file.

Required:
  GOOGLE_CLOUD_PROJECT    your GCP project id
  TOKEN_BUCKET            bucket for kakao_token.json (created if missing; globally unique)
  KAKAO_REST_API_KEY      Kakao console > 앱 키 > REST API 키
  KAKAO_CLIENT_SECRET     Kakao console > 보안 > Client Secret (stored in Secret Manager)
Optional:
  REGION                  default asia-northeast3 (Seoul)
  KAKAO_SCOPE             extra consent items, comma-separated, e.g. talk_message
  ALLOWED_KAKAO_USER_IDS  comma-separated Kakao user ids allowed to store a token
  TOKEN_OBJECT            default kakao_token.json; tokens/{user_id}.json for many users
  REFRESH_SCHEDULE        cron for the refresh job, default "*/30 * * * *" (Asia/Seoul)
  PYTHON_RUNTIME          default python313

Needs: gcloud, logged in (gcloud auth login) as someone who may create these resources.
At the end it prints the Redirect URI to register in the Kakao console and the login URL.
EOF
}

fail() {
  echo "deploy.sh: error: $*" >&2
  exit 2
}

say() {
  echo "==> $*"
}

ENV_FILE="$HERE/deploy.env"
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
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

# Read KEY=VALUE lines without executing the file; only known keys, and never over the
# environment.
load_env_file() {
  local line key value known
  [[ -f "$1" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    [[ "$line" =~ ^[[:space:]]*([A-Z_]+)=(.*)$ ]] || fail "$1: cannot read line: $line"
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

REGION="${REGION:-asia-northeast3}"
TOKEN_OBJECT="${TOKEN_OBJECT:-kakao_token.json}"
REFRESH_SCHEDULE="${REFRESH_SCHEDULE:-*/30 * * * *}"
PYTHON_RUNTIME="${PYTHON_RUNTIME:-python313}"
KAKAO_SCOPE="${KAKAO_SCOPE:-}"
ALLOWED_KAKAO_USER_IDS="${ALLOWED_KAKAO_USER_IDS:-}"

missing=()
for name in GOOGLE_CLOUD_PROJECT TOKEN_BUCKET KAKAO_REST_API_KEY KAKAO_CLIENT_SECRET; do
  [[ -n "${!name:-}" ]] || missing+=("$name")
done
[[ ${#missing[@]} -eq 0 ]] || fail "missing ${missing[*]}: set them in the environment or in $ENV_FILE (see --help)"
[[ "$GOOGLE_CLOUD_PROJECT" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
  fail "GOOGLE_CLOUD_PROJECT '$GOOGLE_CLOUD_PROJECT' is not a project id (the id, not the name)"
[[ "$TOKEN_BUCKET" =~ ^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$ ]] ||
  fail "TOKEN_BUCKET '$TOKEN_BUCKET' is not a valid bucket name (lowercase, digits, - _ .)"
[[ "$REGION" =~ ^[a-z]+-[a-z]+[0-9]$ ]] || fail "REGION '$REGION' is not a region like asia-northeast3"
[[ -z "$ALLOWED_KAKAO_USER_IDS" || "$ALLOWED_KAKAO_USER_IDS" =~ ^[0-9]+(,[0-9]+)*$ ]] ||
  fail "ALLOWED_KAKAO_USER_IDS must be Kakao user ids separated by commas"
read -r -a schedule_fields <<<"$REFRESH_SCHEDULE"
[[ ${#schedule_fields[@]} -eq 5 ]] || fail "REFRESH_SCHEDULE '$REFRESH_SCHEDULE' must have 5 cron fields"
command -v gcloud >/dev/null || fail "gcloud is not installed: https://cloud.google.com/sdk/docs/install"

PROJECT="$GOOGLE_CLOUD_PROJECT"
RUNTIME_ACCOUNT="$RUNTIME_ACCOUNT_NAME@$PROJECT.iam.gserviceaccount.com"
SCHEDULER_ACCOUNT="$SCHEDULER_ACCOUNT_NAME@$PROJECT.iam.gserviceaccount.com"

g() {
  gcloud "$@" --project="$PROJECT" --quiet
}

exists() {
  g "$@" >/dev/null 2>&1
}

enable_apis() {
  say "Enabling APIs / API 사용 설정"
  g services enable cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com \
    artifactregistry.googleapis.com secretmanager.googleapis.com cloudscheduler.googleapis.com \
    storage.googleapis.com iam.googleapis.com logging.googleapis.com
}

ensure_bucket() {
  say "Bucket gs://$TOKEN_BUCKET (private, versioned) / 버킷"
  if ! exists storage buckets describe "gs://$TOKEN_BUCKET"; then
    g storage buckets create "gs://$TOKEN_BUCKET" --location="$REGION" \
      --uniform-bucket-level-access --public-access-prevention
  fi
  # Versioning lets a bad write be rolled back; the flags are no-ops when already set.
  g storage buckets update "gs://$TOKEN_BUCKET" --versioning \
    --uniform-bucket-level-access --public-access-prevention
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

grant_least_privilege() {
  say "Granting the runtime account this bucket and these secrets only / 최소 권한"
  g storage buckets add-iam-policy-binding "gs://$TOKEN_BUCKET" \
    --member="serviceAccount:$RUNTIME_ACCOUNT" --role=roles/storage.objectUser >/dev/null
  for secret in "$KEY_SECRET" "$CLIENT_SECRET_SECRET"; do
    g secrets add-iam-policy-binding "$secret" \
      --member="serviceAccount:$RUNTIME_ACCOUNT" --role=roles/secretmanager.secretAccessor >/dev/null
  done
}

function_url() {
  g functions describe "$1" --gen2 --region="$REGION" --format='value(serviceConfig.uri)' 2>/dev/null || true
}

# Values such as KAKAO_SCOPE may hold commas, so '|' delimits (see `gcloud topic escaping`).
env_vars() {
  local redirect_uri="$1" vars="TOKEN_BUCKET=$TOKEN_BUCKET|TOKEN_OBJECT=$TOKEN_OBJECT"
  [[ -n "$redirect_uri" ]] && vars+="|KAKAO_REDIRECT_URI=$redirect_uri"
  [[ -n "$KAKAO_SCOPE" ]] && vars+="|KAKAO_SCOPE=$KAKAO_SCOPE"
  [[ -n "$ALLOWED_KAKAO_USER_IDS" ]] && vars+="|ALLOWED_KAKAO_USER_IDS=$ALLOWED_KAKAO_USER_IDS"
  printf '^|^%s' "$vars"
}

deploy_function() {
  local name="$1" entry_point="$2" access="$3" redirect_uri="$4"
  say "Deploying $name / 배포"
  g functions deploy "$name" --gen2 --runtime="$PYTHON_RUNTIME" --region="$REGION" \
    --source="$HERE" --entry-point="$entry_point" --trigger-http "$access" \
    --service-account="$RUNTIME_ACCOUNT" --memory=256Mi --timeout=60s --max-instances=5 \
    --set-env-vars="$(env_vars "$redirect_uri")" \
    --set-secrets="KAKAO_REST_API_KEY=$KEY_SECRET:latest,KAKAO_CLIENT_SECRET=$CLIENT_SECRET_SECRET:latest"
}

ensure_scheduler_job() {
  local refresh_url="$1" verb=create
  exists scheduler jobs describe "$SCHEDULER_JOB" --location="$REGION" && verb=update
  say "Scheduler job $SCHEDULER_JOB ($verb): $REFRESH_SCHEDULE / 예약 갱신"
  g scheduler jobs "$verb" http "$SCHEDULER_JOB" --location="$REGION" \
    --schedule="$REFRESH_SCHEDULE" --time-zone=Asia/Seoul --uri="$refresh_url" --http-method=POST \
    --oidc-service-account-email="$SCHEDULER_ACCOUNT" --oidc-token-audience="$refresh_url" \
    --attempt-deadline=180s >/dev/null
}

main() {
  enable_apis
  ensure_bucket
  put_secret "$KEY_SECRET" "$KAKAO_REST_API_KEY"
  put_secret "$CLIENT_SECRET_SECRET" "$KAKAO_CLIENT_SECRET"
  ensure_service_account "$RUNTIME_ACCOUNT_NAME" "$RUNTIME_ACCOUNT" "kakao-token-function runtime"
  ensure_service_account "$SCHEDULER_ACCOUNT_NAME" "$SCHEDULER_ACCOUNT" "kakao-token-function scheduler"
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

  local refresh_url
  refresh_url="$(function_url "$REFRESH_FUNCTION")"
  [[ -n "$refresh_url" ]] || fail "deployed $REFRESH_FUNCTION but could not read its URL"
  say "Letting only the scheduler call $REFRESH_FUNCTION / 호출 권한"
  g functions add-invoker-policy-binding "$REFRESH_FUNCTION" --region="$REGION" \
    --member="serviceAccount:$SCHEDULER_ACCOUNT" >/dev/null
  ensure_scheduler_job "$refresh_url"

  cat <<EOF

Done / 완료.
1. Register this Redirect URI in the Kakao console (내 애플리케이션 > 카카오 로그인 > Redirect URI):
   카카오 콘솔에 아래 Redirect URI를 그대로 등록하세요:
     $callback_url
2. Then open it in a browser to log in / 그다음 브라우저에서 열어 로그인하세요:
     $callback_url
3. Tokens are kept alive by $SCHEDULER_JOB ($REFRESH_SCHEDULE, Asia/Seoul).
EOF
}

main
