#!/usr/bin/python3
"""A standard OpenID Connect relying party (Authlib, unmodified) for the authorization code flow
against one flavour of mod_scaikey. The browser part (login page, credentials) is the test's own
user agent; this script is the application on both sides of it.

    oidc_code_client.py start  ISSUER CLIENT_ID SECRET|- AUTH_METHOD REDIRECT_URI SCOPE
        -> {"url", "state", "verifier", "nonce"}: Authlib's authorization URL (PKCE S256, nonce)
    oidc_code_client.py finish ISSUER CLIENT_ID SECRET|- AUTH_METHOD REDIRECT_URI SCOPE
                               CALLBACK_URL STATE VERIFIER NONCE
        -> what the application saw: the code exchanged (state checked by Authlib), the ID token
           validated as an OIDC Core code-flow ID token (signature against the discovered JWKS,
           iss, aud, exp, iat, nonce, at_hash), userinfo, refresh, the reuse of the spent refresh
           token, the state of the family afterwards, revocation

Prints one JSON object; exits 0 unless something unexpected raised (its message is in "error")."""
import json
import sys

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken, UserInfo
from authlib.oidc.discovery import OpenIDProviderMetadata


def metadata(issuer):
    doc = requests.get(issuer + "/.well-known/openid-configuration", timeout=30)
    doc.raise_for_status()
    meta = doc.json()
    # plain HTTP on the loopback in tests: the model insists on https URLs
    OpenIDProviderMetadata(json.loads(json.dumps(meta).replace('"http://', '"https://'))).validate()
    if meta["issuer"] != issuer:
        raise ValueError("discovery names issuer %s, expected %s" % (meta["issuer"], issuer))
    return meta


def session(client_id, secret, method, redirect_uri, scope, token=None):
    return OAuth2Session(client_id, None if secret == "-" else secret, scope=scope, redirect_uri=redirect_uri,
                         token_endpoint_auth_method=method, code_challenge_method="S256", token=token)


def oauth_error(fn):
    """The OAuth error code an Authlib call raised, or None when it succeeded."""
    try:
        fn()
    except AuthlibBaseError as e:
        return e.error or "error"
    return None


def start(issuer, client_id, secret, method, redirect_uri, scope):
    from authlib.common.security import generate_token
    meta = metadata(issuer)
    s = session(client_id, secret, method, redirect_uri, scope)
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = s.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    return {"url": url, "state": state, "verifier": verifier, "nonce": nonce}


def finish(issuer, client_id, secret, method, redirect_uri, scope, callback, state, verifier, nonce):
    out = {}
    meta = metadata(issuer)
    keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=30).json())
    s = session(client_id, secret, method, redirect_uri, scope)
    tok = s.fetch_token(meta["token_endpoint"], authorization_response=callback, state=state,
                        code_verifier=verifier)
    out["token_type"] = tok.get("token_type")
    out["has_refresh_token"] = "refresh_token" in tok
    idt = jwt.decode(tok["id_token"], keys, claims_cls=CodeIDToken,
                     claims_options={"iss": {"essential": True, "value": meta["issuer"]}},
                     claims_params={"nonce": nonce, "client_id": client_id, "access_token": tok["access_token"]})
    idt.validate(leeway=30)
    out["id_token_valid"] = True
    out["id_token"] = {k: idt.get(k) for k in ("sub", "aud", "nonce", "email", "at_hash", "azp")}
    at = jwt.decode(tok["access_token"], keys, claims_options={"iss": {"essential": True, "value": meta["issuer"]}})
    at.validate(leeway=30)
    out["access_token_sub"] = at["sub"]

    r = s.get(meta["userinfo_endpoint"], timeout=30)
    r.raise_for_status()
    info = UserInfo(r.json())
    out["userinfo"] = {"sub": info.get("sub"), "email": info.get("email")}

    if "refresh_token" in tok:
        old = tok["refresh_token"]
        new = s.refresh_token(meta["token_endpoint"], refresh_token=old)
        out["refreshed"] = bool(new.get("access_token")) and new.get("refresh_token") not in (None, old)
        # the spent refresh token, presented again by another instance of the application
        thief = session(client_id, secret, method, redirect_uri, scope)
        out["reuse_error"] = oauth_error(lambda: thief.refresh_token(meta["token_endpoint"], refresh_token=old))
        # the family is revoked: the newest refresh token no longer works either
        out["family_after_reuse_error"] = oauth_error(
            lambda: thief.refresh_token(meta["token_endpoint"], refresh_token=new["refresh_token"]))
        # introspection (confidential clients only) says the newest access token is no longer active
        if secret != "-":
            r = s.introspect_token(meta["introspection_endpoint"], token=new["access_token"])
            out["active_after_reuse"] = r.json().get("active")
    r = s.revoke_token(meta["revocation_endpoint"], token=tok["access_token"], token_type_hint="access_token")
    out["revoke_status"] = r.status_code
    # a code is single-use: Authlib exchanging it again is refused (last: a reused code also
    # revokes what the code issued)
    again = session(client_id, secret, method, redirect_uri, scope)
    out["code_reuse_error"] = oauth_error(lambda: again.fetch_token(
        meta["token_endpoint"], authorization_response=callback, state=state, code_verifier=verifier))
    return out


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    try:
        res = start(*args) if mode == "start" else finish(*args)
    except Exception as e:  # reported to the test, which fails on it
        res = {"error": "%s: %s" % (type(e).__name__, e)}
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
