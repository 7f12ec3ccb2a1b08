#!/usr/bin/env bash
# Benchmark of the guard (AuthType ScaiKey) against a 1 KiB static file, next to the same file
# with no authentication and behind the peer modules mod_auth_openidc (resource-server mode,
# JWKS over https) and mod_oauth2 (jwks_uri, its default result cache). Not part of ./dev test.
#
#   t/bench/guard.sh                 (as root: installs wrk and the peer modules when missing)
#
# Runs under t/lib/harness.sh (a throwaway PostgreSQL and mod_scaikey instance) and starts one
# more Apache for the measurements, so that every scenario is served by the same processes:
#
#   none         /1k.txt            no authentication (the baseline of the ratios)
#   none-tokens  /1k.txt            no authentication, the requests of jwt-fresh (wrk's Lua script
#                                   and a different token each time): what the client's script
#                                   costs, as a second reference for jwt-fresh
#   jwt-cached   /demo/1k.txt       the same JWT on every request (verified once, then cached)
#   jwt-fresh    /demo/1k.txt       a JWT never seen before on every request (wrk cycles through
#                                   a file of pre-issued tokens): signature, store check, cache write
#   api-key      /demo/1k.txt       the same API key on every request (looked up once, then cached)
#   openidc      /oidc/1k.txt       mod_auth_openidc, AuthType oauth20, the same JWT
#   oauth2       /oauth2/1k.txt     mod_oauth2, AuthType oauth2, the same JWT
#   openidc-fresh, oauth2-fresh     the peers with the requests of jwt-fresh (a new JWT each time)
#
# Then the resident memory of the Apache children before and after a long run of fresh tokens,
# and while MIXED requests (a third each: a token from the file, the same JWT, the API key) are
# served, sampled every 5 s from /proc/<pid>/status (VmRSS) of every child.
#
# Environment: DURATION (seconds per scenario, 10), CONNECTIONS (32), THREADS (2), ROUNDS (3;
# the median is reported), TOKENS (fresh JWTs per round, 35000), LONG (seconds of the long run, 60),
# MIXED (requests of the mixed run, 1000000; 0 = none), ALG (signing algorithm of the tokens,
# ES256 or RS256; ES256 by default), MMAP (on: Apache's default, the file is mapped for each
# request; off: EnableMMAP Off in the measured server).
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "${SK_RUN:-}" ]; then
    SK_EXTRA_CONF="ScaiKeySigningAlg ${ALG:-ES256}"$'\n'"${SK_EXTRA_CONF:-}"
    export SK_EXTRA_CONF
    exec "$TOP/t/lib/harness.sh" "$0" "$@"
fi
# shellcheck source=t/lib/conf.sh
. "$TOP/t/lib/conf.sh"

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
TOKENS=${TOKENS:-35000}
LONG=${LONG:-60}
MIXED=${MIXED:-1000000}
MODS=/usr/lib/apache2/modules
B=$SK_RUN/bench
mkdir -p "$B"
chmod 755 "$B"

say() { printf '==> %s\n' "$*" >&2; }

# ---- tools and peer modules ------------------------------------------------------------------

missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -f "$MODS/mod_auth_openidc.so" ] || missing+=(libapache2-mod-auth-openidc)
[ -f "$MODS/mod_oauth2.so" ] || missing+=(libapache2-mod-oauth2)
if [ ${#missing[@]} -gt 0 ]; then
    sk_is_root || sk_die "missing: ${missing[*]} (install them as root: apt-get install ${missing[*]})"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# ---- credentials -----------------------------------------------------------------------------

json_field() { perl -MJSON::PP -0e 'my $j = decode_json(<STDIN>); print $j->{$ARGV[0]} // ""' "$1"; }

ADMIN=$(SK_E=$SK_ADMIN_EMAIL SK_P=$SK_ADMIN_PASSWORD perl -MJSON::PP -e \
    'print encode_json({email => $ENV{SK_E}, password => $ENV{SK_P}})' |
    curl -sf -X POST "$SK_BASE_URL/api/v1/admin/auth/login" -H 'Content-Type: application/json' \
        --data-binary @- | json_field access_token)
[ -n "$ADMIN" ] || sk_die "admin login failed"
api() {
    local method=$1 path=$2 body=$3
    curl -sf -X "$method" "$SK_BASE_URL$path" -H "Authorization: Bearer $ADMIN" \
        -H 'Content-Type: application/json' -d "$body"
}
APP=$(api POST /api/v1/admin/applications \
    '{"name":"bench","application_type":"SERVICE","scope":"GLOBAL","allowed_scopes":["demo:read"]}')
CLIENT_ID=$(json_field client_id <<<"$APP")
CLIENT_SECRET=$(json_field client_secret <<<"$APP")
ME=$(curl -sf "$SK_BASE_URL/api/v1/admin/auth/me" -H "Authorization: Bearer $ADMIN" | json_field id)
KEY=$(api POST /api/v1/admin/api-keys "{\"name\":\"bench\",\"user_id\":\"$ME\",\"scopes\":[\"demo:read\"]}" |
    json_field key)
[ -n "$CLIENT_ID" ] && [ -n "$KEY" ] || sk_die "could not create the bench client and key"

# Issues N client_credentials tokens, one per line: wrk posts to the token endpoint and each of
# its threads writes the tokens it receives to a file of its own.
issue_tokens() {
    local n=$1 out=$2 basic
    basic=$(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w 0)
    cat >"$B/issue.lua" <<LUA
local counter = 0
function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
end
function init(args)
    out = io.open(args[1] .. "." .. id, "w")
    want = tonumber(args[2])
    got = 0
end
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
function response(status, headers, body)
    local t = status == 200 and body:match('"access_token":"([^"]+)"')
    if t and got < want then
        out:write(t, "\n")
        out:flush()
        got = got + 1
    end
    if got >= want then wrk.thread:stop() end
end
LUA
    rm -f "$out".*
    # wrk runs for its whole duration even when its threads are done: interrupt it then
    wrk -t"$THREADS" -c8 -d3600s -s "$B/issue.lua" "$SK_BASE_URL/api/v1/platform/oauth/token" \
        -- "$out" $(((n + THREADS - 1) / THREADS)) >/dev/null &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(cat "$out".* 2>/dev/null | wc -l)" -ge "$n" ]; then
            kill -INT "$pid"
            break
        fi
        sleep 0.5
    done
    wait "$pid" || true
    cat "$out".* | head -n "$n" >"$out"
    rm -f "$out".*
}

JWT=$(curl -sf -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
    "$SK_BASE_URL/api/v1/platform/oauth/token" | json_field access_token)
say "issuing $((TOKENS * ROUNDS)) tokens for the fresh-token scenario"
t0=$SECONDS
issue_tokens $((TOKENS * ROUNDS)) "$B/tokens.txt"
say "issued $(wc -l <"$B/tokens.txt") tokens in $((SECONDS - t0)) s"
# one part of them for each round
for r in $(seq "$ROUNDS"); do
    sed -n "$(((r - 1) * TOKENS + 1)),$((r * TOKENS))p" "$B/tokens.txt" >"$B/tokens.$r.txt"
done

# ---- the measured server ---------------------------------------------------------------------

TLSPORT=$(sk_free_port)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$B/tls.key" -out "$B/tls.crt" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
curl -sf "$SK_BASE_URL/api/v1/platform/.well-known/jwks.json" >"$B/jwks.json"
chmod 644 "$B"/tls.* "$B/jwks.json"
HROOT=$B/httpd
EXTRA=$(cat <<CONF
# as in the peer measurements of the recipes: 2 processes x 32 threads, endless keep-alive
ThreadsPerChild 32
MaxRequestWorkers 64
MinSpareThreads 32
MaxSpareThreads 64
MaxKeepAliveRequests 0
BufferedLogs On
EnableMMAP ${MMAP:-on}
<IfModule !ssl_module>
    LoadModule ssl_module $MODS/mod_ssl.so
</IfModule>
Listen 127.0.0.1:$TLSPORT
<VirtualHost 127.0.0.1:$TLSPORT>
    SSLEngine on
    SSLCertificateFile $B/tls.crt
    SSLCertificateKeyFile $B/tls.key
    Alias /jwks.json $B/jwks.json
    <Location /jwks.json>
        Require all granted
    </Location>
</VirtualHost>
LoadModule auth_openidc_module $MODS/mod_auth_openidc.so
OIDCOAuthVerifyJwksUri https://127.0.0.1:$TLSPORT/jwks.json
OIDCOAuthSSLValidateServer Off
OIDCOAuthRemoteUserClaim sub
Alias /oidc/ $HROOT/htdocs/
<Location /oidc/>
    AuthType oauth20
    Require valid-user
</Location>
LoadModule oauth2_module $MODS/mod_oauth2.so
Alias /oauth2/ $HROOT/htdocs/
<Location /oauth2/>
    AuthType oauth2
    OAuth2TokenVerify jwks_uri $SK_BASE_URL/api/v1/platform/.well-known/jwks.json
    Require valid-user
</Location>
CONF
)
say "starting the measured server"
URL=$("$TOP/t/lib/extra-apache" start "$HROOT" "$EXTRA" "$SK_BASE_URL")
trap '"$TOP/t/lib/extra-apache" stop "$HROOT" >/dev/null 2>&1 || true' EXIT

cat >"$B/fresh.lua" <<'LUA'
-- each request carries the next token of the file; the threads take turns, so none repeats
local counter = 0
function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
end
function init(args)
    tokens = {}
    for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
    step = tonumber(args[2])
    i = id + 1 - step
end
function request()
    i = i + step
    if i > #tokens then i = id + 1 end
    return wrk.format(nil, nil, { Authorization = "Bearer " .. tokens[i] })
end
LUA

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
rss_kb() {
    local parent kids k total=0
    parent=$(sk_httpd_pid "$HROOT")
    kids=$(ps -o pid= --ppid "$parent" 2>/dev/null || true)
    for k in $kids; do
        total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$k/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# The scenarios: name, path, header arguments (status checks without and with the credential
# first). The rounds take every scenario in turn, each right after a run of the unprotected file
# (its baseline), so that a slower moment of the machine does not fall on one scenario only; the
# round with the median req/s is reported.
SCENARIOS=(none none-tokens jwt-cached jwt-fresh api-key openidc oauth2 openidc-fresh oauth2-fresh)
declare -A PATHS HDR NOAUTH WITH RESULTS ROUND_RPS ROUND_CPU
PATHS=([none]=/1k.txt [none-tokens]=/1k.txt [jwt-cached]=/demo/1k.txt [jwt-fresh]=/demo/1k.txt [api-key]=/demo/1k.txt
       [openidc]=/oidc/1k.txt [oauth2]=/oauth2/1k.txt [openidc-fresh]=/oidc/1k.txt [oauth2-fresh]=/oauth2/1k.txt)
HDR=([none]="" [none-tokens]="Authorization: Bearer $JWT" [jwt-cached]="Authorization: Bearer $JWT" [jwt-fresh]="Authorization: Bearer $JWT"
     [api-key]="X-API-Key: $KEY" [openidc]="Authorization: Bearer $JWT" [oauth2]="Authorization: Bearer $JWT"
     [openidc-fresh]="Authorization: Bearer $JWT" [oauth2-fresh]="Authorization: Bearer $JWT")
FRESH_REQS=0

# CPU time (clock ticks, user + system) of the measured Apache: the parent and its children.
apache_cpu() {
    local parent pids
    parent=$(sk_httpd_pid "$HROOT")
    pids="$parent $(ps -o pid= --ppid "$parent" 2>/dev/null | tr '\n' ' ')"
    for p in $pids; do cat "/proc/$p/stat" 2>/dev/null; done |
        awk '{sub(/^.*\) /, ""); t += $12 + $13} END {print t + 0}'
}
TICK=$(getconf CLK_TCK)

measure() {
    local name=$1 round=$2 out line reqs cpu0 cpu1 cpu
    local -a args=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency)
    case $name in
        jwt-fresh | none-tokens | *-fresh)
            args+=(-s "$B/fresh.lua" "$URL${PATHS[$name]}" -- "$B/tokens.$round.txt" "$THREADS") ;;
        *)
            [ -n "${HDR[$name]}" ] && args+=(-H "${HDR[$name]}")
            args+=("$URL${PATHS[$name]}") ;;
    esac
    cpu0=$(apache_cpu)
    out=$(wrk "${args[@]}")
    cpu1=$(apache_cpu)
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    [ "$name" = jwt-fresh ] && [ "$reqs" -gt "$FRESH_REQS" ] && FRESH_REQS=$reqs
    # Apache's own CPU time per request (wrk's is not in it), in microseconds
    cpu=$(awk -v t=$((cpu1 - cpu0)) -v hz="$TICK" -v n="$reqs" 'BEGIN {printf "%.0f", t / hz * 1e6 / n}')
    line="$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1 == "50%" {print $2}' <<<"$out")"
    line="$line $(awk '$1 == "99%" {print $2}' <<<"$out") $(awk -F: '/Non-2xx/ {gsub(/ /, "", $2); n = $2} END {print n + 0}' <<<"$out") $cpu"
    RESULTS[$name]+="$line"$'\n'
    ROUND_RPS[$name.$round]=${line%% *}
    ROUND_CPU[$name.$round]=$cpu
    say "round $round, $name: ${line%% *} req/s, Apache CPU ${cpu} us/request"
}

