#!/usr/bin/env bash
# Run a command against a throwaway mod_scaikey instance:
#
#   t/lib/harness.sh CMD [ARGS...]        e.g.  t/lib/harness.sh prove -r t/
#
# Starts a private PostgreSQL 15 (unix socket in a temp dir) with role and database "scaikey",
# writes a master key and a bootstrap admin password, generates an Apache config from
# conf/dev.conf.in on a free port and waits until /api/v1/health answers 200. Then runs CMD
# with these variables exported:
#
#   SK_TOP            source tree (absolute)
#   SK_BASE_URL       http://127.0.0.1:PORT
#   SK_ADMIN_EMAIL    bootstrap admin (admin@example.test)
#   SK_ADMIN_PASSWORD its password
#   SK_PSQL           command prefix for superuser SQL on the test database, e.g.
#                     $SK_PSQL -c 'SELECT count(*) FROM users'
#   SK_PG_HOST        PostgreSQL socket directory
#   SK_PG_PORT        PostgreSQL port (names the socket; no TCP listener)
#   SK_RUN            the temp dir (master.key, admin.secret, pg/, httpd/, mail/)
#   SK_ERROR_LOG      Apache's error log
#   SK_MAILDIR        directory the module writes outgoing mail to (mode 0777)
#   SK_MODULE         the module being tested (absolute path of mod_scaikey.so)
#   SK_HTTPD_CONF     the generated Apache config
#
# Environment read: SK_MODULE (default mod_scaikey/.libs/mod_scaikey.so), SK_EXTRA_CONF (lines
# appended to the Apache config), SK_KEEP=1 (keep the temp dir for inspection).
# Everything is torn down on exit, including on failure and Ctrl-C. Exit status is CMD's.
set -euo pipefail

SK_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=t/lib/conf.sh
. "$SK_TOP/t/lib/conf.sh"

if [ $# -lt 1 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

SK_MODULE=${SK_MODULE:-$SK_TOP/mod_scaikey/.libs/mod_scaikey.so}
case "$SK_MODULE" in /*) ;; *) SK_MODULE="$PWD/$SK_MODULE" ;; esac
[ -f "$SK_MODULE" ] || sk_die "module not found: $SK_MODULE (build it first: ./dev test, or make)"

# Print the pids of all descendants of a process (from /proc; procps may be missing).
# shellcheck disable=SC2317  # used by the trap handler
descendants() {
    local f line ppid pid
    for f in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$f" || continue
        read -r _ ppid _ <<<"${line##*) }"
        if [ "$ppid" = "$1" ]; then
            pid=${f#/proc/}
            pid=${pid%/stat}
            echo "$pid"
            descendants "$pid"
        fi
    done
}

# shellcheck disable=SC2317  # invoked through the trap
cleanup() {
    local rc=$? dir
    trap - EXIT INT TERM HUP PIPE
    set +e
    if [ -n "$CMD_PID" ] && kill -0 "$CMD_PID" 2>/dev/null; then
        # the command and whatever it started (prove and its test scripts)
        # shellcheck disable=SC2046
        kill -TERM "$CMD_PID" $(descendants "$CMD_PID") 2>/dev/null
        wait "$CMD_PID" 2>/dev/null
    fi
    # second Apache servers started by tests through t/lib/extra-apache
    if [ -f "$W/extra-apache.list" ]; then
        while read -r dir; do
            [ -n "$dir" ] && sk_httpd_stop "$dir/httpd.conf" "$dir"
        done <"$W/extra-apache.list"
    fi
    sk_httpd_stop "$HCONF" "$HROOT"
    if [ -f "$W/pg/data/postmaster.pid" ]; then
        sk_pg_stop "$W/pg/data" immediate >/dev/null 2>&1
    fi
    if [ "${SK_KEEP:-}" = 1 ]; then
        echo "harness: kept $W" >&2
    else
        rm -rf "$W"
    fi
    exit "$rc"
}
CMD_PID=""
W=$(mktemp -d "${TMPDIR:-/tmp}/scaikey-test.XXXXXX")
HROOT="$W/httpd"
HCONF="$HROOT/httpd.conf"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE
chmod 755 "$W"
sk_check_path "$W"

# --- PostgreSQL: private cluster, unix socket only, durability off (it is thrown away)
mkdir -m 755 "$W/pg" "$W/pg/run"
if sk_is_root; then chown postgres:postgres "$W/pg" "$W/pg/run"; fi
PGPORT=$(sk_free_port)
sk_pg_init "$W/pg/data" --no-sync
sk_pg_start "$W/pg/data" "$W/pg/run" "$PGPORT" "$W/pg/log" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off
sk_pg_create_db "$W/pg/run" "$PGPORT"

# --- secrets and mail
sk_write_master_key "$W/master.key"
ADMIN_EMAIL=admin@example.test
ADMIN_PASSWORD=$(sk_random_password)
sk_write_secret "$W/admin.secret" "$ADMIN_PASSWORD"
mkdir -m 777 "$W/mail"
chmod 777 "$W/mail"

# --- Apache on a free port (another run may grab the port between the check and the bind)
rc=2
for _ in 1 2 3 4 5; do
    PORT=$(sk_free_port)
    sk_gen_conf "$HCONF" "$HROOT" "$PORT" "$SK_MODULE" "$W/pg/run" "$PGPORT" \
        "$W/master.key" "$ADMIN_EMAIL" "$W/admin.secret" "$W/mail" "${SK_EXTRA_CONF:-}"
    rc=0
    sk_httpd_start "$HCONF" "$HROOT" "$PORT" || rc=$?
    [ "$rc" = 2 ] || break
    echo "harness: port $PORT was taken, trying another" >&2
done
[ "$rc" = 0 ] || sk_die "Apache did not come up"

export SK_TOP SK_MODULE
export SK_BASE_URL="http://127.0.0.1:$PORT"
export SK_ADMIN_EMAIL=$ADMIN_EMAIL
export SK_ADMIN_PASSWORD=$ADMIN_PASSWORD
export SK_PG_HOST="$W/pg/run"
export SK_PG_PORT=$PGPORT
export SK_PSQL="psql -X -A -t -q -v ON_ERROR_STOP=1 -h $SK_PG_HOST -p $SK_PG_PORT -U postgres -d scaikey"
export SK_RUN=$W
export SK_ERROR_LOG="$HROOT/logs/error.log"
export SK_MAILDIR="$W/mail"
export SK_HTTPD_CONF=$HCONF

echo "harness: $SK_BASE_URL (PostgreSQL socket $SK_PG_HOST/.s.PGSQL.$SK_PG_PORT, run dir $W)" >&2

# In the background so that a signal to the harness is handled at once (the trap stops the
# command, then tears down); stdin stays the harness's own.
rc=0
"$@" <&0 &
CMD_PID=$!
wait "$CMD_PID" || rc=$?
CMD_PID=""
if [ "$rc" != 0 ]; then
    echo "harness: '$*' exited with status $rc" >&2
    sk_log_tail "$SK_ERROR_LOG" 40
fi
exit "$rc"
