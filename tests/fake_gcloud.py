"""A recording stand-in for `gcloud`, put first on PATH by the deploy tests.

Each call is appended to the log as a JSON list of arguments (a secret's stdin is recorded only
as its length, so secrets never land in the log; what `storage cp -` uploads, a claim holding
only a hash, is recorded whole; a --policy-from-file or --lifecycle-file is recorded with its
text, since deploy.sh deletes it). Resources it is asked to create are remembered in the state
file, so describe and list calls answer like a real project would.

The `gcloud` on PATH is a bash script that hands each call to ``FakeGcloud``, a loopback server
in the test's own process: a deploy makes about fifty calls, and starting Python for each cost
35 ms of CPU (most of a deploy test's time); bash costs a few.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import socketserver
import sys
import threading
from pathlib import Path

PROJECT_NUMBER = "418990000123"

# The stub: its arguments (count first, NUL-separated), then its stdin where gcloud would read
# it (its length, or "-" for none); back come "STATUS OUT_LENGTH ERR_LENGTH" and the two texts.
# LC_ALL=C makes every length a byte count on both sides.
STUB = r"""#!/bin/bash
export LC_ALL=C
stdin=-
for arg; do [[ $arg == --data-file=- ]] && stdin=; done
[[ "${1-} ${2-} ${3-}" == "storage cp -" ]] && stdin=
if [[ $stdin != - ]]; then stdin=$(cat; printf x); stdin=${stdin%x}; fi
exec 3<>/dev/tcp/127.0.0.1/PORT
if [[ $stdin == - ]]; then
  printf '%s\0' "$#" "$@" -
else
  printf '%s\0' "$#" "$@" "${#stdin}"
  printf '%s' "$stdin"
fi >&3
IFS=' ' read -r status out_length err_length <&3
out= err=
if ((out_length)); then IFS= read -r -N "$out_length" out <&3; fi
if ((err_length)); then IFS= read -r -N "$err_length" err <&3; fi
printf '%s' "$out"
printf '%s' "$err" >&2
exit "$status"
"""


class FakeGcloud:
    """The fake gcloud of one test: ``bin_dir``/gcloud, answering from ``log`` and ``state``."""

    def __init__(self, bin_dir: Path, log: Path, state: Path) -> None:
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                count = int(_field(self.rfile))
                argv = [_field(self.rfile) for _ in range(count)]
                length = _field(self.rfile)
                stdin = None if length == "-" else self.rfile.read(int(length)).decode()
                status, out, err = fake.answer(argv, stdin)
                self.wfile.write(f"{status} {len(out)} {len(err)}\n".encode() + out + err)

        self.log, self.state = log, state
        self._lock = threading.Lock()
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        stub = bin_dir / "gcloud"
        stub.write_text(STUB.replace("PORT", str(port)))
        stub.chmod(0o755)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, argv: list[str], stdin: str | None) -> tuple[int, bytes, bytes]:
        """One call's exit status, stdout and stderr; calls are answered one at a time, as
        they share the state file (and print goes to whatever sys.stdout is)."""
        out, err = io.StringIO(), io.StringIO()
        with self._lock, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = record_and_answer(argv, stdin, self.log, self.state)
        return status, out.getvalue().encode(), err.getvalue().encode()


def _field(stream: io.BufferedIOBase) -> str:
    """One NUL-terminated field of the stub's request."""
    raw = bytearray()
    while (byte := stream.read(1)) not in (b"\0", b""):
        raw += byte
    return raw.decode()


def record_and_answer(argv: list[str], stdin: str | None, log_path: Path, state_path: Path) -> int:
    """Logs one call, answers it (printing what gcloud would) and keeps the project's state."""
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    upload = argv[:3] == ["storage", "cp", "-"]
    with open(log_path, "a") as log:
        entry: dict[str, object] = {
            "args": argv,
            "stdin_length": None if stdin is None else len(stdin),
        }
        if upload:
            entry["stdin"] = stdin
        if policy_file := option(argv, "policy-from-file"):
            entry["policy"] = Path(policy_file).read_text()
        if lifecycle_file := option(argv, "lifecycle-file"):
            entry["lifecycle"] = Path(lifecycle_file).read_text()
        log.write(json.dumps(entry) + "\n")
    words = [arg for arg in argv if not arg.startswith("--")]
    code = answer(words, argv, state, stdin)
    state_path.write_text(json.dumps(state))
    return code


