/* Mail transports of ScaiKeyMail: a sendmail-compatible command, plain SMTP over a socket, or a
 * directory of .eml files (development and tests). Each delivery is bounded by the transport's
 * timeout, so a slow or dead mail server delays a response by at most that long. Error texts name
 * what failed, never the message. */
#include "core/mail.h"
#include "core/secrets.h"

#include <apr_strings.h>
#include <apr_network_io.h>
#include <apr_file_io.h>
#include <apr_thread_proc.h>
#include <apr_lib.h>
#include <string.h>
#include <signal.h>

/* ---- directory ---- */

static int deliver_dir(apr_pool_t *p, const char *dir, const char *message, const char **err)
{
    apr_time_t now = apr_time_now();
    const char *rnd = sk_random_id(p, NULL), *name, *tmp;
    apr_file_t *f;
    apr_size_t n = strlen(message);
    if (!rnd) {
        *err = "no randomness for the file name";
        return -1;
    }
    name = apr_psprintf(p, "%s/%" APR_TIME_T_FMT "-%s.eml", dir, now, rnd);
    tmp = apr_psprintf(p, "%s/.%" APR_TIME_T_FMT "-%s.tmp", dir, now, rnd);
    if (apr_file_open(&f, tmp, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL,
                      APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD, p) != APR_SUCCESS) {
        *err = apr_pstrcat(p, "cannot create a file in ", dir, NULL);
        return -1;
    }
    if (apr_file_write_full(f, message, n, NULL) != APR_SUCCESS || apr_file_close(f) != APR_SUCCESS) {
        apr_file_remove(tmp, p);
        *err = apr_pstrcat(p, "cannot write a file in ", dir, NULL);
        return -1;
    }
    /* readers see complete files only */
    if (apr_file_rename(tmp, name, p) != APR_SUCCESS) {
        apr_file_remove(tmp, p);
        *err = apr_pstrcat(p, "cannot rename a file in ", dir, NULL);
        return -1;
    }
    return 0;
}

/* ---- sendmail ---- */

static int deliver_sendmail(apr_pool_t *p, const char *command, int timeout, const char *message,
                            const char **err)
{
    char **argv = NULL;
    apr_procattr_t *attr;
    apr_proc_t proc;
    apr_exit_why_e why;
    int code = 0;
    apr_status_t rv;
    apr_time_t deadline = apr_time_now() + apr_time_from_sec(timeout);
    apr_size_t left = strlen(message);
    const char *at = message;

    if (apr_tokenize_to_argv(command, &argv, p) != APR_SUCCESS || !argv[0]) {
        *err = "the sendmail command is empty";
        return -1;
    }
    if (apr_procattr_create(&attr, p) != APR_SUCCESS ||
        apr_procattr_io_set(attr, APR_CHILD_BLOCK, APR_NO_PIPE, APR_NO_PIPE) != APR_SUCCESS ||
        apr_procattr_cmdtype_set(attr, APR_PROGRAM) != APR_SUCCESS ||
        apr_procattr_error_check_set(attr, 1) != APR_SUCCESS) {
        *err = "cannot prepare the sendmail process";
        return -1;
    }
    if ((rv = apr_proc_create(&proc, argv[0], (const char *const *)argv, NULL, attr, p)) != APR_SUCCESS) {
        *err = apr_pstrcat(p, "cannot start ", argv[0], NULL);
        return -1;
    }
    /* writes time out: a stuck command does not hold the request */
    apr_file_pipe_timeout_set(proc.in, apr_time_from_sec(timeout));
    while (left > 0) {
        apr_size_t n = left;
        if (apr_time_now() >= deadline || apr_file_write(proc.in, at, &n) != APR_SUCCESS) {
            apr_file_close(proc.in);
            apr_proc_kill(&proc, SIGKILL);
            apr_proc_wait(&proc, &code, &why, APR_WAIT);
            *err = apr_pstrcat(p, argv[0], " did not take the message in time", NULL);
            return -1;
        }
        at += n;
        left -= n;
    }
    apr_file_close(proc.in);
    for (;;) {
        rv = apr_proc_wait(&proc, &code, &why, APR_NOWAIT);
        if (rv == APR_CHILD_DONE)
            break;
        if (rv != APR_CHILD_NOTDONE || apr_time_now() >= deadline) {
            apr_proc_kill(&proc, SIGKILL);
            apr_proc_wait(&proc, &code, &why, APR_WAIT);
            *err = apr_pstrcat(p, argv[0], " did not finish in time", NULL);
            return -1;
        }
        apr_sleep(apr_time_from_msec(20));
    }
    if (why != APR_PROC_EXIT || code != 0) {
        *err = apr_psprintf(p, "%s failed (%s %d)", argv[0], why == APR_PROC_EXIT ? "exit status" : "signal", code);
        return -1;
    }
    return 0;
}

