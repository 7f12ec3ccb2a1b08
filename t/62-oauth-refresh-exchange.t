#!/usr/bin/perl
# grant_type=refresh_token: rotation on every use, one-time tokens spent atomically, bound to
# their client, reuse of a spent token ends the family and the session (no grace window), scope
# narrowing. Token Exchange (RFC 8693): confidential applications with token_exchange_allowed,
# subject tokens of this issuer only, scope narrowing only, the act claim and its chain.
#
# The first refresh token of a person is made directly in the database (an SSO session and a
# refresh token row with a known digest), as the authorization_code grant would leave them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use POSIX ();
use Digest::SHA qw(sha256);
use SK qw(:all);
use SKOAuth qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $AT = admin_token();
my $tenant = create_tenant();
my $slug = $tenant->{slug};
my $user = create_user(role => 'user', tenant_id => $tenant->{id}, first_name => 'Ada', last_name => 'Lovelace',
                       display_name => 'Ada L.');
psql("UPDATE users SET email_verified = true WHERE id = " . sql_quote($user->{id}));
my $FULL = 'openid profile email offline_access orders:read';

my $web = new_app($AT, application_type => 'WEB', scope => 'TENANT', tenant_id => $tenant->{id},
                  allowed_scopes => [qw(openid profile email offline_access orders:read)],
                  redirect_uris => ['https://web.example/cb']);
my $web2 = new_app($AT, application_type => 'WEB', scope => 'TENANT', tenant_id => $tenant->{id},
                   allowed_scopes => ['openid']);
my $native = new_app($AT, application_type => 'NATIVE', scope => 'TENANT', tenant_id => $tenant->{id},
                     allowed_scopes => ['openid'], redirect_uris => ['com.example.app:/cb']);
my $svc = new_app($AT, application_type => 'SERVICE', scope => 'TENANT', tenant_id => $tenant->{id},
                  allowed_scopes => ['orders:read'], token_exchange_allowed => JSON::PP::true());
my $svc2 = new_app($AT, application_type => 'SERVICE', scope => 'TENANT', tenant_id => $tenant->{id},
                   allowed_scopes => ['orders:read'], token_exchange_allowed => JSON::PP::true());
my $no_x = new_app($AT, application_type => 'SERVICE', scope => 'TENANT', tenant_id => $tenant->{id},
                   allowed_scopes => ['orders:read']);

my $JWKS = jwks(slug => $slug);
my $ISS = issuer_url($slug);

sub claims_of {
  my ($token, %o) = @_;
  my ($h, $c) = eval { verify_jwt($token, $JWKS, verify_exp => 1, %o) };
  diag("verify: $@") if $@;
  return $c;
}

