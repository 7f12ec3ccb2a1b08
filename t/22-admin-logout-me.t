#!/usr/bin/perl
# GET /api/v1/admin/auth/me and POST /api/v1/admin/auth/logout.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MIME::Base64 qw(encode_base64);
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 8;

my $ME      = '/api/v1/admin/auth/me';
my $LOGOUT  = '/api/v1/admin/auth/logout';
my $REFRESH = '/api/v1/admin/auth/refresh';
my @ME_FIELDS = qw(id email role tenant_id partner_id first_name last_name display_name status session_id);

sub me     { req(GET  => $ME,     @_) }
sub logout { req(POST => $LOGOUT, ip => unique_ip(), @_) }
sub refresh {
  my ($rt) = @_;
  req(POST => $REFRESH, json => { refresh_token => $rt }, ip => unique_ip());
}

sub login_user {
  my ($u) = @_;
  my ($j, $r) = admin_login(email => $u->{email}, password => $u->{password});
  Test::More::diag("login failed: $r->{status} $r->{content}") unless $j;
  return $j;
}

sub not_authenticated_ok {
  my ($r, $name) = @_;
  is($r->{status}, 401, "$name: 401");
  is_deeply($r->{json}, { detail => 'Not authenticated' }, "$name: detail Not authenticated")
    or diag($r->{content});
  like($r->{headers}{'www-authenticate'} // '', qr/\ABearer\b/, "$name: WWW-Authenticate Bearer");
}

sub invalid_token_ok {
  my ($r, $name) = @_;
  is($r->{status}, 401, "$name: 401");
  is_deeply($r->{json}, { detail => 'Invalid or expired token' }, "$name: detail Invalid or expired token")
    or diag($r->{content});
  like($r->{headers}{'www-authenticate'} // '', qr/\ABearer\b.*\berror="invalid_token"/,
       "$name: WWW-Authenticate Bearer error=\"invalid_token\"");
}

subtest '/me describes the token holder' => sub {
  my $t = create_tenant();
  my $u = create_user(role => 'tenant_admin', tenant_id => $t->{id}, first_name => 'Grace',
                      last_name => 'Hopper', display_name => 'Grace H.');
  my $l = login_user($u);
  ok($l, 'logged in') or return;
  my (undef, $c) = jwt_parts($l->{access_token});
  my $r = me(token => $l->{access_token});
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  like($r->{headers}{'content-type'} // '', qr{^application/json\b}i, 'Content-Type application/json');
  my $m = $r->{json};
  my @missing = grep { !exists $m->{$_} } @ME_FIELDS;
  is_deeply(\@missing, [], 'every documented field is present');
  is($m->{id}, $u->{id}, 'id');
  is(lc $m->{email}, lc $u->{email}, 'email');
  is($m->{role}, 'tenant_admin', 'role');
  is($m->{tenant_id}, $t->{id}, 'tenant_id');
  ok(!defined $m->{partner_id}, 'partner_id null');
  is($m->{first_name}, 'Grace', 'first_name');
  is($m->{last_name}, 'Hopper', 'last_name');
  is($m->{display_name}, 'Grace H.', 'display_name');
  is($m->{status}, 'ACTIVE', 'status');
  is($m->{session_id}, $c->{sid}, 'session_id is the token\'s sid');
  is_deeply({ map { $_ => $m->{$_} } grep { $_ ne 'session_id' } @ME_FIELDS },
            { map { $_ => $l->{user}{$_} } grep { $_ ne 'session_id' } @ME_FIELDS },
            'same user description as the login response');
  ok(!grep({ /pass|hash/i } keys %$m), 'no password material');

  my $other = login_user(create_user());
  my $r2 = me(token => $other->{access_token});
  isnt($r2->{json}{id}, $m->{id}, 'another user\'s token describes another user');
};

subtest 'missing or unusable Authorization header' => sub {
  not_authenticated_ok(me(), 'no Authorization header');
  my $empty = me(headers => { Authorization => '' });
  is($empty->{status}, 401, 'empty Authorization header: 401');
  ok(is_json_error($empty), 'empty Authorization header: JSON error body');
  like($empty->{headers}{'www-authenticate'} // '', qr/\ABearer\b/, 'empty Authorization header: Bearer challenge');
  my $u = create_user();
  my $basic = 'Basic ' . encode_base64("$u->{email}:$u->{password}", '');
  my $r = me(headers => { Authorization => $basic });
  is($r->{status}, 401, 'Basic with valid credentials: 401');
  ok(is_json_error($r), 'Basic: JSON error body');
  like($r->{headers}{'www-authenticate'} // '', qr/\ABearer\b/, 'Basic: challenges with Bearer');
  my $x = me(headers => { Authorization => 'Basic xxx' });
  is($x->{status}, 401, 'Basic xxx: 401');
  my $l = login_user($u);
  my $raw = me(headers => { Authorization => $l->{access_token} });
  is($raw->{status}, 401, 'token without the Bearer scheme: 401');
  my $tok = me(headers => { Authorization => "Token $l->{access_token}" });
  is($tok->{status}, 401, 'token under another scheme: 401');
  my $qs = req(GET => "$ME?access_token=$l->{access_token}");
  is($qs->{status}, 401, 'token in the query string is not accepted');
};

subtest 'invalid tokens' => sub {
  invalid_token_ok(me(token => 'abc'), 'Bearer abc');
  invalid_token_ok(me(token => 'a.b.c'), 'Bearer a.b.c');
  invalid_token_ok(me(token => 'x' x 2000), 'long garbage');
  my $l = login_user(create_user());
  my $t = $l->{access_token};
  invalid_token_ok(me(token => substr($t, 0, -2)), 'truncated signature');
  invalid_token_ok(me(token => "$t.extra"), 'extra segment');
};

subtest 'logout ends the session' => sub {
  my $u = create_user();
  my $l = login_user($u);
  my $keep = login_user($u);
  ok($l && $keep, 'two sessions') or return;
  my (undef, $c) = jwt_parts($l->{access_token});
  is(me(token => $l->{access_token})->{status}, 200, '/me works before logout');

  my $r = logout(token => $l->{access_token});
  is($r->{status}, 200, 'logout: 200') or diag($r->{content});
  like($r->{headers}{'content-type'} // '', qr{^application/json\b}i, 'logout: JSON');
  is(ref $r->{json}, 'HASH', 'logout: body is a JSON object');

  invalid_token_ok(me(token => $l->{access_token}), '/me after logout');
  my $again = logout(token => $l->{access_token});
  is($again->{status}, 401, 'second logout with the same token: 401');
  my $rr = refresh($l->{refresh_token});
  is($rr->{status}, 401, 'refresh token of the ended session: 401');
  is_deeply($rr->{json}, { detail => 'Invalid refresh token' }, 'refresh after logout: detail');
  is(psql('SELECT revoked_at IS NOT NULL FROM sessions WHERE id = ' . sql_quote($c->{sid})), 't',
     'session revoked in the database');

  is(me(token => $keep->{access_token})->{status}, 200, 'another session of the user is untouched');
};

subtest 'logout after a refresh ends the refreshed tokens too' => sub {
  my $l = login_user(create_user());
  ok($l, 'logged in') or return;
  my $r = refresh($l->{refresh_token});
  is($r->{status}, 200, 'refreshed') or return;
  my $out = logout(token => $r->{json}{access_token});
  is($out->{status}, 200, 'logout with the refreshed access token');
  is(me(token => $l->{access_token})->{status}, 401, 'original access token refused');
  is(me(token => $r->{json}{access_token})->{status}, 401, 'refreshed access token refused');
  is(refresh($r->{json}{refresh_token})->{status}, 401, 'latest refresh token refused');
};

subtest 'logout without a usable token' => sub {
  not_authenticated_ok(logout(), 'logout without Authorization');
  invalid_token_ok(logout(token => 'not-a-token'), 'logout with garbage');
  my $r = logout(headers => { Authorization => 'Basic eDp4' });
  is($r->{status}, 401, 'logout with Basic: 401');
};

subtest 'server-side revocation and expiry apply to access tokens' => sub {
  my $u = create_user();
  my $a = login_user($u);
  my $b = login_user($u);
  ok($a && $b, 'two sessions') or return;
  my (undef, $ca) = jwt_parts($a->{access_token});
  my (undef, $cb) = jwt_parts($b->{access_token});
  psql("UPDATE sessions SET revoked_at = now(), revoked_reason = 'test' WHERE id = " . sql_quote($ca->{sid}));
  invalid_token_ok(me(token => $a->{access_token}), 'revoked session');
  my ($rc, undef, $err) = psql_try("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = "
                                   . sql_quote($cb->{sid}));
  is($rc, 0, 'session expiry moved into the past') or diag($err);
  invalid_token_ok(me(token => $b->{access_token}), 'expired session');
};

subtest 'a disabled or deleted account loses access' => sub {
  my $u = create_user();
  my $l = login_user($u);
  ok($l, 'logged in') or return;
  is(me(token => $l->{access_token})->{status}, 200, '/me works while ACTIVE');
  psql("UPDATE users SET status = 'SUSPENDED' WHERE id = " . sql_quote($u->{id}));
  my $r = me(token => $l->{access_token});
  ok($r->{status} == 401 || $r->{status} == 403, "suspended: refused (got $r->{status})");
  ok(is_json_error($r), 'suspended: JSON error body');

  my $d = create_user();
  my $ld = login_user($d);
  ok($ld, 'second account logged in') or return;
  psql('UPDATE users SET deleted_at = now() WHERE id = ' . sql_quote($d->{id}));
  my $rd = me(token => $ld->{access_token});
  ok($rd->{status} == 401 || $rd->{status} == 403, "deleted: refused (got $rd->{status})");
};
