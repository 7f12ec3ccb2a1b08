/* Outgoing mail: the messages the identity server sends (sign-in codes, password-reset and
 * email-verification links) built as plain-text RFC 5322 messages, and the transports that deliver
 * them (jobs/mailer.c).
 *
 * Message building is server-agnostic (no httpd types). A header value holding CR, LF or NUL is
 * refused, so no caller-provided text (tenant names, addresses) can add headers. */
#ifndef SK_CORE_MAIL_H
#define SK_CORE_MAIL_H

#include <apr_pools.h>
#include <apr_time.h>

/* ScaiKeyMail transports */
#define SK_MAIL_SENDMAIL 0
#define SK_MAIL_SMTP     1
#define SK_MAIL_DIR      2

#define SK_MAIL_DEFAULT_SENDMAIL "/usr/sbin/sendmail -t -i"
#define SK_MAIL_TIMEOUT_SECONDS 10

typedef struct sk_mail {
    const char *from;      /* "addr@example.com" or "Display Name <addr@example.com>" */
    const char *to;        /* addr@example.com */
    const char *subject;   /* UTF-8; encoded (RFC 2047) when not ASCII */
    const char *body;      /* UTF-8 plain text; line ends become CRLF */
} sk_mail;

/* 1 if v is non-empty and holds no CR, LF or NUL and no other control character but TAB. */
int sk_mail_header_ok(const char *v);

/* The bare address of "Name <addr>" or "addr"; NULL if there is none or it could inject
 * (CR, LF, '<', '>', space or control characters in the address, no '@'). */
const char *sk_mail_address(apr_pool_t *p, const char *mailbox);

/* The complete message (headers From, To, Subject, Date, Message-ID, MIME-Version, Content-Type:
 * text/plain; charset=utf-8, Content-Transfer-Encoding: 8bit; a blank line; the body), CRLF line
 * ends. NULL with *err (a reason without the content) when a header value is refused or missing,
 * or the body is not UTF-8. */
char *sk_mail_build(apr_pool_t *p, const sk_mail *m, apr_time_t now, const char **err);

/* The messages. tenant is the name the tenant shows (its branding name, else its name). Each
 * fills subject and body of m (from and to are left to the caller). */
void sk_mail_signin_code(apr_pool_t *p, sk_mail *m, const char *tenant, const char *code, int minutes);
/* A second-factor code: for a sign-in, or (enrol) to turn email verification on. */
void sk_mail_mfa_code(apr_pool_t *p, sk_mail *m, const char *tenant, const char *code, int minutes, int enrol);
void sk_mail_password_reset(apr_pool_t *p, sk_mail *m, const char *tenant, const char *link, int minutes);
void sk_mail_verify_email(apr_pool_t *p, sk_mail *m, const char *tenant, const char *link, int minutes);

/* Where and how to send (from the ScaiKeyMail directive). */
typedef struct sk_mail_transport {
    int kind;              /* SK_MAIL_* */
    const char *arg;       /* sendmail command, host:port, or directory */
    int timeout;           /* seconds, for the whole delivery */
} sk_mail_transport;

/* Delivers the message text (from sk_mail_build) to `to` (a bare address) from the envelope sender
 * `from` (a bare address). 0 when handed over; -1 with *err (never the message) otherwise.
 * Never takes longer than the transport's timeout (plus a moment to reap a sendmail process). */
int sk_mail_deliver(apr_pool_t *p, const sk_mail_transport *t, const char *from, const char *to,
                    const char *message, const char **err);

#endif
