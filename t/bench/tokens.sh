#!/usr/bin/env bash
# Benchmark of the token endpoint: client_credentials of a GLOBAL SERVICE application, POSTed by
# wrk to /api/v1/platform/oauth/token, once on a server signing ES256 and once on one signing
# RS256 (each answer is a freshly signed JWT), next to what this machine can sign at all
# (`openssl speed -multi 2`, run in the same invocation). Not part of ./dev test:
#
#   t/bench/tokens.sh
#
# Runs under t/lib/harness.sh (a throwaway PostgreSQL and the RS256 mod_scaikey instance) and
# starts a second Apache with ScaiKeySigningAlg ES256 against the same database (t/lib/extra-apache).
# wrk, the Apache processes and PostgreSQL share the machine's cores, while the signing limit they
# are compared with has all of them to itself: the ratios say how much of the machine's signing
# capacity turns into tokens.
#
# Environment: DURATION (seconds per run, 10), CONNECTIONS (32), THREADS (2), ROUNDS (1; the
# medians are reported), SPEED_SECONDS (3), GOAL_ES256 (4000 tokens/s), GOAL_RS256_RATIO (0.80).
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Two servers share one PostgreSQL (max_connections 100): each Apache child may hold up to DBDMax
# connections, and an idle server keeps what it opened for DBDExptime seconds.
POOL="DBDMax 20"
if [ -z "${SK_RUN:-}" ]; then
    SK_EXTRA_CONF=$POOL exec "$TOP/t/lib/harness.sh" "$0" "$@"
fi
# shellcheck source=t/lib/conf.sh
. "$TOP/t/lib/conf.sh"

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-1}
SPEED_SECONDS=${SPEED_SECONDS:-3}
GOAL_ES256=${GOAL_ES256:-4000}
GOAL_RS256_RATIO=${GOAL_RS256_RATIO:-0.80}
B=$SK_RUN/bench-tokens
mkdir -p "$B"
chmod 755 "$B"

say() { printf '==> %s\n' "$*" >&2; }
command -v wrk >/dev/null || sk_die "wrk is missing (apt-get install wrk)"
command -v openssl >/dev/null || sk_die "openssl is missing (apt-get install openssl)"

# ---- the client ------------------------------------------------------------------------------

json_field() { perl -MJSON::PP -0e 'my $j = decode_json(<STDIN>); print $j->{$ARGV[0]} // ""' "$1"; }

ADMIN=$(SK_E=$SK_ADMIN_EMAIL SK_P=$SK_ADMIN_PASSWORD perl -MJSON::PP -e \
    'print encode_json({email => $ENV{SK_E}, password => $ENV{SK_P}})' |
    curl -sf -X POST "$SK_BASE_URL/api/v1/admin/auth/login" -H 'Content-Type: application/json' \
        --data-binary @- | json_field access_token)
[ -n "$ADMIN" ] || sk_die "admin login failed"
APP=$(curl -sf -X POST "$SK_BASE_URL/api/v1/admin/applications" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' \
    -d '{"name":"token bench","application_type":"SERVICE","scope":"GLOBAL","allowed_scopes":["demo:read"]}')
CLIENT_ID=$(json_field client_id <<<"$APP")
CLIENT_SECRET=$(json_field client_secret <<<"$APP")
[ -n "$CLIENT_ID" ] && [ -n "$CLIENT_SECRET" ] || sk_die "could not create the bench application"
BASIC=$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w 0)

cat >"$B/token.lua" <<LUA
-- client_credentials with client_secret_basic; errors show in wrk's "Non-2xx" line
wrk.method = "POST"
wrk.body   = "grant_type=client_credentials&scope=demo:read"
wrk.headers["Content-Type"]  = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $BASIC"
LUA

# ---- the servers -----------------------------------------------------------------------------

say "starting a second server with ScaiKeySigningAlg ES256 (same database)"
ES_URL=$("$TOP/t/lib/extra-apache" start "$B/es256" "ScaiKeySigningAlg ES256
$POOL" "$SK_BASE_URL")
trap '"$TOP/t/lib/extra-apache" stop "$B/es256" >/dev/null 2>&1 || true' EXIT

# the header of a token from URL: its alg
token_alg() {
    curl -sf -X POST "$1/api/v1/platform/oauth/token" -H "Authorization: Basic $BASIC" \
        -d 'grant_type=client_credentials&scope=demo:read' | json_field access_token |
        perl -MJSON::PP -MMIME::Base64 -ne 'my ($h) = split /\./; $h =~ tr{-_}{+/};
            $h .= "=" x ((4 - length($h) % 4) % 4); print decode_json(decode_base64($h))->{alg}'
}
[ "$(token_alg "$ES_URL")" = ES256 ] || sk_die "the ES256 server does not sign ES256 tokens"
[ "$(token_alg "$SK_BASE_URL")" = RS256 ] || sk_die "the main server does not sign RS256 tokens"

# ---- runs ------------------------------------------------------------------------------------

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }'; }

