/* Directives of mod_scaikey. Each setter checks its value so a bad configuration stops Apache at
 * start-up with a clear message instead of failing at the first request. */
#include "config.h"
#include "scaikey.h"
#include "core/secrets.h"
#include "http/validate.h"
#include "guard/guard.h"
#include "core/mail.h"

#include <apr_strings.h>
#include <apr_file_io.h>
#include <apr_lib.h>
#include <string.h>
#include <sys/stat.h>

APLOG_USE_MODULE(scaikey);

#define DEFAULT_KEY_ROTATION_INTERVAL (90 * 86400)
#define DEFAULT_KEY_ROTATION_CHECK 60
#define DEFAULT_ACCESS_TTL   3600
#define DEFAULT_REFRESH_TTL  (30 * 86400)
#define DEFAULT_CLOCK_SKEW   30
#define DEFAULT_MAX_BODY     (64 * 1024)
#define DEFAULT_THROTTLE_ACCOUNT 5
#define DEFAULT_THROTTLE_IP  20
#define DEFAULT_THROTTLE_WINDOW 900

void *sk_config_create(apr_pool_t *p, server_rec *s)
{
    sk_config *c = apr_pcalloc(p, sizeof(*c));
    c->alg = SK_UNSET;
    c->key_rotation_interval = SK_UNSET;
    c->key_rotation_check = SK_UNSET;
    c->access_ttl = SK_UNSET;
    c->refresh_ttl = SK_UNSET;
    c->clock_skew = SK_UNSET;
    c->production = SK_UNSET;
    c->max_body = SK_UNSET;
    c->throttle_account = SK_UNSET;
    c->throttle_ip = SK_UNSET;
    c->throttle_window = SK_UNSET;
    c->mail_kind = SK_UNSET;
    return c;
}

#define MERGE_PTR(f) m->f = add->f ? add->f : base->f
#define MERGE_INT(f) m->f = (add->f != SK_UNSET) ? add->f : base->f

void *sk_config_merge(apr_pool_t *p, void *basev, void *addv)
{
    sk_config *base = basev, *add = addv, *m = apr_pcalloc(p, sizeof(*m));
    MERGE_PTR(issuer);
    MERGE_PTR(master_key_file);
    MERGE_PTR(bootstrap_email);
    MERGE_PTR(bootstrap_secret_file);
    MERGE_INT(alg);
    MERGE_INT(key_rotation_interval);
    MERGE_INT(key_rotation_check);
    MERGE_INT(access_ttl);
    MERGE_INT(refresh_ttl);
    MERGE_INT(clock_skew);
    MERGE_INT(production);
    MERGE_INT(max_body);
    MERGE_INT(throttle_account);
    MERGE_INT(throttle_ip);
    MERGE_INT(throttle_window);
    MERGE_INT(mail_kind);
    MERGE_PTR(mail_arg);
    MERGE_PTR(mail_from);
    return m;
}

sk_config *sk_config_get(server_rec *s)
{
    return ap_get_module_config(s->module_config, &scaikey_module);
}

sk_alg sk_config_alg(const sk_config *c) { return c->alg == SK_UNSET ? SK_ALG_RS256 : (sk_alg)c->alg; }
int sk_config_key_rotation_interval(const sk_config *c)
{
    return c->key_rotation_interval == SK_UNSET ? DEFAULT_KEY_ROTATION_INTERVAL : c->key_rotation_interval;
}
int sk_config_key_rotation_check(const sk_config *c)
{
    return c->key_rotation_check == SK_UNSET ? DEFAULT_KEY_ROTATION_CHECK : c->key_rotation_check;
}
int sk_config_access_ttl(const sk_config *c) { return c->access_ttl == SK_UNSET ? DEFAULT_ACCESS_TTL : c->access_ttl; }
int sk_config_refresh_ttl(const sk_config *c) { return c->refresh_ttl == SK_UNSET ? DEFAULT_REFRESH_TTL : c->refresh_ttl; }
int sk_config_clock_skew(const sk_config *c) { return c->clock_skew == SK_UNSET ? DEFAULT_CLOCK_SKEW : c->clock_skew; }
int sk_config_production(const sk_config *c) { return c->production == SK_UNSET ? 0 : c->production; }
apr_off_t sk_config_max_body(const sk_config *c) { return c->max_body == SK_UNSET ? DEFAULT_MAX_BODY : c->max_body; }

