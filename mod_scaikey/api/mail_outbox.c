/* Mail that leaves after the response.
 *
 * Delivering through sendmail or SMTP takes as long as the mail server takes, and the sending
 * endpoints (email code, forgot password, MFA code, email verification) answer alike whether or
 * not the address has an account: if they waited for the delivery, their answer time would tell
 * which. So a message for those transports is only queued on the request, and delivered in the
 * log_transaction phase, which Apache runs once the response has been written to the client.
 * The directory transport (development and tests) writes a local file in constant time and
 * delivers at once. A failed delivery is logged and audited ("mail.send" failure) as before;
 * the client has its answer by then. */
#include "api/mail_flows.h"
#include "scaikey.h"

#include <http_log.h>
#include <http_request.h>
#include <http_protocol.h>
#include <apr_tables.h>

APLOG_USE_MODULE(scaikey);

#define OUTBOX "scaikey-mail-outbox"

typedef struct {
    sk_req *q;
    sk_mail_transport t;
    const char *from, *to, *message, *kind, *tenant_id, *user_id;
} queued;

void sk_mail_outbox_add(sk_req *q, const sk_mail_transport *t, const char *from, const char *to,
                        const char *message, const char *kind, const char *tenant_id, const char *user_id)
{
    apr_array_header_t *box = NULL;
    queued *m;
    apr_pool_userdata_get((void **)&box, OUTBOX, q->r->pool);
    if (!box) {
        box = apr_array_make(q->r->pool, 1, sizeof(queued));
        apr_pool_userdata_setn(box, OUTBOX, NULL, q->r->pool);
    }
    m = apr_array_push(box);
    m->q = q;
    m->t = *t;
    m->from = from;
    m->to = to;
    m->message = message;
    m->kind = kind;
    m->tenant_id = tenant_id;
    m->user_id = user_id;
}

static int flush(request_rec *r)
{
    apr_array_header_t *box = NULL;
    int i;
    apr_pool_userdata_get((void **)&box, OUTBOX, r->pool);
    if (!box)
        return DECLINED;
    /* once, even if another module runs this phase again */
    apr_pool_userdata_setn(NULL, OUTBOX, NULL, r->pool);
    for (i = 0; i < box->nelts; i++) {
        queued *m = &APR_ARRAY_IDX(box, i, queued);
        const char *err = NULL;
        if (sk_mail_deliver(r->pool, &m->t, m->from, m->to, m->message, &err) != 0)
            sk_mail_flow_failed(m->q, m->kind, m->tenant_id, m->user_id, err);
    }
    return DECLINED;
}

void sk_mail_outbox_register(apr_pool_t *p)
{
    (void)p;
    ap_hook_log_transaction(flush, NULL, NULL, APR_HOOK_MIDDLE);
}
