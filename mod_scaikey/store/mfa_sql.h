/* SQL fragments about second factors, shared by the statement tables of the sign-in API
 * (statements_users.c) and of email MFA (statements_mfa.c). */
#ifndef SK_STORE_MFA_SQL_H
#define SK_STORE_MFA_SQL_H

/* the user u has a confirmed method of this type */
#define MFA_HAS(u, type) \
    "EXISTS (SELECT 1 FROM mfa_methods m WHERE m.user_id = " u ".id AND m.method_type = '" type "' " \
    "AND m.confirmed_at IS NOT NULL)"

/* the tenant t demands a second factor: settings.mfa_required = true */
#define MFA_TENANT_REQUIRED(t) "coalesce(" t ".settings -> 'mfa_required' = 'true'::jsonb, false)"

/* A code mailed to the account's address is a second factor of u when u enrolled it, and also
 * when a second factor is demanded (by the tenant t, or by users.mfa_enabled) but u has no
 * confirmed method at all: proving control of the address keeps such a user from being stuck. */
#define MFA_EMAIL_AVAILABLE(u, t) \
    "(" MFA_HAS(u, "email") " OR ((" MFA_TENANT_REQUIRED(t) " OR " u ".mfa_enabled) AND NOT EXISTS " \
    "(SELECT 1 FROM mfa_methods m WHERE m.user_id = " u ".id AND m.confirmed_at IS NOT NULL)))"

/* the second factors u can answer a sign-in challenge with, as a JSON array */
#define MFA_METHODS(u, t) \
    "to_json(array_remove(ARRAY[" \
    "CASE WHEN " MFA_HAS(u, "totp") " THEN 'totp' END, " \
    "CASE WHEN " MFA_EMAIL_AVAILABLE(u, t) " THEN 'email' END, " \
    "CASE WHEN EXISTS (SELECT 1 FROM mfa_backup_codes b WHERE b.user_id = " u ".id AND b.used_at IS NULL) " \
    "     THEN 'backup_codes' END], NULL))"

#endif
