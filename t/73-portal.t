#!/usr/bin/perl
# The portal's sign-in: /api/v1/auth/{identify,authenticate,login,refresh,logout}.
# identify answers the same for known and unknown emails (shape and timing); the tenant is chosen
# at authenticate, after the password; tokens are of the tenant's flavour on a 'portal' session.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use List::Util qw(sum);
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $INVALID = { detail => 'Invalid email or password' };
my $t1 = create_tenant(name => 'Alpha ' . unique_slug());
my $t2 = create_tenant(name => 'Beta ' . unique_slug());
my $u  = create_user(role => 'user', tenant_id => $t1->{id}, prefix => 'portal');
my $multi = unique_email('portal-multi');
my $m1 = create_user(role => 'user', tenant_id => $t1->{id}, email => $multi);
my $m2 = create_user(role => 'tenant_admin', tenant_id => $t2->{id}, email => $multi);

sub identify { req(POST => '/api/v1/auth/identify', json => { email => $_[0] }, ip => unique_ip()) }
sub authenticate { req(POST => '/api/v1/auth/authenticate', json => { @_ }, ip => unique_ip()) }

subtest 'identify: the same answer for known and unknown emails' => sub {
  my $k = identify($u->{email});
  my $n = identify(unique_email('nobody'));
  is($k->{status}, 200, 'known 200');
  is($n->{status}, 200, 'unknown 200');
  is_deeply([sort keys %{ $k->{json} }], [sort keys %{ $n->{json} }], 'same members');
  is_deeply([sort keys %{ $k->{json} }], ['expires_in', 'flow_token', 'tenants'], 'flow_token, tenants, expires_in');
  like($_->{json}{flow_token}, qr/\Askf_[A-Za-z0-9_-]{40,}\z/, 'opaque flow token') for $k, $n;
  is_deeply($k->{json}{tenants}, [], 'no tenants revealed for a known email');
  is_deeply($n->{json}{tenants}, [], 'nor for an unknown one');
  is(length $k->{json}{flow_token}, length $n->{json}{flow_token}, 'same token length');
  is(req(POST => '/api/v1/auth/identify', json => { email => 'not-an-email' })->{status}, 422, 'bad email 422');
  # identify does the same work for every email (it does not look the email up); the means are
  # taken over 20 tries each, interleaved in random order, without the 3 slowest of each (the
  # machine running the tests is shared), and must agree within 25% (or 2 ms)
  identify($u->{email}) for 1 .. 3;
  my (@known, @unknown);
  for (1 .. 20) {
    my @pair = ([\@known, $u->{email}], [\@unknown, unique_email('nobody')]);
    @pair = reverse @pair if rand() < 0.5;
    push @{ $_->[0] }, identify($_->[1])->{elapsed} for @pair;
  }
  my $trimmed = sub { my @s = sort { $a <=> $b } @_; splice(@s, -3); sum(@s) / @s };
  my ($mk, $mu) = ($trimmed->(@known), $trimmed->(@unknown));
  my $ratio = $mk > $mu ? $mk / $mu : $mu / $mk;
  ok($ratio < 1.25 || abs($mk - $mu) < 0.002,
     sprintf('mean timing within 25%% (known %.2f ms, unknown %.2f ms)', $mk * 1000, $mu * 1000));
};

subtest 'authenticate: one tenant' => sub {
  my $ft = identify($u->{email})->{json}{flow_token};
  my $r = authenticate(flow_token => $ft, password => $u->{password});
  is($r->{status}, 200, 'status 200') or diag($r->{content});
  my (undef, $c) = verify_jwt($r->{json}{access_token}, scalar jwks());
  is($c->{iss}, base() . "/api/v1/auth/tenants/$t1->{slug}", "iss of the user's tenant");
  is($c->{aud}, 'scaikey-portal', 'aud');
  is($c->{tenant_id}, $t1->{id}, 'tenant_id');
  is(psql("SELECT kind FROM sessions WHERE id = " . sql_quote($c->{sid})), 'portal', 'a portal session');
  is(req(GET => '/api/v1/me', token => $r->{json}{access_token})->{json}{id}, $u->{id}, '/api/v1/me works');
  my $again = authenticate(flow_token => $ft, password => $u->{password});
  is($again->{status}, 401, 'the flow token is single use');
  is_deeply($again->{json}, { detail => 'Invalid or expired flow token' }, 'detail');
};

