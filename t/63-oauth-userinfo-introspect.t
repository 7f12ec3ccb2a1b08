#!/usr/bin/perl
# UserInfo (OpenID Connect Core §5.3) and introspection (RFC 7662) of people's tokens, and
# revocation (RFC 7009) of a person's access token, which ends the session it belongs to.
# UserInfo takes a person's bearer token with "openid" of the same flavour, releases claims by
# scope, and answers RFC 6750 challenges otherwise. Introspection says {"active": false} for
# anything invalid, expired, revoked or issued by another flavour.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use SK qw(:all);
use SKOAuth qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $AT = admin_token();
my $tenant = create_tenant();
my $slug = $tenant->{slug};
my $user = create_user(role => 'user', tenant_id => $tenant->{id}, first_name => 'Grace', last_name => 'Hopper',
                       display_name => undef);
my $web = new_app($AT, application_type => 'WEB', scope => 'TENANT', tenant_id => $tenant->{id},
                  allowed_scopes => [qw(openid profile email groups orders:read)],
                  redirect_uris => ['https://web.example/cb']);
my $rs = new_app($AT, application_type => 'SERVICE', scope => 'TENANT', tenant_id => $tenant->{id},
                 allowed_scopes => ['orders:read']);
my $global = new_app($AT, application_type => 'WEB', scope => 'GLOBAL',
                     allowed_scopes => [qw(openid profile email)], redirect_uris => ['https://g.example/cb']);
my $group = admin_create($AT, 'groups', { tenant_id => $tenant->{id}, name => 'Pilots' });
psql("INSERT INTO group_members (group_id, user_id) VALUES (" . sql_quote($group->{id}) . ", " . sql_quote($user->{id}) . ")");