const char *sk_config_platform_issuer(apr_pool_t *p, const sk_config *c)
{
    return apr_pstrcat(p, c->issuer ? c->issuer : "", "/api/v1/platform/oauth", NULL);
}

/* ---- setters ---- */

static const char *parse_int(cmd_parms *cmd, const char *arg, long min, long max, int *out)
{
    char *end;
    apr_int64_t v;
    if (!arg || !*arg)
        return apr_psprintf(cmd->pool, "%s needs a number", cmd->directive->directive);
    v = apr_strtoi64(arg, &end, 10);
    if (*end || v < min || v > max)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number from %ld to %ld",
                            cmd->directive->directive, arg, min, max);
    *out = (int)v;
    return NULL;
}

/* The identity server is one per Apache: its directives belong to the main server. */
#define MAIN_ONLY(cmd) \
    do { \
        if ((cmd)->server->is_virtual) \
            return apr_psprintf((cmd)->pool, "%s belongs in the main server configuration, " \
                                "not in a <VirtualHost>", (cmd)->directive->directive); \
    } while (0)

static const char *set_issuer(cmd_parms *cmd, void *dc, const char *arg)
{
    MAIN_ONLY(cmd);
    sk_config *c = sk_config_get(cmd->server);
    apr_size_t n = strlen(arg);
    const char *host;
    if (strncmp(arg, "https://", 8) && strncmp(arg, "http://", 7))
        return "ScaiKeyIssuer must be an absolute http:// or https:// URL, e.g. https://id.example.com";
    host = strstr(arg, "://") + 3;
    if (!*host || *host == '/')
        return "ScaiKeyIssuer must name a host, e.g. https://id.example.com";
    if (strchr(arg, '?') || strchr(arg, '#') || strchr(arg, ' '))
        return "ScaiKeyIssuer must not contain a query, a fragment or spaces";
    while (n > 0 && arg[n - 1] == '/')
        n--;
    c->issuer = apr_pstrndup(cmd->pool, arg, n);
    return NULL;
}

static const char *set_master_key_file(cmd_parms *cmd, void *dc, const char *arg)
{
    MAIN_ONLY(cmd);
    sk_config_get(cmd->server)->master_key_file = ap_server_root_relative(cmd->pool, arg);
    return NULL;
}

static const char *set_alg(cmd_parms *cmd, void *dc, const char *arg)
{
    MAIN_ONLY(cmd);
    sk_alg a;
    if (sk_alg_parse(arg, &a) != 0)
        return "ScaiKeySigningAlg must be RS256 or ES256";
    sk_config_get(cmd->server)->alg = a;
    return NULL;
}

static const char *set_key_rotation(cmd_parms *cmd, void *dc, const char *arg)
{
    MAIN_ONLY(cmd);
    sk_config *c = sk_config_get(cmd->server);
    if (!strcmp(cmd->info, "interval"))
        return parse_int(cmd, arg, 0, 3650 * 86400, &c->key_rotation_interval);
    return parse_int(cmd, arg, 1, 86400, &c->key_rotation_check);
}

static const char *set_ttl(cmd_parms *cmd, void *dc, const char *arg)
{
    MAIN_ONLY(cmd);
    sk_config *c = sk_config_get(cmd->server);
    const char *which = cmd->info;
    if (!strcmp(which, "access"))
        return parse_int(cmd, arg, 1, 86400, &c->access_ttl);
    if (!strcmp(which, "refresh"))
        return parse_int(cmd, arg, 60, 365 * 86400, &c->refresh_ttl);
    return parse_int(cmd, arg, 0, 600, &c->clock_skew);
}

static const char *set_mode(cmd_parms *cmd, void *dc, const char *arg)
{
    MAIN_ONLY(cmd);
    sk_config *c = sk_config_get(cmd->server);
    if (!strcasecmp(arg, "production"))
        c->production = 1;
    else if (!strcasecmp(arg, "development"))
        c->production = 0;
    else
        return "ScaiKeyMode must be production or development";
    return NULL;
}

static const char *set_bootstrap(cmd_parms *cmd, void *dc, const char *email, const char *file)
{
    MAIN_ONLY(cmd);
    sk_config *c = sk_config_get(cmd->server);
    if (!sk_valid_email(email))
        return "ScaiKeyBootstrapAdmin: the first argument must be an email address with a domain, "
               "e.g. admin@example.com";
    c->bootstrap_email = email;
    c->bootstrap_secret_file = ap_server_root_relative(cmd->pool, file);
    return NULL;
}

