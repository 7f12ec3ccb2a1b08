# shellcheck shell=bash
# Shared helpers for ./dev, t/lib/harness.sh and t/lib/extra-apache (source this file).
#
#   sk_gen_conf OUTFILE ROOT PORT MODULE PGSOCK PGPORT MASTERKEY ADMIN_EMAIL ADMIN_SECRET MAILDIR EXTRA [ISSUER]
#       writes an Apache config from conf/dev.conf.in; creates ROOT/{logs,run,htdocs} and
#       ROOT/htdocs/1k.txt. ISSUER defaults to http://127.0.0.1:PORT.
#   sk_httpd_start CONF ROOT PORT   start (or gracefully restart) Apache, wait for /api/v1/health
#   sk_httpd_stop CONF ROOT         stop Apache and wait for the parent process to exit
#   sk_httpd_pid ROOT               print the pid of a running Apache (status 1 if none)
#   sk_free_port                    print an unused TCP port on 127.0.0.1 (20000-40000)
#   sk_pg_init DATADIR [initdb options...]    create a cluster unless DATADIR has one
#   sk_pg_start DATADIR SOCKDIR PORT LOGFILE [postgres options...]
#   sk_pg_stop DATADIR fast|immediate
#   sk_pg_create_db SOCKDIR PORT    create role and database "scaikey" unless present
#   sk_write_master_key FILE        32 random bytes, base64, mode 0600
#   sk_random_password              20 characters of [A-Za-z0-9]
#   sk_write_secret FILE VALUE      VALUE without a trailing newline, mode 0600
#
# PostgreSQL runs as OS user postgres when called as root, as the current user otherwise;
# Apache switches its children to www-data when started as root.

