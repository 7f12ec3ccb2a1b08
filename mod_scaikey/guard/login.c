/* Browser sign-in for guarded locations (ScaiKeyLogin SLUG|platform CLIENT_ID [CALLBACK]).
 *
 * The guard is then a relying party of the hosted login, inside Apache:
 *   1. a browser (GET or HEAD that accepts text/html) without a credential, or whose sign-in cookie
 *      no longer verifies, is sent to the issuer's authorization endpoint (code flow, PKCE S256,
 *      state), with a state cookie that holds the state, the PKCE verifier and the URL to come back
 *      to, MACed with the master key;
 *   2. the hosted login (or the SSO session) sends it to the callback, a path inside the location;
 *      the guard checks state and iss, redeems the code itself (the same one-time, client-bound,
 *      PKCE-checked code as the token endpoint, in one transaction with a session row and the audit
 *      row) and sets a sign-in cookie holding an access token of the application;
 *   3. that cookie is the browser's credential: the same verification as a bearer token, so
 *      revoking the session, disabling the user or suspending the tenant ends it within the
 *      location's revocation delay.
 * Clients that do not ask for HTML keep getting the RFC 6750 answers. */
#include "guard/internal.h"
#include "scaikey.h"
#include "config.h"
#include "startup.h"
#include "core/secrets.h"
#include "core/tokens.h"
#include "core/audit.h"
#include "core/pooljson.h"
#include "login/login.h"
#include "http/validate.h"
#include "core/jsonget.h"

#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>
#include <apr_lib.h>

APLOG_USE_MODULE(scaikey);

#define STATE_COOKIE "scaikey_gs_"
#define TOKEN_COOKIE "scaikey_g_"
#define STATE_SECONDS 600
#define MAX_PARAM 2048

int sk_guard_login_enabled(request_rec *r)
{
    sk_guard_dir *d = sk_guard_dir_get(r);
    return d && d->login_client != NULL;
}

/* Cookie names of this location: one pair per callback and application, so that several guarded
 * locations of one host keep their own sign-ins. */
static const char *cookie_name(request_rec *r, const sk_guard_dir *d, const char *base)
{
    unsigned char md[32];
    const char *id = apr_pstrcat(r->pool, d->login_callback, " ", d->login_client, NULL);
    sk_sha256(id, strlen(id), md);
    return apr_psprintf(r->pool, "%s%s%02x%02x%02x%02x", sk_config_production(sk_config_get(r->server)) ? "__Host-" : "",
                        base, md[0], md[1], md[2], md[3]);
}

static void set_cookie(request_rec *r, const char *name, const char *value, int max_age)
{
    apr_table_addn(r->err_headers_out, "Set-Cookie",
                   apr_psprintf(r->pool, "%s=%s; Path=/; HttpOnly; SameSite=Lax%s; Max-Age=%d", name,
                                value ? value : "", sk_config_production(sk_config_get(r->server)) ? "; Secure" : "",
                                max_age));
}

static const char *issuer(request_rec *r, const sk_guard_dir *d)
{
    sk_config *c = sk_config_get(r->server);
    return d->login_slug ? apr_pstrcat(r->pool, c->issuer, "/api/v1/auth/tenants/", d->login_slug, NULL)
                         : sk_config_platform_issuer(r->pool, c);
}

static const char *callback_url(request_rec *r, const sk_guard_dir *d)
{
    return ap_construct_url(r->pool, d->login_callback, r);
}

static const char *mac(request_rec *r, const char *payload)
{
    sk_config *c = sk_config_get(r->server);
    const char *data = apr_pstrcat(r->pool, "guard-login-state:", payload, NULL);
    return sk_hmac_sha256_hex(r->pool, c->master_key, sizeof(c->master_key), data, strlen(data));
}

/* ---- the sign-in cookie as a credential ---- */

int sk_guard_login_credential(request_rec *r, sk_credential *cred)
{
    sk_guard_dir *d = sk_guard_dir_get(r);
    const char *v;
    if (!d || !d->login_client || !(v = sk_cookie_read(r, cookie_name(r, d, TOKEN_COOKIE))) || !*v)
        return 0;
    cred->kind = SK_CRED_JWT;
    cred->value = v;
    cred->problem = NULL;
    return 1;
}

int sk_guard_login_browser(request_rec *r)
{
    const char *accept = apr_table_get(r->headers_in, "Accept");
    if (!sk_guard_login_enabled(r) || r->main || r->prev)
        return 0;
    if (r->method_number != M_GET)       /* HEAD too */
        return 0;
    return accept && ap_strcasestr(accept, "text/html") != NULL;
}

