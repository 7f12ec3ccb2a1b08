/*
 * Unit tests for outgoing mail: message building (core/mail.c), header injection refusal, and the
 * directory and sendmail transports (jobs/mailer.c). TAP on stdout.
 */
#include <check.h>
#include "unit_main.h"
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_file_info.h>
#include <apr_network_io.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <signal.h>

#include "core/mail.h"

static apr_pool_t *pool;

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
    pool = NULL;
}

static sk_mail sample(void)
{
    sk_mail m = { 0 };
    m.from = "ScaiKey <noreply@id.example.com>";
    m.to = "ada@example.com";
    m.subject = "Your sign-in code for Acme";
    m.body = "line one\nline two\n";
    return m;
}

/* the header block (up to the blank line) */
static const char *headers_of(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    return apr_pstrndup(pool, msg, (apr_size_t)(end - msg) + 2);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    const char *p = hay;
    while ((p = strstr(p, needle))) {
        n++;
        p += strlen(needle);
    }
    return n;
}

START_TEST(build_headers)
{
    sk_mail m = sample();
    const char *err = NULL, *h;
    char *msg = sk_mail_build(pool, &m, apr_time_from_sec(1700000000), &err);
    ck_assert_ptr_nonnull(msg);
    ck_assert_ptr_null(err);
    h = headers_of(msg);
    ck_assert_ptr_nonnull(strstr(h, "From: ScaiKey <noreply@id.example.com>\r\n"));
    ck_assert_ptr_nonnull(strstr(h, "To: ada@example.com\r\n"));
    ck_assert_ptr_nonnull(strstr(h, "Subject: Your sign-in code for Acme\r\n"));
    ck_assert_ptr_nonnull(strstr(h, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
    ck_assert_ptr_nonnull(strstr(h, "Message-ID: <"));
    ck_assert_ptr_nonnull(strstr(h, "@id.example.com>\r\n"));
    ck_assert_ptr_nonnull(strstr(h, "MIME-Version: 1.0\r\n"));
    ck_assert_ptr_nonnull(strstr(h, "Content-Type: text/plain; charset=utf-8\r\n"));
    /* every line ends with CRLF, the body too */
    ck_assert_int_eq(count(msg, "\n"), count(msg, "\r\n"));
    ck_assert_ptr_nonnull(strstr(msg, "\r\n\r\nline one\r\nline two\r\n"));
    ck_assert_int_eq(count(h, "Subject:"), 1);
}
END_TEST

START_TEST(build_refuses_injection)
{
    static const char *const bad[] = {
        "Acme\r\nBcc: eve@evil.example", "Acme\nBcc: eve@evil.example", "Acme\rBcc: x",
        "Acme\x01", "", NULL
    };
    const char *err;
    int i;
    for (i = 0; bad[i]; i++) {
        sk_mail m = sample();
        m.subject = bad[i];
        err = NULL;
        ck_assert_ptr_null(sk_mail_build(pool, &m, apr_time_now(), &err));
        ck_assert_ptr_nonnull(err);
        if (!bad[i][0])
            continue;

        m = sample();
        m.to = apr_pstrcat(pool, "ada@example.com", bad[i], NULL);
        ck_assert_ptr_null(sk_mail_build(pool, &m, apr_time_now(), &err));

        m = sample();
        m.from = apr_pstrcat(pool, "noreply@example.com", bad[i], NULL);
        ck_assert_ptr_null(sk_mail_build(pool, &m, apr_time_now(), &err));
    }
    {
        /* a tenant name with a line break cannot add a header through the subject template */
        sk_mail m = sample();
        sk_mail_signin_code(pool, &m, "Acme\r\nBcc: eve@evil.example", "123456", 10);
        m.from = "noreply@example.com";
        m.to = "ada@example.com";
        ck_assert_ptr_null(sk_mail_build(pool, &m, apr_time_now(), &err));
    }
    {
        sk_mail m = sample();
        m.to = "ada@example.com>\r\nBcc: <eve@evil.example";
        ck_assert_ptr_null(sk_mail_build(pool, &m, apr_time_now(), &err));
        m = sample();
        m.to = "<ada@example.com> <eve@evil.example>";
        ck_assert_ptr_null(sk_mail_build(pool, &m, apr_time_now(), &err));
        m = sample();
        m.to = NULL;
        ck_assert_ptr_null(sk_mail_build(pool, &m, apr_time_now(), &err));
    }
}
END_TEST

START_TEST(header_and_address_checks)
{
    ck_assert_int_eq(sk_mail_header_ok("plain value\twith tab"), 1);
    ck_assert_int_eq(sk_mail_header_ok("caf\xc3\xa9"), 1);
    ck_assert_int_eq(sk_mail_header_ok("a\r\nb"), 0);
    ck_assert_int_eq(sk_mail_header_ok("a\nb"), 0);
    ck_assert_int_eq(sk_mail_header_ok(""), 0);
    ck_assert_int_eq(sk_mail_header_ok(NULL), 0);
    ck_assert_str_eq(sk_mail_address(pool, "a@b.example"), "a@b.example");
    ck_assert_str_eq(sk_mail_address(pool, "Name Here <a@b.example>"), "a@b.example");
    ck_assert_ptr_null(sk_mail_address(pool, "no-at-sign"));
    ck_assert_ptr_null(sk_mail_address(pool, "a b@c.example"));
    ck_assert_ptr_null(sk_mail_address(pool, "<a@b.example> trailing"));
    ck_assert_ptr_null(sk_mail_address(pool, "a@b@c.example"));
    ck_assert_ptr_null(sk_mail_address(pool, "@b.example"));
}
END_TEST

START_TEST(subject_utf8_encoded)
{
    sk_mail m = sample();
    const char *err = NULL, *h;
    char *msg;
    /* "Müller GmbH & Söhne — Zürich" repeated: long enough to need several encoded words */
    m.subject = "Your sign-in code for M\xc3\xbcller GmbH & S\xc3\xb6hne \xe2\x80\x94 Z\xc3\xbcrich "
                "M\xc3\xbcller GmbH & S\xc3\xb6hne \xe2\x80\x94 Z\xc3\xbcrich";
    msg = sk_mail_build(pool, &m, apr_time_now(), &err);
    ck_assert_ptr_nonnull(msg);
    h = headers_of(msg);
    ck_assert_ptr_nonnull(strstr(h, "Subject: =?UTF-8?B?"));
    ck_assert_int_ge(count(h, "=?UTF-8?B?"), 2);
    /* header lines are pure ASCII and short */
    {
        const char *line = h;
        while (*line) {
            const char *eol = strstr(line, "\r\n");
            const unsigned char *c;
            ck_assert_ptr_nonnull(eol);
            ck_assert_int_le((int)(eol - line), 998);
            for (c = (const unsigned char *)line; c < (const unsigned char *)eol; c++)
                ck_assert_int_lt(*c, 0x80);
            line = eol + 2;
        }
    }
    /* bodies stay UTF-8 (8bit) */
    m = sample();
    m.body = "Gr\xc3\xbc\xc3\x9f" "e\n";
    msg = sk_mail_build(pool, &m, apr_time_now(), &err);
    ck_assert_ptr_nonnull(strstr(msg, "Content-Transfer-Encoding: 8bit\r\n"));
    ck_assert_ptr_nonnull(strstr(msg, "Gr\xc3\xbc\xc3\x9f" "e\r\n"));
    /* invalid UTF-8 is refused */
    m.body = "bad \xff\n";
    ck_assert_ptr_null(sk_mail_build(pool, &m, apr_time_now(), &err));
}
END_TEST

START_TEST(templates)
{
    sk_mail m = { 0 };
    sk_mail_signin_code(pool, &m, "Acme Corp", "042917", 10);
    ck_assert_str_eq(m.subject, "Your sign-in code for Acme Corp");
    ck_assert_ptr_nonnull(strstr(m.body, "042917"));
    ck_assert_ptr_nonnull(strstr(m.body, "Acme Corp"));
    ck_assert_ptr_nonnull(strstr(m.body, "10 minutes"));

    sk_mail_password_reset(pool, &m, "Acme Corp", "https://id.example.com/x?token=abc", 30);
    ck_assert_str_eq(m.subject, "Reset your password for Acme Corp");
    ck_assert_ptr_nonnull(strstr(m.body, "https://id.example.com/x?token=abc\n"));
    ck_assert_ptr_nonnull(strstr(m.body, "30 minutes"));

    sk_mail_verify_email(pool, &m, "Acme Corp", "https://id.example.com/v?token=abc", 60);
    ck_assert_ptr_nonnull(strstr(m.subject, "Acme Corp"));
    ck_assert_ptr_nonnull(strstr(m.body, "https://id.example.com/v?token=abc"));

    /* the code stands alone on an indented line, where people (and the tests) find it */
    sk_mail_mfa_code(pool, &m, "Acme Corp", "004211", 5, 0);
    ck_assert_str_eq(m.subject, "Your verification code for Acme Corp");
    ck_assert_ptr_nonnull(strstr(m.body, "\n    004211\n"));
    ck_assert_ptr_nonnull(strstr(m.body, "finish signing in to Acme Corp"));
    ck_assert_ptr_nonnull(strstr(m.body, "5 minutes"));
    sk_mail_mfa_code(pool, &m, "Acme Corp", "004211", 5, 1);
    ck_assert_str_eq(m.subject, "Confirm email verification for Acme Corp");
    ck_assert_ptr_nonnull(strstr(m.body, "turn on verification by email"));
}
END_TEST

static const char *make_dir(void)
{
    char *tmpl = apr_pstrdup(pool, "/tmp/sk-mail-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    return tmpl;
}

static const char *only_file(const char *dir, const char *suffix)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    const char *found = NULL;
    int n = 0;
    ck_assert_int_eq(apr_dir_open(&d, dir, pool), APR_SUCCESS);
    while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d) == APR_SUCCESS) {
        if (fi.filetype != APR_REG)
            continue;
        n++;
        found = apr_pstrcat(pool, dir, "/", fi.name, NULL);
        ck_assert_ptr_nonnull(strstr(fi.name, suffix));
    }
    apr_dir_close(d);
    ck_assert_int_eq(n, 1);
    return found;
}

