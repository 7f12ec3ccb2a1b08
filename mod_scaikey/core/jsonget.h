/* Reading members of jansson objects. */
#ifndef SK_CORE_JSONGET_H
#define SK_CORE_JSONGET_H

#include <jansson.h>

/* The string member k of o; NULL when o is not an object, k is absent or not a string. */
static inline const char *sk_jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

#endif
