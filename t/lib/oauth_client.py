#!/usr/bin/python3
"""A standard OAuth 2.0 / OpenID Connect client (Authlib) against one flavour of mod_scaikey.

    oauth_client.py ISSUER CLIENT_ID CLIENT_SECRET SCOPE

Reads the discovery document at ISSUER/.well-known/openid-configuration, validates it with
Authlib's OpenID Provider Metadata model, then for client_secret_basic and client_secret_post:
client_credentials grant, signature check against the document's jwks_uri, introspection,
revocation, introspection again. Prints one JSON object with what it saw; exits 0 unless
something raised (the message is in "error")."""
import json
import sys

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.discovery import OpenIDProviderMetadata


def main():
    issuer, client_id, secret, scope = sys.argv[1:5]
    out = {}
    doc = requests.get(issuer + "/.well-known/openid-configuration", timeout=30)
    doc.raise_for_status()
    meta = doc.json()
    out["issuer"] = meta["issuer"]
    # The test server speaks plain HTTP on the loopback; the model insists on https URLs, so
    # it checks a copy with the scheme changed (everything else as served).
    https = json.loads(json.dumps(meta).replace('"http://', '"https://'))
    OpenIDProviderMetadata(https).validate()
    out["metadata_valid"] = True
    out["validated_issuer"] = meta["issuer"]

    keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=30).json())
    for method in ("client_secret_basic", "client_secret_post"):
        s = OAuth2Session(client_id, secret, scope=scope, token_endpoint_auth_method=method)
        tok = s.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        claims = jwt.decode(tok["access_token"], keys,
                            claims_options={"iss": {"essential": True, "value": meta["issuer"]}})
        claims.validate()
        before = s.introspect_token(meta["introspection_endpoint"], token=tok["access_token"],
                                    token_type_hint="access_token").json()
        rev = s.revoke_token(meta["revocation_endpoint"], token=tok["access_token"],
                             token_type_hint="access_token")
        after = s.introspect_token(meta["introspection_endpoint"], token=tok["access_token"]).json()
        out[method] = {
            "token_type": tok.get("token_type"),
            "expires_in": tok.get("expires_in"),
            "scope": tok.get("scope"),
            "sub": claims.get("sub"),
            "iss": claims.get("iss"),
            "aud": claims.get("aud"),
            "active_before": before.get("active"),
            "introspected_client_id": before.get("client_id"),
            "revoke_status": rev.status_code,
            "active_after": after.get("active"),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # reported to the test, which prints it
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
        sys.exit(1)
