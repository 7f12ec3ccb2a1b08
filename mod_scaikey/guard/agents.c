/* MCP agents at the edge: their requests per minute, and on locations marked as MCP endpoints
 * (ScaiKeyMCPEndpoint On) the tools they may call.
 *
 * Rate limit: a fixed 60-second window per agent, counted in the shared cache so that every
 * process (and every server sharing a redis or memcache) counts together.
 *
 * Tool filter: the JSON-RPC body of a POST is read before the handler (at most 1 MiB), every
 * "tools/call" in it must name a tool of the agent's allowed_tools, and the body is handed to
 * the handler again (mod_proxy, CGI, ...) by an input filter, byte for byte. */
#include "guard/internal.h"
#include "scaikey.h"
#include "core/secrets.h"
#include "core/jsonget.h"

#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>
#include <apr_strings.h>

APLOG_USE_MODULE(scaikey);

#define REPLAY_FILTER "SCAIKEY_MCP_BODY"
#define WINDOW 60

/* JSON-RPC error codes of the refusals (the -32000 range is the server's own) */
#define RPC_PARSE_ERROR     (-32700)
#define RPC_INVALID_REQUEST (-32600)
#define RPC_TOOL_REFUSED    (-32001)
#define RPC_UNAVAILABLE     (-32002)

/* ---- rate limit ---- */

int sk_guard_rate_limit(request_rec *r, sk_identity *id)
{
    apr_int64_t now = (apr_int64_t)apr_time_sec(apr_time_now()), window = now / WINDOW, retry;
    unsigned char key[32];
    const char *name;
    long count;

    if (!id->agent_id || id->rpm <= 0)
        return OK;
    name = apr_psprintf(r->pool, "rate:%s:%" APR_INT64_T_FMT, id->agent_id, window);
    sk_sha256(name, strlen(name), key);
    count = sk_guard_cache_incr(r, key, apr_time_from_sec((window + 1) * WINDOW + 5));
    sk_guard_req_get(r)->counted = 1;
    if (count < 0 || count <= id->rpm)
        return OK;
    retry = (window + 1) * WINDOW - now;
    if (retry < 1)
        retry = 1;
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SKLOGNO(0812) "guard: agent %s over its %d requests per minute",
                  id->agent_id, id->rpm);
    apr_table_setn(r->err_headers_out, "Retry-After", apr_psprintf(r->pool, "%" APR_INT64_T_FMT, retry));
    return sk_guard_refuse(r, HTTP_TOO_MANY_REQUESTS, NULL,
                           json_pack("{s:s,s:s,s:I}", "error", "rate_limited", "error_description",
                                     apr_psprintf(r->pool, "this agent may make %d requests per minute", id->rpm),
                                     "retry_after", (json_int_t)retry));
}

/* ---- the body, read once and handed on ---- */

typedef struct {
    const char *data;
    apr_size_t len, off;
} replay_ctx;

static apr_status_t replay_filter(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                                  apr_read_type_e block, apr_off_t readbytes)
{
    replay_ctx *ctx = f->ctx;
    apr_bucket_alloc_t *ba = f->c->bucket_alloc;
    apr_size_t n, left;

    if (mode != AP_MODE_READBYTES && mode != AP_MODE_SPECULATIVE && mode != AP_MODE_GETLINE &&
        mode != AP_MODE_EXHAUSTIVE)
        return ap_get_brigade(f->next, bb, mode, block, readbytes);
    left = ctx->len - ctx->off;
    if (left == 0) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
        if (mode != AP_MODE_SPECULATIVE)
            ap_remove_input_filter(f);
        return APR_SUCCESS;
    }
    n = left;
    if (mode == AP_MODE_GETLINE) {
        const char *lf = memchr(ctx->data + ctx->off, '\n', left);
        if (lf)
            n = (apr_size_t)(lf - (ctx->data + ctx->off)) + 1;
        if (readbytes > 0 && (apr_size_t)readbytes < n)
            n = (apr_size_t)readbytes;
    }
    else if (mode != AP_MODE_EXHAUSTIVE && readbytes > 0 && (apr_size_t)readbytes < n) {
        n = (apr_size_t)readbytes;
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(ctx->data + ctx->off, n, f->r->pool, ba));
    if (mode != AP_MODE_SPECULATIVE)
        ctx->off += n;
    if (mode == AP_MODE_EXHAUSTIVE)
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(ba));
    return APR_SUCCESS;
}

/* The whole body, at most SK_GUARD_MAX_BODY bytes: OK or an HTTP status. */
static int read_body(request_rec *r, char **out, apr_size_t *outlen)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_size_t cap = 8192, len = 0;
    char *buf = apr_palloc(r->pool, cap);
    int eos = 0;

    while (!eos) {
        apr_bucket *b;
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ,
                                         HUGE_STRING_LEN);
        if (rv != APR_SUCCESS) {
            apr_brigade_destroy(bb);
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = APR_BUCKET_NEXT(b)) {
            const char *data;
            apr_size_t n;
            if (APR_BUCKET_IS_EOS(b)) {
                eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b))
                continue;
            if (apr_bucket_read(b, &data, &n, APR_BLOCK_READ) != APR_SUCCESS) {
                apr_brigade_destroy(bb);
                return HTTP_BAD_REQUEST;
            }
            if (len + n > SK_GUARD_MAX_BODY) {
                apr_brigade_destroy(bb);
                r->connection->keepalive = AP_CONN_CLOSE;
                return HTTP_REQUEST_ENTITY_TOO_LARGE;
            }
            if (len + n > cap) {
                char *bigger;
                while (cap < len + n)
                    cap *= 2;
                bigger = apr_palloc(r->pool, cap);
                memcpy(bigger, buf, len);
                buf = bigger;
            }
            memcpy(buf + len, data, n);
            len += n;
        }
        apr_brigade_cleanup(bb);
    }
    apr_brigade_destroy(bb);
    *out = buf;
    *outlen = len;
    return OK;
}