/* ---- step 1: to the authorization endpoint ---- */

static const char *query_escape(apr_pool_t *p, const char *s)
{
    /* ap_escape_urlencoded escapes everything but unreserved characters (space as +) */
    return ap_escape_urlencoded(p, s);
}

int sk_guard_login_redirect(request_rec *r, int clear_token)
{
    sk_guard_dir *d = sk_guard_dir_get(r);
    const char *state = sk_random_token(r->pool, NULL, 32), *verifier = sk_random_token(r->pool, NULL, 32);
    const char *back = r->unparsed_uri && r->unparsed_uri[0] == '/' ? r->unparsed_uri : "/";
    unsigned char md[32];
    json_t *o;
    char *text;
    const char *payload, *url;

    if (!state || !verifier)
        return HTTP_INTERNAL_SERVER_ERROR;
    if (strlen(back) > MAX_PARAM)
        back = "/";
    o = json_pack("{s:s,s:s,s:s,s:I}", "s", state, "v", verifier, "u", back, "t",
                  (json_int_t)apr_time_sec(r->request_time));
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return HTTP_INTERNAL_SERVER_ERROR;
    payload = sk_b64url_encode(r->pool, (const unsigned char *)text, strlen(text));
    free(text);
    sk_sha256(verifier, strlen(verifier), md);
    url = apr_pstrcat(r->pool, issuer(r, d), d->login_slug ? "/oauth/authorize" : "/authorize",
                      "?response_type=code&client_id=", query_escape(r->pool, d->login_client),
                      "&redirect_uri=", query_escape(r->pool, callback_url(r, d)),
                      "&state=", state,
                      "&code_challenge=", sk_b64url_encode(r->pool, md, sizeof(md)),
                      "&code_challenge_method=S256", NULL);
    set_cookie(r, cookie_name(r, d, STATE_COOKIE), apr_pstrcat(r->pool, payload, ".", mac(r, payload), NULL),
               STATE_SECONDS);
    if (clear_token)
        set_cookie(r, cookie_name(r, d, TOKEN_COOKIE), "", 0);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "Location", url);
    return HTTP_MOVED_TEMPORARILY;
}

/* ---- step 2: the callback ---- */

int sk_guard_login_is_callback(request_rec *r)
{
    sk_guard_dir *d = sk_guard_dir_get(r);
    return d && d->login_client && r->uri && !strcmp(r->uri, d->login_callback) && !r->main && !r->prev;
}

static int refuse(request_rec *r, int status, const char *error, const char *description)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SKLOGNO(0841) "guard sign-in refused: %s", description);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    return sk_guard_refuse(r, status, NULL, json_pack("{s:s,s:s}", "error", error, "error_description", description));
}

/* The state cookie's payload when its MAC holds and it is young enough; NULL otherwise. */
static json_t *state_of(request_rec *r, const sk_guard_dir *d)
{
    const char *v = sk_cookie_read(r, cookie_name(r, d, STATE_COOKIE)), *dot;
    const char *payload;
    unsigned char *raw;
    apr_size_t n;
    json_t *o;
    json_int_t t;
    if (!v || !(dot = strrchr(v, '.')) || strlen(v) > 4 * MAX_PARAM)
        return NULL;
    payload = apr_pstrmemdup(r->pool, v, (apr_size_t)(dot - v));
    if (!sk_ct_streq(dot + 1, mac(r, payload)))
        return NULL;
    if (!(raw = sk_b64url_decode(r->pool, payload, &n)) ||
        !(o = sk_pool_json(r->pool, json_loadb((const char *)raw, n, 0, NULL))))
        return NULL;
    t = json_integer_value(json_object_get(o, "t"));
    if (!json_is_string(json_object_get(o, "s")) || !json_is_string(json_object_get(o, "v")) ||
        !json_is_string(json_object_get(o, "u")) || t <= 0 || t + STATE_SECONDS < apr_time_sec(r->request_time))
        return NULL;
    return o;
}

/* An error code of the authorization response as it may be repeated: [a-z_], else a generic one. */
static const char *error_code(const char *e)
{
    const char *c;
    for (c = e; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || *c == '_'))
            return "invalid_request";
    return *e && c - e <= 64 ? e : "invalid_request";
}

/* One value of a query parameter (decoded); NULL when absent, undecodable or too long. *repeated
 * is set when the name appears more than once. */
