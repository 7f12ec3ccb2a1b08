#!/usr/bin/perl
# Email code sign-in: POST /api/v1/auth/tenants/{slug}/email-code/{send,verify,refresh,revoke}.
# The codes are read from the mail the module writes into $SK_MAILDIR (ScaiKeyMail dir).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(hmac_sha256_hex);
use MIME::Base64 qw(decode_base64);
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan skip_all => 'SK_MAILDIR not set' unless $ENV{SK_MAILDIR};
plan tests => 16;

my $SENT = 'If the address is registered, a code has been sent';
my $BAD  = 'Invalid or expired code';

sub path { "/api/v1/auth/tenants/$_[0]/email-code/$_[1]" }
sub send_code {
  my ($slug, $email, %o) = @_;
  req(POST => path($slug, 'send'), json => { email => $email }, ip => $o{ip} // unique_ip());
}
sub verify_code {
  my ($slug, $email, $code, %o) = @_;
  req(POST => path($slug, 'verify'), json => { email => $email, code => "$code" }, ip => $o{ip} // unique_ip());
}
sub refresh { req(POST => path($_[0], 'refresh'), json => { refresh_token => $_[1] }, ip => unique_ip()) }
sub revoke  { req(POST => path($_[0], 'revoke'),  json => { refresh_token => $_[1] }, ip => unique_ip()) }



sub master_key {
  open(my $fh, '<', "$ENV{SK_RUN}/master.key") or return undef;
  my $k = <$fh>;
  chomp $k;
  return decode_base64($k);
}

sub setup_user {
  my (%o) = @_;
  my $t = create_tenant(name => $o{tenant_name} // 'Acme Widgets');
  my $u = create_user(role => 'user', tenant_id => $t->{id});
  return ($t, $u);
}

sub sign_in {
  my ($t, $u) = @_;
  my $r = send_code($t->{slug}, $u->{email});
  return undef unless $r->{status} == 202;
  my $code = last_code($u->{email}) or return undef;
  my $v = verify_code($t->{slug}, $u->{email}, $code);
  return $v->{status} == 200 ? $v->{json} : undef;
}

subtest 'send: 202, one mail with a six-digit code, only a keyed digest stored' => sub {
  my ($t, $u) = setup_user();
  my $r = send_code($t->{slug}, $u->{email});
  is($r->{status}, 202, 'status 202') or diag($r->{content});
  is_deeply($r->{json}, { detail => $SENT }, 'detail');
  my @m = mails_to($u->{email});
  is(scalar @m, 1, 'one mail file') or return;
  my $h = $m[0]{headers};
  like($m[0]{file}, qr/\A\d+-[a-z0-9]+\.eml\z/, 'file named <timestamp>-<random>.eml');
  is($h->{subject}, 'Your sign-in code for Acme Widgets', 'subject names the tenant');
  like($h->{from} // '', qr/@/, 'From');
  like($h->{date} // '', qr/\A\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\z/, 'Date');
  like($h->{'message-id'} // '', qr/\A<[^<>\s]+@[^<>\s]+>\z/, 'Message-ID');
  is($h->{'content-type'}, 'text/plain; charset=utf-8', 'Content-Type');
  my ($code) = $m[0]{body} =~ /^\s+(\d{6})\s*$/m;
  ok(defined $code, 'six-digit code in the body') or return;
  like($m[0]{body}, qr/Acme Widgets/, 'body names the tenant');
  my $row = psql(sprintf("SELECT id || '|' || code_hash || '|' || user_id || '|' || attempts || '|' || max_attempts "
                           . "|| '|' || round(extract(epoch FROM expires_at - created_at)) "
                           . "FROM one_time_codes WHERE purpose = 'email_login' AND email = %s",
                         sql_quote(lc $u->{email})));
  my ($id, $hash, $uid, $att, $max, $ttl) = split /\|/, $row // '';
  is($uid, $u->{id}, 'row names the user');
  is("$att/$max", '0/5', 'no attempts, at most 5');
  is($ttl, 600, 'valid 10 minutes');
  unlike($hash, qr/$code/, 'the code itself is not stored');
  isnt($hash, Digest::SHA::sha256_hex($code), 'not a plain SHA-256 of the code');
  my $key = master_key();
  is($hash, hmac_sha256_hex("email_login:$id:$code", $key), 'HMAC-SHA256 under the master key, bound to the row id')
    if defined $key;
  my $audit = psql(sprintf("SELECT count(*) || '|' || bool_and(details::text NOT LIKE %s) FROM audit_log "
                             . "WHERE action = 'auth.email_code.send' AND actor_email = %s AND result = 'success'",
                           sql_quote("%$code%"), sql_quote($u->{email})));
  is($audit, '1|true', 'send audited, without the code');
};

subtest 'unknown address: same answer, same store work, no mail' => sub {
  my $t = create_tenant();
  my $email = unique_email('nobody');
  my $r = send_code($t->{slug}, $email);
  is($r->{status}, 202, 'status 202');
  is_deeply($r->{json}, { detail => $SENT }, 'same detail');
  is(scalar(mails_to($email)), 0, 'no mail file');
  is(psql(sprintf("SELECT count(*) FROM one_time_codes WHERE email = %s AND user_id IS NULL", sql_quote($email))),
     1, 'a code row without a user was stored all the same');
  my $v = verify_code($t->{slug}, $email, '123456');
  is($v->{status}, 400, 'verify for an unknown address: 400');
  is_deeply($v->{json}, { detail => $BAD }, 'detail');
  # a user of another tenant is unknown here
  my ($t2, $u2) = setup_user();
  $r = send_code($t->{slug}, $u2->{email});
  is($r->{status}, 202, 'user of another tenant: 202');
  is(scalar(mails_to($u2->{email})), 0, 'and no mail');
};

subtest 'branding name in subject and body' => sub {
  my ($t, $u) = setup_user(tenant_name => 'Plain Name');
  psql(sprintf(q{UPDATE tenants SET branding = '{"name": "Brand Größe"}' WHERE id = %s}, sql_quote($t->{id})));
  my $r = send_code($t->{slug}, $u->{email});
  is($r->{status}, 202, 'status 202');
  my ($m) = mails_to($u->{email});
  ok($m, 'mail') or return;
  like($m->{headers}{subject}, qr/\A=\?UTF-8\?B\?/, 'non-ASCII subject is RFC 2047 encoded');
  my $subj = join '', map { /=\?UTF-8\?B\?([^?]*)\?=/ ? decode_base64($1) : '' } split /\s+/, $m->{headers}{subject};
  is($subj, "Your sign-in code for Brand Gr\xc3\xb6\xc3\x9fe", 'subject carries the branding name');
  like($m->{body}, qr/Brand Gr\xc3\xb6\xc3\x9fe/, 'body carries the branding name (UTF-8)');
};

subtest 'verify: tenant tokens bound to a user session' => sub {
  my ($t, $u) = setup_user();
  send_code($t->{slug}, $u->{email});
  my $code = last_code($u->{email});
  my $r = verify_code($t->{slug}, uc $u->{email}, $code);
  is($r->{status}, 200, 'status 200 (address case does not matter)') or return diag($r->{content});
  my $j = $r->{json};
  is_deeply([sort keys %$j], [qw(access_token expires_in refresh_token token_type)], 'members');
  is($j->{token_type}, 'Bearer', 'token_type Bearer');
  is($j->{expires_in}, 3600, 'expires_in');
  like($r->{headers}{'cache-control'} // '', qr/no-store/, 'Cache-Control: no-store');
  my $jwks = jwks(slug => $t->{slug});
  my ($h, $c) = eval { verify_jwt($j->{access_token}, $jwks) };
  ok($c, 'signature verifies against the tenant JWKS') or return diag($@);
  is($c->{iss}, base() . "/api/v1/auth/tenants/$t->{slug}", 'iss is the tenant issuer');
  is($c->{aud}, 'scaikey-portal', 'aud scaikey-portal');
  is($c->{sub}, $u->{id}, 'sub');
  is($c->{tenant_id}, $t->{id}, 'tenant_id');
  is($c->{scope}, 'openid profile email', 'scope');
  is($c->{exp} - $c->{iat}, 3600, 'lifetime');
  ok(!exists $c->{role}, 'no admin role claim');
  is(psql(sprintf("SELECT user_id || '|' || kind || '|' || tenant_id || '|' || (revoked_at IS NULL) FROM sessions "
                    . "WHERE id = %s", sql_quote($c->{sid}))),
     "$u->{id}|user|$t->{id}|true", 'sid names a live user session in the tenant');
  is(psql(sprintf("SELECT count(*) FROM one_time_codes WHERE user_id = %s AND used_at IS NOT NULL",
                  sql_quote($u->{id}))), 1, 'code spent');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'auth.email_code.verify' AND result = 'success' "
                    . "AND actor_id = %s AND resource_id = %s", sql_quote($u->{id}), sql_quote($c->{sid}))),
     1, 'verify audited');
  # used again
  $r = verify_code($t->{slug}, $u->{email}, $code);
  is($r->{status}, 400, 'the same code again: 400');
  is_deeply($r->{json}, { detail => $BAD }, 'detail');
};

subtest 'wrong codes count; after 5 attempts the code is dead' => sub {
  my ($t, $u) = setup_user();
  send_code($t->{slug}, $u->{email});
  my $code = last_code($u->{email});
  my $wrong = sprintf('%06d', ($code + 1) % 1000000);
  my $r = verify_code($t->{slug}, $u->{email}, $wrong);
  is($r->{status}, 400, 'wrong code: 400');
  is_deeply($r->{json}, { detail => $BAD }, 'detail');
  is(psql(sprintf("SELECT attempts FROM one_time_codes WHERE user_id = %s", sql_quote($u->{id}))), 1, 'attempt counted');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'auth.email_code.verify' AND result = 'failure' "
                    . "AND actor_email = %s", sql_quote($u->{email}))), 1, 'failure audited');
  verify_code($t->{slug}, $u->{email}, $_) for ('abcdef', '12345', $wrong, $wrong);
  is(psql(sprintf("SELECT attempts FROM one_time_codes WHERE user_id = %s", sql_quote($u->{id}))), 5, '5 attempts');
  $r = verify_code($t->{slug}, $u->{email}, $code);
  is($r->{status}, 400, 'the right code after 5 wrong attempts: 400');
  is(psql(sprintf("SELECT attempts FROM one_time_codes WHERE user_id = %s", sql_quote($u->{id}))), 5,
     'attempts never go beyond the maximum');

  # fourth wrong attempt, then the right one: still good
  my ($t2, $u2) = setup_user();
  send_code($t2->{slug}, $u2->{email});
  my $c2 = last_code($u2->{email});
  my $w2 = sprintf('%06d', ($c2 + 7) % 1000000);
  verify_code($t2->{slug}, $u2->{email}, $w2) for 1 .. 4;
  is(verify_code($t2->{slug}, $u2->{email}, $c2)->{status}, 200, 'right code on the 5th attempt: 200');
};

subtest 'expired code' => sub {
  my ($t, $u) = setup_user();
  send_code($t->{slug}, $u->{email});
  my $code = last_code($u->{email});
  psql(sprintf("UPDATE one_time_codes SET expires_at = now() - interval '1 second' WHERE user_id = %s",
               sql_quote($u->{id})));
  my $r = verify_code($t->{slug}, $u->{email}, $code);
  is($r->{status}, 400, 'expired: 400');
  is_deeply($r->{json}, { detail => $BAD }, 'detail');
};

subtest 'a new code replaces the previous one; codes are per tenant' => sub {
  my ($t, $u) = setup_user();
  send_code($t->{slug}, $u->{email});
  my $first = last_code($u->{email});
  send_code($t->{slug}, $u->{email});
  my $second = last_code($u->{email});
  is(scalar(mails_to($u->{email})), 2, 'two mails');
  if ($first ne $second) {
    is(verify_code($t->{slug}, $u->{email}, $first)->{status}, 400, 'the first code no longer works');
  } else {
    pass('(same digits drawn twice)');
  }
  my $other = create_tenant();
  is(verify_code($other->{slug}, $u->{email}, $second)->{status}, 400, 'not at another tenant');
  is(verify_code($t->{slug}, $u->{email}, $second)->{status}, 200, 'the second code works');
};

subtest 'rate limit per address: 3 sends per 10 minutes' => sub {
  my ($t, $u) = setup_user();
  is(send_code($t->{slug}, $u->{email})->{status}, 202, "send $_") for 1 .. 3;
  my $r = send_code($t->{slug}, $u->{email});
  is($r->{status}, 429, '4th send: 429') or diag($r->{content});
  like($r->{headers}{'retry-after'} // '', qr/\A\d+\z/, 'Retry-After');
  ok(($r->{headers}{'retry-after'} // 0) <= 600, 'Retry-After within the window');
  is(scalar(mails_to($u->{email})), 3, 'three mails only');
  my $nobody = unique_email('nobody');
  is(send_code($t->{slug}, $nobody)->{status}, 202, "unknown address send $_") for 1 .. 3;
  is(send_code($t->{slug}, $nobody)->{status}, 429, 'unknown addresses are limited the same way');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'auth.email_code.send' AND result = 'denied' "
                    . "AND actor_email = %s", sql_quote($u->{email}))), 1, 'refusal audited');
};

subtest 'rate limit per IP: 20 sends per 10 minutes' => sub {
  my $t = create_tenant();
  my $ip = unique_ip();
  my $ok = 0;
  for (1 .. 20) {
    $ok++ if send_code($t->{slug}, unique_email('ipx'), ip => $ip)->{status} == 202;
  }
  is($ok, 20, '20 sends from one address accepted');
  my $r = send_code($t->{slug}, unique_email('ipx'), ip => $ip);
  is($r->{status}, 429, '21st: 429');
  like($r->{headers}{'retry-after'} // '', qr/\A\d+\z/, 'Retry-After');
  is(send_code($t->{slug}, unique_email('ipx'))->{status}, 202, 'another client address is not limited');
};

subtest 'refresh rotates; reuse ends the session' => sub {
  my ($t, $u) = setup_user();
  my $l = sign_in($t, $u);
  ok($l, 'signed in') or return;
  my $r = refresh($t->{slug}, $l->{refresh_token});
  is($r->{status}, 200, 'refresh: 200') or return diag($r->{content});
  my $n = $r->{json};
  isnt($n->{refresh_token}, $l->{refresh_token}, 'new refresh token');
  is($n->{token_type}, 'Bearer', 'token_type');
  my (undef, $c0) = jwt_parts($l->{access_token});
  my (undef, $c1) = jwt_parts($n->{access_token});
  is($c1->{sid}, $c0->{sid}, 'same session');
  is($c1->{iss}, base() . "/api/v1/auth/tenants/$t->{slug}", 'tenant issuer');
  my $other = create_tenant();
  is(refresh($other->{slug}, $n->{refresh_token})->{status}, 401, 'not at another tenant');
  $r = refresh($t->{slug}, $l->{refresh_token});
  is($r->{status}, 401, 'the spent token again: 401');
  is_deeply($r->{json}, { detail => 'Invalid refresh token' }, 'detail');
  is(psql(sprintf("SELECT revoked_reason FROM sessions WHERE id = %s", sql_quote($c0->{sid}))),
     'refresh_token_reuse', 'session ended');
  is(refresh($t->{slug}, $n->{refresh_token})->{status}, 401, 'the newest token is dead too');
  is(refresh($t->{slug}, 'skr_nonsense')->{status}, 401, 'unknown token: 401');
  # admin refresh tokens are not good here
  my $admin = admin_login();
  is(refresh($t->{slug}, $admin->{refresh_token})->{status}, 401, 'an admin refresh token: 401');
  is(req(POST => '/api/v1/admin/auth/refresh', json => { refresh_token => $admin->{refresh_token} },
         ip => unique_ip())->{status}, 200, 'and it still works where it belongs');
};

subtest 'revoke ends the session' => sub {
  my ($t, $u) = setup_user();
  my $l = sign_in($t, $u);
  ok($l, 'signed in') or return;
  my (undef, $c) = jwt_parts($l->{access_token});
  my $r = revoke($t->{slug}, $l->{refresh_token});
  is($r->{status}, 200, 'revoke: 200');
  is_deeply($r->{json}, {}, 'body {}');
  is(psql(sprintf("SELECT revoked_reason FROM sessions WHERE id = %s", sql_quote($c->{sid}))), 'logout',
     'session revoked');
  is(refresh($t->{slug}, $l->{refresh_token})->{status}, 401, 'refresh after revoke: 401');
  $r = revoke($t->{slug}, 'skr_unknown');
  is($r->{status}, 200, 'unknown token: 200');
  is_deeply($r->{json}, {}, 'body {}');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'auth.email_code.revoke' AND resource_id = %s",
                  sql_quote($c->{sid}))), 1, 'revocation audited');
};