static char *slurp(const char *path)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    char *buf;
    ck_assert_int_eq(apr_file_open(&f, path, APR_FOPEN_READ, 0, pool), APR_SUCCESS);
    ck_assert_int_eq(apr_file_info_get(&fi, APR_FINFO_SIZE, f), APR_SUCCESS);
    n = (apr_size_t)fi.size;
    buf = apr_pcalloc(pool, n + 1);
    ck_assert_int_eq(apr_file_read_full(f, buf, n, &n), APR_SUCCESS);
    apr_file_close(f);
    return buf;
}

START_TEST(deliver_to_dir)
{
    sk_mail m = sample();
    sk_mail_transport t = { SK_MAIL_DIR, NULL, 10 };
    const char *err = NULL, *file;
    char *msg = sk_mail_build(pool, &m, apr_time_now(), &err);
    t.arg = make_dir();
    ck_assert_int_eq(sk_mail_deliver(pool, &t, "noreply@id.example.com", "ada@example.com", msg, &err), 0);
    file = only_file(t.arg, ".eml");
    ck_assert_str_eq(slurp(file), msg);
    apr_file_remove(file, pool);
    apr_dir_remove(t.arg, pool);

    t.arg = "/nonexistent/sk-mail";
    ck_assert_int_eq(sk_mail_deliver(pool, &t, "noreply@id.example.com", "ada@example.com", msg, &err), -1);
    ck_assert_ptr_nonnull(err);
    ck_assert_ptr_null(strstr(err, "line one"));
}
END_TEST