static const char *param(request_rec *r, const char *name, int *repeated)
{
    char *copy, *pair, *last;
    const char *v = NULL;
    size_t n = strlen(name);
    if (!r->args)
        return NULL;
    copy = apr_pstrdup(r->pool, r->args);
    for (pair = apr_strtok(copy, "&", &last); pair; pair = apr_strtok(NULL, "&", &last)) {
        if (strncmp(pair, name, n) || (pair[n] != '=' && pair[n] != '\0'))
            continue;
        if (v)
            *repeated = 1;
        v = pair[n] == '=' ? pair + n + 1 : "";
    }
    if (!v || strlen(v) > MAX_PARAM)
        return NULL;
    copy = apr_pstrdup(r->pool, v);
    return ap_unescape_urlencoded(copy) == OK ? copy : NULL;
}

/* Spends the code for this location's application, opens the session and writes the audit row,
 * in one transaction. OK with the user (pool JSON), *sid, *scope and *ttl; else a status. */
static int redeem(request_rec *r, const sk_guard_dir *d, const char *code, const char *verifier, json_t **user,
                  const char **sid, const char **scope, int *ttl)
{
    sk_db *db = sk_guard_db(r);
    const char *digest = sk_sha256_hex(r->pool, code), *challenge, *family = NULL;
    unsigned char md[32];
    json_t *row = NULL;
    sk_audit a = { 0 };
    sk_db_status st;

    if (!db)
        return refuse(r, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "the sign-in cannot be completed right now");
    if (sk_db_begin(db) != SK_DB_OK)
        goto unavailable;
    st = SK_QJ(db, "code_spend", &row, digest, d->login_client);
    sk_pool_json(r->pool, row);
    if (st == SK_DB_NOTFOUND || (st == SK_DB_OK && !json_is_true(json_object_get(row, "spent")))) {
        sk_db_rollback(db);
        if (st == SK_DB_OK && json_is_true(json_object_get(row, "used"))) {
            /* a code presented twice: what it issued ends (RFC 6749 section 4.1.2) */
            json_t *gone = NULL;
            if (SK_QJ(db, "code_reuse_revoke", &gone, digest) == SK_DB_OK)
                json_decref(gone);
        }
        return refuse(r, HTTP_BAD_REQUEST, "invalid_grant", "the authorization code is invalid, used or expired");
    }
    if (st != SK_DB_OK)
        goto unavailable;
    /* spent from here on: a refusal commits that */
    sk_sha256(verifier, strlen(verifier), md);
    challenge = sk_jstr(row, "code_challenge");
    if (!sk_jstr(row, "redirect_uri") || strcmp(sk_jstr(row, "redirect_uri"), callback_url(r, d)) || !challenge ||
        !sk_ct_streq(challenge, sk_b64url_encode(r->pool, md, sizeof(md))) ||
        !json_is_true(json_object_get(row, "user_live"))) {
        sk_db_commit(db);
        return refuse(r, HTTP_BAD_REQUEST, "invalid_grant", "the authorization code does not belong to this sign-in");
    }
    *user = json_object_get(row, "user");
    *scope = sk_jstr(row, "scope") ? sk_jstr(row, "scope") : "";
    *ttl = (int)json_integer_value(json_object_get(row, "token_lifetime"));
    if (*ttl <= 0)
        *ttl = sk_config_access_ttl(sk_config_get(r->server));
    a.action = "oauth.authorization_code";
    a.result = "success";
    a.actor_id = sk_jstr(*user, "id");
    a.actor_email = sk_jstr(*user, "email");
    a.actor_type = "user";
    a.tenant_id = sk_jstr(*user, "tenant_id");
    a.partner_id = sk_jstr(row, "partner_id");
    a.resource_type = "session";
    a.ip = r->useragent_ip;
    a.user_agent = apr_table_get(r->headers_in, "User-Agent");
    a.request_id = apr_table_get(r->subprocess_env, "UNIQUE_ID");
    a.details = sk_pool_json(r->pool, json_pack("{s:s,s:s?,s:s}", "client_id", d->login_client, "sso_session_id",
                                                 sk_jstr(row, "session_id"), "via", "guard"));
    if ((st = SK_QV(db, "session_create", sid, a.actor_id, a.tenant_id, a.partner_id, "user", d->login_client,
                    a.ip, a.user_agent, apr_itoa(r->pool, *ttl))) != SK_DB_OK ||
        (st = SK_QV(db, "code_bind_grant", &family, *sid, digest)) != SK_DB_OK ||
        (a.resource_id = *sid, st = sk_audit_write(db, &a)) != SK_DB_OK || (st = sk_db_commit(db)) != SK_DB_OK)
        goto unavailable;
    return OK;
unavailable:
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, SKLOGNO(0842) "guard sign-in not completed: %s", sk_db_error(db));
    sk_db_rollback(db);
    sk_guard_db_failed(r, SK_DB_ERROR);
    return refuse(r, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "the sign-in cannot be completed right now");
}