subtest 'account and tenant state' => sub {
  my ($t, $u) = setup_user();
  psql(sprintf("UPDATE users SET status = 'SUSPENDED' WHERE id = %s", sql_quote($u->{id})));
  is(send_code($t->{slug}, $u->{email})->{status}, 202, 'suspended account: 202');
  is(scalar(mails_to($u->{email})), 0, 'but no mail');
  my ($t2, $u2) = setup_user();
  send_code($t2->{slug}, $u2->{email});
  my $code = last_code($u2->{email});
  psql(sprintf("UPDATE users SET status = 'SUSPENDED' WHERE id = %s", sql_quote($u2->{id})));
  is(verify_code($t2->{slug}, $u2->{email}, $code)->{status}, 400, 'suspended after the send: 400');
  is(send_code('no-such-tenant-' . int(rand(1e9)), $u->{email})->{status}, 404, 'unknown tenant: 404');
};

subtest 'validation' => sub {
  my $t = create_tenant();
  my $r = req(POST => path($t->{slug}, 'send'), json => {}, ip => unique_ip());
  is($r->{status}, 422, 'missing email: 422');
  ok(find_verror($r, ['body', 'email']), 'error names body.email');
  is(req(POST => path($t->{slug}, 'send'), json => { email => 'not-an-address' }, ip => unique_ip())->{status},
     422, 'bad email: 422');
  is(req(POST => path($t->{slug}, 'send'), json => { email => 'a@b.example', x => 1 }, ip => unique_ip())->{status},
     422, 'unknown member: 422');
  is(req(POST => path($t->{slug}, 'verify'), json => { email => 'a@b.example' }, ip => unique_ip())->{status},
     422, 'verify without code: 422');
  is(req(POST => path($t->{slug}, 'refresh'), json => {}, ip => unique_ip())->{status}, 422, 'refresh without token: 422');
  is(req(GET => path($t->{slug}, 'send'))->{status}, 405, 'GET: 405');
};