def option(argv: list[str], name: str) -> str:
    for arg in argv:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return ""


def answer(
    words: list[str], argv: list[str], state: dict[str, dict[str, str]], stdin: str | None
) -> int:
    kind = " ".join(words[:3])
    if words[0] in ("alpha", "beta") and words[1:2] == ["monitoring"]:
        return monitoring(words[2:], argv, state)
    if words[:2] == ["projects", "describe"]:  # --format='value(projectNumber)'
        print(PROJECT_NUMBER)
        return 0
    if words[:2] == ["iam", "workload-identity-pools"]:
        return identity_pools(words[2:], argv, state)
    if words[:2] == ["iam", "service-accounts"] and "iam-policy" in words[2]:
        return service_account_policy(words[2:], argv, state)
    if words[0] == "storage" and words[1] in ("cp", "objects"):
        return objects(words, state, stdin)
    if "policy-binding" in words[1] and words[0] in ("secrets", "functions"):
        return bindings(words, argv, state)
    table = state.setdefault(words[0] + "." + (words[1] if len(words) > 1 else ""), {})
    if words[:2] == ["storage", "buckets"] or words[:2] == ["iam", "service-accounts"]:
        name = words[3] if len(words) > 3 else ""
        # An organization policy that requires soft delete (set by a test) refuses to clear it.
        required = state.get("org-policy", {}).get("softDeletePolicySeconds")
        if words[2] == "update" and "--clear-soft-delete" in argv and required:
            print(
                "ERROR: (gcloud.storage.buckets.update) HTTPError 412: Request violates "
                f"constraint 'constraints/storage.softDeletePolicySeconds' ({required})",
                file=sys.stderr,
            )
            return 1
        if words[2] == "describe":
            return 0 if name in table else 1
        if words[2] == "create" and words[0] == "iam":
            table[f"{name}@{option(argv, 'project')}.iam.gserviceaccount.com"] = "yes"
        elif words[2] == "create":
            table[name] = "yes"
        return 0
    if words[:2] == ["secrets", "versions"]:
        secret = option(argv, "secret") or (words[3] if len(words) > 3 else "")
        secrets = state.setdefault("secrets.", {})
        if words[2] == "access":
            print(secrets.get(secret, ""), end="")
        elif words[2] == "add" and stdin is not None:
            secrets[words[3]] = stdin
        return 0
    if words[0] == "secrets":
        secrets = state.setdefault("secrets.", {})
        if words[1] == "describe":
            return 0 if words[2] in secrets else 1
        if words[1] == "create" and stdin is not None:
            secrets[words[2]] = stdin
        return 0
    functions = state.setdefault("functions", {})
    if words[:2] == ["functions", "describe"]:
        if words[2] not in functions:
            print(f"ERROR: function {words[2]} not found", file=sys.stderr)
            return 1
        print(functions[words[2]])
        return 0
    if words[:2] == ["functions", "deploy"]:
        # Cloud Run's rule: below one vCPU an instance takes one request at a time.
        concurrency, cpu = option(argv, "concurrency"), option(argv, "cpu")
        if concurrency and int(concurrency) > 1 and not (cpu and float(cpu) >= 1):
            print("ERROR: concurrency above 1 needs at least 1 vCPU (--cpu=1)", file=sys.stderr)
            return 1
        functions[words[2]] = f"https://{words[2]}-abc123-du.a.run.app"
        state.setdefault("functions.accounts", {})[words[2]] = option(argv, "service-account")
        return 0
    if kind == "scheduler jobs list":  # --format='value(name.basename())': one id a line
        print("\n".join(state.setdefault("scheduler.jobs", {})))
        return 0
    if kind == "scheduler jobs describe":
        return 0 if words[3] in state.setdefault("scheduler.jobs", {}) else 1
    if kind == "scheduler jobs create":
        state.setdefault("scheduler.jobs", {})[words[4]] = "yes"
    if kind == "scheduler jobs delete":
        return 0 if state.setdefault("scheduler.jobs", {}).pop(words[3], None) else 1
    return 0