# CPU time (clock ticks, user + system) of the given processes
ticks() {
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
    done
    echo "$t"
}
HZ=$(getconf CLK_TCK)
PGMASTER=$(head -n 1 "$SK_RUN/pg/data/postmaster.pid")

# wrk LABEL URL ROOT ROUND -> B/LABEL-ROUND.txt; prints "requests/s apache_us postgres_us wrk_us":
# the CPU time per token of the server's Apache children, of PostgreSQL and of wrk
bench() {
    local label=$1 url=$2 root=$3 round=$4 kids pg a0 p0 w0 a1 p1 w1 wpid n
    say "wrk: $label, round $round ($DURATION s)"
    kids=$(pgrep -P "$(cat "$root/run/httpd.pid")" | tr '\n' ' ')
    pg="$PGMASTER $(pgrep -P "$PGMASTER" | tr '\n' ' ')"
    a0=$(ticks $kids); p0=$(ticks $pg)
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$B/token.lua" \
        "$url/api/v1/platform/oauth/token" >"$B/$label-$round.txt" 2>&1 &
    wpid=$!
    w0=$(ticks $wpid)
    while kill -0 "$wpid" 2>/dev/null; do
        w1=$(ticks $wpid)
        sleep 0.2
    done
    wait "$wpid" || true
    pg="$PGMASTER $(pgrep -P "$PGMASTER" | tr '\n' ' ')"
    a1=$(ticks $kids); p1=$(ticks $pg)
    n=$(awk '/requests in/ { print $1 }' "$B/$label-$round.txt")
    awk -v f="$B/$label-$round.txt" -v n="${n:-0}" -v a=$((a1 - a0)) -v p=$((p1 - p0)) -v w=$((w1 - w0)) \
        -v hz="$HZ" 'BEGIN {
            while ((getline l < f) > 0) if (l ~ /Requests\/sec/) { split(l, x, " "); rps = x[2] }
            if (n > 0) printf "%s %.0f %.0f %.0f\n", rps, a / hz / n * 1e6, p / hz / n * 1e6, w / hz / n * 1e6
            else print rps, 0, 0, 0 }'
}

# the machine's signing limit, measured in each round right before its runs, so that a round's
# tokens/s and its limit see the same load from anything else on the machine
speed() {
    local round=$1
    say "openssl speed -seconds $SPEED_SECONDS -multi 2 rsa2048 ecdsap256, round $round"
    openssl speed -seconds "$SPEED_SECONDS" -multi 2 rsa2048 ecdsap256 >"$B/speed-$round.txt" 2>/dev/null
    # summary lines of -multi: "rsa 2048 bits <sign s> <verify s> <sign/s> <verify/s>" and
    # " 256 bits ecdsa (nistp256) <sign s> <verify s> <sign/s> <verify/s>"
    RSA_SIGN=$(awk '/^rsa 2048 bits/ { v = $(NF - 1) } END { print v }' "$B/speed-$round.txt")
    EC_SIGN=$(awk '/ecdsa \(nistp256\)/ { v = $(NF - 1) } END { print v }' "$B/speed-$round.txt")
    if [ -z "$RSA_SIGN" ] || [ -z "$EC_SIGN" ]; then
        cat "$B/speed-$round.txt" >&2
        sk_die "cannot read openssl speed's output"
    fi
    # and what plain `openssl speed` reports: one process, one core
    say "openssl speed -seconds $SPEED_SECONDS rsa2048 ecdsap256 (one process), round $round"
    openssl speed -seconds "$SPEED_SECONDS" rsa2048 ecdsap256 >"$B/speed1-$round.txt" 2>/dev/null
    RSA_SIGN1=$(awk '/^rsa 2048 bits/ { v = $(NF - 1) } END { print v }' "$B/speed1-$round.txt")
    EC_SIGN1=$(awk '/ecdsa \(nistp256\)/ { v = $(NF - 1) } END { print v }' "$B/speed1-$round.txt")
    if [ -z "$RSA_SIGN1" ] || [ -z "$EC_SIGN1" ]; then
        cat "$B/speed1-$round.txt" >&2
        sk_die "cannot read openssl speed's output"
    fi
}