subtest 'header injection through the tenant name: no mail, failure audited' => sub {
  my ($t, $u) = setup_user();
  psql(sprintf(q{UPDATE tenants SET branding = jsonb_build_object('name', E'Evil\r\nBcc: eve@evil.example') WHERE id = %s},
               sql_quote($t->{id})));
  my $r = send_code($t->{slug}, $u->{email});
  is($r->{status}, 202, 'still 202');
  is(scalar(mails_to($u->{email})), 0, 'no mail written');
  opendir(my $d, $ENV{SK_MAILDIR});
  my @bcc = grep { /\.eml\z/ && do { open(my $f, '<', "$ENV{SK_MAILDIR}/$_"); local $/; (<$f> // '') =~ /eve\@evil/ } }
    readdir $d;
  is(scalar @bcc, 0, 'no message anywhere mentions the injected address');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'mail.send' AND result = 'failure' "
                    . "AND resource_id = %s", sql_quote($u->{id}))), 1, 'mail failure audited');
  is(psql(sprintf("SELECT result FROM audit_log WHERE action = 'auth.email_code.send' AND actor_email = %s",
                  sql_quote($u->{email}))), 'failure', 'send audited as a failure');
};

subtest 'codes never reach the error log' => sub {
  my @codes;
  for my $m (mails_to_all()) { push @codes, $1 if $m =~ /^\s+(\d{6})\s*$/m }
  ok(@codes > 5, 'codes were sent') or return;
  open(my $fh, '<', $ENV{SK_ERROR_LOG}) or return pass('no error log');
  my $log = join '', grep { /SK22\d\d/ } <$fh>;
  my @leaked = grep { $log =~ /(?<!\d)\Q$_\E(?!\d)/ } @codes;
  is(scalar @leaked, 0, 'no code in the messages of the mail flows');
};

subtest 'mail directory holds complete files only' => sub {
  opendir(my $d, $ENV{SK_MAILDIR});
  my @tmp = grep { /\.tmp\z/ } readdir $d;
  is(scalar @tmp, 0, 'no temporary files left');
};

sub mails_to_all {
  opendir(my $d, $ENV{SK_MAILDIR}) or return ();
  my @out;
  for my $f (grep { /\.eml\z/ } readdir $d) {
    open(my $fh, '<:raw', "$ENV{SK_MAILDIR}/$f") or next;
    local $/;
    push @out, scalar <$fh>;
  }
  return @out;
}
