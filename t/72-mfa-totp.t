#!/usr/bin/perl
# TOTP second factor: enrolment at /api/v1/me/mfa/totp/{setup,confirm,disable}, backup codes, and
# the MFA step of the tenant sign-in (/api/v1/auth/tenants/{slug}/mfa/verify): wrong, reused and
# replayed codes, an MFA token used twice, after expiry or after too many attempts.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

sub step_now { int(time() / 30) }

my $t = create_tenant();
sub path { "/api/v1/auth/tenants/$t->{slug}/$_[0]" }
sub login {
  my ($u) = @_;
  return req(POST => path('login'), json => { email => $u->{email}, password => $u->{password} }, ip => unique_ip());
}
sub verify { req(POST => path('mfa/verify'), json => { @_ }, ip => unique_ip()) }
sub forget_steps { psql("UPDATE mfa_methods SET last_used_step = NULL WHERE user_id = " . sql_quote($_[0]{id})) }
sub reset_throttle { psql("DELETE FROM auth_throttle WHERE key = " . sql_quote("user-mfa:$_[0]{id}")) }

my $u = create_user(role => 'user', tenant_id => $t->{id}, prefix => 'mfa');
my $tok = login($u)->{json}{access_token};
my ($key, @backup);

subtest 'setup' => sub {
  is(req(POST => '/api/v1/me/mfa/totp/setup')->{status}, 401, 'needs a bearer token');
  my $r = req(POST => '/api/v1/me/mfa/totp/setup', token => $tok);
  is($r->{status}, 200, 'setup 200') or diag($r->{content});
  my $secret = $r->{json}{secret} // '';
  like($secret, qr/\A[A-Z2-7]{32}\z/, 'a 160-bit base32 secret');
  $key = b32decode($secret);
  is(length $key, 20, '20 bytes');
  my $uri = $r->{json}{otpauth_uri} // '';
  like($uri, qr{\Aotpauth://totp/[^:?]+:[^?]+\?secret=\Q$secret\E&issuer=[^&]+&algorithm=SHA1&digits=6&period=30\z},
       'otpauth URI');
  my $email = $u->{email}; $email =~ s/@/%40/;
  like($uri, qr/:\Q$email\E\?/, 'label ends with the email');
  my $hexsecret = unpack('H*', $key);
  is(psql("SELECT count(*) FROM mfa_methods WHERE user_id = " . sql_quote($u->{id})
          . " AND confirmed_at IS NULL AND position(decode(" . sql_quote($hexsecret) . ", 'hex') IN secret_sealed) = 0"),
     1, 'one pending method; the seed is stored sealed, not in clear');
  is(psql("SELECT mfa_enabled FROM users WHERE id = " . sql_quote($u->{id})), 'f', 'not enabled before confirmation');
  is(login($u)->{json}{mfa_required}, undef, 'sign-in still without MFA');
};

subtest 'confirm' => sub {
  my $r = req(POST => '/api/v1/me/mfa/totp/confirm', token => $tok, json => { code => '000000' eq totp_at($key, step_now()) ? '111111' : '000000' });
  is($r->{status}, 400, 'wrong code 400');
  is_deeply($r->{json}, { detail => 'Invalid code' }, 'detail');
  $r = req(POST => '/api/v1/me/mfa/totp/confirm', token => $tok, json => { code => totp_at($key, step_now() + 5) });
  is($r->{status}, 400, 'a code outside the ±1 step window 400');
  $r = req(POST => '/api/v1/me/mfa/totp/confirm', token => $tok, json => {});
  is($r->{status}, 422, 'missing code 422');
  $r = req(POST => '/api/v1/me/mfa/totp/confirm', token => $tok, json => { code => totp_at($key, step_now()) });
  is($r->{status}, 200, 'confirm 200') or diag($r->{content});
  @backup = @{ $r->{json}{backup_codes} // [] };
  is(scalar @backup, 10, 'ten backup codes');
  like($_, qr/\A[a-z0-9]{5}-[a-z0-9]{5}\z/, "backup code $_") for @backup[0, 1];
  is(psql("SELECT mfa_enabled FROM users WHERE id = " . sql_quote($u->{id})), 't', 'users.mfa_enabled');
  is(psql("SELECT count(*) FROM mfa_backup_codes WHERE user_id = " . sql_quote($u->{id}) . " AND code_hash ~ '^[0-9a-f]{64}\$'"),
     10, 'only digests stored');
  my $again = req(POST => '/api/v1/me/mfa/totp/confirm', token => $tok, json => { code => totp_at($key, step_now()) });
  is($again->{status}, 409, 'confirming twice: 409');
  is(req(POST => '/api/v1/me/mfa/totp/setup', token => $tok)->{status}, 409, 'a second setup: 409');
  my $l = req(GET => '/api/v1/me/mfa', token => $tok);
  is($l->{status}, 200, 'GET /me/mfa');
  is($l->{json}{mfa_enabled}, JSON::PP::true, 'mfa_enabled');
  is($l->{json}{backup_codes_remaining}, 10, 'backup_codes_remaining');
  is($l->{json}{methods}[0]{method_type}, 'totp', 'the totp method');
  unlike($l->{content}, qr/secret/i, 'no secret in the listing');
};

subtest 'sign-in with TOTP; replay refused; token single use' => sub {
  my $r = login($u);
  is($r->{json}{mfa_required}, JSON::PP::true, 'challenge');
  is_deeply($r->{json}{methods}, ['totp', 'backup_codes'], 'methods');
  ok(!exists $r->{json}{access_token}, 'no tokens yet');
  my $mt = $r->{json}{mfa_token};
  # the confirmation used the current step: the same code is a replay
  my $v = verify(mfa_token => $mt, code => totp_at($key, step_now()));
  my $replay_ok = $v->{status} == 401;
  if (!$replay_ok && step_now() != int(time() / 30)) { $replay_ok = 1 }
  is($v->{status}, 401, 'the code used at confirmation is refused (replay)') or diag($v->{content});
  is_deeply($v->{json}, { detail => 'Invalid MFA code' }, 'detail');
  my $next = totp_at($key, step_now() + 1);
  $v = verify(mfa_token => $mt, code => $next, method => 'totp');
  is($v->{status}, 200, 'the next step is accepted') or diag($v->{content});
  like($v->{json}{access_token} // '', qr/\./, 'access token');
  my (undef, $c) = verify_jwt($v->{json}{access_token}, scalar jwks());
  is(psql("SELECT kind || '|' || mfa_verified FROM sessions WHERE id = " . sql_quote($c->{sid})), 'user|true',
     'a user session, MFA verified');
  is(req(GET => '/api/v1/me', token => $v->{json}{access_token})->{status}, 200, 'the token works');
  my $twice = verify(mfa_token => $mt, code => totp_at($key, step_now() - 1));
  is($twice->{status}, 401, 'the MFA token cannot be used twice');
  is_deeply($twice->{json}, { detail => 'Invalid or expired MFA token' }, 'detail');
  my $mt2 = login($u)->{json}{mfa_token};
  $v = verify(mfa_token => $mt2, code => $next);
  is($v->{status}, 401, 'the same TOTP code on a new sign-in: replay refused');
  cmp_ok(psql("SELECT count(*) FROM audit_log WHERE action = 'user.mfa_verify' AND result = 'success' AND actor_id = "
              . sql_quote($u->{id})), '>=', 1, 'audited user.mfa_verify');
};

subtest 'expired token, other tenant, too many attempts' => sub {
  forget_steps($u);
  my $mt = login($u)->{json}{mfa_token};
  psql("UPDATE one_time_codes SET expires_at = now() - interval '1 second' WHERE code_hash = " . sql_quote(sha256_hex($mt)));
  my $v = verify(mfa_token => $mt, code => totp_at($key, step_now()));
  is($v->{status}, 401, 'expired token 401');
  is_deeply($v->{json}, { detail => 'Invalid or expired MFA token' }, 'detail');

  $mt = login($u)->{json}{mfa_token};
  my $t2 = create_tenant();
  $v = req(POST => "/api/v1/auth/tenants/$t2->{slug}/mfa/verify", json => { mfa_token => $mt, code => totp_at($key, step_now()) });
  is($v->{status}, 401, "another tenant's verify endpoint refuses the token");

  $mt = login($u)->{json}{mfa_token};
  my $good = totp_at($key, step_now());
  my $bad = $good eq '123456' ? '654321' : '123456';
  for my $i (1 .. 4) {
    is(verify(mfa_token => $mt, code => $bad)->{status}, 401, "wrong code $i");
  }
  # the token from the other tenant's attempt above was a separate token; this one has one try left
  is(verify(mfa_token => $mt, code => 'zzzzz-zzzzz')->{status}, 401, 'wrong code 5 (a wrong backup code)');
  $v = verify(mfa_token => $mt, code => $good);
  is($v->{status}, 401, 'after five attempts even the right code is refused');
  is_deeply($v->{json}, { detail => 'Invalid or expired MFA token' }, 'detail');
  is(verify(mfa_token => 'skm_nonsense', code => $good)->{status}, 401, 'an unknown token 401');
  is(verify(mfa_token => $mt)->{status}, 422, 'missing code 422');
  is(verify(mfa_token => $mt, code => '123456', method => 'sms')->{status}, 422, 'unknown method 422');
};

subtest 'backup codes: each once' => sub {
  my $mt = login($u)->{json}{mfa_token};
  my $v = verify(mfa_token => $mt, code => uc $backup[0]);
  is($v->{status}, 200, 'a backup code (any case) finishes the sign-in') or diag($v->{content});
  $mt = login($u)->{json}{mfa_token};
  $v = verify(mfa_token => $mt, code => $backup[0], method => 'backup_codes');
  is($v->{status}, 401, 'the same backup code again 401');
  (my $nodash = $backup[1]) =~ s/-//;
  $v = verify(mfa_token => $mt, code => $nodash);
  is($v->{status}, 200, 'another code, without the dash') or diag($v->{content});
  is(req(GET => '/api/v1/me/mfa', token => $tok)->{json}{backup_codes_remaining}, 8, 'eight left');
};

subtest 'regenerate backup codes, disable' => sub {
  forget_steps($u); reset_throttle($u);
  my $r = req(POST => '/api/v1/me/mfa/backup-codes/regenerate', token => $tok, json => { code => $backup[2] });
  is($r->{status}, 400, 'regenerate needs a TOTP code, not a backup code');
  $r = req(POST => '/api/v1/me/mfa/backup-codes/regenerate', token => $tok, json => { code => totp_at($key, step_now()) });
  is($r->{status}, 200, 'regenerate 200') or diag($r->{content});
  my @fresh = @{ $r->{json}{backup_codes} // [] };
  is(scalar @fresh, 10, 'ten new codes');
  my $mt = login($u)->{json}{mfa_token};
  is(verify(mfa_token => $mt, code => $backup[3])->{status}, 401, 'an old code is dead');
  is(verify(mfa_token => $mt, code => $fresh[0])->{status}, 200, 'a new code works');

  forget_steps($u); reset_throttle($u);
  my $good = totp_at($key, step_now());
  $r = req(POST => '/api/v1/me/mfa/totp/disable', token => $tok, json => { code => $good eq '123456' ? '654321' : '123456' });
  is($r->{status}, 400, 'disable with a wrong code 400');
  $r = req(POST => '/api/v1/me/mfa/totp/disable', token => $tok, json => { code => $good });
  is($r->{status}, 200, 'disable 200') or diag($r->{content});
  is(psql("SELECT mfa_enabled::text || (SELECT count(*) FROM mfa_methods WHERE user_id = u.id) || "
          . "(SELECT count(*) FROM mfa_backup_codes WHERE user_id = u.id) FROM users u WHERE id = " . sql_quote($u->{id})),
     'false00', 'no method, no codes, mfa_enabled false');
  my $l = login($u);
  ok($l->{json}{access_token} && !$l->{json}{mfa_required}, 'sign-in without MFA again');
  is(req(POST => '/api/v1/me/mfa/totp/disable', token => $tok, json => { code => $good })->{status}, 404,
     'disable when not enabled: 404');
};

subtest 'too many wrong codes at /me are throttled' => sub {
  my $w = create_user(role => 'user', tenant_id => $t->{id}, prefix => 'mfa-thr');
  my $wt = login($w)->{json}{access_token};
  my $s = req(POST => '/api/v1/me/mfa/totp/setup', token => $wt);
  my $k = b32decode($s->{json}{secret});
  my $good = totp_at($k, step_now());
  my $bad = $good eq '123456' ? '654321' : '123456';
  is(req(POST => '/api/v1/me/mfa/totp/confirm', token => $wt, json => { code => $bad })->{status}, 400, "wrong $_")
    for 1 .. 5;
  my $r = req(POST => '/api/v1/me/mfa/totp/confirm', token => $wt, json => { code => $good });
  is($r->{status}, 429, 'then 429');
  like($r->{headers}{'retry-after'} // '', qr/\A[1-9]\d*\z/, 'Retry-After');
};

done_testing();
