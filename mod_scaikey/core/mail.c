/* Building the plain-text messages the identity server sends. */
#include "core/mail.h"
#include "core/secrets.h"

#include <apr_strings.h>
#include <string.h>

int sk_mail_header_ok(const char *v)
{
    const unsigned char *c;
    if (!v || !*v)
        return 0;
    for (c = (const unsigned char *)v; *c; c++)
        if ((*c < 0x20 && *c != '\t') || *c == 0x7f)
            return 0;
    return 1;
}

const char *sk_mail_address(apr_pool_t *p, const char *mailbox)
{
    const char *lt, *gt, *a, *c;
    char *addr;
    if (!sk_mail_header_ok(mailbox))
        return NULL;
    lt = strrchr(mailbox, '<');
    if (lt) {
        gt = strchr(lt, '>');
        if (!gt || gt[1] != '\0' || strchr(mailbox, '<') != lt || strchr(mailbox, '>') != gt)
            return NULL;
        addr = apr_pstrndup(p, lt + 1, (apr_size_t)(gt - lt - 1));
    }
    else
        addr = apr_pstrdup(p, mailbox);
    for (c = addr; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == '<' || *c == '>' || *c == '"' || *c == 0x7f)
            return NULL;
    a = strchr(addr, '@');
    if (!a || a == addr || !a[1] || strchr(a + 1, '@'))
        return NULL;
    return addr;
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* RFC 2047 encoded words (B encoding), each at most 75 characters, folded onto continuation lines;
 * words end on character boundaries. */
static const char *encode_header(apr_pool_t *p, const char *v)
{
    const char *out = NULL, *s = v;
    if (is_ascii(v))
        return v;
    while (*s) {
        apr_size_t n = 0, len = strlen(s);
        /* 45 bytes become 60 base64 characters: with "=?UTF-8?B?" and "?=" that is 72 */
        while (n < len && n < 45) {
            apr_size_t step = 1;
            unsigned char c = (unsigned char)s[n];
            if (c >= 0xf0) step = 4;
            else if (c >= 0xe0) step = 3;
            else if (c >= 0xc0) step = 2;
            if (n + step > 45 && n > 0)
                break;
            n += step;
        }
        if (n > len)
            n = len;
        {
            const char *w = apr_pstrcat(p, "=?UTF-8?B?", sk_b64_encode(p, (const unsigned char *)s, n), "?=", NULL);
            out = out ? apr_pstrcat(p, out, "\r\n ", w, NULL) : w;
        }
        s += n;
    }
    return out;
}

/* Body with CRLF line ends, ending with one. */
static char *crlf(apr_pool_t *p, const char *body)
{
    apr_size_t n = strlen(body), i, o = 0;
    char *out = apr_palloc(p, 2 * n + 3);
    for (i = 0; i < n; i++) {
        if (body[i] == '\r') {
            if (i + 1 < n && body[i + 1] == '\n')
                i++;
            out[o++] = '\r';
            out[o++] = '\n';
        }
        else if (body[i] == '\n') {
            out[o++] = '\r';
            out[o++] = '\n';
        }
        else
            out[o++] = body[i];
    }
    if (o < 2 || out[o - 2] != '\r' || out[o - 1] != '\n') {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    out[o] = '\0';
    return out;
}

static const char *rfc5322_date(apr_pool_t *p, apr_time_t now)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    apr_time_exp_t t;
    if (apr_time_exp_gmt(&t, now) != APR_SUCCESS)
        return NULL;
    return apr_psprintf(p, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[t.tm_wday % 7], t.tm_mday,
                        months[t.tm_mon % 12], t.tm_year + 1900, t.tm_hour, t.tm_min, t.tm_sec);
}

char *sk_mail_build(apr_pool_t *p, const sk_mail *m, apr_time_t now, const char **err)
{
    const char *from_addr, *to_addr, *date, *domain;
    char *id;
    *err = NULL;
    if (!m || !m->body || !m->subject || !m->from || !m->to) {
        *err = "message incomplete";
        return NULL;
    }
    if (!sk_mail_header_ok(m->from) || !(from_addr = sk_mail_address(p, m->from))) {
        *err = "refused sender address";
        return NULL;
    }
    if (!sk_mail_header_ok(m->to) || !(to_addr = sk_mail_address(p, m->to))) {
        *err = "refused recipient address";
        return NULL;
    }
    if (!sk_mail_header_ok(m->subject) || !sk_utf8_valid(m->subject, strlen(m->subject))) {
        *err = "refused subject";
        return NULL;
    }
    if (!sk_utf8_valid(m->body, strlen(m->body))) {
        *err = "body is not UTF-8";
        return NULL;
    }
    if (!(date = rfc5322_date(p, now)) || !(id = sk_random_id(p, NULL))) {
        *err = "no date or message id";
        return NULL;
    }
    domain = strchr(from_addr, '@') + 1;
    return apr_pstrcat(p,
                       "From: ", is_ascii(m->from) ? m->from : from_addr, "\r\n",
                       "To: ", to_addr, "\r\n",
                       "Subject: ", encode_header(p, m->subject), "\r\n",
                       "Date: ", date, "\r\n",
                       "Message-ID: <", apr_psprintf(p, "%" APR_TIME_T_FMT ".", now), id, "@", domain, ">\r\n",
                       "MIME-Version: 1.0\r\n",
                       "Content-Type: text/plain; charset=utf-8\r\n",
                       "Content-Transfer-Encoding: 8bit\r\n",
                       "Auto-Submitted: auto-generated\r\n",
                       "\r\n",
                       crlf(p, m->body), NULL);
}

/* ---- the messages ---- */

void sk_mail_signin_code(apr_pool_t *p, sk_mail *m, const char *tenant, const char *code, int minutes)
{
    m->subject = apr_pstrcat(p, "Your sign-in code for ", tenant, NULL);
    m->body = apr_psprintf(p,
        "Hello,\n\n"
        "Your code to sign in to %s is:\n\n"
        "    %s\n\n"
        "It is valid for %d minutes and can be used once.\n\n"
        "If you did not ask to sign in, you can ignore this message: nobody can sign in without\n"
        "the code.\n\n"
        "-- \n%s\n", tenant, code, minutes, tenant);
}

void sk_mail_mfa_code(apr_pool_t *p, sk_mail *m, const char *tenant, const char *code, int minutes, int enrol)
{
    m->subject = apr_pstrcat(p, enrol ? "Confirm email verification for " : "Your verification code for ",
                             tenant, NULL);
    m->body = apr_psprintf(p,
        "Hello,\n\n"
        "%s\n\n"
        "    %s\n\n"
        "It is valid for %d minutes and can be used once.\n\n"
        "If you did not ask for it, someone may know your password: change it. Nobody can use\n"
        "the code without your password.\n\n"
        "-- \n%s\n",
        enrol ? apr_pstrcat(p, "To turn on verification by email for your ", tenant, " account, enter this code:",
                            NULL)
              : apr_pstrcat(p, "Your code to finish signing in to ", tenant, " is:", NULL),
        code, minutes, tenant);
}

void sk_mail_password_reset(apr_pool_t *p, sk_mail *m, const char *tenant, const char *link, int minutes)
{
    m->subject = apr_pstrcat(p, "Reset your password for ", tenant, NULL);
    m->body = apr_psprintf(p,
        "Hello,\n\n"
        "Someone asked to reset the password of your %s account. To choose a new password,\n"
        "open this link:\n\n"
        "%s\n\n"
        "The link is valid for %d minutes and can be used once. Setting a new password signs you\n"
        "out everywhere.\n\n"
        "If you did not ask for this, ignore this message: your password stays as it is.\n\n"
        "-- \n%s\n", tenant, link, minutes, tenant);
}

void sk_mail_verify_email(apr_pool_t *p, sk_mail *m, const char *tenant, const char *link, int minutes)
{
    m->subject = apr_pstrcat(p, "Confirm your email address for ", tenant, NULL);
    m->body = apr_psprintf(p,
        "Hello,\n\n"
        "To confirm this email address for your %s account, open this link:\n\n"
        "%s\n\n"
        "The link is valid for %d minutes and can be used once.\n\n"
        "If you did not ask for this, ignore this message.\n\n"
        "-- \n%s\n", tenant, link, minutes, tenant);
}