for n in "${SCENARIOS[@]}"; do
    hdr=()
    [ -n "${HDR[$n]}" ] && hdr=(-H "${HDR[$n]}")
    NOAUTH[$n]=$(code "$URL${PATHS[$n]}")
    WITH[$n]=$(code "${hdr[@]}" "$URL${PATHS[$n]}")
done
# warm-up: every worker thread meets the keys, the JWKS caches are filled
for n in jwt-cached openidc oauth2; do
    wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -H "${HDR[$n]}" "$URL${PATHS[$n]}" >/dev/null
done
RSS_BEFORE=$(rss_kb)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# Each scenario is measured right after a run of the unprotected file, its baseline: the pace of
# a shared VM drifts by several per cent within a round, so a baseline measured once per round
# (as in the runs before 2026-11-22, 22:40) put that drift into the ratios of the scenarios measured last.
declare -A BASE_RPS BASE_CPU
for r in $(seq "$ROUNDS"); do
    for n in "${SCENARIOS[@]}"; do
        [ "$n" = none ] && continue
        measure none "$r"
        BASE_RPS[$n.$r]=${ROUND_RPS[none.$r]}
        BASE_CPU[$n.$r]=${ROUND_CPU[none.$r]}
        measure "$n" "$r"
    done
done
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
declare -A RPS P50 P99 NON2XX CPU RATIO CPU_RATIO
for n in "${SCENARIOS[@]}"; do
    read -r RPS[$n] P50[$n] P99[$n] NON2XX[$n] _ < <(printf '%s' "${RESULTS[$n]}" | sort -n |
        awk '{a[NR] = $0} END {print a[int((NR + 1) / 2)]}')
    # against the baseline measured just before it, the median over the rounds (none: 1.00x)
    RATIO[$n]=$(for r in $(seq "$ROUNDS"); do
        awk -v a="${ROUND_RPS[$n.$r]}" -v b="${BASE_RPS[$n.$r]:-${ROUND_RPS[$n.$r]}}" 'BEGIN {printf "%.3f\n", a / b}'
    done | sort -n | awk '{a[NR] = $1} END {printf "%.2fx", a[int((NR + 1) / 2)]}')
    # Apache's CPU per request: the median over the rounds, and the no-authentication CPU per
    # request against it in each round (the throughput ratio Apache would reach with the machine
    # to itself, without wrk's share of it)
    CPU[$n]=$(for r in $(seq "$ROUNDS"); do echo "${ROUND_CPU[$n.$r]}"; done | median)
    CPU_RATIO[$n]=$(for r in $(seq "$ROUNDS"); do
        awk -v a="${ROUND_CPU[$n.$r]}" -v b="${BASE_CPU[$n.$r]:-${ROUND_CPU[$n.$r]}}" 'BEGIN {printf "%.3f\n", (a > 0) ? b / a : 0}'
    done | median | awk '{printf "%.2fx", $1}')