def identity_pools(words: list[str], argv: list[str], state: dict[str, dict[str, str]]) -> int:
    """Pools and their providers, by id: describe --format='value(state)' prints ACTIVE or
    DELETED (kept 30 days); creating one that exists and undeleting a live one fail."""
    if words[0] == "providers":
        table = state.setdefault("iam.workload-identity-pools.providers", {})
        verb, name = words[1], f"{option(argv, 'workload-identity-pool')}/{words[2]}"
    else:
        table = state.setdefault("iam.workload-identity-pools", {})
        verb, name = words[0], words[1]
    found = table.get(name)
    if verb == "describe":
        if found is None:
            print(f"ERROR: NOT_FOUND: {name}", file=sys.stderr)
            return 1
        print(found)
        return 0
    if verb in ("create", "create-oidc"):
        if found is not None:
            print(f"ERROR: ALREADY_EXISTS: {name}", file=sys.stderr)
            return 1
        table[name] = "ACTIVE"
    if verb == "undelete":
        if found != "DELETED":
            print(f"ERROR: FAILED_PRECONDITION: {name} is not deleted", file=sys.stderr)
            return 1
        table[name] = "ACTIVE"
    if verb == "update-oidc" and found != "ACTIVE":
        print(f"ERROR: cannot update {name} ({found})", file=sys.stderr)
        return 1
    if verb in ("create-oidc", "update-oidc") and {"--disabled", "--no-disabled"} & set(argv):
        disabled = state.setdefault("iam.workload-identity-pools.providers.disabled", {})
        disabled[name] = "yes" if "--disabled" in argv else "no"
    for setting in ("attribute-mapping", "attribute-condition"):
        if verb in ("create-oidc", "update-oidc") and (value := option(argv, setting)):
            state.setdefault(f"iam.workload-identity-pools.providers.{setting}", {})[name] = value
    return 0


def objects(words: list[str], state: dict[str, dict[str, str]], stdin: str | None) -> int:
    """`storage cp - gs://B/O` keeps stdin as the object; `storage objects describe gs://B/O`
    finds it, or says "not found: 404" as gcloud does (a row "forbidden", set by a test, makes
    it a 403 instead)."""
    table = state.setdefault("storage.objects", {})
    if words[1] == "cp" and words[2] == "-" and stdin is not None:
        table[words[3]] = stdin
        return 0
    if words[1:3] == ["objects", "describe"] and "forbidden" in table:
        print(
            "ERROR: (gcloud.storage.objects.describe) HTTPError 403: someone@example.com does not "
            "have storage.objects.get access to the Google Cloud Storage object.",
            file=sys.stderr,
        )
        return 1
    if words[1:3] == ["objects", "describe"]:
        if words[3] not in table:
            print(
                f"ERROR: (gcloud.storage.objects.describe) {words[3]} not found: 404.",
                file=sys.stderr,
            )
            return 1
        print(words[3].split("/", 3)[3])
        return 0
    return 0


def bindings(words: list[str], argv: list[str], state: dict[str, dict[str, str]]) -> int:
    """secrets add/remove-iam-policy-binding and functions add/remove-invoker-policy-binding keep
    "resource role member" rows; removing a row that is not there fails as gcloud's does."""
    table = state.setdefault(f"{words[0]}.policy", {})
    role = option(argv, "role") or "roles/run.invoker"
    row = f"{words[2]} {role} {option(argv, 'member')}"
    if words[1].startswith("add-"):
        table[row] = "yes"
    elif words[1].startswith("remove-") and table.pop(row, None) is None:
        print(
            f"ERROR: (gcloud.{words[0]}.{words[1]}) Policy binding with the specified principal "
            "and role not found!",
            file=sys.stderr,
        )
        return 1
    return 0


def service_account_policy(
    words: list[str], argv: list[str], state: dict[str, dict[str, str]]
) -> int:
    """add/remove-iam-policy-binding keep "account role member" rows; get-iam-policy with
    --flatten='bindings[].members' --format='value(bindings.role,bindings.members)' prints
    "role<TAB>member" a line."""
    table = state.setdefault("iam.service-accounts.policy", {})
    verb, account = words[0], words[1]
    row = f"{account} {option(argv, 'role')} {option(argv, 'member')}"
    if verb == "add-iam-policy-binding":
        table[row] = "yes"
    elif verb == "remove-iam-policy-binding":
        return 0 if table.pop(row, None) else 1
    elif verb == "get-iam-policy":
        for key in table:
            owner, role, member = key.split(" ")
            if owner == account:
                print(f"{role}\t{member}")
    return 0


