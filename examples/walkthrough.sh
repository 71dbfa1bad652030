#!/usr/bin/env bash
# The README walk-through: from a running local issuer to a verified token.
#
# Start the issuer first, in another terminal:   make run
# Then, from a fresh shell anywhere:             examples/walkthrough.sh
#
# Settings (environment), the same as `make run` takes:
#   FEDERATION_HOST, FEDERATION_PORT  where the issuer listens (default 127.0.0.1:8080);
#                              the CLI finds it there
#   FEDERATION_URL             the issuer, when it is somewhere else
#   FEDERATION_ADMIN_KEY_FILE  the admin key file `federation init` wrote
#                              (default var/admin-api-key in the repository)
#
# It runs the project's own `federation` (.venv/bin, which `make run` creates). Every
# run creates its own principal and run (random suffix), so the script can run again
# and again against the same issuer. Secrets (API key, workload token) are kept in
# shell variables and never printed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -x "$root/.venv/bin/federation" ]]; then
    export PATH="$root/.venv/bin:$PATH"
fi
if ! command -v federation >/dev/null; then
    echo "walkthrough: no \`federation\` command; run \`make run\` first (it creates .venv)" >&2
    exit 1
fi
export FEDERATION_ADMIN_KEY_FILE="${FEDERATION_ADMIN_KEY_FILE:-$root/var/admin-api-key}"
# The management commands below act as the admin through the admin key file, and only
# the last steps act as the agent: no key or run from your shell may leak in (a
# WARP_API_KEY would override the admin key file).
unset WARP_API_KEY WARP_WORKLOAD_TOKEN OZ_RUN_ID

step() { printf '\n== %s ==\n' "$*"; }

# field NAME: print one top-level field of the JSON document on stdin.
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

if [[ ! -r "$FEDERATION_ADMIN_KEY_FILE" ]]; then
    echo "walkthrough: no admin key file at $FEDERATION_ADMIN_KEY_FILE; start the issuer" \
        "with \`make run\` (it runs \`federation init\`) or set FEDERATION_ADMIN_KEY_FILE" >&2
    exit 1
fi

suffix="$(python3 -c 'import secrets; print(secrets.token_hex(4))')"
uid="ada-$suffix"

step "who am I (the bootstrap admin, from $FEDERATION_ADMIN_KEY_FILE)"
federation whoami

step "create the user $uid in team platform"
federation principals create --type user --uid "$uid" --email "ada+$suffix@example.com" \
    --display-name "Ada Lovelace" --team platform

step "create a personal API key for $uid (the raw key is shown once; kept in a variable)"
api_key="$(federation api-keys create --name "ada-laptop-$suffix" --type personal \
    --principal "$uid" --scope federate --expires-in 1d --output-format json | field key)"
echo "created a key ending in ${api_key: -4}"

step "register a run for $uid (what an orchestrator does)"
run="$(federation runs create --principal "$uid" --team platform --environment staging \
    --agent-name nightly-deploy --skill-spec acme/infra:deploy --host warp \
    --state INPROGRESS --output-format json)"
run_id="$(field run_id <<<"$run")"
workload_token="$(field workload_token <<<"$run")"
if [[ "$workload_token" != wlt-* ]]; then
    echo "walkthrough: \`runs create\` printed no wlt-... workload token" >&2
    exit 1
fi
echo "run $run_id is INPROGRESS; its workload token (wlt-...) is kept in a variable"

step "inside the run: issue a token for sts.amazonaws.com"
token="$(WARP_API_KEY="$api_key" WARP_WORKLOAD_TOKEN="$workload_token" OZ_RUN_ID="$run_id" \
    federation issue-token --audience sts.amazonaws.com --duration 15m \
    --subject-template teams environment)"
echo "issued a token of ${#token} characters"

step "decode it (no verification)"
federation decode "$token"

step "verify it against the issuer's live JWKS, as AWS STS would"
verified="$(federation verify "$token" --audience sts.amazonaws.com)"
subject="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["claims"]["sub"])' \
    <<<"$verified")"
echo "verified subject: $subject"