static const char *set_max_body(cmd_parms *cmd, void *dc, const char *arg)
{
    MAIN_ONLY(cmd);
    int v = 0;
    const char *err = parse_int(cmd, arg, 1024, 16 * 1024 * 1024, &v);
    if (!err)
        sk_config_get(cmd->server)->max_body = v;
    return err;
}

static const char *set_throttle(cmd_parms *cmd, void *dc, const char *acct, const char *ip, const char *win)
{
    MAIN_ONLY(cmd);
    sk_config *c = sk_config_get(cmd->server);
    const char *err;
    if (!ip || !win)
        return "ScaiKeyLoginThrottle takes three numbers: ACCOUNT_FAILURES IP_FAILURES WINDOW_SECONDS";
    if ((err = parse_int(cmd, acct, 1, 1000000, &c->throttle_account)) ||
        (err = parse_int(cmd, ip, 1, 1000000, &c->throttle_ip)) ||
        (err = parse_int(cmd, win, 1, 86400, &c->throttle_window)))
        return err;
    return NULL;
}

static const char *set_mail(cmd_parms *cmd, void *dc, const char *kind, const char *arg)
{
    MAIN_ONLY(cmd);
    sk_config *c = sk_config_get(cmd->server);
    if (!strcasecmp(kind, "sendmail")) {
        char **argv = NULL;
        if (arg && (apr_tokenize_to_argv(arg, &argv, cmd->pool) != APR_SUCCESS || !argv[0] || argv[0][0] != '/'))
            return "ScaiKeyMail sendmail: the command must start with an absolute path, "
                   "e.g. \"/usr/sbin/sendmail -t -i\"";
        c->mail_kind = SK_MAIL_SENDMAIL;
        c->mail_arg = arg ? arg : SK_MAIL_DEFAULT_SENDMAIL;
        return NULL;
    }
    if (!strcasecmp(kind, "smtp")) {
        char *host = NULL, *scope = NULL;
        apr_port_t port = 0;
        if (!arg || apr_parse_addr_port(&host, &scope, &port, arg, cmd->pool) != APR_SUCCESS || !host || scope)
            return "ScaiKeyMail smtp needs HOST:PORT, e.g. ScaiKeyMail smtp mail.example.com:25";
        c->mail_kind = SK_MAIL_SMTP;
        c->mail_arg = port ? arg : apr_pstrcat(cmd->pool, arg, ":25", NULL);
        return NULL;
    }
    if (!strcasecmp(kind, "dir")) {
        if (!arg || !*arg)
            return "ScaiKeyMail dir needs a directory, e.g. ScaiKeyMail dir /var/spool/scaikey-mail";
        c->mail_kind = SK_MAIL_DIR;
        c->mail_arg = ap_server_root_relative(cmd->pool, arg);
        return NULL;
    }
    return "ScaiKeyMail takes sendmail [COMMAND], smtp HOST:PORT or dir DIRECTORY";
}

static const char *set_mail_from(cmd_parms *cmd, void *dc, const char *arg)
{
    MAIN_ONLY(cmd);
    if (!sk_mail_address(cmd->pool, arg))
        return "ScaiKeyMailFrom must be an address, e.g. noreply@example.com or "
               "\"Example ID <noreply@example.com>\"";
    sk_config_get(cmd->server)->mail_from = arg;
    return NULL;
}

void sk_config_mail_transport(const sk_config *c, struct sk_mail_transport *t)
{
    t->kind = c->mail_kind == SK_UNSET ? SK_MAIL_SENDMAIL : c->mail_kind;
    t->arg = c->mail_arg ? c->mail_arg : SK_MAIL_DEFAULT_SENDMAIL;
    t->timeout = SK_MAIL_TIMEOUT_SECONDS;
}

const char *sk_config_mail_from(apr_pool_t *p, const sk_config *c)
{
    const char *host;
    apr_size_t n;
    if (c->mail_from)
        return c->mail_from;
    host = c->issuer && strstr(c->issuer, "://") ? strstr(c->issuer, "://") + 3 : "localhost";
    n = strcspn(host, ":/");
    return apr_pstrcat(p, "noreply@", n ? apr_pstrndup(p, host, n) : "localhost", NULL);
}