done

# the fresh-token scenario against the same requests without authentication
SAME_FRESH=$(for r in $(seq "$ROUNDS"); do
    awk -v a="${ROUND_RPS[jwt-fresh.$r]}" -v b="${ROUND_RPS[none-tokens.$r]}" 'BEGIN {printf "%.3f\n", a / b}'
done | sort -n | awk '{a[NR] = $1} END {printf "%.2fx", a[int((NR + 1) / 2)]}')

say "long run: $LONG s of tokens from the file, then memory again"
RSS_MID=$(rss_kb)
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${LONG}s" -s "$B/fresh.lua" "$URL/demo/1k.txt" \
    -- "$B/tokens.txt" "$THREADS" >"$B/long.txt"
RSS_AFTER=$(rss_kb)

if [ "$MIXED" -gt 0 ]; then
    say "mixed run: $MIXED requests (token from the file / same JWT / API key), memory every 5 s"
    cat >"$B/mixed.lua" <<LUA
local counter = 0
function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
end
function init(args)
    tokens = {}
    for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
    step = tonumber(args[2])
    want = tonumber(args[3])
    marker = args[4] .. "." .. id
    i = id + 1 - step
    n = 0
    got = 0
end
function request()
    n = n + 1
    local m = n % 3
    if m == 0 then
        i = i + step
        if i > #tokens then i = id + 1 end
        return wrk.format(nil, nil, { Authorization = "Bearer " .. tokens[i] })
    elseif m == 1 then
        return wrk.format(nil, nil, { Authorization = "Bearer $JWT" })
    end
    return wrk.format(nil, nil, { ["X-API-Key"] = "$KEY" })