def monitoring(words: list[str], argv: list[str], state: dict[str, dict[str, str]]) -> int:
    """channels / policies: list --filter='displayName="X"' prints names; create adds one."""
    kind, verb = words[0], words[1]
    table = state.setdefault("monitoring." + kind, {})  # display name -> resource name
    if verb == "list":
        wanted = re.fullmatch(r'displayName="(.*)"', option(argv, "filter"))
        for display_name, name in table.items():
            if wanted is None or wanted.group(1) == display_name:
                print(name)
        return 0
    if verb == "create":
        if kind == "policies":
            policy = json.loads(Path(option(argv, "policy-from-file")).read_text())
            display_name = policy["displayName"]
            collection = "alertPolicies"
        else:
            display_name = option(argv, "display-name")
            collection = "notificationChannels"
        project = option(argv, "project")
        table[display_name] = f"projects/{project}/{collection}/{len(table) + 101}"
        return 0
    if verb == "update":
        return 0 if words[2] in table.values() else 1
    return 0


# Google's side of a GitHub job's token exchange (STS, then IAM), as the fake project holds it.


def github_may_act_as(
    state: dict[str, dict[str, str]], pool: str, account: str, claims: dict[str, str]
) -> bool:
    """Whether a GitHub Actions job whose OIDC token carries ``claims`` could act as ``account``:
    the pool's provider "github" is active and enabled, its attribute condition admits the
    claims, and a workloadIdentityUser binding on the account names a principal set that the
    provider's attribute mapping gives them."""
    name = f"{pool}/github"
    if state.get("iam.workload-identity-pools", {}).get(pool) != "ACTIVE":
        return False
    if state.get("iam.workload-identity-pools.providers", {}).get(name) != "ACTIVE":
        return False
    if state.get("iam.workload-identity-pools.providers.disabled", {}).get(name) == "yes":
        return False
    condition = state["iam.workload-identity-pools.providers.attribute-condition"][name]
    if not cel(condition, claims):
        return False
    mapping = state["iam.workload-identity-pools.providers.attribute-mapping"][name]
    prefix = (
        f"principalSet://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/"
        f"workloadIdentityPools/{pool}/"
    )
    members = set()
    for pair in mapping.split(","):
        target, source = pair.split("=", 1)
        attribute, claim = target.removeprefix("attribute."), source.removeprefix("assertion.")
        if target.startswith("attribute.") and claim in claims:
            members.add(f"{prefix}attribute.{attribute}/{claims[claim]}")
    rows = state.get("iam.service-accounts.policy", {})
    return any(f"{account} roles/iam.workloadIdentityUser {member}" in rows for member in members)


_CEL_TOKEN = re.compile(r"\s*(?:(\|\||&&|==|!=|\(|\)|\[|\]|,|in\b)|'([^']*)'|assertion\.(\w+))")


def cel(condition: str, claims: dict[str, str]) -> bool:
    """The value of a provider's attribute condition for a token's ``claims``, in as much CEL as
    deploy.sh writes: || and && over ==, != and ``in [...]`` of assertion claims and strings;
    anything else raises ValueError, as Google refuses a condition it cannot evaluate."""
    tokens: list[tuple[str, str]] = []  # ("op", text) or ("value", text)
    at = 0
    while at < len(condition.rstrip()):
        match = _CEL_TOKEN.match(condition, at)
        if match is None:
            raise ValueError(f"not CEL deploy.sh writes: {condition[at:]!r}")
        operator, string, claim = match.groups()
        if operator is not None:
            tokens.append(("op", operator))
        elif string is not None:
            tokens.append(("value", string))
        else:
            tokens.append(("value", claims.get(claim, "")))
        at = match.end()
    value, rest = _cel_or(tokens)
    if rest:
        raise ValueError(f"trailing CEL: {rest}")
    return value