const command_rec sk_directives[] = {
    AP_INIT_TAKE1("ScaiKeyIssuer", set_issuer, NULL, RSRC_CONF,
                  "Public base URL of this identity server, e.g. https://id.example.com"),
    AP_INIT_TAKE1("ScaiKeyMasterKeyFile", set_master_key_file, NULL, RSRC_CONF,
                  "File holding the 32-byte master key (base64 or hex) that encrypts signing keys at rest"),
    AP_INIT_TAKE1("ScaiKeySigningAlg", set_alg, NULL, RSRC_CONF,
                  "Signing algorithm for tokens: RS256 (default) or ES256"),
    AP_INIT_TAKE1("ScaiKeyKeyRotationInterval", set_key_rotation, "interval", RSRC_CONF,
                  "Seconds a signing key stays current before it is rotated (default 7776000 = 90 days; "
                  "0 = never)"),
    AP_INIT_TAKE1("ScaiKeyKeyRotationCheck", set_key_rotation, "check", RSRC_CONF,
                  "Seconds between two checks whether the signing key is due for rotation (default 60)"),
    AP_INIT_TAKE1("ScaiKeyAccessTokenTTL", set_ttl, "access", RSRC_CONF,
                  "Lifetime of access tokens in seconds (default 3600)"),
    AP_INIT_TAKE1("ScaiKeyRefreshTokenTTL", set_ttl, "refresh", RSRC_CONF,
                  "Lifetime of refresh tokens in seconds (default 2592000)"),
    AP_INIT_TAKE1("ScaiKeyClockSkew", set_ttl, "skew", RSRC_CONF,
                  "Leeway in seconds for exp/nbf/iat checks (default 30)"),
    AP_INIT_TAKE1("ScaiKeyMode", set_mode, NULL, RSRC_CONF,
                  "production or development (default development)"),
    AP_INIT_TAKE2("ScaiKeyBootstrapAdmin", set_bootstrap, NULL, RSRC_CONF,
                  "EMAIL PASSWORD_FILE: the super_admin created when there is none"),
    AP_INIT_TAKE1("ScaiKeyMaxBodySize", set_max_body, NULL, RSRC_CONF,
                  "Largest accepted request body in bytes (default 65536)"),
    AP_INIT_TAKE3("ScaiKeyLoginThrottle", set_throttle, NULL, RSRC_CONF,
                  "ACCOUNT_FAILURES IP_FAILURES WINDOW_SECONDS (default 5 20 900)"),
    AP_INIT_TAKE12("ScaiKeyMail", set_mail, NULL, RSRC_CONF,
                   "How mail is sent: sendmail [\"COMMAND\"] (default \"" SK_MAIL_DEFAULT_SENDMAIL "\"), "
                   "smtp HOST:PORT, or dir DIRECTORY (one .eml file per message)"),
    AP_INIT_TAKE1("ScaiKeyMailFrom", set_mail_from, NULL, RSRC_CONF,
                  "From address of outgoing mail (default noreply@<host of ScaiKeyIssuer>)"),
    /* guard directives */
    AP_INIT_TAKE1("ScaiKeyCache", sk_guard_set_cache, NULL, RSRC_CONF,
                  "Shared cache of the guard: PROVIDER[:ARGUMENTS] of mod_socache "
                  "(default shmcb), or none"),
    AP_INIT_TAKE1("ScaiKeyProcessCache", sk_guard_set_process_cache, NULL, RSRC_CONF,
                  "Verified credentials each process of the guard keeps: ENTRIES (default 4096), or off"),
    AP_INIT_TAKE1("ScaiKeyRevocationDelay", sk_guard_set_delay, NULL, RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                  "Seconds a verified credential is trusted before its liveness is checked again "
                  "(default 5)"),
    AP_INIT_ITERATE("ScaiKeyAudience", sk_guard_set_audience, NULL, RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                    "Audiences accepted in JWTs here (any one of them); default: any"),
    AP_INIT_TAKE1("ScaiKeyUserClaim", sk_guard_set_user_claim, NULL, RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                  "Claim that becomes the Apache user (REMOTE_USER); default sub"),
    AP_INIT_TAKE1("ScaiKeyResourceMetadata", sk_guard_set_resource_metadata, NULL,
                  RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                  "URL or path of this location's RFC 9728 metadata, named in WWW-Authenticate"),
    AP_INIT_TAKE1("ScaiKeyResource", sk_guard_set_resource, NULL, RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                  "Resource identifier served by SetHandler scaikey-resource-metadata"),
    AP_INIT_ITERATE("ScaiKeyScopesSupported", sk_guard_set_scopes_supported, NULL,
                    RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                    "Scopes listed by SetHandler scaikey-resource-metadata"),
    AP_INIT_FLAG("ScaiKeyMCPEndpoint", sk_guard_set_mcp, NULL, RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                 "On: MCP agents may call only their allowed tools here (default Off)"),
    AP_INIT_TAKE23("ScaiKeyLogin", sk_guard_set_login, NULL, RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                   "Browsers sign in here through the hosted login: TENANT-SLUG or platform, the "
                   "client_id of the application, and optionally the callback path (default "
                   "<location>/.scaikey/callback)"),
    /* end of guard directives */
    { NULL }
};