end
function response()
    got = got + 1
    if got == want then
        io.open(marker, "w"):close()
        wrk.thread:stop()
    end
end
LUA
    : >"$B/rss.txt"
    rm -f "$B/mixed.done".*
    (while :; do echo "$(date +%s) $(rss_kb)" >>"$B/rss.txt"; sleep 5; done) &
    SAMPLER=$!
    MIXED_T0=$SECONDS
    # wrk runs for its whole duration even when its threads are done: interrupt it then
    wrk -t"$THREADS" -c"$CONNECTIONS" -d3600s -s "$B/mixed.lua" "$URL/demo/1k.txt" \
        -- "$B/tokens.txt" "$THREADS" $(((MIXED + THREADS - 1) / THREADS)) "$B/mixed.done" >"$B/mixed.txt" &
    WRK=$!
    while kill -0 "$WRK" 2>/dev/null; do
        if [ "$(ls "$B"/mixed.done.* 2>/dev/null | wc -l)" -ge "$THREADS" ]; then
            kill -INT "$WRK"
            break
        fi
        sleep 0.5
    done
    wait "$WRK" || true
    MIXED_SECS=$((SECONDS - MIXED_T0))
    kill "$SAMPLER" 2>/dev/null || true
    wait "$SAMPLER" 2>/dev/null || true
    RSS_MIXED_AFTER=$(rss_kb)
fi

# ---- report ----------------------------------------------------------------------------------

label() {
    case $1 in
        none) echo "static 1 KiB, no authentication" ;;
        none-tokens) echo "static 1 KiB, no authentication, requests of the fresh-token scenario" ;;
        jwt-cached) echo "guard, one JWT (cached)" ;;
        jwt-fresh) echo "guard, a new JWT per request" ;;
        api-key) echo "guard, one API key (cached)" ;;
        openidc) echo "mod_auth_openidc $(dpkg-query -W -f='${Version}' libapache2-mod-auth-openidc 2>/dev/null), oauth20, JWKS over https" ;;
        oauth2) echo "mod_oauth2 $(dpkg-query -W -f='${Version}' libapache2-mod-oauth2 2>/dev/null), jwks_uri (result cache 300 s)" ;;
        openidc-fresh) echo "mod_auth_openidc, a new JWT per request" ;;
        oauth2-fresh) echo "mod_oauth2, a new JWT per request" ;;
    esac
}
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS round(s), $(nproc) CPUs, $(date -u +%Y-%m-%d), EnableMMAP ${MMAP:-on}," \
     "tokens $(perl -MMIME::Base64 -MJSON::PP -e 'my $h = shift; $h =~ tr{-_}{+/}; print decode_json(decode_base64($h))->{alg}' "${JWT%%.*}");" \
     "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "req/s and latencies: the round with the median req/s (no authentication: of all its runs); vs no"
