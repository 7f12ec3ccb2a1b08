#!/usr/bin/perl
# Discovery documents (OpenID Connect Discovery 1.0, RFC 8414) of both flavours: the platform's at
# /api/v1/platform/oauth/.well-known/openid-configuration, each tenant's at
# /api/v1/auth/tenants/{slug}/.well-known/openid-configuration. Each states exactly its issuer,
# lists what is supported, and every URL it gives answers (none is a 404).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);
use SKOAuth qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $BASE   = base();
my $tenant = create_tenant();

sub discovery {
  my ($slug, $name) = @_;
  return req(GET => issuer_path($slug) . '/.well-known/' . ($name // 'openid-configuration'));
}

sub set_of { my ($a) = @_; return { map { $_ => 1 } @{ ref $a eq 'ARRAY' ? $a : [] } } }

sub check_document {
  my ($slug, $label) = @_;
  my $iss = issuer_url($slug);
  my $r = discovery($slug);
  is($r->{status}, 200, "$label: 200") or return diag($r->{content});
  like($r->{headers}{'content-type'} // '', qr{^application/json}, "$label: JSON");
  my $d = $r->{json};
  is($d->{issuer}, $iss, "$label: issuer is exactly $iss");
  my $ep = defined $slug ? "$iss/oauth" : $iss;
  is($d->{authorization_endpoint}, "$ep/authorize", "$label: authorization_endpoint");
  is($d->{token_endpoint}, "$ep/token", "$label: token_endpoint");
  is($d->{userinfo_endpoint}, "$ep/userinfo", "$label: userinfo_endpoint");
  is($d->{introspection_endpoint}, "$ep/introspect", "$label: introspection_endpoint");
  is($d->{revocation_endpoint}, "$ep/revoke", "$label: revocation_endpoint");
  is($d->{end_session_endpoint}, "$ep/logout", "$label: end_session_endpoint");
  is($d->{jwks_uri}, defined $slug ? "$iss/.well-known/jwks.json" : "$BASE/api/v1/platform/.well-known/jwks.json",
     "$label: jwks_uri");
  is_deeply($d->{response_types_supported}, ['code'], "$label: response_types_supported");
  is_deeply($d->{subject_types_supported}, ['public'], "$label: subject_types_supported");
  is_deeply($d->{code_challenge_methods_supported}, ['S256'], "$label: PKCE S256 only");
  is_deeply([sort @{ $d->{token_endpoint_auth_methods_supported} // [] }],
            [qw(client_secret_basic client_secret_post none)], "$label: token endpoint auth methods");
  is_deeply([sort @{ $d->{introspection_endpoint_auth_methods_supported} // [] }],
            [qw(client_secret_basic client_secret_post)], "$label: introspection needs a confidential client");
  ok(set_of($d->{revocation_endpoint_auth_methods_supported})->{client_secret_basic},
     "$label: revocation auth methods");
  is_deeply([sort @{ $d->{grant_types_supported} // [] }],
            [sort qw(authorization_code refresh_token client_credentials
                     urn:ietf:params:oauth:grant-type:token-exchange)], "$label: grant types");
  my $scopes = set_of($d->{scopes_supported});
  ok($scopes->{$_}, "$label: scope $_ listed") for qw(openid profile email groups offline_access);
  my $claims = set_of($d->{claims_supported});
  ok($claims->{$_}, "$label: claim $_ listed") for qw(sub iss aud exp iat nonce auth_time email email_verified
                                                        name given_name family_name preferred_username groups);
  my $algs = $d->{id_token_signing_alg_values_supported} // [];
  ok(@$algs && !grep({ $_ eq 'none' } @$algs), "$label: id token algorithms: @$algs");
  my ($jwks) = jwks(defined $slug ? (slug => $slug) : ());
  my %key_algs = map { $_->{alg} => 1 } @{ $jwks->{keys} // [] };
  ok($key_algs{ $algs->[0] // '' }, "$label: the JWKS has a key for $algs->[0]");
  ok((grep { $_ eq 'RS256' } @$algs), "$label: RS256 is among the id token algorithms (OIDC Discovery)");
  is($d->{request_uri_parameter_supported}, JSON::PP::false(), "$label: no request_uri (default would be true)");
  is($d->{authorization_response_iss_parameter_supported}, JSON::PP::true(),
     "$label: authorization responses carry iss (RFC 9207)");

  # RFC 8414 alias: the same document
  my $a = discovery($slug, 'oauth-authorization-server');
  is($a->{status}, 200, "$label: oauth-authorization-server: 200");
  is_deeply($a->{json}, $d, "$label: oauth-authorization-server: the same document");

  # every URL answers (methods as a client would use them), none is a 404
  my %method = (authorization_endpoint => 'GET', token_endpoint => 'POST', userinfo_endpoint => 'GET',
                introspection_endpoint => 'POST', revocation_endpoint => 'POST', end_session_endpoint => 'GET',
                jwks_uri => 'GET');
  for my $k (sort keys %method) {
    my $url = $d->{$k};
    ok(index($url, $BASE) == 0, "$label: $k is on this server") or next;
    my $path = substr($url, length $BASE);
    my $x = $method{$k} eq 'POST'
      ? req(POST => $path, raw => '', headers => { 'Content-Type' => 'application/x-www-form-urlencoded' })
      : req(GET => $path);
    ok($x->{status} != 404 && $x->{status} != 405 && $x->{status} < 500,
       "$label: $k ($method{$k} $path) answers $x->{status}");
  }
  return $d;
}

subtest 'platform flavour' => sub {
  my $d = check_document(undef, 'platform');
  ok(set_of($d->{scopes_supported})->{'admin:read'}, 'platform: admin:read listed');
  is(discovery(undef)->{headers}{'cache-control'} // '', 'public, max-age=300', 'cacheable');
};

subtest 'tenant flavour' => sub {
  my $d = check_document($tenant->{slug}, 'tenant');
  ok(!set_of($d->{scopes_supported})->{'admin:read'}, 'tenant: no admin scopes');
};

subtest 'each tenant has its own issuer' => sub {
  my $other = create_tenant();
  my $a = discovery($tenant->{slug})->{json};
  my $b = discovery($other->{slug})->{json};
  isnt($a->{issuer}, $b->{issuer}, 'two tenants, two issuers');
  is($b->{issuer}, "$BASE/api/v1/auth/tenants/$other->{slug}", 'the second tenant\'s issuer');
};

subtest 'unknown tenant: 404' => sub {
  for my $slug (unique_slug('nope'), 'UPPER', 'bad_slug') {
    my $r = discovery($slug);
    is($r->{status}, 404, "$slug: 404");
    is($r->{json}{detail}, 'Tenant not found', "$slug: detail");
  }
  my $gone = create_tenant();
  psql("UPDATE tenants SET deleted_at = now() WHERE id = " . sql_quote($gone->{id}));
  is(discovery($gone->{slug})->{status}, 404, 'deleted tenant: 404');
};

subtest 'only GET' => sub {
  my $r = req(POST => issuer_path(undef) . '/.well-known/openid-configuration', raw => '{}');
  is($r->{status}, 405, 'POST: 405');
};

done_testing();
