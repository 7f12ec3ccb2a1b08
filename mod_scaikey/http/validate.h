/* Declarative validation of JSON objects against a field table. The errors follow the documented
 * 422 shape: {"loc": ["body", field], "msg": ..., "type": ...}. The same tables drive the
 * resource descriptors. */
#ifndef SK_HTTP_VALIDATE_H
#define SK_HTTP_VALIDATE_H

#include <jansson.h>

typedef enum {
    SK_T_STRING = 1,
    SK_T_EMAIL,
    SK_T_INT,
    SK_T_BOOL,
    SK_T_OBJECT,
    SK_T_STRLIST,
    SK_T_ENUM,
    SK_T_SLUG,
    SK_T_URL,
    SK_T_TIME            /* output only: rendered as ISO 8601 UTC */
} sk_type;

#define SK_F_REQUIRED  0x01
#define SK_F_NULLABLE  0x02

typedef struct sk_field {
    const char *name;
    sk_type type;
    unsigned flags;
    long min;                          /* string length, integer value or list size */
    long max;                          /* 0 = default limit */
    const char *const *choices;        /* SK_T_ENUM */
} sk_field;

/* Validates obj (a JSON object) in place; appends errors to errs (a JSON array).
 * Unknown members are refused (type "extra_forbidden"). Returns the number of errors added. */
int sk_validate(json_t *obj, const sk_field *fields, json_t *errs);

/* Field checks usable on their own. */
int sk_valid_email(const char *s);
int sk_valid_slug(const char *s);

#endif