echo "auth: the median over the rounds of the scenario's req/s against the no-authentication run made"
echo "just before it. Apache CPU: its own CPU time per request (user + system, wrk's not in it), median"
echo "of the rounds; CPU vs no auth: that run's CPU per request over the scenario's, median of the rounds."
echo
echo "| scenario | no credential | with | req/s | vs no auth | p50 | p99 | non-2xx | Apache CPU | CPU vs no auth |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for n in "${SCENARIOS[@]}"; do
    echo "| $(label "$n") | ${NOAUTH[$n]} | ${WITH[$n]} | ${RPS[$n]} | ${RATIO[$n]} | ${P50[$n]} | ${P99[$n]} | ${NON2XX[$n]:-0} | ${CPU[$n]} us | ${CPU_RATIO[$n]} |"
done
echo
echo "jwt-fresh against the same requests without authentication (none-tokens), median of the rounds: $SAME_FRESH."
echo
goal() {   # label, measured ratio ("0.97x"), goal
    local v=${2%x}
    echo "- $1: $2 (goal $3x or better): $(awk -v v="$v" -v g="$3" 'BEGIN {print (v >= g ? "met" : "not met")}')"
}
ahead() {  # scenario of the guard, peer's ratio
    awk -v a="${RATIO[$1]%x}" -v b="${2%x}" 'BEGIN {print (a > b ? "ahead" : "not ahead")}'
}
echo "Goals:"
goal "cached JWT" "${RATIO[jwt-cached]}" 0.95
goal "cached API key" "${RATIO[api-key]}" 0.95
goal "fresh $(perl -MMIME::Base64 -MJSON::PP -e 'my $h = shift; $h =~ tr{-_}{+/}; print decode_json(decode_base64($h))->{alg}' "${JWT%%.*}") JWT" "${RATIO[jwt-fresh]}" 0.70
for peer in openidc oauth2; do
    echo "- against $peer: cached JWT $(ahead jwt-cached "${RATIO[$peer]}") (${RATIO[jwt-cached]} to ${RATIO[$peer]})," \
         "fresh JWT $(ahead jwt-fresh "${RATIO[$peer-fresh]}") (${RATIO[jwt-fresh]} to ${RATIO[$peer-fresh]})," \
         "API key $(ahead api-key "${RATIO[$peer]}") (${RATIO[api-key]} to ${RATIO[$peer]})"
done
echo
echo "jwt-fresh: at most $FRESH_REQS requests in a round, with $TOKENS tokens for each round" \
     "($([ "$FRESH_REQS" -le "$TOKENS" ] && echo "every request carried a token never seen before" || echo "some tokens were used twice"))."
echo
echo "| Apache children, resident memory | KiB |"
echo "|---|---|"
echo "| after warm-up | $RSS_BEFORE |"
echo "| after the scenarios | $RSS_MID |"
echo "| after $LONG s more of tokens from the file ($(awk '/requests in/ {print $1}' "$B/long.txt") requests) | $RSS_AFTER |"
if [ "$MIXED" -gt 0 ]; then
    echo "| mixed run ($(awk '/requests in/ {print $1}' "$B/mixed.txt") requests in $MIXED_SECS s," \
         "$(awk -F: '/Non-2xx/ {gsub(/ /, "", $2); n = $2} END {print n + 0}' "$B/mixed.txt") non-2xx):" \
         "lowest / highest sample | $(sort -k2 -n "$B/rss.txt" | head -1 | cut -d' ' -f2) /" \
         "$(sort -k2 -n "$B/rss.txt" | tail -1 | cut -d' ' -f2) |"
    echo "| after the mixed run | $RSS_MIXED_AFTER |"
    echo
    echo "samples (seconds into the mixed run, KiB): $(awk 'NR == 1 {t0 = $1} {printf "%s%d:%d", (NR > 1 ? ", " : ""), $1 - t0, $2}' "$B/rss.txt")"
fi
