#!/usr/bin/env bash
# 보내는 계정(sender)이 주인(owner)에게 카카오톡 메시지를 보냅니다: 나와의 채팅 메모와 달리
# 알림이 울립니다. / The sender account sends the owner a KakaoTalk message: unlike a memo to
# oneself (나와의 채팅), it rings.
#
#   KAKAO_TOKEN_URL=https://kakao-token-...run.app examples/send-to-owner.sh "빌드가 끝났습니다"
#
# Needs a deployment with a sender (KAKAO_SENDER=1, the sender logged in through its link),
# gcloud logged in as one of its TOKEN_READERS, curl and jq. The text is at most 200 characters
# (`kakao-token send-message` sends longer ones in numbered parts, and falls back to a memo
# without a sender). KAKAO_MEMO_LINK, if set, is what the message opens; else the deployment's.
set -euo pipefail

text=${1:?usage: send-to-owner.sh TEXT}
api=https://kapi.kakao.com
command -v jq >/dev/null || { echo "send-to-owner: install jq first" >&2; exit 1; }

# GET with a bearer token read from stdin (never on a command line that `ps` shows); prints
# the body, then the HTTP status on a line of its own.
get_with() { # $1: bearer token, $2: URL
  printf 'Authorization: Bearer %s\n' "$1" | curl -sS -H @- -w '\n%{http_code}' "$2"
}

# 1. The sender's access token, and whom it sends to: the owner's Kakao user id.
id_token=$(gcloud auth print-identity-token)
reply=$(get_with "$id_token" "$KAKAO_TOKEN_URL?login=sender")
status=${reply##*$'\n'} reply=${reply%$'\n'*}
if [ "$status" != 200 ]; then
  echo "send-to-owner: HTTP $status: $(jq -r '.error + ": " + .message' <<<"$reply" 2>/dev/null ||
    echo "not the function's answer (Cloud Run refused the ID token?)")" >&2
  exit 1
fi
token=$(jq -er .access_token <<<"$reply")
owner=$(jq -er .receiver_user_id <<<"$reply")
link=${KAKAO_MEMO_LINK:-$(jq -r '.memo_link // "https://developers.kakao.com"' <<<"$reply")}

# 2. The owner's uuid in the sender's friends list, a page of 100 at a time until found. A uuid
#    is per app and may change: look it up for each send, never keep it.
uuid="" offset=0
while [ -z "$uuid" ]; do
  page=$(get_with "$token" "$api/v1/api/talk/friends?offset=$offset&limit=100")
  status=${page##*$'\n'} page=${page%$'\n'*}
  if [ "$status" != 200 ]; then
    echo "send-to-owner: friends list: HTTP $status: $(jq -c '{code, msg, required_scopes}' <<<"$page" 2>/dev/null)" >&2
    exit 1
  fi
  uuid=$(jq -r --arg id "$owner" '.elements[] | select((.id | tostring) == $id) | .uuid' <<<"$page")
  count=$(jq '.elements | length' <<<"$page")
  offset=$((offset + count))
  if [ -z "$uuid" ] && { [ "$count" = 0 ] || [ "$(jq -r '.after_url // ""' <<<"$page")" = "" ]; }; then
    echo "send-to-owner: the owner (user $owner) is not in the sender's friends list: the two" \
      "must be KakaoTalk friends, the owner must consent to friends (open the login URL again)," \
      "and an app without the message permission lists only its members ([앱] > [멤버])" >&2
    exit 1
  fi
done

# 3. Send: receiver_uuids is a JSON array, template_object one of Kakao's default templates.
template=$(jq -nc --arg text "$text" --arg link "$link" \
  '{object_type: "text", text: $text, link: {web_url: $link, mobile_web_url: $link}}')
answer=$(printf 'Authorization: Bearer %s\n' "$token" |
  curl -sS -H @- -w '\n%{http_code}' "$api/v1/api/talk/friends/message/default/send" \
    --data-urlencode "receiver_uuids=$(jq -nc --arg uuid "$uuid" '[$uuid]')" \
    --data-urlencode "template_object=$template")
status=${answer##*$'\n'} answer=${answer%$'\n'*}
# A 200 may still name failures (failure_info); one receiver refused is an error answer.
if [ "$status" = 200 ] && jq -e --arg uuid "$uuid" '.successful_receiver_uuids | index($uuid)' \
  <<<"$answer" >/dev/null; then
  echo "delivered to $owner"
else
  echo "send-to-owner: not delivered: HTTP $status: $(jq -c '{code, msg, failed: [.failure_info[]?.code]}' <<<"$answer" 2>/dev/null)" >&2
  exit 1
fi
