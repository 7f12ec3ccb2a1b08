#!/usr/bin/perl
# client_credentials in both flavours, the way a developer uses it: discovery -> token ->
# introspect -> revoke -> introspect says inactive; GLOBAL, TENANT and PARTNER applications and
# MCP agents; scopes; resource indicators; client authentication (client_secret_basic with
# form-urlencoded parts, client_secret_post, public clients refused) and the RFC 6749 §5.2 errors.
# Tokens are checked with Crypt::JWT against the JWKS of their flavour's jwks_uri, and the flow is
# driven once more through a standard client library (Authlib) when it is installed.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use Digest::SHA qw(sha256_hex);
use SK qw(:all);
use SKOAuth qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $AT = admin_token();
my $tenant = create_tenant();
my $partner = admin_create($AT, 'partners', { name => 'OAuth partner', slug => unique_slug('oap') });
my $pt1 = admin_create($AT, 'tenants', { name => 'P tenant 1', slug => unique_slug('oat'), partner_id => $partner->{id} });
my $pt2 = admin_create($AT, 'tenants', { name => 'P tenant 2', slug => unique_slug('oat'), partner_id => $partner->{id} });

my $global = new_app($AT, application_type => 'SERVICE', scope => 'GLOBAL',
                     allowed_scopes => ['admin:read', 'reports:read']);
my $tapp = new_app($AT, application_type => 'WEB', scope => 'TENANT', tenant_id => $tenant->{id},
                   allowed_scopes => ['orders:read', 'orders:write']);
my $papp = new_app($AT, application_type => 'SERVICE', scope => 'PARTNER', partner_id => $partner->{id},
                   allowed_scopes => ['billing:read']);
my $spa = new_app($AT, application_type => 'SPA', scope => 'TENANT', tenant_id => $tenant->{id},
                  allowed_scopes => ['orders:read'], redirect_uris => ['https://spa.example/cb']);
my $agent = admin_create($AT, 'agents', { name => 'oauth agent', tenant_id => $tenant->{id},
                                          allowed_scopes => ['mcp:use'] });

sub discovery { req(GET => issuer_path($_[0]) . '/.well-known/openid-configuration')->{json} }

# verify a token with Crypt::JWT against the JWKS its flavour's discovery document points at
sub verify_with_jwks_uri {
  my ($slug, $token) = @_;
  my $d = discovery($slug);
  my $path = substr($d->{jwks_uri}, length base());
  my $keys = req(GET => $path)->{json};
  my ($h, $c) = eval { verify_jwt($token, $keys, verify_iss => $d->{issuer}, verify_exp => 1) };
  diag("verify: $@") if $@;
  return ($c, $h);
}