START_TEST(deliver_by_sendmail)
{
    sk_mail m = sample();
    sk_mail_transport t = { SK_MAIL_SENDMAIL, NULL, 10 };
    const char *err = NULL, *dir = make_dir(), *out = apr_pstrcat(pool, dir, "/out.eml", NULL);
    char *msg = sk_mail_build(pool, &m, apr_time_now(), &err);
    apr_time_t t0;

    t.arg = apr_pstrcat(pool, "/bin/sh -c \"cat > ", out, "\"", NULL);
    ck_assert_int_eq(sk_mail_deliver(pool, &t, "noreply@id.example.com", "ada@example.com", msg, &err), 0);
    ck_assert_str_eq(slurp(out), msg);
    apr_file_remove(out, pool);
    apr_dir_remove(dir, pool);

    t.arg = "/bin/false";
    ck_assert_int_eq(sk_mail_deliver(pool, &t, "noreply@id.example.com", "ada@example.com", msg, &err), -1);
    ck_assert_ptr_nonnull(err);

    t.arg = "/nonexistent/sendmail -t";
    ck_assert_int_eq(sk_mail_deliver(pool, &t, "noreply@id.example.com", "ada@example.com", msg, &err), -1);

    /* a command that never finishes is stopped at the timeout */
    t.arg = "/bin/sleep 30";
    t.timeout = 1;
    t0 = apr_time_now();
    ck_assert_int_eq(sk_mail_deliver(pool, &t, "noreply@id.example.com", "ada@example.com", msg, &err), -1);
    ck_assert_int_lt(apr_time_now() - t0, apr_time_from_sec(5));
}
END_TEST


/* A one-connection SMTP server in a child process: answers the dialogue (or stays silent when
 * silent), writes what came after DATA to out. Returns the port; *pid the child. */