/* ---- secrets read at start-up ---- */

static const char *read_small_file(apr_pool_t *p, const char *path, char **out, apr_size_t max)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    char *buf;
    apr_status_t rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, p);
    if (rv != APR_SUCCESS)
        return apr_psprintf(p, "cannot open %s", path);
    if (apr_file_info_get(&fi, APR_FINFO_SIZE, f) != APR_SUCCESS || fi.size < 0 || (apr_size_t)fi.size > max) {
        apr_file_close(f);
        return apr_psprintf(p, "%s is empty, unreadable or larger than %lu bytes", path, (unsigned long)max);
    }
    n = (apr_size_t)fi.size;
    buf = apr_pcalloc(p, n + 1);
    if (n && apr_file_read_full(f, buf, n, &n) != APR_SUCCESS) {
        apr_file_close(f);
        return apr_psprintf(p, "cannot read %s", path);
    }
    apr_file_close(f);
    buf[n] = '\0';
    *out = buf;
    return NULL;
}

static void trim(char *s)
{
    apr_size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

static int parse_master_key(apr_pool_t *p, const char *text, unsigned char key[32])
{
    apr_size_t len = strlen(text), i;
    if (len == 64) {
        for (i = 0; i < 32; i++) {
            char h[3] = { text[2 * i], text[2 * i + 1], 0 };
            char *end;
            if (!apr_isxdigit(h[0]) || !apr_isxdigit(h[1]))
                return -1;
            key[i] = (unsigned char)strtoul(h, &end, 16);
        }
        return 0;
    }
    {
        apr_size_t n = 0;
        unsigned char *raw = sk_b64_decode(p, text, &n);
        if (!raw || n != 32)
            return -1;
        memcpy(key, raw, 32);
        return 0;
    }
}

const char *sk_config_load_secrets(apr_pool_t *p, server_rec *s, sk_config *c)
{
    char *text;
    const char *err;
    struct stat st;

    if (!c->issuer)
        return NULL;               /* the module is loaded but this server does not serve the API */
    if (!c->master_key_file)
        return "ScaiKeyMasterKeyFile is required where ScaiKeyIssuer is set";
    if ((err = read_small_file(p, c->master_key_file, &text, 4096)))
        return apr_pstrcat(p, "ScaiKeyMasterKeyFile: ", err, NULL);
    trim(text);
    if (parse_master_key(p, text, c->master_key) != 0)
        return apr_psprintf(p, "ScaiKeyMasterKeyFile %s must hold 32 bytes as base64 (44 characters) "
                               "or hex (64 characters); create one with: head -c 32 /dev/urandom | base64",
                            c->master_key_file);
    memset(text, 0, strlen(text));
    c->have_master_key = 1;
    if (stat(c->master_key_file, &st) == 0 && (st.st_mode & 0077)) {
        if (sk_config_production(c))
            return apr_psprintf(p, "ScaiKeyMasterKeyFile %s is readable by group or others; chmod 600 it",
                                c->master_key_file);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, SKLOGNO(0101)
                     "ScaiKeyMasterKeyFile %s is readable by group or others; chmod 600 it", c->master_key_file);
    }
    if (c->bootstrap_secret_file) {
        if ((err = read_small_file(p, c->bootstrap_secret_file, &text, 1024)))
            return apr_pstrcat(p, "ScaiKeyBootstrapAdmin: ", err, NULL);
        if (strlen(text) && text[strlen(text) - 1] == '\n')
            text[strlen(text) - 1] = '\0';
        if (strlen(text) && text[strlen(text) - 1] == '\r')
            text[strlen(text) - 1] = '\0';
        if (strlen(text) < 8)
            return "ScaiKeyBootstrapAdmin: the password file must hold at least 8 characters";
        c->bootstrap_password = text;
    }
    return NULL;
}