_Tokens = list[tuple[str, str]]


def _cel_or(tokens: _Tokens) -> tuple[bool, _Tokens]:
    value, tokens = _cel_and(tokens)
    while tokens[:1] == [("op", "||")]:
        right, tokens = _cel_and(tokens[1:])
        value = value or right
    return value, tokens


def _cel_and(tokens: _Tokens) -> tuple[bool, _Tokens]:
    value, tokens = _cel_term(tokens)
    while tokens[:1] == [("op", "&&")]:
        right, tokens = _cel_term(tokens[1:])
        value = value and right
    return value, tokens


def _cel_term(tokens: _Tokens) -> tuple[bool, _Tokens]:
    if tokens[:1] == [("op", "(")]:
        value, tokens = _cel_or(tokens[1:])
        if tokens[:1] != [("op", ")")]:
            raise ValueError("unclosed (")
        return value, tokens[1:]
    (kind, left), (_, operator), *tokens = tokens
    if kind != "value":
        raise ValueError(f"expected a value, got {left!r}")
    if operator in ("==", "!="):
        (kind, right), *tokens = tokens
        if kind != "value":
            raise ValueError(f"expected a value, got {right!r}")
        return (left == right) == (operator == "=="), tokens
    if operator == "in" and tokens[:1] == [("op", "[")]:
        items, tokens = [], tokens[1:]
        while tokens[:1] != [("op", "]")]:
            (kind, item), *tokens = tokens
            if kind == "value":
                items.append(item)
            elif item != ",":
                raise ValueError(f"unexpected {item!r} in a list")
        return left in items, tokens[1:]
    raise ValueError(f"unexpected {operator!r}")


# GitHub's REST API as deploy.sh reads it: `curl ... https://api.github.com/repos/OWNER/REPO`.
# The stub answers from files under answers/ (one per repository, GitHub's JSON) and logs each
# call's arguments to calls.log; anything else is curl's 404. Tests never reach the network.
CURL_STUB = r"""#!/bin/bash
here="$(dirname "$0")"
printf '%s\0' "$@" >>"$here/github/calls.log"
printf '\n' >>"$here/github/calls.log"
url="${*: -1}"
answer="$here/github/answers/${url#https://api.github.com/repos/}.json"
if [[ "$url" == https://api.github.com/repos/*/* && -f "$answer" ]]; then
  cat "$answer"
  exit 0
fi
echo "curl: (22) The requested URL returned error: 404" >&2
exit 22
"""


class FakeGitHubApi:
    """A ``curl`` in ``bin_dir`` answering api.github.com/repos/OWNER/REPO for the repositories
    it is given (``add``); ``calls`` lists the URLs asked for."""

    def __init__(self, bin_dir: Path) -> None:
        self.root = bin_dir / "github"
        (self.root / "answers").mkdir(parents=True)
        (self.root / "calls.log").write_text("")
        stub = bin_dir / "curl"
        stub.write_text(CURL_STUB)
        stub.chmod(0o755)

    def add(self, full_name: str, repository_id: int, owner_id: int) -> None:
        """GitHub's answer for ``full_name`` (or, for a renamed repository, a path to it)."""
        self.answer(full_name, full_name, repository_id, owner_id)

    def answer(self, asked: str, full_name: str, repository_id: int, owner_id: int) -> None:
        """What GitHub answers when asked for ``asked``: the repository ``full_name`` is now."""
        owner, name = full_name.split("/")
        document = {
            "id": repository_id,
            "node_id": "R_kgDO",
            "name": name,
            "full_name": full_name,
            "private": False,
            "owner": {"login": owner, "id": owner_id, "type": "User", "site_admin": False},
            "html_url": f"https://github.com/{full_name}",
            "default_branch": "main",
        }
        path = self.root / "answers" / f"{asked}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2))

    def forget(self, asked: str) -> None:
        """GitHub answers 404 for ``asked`` (a private repository, logged out)."""
        (self.root / "answers" / f"{asked}.json").unlink()

    def calls(self) -> list[str]:
        """The URL of each call, in order."""
        lines = (self.root / "calls.log").read_text().splitlines()
        return [line.rstrip("\0").split("\0")[-1] for line in lines if line]