static apr_port_t fake_smtp(const char *out, int silent, pid_t *pid)
{
    apr_socket_t *ls;
    apr_sockaddr_t *sa;
    ck_assert_int_eq(apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0, pool), APR_SUCCESS);
    ck_assert_int_eq(apr_socket_create(&ls, APR_INET, SOCK_STREAM, APR_PROTO_TCP, pool), APR_SUCCESS);
    ck_assert_int_eq(apr_socket_bind(ls, sa), APR_SUCCESS);
    ck_assert_int_eq(apr_socket_listen(ls, 1), APR_SUCCESS);
    ck_assert_int_eq(apr_socket_addr_get(&sa, APR_LOCAL, ls), APR_SUCCESS);
    *pid = fork();
    ck_assert_int_ge(*pid, 0);
    if (*pid == 0) {
        apr_socket_t *c;
        char buf[4096];
        apr_size_t n;
        int data = 0;
        FILE *f = fopen(out, "wb");
        if (apr_socket_accept(&c, ls, pool) != APR_SUCCESS || !f)
            _exit(1);
        if (silent) {
            sleep(20);
            _exit(0);
        }
#define SAY(t) do { apr_size_t l = strlen(t); apr_socket_send(c, t, &l); } while (0)
        SAY("220 fake ESMTP\r\n");
        for (;;) {
            n = sizeof(buf) - 1;
            if (apr_socket_recv(c, buf, &n) != APR_SUCCESS || n == 0)
                break;
            buf[n] = '\0';
            if (data) {
                fwrite(buf, 1, n, f);
                if (n >= 5 && !strcmp(buf + n - 5, "\r\n.\r\n")) {
                    data = 0;
                    SAY("250 queued\r\n");
                }
                continue;
            }
            fprintf(f, "> %s", buf);
            if (!strncmp(buf, "EHLO", 4))
                SAY("250-fake\r\n250 8BITMIME\r\n");
            else if (!strncmp(buf, "DATA", 4)) {
                data = 1;
                SAY("354 go ahead\r\n");
            }
            else if (!strncmp(buf, "QUIT", 4)) {
                SAY("221 bye\r\n");
                break;
            }
            else
                SAY("250 ok\r\n");
        }
        fclose(f);
        _exit(0);
    }
    apr_socket_close(ls);
    return sa->port;
}

START_TEST(deliver_by_smtp)
{
    sk_mail m = sample();
    sk_mail_transport t = { SK_MAIL_SMTP, NULL, 10 };
    const char *err = NULL, *dir = make_dir(), *out = apr_pstrcat(pool, dir, "/smtp.txt", NULL);
    char *msg, *got;
    pid_t pid;
    int status;
    apr_time_t t0;

    m.body = "first\n.leading dot\n";
    msg = sk_mail_build(pool, &m, apr_time_now(), &err);
    t.arg = apr_psprintf(pool, "127.0.0.1:%d", (int)fake_smtp(out, 0, &pid));
    ck_assert_msg(sk_mail_deliver(pool, &t, "noreply@id.example.com", "ada@example.com", msg, &err) == 0,
                  "smtp: %s", err ? err : "");
    waitpid(pid, &status, 0);
    got = slurp(out);
    ck_assert_ptr_nonnull(strstr(got, "> EHLO "));
    ck_assert_ptr_nonnull(strstr(got, "> MAIL FROM:<noreply@id.example.com>\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "> RCPT TO:<ada@example.com>\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "Subject: Your sign-in code for Acme\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\n..leading dot\r\n.\r\n"));   /* dot-stuffed */
    ck_assert_ptr_nonnull(strstr(got, "> QUIT"));
    apr_file_remove(out, pool);

    /* a server that never answers: given up at the timeout */
    t.timeout = 1;
    t.arg = apr_psprintf(pool, "127.0.0.1:%d", (int)fake_smtp(out, 1, &pid));
    t0 = apr_time_now();
    ck_assert_int_eq(sk_mail_deliver(pool, &t, "noreply@id.example.com", "ada@example.com", msg, &err), -1);
    ck_assert_int_lt(apr_time_now() - t0, apr_time_from_sec(3));
    ck_assert_ptr_nonnull(strstr(err, "timed out"));
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    apr_file_remove(out, pool);
    apr_dir_remove(dir, pool);
}
END_TEST

static Suite *mail_suite(void)
{
    Suite *s = suite_create("mail");
    TCase *tc = tcase_create("build");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, build_headers);
    tcase_add_test(tc, build_refuses_injection);
    tcase_add_test(tc, header_and_address_checks);
    tcase_add_test(tc, subject_utf8_encoded);
    tcase_add_test(tc, templates);
    suite_add_tcase(s, tc);

    tc = tcase_create("transport");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, deliver_to_dir);
    tcase_add_test(tc, deliver_by_sendmail);
    tcase_add_test(tc, deliver_by_smtp);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sk_unit_run(mail_suite());
}