int sk_guard_login_callback(request_rec *r)
{
    sk_guard_dir *d = sk_guard_dir_get(r);
    json_t *state, *user = NULL;
    const char *code, *st, *iss, *err, *sid = NULL, *scope = NULL, *jwt;
    sk_token_claims c = { 0 };
    int repeated = 0, ttl = 0, rc;

    code = param(r, "code", &repeated);
    st = param(r, "state", &repeated);
    iss = param(r, "iss", &repeated);
    err = param(r, "error", &repeated);
    /* the state cookie is used up whatever happens */
    set_cookie(r, cookie_name(r, d, STATE_COOKIE), "", 0);
    if (repeated)
        return refuse(r, HTTP_BAD_REQUEST, "invalid_request", "a parameter was repeated");
    if (!(state = state_of(r, d)))
        return refuse(r, HTTP_BAD_REQUEST, "invalid_request",
                      "the sign-in was not started here or took too long; open the page again");
    if (!st || !sk_ct_streq(st, sk_jstr(state, "s")))
        return refuse(r, HTTP_BAD_REQUEST, "invalid_request", "state does not match the sign-in started here");
    /* RFC 9207: the answer must come from the issuer this location signs in with */
    if (!iss || strcmp(iss, issuer(r, d)))
        return refuse(r, HTTP_BAD_REQUEST, "invalid_request", "the answer comes from another issuer");
    if (err)
        return refuse(r, !strcmp(err, "access_denied") ? HTTP_FORBIDDEN : HTTP_UNAUTHORIZED,
                      error_code(err), "the sign-in did not succeed");
    if (!code || !*code)
        return refuse(r, HTTP_BAD_REQUEST, "invalid_request", "code is required");
    if ((rc = redeem(r, d, code, sk_jstr(state, "v"), &user, &sid, &scope, &ttl)) != OK)
        return rc;

    c.iss = issuer(r, d);
    c.sub = sk_jstr(user, "id");
    c.aud = d->login_client;
    c.client_id = d->login_client;
    c.scope = scope;
    c.sid = sid;
    c.tenant_id = sk_jstr(user, "tenant_id");
    c.email = sk_jstr(user, "email");
    c.ttl = ttl;
    if (!(jwt = sk_token_issue(r->pool, sk_startup_keyring(), &c, (long long)apr_time_sec(r->request_time), NULL)))
        return refuse(r, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "no signing key is available");
    set_cookie(r, cookie_name(r, d, TOKEN_COOKIE), jwt, ttl);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, SKLOGNO(0843) "guard sign-in of user %s (session %s)", c.sub, sid);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "Location", ap_construct_url(r->pool, sk_jstr(state, "u"), r));
    return HTTP_MOVED_TEMPORARILY;
}

/* ---- the directive ---- */

const char *sk_guard_set_login(cmd_parms *cmd, void *dc, const char *who, const char *client, const char *callback)
{
    sk_guard_dir *d = dc;
    const char *c;
    if (strcmp(who, "platform") && !sk_valid_slug(who))
        return apr_psprintf(cmd->pool, "ScaiKeyLogin: '%s' is neither a tenant slug nor 'platform'", who);
    for (c = client; *c; c++)
        if (!apr_isalnum(*c) && *c != '_' && *c != '-' && *c != '.')
            break;
    if (!*client || *c || strlen(client) > 200)
        return apr_psprintf(cmd->pool, "ScaiKeyLogin: '%s' is not a client_id", client);
    if (!callback) {
        size_t n;
        if (!cmd->path || cmd->path[0] != '/' || strpbrk(cmd->path, "*?[(^$"))
            return "ScaiKeyLogin needs a callback path (third argument) outside a plain <Location>";
        n = strlen(cmd->path);
        callback = apr_pstrcat(cmd->pool, apr_pstrmemdup(cmd->pool, cmd->path, n && cmd->path[n - 1] == '/' ? n - 1 : n),
                               "/.scaikey/callback", NULL);
    }
    for (c = callback; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '"' || *c == '\\' || *c == '?' || *c == '#')
            break;
    if (callback[0] != '/' || *c)
        return apr_psprintf(cmd->pool, "ScaiKeyLogin: '%s' is not a path (it must start with / and sit inside "
                                       "the protected location)", callback);
    d->login_slug = strcmp(who, "platform") ? who : NULL;
    d->login_client = client;
    d->login_callback = callback;
    return NULL;
}