/* ---- JSON-RPC ---- */

static json_t *rpc_error(json_t *msg, int code, const char *message, json_t *data)
{
    json_t *id = json_is_object(msg) ? json_object_get(msg, "id") : NULL;
    json_t *err = json_pack("{s:i,s:s}", "code", code, "message", message);
    if (data)
        json_object_set_new(err, "data", data);
    return json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error", err);
}

static int refuse_rpc(request_rec *r, int status, json_t *body)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SKLOGNO(0813) "guard: MCP request refused (%d)", status);
    if (status == HTTP_SERVICE_UNAVAILABLE)
        apr_table_setn(r->err_headers_out, "Retry-After", "2");
    return sk_guard_refuse(r, status, NULL, body);
}

/* The tool a message calls, or NULL when it is not a tools/call. *bad is set for a tools/call
 * without a usable name. */
static const char *tool_of(json_t *msg, int *bad)
{
    const char *method = json_string_value(json_object_get(msg, "method"));
    json_t *name;
    *bad = 0;
    if (!method || strcmp(method, "tools/call"))
        return NULL;
    name = json_object_get(json_object_get(msg, "params"), "name");
    if (!json_is_string(name)) {
        *bad = 1;
        return NULL;
    }
    return json_string_value(name);
}

/* Checks every message of a request (one, or a batch): OK, or the refusal, which lists an error
 * for each message refused. A tool outside the agent's list makes it 403, a message that is not
 * JSON-RPC 400, tools that cannot be known (the database was never reached for this agent) 503. */
static int check_messages(request_rec *r, sk_identity *id, json_t *doc)
{
    json_t *msgs = json_is_array(doc) ? doc : NULL, *refusals, *msg;
    size_t i, n = msgs ? json_array_size(msgs) : 1;
    int status = OK;

    refusals = json_array();
    if (msgs && n == 0) {
        json_array_append_new(refusals, rpc_error(NULL, RPC_INVALID_REQUEST, "Invalid Request", NULL));
        status = HTTP_BAD_REQUEST;
    }
    for (i = 0; i < n; i++) {
        const char *tool;
        int bad;
        msg = msgs ? json_array_get(msgs, i) : doc;
        tool = json_is_object(msg) ? tool_of(msg, &bad) : (bad = 1, NULL);
        if (bad) {
            json_array_append_new(refusals, rpc_error(msg, RPC_INVALID_REQUEST,
                                                      json_is_object(msg) ? "tools/call needs params.name"
                                                                          : "Invalid Request", NULL));
            if (status != HTTP_FORBIDDEN)
                status = HTTP_BAD_REQUEST;
        }
        else if (tool && !id->tools) {
            json_array_append_new(refusals, rpc_error(msg, RPC_UNAVAILABLE,
                                                      "tool permissions cannot be checked right now", NULL));
            if (status == OK)
                status = HTTP_SERVICE_UNAVAILABLE;
        }
        else if (tool && !sk_jarray_has(id->tools, tool)) {
            json_array_append_new(refusals, rpc_error(msg, RPC_TOOL_REFUSED,
                                                      apr_psprintf(r->pool, "tool '%s' is not allowed for this agent",
                                                                   tool),
                                                      json_pack("{s:s}", "tool", tool)));
            status = HTTP_FORBIDDEN;
        }
    }
    if (status == OK) {
        json_decref(refusals);
        return OK;
    }
    if (!msgs) {
        json_t *one = json_incref(json_array_get(refusals, 0));
        json_decref(refusals);
        return refuse_rpc(r, status, one);
    }
    return refuse_rpc(r, status, refusals);
}

int sk_guard_mcp_filter(request_rec *r, sk_identity *id)
{
    sk_guard_dir *d = sk_guard_dir_get(r);
    replay_ctx *ctx;
    json_t *doc;
    char *body = NULL;
    apr_size_t len = 0;
    int rc;

    if (d->mcp != 1 || !id->agent_id || r->method_number != M_POST)
        return OK;
    if ((rc = read_body(r, &body, &len)) != OK) {
        if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE)
            return refuse_rpc(r, rc, rpc_error(NULL, RPC_INVALID_REQUEST, "request too large", NULL));
        return rc;
    }
    /* compressed or otherwise unreadable bodies are refused: what the filter cannot read, it
     * cannot let through */
    doc = json_loadb(body, len, 0, NULL);
    if (!doc)
        return refuse_rpc(r, HTTP_BAD_REQUEST, rpc_error(NULL, RPC_PARSE_ERROR, "Parse error", NULL));
    rc = check_messages(r, id, doc);
    json_decref(doc);
    if (rc != OK)
        return rc;
    ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    ctx->data = body;
    ctx->len = len;
    ap_add_input_filter(REPLAY_FILTER, ctx, r, r->connection);
    return OK;
}

void sk_guard_agents_register(apr_pool_t *p)
{
    /* just above HTTP_IN: request filters added later (inflate, ...) see the body as before */
    ap_register_input_filter(REPLAY_FILTER, replay_filter, NULL, AP_FTYPE_PROTOCOL - 1);
}
