/* Reading members of jansson objects. */
#ifndef SK_CORE_JSONGET_H
#define SK_CORE_JSONGET_H

#include <jansson.h>
#include <string.h>

/* The string member k of o; NULL when o is not an object, k is absent or not a string. */
static inline const char *sk_jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* 1 when the array list holds the string s, else 0 (also when list is not an array). */
static inline int sk_jarray_has(json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
        if (json_is_string(v) && !strcmp(json_string_value(v), s))
            return 1;
    return 0;
}

#endif