subtest 'authenticate: wrong password, unknown email, expiry, attempts' => sub {
  my $ft = identify($u->{email})->{json}{flow_token};
  my $w = authenticate(flow_token => $ft, password => 'wrong-password');
  my $nt = identify(unique_email('nobody'))->{json}{flow_token};
  my $n = authenticate(flow_token => $nt, password => 'wrong-password');
  is($w->{status}, 401, 'wrong password 401');
  is($n->{status}, 401, 'unknown email 401');
  is_deeply($w->{json}, $INVALID, 'wrong password body');
  is_deeply($n->{json}, $INVALID, 'unknown email body: the same');
  is(authenticate(flow_token => $ft, password => $u->{password})->{status}, 200, 'a failed try leaves the flow usable');
  psql("DELETE FROM auth_throttle WHERE key = " . sql_quote('user-acct:portal:' . lc $u->{email}));

  $ft = identify($u->{email})->{json}{flow_token};
  psql("UPDATE one_time_codes SET expires_at = now() - interval '1 second' WHERE code_hash = " . sql_quote(sha256_hex($ft)));
  is(authenticate(flow_token => $ft, password => $u->{password})->{status}, 401, 'expired flow token 401');

  my $v = create_user(role => 'user', tenant_id => $t1->{id}, prefix => 'portal-att');
  $ft = identify($v->{email})->{json}{flow_token};
  is(authenticate(flow_token => $ft, password => "wrong-$_")->{status}, 401, "attempt $_") for 1 .. 4;
  psql("DELETE FROM auth_throttle WHERE key = " . sql_quote('user-acct:portal:' . lc $v->{email}));
  is(authenticate(flow_token => $ft, password => 'wrong-5')->{status}, 401, 'attempt 5');
  psql("DELETE FROM auth_throttle WHERE key = " . sql_quote('user-acct:portal:' . lc $v->{email}));
  my $r = authenticate(flow_token => $ft, password => $v->{password});
  is($r->{status}, 401, 'after five attempts the flow token is dead');
  is_deeply($r->{json}, { detail => 'Invalid or expired flow token' }, 'detail');
  is(authenticate(flow_token => 'skf_nonsense', password => 'x')->{status}, 401, 'unknown flow token 401');
  is(authenticate(password => 'x')->{status}, 422, 'missing flow_token 422');
};

