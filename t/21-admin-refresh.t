#!/usr/bin/perl
# POST /api/v1/admin/auth/refresh: rotation, reuse detection, refusals.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use Time::HiRes ();
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 8;

my $REFRESH = '/api/v1/admin/auth/refresh';
my $ME      = '/api/v1/admin/auth/me';
my $INVALID = { detail => 'Invalid refresh token' };

my $jwks = jwks();

sub refresh {
  my ($rt, %o) = @_;
  return req(POST => $REFRESH, json => { refresh_token => $rt }, ip => unique_ip(), %o);
}

sub me { req(GET => $ME, token => $_[0]) }

sub fresh_login {
  my ($u) = @_;
  my ($j, $r) = admin_login(email => $u->{email}, password => $u->{password});
  Test::More::diag("login failed: $r->{status} $r->{content}") unless $j;
  return $j;
}

sub session_revoked {
  my ($sid) = @_;
  return psql('SELECT revoked_at IS NOT NULL FROM sessions WHERE id = ' . sql_quote($sid));
}

subtest 'refresh rotates the refresh token and keeps the session' => sub {
  my $u = create_user();
  my $l = fresh_login($u);
  ok($l, 'logged in') or return;
  my (undef, $c0) = jwt_parts($l->{access_token});

  my $r = refresh($l->{refresh_token});
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  like($r->{headers}{'content-type'} // '', qr{^application/json\b}i, 'Content-Type application/json');
  my $j = $r->{json};
  is($j->{token_type}, 'Bearer', 'token_type Bearer');
  like($j->{expires_in} // '', qr/\A[1-9]\d*\z/, 'expires_in positive integer');
  ok(length($j->{access_token} // ''), 'new access token');
  ok(length($j->{refresh_token} // ''), 'new refresh token');
  isnt($j->{refresh_token}, $l->{refresh_token}, 'the refresh token changed');
  isnt($j->{access_token}, $l->{access_token}, 'the access token changed');
  cmp_ok(length($j->{refresh_token} // ''), '>=', 43, 'new refresh token has at least 43 characters');
  cmp_ok((($j->{refresh_token} // '') =~ tr/.//), '<', 2, 'new refresh token is opaque');

  my (undef, $c1) = access_token_ok($j->{access_token}, $jwks,
    user => { id => $u->{id}, email => $u->{email}, role => $u->{role} },
    expires_in => $j->{expires_in}, name => 'refreshed access token');
  if ($c1) {
    is($c1->{sid}, $c0->{sid}, 'same session id');
    isnt($c1->{jti}, $c0->{jti}, 'new jti');
  }

  my $old = sha256_hex($l->{refresh_token});
  my $new = sha256_hex($j->{refresh_token} // '');
  my @rows = psql("SELECT token_hash || '|' || session_id || '|' || family_id FROM refresh_tokens "
                  . "WHERE token_hash IN (" . sql_quote($old) . ', ' . sql_quote($new) . ')');
  my %row = map { my @f = split /\|/; ($f[0] => \@f) } @rows;
  ok($row{$new}, 'the new token is stored as its sha256 hex');
  is($row{$new} && $row{$new}[1], $c0->{sid}, 'new token belongs to the same session');
  is($row{$new} && $row{$new}[2], $row{$old} && $row{$old}[2], 'new token is in the same family');
  is(psql('SELECT count(*) FROM refresh_tokens t WHERE strpos(t::text, '
          . sql_quote($j->{refresh_token} // '') . ') > 0'), 0, 'the clear new token is not stored');

  my $m = me($j->{access_token});
  is($m->{status}, 200, 'new access token accepted by /me');
  is($m->{json}{session_id}, $c0->{sid}, '/me reports the same session');

  my $r2 = refresh($j->{refresh_token});
  is($r2->{status}, 200, 'the new refresh token can be used in turn');
};

subtest 'reusing a rotated refresh token revokes the whole session' => sub {
  my $u = create_user();
  my $l = fresh_login($u);
  my $other = fresh_login($u);
  ok($l && $other, 'two sessions opened') or return;
  my (undef, $c) = jwt_parts($l->{access_token});

  my $r1 = refresh($l->{refresh_token});
  is($r1->{status}, 200, 'first use: 200') or return;
  my $a2 = $r1->{json}{access_token};
  my $t2 = $r1->{json}{refresh_token};
  is(me($a2)->{status}, 200, 'rotated access token works before the reuse');

  my $reuse = refresh($l->{refresh_token});
  is($reuse->{status}, 401, 'reuse of the old token: 401');
  is_deeply($reuse->{json}, $INVALID, 'reuse: detail') or diag($reuse->{content});

  my $newest = refresh($t2);
  is($newest->{status}, 401, 'after the reuse the newest refresh token is refused');
  is_deeply($newest->{json}, $INVALID, 'newest token: detail');
  is(me($l->{access_token})->{status}, 401, 'first access token of the session refused by /me');
  is(me($a2)->{status}, 401, 'rotated access token of the session refused by /me');
  is(session_revoked($c->{sid}), 't', 'the session is marked revoked in the database');

  is(me($other->{access_token})->{status}, 200, 'another session of the same user is unaffected');
  is(refresh($other->{refresh_token})->{status}, 200, 'its refresh token still works');
};

subtest 'unknown, garbage and wrong-kind tokens' => sub {
  my $u = create_user();
  my $l = fresh_login($u);
  ok($l, 'logged in') or return;
  my $rt = $l->{refresh_token};
  my %cases = (
    'random 43 characters'   => join('', map { ('A'..'Z', 'a'..'z', 0..9, '-', '_')[rand 64] } 1 .. 43),
    'garbage'                => 'garbage',
    'one character changed'  => substr($rt, 0, -1) . (substr($rt, -1) eq 'A' ? 'B' : 'A'),
    'token with suffix'      => $rt . 'x',
    'token prefix'           => substr($rt, 0, length($rt) - 1),
    'the access token'       => $l->{access_token},
    'SQL metacharacters'     => "' OR '1'='1",
    'the sha256 of a token'  => sha256_hex($rt),
    'unicode'                => "\x{263a}" x 50,
  );
  for my $name (sort keys %cases) {
    my $r = refresh($cases{$name});
    is($r->{status}, 401, "$name: 401");
    is_deeply($r->{json}, $INVALID, "$name: detail") or diag($r->{content});
  }
  my $empty = refresh('');
  ok($empty->{status} == 401 || $empty->{status} == 422, "empty string: 401 or 422 (got $empty->{status})");
  ok(is_json_error($empty), 'empty string: JSON error body');

  # None of the attempts above consumed or revoked the real token.
  my $r = refresh($rt);
  is($r->{status}, 200, 'the genuine token still works after the failed attempts');
};

subtest 'request validation' => sub {
  my $missing = req(POST => $REFRESH, json => {}, ip => unique_ip());
  is($missing->{status}, 422, 'missing refresh_token: 422');
  my $e = find_verror($missing, ['body', 'refresh_token']);
  ok($e, 'missing: error at loc [body, refresh_token]') or diag($missing->{content});
  is($e && $e->{type}, 'missing', 'missing: type');
  is($e && $e->{msg}, 'Field required', 'missing: msg');

  for my $bad ([number => 12345], [array => ['x']], [object => { a => 1 }], [null => undef], [bool => JSON::PP::true()]) {
    my $r = req(POST => $REFRESH, json => { refresh_token => $bad->[1] }, ip => unique_ip());
    is($r->{status}, 422, "$bad->[0] refresh_token: 422");
    my $d = find_verror($r, ['body', 'refresh_token']);
    is($d && $d->{type}, 'string_type', "$bad->[0]: type string_type at [body, refresh_token]")
      or diag($r->{content});
  }

  my $extra = req(POST => $REFRESH, json => { refresh_token => 'x' x 43, foo => 1 }, ip => unique_ip());
  is($extra->{status}, 422, 'unknown field: 422');
  my $x = find_verror($extra, ['body', 'foo']);
  is($x && $x->{type}, 'extra_forbidden', 'unknown field: extra_forbidden at [body, foo]')
    or diag($extra->{content});

  my $bad = req(POST => $REFRESH, raw => '{"refresh_token":', ip => unique_ip());
  is($bad->{status}, 422, 'malformed JSON: 422');
  my $j = find_verror($bad, ['body']);
  is($j && $j->{type}, 'json_invalid', 'malformed JSON: json_invalid at [body]') or diag($bad->{content});

  my $txt = req(POST => $REFRESH, raw => 'x' x 43, headers => { 'Content-Type' => 'text/plain' }, ip => unique_ip());
  is($txt->{status}, 415, 'text/plain: 415');
  is_deeply($txt->{json}, { detail => 'Content-Type must be application/json' }, 'text/plain: detail');
};

subtest 'expired refresh token is refused' => sub {
  my $u = create_user();
  my $l = fresh_login($u);
  ok($l, 'logged in') or return;
  my $h = sql_quote(sha256_hex($l->{refresh_token}));
  my ($rc, undef, $err) = psql_try("UPDATE refresh_tokens SET expires_at = now() - interval '1 second' "
                                   . "WHERE token_hash = $h");
  is($rc, 0, 'token expiry moved into the past') or return diag($err);
  my $r = refresh($l->{refresh_token});
  is($r->{status}, 401, 'expired refresh token: 401');
  is_deeply($r->{json}, $INVALID, 'expired: detail');
};

subtest 'refresh of a session revoked or expired server-side is refused' => sub {
  my $u = create_user();
  my $l1 = fresh_login($u);
  my $l2 = fresh_login($u);
  ok($l1 && $l2, 'logged in twice') or return;
  my (undef, $c1) = jwt_parts($l1->{access_token});
  my (undef, $c2) = jwt_parts($l2->{access_token});
  psql("UPDATE sessions SET revoked_at = now(), revoked_reason = 'test' WHERE id = " . sql_quote($c1->{sid}));
  my $r1 = refresh($l1->{refresh_token});
  is($r1->{status}, 401, 'revoked session: 401');
  is_deeply($r1->{json}, $INVALID, 'revoked session: detail');
  is(me($l1->{access_token})->{status}, 401, 'revoked session: access token refused by /me');

  my ($rc, undef, $err) = psql_try("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = "
                                   . sql_quote($c2->{sid}));
  is($rc, 0, 'session expiry moved into the past') or return diag($err);
  my $r2 = refresh($l2->{refresh_token});
  is($r2->{status}, 401, 'expired session: 401');
  is_deeply($r2->{json}, $INVALID, 'expired session: detail');
};

subtest 'refresh is refused once the account is disabled' => sub {
  my $u = create_user();
  my $l = fresh_login($u);
  ok($l, 'logged in') or return;
  psql("UPDATE users SET status = 'SUSPENDED' WHERE id = " . sql_quote($u->{id}));
  my $r = refresh($l->{refresh_token});
  ok($r->{status} == 401 || $r->{status} == 403, "suspended account: refused (got $r->{status})");
  ok(!exists(($r->{json} // {})->{access_token}), 'suspended account: no new token');

  my $d = create_user();
  my $ld = fresh_login($d);
  ok($ld, 'second account logged in') or return;
  psql('UPDATE users SET deleted_at = now() WHERE id = ' . sql_quote($d->{id}));
  my $rd = refresh($ld->{refresh_token});
  ok($rd->{status} == 401 || $rd->{status} == 403, "deleted account: refused (got $rd->{status})");
  ok(!exists(($rd->{json} // {})->{access_token}), 'deleted account: no new token');
};

subtest 'concurrent use of one refresh token succeeds exactly once' => sub {
  my $u = create_user();
  my $l = fresh_login($u);
  ok($l, 'logged in') or return;
  my @status = at_once(4, sub { refresh($l->{refresh_token})->{status} });
  my $ok200 = grep { $_ eq '200' } @status;
  is($ok200, 1, "exactly one concurrent refresh succeeds (statuses: @status)");
  my @other = grep { $_ ne '200' && $_ ne '401' } @status;
  is_deeply(\@other, [], 'the others are refused with 401');
};