: >"$B/rounds.txt"
for round in $(seq 1 "$ROUNDS"); do
    speed "$round"
    read -r es es_a es_p es_w <<<"$(bench ES256 "$ES_URL" "$B/es256" "$round")"
    sleep 2
    read -r rs rs_a rs_p rs_w <<<"$(bench RS256 "$SK_BASE_URL" "$SK_RUN/httpd" "$round")"
    sleep 2
    echo "$round $es $EC_SIGN $(ratio "$es" "$EC_SIGN") $rs $RSA_SIGN $(ratio "$rs" "$RSA_SIGN")" \
        "$es_a $es_p $es_w $rs_a $rs_p $rs_w $RSA_SIGN1 $(ratio "$rs" "$RSA_SIGN1") $EC_SIGN1" >>"$B/rounds.txt"
done

col() { awk -v c="$1" '{ print $c }' "$B/rounds.txt" | median; }
ES_RPS=$(col 2); EC_SIGN=$(col 3); ES_RATIO=$(col 4)
RS_RPS=$(col 5); RSA_SIGN=$(col 6); RS_RATIO=$(col 7)
ES_CPU="$(col 8) / $(col 9) / $(col 10)"
RS_CPU="$(col 11) / $(col 12) / $(col 13)"
RSA_SIGN1=$(col 14); RS_RATIO1=$(col 15); EC_SIGN1=$(col 16)

field() {   # field LABEL -> "p50 p99 non2xx" of the first round
    local f="$B/$1-1.txt" non2xx
    non2xx=$(awk -F: '/Non-2xx/ { print $2 + 0 }' "$f")
    printf '%s %s %s' "$(awk '/^ +50%/ { print $2 }' "$f")" "$(awk '/^ +99%/ { print $2 }' "$f")" "${non2xx:-0}"
}
read -r ES_P50 ES_P99 ES_BAD <<<"$(field ES256)"
read -r RS_P50 RS_P99 RS_BAD <<<"$(field RS256)"

if [ "$ROUNDS" -gt 1 ]; then
    echo
    echo "rounds (round, ES256 tokens/s, ECDSA sign/s, ratio, RS256 tokens/s, RSA sign/s, ratio, then CPU us"
    echo "per token of Apache, PostgreSQL and wrk for ES256 and for RS256, then RSA sign/s of one process,"
    echo "RS256 ratio to it, ECDSA sign/s of one process):"
    cat "$B/rounds.txt"
fi
echo
echo "Token endpoint, client_credentials ($(nproc) CPUs, wrk -t$THREADS -c$CONNECTIONS, ${DURATION} s x $ROUNDS, medians;"
echo "latencies and non-2xx of round 1; the limit is openssl speed -multi 2, measured in each round)"
echo
echo "| alg   | tokens/s | p50      | p99      | non-2xx | signing limit (sign/s, 2 processes) | tokens/s : limit | CPU us per token: Apache / PostgreSQL / wrk |"
echo "|-------|----------|----------|----------|---------|-------------------------------------|------------------|---------------------------------------------|"
printf "| ES256 | %8s | %8s | %8s | %7s | %35s | %16s | %43s |\n" "$ES_RPS" "$ES_P50" "$ES_P99" "$ES_BAD" "$EC_SIGN" "$ES_RATIO" "$ES_CPU"
printf "| RS256 | %8s | %8s | %8s | %7s | %35s | %16s | %43s |\n" "$RS_RPS" "$RS_P50" "$RS_P99" "$RS_BAD" "$RSA_SIGN" "$RS_RATIO" "$RS_CPU"
echo
echo "plain openssl speed (one process): RSA-2048 $RSA_SIGN1 sign/s, RS256 tokens/s : that = $RS_RATIO1;"
echo "ECDSA P-256 $EC_SIGN1 sign/s"
echo
status=0
if awk -v r="$ES_RPS" -v g="$GOAL_ES256" 'BEGIN { exit !(r >= g) }'; then
    echo "ES256: $ES_RPS tokens/s >= $GOAL_ES256: met"
else
    echo "ES256: $ES_RPS tokens/s < $GOAL_ES256: NOT met"
    status=1
fi
if awk -v r="$RS_RATIO" -v g="$GOAL_RS256_RATIO" 'BEGIN { exit !(r >= g) }'; then
    echo "RS256: $RS_RATIO of the RSA signing limit >= $GOAL_RS256_RATIO: met"
else
    echo "RS256: $RS_RATIO of the RSA signing limit < $GOAL_RS256_RATIO: NOT met"
    status=1
fi
if [ "$ES_BAD" != 0 ] || [ "$RS_BAD" != 0 ]; then
    echo "non-2xx answers during the runs: see $B/*.txt"
    status=1
fi
exit "$status"