subtest 'an email in several tenants: choose one' => sub {
  my $ft = identify($multi)->{json}{flow_token};
  my $r = authenticate(flow_token => $ft, password => $m1->{password});
  is($r->{status}, 422, '422 without tenant_id') or diag($r->{content});
  my $e = find_verror($r, ['body', 'tenant_id']);
  ok($e, 'loc body.tenant_id');
  is_deeply([sort map { $_->{id} } @{ $e->{ctx}{tenants} // [] }], [sort $t1->{id}, $t2->{id}], 'both tenants offered');
  $r = authenticate(flow_token => $ft, password => $m1->{password}, tenant_id => $t2->{id});
  is($r->{status}, 200, 'with tenant_id 200') or diag($r->{content});
  is($r->{json}{user}{id}, $m2->{id}, 'the account of that tenant');
  is($r->{json}{user}{role}, 'tenant_admin', 'role');
  my (undef, $c) = verify_jwt($r->{json}{access_token}, scalar jwks());
  is($c->{iss}, base() . "/api/v1/auth/tenants/$t2->{slug}", 'iss of the chosen tenant');
  my $x = req(POST => '/api/v1/auth/login', json => { email => $multi, password => $m1->{password}, tenant_id => 'tnt_nonexistent' },
              ip => unique_ip());
  is($x->{status}, 401, 'a tenant without that account: 401');
  is_deeply($x->{json}, $INVALID, 'the same body');
};

subtest 'one-step login, refresh, logout' => sub {
  my $r = req(POST => '/api/v1/auth/login', json => { email => $u->{email}, password => $u->{password} }, ip => unique_ip());
  is($r->{status}, 200, 'login 200') or diag($r->{content});
  my $j = $r->{json};
  is(req(POST => '/api/v1/auth/login', json => { email => $multi, password => $m1->{password} }, ip => unique_ip())->{status},
     422, 'several tenants without tenant_id: 422');
  is(req(POST => '/api/v1/auth/login', json => { email => $u->{email}, password => 'bad' }, ip => unique_ip())->{status}, 401,
     'wrong password 401');
  my $f = req(POST => '/api/v1/auth/refresh', json => { refresh_token => $j->{refresh_token} });
  is($f->{status}, 200, 'refresh 200') or diag($f->{content});
  isnt($f->{json}{refresh_token}, $j->{refresh_token}, 'rotated');
  is(req(POST => "/api/v1/auth/tenants/$t1->{slug}/refresh", json => { refresh_token => $f->{json}{refresh_token} })->{status},
     401, "a portal refresh token is not the tenant login's");
  is(req(POST => '/api/v1/auth/refresh', json => { refresh_token => $j->{refresh_token} })->{status}, 401, 'reuse 401');
  is(req(POST => '/api/v1/auth/refresh', json => { refresh_token => $f->{json}{refresh_token} })->{status}, 401,
     'reuse ended the session');
  my $k = req(POST => '/api/v1/auth/login', json => { email => $u->{email}, password => $u->{password} }, ip => unique_ip())->{json};
  is(req(POST => '/api/v1/auth/logout')->{status}, 401, 'logout without a token 401');
  is(req(POST => '/api/v1/auth/logout', token => $k->{access_token})->{status}, 200, 'logout 200');
  is(req(GET => '/api/v1/me', token => $k->{access_token})->{status}, 401, 'the token is dead');
};

subtest 'MFA users get the challenge at the portal too' => sub {
  my $tm = create_tenant();
  psql("UPDATE tenants SET settings = '{\"mfa_required\": true}' WHERE id = " . sql_quote($tm->{id}));
  my $v = create_user(role => 'user', tenant_id => $tm->{id}, prefix => 'portal-mfa');
  my $r = req(POST => '/api/v1/auth/login', json => { email => $v->{email}, password => $v->{password} }, ip => unique_ip());
  is($r->{status}, 200, 'status 200');
  is($r->{json}{mfa_required}, JSON::PP::true, 'challenge');
  is($r->{json}{tenant_slug}, $tm->{slug}, 'tenant_slug names where to verify');
  ok(!exists $r->{json}{access_token}, 'no tokens');

  # finished with a mailed code at the tenant's MFA endpoints: tokens on a portal session
  SKIP: {
    skip 'SK_MAILDIR not set', 9 unless $ENV{SK_MAILDIR};
    my $mt = $r->{json}{mfa_token};
    my $base = "/api/v1/auth/tenants/$r->{json}{tenant_slug}/mfa";
    my $s = req(POST => "$base/email/send", json => { mfa_token => $mt, user_id => $v->{id} }, ip => unique_ip());
    is($s->{status}, 200, 'a code is mailed') or diag($s->{content});
    my $code = last_code($v->{email});
    ok($code, 'the mail holds a six-digit code');
    my $bad = $code && $code eq '123456' ? '654321' : '123456';
    is(req(POST => "$base/verify", json => { mfa_token => $mt, code => $bad }, ip => unique_ip())->{status}, 401,
       'a wrong code: 401');
    my $ok = req(POST => "$base/verify", json => { mfa_token => $mt, code => $code // '' }, ip => unique_ip());
    is($ok->{status}, 200, 'the mailed code: 200') or diag($ok->{content});
    ok($ok->{json}{access_token} && $ok->{json}{refresh_token}, 'access and refresh tokens');
    my ($claims) = (jwt_parts($ok->{json}{access_token} // ''))[1];
    is($claims->{tenant_id}, $tm->{id}, "the token is the tenant's");
    my $sid = $claims->{sid} // '';
    is(psql("SELECT kind FROM sessions WHERE id = " . sql_quote($sid)), 'portal', 'on a portal session');
    is(psql("SELECT mfa_verified::text FROM sessions WHERE id = " . sql_quote($sid)), 'true', 'MFA-verified');
    is(req(POST => "$base/verify", json => { mfa_token => $mt, code => $code // '' }, ip => unique_ip())->{status}, 401,
       'the same challenge again: 401');
  }
};

done_testing();
