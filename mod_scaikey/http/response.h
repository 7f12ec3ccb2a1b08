/* Responses: JSON bodies and the documented error shapes, in one place.
 * Every function sends the response and returns OK for the handler to return. */
#ifndef SK_HTTP_RESPONSE_H
#define SK_HTTP_RESPONSE_H

#include "http/request.h"
#include "http/validate.h"

/* Sends body (reference stolen) with the status. */
int sk_reply(sk_req *q, int status, json_t *body);
/* 204, no body. */
int sk_reply_empty(sk_req *q);
/* {"detail": "..."} */
int sk_fail(sk_req *q, int status, const char *detail);
/* 422 {"detail": [errors...]} (reference stolen). */
int sk_fail_validation(sk_req *q, json_t *errors);
/* Validates the request body against fields: 1 when it was refused (the 422 was sent), 0 to go on. */
int sk_req_invalid(sk_req *q, const sk_field *fields);
/* 401 for a missing or refused bearer credential, with WWW-Authenticate (RFC 6750). */
int sk_fail_unauthenticated(sk_req *q, int present, const char *reason);
/* 503 with Retry-After, for a store that cannot be reached. */
int sk_fail_unavailable(sk_req *q);
/* 429 with Retry-After. */
int sk_fail_throttled(sk_req *q, int retry_after, const char *detail);

/* Marks the response as not cacheable (tokens). */
void sk_no_store(sk_req *q);

/* One validation error: {"loc": [loc0, loc1?], "msg": msg, "type": type} (new reference). */
json_t *sk_verr(const char *loc0, const char *loc1, const char *msg, const char *type);

#endif