sub no_store_ok {
  my ($r, $label) = @_;
  is($r->{headers}{'cache-control'} // '', 'no-store', "$label: Cache-Control: no-store");
}

sub oauth_error_ok {
  my ($r, $status, $error, $label) = @_;
  is($r->{status}, $status, "$label: $status") or diag($r->{content});
  is($r->{json}{error}, $error, "$label: $error");
  ok(defined $r->{json}{error_description}, "$label: error_description");
  no_store_ok($r, $label);
}

subtest 'platform: discovery -> token -> introspect -> revoke -> inactive' => sub {
  my $d = discovery(undef);
  my $token_path = substr($d->{token_endpoint}, length base());
  my $r = oauth_post($token_path, [grant_type => 'client_credentials'],
                     basic => [$global->{client_id}, $global->{client_secret}]);
  is($r->{status}, 200, 'token: 200') or return diag($r->{content});
  no_store_ok($r, 'token');
  is($r->{headers}{pragma} // '', 'no-cache', 'token: Pragma: no-cache');
  my $t = $r->{json};
  is($t->{token_type}, 'Bearer', 'token_type Bearer');
  is($t->{expires_in}, 3600, 'expires_in: the application\'s token_lifetime');
  is($t->{scope}, 'admin:read reports:read', 'no scope asked: every allowed scope');
  ok(!exists $t->{refresh_token}, 'no refresh token for client_credentials');
  ok(!exists $t->{id_token}, 'no ID token');

  my ($c, $h) = verify_with_jwks_uri(undef, $t->{access_token});
  ok($c, 'signature checks against the platform jwks_uri') or return;
  is($h->{typ}, 'at+jwt', 'typ at+jwt (RFC 9068)');
  is($c->{iss}, $d->{issuer}, 'iss is the discovery issuer');
  is($c->{sub}, $global->{client_id}, 'sub = client_id');
  is($c->{aud}, $global->{client_id}, 'aud defaults to the client_id');
  is($c->{client_id}, $global->{client_id}, 'client_id claim');
  is($c->{token_type}, 'client_credentials', 'token_type claim');
  ok($c->{platform_token}, 'platform_token for a GLOBAL application');
  is($c->{exp} - $c->{iat}, 3600, 'lifetime');
  ok($c->{jti}, 'jti');

  is(req(GET => '/api/v1/admin/tenants', token => $t->{access_token})->{status}, 200,
     'the token reaches the admin API (admin:read)');

  my $intro_path = substr($d->{introspection_endpoint}, length base());
  my $i = oauth_post($intro_path, [token => $t->{access_token}, token_type_hint => 'access_token'],
                     basic => [$global->{client_id}, $global->{client_secret}]);
  is($i->{status}, 200, 'introspect: 200');
  no_store_ok($i, 'introspect');
  ok($i->{json}{active}, 'active');
  is($i->{json}{$_}, $c->{$_}, "introspection $_") for qw(scope client_id sub aud iss exp iat jti);
  is($i->{json}{token_type}, 'Bearer', 'introspection token_type Bearer');

  my $rv = oauth_post(substr($d->{revocation_endpoint}, length base()), [token => $t->{access_token}],
                      basic => [$global->{client_id}, $global->{client_secret}]);
  is($rv->{status}, 200, 'revoke: 200');
  is(psql("SELECT count(*) FROM revoked_jtis WHERE jti = " . sql_quote($c->{jti})), 1, 'the jti is listed');

  $i = oauth_post($intro_path, [token => $t->{access_token}], basic => [$global->{client_id}, $global->{client_secret}]);
  is($i->{status}, 200, 'introspect again: 200');
  is_deeply($i->{json}, { active => JSON::PP::false() }, 'revoked: {"active": false} and nothing else');
  is(req(GET => '/api/v1/admin/tenants', token => $t->{access_token})->{status}, 401,
     'the revoked token no longer reaches the admin API');
  is(oauth_post($intro_path, [token => $t->{access_token}], basic => [$global->{client_id}, $global->{client_secret}])
     ->{json}{active}, JSON::PP::false(), 'still inactive');
  is(oauth_post(substr($d->{revocation_endpoint}, length base()), [token => $t->{access_token}],
                basic => [$global->{client_id}, $global->{client_secret}])->{status}, 200, 'revoking twice: 200');
};

subtest 'tenant: TENANT application' => sub {
  my $slug = $tenant->{slug};
  my $r = client_cc($slug, $tapp);
  is($r->{status}, 200, 'token at its tenant: 200') or return diag($r->{content});
  my ($c) = verify_with_jwks_uri($slug, $r->{json}{access_token});
  ok($c, 'signature checks against the tenant jwks_uri') or return;
  is($c->{iss}, base() . "/api/v1/auth/tenants/$slug", 'iss is the tenant issuer');
  is($c->{tenant_id}, $tenant->{id}, 'tenant_id claim');
  is($c->{app_scope}, 'TENANT', 'app_scope');
  ok(!$c->{platform_token}, 'not a platform token');
  my $other = create_tenant();
  oauth_error_ok(client_cc($other->{slug}, $tapp), 401, 'invalid_client', 'at another tenant');
  oauth_error_ok(client_cc(undef, $tapp), 401, 'invalid_client', 'at the platform');
  oauth_error_ok(client_cc($slug, $global), 401, 'invalid_client', 'a GLOBAL app at a tenant');
  my $i = oauth_post(endpoint_path($slug, 'introspect'), [token => $r->{json}{access_token}],
                     basic => [$tapp->{client_id}, $tapp->{client_secret}]);
  ok($i->{json}{active}, 'introspected at its tenant: active');
  is($i->{json}{tenant_id}, $tenant->{id}, 'with its tenant');
  $i = oauth_post(endpoint_path(undef, 'introspect'), [token => $r->{json}{access_token}],
                  basic => [$global->{client_id}, $global->{client_secret}]);
  is($i->{json}{active}, JSON::PP::false(), 'a platform client introspecting a tenant token: inactive');
};

subtest 'PARTNER application on the partner\'s tenants' => sub {
  for my $t ($pt1, $pt2) {
    my $r = client_cc($t->{slug}, $papp);
    is($r->{status}, 200, "token at $t->{slug}: 200") or next;
    my ($c) = verify_with_jwks_uri($t->{slug}, $r->{json}{access_token});
    is($c->{tenant_id}, $t->{id}, 'tenant_id is the tenant of the URL');
    is($c->{partner_id}, $partner->{id}, 'partner_id');
    is($c->{app_scope}, 'PARTNER', 'app_scope PARTNER');
    is($c->{iss}, issuer_url($t->{slug}), 'issuer of that tenant');
  }
  oauth_error_ok(client_cc($tenant->{slug}, $papp), 401, 'invalid_client', 'a tenant outside the partner');
  my $t1 = client_cc($pt1->{slug}, $papp)->{json}{access_token};
  my $i = oauth_post(endpoint_path($pt2->{slug}, 'introspect'), [token => $t1],
                     basic => [$papp->{client_id}, $papp->{client_secret}]);
  is($i->{json}{active}, JSON::PP::false(), 'a token of tenant 1 introspected at tenant 2: inactive');
};

subtest 'MCP agent credentials' => sub {
  my $r = client_cc($tenant->{slug}, $agent);
  is($r->{status}, 200, 'agent token: 200') or return diag($r->{content});
  is($r->{json}{scope}, 'mcp:use', 'scope');
  my ($c) = verify_with_jwks_uri($tenant->{slug}, $r->{json}{access_token});
  is($c->{agent_id}, $agent->{id}, 'agent_id claim');
  is($c->{sub}, $agent->{client_id}, 'sub = the agent\'s client_id');
  my $i = oauth_post(endpoint_path($tenant->{slug}, 'introspect'), [token => $r->{json}{access_token}],
                     basic => [$agent->{client_id}, $agent->{client_secret}]);
  ok($i->{json}{active}, 'the agent introspects its token');
  oauth_error_ok(client_cc(undef, $agent), 401, 'invalid_client', 'an agent at the platform');
};

subtest 'scopes' => sub {
  my $r = client_cc(undef, $global, scope => 'reports:read');
  is($r->{json}{scope}, 'reports:read', 'a subset');
  $r = client_cc(undef, $global, scope => 'reports:read admin:read reports:read');
  is($r->{json}{scope}, 'reports:read admin:read', 'duplicates collapse, order kept');
  oauth_error_ok(client_cc(undef, $global, scope => 'admin:write'), 400, 'invalid_scope', 'a scope not allowed');
  oauth_error_ok(client_cc(undef, $global, scope => 'reports:read openid'), 400, 'invalid_scope',
                 'one allowed, one not');
  oauth_error_ok(client_cc(undef, $global, scope => 'x' x 3000), 400, 'invalid_scope', 'too long');
};

subtest 'public clients' => sub {
  my $r = token_req($tenant->{slug}, [grant_type => 'client_credentials', client_id => $spa->{client_id}]);
  oauth_error_ok($r, 400, 'unauthorized_client', 'SPA with client_id only');
  $r = token_req($tenant->{slug}, [grant_type => 'client_credentials', client_id => $spa->{client_id},
                                   client_secret => 'made-up']);
  oauth_error_ok($r, 401, 'invalid_client', 'SPA with a made-up secret');
  $r = token_req($tenant->{slug}, [grant_type => 'urn:ietf:params:oauth:grant-type:token-exchange',
                                   client_id => $spa->{client_id}, subject_token => 'x',
                                   subject_token_type => 'urn:ietf:params:oauth:token-type:access_token']);
  oauth_error_ok($r, 400, 'unauthorized_client', 'SPA and token exchange');
  $r = oauth_post(endpoint_path($tenant->{slug}, 'introspect'), [token => 'x', client_id => $spa->{client_id}]);
  oauth_error_ok($r, 401, 'invalid_client', 'SPA cannot introspect');
  $r = oauth_post(endpoint_path($tenant->{slug}, 'revoke'), [token => 'x', client_id => $spa->{client_id}]);
  is($r->{status}, 200, 'SPA may revoke (its own tokens) with its client_id');
};

subtest 'client authentication failures' => sub {
  my $r = token_req(undef, [grant_type => 'client_credentials'], basic => [$global->{client_id}, 'wrong']);
  oauth_error_ok($r, 401, 'invalid_client', 'Basic, wrong secret');
  like($r->{headers}{'www-authenticate'} // '', qr/^Basic /, 'WWW-Authenticate: Basic');
  $r = token_req(undef, [grant_type => 'client_credentials', client_id => $global->{client_id},
                         client_secret => 'wrong']);
  oauth_error_ok($r, 401, 'invalid_client', 'post, wrong secret');
  $r = token_req(undef, [grant_type => 'client_credentials', client_id => $global->{client_id}]);
  oauth_error_ok($r, 401, 'invalid_client', 'confidential client without a secret');
  $r = token_req(undef, [grant_type => 'client_credentials'], basic => ['app_doesnotexist0000', 'x']);
  oauth_error_ok($r, 401, 'invalid_client', 'unknown client');
  $r = token_req(undef, [grant_type => 'client_credentials']);
  oauth_error_ok($r, 401, 'invalid_client', 'no credentials at all');
  $r = req(POST => endpoint_path(undef, 'token'), raw => 'grant_type=client_credentials',
           headers => { 'Content-Type' => 'application/x-www-form-urlencoded', Authorization => 'Basic %%%' });
  oauth_error_ok($r, 401, 'invalid_client', 'malformed Basic');

  $r = token_req(undef, [grant_type => 'client_credentials', client_secret => $global->{client_secret}],
                 basic => [$global->{client_id}, $global->{client_secret}]);
  oauth_error_ok($r, 400, 'invalid_request', 'Basic and client_secret in the body');
  $r = token_req(undef, [grant_type => 'client_credentials', client_id => $tapp->{client_id}],
                 basic => [$global->{client_id}, $global->{client_secret}]);
  oauth_error_ok($r, 400, 'invalid_request', 'Basic and another client_id in the body');
  $r = token_req(undef, [grant_type => 'client_credentials', client_id => $global->{client_id}],
                 basic => [$global->{client_id}, $global->{client_secret}]);
  is($r->{status}, 200, 'Basic and the same client_id in the body: fine');

  psql("UPDATE applications SET status = 'SUSPENDED' WHERE id = " . sql_quote($tapp->{id}));
  oauth_error_ok(client_cc($tenant->{slug}, $tapp), 401, 'invalid_client', 'suspended application');
  psql("UPDATE applications SET status = 'ACTIVE' WHERE id = " . sql_quote($tapp->{id}));
};

subtest 'client_secret_basic: form-urlencoded id and secret (RFC 6749 §2.3.1)' => sub {
  my $secret = "s3cr:t/+&%=\xc3\xa9 x";    # UTF-8 bytes of "é"
  my $bytes = $secret;
  my $app = new_app($AT, application_type => 'SERVICE', scope => 'GLOBAL', allowed_scopes => ['a:b']);
  psql("UPDATE applications SET client_secret_hash = " . sql_quote(sha256_hex($bytes))
       . " WHERE id = " . sql_quote($app->{id}));
  my $r = token_req(undef, [grant_type => 'client_credentials'], basic => [$app->{client_id}, $secret]);
  is($r->{status}, 200, 'encoded Basic credentials with : / + & % = é and a space') or diag($r->{content});
  $r = token_req(undef, [grant_type => 'client_credentials', client_id => $app->{client_id},
                         client_secret => $secret]);
  is($r->{status}, 200, 'the same secret as client_secret_post');
  $r = req(POST => endpoint_path(undef, 'token'), raw => 'grant_type=client_credentials',
           headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                        Authorization => 'Basic ' . MIME::Base64::encode_base64("$app->{client_id}:a+b", '') });
  oauth_error_ok($r, 401, 'invalid_client', 'a raw "+" is decoded as a space');
};

subtest 'grants and requests' => sub {
  oauth_error_ok(token_req(undef, [grant_type => 'password', username => 'a', password => 'b'],
                           basic => [$global->{client_id}, $global->{client_secret}]),
                 400, 'unsupported_grant_type', 'password grant');
  oauth_error_ok(token_req(undef, [grant_type => 'implicit'], basic => [$global->{client_id}, $global->{client_secret}]),
                 400, 'unsupported_grant_type', 'unknown grant');
  oauth_error_ok(token_req(undef, [scope => 'a'], basic => [$global->{client_id}, $global->{client_secret}]),
                 400, 'invalid_request', 'no grant_type');
  my $r = req(POST => endpoint_path(undef, 'token'), raw => '{"grant_type":"client_credentials"}',
              headers => { 'Content-Type' => 'application/json' });
  oauth_error_ok($r, 400, 'invalid_request', 'JSON body');
  oauth_error_ok(token_req(undef, [grant_type => 'client_credentials', scope => 'admin:read', scope => 'reports:read'],
                           basic => [$global->{client_id}, $global->{client_secret}]),
                 400, 'invalid_request', 'a repeated parameter');
  oauth_error_ok(token_req(undef, [grant_type => 'client_credentials', map { ("x$_" => 1) } 1 .. 100],
                           basic => [$global->{client_id}, $global->{client_secret}]),
                 400, 'invalid_request', 'too many parameters');
  is(token_req(undef, [grant_type => 'client_credentials', scope => ''],
               basic => [$global->{client_id}, $global->{client_secret}])->{json}{scope},
     'admin:read reports:read', 'an empty parameter counts as omitted');
  my $only_code = new_app($AT, application_type => 'WEB', scope => 'GLOBAL', allowed_scopes => ['a:b'],
                          grant_types => ['authorization_code']);
  oauth_error_ok(client_cc(undef, $only_code), 400, 'unauthorized_client', 'a grant not in grant_types');
};

subtest 'resource indicator (RFC 8707) sets aud' => sub {
  my $r = client_cc(undef, $global, resource => 'https://api.example.com/v1');
  is($r->{status}, 200, 'token: 200') or return diag($r->{content});
  my ($c) = verify_with_jwks_uri(undef, $r->{json}{access_token});
  is($c->{aud}, 'https://api.example.com/v1', 'aud is the resource');
  oauth_error_ok(client_cc(undef, $global, resource => '/relative'), 400, 'invalid_target', 'relative resource');
  oauth_error_ok(client_cc(undef, $global, resource => 'https://a.example/#frag'), 400, 'invalid_target',
                 'resource with a fragment');
};

subtest 'revocation only for the token\'s own client' => sub {
  my $t = client_cc(undef, $global)->{json}{access_token};
  my $other = new_app($AT, application_type => 'SERVICE', scope => 'GLOBAL', allowed_scopes => ['a:b']);
  my $r = oauth_post(endpoint_path(undef, 'revoke'), [token => $t],
                     basic => [$other->{client_id}, $other->{client_secret}]);
  is($r->{status}, 200, 'another client: 200 (RFC 7009)');
  my $i = oauth_post(endpoint_path(undef, 'introspect'), [token => $t],
                     basic => [$other->{client_id}, $other->{client_secret}]);
  ok($i->{json}{active}, 'but the token is still active');
  $r = oauth_post(endpoint_path(undef, 'revoke'), [token => 'garbage'],
                  basic => [$global->{client_id}, $global->{client_secret}]);
  is($r->{status}, 200, 'unknown token: 200');
  $r = oauth_post(endpoint_path(undef, 'revoke'), [], basic => [$global->{client_id}, $global->{client_secret}]);
  oauth_error_ok($r, 400, 'invalid_request', 'no token');
  $r = oauth_post(endpoint_path(undef, 'revoke'), [token => $t], basic => [$global->{client_id}, 'wrong']);
  oauth_error_ok($r, 401, 'invalid_client', 'revocation with a wrong secret');
};

subtest 'a standard client library (Authlib)' => sub {
  my $py = '/usr/bin/python3';
  plan skip_all => 'python3-authlib is not installed'
    unless -x $py && system($py, '-c', 'import authlib, requests') == 0;
  for my $case ([undef, $global, 'admin:read'], [$tenant->{slug}, $tapp, 'orders:read']) {
    my ($slug, $app, $scope) = @$case;
    my $label = defined $slug ? 'tenant' : 'platform';
    open(my $fh, '-|', $py, "$FindBin::Bin/lib/oauth_client.py", issuer_url($slug), $app->{client_id},
         $app->{client_secret}, $scope) or die "python: $!";
    my $out = do { local $/; <$fh> };
    close($fh);
    my $res = eval { JSON::PP->new->decode($out) } // { error => "no JSON: $out" };
    ok(!$res->{error}, "$label: the client ran") or diag($res->{error});
    ok($res->{metadata_valid}, "$label: Authlib validates the discovery document");
    is($res->{issuer}, issuer_url($slug), "$label: issuer");
    for my $m (qw(client_secret_basic client_secret_post)) {
      my $x = $res->{$m} // {};
      is($x->{token_type}, 'Bearer', "$label $m: Bearer token");
      is($x->{scope}, $scope, "$label $m: scope");
      is($x->{sub}, $app->{client_id}, "$label $m: signature and issuer verified by Authlib");
      ok($x->{active_before}, "$label $m: introspection active");
      is($x->{introspected_client_id}, $app->{client_id}, "$label $m: introspected client_id");
      is($x->{revoke_status}, 200, "$label $m: revocation 200");
      ok(defined $x->{active_after} && !$x->{active_after}, "$label $m: inactive after revocation");
    }
  }
};

done_testing();