SK_TOP=${SK_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SK_PGBIN=${SK_PGBIN:-/usr/lib/postgresql/15/bin}
SK_HTTPD=${SK_HTTPD:-/usr/sbin/apache2}
SK_HTTPD_USER=www-data

sk_is_root() { [ "$(id -u)" = 0 ]; }

sk_die() { echo "error: $*" >&2; exit 1; }

# Run a command as the PostgreSQL OS user (from /, so an unreadable cwd does not matter).
sk_as_pg() {
    if sk_is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# Paths end up unquoted in postgres options and connection strings.
sk_check_path() {
    case "$1" in
        *[[:space:]\"\'\\]*) sk_die "path contains whitespace or quotes, not supported: '$1'" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Apache configuration

sk_gen_conf() {
    [ $# -ge 11 ] || sk_die "sk_gen_conf: expected 11 or 12 arguments, got $#"
    local out=$1 root=$2 port=$3 module=$4 pgsock=$5 pgport=$6 masterkey=$7
    local admin_email=$8 admin_secret=$9 maildir=${10} extra=${11} issuer=${12:-}
    local template="$SK_TOP/conf/dev.conf.in" userline=""
    [ -f "$template" ] || sk_die "template not found: $template"
    [ -n "$issuer" ] || issuer="http://127.0.0.1:$port"
    local p
    for p in "$root" "$module" "$pgsock" "$masterkey" "$admin_secret" "$maildir"; do
        sk_check_path "$p"
    done
    if sk_is_root; then
        userline=$(printf 'User %s\nGroup %s' "$SK_HTTPD_USER" "$SK_HTTPD_USER")
    fi
    mkdir -p "$root/logs" "$root/run" "$root/htdocs" "$(dirname "$out")"
    chmod 755 "$root" "$root/htdocs"
    # 1 KiB static file (a baseline for benchmarks and a sanity check without the module)
    LC_ALL=C perl -e 'print "x" x 1023, "\n"' >"$root/htdocs/1k.txt"
    chmod 644 "$root/htdocs/1k.txt"

    # One pass over the template: substituted values are never scanned again, and a
    # token the template uses without a value is an error.
    SK_V_ROOT=$root SK_V_PORT=$port SK_V_MODULE=$module SK_V_PGSOCK=$pgsock \
    SK_V_PGPORT=$pgport SK_V_ISSUER=$issuer SK_V_MASTERKEY=$masterkey \
    SK_V_ADMIN_EMAIL=$admin_email SK_V_ADMIN_SECRET=$admin_secret SK_V_MAILDIR=$maildir \
    SK_V_USERLINE=$userline SK_V_EXTRA=$extra \
    LC_ALL=C perl -pe '
        s{\@([A-Z_]+)\@}{
            exists $ENV{"SK_V_$1"} ? $ENV{"SK_V_$1"}
                                   : die "unknown token \@$1\@ at line $.\n"
        }ge;
    ' "$template" >"$out.tmp" || { rm -f "$out.tmp"; sk_die "could not generate $out"; }
    mv -f "$out.tmp" "$out"
}

# ---------------------------------------------------------------------------------------------
# Ports

sk_port_in_use() {
    local port=$1
    if command -v ss >/dev/null 2>&1 &&
        [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
        return 0
    fi
    # Connecting succeeds only if something listens there.
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

sk_free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 20001))
        if ! sk_port_in_use "$port"; then
            echo "$port"
            return 0
        fi
    done
    sk_die "no free TCP port found in 20000-40000"
}

# ---------------------------------------------------------------------------------------------
# Apache

# SK_HTTPD_ENV: extra NAME=VALUE words for Apache's environment (e.g. LD_PRELOAD of a sanitizer)
sk_httpd() {
    local -a extra=()
    [ -n "${SK_HTTPD_ENV:-}" ] && read -r -a extra <<<"$SK_HTTPD_ENV"
    env -i PATH=/usr/sbin:/usr/bin:/bin "${extra[@]}" "$SK_HTTPD" "$@"
}

sk_httpd_pid() {
    local pidfile="$1/run/httpd.pid" pid
    [ -s "$pidfile" ] || return 1
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

sk_log_tail() {
    local log=$1 n=${2:-30}
    if [ -s "$log" ]; then
        echo "--- last $n lines of $log" >&2
        tail -n "$n" "$log" >&2
        echo "---" >&2
    else
        echo "(no error log at $log)" >&2
    fi
}

# Start Apache (graceful restart when it already runs), then wait up to 30 s for
# GET /api/v1/health to answer 200.
# Returns 0 when healthy, 2 when the port could not be bound, 1 on any other failure
# (the end of the error log is printed).
sk_httpd_start() {
    local conf=$1 root=$2 port=$3
    local log="$root/logs/error.log" url="http://127.0.0.1:$port/api/v1/health"
    local pidfile="$root/run/httpd.pid" out offset=0 action=start code="" new
    [ -f "$log" ] && offset=$(stat -c %s "$log")
    # A pid file left behind by a crashed server would look like a failed start.
    if [ -e "$pidfile" ] && ! sk_httpd_pid "$root" >/dev/null; then
        rm -f "$pidfile"
    fi
    if ! out=$(sk_httpd -f "$conf" -t 2>&1); then
        echo "$out" >&2
        echo "error: Apache configuration test failed ($conf)" >&2
        return 1
    fi
    if sk_httpd_pid "$root" >/dev/null; then
        action=graceful
    fi
    if ! out=$(sk_httpd -f "$conf" -k "$action" 2>&1); then
        echo "$out" >&2
        if [[ $out == *"Address already in use"* ]]; then return 2; fi
        sk_log_tail "$log" 30
        echo "error: apache2 -k $action failed" >&2
        return 1
    fi
    [ -z "$out" ] || echo "$out" >&2
    local deadline=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$deadline" ]; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) || true
        if [ "$code" = 200 ]; then
            return 0
        fi
        # Start-up errors after daemonizing only show up in the error log.
        new=$(tail -c +"$((offset + 1))" "$log" 2>/dev/null || true)
        if [[ $new == *"AH00072"* || $new == *"Address already in use"* ]]; then
            sk_httpd_stop "$conf" "$root" >/dev/null 2>&1 || true
            return 2
        fi
        if [[ $new == *"Configuration Failed"* || $new == *"no listening sockets"* ]] ||
            { [ -s "$pidfile" ] && ! sk_httpd_pid "$root" >/dev/null; }; then
            sk_log_tail "$log" 30
            echo "error: Apache did not start (see $log)" >&2
            sk_httpd_stop "$conf" "$root" >/dev/null 2>&1 || true
            return 1
        fi
        sleep 0.1
    done
    sk_log_tail "$log" 30
    echo "error: $url did not answer 200 within 30 s (last status: ${code:-none})" >&2
    return 1
}

# Stop Apache and wait until the parent process has gone. No error if it is not running.
sk_httpd_stop() {
    local conf=$1 root=$2 pid
    pid=$(sk_httpd_pid "$root") || return 0
    if [ -f "$conf" ]; then
        sk_httpd -f "$conf" -k stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "warning: Apache (pid $pid) still running after 15 s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

sk_pg_init() {
    local data=$1
    shift
    [ -f "$data/PG_VERSION" ] && return 0
    if [ -e "$data" ] && [ -n "$(ls -A "$data" 2>/dev/null)" ]; then
        sk_die "$data exists but holds no PostgreSQL cluster; remove it"
    fi
    local log
    log="$(dirname "$data")/initdb.log"
    if ! sk_as_pg "$SK_PGBIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C "$@" \
        >"$log" 2>&1; then
        cat "$log" >&2
        sk_die "initdb failed"
    fi
}

sk_pg_running() {
    sk_as_pg "$SK_PGBIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

sk_pg_start() {
    local data=$1 sock=$2 port=$3 log=$4
    shift 4
    sk_check_path "$data"
    sk_check_path "$sock"
    if sk_pg_running "$data"; then
        [ -S "$sock/.s.PGSQL.$port" ] ||
            sk_die "PostgreSQL in $data runs, but not on socket $sock/.s.PGSQL.$port (stop it first)"
        return 0
    fi
    local opts="-c listen_addresses='' -k $sock -p $port" o out
    for o in "$@"; do opts="$opts $o"; done
    if ! out=$(sk_as_pg "$SK_PGBIN/pg_ctl" -D "$data" -l "$log" -w -t 30 -o "$opts" start 2>&1); then
        echo "$out" >&2
        [ -f "$log" ] && tail -n 30 "$log" >&2
        sk_die "PostgreSQL did not start (log: $log)"
    fi
}

sk_pg_stop() {
    local data=$1 mode=${2:-fast}
    [ -f "$data/PG_VERSION" ] || return 0
    sk_pg_running "$data" || return 0
    sk_as_pg "$SK_PGBIN/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop >/dev/null
}

sk_pg_create_db() {
    local sock=$1 port=$2
    psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres <<'SQL' >/dev/null
SELECT 'CREATE ROLE scaikey LOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'scaikey') \gexec
SELECT 'CREATE DATABASE scaikey OWNER scaikey'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'scaikey') \gexec
SQL
}

# ---------------------------------------------------------------------------------------------
# Secrets

# 20 characters of [A-Za-z0-9] from /dev/urandom.
sk_random_password() {
    local s=""
    while [ "${#s}" -lt 20 ]; do
        s+=$(head -c 64 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')
    done
    printf '%s\n' "${s:0:20}"
}

# A 32-byte master key, base64 on one line, mode 0600.
sk_write_master_key() {
    local file=$1
    (umask 077 && head -c 32 /dev/urandom | base64 -w 0 >"$file" && echo >>"$file")
    chmod 600 "$file"
}

# Write a secret without a trailing newline, mode 0600.
sk_write_secret() {
    local file=$1 value=$2
    (umask 077 && printf '%s' "$value" >"$file")
    chmod 600 "$file"
}
