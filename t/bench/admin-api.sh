#!/usr/bin/env bash
# Benchmark of the admin API on a large tenant: 1,000,000 users and 10,000 groups.
# Measures with wrk the p50/p99 latency of a first page, a deep page, an email-prefix search, a get
# by id and a create. Not part of ./dev test: run it by hand (it takes a few minutes):
#     t/bench/admin-api.sh [USERS] [GROUPS]
# It sets up its own PostgreSQL and Apache through t/lib/harness.sh.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${SK_BASE_URL:-}" ]; then
    exec "$top/t/lib/harness.sh" "$0" "$@"
fi
USERS=${1:-1000000}
NGROUPS=${2:-10000}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-8}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

psql_() { $SK_PSQL "$@"; }
echo "== generating $USERS users and $NGROUPS groups in one tenant"
t0=$(date +%s)
TID=$(psql_ -c "INSERT INTO tenants (name, slug) VALUES ('Bench', 'bench-$$') RETURNING id")
psql_ -c "INSERT INTO users (tenant_id, email, first_name, last_name, display_name)
          SELECT '$TID', 'user' || g || '@bench.example', 'First' || g, 'Last' || g, 'User ' || g
          FROM generate_series(1, $USERS) g" >/dev/null
psql_ -c "INSERT INTO groups (tenant_id, name) SELECT '$TID', 'group ' || g FROM generate_series(1, $NGROUPS) g" >/dev/null
psql_ -c "VACUUM ANALYZE users" >/dev/null; psql_ -c "VACUUM ANALYZE groups" >/dev/null
echo "   done in $(( $(date +%s) - t0 )) s"

TOKEN=$(curl -s -X POST "$SK_BASE_URL/api/v1/admin/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$SK_ADMIN_EMAIL\",\"password\":\"$SK_ADMIN_PASSWORD\"}" |
    perl -MJSON::PP -0e 'print decode_json(<>)->{access_token}')
UID_=$(psql_ -c "SELECT id FROM users WHERE tenant_id = '$TID' ORDER BY created_at, id OFFSET 500000 LIMIT 1")
DEEP=$(( USERS / 20 / 2 ))

cat > "$W/create.lua" <<LUA
-- each wrk thread has its own Lua state: number the threads so their emails never collide
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
request = function()
  counter = counter + 1
  local body = string.format('{"tenant_id":"$TID","email":"new-%d-%d-%d@bench.example"}', tid, os.time(), counter)
  return wrk.format(nil, nil, nil, body)
end
LUA

run() {   # label path [script]
    local label=$1 path=$2 script=${3:-}
    local args=(-t2 -c"$CONNS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN")
    [ -n "$script" ] && args+=(-s "$script")
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$SK_BASE_URL$path")
    wrk "${args[@]}" "$SK_BASE_URL$path" > "$W/$label.txt" 2>&1
    local rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/{print $2}' "$W/$label.txt")
    p50=$(awk '/^ +50%/{print $2}' "$W/$label.txt")
    p99=$(awk '/^ +99%/{print $2}' "$W/$label.txt")
    non2xx=$(awk -F: '/Non-2xx/{print $2+0}' "$W/$label.txt"); non2xx=${non2xx:-0}
    printf "| %-22s | %5s | %9s | %8s | %8s | %6s |\n" "$label" "$status" "$rps" "$p50" "$p99" "$non2xx"
}
echo
echo "| scenario               | first | req/s     | p50      | p99      | non2xx |"
echo "|------------------------|-------|-----------|----------|----------|--------|"
run first-page      "/api/v1/admin/users?tenant_id=$TID&per_page=20"
run deep-page       "/api/v1/admin/users?tenant_id=$TID&per_page=20&page=$DEEP"
run email-prefix    "/api/v1/admin/users?tenant_id=$TID&search=user12345"
run deep-cursor     "/api/v1/admin/users?tenant_id=$TID&per_page=20&after=$UID_"
run get-by-id       "/api/v1/admin/users/$UID_"
run groups-page     "/api/v1/admin/groups?tenant_id=$TID"
run create          "/api/v1/admin/users" "$W/create.lua"