/* ---- SMTP ---- */

typedef struct smtp {
    apr_pool_t *p;
    apr_socket_t *s;
    apr_time_t deadline;
    int timed_out;          /* the deadline passed, or the socket said so */
    char buf[1024];
    apr_size_t have;
} smtp;

static int smtp_left(smtp *c)
{
    apr_interval_time_t left = c->deadline - apr_time_now();
    if (left <= 0) {
        c->timed_out = 1;
        return -1;
    }
    apr_socket_timeout_set(c->s, left);
    return 0;
}

static int smtp_send(smtp *c, const char *data, apr_size_t len)
{
    while (len > 0) {
        apr_size_t n = len;
        apr_status_t rv;
        if (smtp_left(c) != 0)
            return -1;
        if ((rv = apr_socket_send(c->s, data, &n)) != APR_SUCCESS) {
            c->timed_out = APR_STATUS_IS_TIMEUP(rv);
            return -1;
        }
        data += n;
        len -= n;
    }
    return 0;
}

/* One reply (possibly multi-line "250-..."): its code, or -1. */
static int smtp_reply(smtp *c)
{
    for (;;) {
        char *eol;
        while (!(eol = memchr(c->buf, '\n', c->have))) {
            apr_size_t n = sizeof(c->buf) - 1 - c->have;
            if (n == 0) {
                c->have = 0;    /* an absurdly long line: drop what we have */
                n = sizeof(c->buf) - 1;
            }
            apr_status_t rv;
            if (smtp_left(c) != 0)
                return -1;
            /* the poll under a socket timeout may wake a moment before the deadline */
            if ((rv = apr_socket_recv(c->s, c->buf + c->have, &n)) != APR_SUCCESS || n == 0) {
                c->timed_out = APR_STATUS_IS_TIMEUP(rv);
                return -1;
            }
            c->have += n;
        }
        {
            apr_size_t linelen = (apr_size_t)(eol - c->buf) + 1;
            int code = -1, more = 0;
            if (linelen >= 4 && apr_isdigit(c->buf[0]) && apr_isdigit(c->buf[1]) && apr_isdigit(c->buf[2])) {
                code = (c->buf[0] - '0') * 100 + (c->buf[1] - '0') * 10 + (c->buf[2] - '0');
                more = c->buf[3] == '-';
            }
            memmove(c->buf, c->buf + linelen, c->have - linelen);
            c->have -= linelen;
            if (code < 0)
                return -1;
            if (!more)
                return code;
        }
    }
}

static int smtp_cmd(smtp *c, const char *line, int want)
{
    int code;
    const char *l = apr_pstrcat(c->p, line, "\r\n", NULL);
    if (smtp_send(c, l, strlen(l)) != 0)
        return -1;
    code = smtp_reply(c);
    return code / 100 == want / 100 ? 0 : (code < 0 ? -1 : code);
}

/* The message with dot-stuffing (RFC 5321 §4.5.2) and the final "." line. */
static const char *dot_stuff(apr_pool_t *p, const char *m)
{
    apr_size_t n = strlen(m), i, o = 0;
    char *out = apr_palloc(p, 2 * n + 8);
    int bol = 1;
    for (i = 0; i < n; i++) {
        if (bol && m[i] == '.')
            out[o++] = '.';
        out[o++] = m[i];
        bol = m[i] == '\n';
    }
    if (!bol) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 4);
    return out;
}

