#!/usr/bin/perl
# Email as a second factor: enrolment at /api/v1/me/mfa/email/{enable,confirm,disable}, the
# challenge of the tenant sign-in (methods, .../mfa/email/send, .../mfa/verify with the mailed
# code), the fallback for a tenant that requires MFA of a user who enrolled nothing, and the MFA
# step of the hosted login pages. The codes are read from the mail files in $SK_MAILDIR.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Digest::SHA qw(hmac_sha256_hex sha256_hex);
use MIME::Base64 qw(decode_base64);
use SK qw(:all);
use SKBrowser qw(new_app url_params page_title);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan skip_all => 'SK_MAILDIR not set' unless $ENV{SK_MAILDIR};

my $BAD_TOKEN = 'Invalid or expired MFA token';
my $BAD_CODE  = 'Invalid MFA code';

# ---- mail ----
sub mail_count { scalar(mails_to($_[0])) }
sub master_key {
  open(my $fh, '<', "$ENV{SK_RUN}/master.key") or return undef;
  my $k = <$fh>;
  chomp $k;
  return decode_base64($k);
}
sub other_code { my $c = $_[0] // '000000'; $c eq '123456' ? '654321' : '123456' }


# ---- the API ----
my $t = create_tenant(name => 'Email MFA Co');
sub tpath { my ($slug, $p) = @_; "/api/v1/auth/tenants/$slug/$p" }
sub login {
  my ($u, $tn) = @_;
  return req(POST => tpath(($tn // $t)->{slug}, 'login'), json => { email => $u->{email}, password => $u->{password} },
             ip => unique_ip());
}
sub send_mfa {
  my ($tn, %o) = @_;
  my $qs = query_string(map { defined $o{$_} ? ($_ => $o{$_}) : () } qw(mfa_token user_id));
  return req(POST => tpath($tn->{slug}, 'mfa/email/send') . $qs, ip => unique_ip(),
             (exists $o{json} ? (json => $o{json}) : ()), (exists $o{raw} ? (raw => $o{raw}) : ()));
}
sub verify { my ($tn, %b) = @_; req(POST => tpath($tn->{slug}, 'mfa/verify'), json => \%b, ip => unique_ip()) }
sub me { my ($tok, $m, $p, %o) = @_; req($m => "/api/v1/me/mfa$p", token => $tok, ip => unique_ip(), %o) }
sub reset_sends { psql("DELETE FROM auth_throttle WHERE key LIKE " . sql_quote("mfa-email-user:$_[0]{id}")) }
sub q_uid { sql_quote($_[0]{id}) }

# a user with email MFA enabled through the API; returns its bearer token
sub enrol {
  my ($u) = @_;
  my $tok = login($u)->{json}{access_token} or return undef;
  me($tok, POST => '/email/enable')->{status} == 200 or return undef;
  my $c = last_code($u->{email}) or return undef;
  return me($tok, POST => '/email/confirm', json => { code => $c })->{status} == 200 ? $tok : undef;
}

# a challenge: (login response, mfa_token)
sub challenge {
  my ($u, $tn) = @_;
  my $r = login($u, $tn);
  return ($r, $r->{json}{mfa_token});
}

my $u = create_user(role => 'user', tenant_id => $t->{id}, prefix => 'mfa-email');
my $tok = login($u)->{json}{access_token};

subtest 'enable, confirm, list' => sub {
  is(req(POST => '/api/v1/me/mfa/email/enable')->{status}, 401, 'enable needs a bearer token');
  is(req(POST => '/api/v1/me/mfa/email/confirm', json => { code => '123456' })->{status}, 401,
     'confirm needs a bearer token');
  my $r = me($tok, POST => '/email/confirm', json => { code => '123456' });
  is($r->{status}, 400, 'confirm before any code was sent: 400');
  is_deeply($r->{json}, { detail => 'Invalid code' }, 'detail');
  psql("DELETE FROM auth_throttle WHERE key = " . sql_quote("user-mfa:$u->{id}"));

  $r = me($tok, POST => '/email/enable');
  is($r->{status}, 200, 'enable 200') or diag($r->{content});
  is($r->{json}{sent}, JSON::PP::true, 'sent');
  is($r->{json}{expires_in}, 300, 'expires_in 300');
  is(mail_count($u->{email}), 1, 'one mail');
  my ($m) = mails_to($u->{email});
  like($m->{headers}{subject}, qr/Email MFA Co/, 'the subject names the tenant');
  my $code = last_code($u->{email});
  like($code // '', qr/\A\d{6}\z/, 'a six-digit code');
  my $row = psql("SELECT id || '|' || code_hash || '|' || (data->>'for') || '|' || max_attempts || '|' || "
                 . "round(extract(epoch FROM expires_at - created_at)) FROM one_time_codes "
                 . "WHERE purpose = 'mfa_email' AND used_at IS NULL AND user_id = " . q_uid($u));
  my ($id, $hash, $for, $max, $ttl) = split /\|/, $row // '';
  is($for, 'enable', 'bound to the enrolment');
  is("$max/$ttl", '5/300', 'five attempts, five minutes');
  unlike($hash, qr/\Q$code\E/, 'the code is not stored');
  my $key = master_key();
  is($hash, hmac_sha256_hex("mfa_email:$id:enable:$code", $key), 'an HMAC digest under the master key') if $key;
  is(psql("SELECT mfa_enabled FROM users WHERE id = " . q_uid($u)), 'f', 'not enabled before confirmation');

  $r = me($tok, POST => '/email/confirm', json => {});
  is($r->{status}, 422, 'confirm without a code: 422');
  $r = me($tok, POST => '/email/confirm', json => { code => other_code($code) });
  is($r->{status}, 400, 'a wrong code: 400');
  $r = me($tok, POST => '/email/confirm', raw => '{"code": ');
  is($r->{status}, 422, 'malformed JSON: 422');
  $r = me($tok, POST => '/email/confirm', json => { code => $code });
  is($r->{status}, 200, 'confirm 200') or diag($r->{content});
  is($r->{json}{mfa_enabled}, JSON::PP::true, 'mfa_enabled');
  is($r->{json}{method}, 'email', 'method email');
  is(psql("SELECT mfa_enabled FROM users WHERE id = " . q_uid($u)), 't', 'users.mfa_enabled');
  is(psql("SELECT count(*) FROM audit_log WHERE action = 'user.mfa_enabled' AND result = 'success' "
          . "AND details->>'method' = 'email' AND resource_id = " . q_uid($u)), 1, 'audited user.mfa_enabled');
  is(psql("SELECT count(*) FROM audit_log WHERE details::text LIKE " . sql_quote("%$code%")
          . " AND occurred_at > now() - interval '5 minutes'"), 0, 'no audit record holds the code');

  is(me($tok, POST => '/email/confirm', json => { code => $code })->{status}, 409, 'confirm again: 409');
  is(me($tok, POST => '/email/enable')->{status}, 409, 'enable when enabled: 409');
  my $l = me($tok, GET => '');
  is($l->{status}, 200, 'GET /me/mfa');
  is($l->{json}{mfa_enabled}, JSON::PP::true, 'mfa_enabled');
  is_deeply([map { $_->{method_type} } @{ $l->{json}{methods} }], ['email'], 'the email method is listed');
};

subtest 'sign-in: challenge, send, verify' => sub {
  reset_sends($u);
  my ($r, $mt) = challenge($u);
  is($r->{status}, 200, 'login 200');
  is($r->{json}{mfa_required}, JSON::PP::true, 'a challenge');
  is_deeply($r->{json}{methods}, ['email'], 'methods: email');
  is($r->{json}{user_id}, $u->{id}, 'the challenge names the user');
  ok(!exists $r->{json}{access_token}, 'no tokens yet');
  my $before = mail_count($u->{email});
  my $s = send_mfa($t, mfa_token => $mt, user_id => $u->{id});
  is($s->{status}, 200, 'send 200') or diag($s->{content});
  is($s->{json}{sent}, JSON::PP::true, 'sent');
  is($s->{json}{expires_in}, 300, 'expires_in');
  is($s->{headers}{'cache-control'}, 'no-store', 'no-store');
  is(mail_count($u->{email}), $before + 1, 'one more mail');
  my $code = last_code($u->{email});
  my $v = verify($t, mfa_token => $mt, code => $code, method => 'email');
  is($v->{status}, 200, 'verify with the mailed code: 200') or diag($v->{content});
  like($v->{json}{access_token} // '', qr/\./, 'access token');
  ok($v->{json}{refresh_token}, 'refresh token');
  my (undef, $c) = verify_jwt($v->{json}{access_token}, scalar jwks());
  is(psql("SELECT kind || '|' || mfa_verified || '|' || (auth_methods->>1) FROM sessions WHERE id = "
          . sql_quote($c->{sid})), 'user|true|otp', 'a user session, MFA verified');
  is(req(GET => '/api/v1/me', token => $v->{json}{access_token})->{status}, 200, 'the token works');
  is(psql("SELECT count(*) FROM audit_log WHERE action = 'user.mfa_verify' AND result = 'success' "
          . "AND details->>'method' = 'email' AND actor_id = " . q_uid($u)), 1, 'audited user.mfa_verify');
  is(psql("SELECT count(*) FROM audit_log WHERE action = 'user.mfa_email_send' AND result = 'success' "
          . "AND actor_id = " . q_uid($u)), 2, 'each send audited (enrolment and sign-in)');

  # the token and the code are spent
  my $twice = verify($t, mfa_token => $mt, code => $code);
  is($twice->{status}, 401, 'the mfa_token used twice: 401');
  is_deeply($twice->{json}, { detail => $BAD_TOKEN }, 'detail');
  my $again = send_mfa($t, mfa_token => $mt, user_id => $u->{id});
  is($again->{status}, 401, 'send with a used mfa_token: 401');
  is_deeply($again->{json}, { detail => $BAD_TOKEN }, 'detail');
  my ($r2, $mt2) = challenge($u);
  $v = verify($t, mfa_token => $mt2, code => $code, method => 'email');
  is($v->{status}, 401, 'the used code on a new challenge: 401');
  is_deeply($v->{json}, { detail => $BAD_CODE }, 'detail');

  # the JSON body form; no method: six digits are tried as the mailed code
  $s = send_mfa($t, json => { mfa_token => $mt2, user_id => $u->{id} });
  is($s->{status}, 200, 'send with a JSON body: 200') or diag($s->{content});
  $v = verify($t, mfa_token => $mt2, code => last_code($u->{email}));
  is($v->{status}, 200, 'verify without a method: 200') or diag($v->{content});
};

subtest 'wrong, expired, resent and foreign codes' => sub {
  reset_sends($u);
  my (undef, $mt) = challenge($u);
  is(send_mfa($t, mfa_token => $mt, user_id => $u->{id})->{status}, 200, 'sent');
  my $code = last_code($u->{email});
  my $v = verify($t, mfa_token => $mt, code => other_code($code), method => 'email');
  is($v->{status}, 401, 'a wrong code: 401');
  is_deeply($v->{json}, { detail => $BAD_CODE }, 'detail');
  $v = verify($t, mfa_token => $mt, code => 'abc', method => 'email');
  is($v->{status}, 401, 'not six digits: 401');

  psql("UPDATE one_time_codes SET expires_at = now() - interval '1 second' WHERE purpose = 'mfa_email' "
       . "AND used_at IS NULL AND user_id = " . q_uid($u));
  $v = verify($t, mfa_token => $mt, code => $code, method => 'email');
  is($v->{status}, 401, 'an expired code: 401');
  is_deeply($v->{json}, { detail => $BAD_CODE }, 'detail');

  # a new code ends the one before
  (undef, $mt) = challenge($u);
  send_mfa($t, mfa_token => $mt, user_id => $u->{id});
  my $first = last_code($u->{email});
  send_mfa($t, mfa_token => $mt, user_id => $u->{id});
  my $second = last_code($u->{email});
  if ($first ne $second) {
    is(verify($t, mfa_token => $mt, code => $first, method => 'email')->{status}, 401, 'the earlier code is dead');
  } else {
    pass('the same six digits twice by chance');
  }
  # a code sent for one challenge does not finish another
  my (undef, $other) = challenge($u);
  is(verify($t, mfa_token => $other, code => $second, method => 'email')->{status}, 401,
     "another challenge's code: 401");
  is(verify($t, mfa_token => $mt, code => $second, method => 'email')->{status}, 200, 'its own challenge: 200');
};

subtest 'too many attempts end the challenge' => sub {
  reset_sends($u);
  my (undef, $mt) = challenge($u);
  send_mfa($t, mfa_token => $mt, user_id => $u->{id});
  my $code = last_code($u->{email});
  is(verify($t, mfa_token => $mt, code => other_code($code), method => 'email')->{status}, 401, "wrong code $_")
    for 1 .. 5;
  my $v = verify($t, mfa_token => $mt, code => $code, method => 'email');
  is($v->{status}, 401, 'then even the right code: 401');
  is_deeply($v->{json}, { detail => $BAD_TOKEN }, 'the challenge is over');
  is(send_mfa($t, mfa_token => $mt, user_id => $u->{id})->{status}, 401, 'and no code is sent for it');
  is(psql("SELECT attempts FROM one_time_codes WHERE purpose = 'mfa_email' AND user_id = " . q_uid($u)
          . " ORDER BY created_at DESC LIMIT 1"), 5, 'the code itself counted five attempts');
};

subtest 'send: bad requests never 500' => sub {
  reset_sends($u);
  my (undef, $mt) = challenge($u);
  my $other = create_user(role => 'user', tenant_id => $t->{id});
  my $before = mail_count($u->{email});
  my $r = send_mfa($t, mfa_token => $mt, user_id => $other->{id});
  is($r->{status}, 401, 'another user_id: 401');
  is_deeply($r->{json}, { detail => $BAD_TOKEN }, 'detail');
  is(mail_count($other->{email}), 0, 'no mail to the other user');
  $r = send_mfa($t, user_id => $u->{id});
  is($r->{status}, 422, 'missing mfa_token: 422');
  ok(find_verror($r, ['body', 'mfa_token']), 'the error names mfa_token');
  $r = send_mfa($t, mfa_token => $mt);
  is($r->{status}, 422, 'missing user_id: 422');
  $r = send_mfa($t, raw => '{"mfa_token": "x", ');
  is($r->{status}, 422, 'malformed JSON: 422');
  is($r->{json}{detail}[0]{type}, 'json_invalid', 'json_invalid');
  $r = send_mfa($t, raw => '[1, 2]');
  is($r->{status}, 422, 'a JSON array: 422');
  $r = send_mfa($t, json => { mfa_token => 5, user_id => $u->{id} });
  is($r->{status}, 422, 'a number as mfa_token: 422');
  $r = send_mfa($t, mfa_token => 'skm_nonsense', user_id => $u->{id});
  is($r->{status}, 401, 'an unknown mfa_token: 401');
  is_deeply($r->{json}, { detail => $BAD_TOKEN }, 'detail');
  my $t2 = create_tenant();
  $r = send_mfa($t2, mfa_token => $mt, user_id => $u->{id});
  is($r->{status}, 401, "another tenant's endpoint: 401");
  $r = send_mfa({ slug => 'no-such-tenant-x' }, mfa_token => $mt, user_id => $u->{id});
  is($r->{status}, 404, 'an unknown tenant: 404');
  psql("UPDATE one_time_codes SET expires_at = now() - interval '1 second' WHERE code_hash = " . sql_quote(sha256_hex($mt)));
  $r = send_mfa($t, mfa_token => $mt, user_id => $u->{id});
  is($r->{status}, 401, 'an expired mfa_token: 401');
  is(mail_count($u->{email}), $before, 'none of these sent mail');
  is(verify($t, mfa_token => 'x', code => '123456', method => 'sms')->{status}, 422, 'an unknown method: 422');
  cmp_ok(psql("SELECT count(*) FROM audit_log WHERE action = 'user.mfa_email_send' AND result = 'failure' "
              . "AND details->>'reason' = 'user_mismatch'"), '>=', 1, 'the mismatch is audited');
};

subtest 'sending is rate-limited' => sub {
  reset_sends($u);
  my (undef, $mt) = challenge($u);
  is(send_mfa($t, mfa_token => $mt, user_id => $u->{id})->{status}, 200, "send $_") for 1 .. 5;
  my $r = send_mfa($t, mfa_token => $mt, user_id => $u->{id});
  is($r->{status}, 429, 'the sixth within ten minutes: 429');
  like($r->{headers}{'retry-after'} // '', qr/\A[1-9]\d*\z/, 'Retry-After');
  reset_sends($u);
};

subtest 'a user with TOTP only is not offered email' => sub {
  my $w = create_user(role => 'user', tenant_id => $t->{id}, prefix => 'mfa-totp');
  my $wt = login($w)->{json}{access_token};
  my $key = b32decode(me($wt, POST => '/totp/setup')->{json}{secret});
  is(me($wt, POST => '/totp/confirm', json => { code => totp_at($key, int(time() / 30)) })->{status}, 200, 'TOTP on');
  my ($r, $mt) = challenge($w);
  is_deeply($r->{json}{methods}, ['totp', 'backup_codes'], 'methods without email');
  my $s = send_mfa($t, mfa_token => $mt, user_id => $w->{id});
  is($s->{status}, 400, 'send: 400');
  is_deeply($s->{json}, { detail => 'Email MFA is not available' }, 'detail');
  is(verify($t, mfa_token => $mt, code => '123456', method => 'email')->{status}, 400, 'verify by email: 400');

  # both methods: disabling email needs a TOTP code
  is(me($wt, POST => '/email/enable')->{status}, 200, 'enable email too');
  is(me($wt, POST => '/email/confirm', json => { code => last_code($w->{email}) })->{status}, 200, 'confirmed');
  ($r, $mt) = challenge($w);
  is_deeply($r->{json}{methods}, ['totp', 'email', 'backup_codes'], 'all three methods');
  is(me($wt, POST => '/email/disable', json => { password => $w->{password} })->{status}, 422,
     'disable with a password when TOTP is on: 422 (a code is needed)');
  psql("UPDATE mfa_methods SET last_used_step = NULL WHERE user_id = " . q_uid($w));
  my $d = me($wt, POST => '/email/disable', json => { code => totp_at($key, int(time() / 30)) });
  is($d->{status}, 200, 'disable with a TOTP code: 200') or diag($d->{content});
  is($d->{json}{mfa_enabled}, JSON::PP::true, 'MFA stays on (TOTP)');
};

subtest 'disable' => sub {
  psql("DELETE FROM auth_throttle WHERE key = " . sql_quote("user-mfa:$u->{id}"));
  my $r = me($tok, POST => '/email/disable', json => {});
  is($r->{status}, 422, 'without a password: 422');
  $r = me($tok, POST => '/email/disable', json => { password => 'not the password' });
  is($r->{status}, 400, 'a wrong password: 400');
  is_deeply($r->{json}, { detail => 'Invalid password' }, 'detail');
  $r = me($tok, POST => '/email/disable', json => { password => $u->{password}, extra => 1 });
  is($r->{status}, 422, 'an unknown member: 422');
  $r = me($tok, POST => '/email/disable', json => { password => $u->{password} });
  is($r->{status}, 200, 'disable 200') or diag($r->{content});
  is($r->{json}{mfa_enabled}, JSON::PP::false, 'mfa_enabled false');
  is(psql("SELECT mfa_enabled::text || (SELECT count(*) FROM mfa_methods WHERE user_id = u.id) || "
          . "(SELECT count(*) FROM one_time_codes WHERE user_id = u.id AND purpose = 'mfa_email' AND used_at IS NULL) "
          . "FROM users u WHERE id = " . q_uid($u)), 'false00', 'no method, no live code');
  is(psql("SELECT count(*) FROM audit_log WHERE action = 'user.mfa_disabled' AND result = 'success' "
          . "AND details->>'method' = 'email' AND resource_id = " . q_uid($u)), 1, 'audited user.mfa_disabled');
  is(me($tok, POST => '/email/disable', json => { password => $u->{password} })->{status}, 404, 'again: 404');
  is_deeply(me($tok, GET => '')->{json}{methods}, [], 'nothing listed');
  my $l = login($u);
  ok($l->{json}{access_token} && !$l->{json}{mfa_required}, 'sign-in without MFA again');
};

# ---- a tenant that requires MFA, a user who enrolled nothing ----
my $SA = admin_token();
my $tm = admin_create($SA, 'tenants', { name => 'Strict Co', slug => unique_slug('mfa-req'),
                                        settings => { mfa_required => JSON::PP::true() } });
my $plain = create_user(role => 'user', tenant_id => $tm->{id}, prefix => 'mfa-req');

subtest 'tenant requires MFA, nothing enrolled: email' => sub {
  my ($r, $mt) = challenge($plain, $tm);
  is($r->{status}, 200, 'login 200') or diag($r->{content});
  is($r->{json}{mfa_required}, JSON::PP::true, 'a challenge');
  is_deeply($r->{json}{methods}, ['email'], 'email is offered');
  is(verify($tm, mfa_token => $mt, code => '123456')->{status}, 401, 'before a code was sent: 401');
  my $s = send_mfa($tm, mfa_token => $mt, user_id => $plain->{id});
  is($s->{status}, 200, 'send 200') or diag($s->{content});
  my $v = verify($tm, mfa_token => $mt, code => last_code($plain->{email}));
  is($v->{status}, 200, 'signed in with the mailed code') or diag($v->{content});
  ok($v->{json}{access_token}, 'tokens');
  is(psql("SELECT count(*) FROM mfa_methods WHERE user_id = " . q_uid($plain)), 0, 'nothing was enrolled');
};

# ---- the hosted login pages ----
my $CB  = 'https://app.example.test/callback';
my $app = new_app($SA, tenant_id => $tm->{id}, application_type => 'WEB');
my $TP  = "/api/v1/auth/tenants/$tm->{slug}/oauth";

sub forms {
  my ($html) = @_;
  my @f;
  while ($html =~ m{(<form\b[^>]*>)(.*?)</form>}sg) {
    my ($tag, $inner) = ($1, $2);
    my ($action) = $tag =~ /\baction="([^"]*)"/;
    my %v;
    for my $in ($inner =~ /(<input\b[^>]*>)/g) {
      my ($n) = $in =~ /\bname="([^"]*)"/;
      my ($val) = $in =~ /\bvalue="([^"]*)"/;
      $v{$n} = SKBrowser::html_unescape($val // '') if defined $n;
    }
    push @f, { action => SKBrowser::html_unescape($action), fields => \%v, html => $inner };
  }
  return @f;
}
sub code_form  { (grep { exists $_->{fields}{code} } forms($_[0]{content}))[0] }
sub email_form { (grep { $_->{html} =~ /Send me a code by email/ } forms($_[0]{content}))[0] }

# authorize -> login page -> password: the MFA page
sub to_mfa_page {
  my ($b, $user) = @_;
  my $r = $b->get("$TP/authorize" . query_string(response_type => 'code', client_id => $app->{client_id},
                                                 redirect_uri => $CB, scope => 'openid email', state => 'st'));
  $r = $b->get($r->{headers}{location});
  return $b->post(SKBrowser::form_action($r), [flow => SKBrowser::field($r, 'flow'), csrf => SKBrowser::field($r, 'csrf'),
                                              email => $user->{email}, password => $user->{password}]);
}

subtest 'hosted login: a code by email' => sub {
  my $hu = create_user(role => 'user', tenant_id => $tm->{id}, prefix => 'mfa-page');
  my $b = SKBrowser->new;
  my $r = to_mfa_page($b, $hu);
  is($r->{status}, 200, 'the MFA page') or return diag($r->{content});
  is(page_title($r->{content}), 'Two-step verification', 'title');
  ok(!$b->cookie('scaikey_sso'), 'no SSO session yet');
  my $ef = email_form($r);
  ok($ef, 'a "send me a code by email" button') or return;
  my $cf = code_form($r);
  ok($cf, 'a code field') or return;

  # the forms are protected like the others
  my $x = $b->post($ef->{action}, [flow => $ef->{fields}{flow}, csrf => 'forged']);
  is($x->{status}, 403, 'send without the right csrf: 403');
  is(mail_count($hu->{email}), 0, 'and no mail');
  $x = SKBrowser->new->post($cf->{action}, [flow => $cf->{fields}{flow}, csrf => $cf->{fields}{csrf}, code => '123456']);
  is($x->{status}, 403, 'a code from another browser (no flow cookie): 403');

  $r = $b->post($ef->{action}, [flow => $ef->{fields}{flow}, csrf => $ef->{fields}{csrf}]);
  is($r->{status}, 200, 'send: the page again') or diag($r->{content});
  like($r->{content}, qr/We sent a code to your email address/, 'says the code was sent');
  my $code = last_code($hu->{email});
  like($code // '', qr/\A\d{6}\z/, 'the mail holds a code');
  like(psql("SELECT data->>'for' FROM one_time_codes WHERE purpose = 'mfa_email' AND user_id = " . q_uid($hu)),
       qr/\Aflow:otc_/, 'the code is bound to this sign-in');

  $cf = code_form($r);
  $x = $b->post($cf->{action}, [flow => $cf->{fields}{flow}, csrf => $cf->{fields}{csrf}, code => other_code($code)]);
  is($x->{status}, 401, 'a wrong code: 401 page');
  like($x->{content}, qr/Invalid code/, 'says so');
  $x = $b->post($cf->{action}, [flow => $cf->{fields}{flow}, csrf => $cf->{fields}{csrf}, code => $code]);
  is($x->{status}, 200, 'the right code: the way back to the application') or diag($x->{content});
  my $next = SKBrowser::next_url($x) // '';
  like($next, qr/\A\Q$CB\E\?/, 'to the redirect_uri');
  ok(url_params($next)->{code}, 'with a code');
  is(url_params($next)->{state}, 'st', 'and the state');
  my $sso = $b->cookie('scaikey_sso') // '';
  my ($sid) = $sso =~ /\A(ses_[a-z0-9]+)\./;
  ok($sid, 'an SSO session');
  is(psql("SELECT mfa_verified FROM sessions WHERE id = " . sql_quote($sid // '')), 't', 'MFA-verified');
  is(psql("SELECT count(*) FROM audit_log WHERE action = 'user.login' AND result = 'success' "
          . "AND details->>'method' = 'email' AND actor_id = " . q_uid($hu)), 1, 'audited');
  $x = $b->post($cf->{action}, [flow => $cf->{fields}{flow}, csrf => $cf->{fields}{csrf}, code => $code]);
  is($x->{status}, 400, 'the same form again: expired');

  # the SSO session is good for the next authorization without MFA again
  $r = $b->get("$TP/authorize" . query_string(response_type => 'code', client_id => $app->{client_id},
                                              redirect_uri => $CB, prompt => 'none'));
  ok(url_params($r->{headers}{location})->{code}, 'prompt=none afterwards: a code');
};

subtest 'hosted login: five wrong codes end the sign-in' => sub {
  my $hu = create_user(role => 'user', tenant_id => $tm->{id}, prefix => 'mfa-page-bad');
  my $b = SKBrowser->new;
  my $r = to_mfa_page($b, $hu);
  my $ef = email_form($r);
  $r = $b->post($ef->{action}, [flow => $ef->{fields}{flow}, csrf => $ef->{fields}{csrf}]);
  my $code = last_code($hu->{email});
  my $cf = code_form($r);
  my $x;
  for my $i (1 .. 5) {
    $x = $b->post($cf->{action}, [flow => $cf->{fields}{flow}, csrf => $cf->{fields}{csrf}, code => other_code($code)]);
  }
  is($x->{status}, 401, 'the fifth wrong code');
  is(page_title($x->{content}), 'Sign-in stopped', 'the sign-in is stopped');
  $x = $b->post($cf->{action}, [flow => $cf->{fields}{flow}, csrf => $cf->{fields}{csrf}, code => $code]);
  is($x->{status}, 400, 'then the right code finds an expired sign-in');
  ok(!$b->cookie('scaikey_sso'), 'no SSO session');
  $x = $b->post($cf->{action}, [flow => $cf->{fields}{flow}, csrf => $cf->{fields}{csrf}]);
  is($x->{status}, 400, 'no code on an ended flow: 400');
};

subtest 'hosted login: TOTP codes sent at once count one each' => sub {
  # a user of the strict tenant with TOTP: signed in once through the emailed code, then enrolled
  my $hu = create_user(role => 'user', tenant_id => $tm->{id}, prefix => 'mfa-page-race');
  my (undef, $mt) = challenge($hu, $tm);
  is(send_mfa($tm, mfa_token => $mt, user_id => $hu->{id})->{status}, 200, 'a code mailed for the API sign-in');
  my $at = verify($tm, mfa_token => $mt, code => last_code($hu->{email}))->{json}{access_token};
  ok($at, 'signed in') or return;
  my $key = b32decode(me($at, POST => '/totp/setup')->{json}{secret} // '');
  is(me($at, POST => '/totp/confirm', json => { code => totp_at($key, int(time() / 30)) })->{status}, 200, 'TOTP on');
  my $step = int(time() / 30);
  my %near = map { totp_at($key, $step + $_) => 1 } -2 .. 2;
  my ($code) = grep { !$near{$_} } qw(000000 111111 222222 333333 444444 555555);

  my $b = SKBrowser->new;
  my $r = to_mfa_page($b, $hu);
  my $cf = code_form($r);
  ok($cf, 'the MFA page with its code form') or return diag($r->{content});
  # 24 wrong codes at the same moment, from 24 processes sharing the browser's cookies (TOTP codes
  # have no counter of their own, as a mailed code has: only the flow's counts them)
  my @status = at_once(24, sub {
    $b->post($cf->{action}, [flow => $cf->{fields}{flow}, csrf => $cf->{fields}{csrf}, code => $code])->{status}
  });
  is(scalar @status, 24, 'twenty-four answers');
  my $tried = grep { $_ == 401 } @status;
  ok($tried >= 1 && $tried <= 5, "at most five of them were tried as codes (401: $tried)");
  is(scalar(grep { $_ == 400 } @status), 24 - $tried, 'the others found the sign-in ended (400)');
  my $x = $b->post($cf->{action}, [flow => $cf->{fields}{flow}, csrf => $cf->{fields}{csrf},
                                   code => totp_at($key, int(time() / 30))]);
  is($x->{status}, 400, 'the right code afterwards finds the sign-in ended') if $tried == 5;
  ok(!$b->cookie('scaikey_sso'), 'no SSO session');
};

done_testing();
