#!/usr/bin/perl
# Forgotten passwords: POST /api/v1/auth/tenants/{slug}/forgot-password and .../reset-password;
# email verification: POST /api/v1/me/verify-email and POST /api/v1/auth/verify-email.
# Links are read from the mail the module writes into $SK_MAILDIR.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan skip_all => 'SK_MAILDIR not set' unless $ENV{SK_MAILDIR};
plan tests => 10;

my $SENT = 'If the address is registered, a reset link has been sent';
my $BAD  = 'Invalid or expired token';

sub forgot {
  my ($slug, $email, %o) = @_;
  req(POST => "/api/v1/auth/tenants/$slug/forgot-password", json => { email => $email }, ip => $o{ip} // unique_ip());
}
sub reset_pw {
  my ($slug, $token, $password) = @_;
  req(POST => "/api/v1/auth/tenants/$slug/reset-password", json => { token => $token, password => $password },
      ip => unique_ip());
}


# the link of the newest mail to $to, and its token
sub last_link {
  my ($to) = @_;
  my @m = mails_to($to) or return ();
  return $m[-1]{body} =~ m{^(\S+\?token=([A-Za-z0-9_-]+))\r?$}m ? ($1, $2) : ();
}

sub setup {
  my (%o) = @_;
  my $t = create_tenant(name => 'Globex Ltd');
  my $u = create_user(role => $o{role} // 'user', tenant_id => $t->{id});
  return ($t, $u);
}

subtest 'forgot-password: 200, a one-time link by mail, digest stored' => sub {
  my ($t, $u) = setup();
  my $r = forgot($t->{slug}, $u->{email});
  is($r->{status}, 200, 'status 200') or diag($r->{content});
  is_deeply($r->{json}, { detail => $SENT }, 'detail');
  my @m = mails_to($u->{email});
  is(scalar @m, 1, 'one mail') or return;
  is($m[0]{headers}{subject}, 'Reset your password for Globex Ltd', 'subject');
  is($m[0]{headers}{'content-type'}, 'text/plain; charset=utf-8', 'Content-Type');
  my ($link, $token) = last_link($u->{email});
  is($link, base() . "/api/v1/auth/tenants/$t->{slug}/reset-password?token=$token", 'link to the tenant reset page');
  ok(length($token) >= 43, 'token of at least 256 bits');
  my $row = psql(sprintf("SELECT code_hash || '|' || round(extract(epoch FROM expires_at - created_at)) "
                           . "FROM one_time_codes WHERE purpose = 'password_reset' AND user_id = %s",
                         sql_quote($u->{id})));
  my ($hash, $ttl) = split /\|/, $row;
  like($hash, qr/\A[0-9a-f]{64}\z/, 'a digest is stored');
  unlike($hash, qr/\Q$token\E/, 'not the token');
  is($ttl, 1800, 'valid 30 minutes');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'auth.password_reset.request' AND actor_id = %s "
                    . "AND details::text NOT LIKE %s", sql_quote($u->{id}), sql_quote("%$token%"))),
     1, 'request audited without the token');
};

subtest 'unknown address: same answer, no mail' => sub {
  my $t = create_tenant();
  my $email = unique_email('nobody');
  my $r = forgot($t->{slug}, $email);
  is($r->{status}, 200, 'status 200');
  is_deeply($r->{json}, { detail => $SENT }, 'same detail');
  is(scalar(mails_to($email)), 0, 'no mail');
  is(forgot('no-such-tenant-' . int(rand(1e9)), $email)->{status}, 404, 'unknown tenant: 404');
  is(req(POST => "/api/v1/auth/tenants/$t->{slug}/forgot-password", json => { email => 'x' }, ip => unique_ip())
       ->{status}, 422, 'bad email: 422');
};

subtest 'reset ends every session; the link works once' => sub {
  my ($t, $u) = setup(role => 'tenant_admin');
  my $l = admin_login(email => $u->{email}, password => $u->{password});
  ok($l, 'admin signed in before the reset') or return;
  is(req(GET => '/api/v1/admin/auth/me', token => $l->{access_token})->{status}, 200, 'token works');
  forgot($t->{slug}, $u->{email});
  my (undef, $token) = last_link($u->{email});
  ok($token, 'link received') or return;
  my $new = 'N3w-passw0rd-' . int(rand(1e6));
  my $r = reset_pw($t->{slug}, $token, $new);
  is($r->{status}, 200, 'reset: 200') or return diag($r->{content});
  like($r->{headers}{'cache-control'} // '', qr/no-store/, 'no-store');
  $r = req(GET => '/api/v1/admin/auth/me', token => $l->{access_token});
  is($r->{status}, 401, 'the old access token: 401');
  is(req(POST => '/api/v1/admin/auth/refresh', json => { refresh_token => $l->{refresh_token} }, ip => unique_ip())
       ->{status}, 401, 'the old refresh token: 401');
  is(psql(sprintf("SELECT string_agg(DISTINCT revoked_reason, ',') FROM sessions WHERE user_id = %s",
                  sql_quote($u->{id}))), 'password_reset', "sessions ended with reason 'password_reset'");
  ok(!admin_login(email => $u->{email}, password => $u->{password}), 'the old password no longer works');
  ok(admin_login(email => $u->{email}, password => $new), 'the new password works');
  is(psql(sprintf("SELECT count(*) FROM password_history WHERE user_id = %s", sql_quote($u->{id}))), 1,
     'password history row');
  like(psql(sprintf("SELECT password_hash FROM users WHERE id = %s", sql_quote($u->{id}))), qr/\A\$argon2id\$/,
       'argon2id hash');
  $r = reset_pw($t->{slug}, $token, 'An0ther-passw0rd');
  is($r->{status}, 400, 'the link a second time: 400');
  is_deeply($r->{json}, { detail => $BAD }, 'detail');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'auth.password_reset' AND result = 'success' "
                    . "AND resource_id = %s", sql_quote($u->{id}))), 1, 'reset audited');
};