sub new_login {
  my (%o) = @_;
  my $client = $o{client} // $web;
  my $sid = sso_session(user_id => $user->{id}, tenant_id => $tenant->{id}, client_id => $client->{client_id});
  my $rt = sso_refresh(session_id => $sid, user_id => $user->{id}, client_id => $client->{client_id},
                       scope => $o{scope} // $FULL, (defined $o{ttl} ? (ttl => $o{ttl}) : ()));
  return ($sid, $rt);
}

sub refresh {
  my ($rt, %o) = @_;
  my $client = delete $o{client} // $web;
  my @auth = $client->{client_secret} ? (basic => [$client->{client_id}, $client->{client_secret}])
                                      : ();
  my @form = (grant_type => 'refresh_token', refresh_token => $rt, %o);
  push @form, client_id => $client->{client_id} unless $client->{client_secret};
  return token_req($slug, \@form, @auth);
}

sub session_revoked {
  my ($sid) = @_;
  return psql("SELECT coalesce(revoked_reason, '') FROM sessions WHERE id = " . sql_quote($sid)) // '';
}

sub b64url_sha256_half { my $d = sha256($_[0]); return b64url(substr($d, 0, 16)) }

subtest 'refresh: tokens, rotation, claims' => sub {
  my ($sid, $rt0) = new_login();
  my $r = refresh($rt0);
  is($r->{status}, 200, 'refresh: 200') or return diag($r->{content});
  is($r->{headers}{'cache-control'} // '', 'no-store', 'no-store');
  my $t = $r->{json};
  is($t->{token_type}, 'Bearer', 'Bearer');
  is($t->{scope}, $FULL, 'the granted scope');
  like($t->{refresh_token} // '', qr/^skr_/, 'a new refresh token');
  isnt($t->{refresh_token}, $rt0, 'rotated');
  my $c = claims_of($t->{access_token}, verify_iss => $ISS, verify_aud => $web->{client_id});
  is($c->{sub}, $user->{id}, 'access token: sub is the user');
  is($c->{sid}, $sid, 'sid');
  is($c->{tenant_id}, $tenant->{id}, 'tenant_id');
  is($c->{client_id}, $web->{client_id}, 'client_id');
  ok(!exists $c->{token_type}, 'no client_credentials marker');
  my $id = claims_of($t->{id_token}, verify_iss => $ISS, verify_aud => $web->{client_id});
  ok($id, 'ID token verifies (aud = client_id)') or return;
  is($id->{sub}, $user->{id}, 'ID token sub');
  is($id->{at_hash}, b64url_sha256_half($t->{access_token}), 'at_hash');
  is($id->{sid}, $sid, 'ID token sid');
  ok($id->{auth_time} && $id->{auth_time} <= time() + 5, 'auth_time');
  is($id->{name}, 'Ada L.', 'profile: name');
  is($id->{given_name}, 'Ada', 'profile: given_name');
  is($id->{family_name}, 'Lovelace', 'profile: family_name');
  is($id->{preferred_username}, $user->{email}, 'profile: preferred_username');
  is($id->{email}, $user->{email}, 'email');
  ok($id->{email_verified}, 'email_verified');
  ok(!exists $id->{groups}, 'no groups without the groups scope');
  ok(!exists $id->{nonce}, 'no nonce on refresh');

  # rotation: the new token works once, the old one never again
  my $r2 = refresh($t->{refresh_token});
  is($r2->{status}, 200, 'the rotated token works') or diag($r2->{content});
  my $rt2 = $r2->{json}{refresh_token};
  is(psql("SELECT count(DISTINCT family_id) FROM refresh_tokens WHERE session_id = " . sql_quote($sid)), 1,
     'one family');
  is(psql("SELECT count(*) FROM refresh_tokens WHERE session_id = " . sql_quote($sid) . " AND replaced_by IS NOT NULL"),
     2, 'each spent token points at its successor');

  # reuse of a spent token: family and session end
  my $reuse = refresh($rt0);
  is($reuse->{status}, 400, 'reuse of a spent token: 400');
  is($reuse->{json}{error}, 'invalid_grant', 'invalid_grant');
  is(session_revoked($sid), 'refresh_token_reuse', 'the session ended');
  is(refresh($rt2)->{json}{error}, 'invalid_grant', 'the newest token of the family is dead too');
  my $i = oauth_post(endpoint_path($slug, 'introspect'), [token => $r2->{json}{access_token}],
                     basic => [$web->{client_id}, $web->{client_secret}]);
  is($i->{json}{active}, JSON::PP::false(), 'access tokens of the session are inactive');
  is(psql("SELECT count(*) FROM audit_log WHERE action = 'oauth.refresh' AND result = 'denied' "
          . "AND resource_id = " . sql_quote($sid)), 1, 'the reuse is audited');
};

subtest 'refresh: groups claim' => sub {
  my $g1 = admin_create($AT, 'groups', { tenant_id => $tenant->{id}, name => 'Engineers' });
  my $g2 = admin_create($AT, 'groups', { tenant_id => $tenant->{id}, name => 'Staff' });
  psql("INSERT INTO group_members (group_id, user_id) VALUES (" . sql_quote($g1->{id}) . ", " . sql_quote($user->{id}) . ")");
  psql("INSERT INTO group_nesting (parent_group_id, child_group_id) VALUES (" . sql_quote($g2->{id}) . ", "
       . sql_quote($g1->{id}) . ")");
  my ($sid, $rt) = new_login(scope => 'openid groups');
  my $r = refresh($rt);
  is($r->{status}, 200, 'refresh: 200') or return diag($r->{content});
  my $id = claims_of($r->{json}{id_token});
  is_deeply($id->{groups}, ['Engineers', 'Staff'], 'direct and nested groups, by name');
  ok(!exists $id->{email}, 'no email without the email scope');
};

subtest 'refresh: bound to its client' => sub {
  my ($sid, $rt) = new_login();
  my $r = refresh($rt, client => $web2);
  is($r->{status}, 400, 'another client: 400');
  is($r->{json}{error}, 'invalid_grant', 'invalid_grant');
  is(session_revoked($sid), '', 'the session is untouched');
  is(refresh($rt)->{status}, 200, 'and the token still works for its client');
};

subtest 'refresh: scope' => sub {
  my ($sid, $rt) = new_login();
  my $r = refresh($rt, scope => 'openid orders:read');
  is($r->{status}, 200, 'narrower scope: 200') or return diag($r->{content});
  is($r->{json}{scope}, 'openid orders:read', 'the access token has the narrower scope');
  my $r2 = refresh($r->{json}{refresh_token});
  is($r2->{json}{scope}, $FULL, 'the refresh token kept the original scope');
  my $r3 = refresh($r2->{json}{refresh_token}, scope => 'openid admin:read');
  is($r3->{status}, 400, 'wider scope: 400');
  is($r3->{json}{error}, 'invalid_scope', 'invalid_scope');
  is(refresh($r2->{json}{refresh_token})->{status}, 200, 'a refused request spends nothing');
};

subtest 'refresh: resource sets aud' => sub {
  my ($sid, $rt) = new_login();
  my $r = refresh($rt, resource => 'https://orders.example/api');
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is(claims_of($r->{json}{access_token})->{aud}, 'https://orders.example/api', 'aud');
  is(claims_of($r->{json}{id_token})->{aud}, $web->{client_id}, 'the ID token is still for the client');
};

subtest 'refresh: invalid, expired, revoked' => sub {
  is(refresh('skr_unknown')->{json}{error}, 'invalid_grant', 'unknown token');
  my $r = token_req($slug, [grant_type => 'refresh_token'], basic => [$web->{client_id}, $web->{client_secret}]);
  is($r->{json}{error}, 'invalid_request', 'no refresh_token');
  my ($sid, $rt) = new_login(ttl => -10);
  is(refresh($rt)->{json}{error}, 'invalid_grant', 'expired token');
  ($sid, $rt) = new_login();
  psql("UPDATE sessions SET revoked_at = now() WHERE id = " . sql_quote($sid));
  is(refresh($rt)->{json}{error}, 'invalid_grant', 'ended session');
  ($sid, $rt) = new_login();
  psql("UPDATE users SET status = 'SUSPENDED' WHERE id = " . sql_quote($user->{id}));
  is(refresh($rt)->{json}{error}, 'invalid_grant', 'suspended account');
  psql("UPDATE users SET status = 'ACTIVE' WHERE id = " . sql_quote($user->{id}));
  is(refresh($rt)->{status}, 200, 'active again: the unspent token works');
  my ($admin) = admin_login();
  is(refresh($admin->{refresh_token})->{json}{error}, 'invalid_grant', 'an admin console refresh token');
};

subtest 'refresh: public client (NATIVE) with client_id only' => sub {
  my ($sid, $rt) = new_login(client => $native, scope => 'openid');
  my $r = refresh($rt, client => $native);
  is($r->{status}, 200, 'NATIVE refresh: 200') or return diag($r->{content});
  ok($r->{json}{refresh_token}, 'rotated');
};

subtest 'refresh: revocation and introspection' => sub {
  my ($sid, $rt) = new_login();
  my $r = refresh($rt);
  my $rt1 = $r->{json}{refresh_token};
  my $i = oauth_post(endpoint_path($slug, 'introspect'), [token => $rt1, token_type_hint => 'refresh_token'],
                     basic => [$web->{client_id}, $web->{client_secret}]);
  ok($i->{json}{active}, 'introspection: active');
  is($i->{json}{client_id}, $web->{client_id}, 'client_id');
  is($i->{json}{scope}, $FULL, 'scope');
  ok($i->{json}{exp} > time(), 'exp');
  $i = oauth_post(endpoint_path($slug, 'introspect'), [token => $rt1],
                  basic => [$svc->{client_id}, $svc->{client_secret}]);
  is($i->{json}{active}, JSON::PP::false(), 'another client learns nothing');
  $i = oauth_post(endpoint_path($slug, 'introspect'), [token => $rt],
                  basic => [$web->{client_id}, $web->{client_secret}]);
  is($i->{json}{active}, JSON::PP::false(), 'the spent token: inactive');
  my $v = oauth_post(endpoint_path($slug, 'revoke'), [token => $rt1, token_type_hint => 'refresh_token'],
                     basic => [$svc->{client_id}, $svc->{client_secret}]);
  is($v->{status}, 200, 'revocation by another client: 200');
  is(refresh($rt1)->{status}, 200, '... and no effect');
  ($sid, $rt) = new_login();
  $rt1 = refresh($rt)->{json}{refresh_token};
  $v = oauth_post(endpoint_path($slug, 'revoke'), [token => $rt1], basic => [$web->{client_id}, $web->{client_secret}]);
  is($v->{status}, 200, 'revocation: 200');
  is(refresh($rt1)->{json}{error}, 'invalid_grant', 'the revoked token is refused');
  is(psql("SELECT count(*) FROM refresh_tokens WHERE session_id = " . sql_quote($sid) . " AND revoked_at IS NULL"),
     0, 'the whole family is revoked');
};

subtest 'refresh: concurrent presentations, one winner' => sub {
  my ($sid, $rt) = new_login();
  my @st = sort(at_once(2, sub { refresh($rt)->{status} }));
  is_deeply(\@st, [200, 400], 'one 200, one 400') or diag("@st");
};

# ---------------------------------------------------------------------------
# Token Exchange

my $XT = 'urn:ietf:params:oauth:grant-type:token-exchange';
my $AT_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

sub exchange {
  my ($client, %f) = @_;
  my $s = delete $f{slug_override};
  my %form = (grant_type => $XT, subject_token_type => $AT_TYPE, %f);
  return token_req(defined $s ? ($s eq 'platform' ? undef : $s) : $slug, [%form],
                   basic => [$client->{client_id}, $client->{client_secret}]);
}

my ($x_sid, $x_rt) = new_login();
my $user_at = refresh($x_rt)->{json}{access_token};

subtest 'exchange: a user token for another audience' => sub {
  my $r = exchange($svc, subject_token => $user_at, audience => 'orders-api');
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  my $t = $r->{json};
  is($t->{issued_token_type}, $AT_TYPE, 'issued_token_type');
  is($t->{token_type}, 'Bearer', 'Bearer');
  is($t->{scope}, $FULL, 'the subject token\'s scope');
  ok(!exists $t->{refresh_token}, 'no refresh token');
  ok(!exists $t->{id_token}, 'no ID token');
  is($r->{headers}{'cache-control'} // '', 'no-store', 'no-store');
  my $c = claims_of($t->{access_token}, verify_iss => $ISS);
  is($c->{sub}, $user->{id}, 'sub: the subject');
  is($c->{aud}, 'orders-api', 'aud: the audience');
  is($c->{client_id}, $svc->{client_id}, 'client_id: the exchanging client');
  is_deeply($c->{act}, { sub => $svc->{client_id} }, 'act: the client acts');
  is($c->{sid}, $x_sid, 'the session carries over');
  my $subject = claims_of($user_at);
  ok($c->{exp} <= $subject->{exp}, 'lives no longer than the subject token');

  my $i = oauth_post(endpoint_path($slug, 'introspect'), [token => $t->{access_token}],
                     basic => [$svc->{client_id}, $svc->{client_secret}]);
  ok($i->{json}{active}, 'introspection: active');
  is_deeply($i->{json}{act}, { sub => $svc->{client_id} }, 'introspection shows act');

  # the chain: exchanged again by another service
  my $r2 = exchange($svc2, subject_token => $t->{access_token}, resource => 'https://billing.example/');
  is($r2->{status}, 200, 'second exchange: 200') or return diag($r2->{content});
  my $c2 = claims_of($r2->{json}{access_token});
  is_deeply($c2->{act}, { sub => $svc2->{client_id}, act => { sub => $svc->{client_id} } },
            'act nests the earlier actor');
  is($c2->{aud}, 'https://billing.example/', 'resource sets aud');
};

subtest 'exchange: actor token' => sub {
  my $agent = admin_create($AT, 'agents', { name => 'actor agent', tenant_id => $tenant->{id},
                                            allowed_scopes => ['mcp:use'] });
  my $actor = client_cc($slug, $agent)->{json}{access_token};
  my $r = exchange($svc, subject_token => $user_at, actor_token => $actor, actor_token_type => $AT_TYPE);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  my $c = claims_of($r->{json}{access_token});
  is_deeply($c->{act}, { sub => $agent->{client_id} }, 'act.sub is the actor');
  is($c->{aud}, $svc->{client_id}, 'aud defaults to the exchanging client');
  is(exchange($svc, subject_token => $user_at, actor_token => $actor)->{json}{error}, 'invalid_request',
     'actor_token without its type');
  is(exchange($svc, subject_token => $user_at, actor_token => 'nonsense', actor_token_type => $AT_TYPE)
     ->{json}{error}, 'invalid_grant', 'an invalid actor token');
};

subtest 'exchange: scope narrowing only' => sub {
  my $r = exchange($svc, subject_token => $user_at, scope => 'orders:read');
  is($r->{status}, 200, 'a subset: 200');
  is($r->{json}{scope}, 'orders:read', 'the narrower scope');
  $r = exchange($svc, subject_token => $user_at, scope => 'orders:read orders:write');
  is($r->{status}, 400, 'more than the subject token: 400');
  is($r->{json}{error}, 'invalid_scope', 'invalid_scope');
};

subtest 'exchange: a client\'s token' => sub {
  my $t = client_cc($slug, $svc2)->{json}{access_token};
  my $r = exchange($svc, subject_token => $t);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  my $c = claims_of($r->{json}{access_token});
  is($c->{sub}, $svc2->{client_id}, 'sub: the subject client');
  is($c->{token_type}, 'client_credentials', 'still a client token');
  is_deeply($c->{act}, { sub => $svc->{client_id} }, 'act');
  my $i = oauth_post(endpoint_path($slug, 'introspect'), [token => $r->{json}{access_token}],
                     basic => [$svc->{client_id}, $svc->{client_secret}]);
  ok($i->{json}{active}, 'active');
  oauth_post(endpoint_path($slug, 'revoke'), [token => $r->{json}{access_token}],
             basic => [$svc->{client_id}, $svc->{client_secret}]);
  $i = oauth_post(endpoint_path($slug, 'introspect'), [token => $r->{json}{access_token}],
                  basic => [$svc->{client_id}, $svc->{client_secret}]);
  is($i->{json}{active}, JSON::PP::false(), 'revocable like any client token');
};

subtest 'exchange: refusals' => sub {
  my $r = exchange($no_x, subject_token => $user_at);
  is($r->{status}, 400, 'without token_exchange_allowed: 400');
  is($r->{json}{error}, 'unauthorized_client', 'unauthorized_client');
  my $agent = admin_create($AT, 'agents', { name => 'x agent', tenant_id => $tenant->{id} });
  is(exchange($agent, subject_token => $user_at)->{json}{error}, 'unauthorized_client', 'an agent');

  my $global = new_app($AT, application_type => 'SERVICE', scope => 'GLOBAL', allowed_scopes => ['orders:read'],
                       token_exchange_allowed => JSON::PP::true());
  my $platform_token = client_cc(undef, $global)->{json}{access_token};
  $r = exchange($svc, subject_token => $platform_token);
  is($r->{status}, 400, 'a platform token at a tenant: 400');
  is($r->{json}{error}, 'invalid_grant', 'invalid_grant');
  is(exchange($global, subject_token => $user_at, slug_override => 'platform')->{json}{error}, 'invalid_grant',
     'a tenant token at the platform');
  my $other = create_tenant();
  my $oapp = new_app($AT, application_type => 'SERVICE', scope => 'TENANT', tenant_id => $other->{id},
                     allowed_scopes => ['orders:read']);
  is(exchange($svc, subject_token => client_cc($other->{slug}, $oapp)->{json}{access_token})->{json}{error},
     'invalid_grant', 'a token of another tenant');
  my $forged = join('.', (split /\./, $user_at)[0, 1], 'AAAA');
  is(exchange($svc, subject_token => $forged)->{json}{error}, 'invalid_grant', 'a bad signature');

  is(exchange($svc)->{json}{error}, 'invalid_request', 'no subject_token');
  $r = token_req($slug, [grant_type => $XT, subject_token => $user_at], basic => [$svc->{client_id}, $svc->{client_secret}]);
  is($r->{json}{error}, 'invalid_request', 'no subject_token_type');
  is(exchange($svc, subject_token => $user_at, subject_token_type => 'urn:x')->{json}{error}, 'invalid_request',
     'an unknown subject_token_type');
  is(exchange($svc, subject_token => $user_at, requested_token_type => 'urn:ietf:params:oauth:token-type:saml2')
     ->{json}{error}, 'invalid_request', 'an unsupported requested_token_type');
  is(exchange($svc, subject_token => $user_at, resource => 'relative')->{json}{error}, 'invalid_target',
     'a relative resource');

  my ($sid, $rt) = new_login();
  my $at = refresh($rt)->{json}{access_token};
  psql("UPDATE sessions SET revoked_at = now() WHERE id = " . sql_quote($sid));
  is(exchange($svc, subject_token => $at)->{json}{error}, 'invalid_grant', 'the subject\'s session ended');
};

done_testing();
