#!/usr/bin/perl
# Self-service at /api/v1/me: profile, password change, own sessions, authorized applications.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $t = create_tenant();
sub login {
  my ($u, $password) = @_;
  return req(POST => "/api/v1/auth/tenants/$t->{slug}/login",
             json => { email => $u->{email}, password => $password // $u->{password} }, ip => unique_ip());
}

subtest 'profile' => sub {
  my $u = create_user(role => 'user', tenant_id => $t->{id}, prefix => 'me');
  my $tok = login($u)->{json}{access_token};
  is(req(GET => '/api/v1/me')->{status}, 401, 'no token 401');
  my $r = req(GET => '/api/v1/me', token => $tok);
  is($r->{status}, 200, 'GET 200') or diag($r->{content});
  is($r->{json}{email}, $u->{email}, 'email');
  is($r->{json}{tenant}{slug}, $t->{slug}, 'tenant');
  ok(!grep({ /hash|secret/ } keys %{ $r->{json} }), 'no secrets');
  $r = req(PATCH => '/api/v1/me', token => $tok,
           json => { first_name => 'Ada', last_name => 'Lovelace', display_name => 'Ada L.', locale => 'en-GB',
                     timezone => 'Europe/London', phone => '+44 20 7946 0000' });
  is($r->{status}, 200, 'PATCH 200') or diag($r->{content});
  is($r->{json}{$_->[0]}, $_->[1], "$_->[0] updated")
    for [first_name => 'Ada'], [last_name => 'Lovelace'], [display_name => 'Ada L.'], [locale => 'en-GB'],
        [timezone => 'Europe/London'], [phone => '+44 20 7946 0000'];
  $r = req(PATCH => '/api/v1/me', token => $tok, json => { phone => undef });
  is($r->{status}, 200, 'null clears a member');
  ok(!defined $r->{json}{phone}, 'phone cleared');
  is($r->{json}{first_name}, 'Ada', 'other members untouched');
  for my $f (qw(email role status tenant_id password mfa_enabled)) {
    my $x = req(PATCH => '/api/v1/me', token => $tok, json => { $f => 'x' });
    is($x->{status}, 422, "$f: 422");
    is((find_verror($x, ['body', $f]) // {})->{type}, 'extra_forbidden', "$f: extra_forbidden");
  }
  is(psql("SELECT role || email FROM users WHERE id = " . sql_quote($u->{id})), "user$u->{email}", 'nothing else changed');
  is(req(PATCH => '/api/v1/me', token => $tok, json => { first_name => 'x' x 101 })->{status}, 422, 'too long 422');
  my $admin = admin_login();
  $r = req(GET => '/api/v1/me', token => $admin->{access_token});
  is($r->{status}, 200, 'an administrator has a profile too');
  is($r->{json}{role}, 'super_admin', 'role');
  cmp_ok(psql("SELECT count(*) FROM audit_log WHERE action = 'user.profile_update' AND actor_id = " . sql_quote($u->{id})),
         '>=', 1, 'audited');
};

subtest 'password change' => sub {
  my $u = create_user(role => 'user', tenant_id => $t->{id}, prefix => 'me-pw');
  my $a = login($u)->{json};
  my $b = login($u)->{json};
  my $r = req(POST => '/api/v1/me/password', token => $a->{access_token},
              json => { current_password => 'not-it', new_password => 'a-new-password-1' });
  is($r->{status}, 400, 'wrong current password 400');
  is_deeply($r->{json}, { detail => 'Current password is incorrect' }, 'detail');
  $r = req(POST => '/api/v1/me/password', token => $a->{access_token}, json => { new_password => 'a-new-password-1' });
  is($r->{status}, 422, 'current_password required');
  $r = req(POST => '/api/v1/me/password', token => $a->{access_token},
           json => { current_password => $u->{password}, new_password => 'short' });
  is($r->{status}, 422, 'too short (default minimum 8) 422');
  ok(find_verror($r, ['body', 'new_password']), 'loc body.new_password');
  $r = req(POST => '/api/v1/me/password', token => $a->{access_token},
           json => { current_password => $u->{password}, new_password => $u->{password} });
  is($r->{status}, 422, 'the same password 422');
  psql("UPDATE tenants SET settings = '{\"password_min_length\": 20}' WHERE id = " . sql_quote($t->{id}));
  $r = req(POST => '/api/v1/me/password', token => $a->{access_token},
           json => { current_password => $u->{password}, new_password => 'only-15-chars-x' });
  is($r->{status}, 422, "the tenant's password_min_length applies");
  psql("UPDATE tenants SET settings = '{}' WHERE id = " . sql_quote($t->{id}));
  my $old_hash = psql("SELECT password_hash FROM users WHERE id = " . sql_quote($u->{id}));
  $r = req(POST => '/api/v1/me/password', token => $a->{access_token},
           json => { current_password => $u->{password}, new_password => 'a-new-password-1' });
  is($r->{status}, 200, 'change 200') or diag($r->{content});
  is($r->{json}{sessions_revoked}, 1, 'one other session ended');
  is(req(GET => '/api/v1/me', token => $a->{access_token})->{status}, 200, 'the current session lives on');
  is(req(GET => '/api/v1/me', token => $b->{access_token})->{status}, 401, 'the other session is over');
  is(req(POST => "/api/v1/auth/tenants/$t->{slug}/refresh", json => { refresh_token => $b->{refresh_token} })->{status},
     401, "and its refresh token");
  is(login($u)->{status}, 401, 'the old password no longer works');
  is(login($u, 'a-new-password-1')->{status}, 200, 'the new one does');
  is(psql("SELECT count(*) FROM password_history WHERE user_id = " . sql_quote($u->{id}) . " AND password_hash = "
          . sql_quote($old_hash)), 1, 'the old digest is in the history');
  my $audit = psql("SELECT count(*) FROM audit_log WHERE action = 'user.password_change' AND actor_id = " . sql_quote($u->{id})
                   . " AND details::text ~* 'new-password'");
  is($audit, 0, 'no password in the audit log');
};

subtest 'sessions' => sub {
  my $u = create_user(role => 'user', tenant_id => $t->{id}, prefix => 'me-ses');
  my $a = login($u)->{json};
  my $b = login($u)->{json};
  my $r = req(GET => '/api/v1/me/sessions', token => $a->{access_token});
  is($r->{status}, 200, 'list 200');
  is(scalar @{ $r->{json}{items} }, 2, 'two sessions');
  my ($cur) = grep { $_->{current} } @{ $r->{json}{items} };
  my ($other) = grep { !$_->{current} } @{ $r->{json}{items} };
  ok($cur && $other, 'one current, one other');
  my $stranger = create_user(role => 'user', tenant_id => $t->{id}, prefix => 'me-str');
  my $s = login($stranger)->{json};
  my (undef, $sc) = verify_jwt($s->{access_token}, scalar jwks());
  is(req(DELETE => "/api/v1/me/sessions/$sc->{sid}", token => $a->{access_token})->{status}, 404,
     "someone else's session: 404");
  is(req(GET => '/api/v1/me', token => $s->{access_token})->{status}, 200, 'and it lives on');
  is(req(DELETE => '/api/v1/me/sessions/ses_doesnotexist00', token => $a->{access_token})->{status}, 404, 'unknown 404');
  $r = req(DELETE => "/api/v1/me/sessions/$other->{id}", token => $a->{access_token});
  is($r->{status}, 200, 'revoke own other session 200');
  is(req(GET => '/api/v1/me', token => $b->{access_token})->{status}, 401, 'that session is over');
  is(req(DELETE => "/api/v1/me/sessions/$other->{id}", token => $a->{access_token})->{status}, 404, 'again 404');
  is(scalar @{ req(GET => '/api/v1/me/sessions', token => $a->{access_token})->{json}{items} }, 1, 'one left');
};

subtest 'authorized apps' => sub {
  my $u = create_user(role => 'user', tenant_id => $t->{id}, prefix => 'me-app');
  my $a = login($u)->{json};
  my $app = psql("INSERT INTO applications (name, application_type, scope, tenant_id) VALUES "
                 . "('Consent test app', 'SPA', 'TENANT', " . sql_quote($t->{id}) . ") RETURNING id || '|' || client_id");
  my ($app_id, $cid) = split /\|/, $app;
  psql("INSERT INTO oauth_consents (user_id, application_id, scopes) VALUES (" . sql_quote($u->{id}) . ", "
       . sql_quote($app_id) . ", '[\"openid\", \"profile\"]')");
  my $sid = psql("INSERT INTO sessions (user_id, tenant_id, kind, client_id, expires_at) VALUES (" . sql_quote($u->{id})
                 . ", " . sql_quote($t->{id}) . ", 'sso', " . sql_quote($cid) . ", now() + interval '1 hour') RETURNING id");
  psql("INSERT INTO refresh_tokens (token_hash, session_id, family_id, user_id, client_id, expires_at) VALUES ("
       . "encode(sha256('rt-$cid'::bytea), 'hex'), " . sql_quote($sid) . ", gen_random_uuid(), " . sql_quote($u->{id})
       . ", " . sql_quote($cid) . ", now() + interval '1 day')");
  my $r = req(GET => '/api/v1/me/authorized-apps', token => $a->{access_token});
  is($r->{status}, 200, 'list 200');
  is(scalar @{ $r->{json}{items} }, 1, 'one app');
  is($r->{json}{items}[0]{client_id}, $cid, 'client_id');
  is($r->{json}{items}[0]{name}, 'Consent test app', 'name');
  is_deeply($r->{json}{items}[0]{scopes}, ['openid', 'profile'], 'scopes');
  my $other = create_user(role => 'user', tenant_id => $t->{id}, prefix => 'me-app2');
  my $o = login($other)->{json};
  is(req(DELETE => "/api/v1/me/authorized-apps/$cid", token => $o->{access_token})->{status}, 404,
     'another user has no such consent: 404');
  $r = req(DELETE => "/api/v1/me/authorized-apps/$cid", token => $a->{access_token});
  is($r->{status}, 200, 'revoke 200') or diag($r->{content});
  is($r->{json}{refresh_tokens_revoked}, 1, "the client's refresh tokens of the user are revoked");
  is(psql("SELECT count(*) FROM refresh_tokens WHERE client_id = " . sql_quote($cid) . " AND revoked_at IS NULL"), 0,
     'none left live');
  is(scalar @{ req(GET => '/api/v1/me/authorized-apps', token => $a->{access_token})->{json}{items} }, 0, 'list empty');
  is(req(DELETE => "/api/v1/me/authorized-apps/$cid", token => $a->{access_token})->{status}, 404, 'again 404');
};

done_testing();