static int deliver_smtp(apr_pool_t *p, const char *hostport, int timeout, const char *from, const char *to,
                        const char *message, const char **err)
{
    char *host = NULL, *scope = NULL;
    apr_port_t port = 25;
    apr_sockaddr_t *sa;
    smtp c = { 0 };
    char me[256];
    const char *stage = "connect";
    int code;

    c.p = p;
    c.deadline = apr_time_now() + apr_time_from_sec(timeout);
    if (apr_parse_addr_port(&host, &scope, &port, hostport, p) != APR_SUCCESS || !host) {
        *err = "bad SMTP host:port";
        return -1;
    }
    if (port == 0)
        port = 25;
    if (apr_sockaddr_info_get(&sa, host, APR_UNSPEC, port, 0, p) != APR_SUCCESS ||
        apr_socket_create(&c.s, sa->family, SOCK_STREAM, APR_PROTO_TCP, p) != APR_SUCCESS) {
        *err = apr_psprintf(p, "cannot resolve SMTP server %s", hostport);
        return -1;
    }
    if (apr_gethostname(me, sizeof(me), p) != APR_SUCCESS || !sk_mail_header_ok(me) || strchr(me, ' '))
        apr_cpystrn(me, "localhost", sizeof(me));
    if (smtp_left(&c) != 0 || apr_socket_connect(c.s, sa) != APR_SUCCESS)
        goto fail;
    stage = "greeting";
    if ((code = smtp_reply(&c)) != 220)
        goto fail;
    stage = "EHLO";
    if ((code = smtp_cmd(&c, apr_pstrcat(p, "EHLO ", me, NULL), 250)) != 0) {
        stage = "HELO";
        if (code < 0 || smtp_cmd(&c, apr_pstrcat(p, "HELO ", me, NULL), 250) != 0)
            goto fail;
    }
    stage = "MAIL FROM";
    if (smtp_cmd(&c, apr_pstrcat(p, "MAIL FROM:<", from, ">", NULL), 250) != 0)
        goto fail;
    stage = "RCPT TO";
    if (smtp_cmd(&c, apr_pstrcat(p, "RCPT TO:<", to, ">", NULL), 250) != 0)
        goto fail;
    stage = "DATA";
    if (smtp_cmd(&c, "DATA", 354) != 0)
        goto fail;
    stage = "message";
    {
        const char *d = dot_stuff(p, message);
        if (smtp_send(&c, d, strlen(d)) != 0 || smtp_reply(&c) / 100 != 2)
            goto fail;
    }
    smtp_cmd(&c, "QUIT", 221);
    apr_socket_close(c.s);
    return 0;
fail:
    if (c.s)
        apr_socket_close(c.s);
    *err = apr_psprintf(p, "SMTP delivery to %s failed at %s%s", hostport, stage,
                        c.timed_out || apr_time_now() >= c.deadline ? " (timed out)" : "");
    return -1;
}

int sk_mail_deliver(apr_pool_t *p, const sk_mail_transport *t, const char *from, const char *to,
                    const char *message, const char **err)
{
    int timeout = t->timeout > 0 ? t->timeout : SK_MAIL_TIMEOUT_SECONDS;
    *err = NULL;
    if (!sk_mail_header_ok(from) || !sk_mail_header_ok(to) || !message) {
        *err = "refused envelope";
        return -1;
    }
    switch (t->kind) {
    case SK_MAIL_DIR:
        return deliver_dir(p, t->arg, message, err);
    case SK_MAIL_SMTP:
        return deliver_smtp(p, t->arg, timeout, from, to, message, err);
    default:
        return deliver_sendmail(p, t->arg ? t->arg : SK_MAIL_DEFAULT_SENDMAIL, timeout, message, err);
    }
}