# a person's tokens as a sign-in would give them: (session id, access token, response)
sub login {
  my (%o) = @_;
  my $client = $o{client} // $web;
  my $sid = sso_session(user_id => $o{user_id} // $user->{id}, tenant_id => $tenant->{id},
                        client_id => $client->{client_id});
  my $rt = sso_refresh(session_id => $sid, user_id => $o{user_id} // $user->{id},
                       client_id => $client->{client_id}, scope => $o{scope} // 'openid profile email groups');
  my $r = token_req($o{platform} ? undef : $slug, [grant_type => 'refresh_token', refresh_token => $rt],
                    basic => [$client->{client_id}, $client->{client_secret}]);
  die "refresh: $r->{status} $r->{content}\n" unless $r->{status} == 200;
  return ($sid, $r->{json}{access_token}, $r);
}

sub userinfo {
  my ($token, %o) = @_;
  my $path = endpoint_path(exists $o{slug} ? $o{slug} : $slug, 'userinfo');
  return req(GET => $path, (defined $token ? (token => $token) : ()));
}

sub challenge_ok {
  my ($r, $status, $error, $label) = @_;
  is($r->{status}, $status, "$label: $status") or diag($r->{content});
  my $h = $r->{headers}{'www-authenticate'} // '';
  like($h, qr/^Bearer realm="scaikey"/, "$label: Bearer challenge");
  if (defined $error) {
    like($h, qr/error="\Q$error\E"/, "$label: error=\"$error\"");
    is($r->{json}{error}, $error, "$label: error in the body");
  }
  else {
    unlike($h, qr/error=/, "$label: no error code without a token (RFC 6750 §3.1)");
  }
}

sub introspect {
  my ($token, $client, %o) = @_;
  $client //= $rs;
  return oauth_post(endpoint_path(exists $o{slug} ? $o{slug} : $slug, 'introspect'),
                    [token => $token, %{ $o{form} // {} }], basic => [$client->{client_id}, $client->{client_secret}]);
}

subtest 'userinfo: claims by scope' => sub {
  my ($sid, $at) = login();
  my $r = userinfo($at);
  is($r->{status}, 200, 'GET: 200') or return diag($r->{content});
  is($r->{headers}{'cache-control'} // '', 'no-store', 'no-store');
  my $u = $r->{json};
  is($u->{sub}, $user->{id}, 'sub');
  is($u->{name}, 'Grace Hopper', 'name from the given and family names when there is no display name');
  is($u->{given_name}, 'Grace', 'given_name');
  is($u->{family_name}, 'Hopper', 'family_name');
  is($u->{preferred_username}, $user->{email}, 'preferred_username');
  is($u->{email}, $user->{email}, 'email');
  is($u->{email_verified}, JSON::PP::false(), 'email_verified is a boolean');
  is_deeply($u->{groups}, ['Pilots'], 'groups');
  is($u->{tenant_id}, $tenant->{id}, 'tenant_id');

  my ($sid2, $at2) = login(scope => 'openid');
  is_deeply(userinfo($at2)->{json}, { sub => $user->{id}, tenant_id => $tenant->{id} }, 'openid alone: sub only');
  my ($sid3, $at3) = login(scope => 'openid email');
  my $e = userinfo($at3)->{json};
  ok(exists $e->{email} && !exists $e->{name} && !exists $e->{groups}, 'email alone: no profile, no groups');

  $r = req(POST => endpoint_path($slug, 'userinfo'), token => $at, raw => '',
           headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
  is($r->{status}, 200, 'POST with the header: 200');
  $r = oauth_post(endpoint_path($slug, 'userinfo'), [access_token => $at]);
  is($r->{status}, 200, 'POST with access_token in the form (RFC 6750 §2.2): 200');
  is($r->{json}{sub}, $user->{id}, '... the same person');
  $r = oauth_post(endpoint_path($slug, 'userinfo'), [access_token => $at], token => $at);
  challenge_ok($r, 400, 'invalid_request', 'header and form together');
};

subtest 'userinfo: refusals' => sub {
  challenge_ok(userinfo(undef), 401, undef, 'no token');
  challenge_ok(userinfo('garbage'), 401, 'invalid_token', 'garbage');
  my $cc = client_cc($slug, $rs)->{json}{access_token};
  challenge_ok(userinfo($cc), 401, 'invalid_token', 'a client\'s token');
  my ($sid, $at) = login(scope => 'orders:read');
  challenge_ok(userinfo($at), 403, 'insufficient_scope', 'no openid scope');
  ($sid, $at) = login();
  challenge_ok(userinfo($at, slug => undef), 401, 'invalid_token', 'a tenant token at the platform');
  my $other = create_tenant();
  challenge_ok(userinfo($at, slug => $other->{slug}), 401, 'invalid_token', 'at another tenant');
  psql("UPDATE users SET status = 'SUSPENDED' WHERE id = " . sql_quote($user->{id}));
  challenge_ok(userinfo($at), 401, 'invalid_token', 'suspended account');
  psql("UPDATE users SET status = 'ACTIVE' WHERE id = " . sql_quote($user->{id}));
  is(userinfo($at)->{status}, 200, 'active again: 200');
  psql("UPDATE sessions SET revoked_at = now() WHERE id = " . sql_quote($sid));
  challenge_ok(userinfo($at), 401, 'invalid_token', 'ended session');
  my $now = time();
  my $expired = server_sign({ iss => issuer_url($slug), sub => $user->{id}, aud => $web->{client_id},
                              scope => 'openid', sid => $sid, client_id => $web->{client_id},
                              iat => $now - 7200, nbf => $now - 7200, exp => $now - 3600, jti => 'x1' });
  challenge_ok(userinfo($expired), 401, 'invalid_token', 'expired token');
};

subtest 'userinfo: platform flavour' => sub {
  my ($sid, $at) = login(client => $global, platform => 1, scope => 'openid email');
  my $r = userinfo($at, slug => undef);
  is($r->{status}, 200, 'platform userinfo: 200') or return diag($r->{content});
  is($r->{json}{email}, $user->{email}, 'email');
  challenge_ok(userinfo($at), 401, 'invalid_token', 'a platform token at a tenant');
};

subtest 'introspection of a person\'s access token' => sub {
  my ($sid, $at) = login();
  my $r = introspect($at);
  is($r->{status}, 200, 'status 200');
  is($r->{headers}{'cache-control'} // '', 'no-store', 'no-store');
  my $i = $r->{json};
  ok($i->{active}, 'active');
  is($i->{sub}, $user->{id}, 'sub');
  is($i->{sid}, $sid, 'sid');
  is($i->{client_id}, $web->{client_id}, 'client_id');
  is($i->{aud}, $web->{client_id}, 'aud');
  is($i->{iss}, issuer_url($slug), 'iss');
  is($i->{scope}, 'openid profile email groups', 'scope');
  is($i->{token_type}, 'Bearer', 'token_type');
  is($i->{username}, $user->{email}, 'username');
  ok($i->{exp} > time() && $i->{iat} <= time() + 5, 'exp and iat');
  is($i->{tenant_id}, $tenant->{id}, 'tenant_id');

  is(introspect($at, undef, form => { token_type_hint => 'refresh_token' })->{json}{active}, JSON::PP::true(),
     'a wrong hint is only a hint');
  is(introspect($at, $global, slug => undef)->{json}{active}, JSON::PP::false(), 'at the platform: inactive');

  my $now = time();
  my %base = (iss => issuer_url($slug), sub => $user->{id}, aud => $web->{client_id}, scope => 'openid',
              sid => $sid, client_id => $web->{client_id}, jti => 'x2');
  is(introspect(server_sign({ %base, iat => $now - 7200, nbf => $now - 7200, exp => $now - 3600 }))->{json}{active},
     JSON::PP::false(), 'expired: inactive');
  is(introspect(server_sign({ %base, iss => 'https://elsewhere.example', iat => $now, exp => $now + 600 }))
     ->{json}{active}, JSON::PP::false(), 'another issuer, our key: inactive');
  is(introspect(server_sign({ %base, iat => $now, exp => $now + 600 }))->{json}{active}, JSON::PP::true(),
     'the same claims with our issuer: active (the checks above are the reason)');
  is_deeply(introspect('garbage')->{json}, { active => JSON::PP::false() }, 'garbage: inactive');
  is_deeply(introspect('a.b.c')->{json}, { active => JSON::PP::false() }, 'not a JWT: inactive');
  is(introspect('x' x 9000)->{json}{active}, JSON::PP::false(), 'oversized: inactive');
};

subtest 'introspection: client authentication' => sub {
  my ($sid, $at) = login();
  my $r = oauth_post(endpoint_path($slug, 'introspect'), [token => $at]);
  is($r->{status}, 401, 'no client: 401');
  is($r->{json}{error}, 'invalid_client', 'invalid_client');
  $r = oauth_post(endpoint_path($slug, 'introspect'), [token => $at], basic => [$rs->{client_id}, 'wrong']);
  is($r->{status}, 401, 'wrong secret: 401');
  $r = oauth_post(endpoint_path($slug, 'introspect'), [], basic => [$rs->{client_id}, $rs->{client_secret}]);
  is($r->{status}, 400, 'no token: 400');
  is($r->{json}{error}, 'invalid_request', 'invalid_request');
  $r = oauth_post(endpoint_path($slug, 'introspect'), [token => $at, client_id => $rs->{client_id},
                                                         client_secret => $rs->{client_secret}]);
  ok($r->{json}{active}, 'client_secret_post works too');
};

subtest 'revocation of a person\'s access token ends the session' => sub {
  my ($sid, $at, $resp) = login();
  my $rt = $resp->{json}{refresh_token};
  my $r = oauth_post(endpoint_path($slug, 'revoke'), [token => $at, token_type_hint => 'access_token'],
                     basic => [$rs->{client_id}, $rs->{client_secret}]);
  is($r->{status}, 200, 'another client: 200');
  ok(introspect($at)->{json}{active}, '... and the token lives on');
  $r = oauth_post(endpoint_path($slug, 'revoke'), [token => $at, token_type_hint => 'access_token'],
                  basic => [$web->{client_id}, $web->{client_secret}]);
  is($r->{status}, 200, 'its client: 200');
  is($r->{content}, '', 'empty body');
  is(introspect($at)->{json}{active}, JSON::PP::false(), 'inactive');
  is(userinfo($at)->{status}, 401, 'userinfo refuses it');
  ok(psql("SELECT revoked_at IS NOT NULL FROM sessions WHERE id = " . sql_quote($sid)) eq 't', 'the session ended');
  my $x = token_req($slug, [grant_type => 'refresh_token', refresh_token => $rt],
                    basic => [$web->{client_id}, $web->{client_secret}]);
  is($x->{json}{error}, 'invalid_grant', 'the session\'s refresh token is dead');
};

done_testing();