subtest 'expired and unknown links' => sub {
  my ($t, $u) = setup();
  forgot($t->{slug}, $u->{email});
  my (undef, $token) = last_link($u->{email});
  psql(sprintf("UPDATE one_time_codes SET expires_at = now() - interval '1 second' WHERE user_id = %s",
               sql_quote($u->{id})));
  my $r = reset_pw($t->{slug}, $token, 'Long-enough-1');
  is($r->{status}, 400, 'expired: 400');
  is_deeply($r->{json}, { detail => $BAD }, 'detail');
  is(reset_pw($t->{slug}, 'x' x 43, 'Long-enough-1')->{status}, 400, 'unknown token: 400');
};

subtest 'a link works only at its own tenant' => sub {
  my ($t, $u) = setup();
  forgot($t->{slug}, $u->{email});
  my (undef, $token) = last_link($u->{email});
  my $other = create_tenant();
  is(reset_pw($other->{slug}, $token, 'Long-enough-1')->{status}, 400, 'other tenant: 400');
  is(reset_pw($t->{slug}, $token, 'Long-enough-1')->{status}, 200, 'own tenant: 200');
};

subtest 'password policy: 8 characters, or the tenant setting' => sub {
  my ($t, $u) = setup();
  forgot($t->{slug}, $u->{email});
  my (undef, $token) = last_link($u->{email});
  my $r = reset_pw($t->{slug}, $token, 'short');
  is($r->{status}, 422, 'too short: 422');
  ok(find_verror($r, ['body', 'password']), 'error names body.password');
  psql(sprintf(q{UPDATE tenants SET settings = '{"password_min_length": 12}' WHERE id = %s}, sql_quote($t->{id})));
  is(reset_pw($t->{slug}, $token, 'elevenchars')->{status}, 422, '11 characters with a minimum of 12: 422');
  is(reset_pw($t->{slug}, $token, 'twelve-chars')->{status}, 200, 'the link was not spent by refusals: 200');
  is(req(POST => "/api/v1/auth/tenants/$t->{slug}/reset-password", json => { token => 'x' }, ip => unique_ip())
       ->{status}, 422, 'missing password: 422');
};

subtest 'a newer link replaces the older one' => sub {
  my ($t, $u) = setup();
  forgot($t->{slug}, $u->{email});
  my (undef, $first) = last_link($u->{email});
  forgot($t->{slug}, $u->{email});
  my (undef, $second) = last_link($u->{email});
  isnt($first, $second, 'two different links');
  is(reset_pw($t->{slug}, $first, 'Long-enough-1')->{status}, 400, 'the older link: 400');
  is(reset_pw($t->{slug}, $second, 'Long-enough-1')->{status}, 200, 'the newer link: 200');
};

subtest 'rate limit per address' => sub {
  my ($t, $u) = setup();
  is(forgot($t->{slug}, $u->{email})->{status}, 200, "request $_") for 1 .. 3;
  my $r = forgot($t->{slug}, $u->{email});
  is($r->{status}, 429, '4th: 429');
  like($r->{headers}{'retry-after'} // '', qr/\A\d+\z/, 'Retry-After');
  is(scalar(mails_to($u->{email})), 3, 'three mails');
};

subtest 'email verification' => sub {
  my ($t, $u) = setup(role => 'tenant_admin');
  my $l = admin_login(email => $u->{email}, password => $u->{password});
  ok($l, 'signed in') or return;
  my $r = req(POST => '/api/v1/me/verify-email', token => $l->{access_token}, ip => unique_ip());
  is($r->{status}, 202, 'verify-email: 202') or return diag($r->{content});
  my ($link, $token) = last_link($u->{email});
  ok($token, 'link received') or return;
  is($link, base() . "/api/v1/auth/verify-email?token=$token", 'link');
  like((mails_to($u->{email}))[-1]{headers}{subject}, qr/Globex Ltd/, 'subject names the tenant');
  $r = req(POST => '/api/v1/auth/verify-email', json => { token => $token }, ip => unique_ip());
  is($r->{status}, 200, 'confirm: 200') or diag($r->{content});
  is(psql(sprintf("SELECT email_verified FROM users WHERE id = %s", sql_quote($u->{id}))), 't', 'email_verified');
  $r = req(POST => '/api/v1/auth/verify-email', json => { token => $token }, ip => unique_ip());
  is($r->{status}, 400, 'the link again: 400');
  is_deeply($r->{json}, { detail => $BAD }, 'detail');
  is(req(POST => '/api/v1/me/verify-email', ip => unique_ip())->{status}, 401, 'without a token: 401');
};

subtest 'suspended accounts get no link' => sub {
  my ($t, $u) = setup();
  psql(sprintf("UPDATE users SET status = 'SUSPENDED' WHERE id = %s", sql_quote($u->{id})));
  is(forgot($t->{slug}, $u->{email})->{status}, 200, 'status 200');
  is(scalar(mails_to($u->{email})), 0, 'no mail');
};
