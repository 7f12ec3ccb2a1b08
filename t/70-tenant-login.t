#!/usr/bin/perl
# Sign-in at a tenant's login page: /api/v1/auth/tenants/{slug}/{login,refresh,logout}.
# Tokens of the tenant's flavour, sessions of kind 'user', rotation with reuse detection,
# throttling, the same 401 for unknown emails and wrong passwords, disabled accounts, the MFA
# challenge of a tenant that requires MFA, and the tenant check of /api/v1/me's bearer.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $INVALID = { detail => 'Invalid email or password' };
sub path { "/api/v1/auth/tenants/$_[0]/$_[1]" }
sub login {
  my ($slug, $email, $password, $ip) = @_;
  return req(POST => path($slug, 'login'), json => { email => $email, password => $password },
             ip => $ip // unique_ip());
}
sub audit_count {
  my ($action, $result, $email) = @_;
  return psql(sprintf("SELECT count(*) FROM audit_log WHERE action = %s AND result = %s AND lower(actor_email) = lower(%s)",
                      sql_quote($action), sql_quote($result), sql_quote($email)));
}

my $t  = create_tenant();
my $t2 = create_tenant();
my $u  = create_user(role => 'user', tenant_id => $t->{id}, prefix => 'tl');
my $jwks = jwks();

subtest 'sign-in, tokens of the tenant flavour, /api/v1/me' => sub {
  my $r = login($t->{slug}, uc $u->{email}, $u->{password});
  is($r->{status}, 200, 'login 200') or diag($r->{content});
  my $j = $r->{json};
  is($j->{token_type}, 'Bearer', 'token_type');
  like($j->{refresh_token} // '', qr/\Askr_/, 'opaque refresh token');
  cmp_ok($j->{expires_in}, '>', 0, 'expires_in');
  is($j->{user}{id}, $u->{id}, 'user.id');
  is($j->{user}{tenant_id}, $t->{id}, 'user.tenant_id');
  ok(!exists $j->{mfa_required}, 'no MFA challenge');
  ok(!grep({ /hash|password/ } keys %{ $j->{user} }), 'no password material');
  like($r->{headers}{'cache-control'} // '', qr/no-store/, 'Cache-Control: no-store');
  my ($h, $c) = verify_jwt($j->{access_token}, $jwks);
  ok($c, 'signature verifies against the JWKS');
  is($c->{iss}, base() . "/api/v1/auth/tenants/$t->{slug}", 'iss is the tenant issuer');
  is($c->{aud}, 'scaikey-portal', 'aud');
  is($c->{sub}, $u->{id}, 'sub');
  is($c->{tenant_id}, $t->{id}, 'tenant_id claim');
  is($c->{scope}, 'openid profile email', 'scope');
  is($c->{role}, 'user', 'role');
  is($c->{exp} - $c->{iat}, $j->{expires_in}, 'exp - iat == expires_in');
  is(psql("SELECT kind || '|' || user_id || '|' || tenant_id FROM sessions WHERE id = " . sql_quote($c->{sid})),
     "user|$u->{id}|$t->{id}", 'sid is a session of kind user');
  my $me = req(GET => '/api/v1/me', token => $j->{access_token});
  is($me->{status}, 200, '/api/v1/me accepts the tenant token') or diag($me->{content});
  is($me->{json}{id}, $u->{id}, 'me.id');
  is($me->{json}{session_id}, $c->{sid}, 'me.session_id');
  cmp_ok(audit_count('user.login', 'success', $u->{email}), '>=', 1, 'audited user.login success');
  ok(psql("SELECT last_login_at IS NOT NULL FROM users WHERE id = " . sql_quote($u->{id})) eq 't', 'last_login_at set');
};

subtest 'any role of the tenant signs in; other tenants\' users do not' => sub {
  my $adm = create_user(role => 'tenant_admin', tenant_id => $t->{id}, prefix => 'tl-adm');
  my $r = login($t->{slug}, $adm->{email}, $adm->{password});
  is($r->{status}, 200, 'tenant_admin signs in at the tenant') or diag($r->{content});
  is($r->{json}{user}{role}, 'tenant_admin', 'role');
  my $other = create_user(role => 'user', tenant_id => $t2->{id}, prefix => 'tl-other');
  $r = login($t->{slug}, $other->{email}, $other->{password});
  is($r->{status}, 401, 'a user of another tenant: 401');
  is_deeply($r->{json}, $INVALID, 'same body');
  $r = login($t->{slug}, admin_email(), admin_password());
  is($r->{status}, 401, 'the platform admin is no user of the tenant');
};

subtest 'unknown email and wrong password look the same' => sub {
  my $a = login($t->{slug}, unique_email('nobody'), 'whatever-password');
  my $b = login($t->{slug}, $u->{email}, 'wrong-password');
  is($a->{status}, 401, 'unknown email 401');
  is($b->{status}, 401, 'wrong password 401');
  is_deeply($a->{json}, $INVALID, 'unknown email body');
  is_deeply($b->{json}, $INVALID, 'wrong password body');
  cmp_ok(audit_count('user.login', 'failure', $u->{email}), '>=', 1, 'audited user.login failure');
  psql("DELETE FROM auth_throttle WHERE key LIKE " . sql_quote("user-acct:$t->{id}:%"));
};

subtest 'unknown tenant, bad input' => sub {
  my $r = login('no-such-tenant-' . unique_slug(), $u->{email}, $u->{password});
  is($r->{status}, 404, 'unknown slug 404');
  $r = req(POST => path($t->{slug}, 'login'), json => { email => $u->{email} }, ip => unique_ip());
  is($r->{status}, 422, 'missing password 422');
  ok(find_verror($r, ['body', 'password']), 'loc body.password');
  $r = req(POST => path($t->{slug}, 'login'), json => { email => $u->{email}, password => 'x', extra => 1 });
  is($r->{status}, 422, 'unknown member 422');
};

subtest 'disabled accounts and tenants' => sub {
  my $s = create_user(role => 'user', tenant_id => $t->{id}, status => 'SUSPENDED', prefix => 'tl-susp');
  my $r = login($t->{slug}, $s->{email}, $s->{password});
  is($r->{status}, 403, 'suspended user 403');
  is_deeply($r->{json}, { detail => 'Account is disabled' }, 'detail');
  $r = login($t->{slug}, $s->{email}, 'wrong');
  is($r->{status}, 401, 'suspended user with a wrong password: plain 401');
  cmp_ok(audit_count('user.login', 'denied', $s->{email}), '>=', 1, 'audited user.login denied');
  my $ts = create_tenant(status => 'SUSPENDED');
  my $tu = create_user(role => 'user', tenant_id => $ts->{id}, prefix => 'tl-ts');
  $r = login($ts->{slug}, $tu->{email}, $tu->{password});
  is($r->{status}, 403, 'user of a suspended tenant 403');
};

subtest 'refresh rotation and reuse' => sub {
  my $j = login($t->{slug}, $u->{email}, $u->{password})->{json};
  my $r1 = req(POST => path($t->{slug}, 'refresh'), json => { refresh_token => $j->{refresh_token} });
  is($r1->{status}, 200, 'refresh 200') or diag($r1->{content});
  isnt($r1->{json}{refresh_token}, $j->{refresh_token}, 'rotated');
  my (undef, $c) = verify_jwt($r1->{json}{access_token}, $jwks);
  is($c->{iss}, base() . "/api/v1/auth/tenants/$t->{slug}", 'new access token: tenant iss');
  my $wrong = req(POST => path($t2->{slug}, 'refresh'), json => { refresh_token => $r1->{json}{refresh_token} });
  is($wrong->{status}, 401, "another tenant's refresh endpoint refuses it");
  my $portal = req(POST => '/api/v1/auth/refresh', json => { refresh_token => $r1->{json}{refresh_token} });
  is($portal->{status}, 401, 'the portal refresh endpoint refuses a tenant session');
  my $again = req(POST => path($t->{slug}, 'refresh'), json => { refresh_token => $j->{refresh_token} });
  is($again->{status}, 401, 'the spent token is refused');
  is_deeply($again->{json}, { detail => 'Invalid refresh token' }, 'detail');
  my $after = req(POST => path($t->{slug}, 'refresh'), json => { refresh_token => $r1->{json}{refresh_token} });
  is($after->{status}, 401, 'reuse ended the session: the newest refresh token is dead too');
  is(req(GET => '/api/v1/me', token => $r1->{json}{access_token})->{status}, 401, 'and its access tokens');
  is(req(POST => path($t->{slug}, 'refresh'), json => { refresh_token => 'skr_nonsense' })->{status}, 401, 'garbage 401');
};

subtest 'logout' => sub {
  my $j = login($t->{slug}, $u->{email}, $u->{password})->{json};
  is(req(POST => path($t->{slug}, 'logout'))->{status}, 401, 'without a token 401');
  my $r = req(POST => path($t->{slug}, 'logout'), token => $j->{access_token});
  is($r->{status}, 200, 'logout 200');
  is(req(GET => '/api/v1/me', token => $j->{access_token})->{status}, 401, 'the access token is dead');
  is(req(POST => path($t->{slug}, 'refresh'), json => { refresh_token => $j->{refresh_token} })->{status}, 401,
     'the refresh token is dead');
};

subtest "a tenant token holds only while the user belongs to that tenant's slug" => sub {
  my $t3 = create_tenant();
  my $v  = create_user(role => 'user', tenant_id => $t3->{id}, prefix => 'tl-slug');
  my $j = login($t3->{slug}, $v->{email}, $v->{password})->{json};
  is(req(GET => '/api/v1/me', token => $j->{access_token})->{status}, 200, 'works');
  my $new = unique_slug();
  psql("UPDATE tenants SET slug = " . sql_quote($new) . " WHERE id = " . sql_quote($t3->{id}));
  is(req(GET => '/api/v1/me', token => $j->{access_token})->{status}, 401, 'iss names another slug now: 401');
};

subtest 'tenant requires MFA: challenge, no tokens' => sub {
  my $tm = create_tenant();
  psql("UPDATE tenants SET settings = '{\"mfa_required\": true}' WHERE id = " . sql_quote($tm->{id}));
  my $v = create_user(role => 'user', tenant_id => $tm->{id}, prefix => 'tl-mfa');
  my $r = login($tm->{slug}, $v->{email}, $v->{password});
  is($r->{status}, 200, 'status 200') or diag($r->{content});
  is($r->{json}{mfa_required}, JSON::PP::true, 'mfa_required true');
  like($r->{json}{mfa_token} // '', qr/\Askm_[A-Za-z0-9_-]{20,}\z/, 'opaque mfa_token');
  is(ref $r->{json}{methods}, 'ARRAY', 'methods list');
  ok(!exists $r->{json}{access_token} && !exists $r->{json}{refresh_token}, 'no tokens');
  is(psql("SELECT user_id || '|' || tenant_id || '|' || (expires_at <= now() + interval '5 minutes') || '|' || max_attempts "
          . "FROM one_time_codes WHERE purpose = 'mfa_login' AND code_hash = " . sql_quote(sha256_hex($r->{json}{mfa_token}))),
     "$v->{id}|$tm->{id}|true|5", 'only the digest stored, bound to user and tenant, 5 minutes, 5 attempts');
};

subtest 'throttling per account and per address' => sub {
  my $v = create_user(role => 'user', tenant_id => $t->{id}, prefix => 'tl-thr');
  for my $i (1 .. 5) {
    is(login($t->{slug}, $v->{email}, "wrong-$i")->{status}, 401, "failure $i");
  }
  my $r = login($t->{slug}, $v->{email}, $v->{password});
  is($r->{status}, 429, 'the right password is refused now');
  like($r->{headers}{'retry-after'} // '', qr/\A[1-9]\d*\z/, 'Retry-After');
  ok(!exists(($r->{json} // {})->{access_token}), 'no token');
  is(login($t->{slug}, $u->{email}, $u->{password})->{status}, 200, 'another account is unaffected');
  my $ip = unique_ip();
  for my $i (1 .. 20) {
    login($t->{slug}, unique_email('tl-ip'), 'wrong', $ip);
  }
  is(login($t->{slug}, $u->{email}, $u->{password}, $ip)->{status}, 429, 'the address is throttled after 20 failures');
  cmp_ok(audit_count('user.login', 'denied', $v->{email}), '>=', 1, 'audited user.login denied (throttled)');
};

done_testing();
