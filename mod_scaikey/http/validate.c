#include "http/validate.h"
#include "http/response.h"

#include <apr_lib.h>
#include <string.h>
#include <stdio.h>

#define DEFAULT_MAX_STRING 1024
#define DEFAULT_MAX_LIST   100

static int atext(int c)
{
    return apr_isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

int sk_valid_email(const char *s)
{
    const char *at, *p, *label;
    size_t n;
    if (!s || (n = strlen(s)) < 3 || n > 320)
        return 0;
    at = strrchr(s, '@');
    if (!at || at == s || (size_t)(at - s) > 64 || strchr(s, '@') != at)
        return 0;
    for (p = s; p < at; p++) {
        if (*p == '.') {
            if (p == s || p + 1 == at || p[1] == '.')
                return 0;
        }
        else if (!atext((unsigned char)*p))
            return 0;
    }
    p = at + 1;
    if (!*p || strlen(p) > 253 || !strchr(p, '.'))
        return 0;
    for (label = p; ; p++) {
        if (*p == '.' || *p == '\0') {
            size_t len = (size_t)(p - label);
            if (len == 0 || len > 63 || label[0] == '-' || p[-1] == '-')
                return 0;
            if (*p == '\0')
                break;
            label = p + 1;
        }
        else if (!apr_isalnum((unsigned char)*p) && *p != '-')
            return 0;
    }
    return 1;
}

int sk_valid_slug(const char *s)
{
    size_t n, i;
    if (!s || (n = strlen(s)) < 1 || n > 63)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0 && i + 1 < n)))
            return 0;
    }
    return 1;
}

static int valid_url(const char *s)
{
    const char *host;
    if (strncmp(s, "https://", 8) && strncmp(s, "http://", 7))
        return 0;
    host = strstr(s, "://") + 3;
    if (!*host || *host == '/' || strchr(s, ' ') || strchr(s, '#'))
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

static void add(json_t *errs, const char *field, const char *msg, const char *type)
{
    json_array_append_new(errs, sk_verr("body", field, msg, type));
}

static int check_string(const sk_field *f, json_t *v, json_t *errs)
{
    const char *s = json_string_value(v);
    long len = (long)json_string_length(v);
    long max = f->max ? f->max : DEFAULT_MAX_STRING;
    char msg[96];
    if (f->type == SK_T_EMAIL) {
        if (!sk_valid_email(s) || len > max) {
            add(errs, f->name, "value is not a valid email address", "value_error");
            return 1;
        }
        return 0;
    }
    if (f->min >= 1 && len > 0) {
        const char *c;
        for (c = s; *c && strchr(" \t\r\n\v\f", *c); c++)
            ;
        if (!*c) {
            add(errs, f->name, "String should not be blank", "string_too_short");
            return 1;
        }
    }
    if (len < f->min) {
        snprintf(msg, sizeof msg, "String should have at least %ld character%s", f->min, f->min == 1 ? "" : "s");
        add(errs, f->name, msg, "string_too_short");
        return 1;
    }
    if (len > max) {
        snprintf(msg, sizeof msg, "String should have at most %ld characters", max);
        add(errs, f->name, msg, "string_too_long");
        return 1;
    }
    switch (f->type) {
    case SK_T_SLUG:
        if (!sk_valid_slug(s)) {
            add(errs, f->name, "String should be 1-63 lowercase letters, digits or inner hyphens",
                "string_pattern_mismatch");
            return 1;
        }
        break;
    case SK_T_URL:
        if (!valid_url(s)) {
            add(errs, f->name, "Input should be a valid http or https URL", "url_parsing");
            return 1;
        }
        break;
    case SK_T_ENUM: {
        const char *const *c;
        for (c = f->choices; c && *c; c++)
            if (!strcmp(*c, s))
                return 0;
        add(errs, f->name, "Input should be one of the allowed values", "enum");
        return 1;
    }
    default:
        break;
    }
    return 0;
}

static int check(const sk_field *f, json_t *v, json_t *errs)
{
    char msg[96];
    /* null is a value of the wrong type unless the field is nullable */
    if (json_is_null(v) && (f->flags & SK_F_NULLABLE))
        return 0;
    switch (f->type) {
    case SK_T_TIME:             /* output only: never accepted */
        add(errs, f->name, "Field is read-only", "read_only");
        return 1;
    case SK_T_STRING: case SK_T_EMAIL: case SK_T_ENUM: case SK_T_SLUG: case SK_T_URL:
        if (!json_is_string(v)) {
            add(errs, f->name, "Input should be a valid string", "string_type");
            return 1;
        }
        return check_string(f, v, errs);
    case SK_T_INT:
        if (!json_is_integer(v)) {
            add(errs, f->name, "Input should be a valid integer", "int_type");
            return 1;
        }
        if (json_integer_value(v) < f->min || (f->max && json_integer_value(v) > f->max)) {
            snprintf(msg, sizeof msg, "Input should be between %ld and %ld", f->min, f->max);
            add(errs, f->name, msg, "int_range");
            return 1;
        }
        return 0;
    case SK_T_BOOL:
        if (!json_is_boolean(v)) {
            add(errs, f->name, "Input should be a valid boolean", "bool_type");
            return 1;
        }
        return 0;
    case SK_T_OBJECT:
        if (!json_is_object(v)) {
            add(errs, f->name, "Input should be a valid dictionary", "dict_type");
            return 1;
        }
        return 0;
    case SK_T_STRLIST: {
        size_t i;
        json_t *item;
        long max = f->max ? f->max : DEFAULT_MAX_LIST;
        if (!json_is_array(v)) {
            add(errs, f->name, "Input should be a valid list", "list_type");
            return 1;
        }
        if ((long)json_array_size(v) > max) {
            snprintf(msg, sizeof msg, "List should have at most %ld items", max);
            add(errs, f->name, msg, "too_long");
            return 1;
        }
        json_array_foreach(v, i, item) {
            if (!json_is_string(item) || json_string_length(item) == 0 ||
                json_string_length(item) > DEFAULT_MAX_STRING) {
                add(errs, f->name, "List items should be non-empty strings", "string_type");
                return 1;
            }
        }
        return 0;
    }
    }
    return 0;
}

int sk_validate(json_t *obj, const sk_field *fields, json_t *errs)
{
    const sk_field *f;
    const char *key;
    json_t *v;
    size_t before = json_array_size(errs);

    for (f = fields; f->name; f++) {
        v = json_object_get(obj, f->name);
        if (!v) {
            if (f->flags & SK_F_REQUIRED)
                add(errs, f->name, "Field required", "missing");
            continue;
        }
        check(f, v, errs);
    }
    json_object_foreach(obj, key, v) {
        for (f = fields; f->name; f++)
            if (!strcmp(f->name, key))
                break;
        if (!f->name)
            add(errs, key, "Extra inputs are not permitted", "extra_forbidden");
    }
    return (int)(json_array_size(errs) - before);
}
