#!/usr/bin/perl
# POST /api/v1/admin/auth/login: tokens, user object, refusals, timing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use List::Util qw(sum max min);
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 8;

my $LOGIN = '/api/v1/admin/auth/login';
my $INVALID = { detail => 'Invalid email or password' };
my @USER_FIELDS = qw(id email role tenant_id partner_id first_name last_name display_name status);

my $jwks = jwks();

sub login_as {
  my ($email, $password, %o) = @_;
  return req(POST => $LOGIN, json => { email => $email, password => $password },
             ip => $o{ip} // unique_ip(), %o);
}

# Values of the user row as the database holds them.
sub db_user {
  my ($id) = @_;
  my $row = psql(
    "SELECT id, email, role, coalesce(tenant_id::text, '\\N'), coalesce(partner_id::text, '\\N'), "
      . "coalesce(first_name, '\\N'), coalesce(last_name, '\\N'), coalesce(display_name, '\\N'), status "
      . "FROM users WHERE id = " . sql_quote($id));
  return undef unless defined $row;
  my @v = split /\|/, $row, -1;
  my %u;
  @u{@USER_FIELDS} = map { $_ eq '\\N' ? undef : $_ } @v;
  return \%u;
}

sub token_in_db_count {
  my ($tok) = @_;
  my $q = sql_quote($tok);
  return psql("SELECT (SELECT count(*) FROM refresh_tokens t WHERE strpos(t::text, $q) > 0)"
            . " + (SELECT count(*) FROM sessions s WHERE strpos(s::text, $q) > 0)"
            . " + (SELECT count(*) FROM audit_log a WHERE strpos(a::text, $q) > 0)");
}

subtest 'bootstrap admin can log in' => sub {
  my ($j, $r) = admin_login();
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  my $id = psql('SELECT id FROM users WHERE lower(email) = lower(' . sql_quote(admin_email())
                . ') AND deleted_at IS NULL');
  is($j->{user}{id}, $id, 'user.id is the bootstrap admin id');
  is(lc $j->{user}{email}, lc admin_email(), 'user.email');
  ok(length($j->{access_token} // '') && length($j->{refresh_token} // ''), 'both tokens present');
};

subtest 'login response, access token and refresh token' => sub {
  my $u = create_user(role => 'super_admin', first_name => 'Ada', last_name => 'Lovelace',
                      display_name => 'Ada L.');
  my $r = login_as($u->{email}, $u->{password});
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  like($r->{headers}{'content-type'} // '', qr{^application/json\b}i, 'Content-Type application/json');
  like($r->{headers}{'cache-control'} // '', qr/\bno-store\b/i, 'Cache-Control: no-store');
  my $j = $r->{json};
  is(ref $j, 'HASH', 'JSON object') or return;
  is($j->{token_type}, 'Bearer', 'token_type Bearer');
  like($j->{expires_in} // '', qr/\A[1-9]\d*\z/, 'expires_in is a positive integer');
  ok(!ref $j->{expires_in} && JSON::PP->new->allow_nonref->encode($j->{expires_in}) !~ /"/,
     'expires_in is a JSON number');

  my $user = $j->{user};
  is(ref $user, 'HASH', 'user object') or return;
  my @missing = grep { !exists $user->{$_} } @USER_FIELDS;
  is_deeply(\@missing, [], 'user has every documented field');
  my $db = db_user($u->{id});
  is_deeply({ map { $_ => $user->{$_} } @USER_FIELDS }, $db, 'user fields match the database row');
  is($user->{first_name}, 'Ada', 'first_name as stored');
  is($user->{status}, 'ACTIVE', 'status ACTIVE');
  ok(!grep({ /pass|hash/i } keys %$user), 'no password material in user');
  unlike($r->{content}, qr/\$argon2/, 'no argon2 hash anywhere in the response');

  my (undef, $c) = access_token_ok($j->{access_token}, $jwks,
    user => $db, expires_in => $j->{expires_in}, name => 'access token');

  my $rt = $j->{refresh_token} // '';
  cmp_ok(length $rt, '>=', 43, 'refresh token has at least 43 characters');
  cmp_ok(($rt =~ tr/.//), '<', 2, 'refresh token is opaque (not a JWT)');
  ok(!defined((jwt_parts($rt))[0]), 'refresh token does not decode as a JWT header');
  isnt($rt, $j->{access_token}, 'refresh token differs from the access token');
  my $row = psql('SELECT session_id FROM refresh_tokens WHERE token_hash = ' . sql_quote(sha256_hex($rt)));
  ok(defined $row, 'refresh_tokens holds the sha256 hex of the token');
  is($row, $c->{sid}, 'the refresh token belongs to the token\'s session') if $c;
  is(token_in_db_count($rt), 0, 'the clear refresh token is stored nowhere');

  my $me = req(GET => '/api/v1/admin/auth/me', token => $j->{access_token});
  is($me->{status}, 200, 'the access token is accepted by /me');
  is($me->{json}{id}, $u->{id}, '/me names the same user');
};

subtest 'each login opens its own session' => sub {
  my $u = create_user();
  my $a = login_as($u->{email}, $u->{password});
  my $b = login_as($u->{email}, $u->{password});
  is($a->{status}, 200, 'first login');
  is($b->{status}, 200, 'second login');
  return unless $a->{status} == 200 && $b->{status} == 200;
  my (undef, $ca) = jwt_parts($a->{json}{access_token});
  my (undef, $cb) = jwt_parts($b->{json}{access_token});
  isnt($ca->{jti}, $cb->{jti}, 'distinct jti');
  isnt($ca->{sid}, $cb->{sid}, 'distinct sid');
  isnt($a->{json}{refresh_token}, $b->{json}{refresh_token}, 'distinct refresh tokens');
  isnt($a->{json}{access_token}, $b->{json}{access_token}, 'distinct access tokens');
};

subtest 'tenant admin token carries tenant_id' => sub {
  my $t = create_tenant();
  my $u = create_user(role => 'tenant_admin', tenant_id => $t->{id});
  my $r = login_as($u->{email}, $u->{password});
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is($r->{json}{user}{tenant_id}, $t->{id}, 'user.tenant_id');
  is($r->{json}{user}{role}, 'tenant_admin', 'user.role');
  access_token_ok($r->{json}{access_token}, $jwks,
    user => db_user($u->{id}), expires_in => $r->{json}{expires_in}, name => 'tenant admin token');
};

subtest 'wrong password, unknown email and non-admin accounts get the same 401' => sub {
  my $u = create_user();
  my $t = create_tenant();
  my $plain = create_user(role => 'user', tenant_id => $t->{id});

  my $wrong = login_as($u->{email}, 'not-the-password-' . unique_slug());
  is($wrong->{status}, 401, 'wrong password: 401');
  is_deeply($wrong->{json}, $INVALID, 'wrong password: detail') or diag($wrong->{content});
  like($wrong->{headers}{'content-type'} // '', qr{^application/json\b}i, 'wrong password: JSON');

  my $unknown = login_as(unique_email('nobody'), $u->{password});
  is($unknown->{status}, 401, 'unknown email: 401');
  is($unknown->{content}, $wrong->{content}, 'unknown email: byte-identical body');

  my $nonadmin = login_as($plain->{email}, $plain->{password});
  is($nonadmin->{status}, 401, 'role user with the right password: 401');
  is($nonadmin->{content}, $wrong->{content}, 'role user: byte-identical body');
  ok(!exists(($nonadmin->{json} // {})->{access_token}), 'role user: no token issued');

  my $empty = login_as($u->{email}, '');
  # an empty password is refused by validation, before any account is looked at
  is($empty->{status}, 422, 'empty password: 422');
  my $ee = find_verror($empty, ['body', 'password']);
  is($ee && $ee->{type}, 'string_too_short', 'empty password: string_too_short at [body, password]')
    or diag($empty->{content});

  my $ok = login_as($u->{email}, $u->{password});
  is($ok->{status}, 200, 'the account itself still logs in with its password');
};

subtest 'disabled and deleted accounts' => sub {
  my $sus = create_user(status => 'SUSPENDED');
  my $r = login_as($sus->{email}, $sus->{password});
  is($r->{status}, 403, 'SUSPENDED user: 403');
  is_deeply($r->{json}, { detail => 'Account is disabled' }, 'SUSPENDED user: detail') or diag($r->{content});
  ok(!exists(($r->{json} // {})->{access_token}), 'SUSPENDED user: no token');

  my $sus_wrong = login_as($sus->{email}, 'wrong-' . unique_slug());
  is($sus_wrong->{status}, 401, 'SUSPENDED user with a wrong password: 401 (status not revealed)');
  is_deeply($sus_wrong->{json}, $INVALID, 'SUSPENDED user with a wrong password: detail');

  my $del = create_user();
  my $before = login_as($del->{email}, $del->{password});
  is($before->{status}, 200, 'account logs in before deletion');
  psql('UPDATE users SET deleted_at = now() WHERE id = ' . sql_quote($del->{id}));
  my $after = login_as($del->{email}, $del->{password});
  is($after->{status}, 401, 'deleted user: 401');
  is_deeply($after->{json}, $INVALID, 'deleted user: same body as a wrong password');

  my $t = create_tenant();
  my $ta = create_user(role => 'tenant_admin', tenant_id => $t->{id});
  my $ok = login_as($ta->{email}, $ta->{password});
  is($ok->{status}, 200, 'tenant admin logs in while the tenant is ACTIVE');
  psql("UPDATE tenants SET status = 'SUSPENDED' WHERE id = " . sql_quote($t->{id}));
  my $st = login_as($ta->{email}, $ta->{password});
  ok($st->{status} == 401 || $st->{status} == 403, "tenant SUSPENDED: refused (got $st->{status})");
  my %want = (401 => 'Invalid email or password', 403 => 'Account is disabled');
  is($st->{json}{detail}, $want{ $st->{status} } // '(refusal)', 'tenant SUSPENDED: matching detail');
  ok(!exists(($st->{json} // {})->{access_token}), 'tenant SUSPENDED: no token');
};

subtest 'unknown email and wrong password take comparable time' => sub {
  # Without a dummy hash verification an unknown email answers many times
  # faster than a wrong password. Timing on a small shared machine is noisy
  # (load only ever adds time), so the fastest answer of each kind is compared,
  # and a round that fails is measured again (at most three rounds): a real
  # difference fails every round.
  my @users = map { create_user() } 1 .. 6;
  # warm-up (not measured)
  login_as(unique_email('warm'), 'x');
  login_as(shift(@users)->{email}, 'wrong-password');
  my $median = sub { my @s = sort { $a <=> $b } @_; $s[$#s / 2] };
  my ($diff, $desc);
  for my $round (1 .. 3) {
    my (@unknown, @wrong);
    for my $i (0 .. 4) {
      my $a = login_as(unique_email('ghost'), 'wrong-password');
      my $b = login_as($users[$i]{email}, 'wrong-password');
      is($a->{status}, 401, "round $round, unknown email try $i: 401");
      is($b->{status}, 401, "round $round, wrong password try $i: 401");
      push @unknown, $a->{elapsed};
      push @wrong,   $b->{elapsed};
    }
    my ($mu, $mw) = (min(@unknown), min(@wrong));
    $diff = abs($mu - $mw) / max($mu, $mw, 1e-6);
    $desc = sprintf('fastest unknown email %.1f ms, fastest wrong password %.1f ms '
                    . '(medians %.1f / %.1f ms, means %.1f / %.1f ms)',
                    $mu * 1000, $mw * 1000, 1000 * $median->(@unknown), 1000 * $median->(@wrong),
                    1000 * sum(@unknown) / 5, 1000 * sum(@wrong) / 5);
    last if $diff < 0.5;
    diag("round $round: $desc");
  }
  cmp_ok($diff, '<', 0.5, "response times differ by less than 50% ($desc)");
};

subtest 'a refused login issues no session' => sub {
  my $u = create_user();
  my $before = psql('SELECT count(*) FROM sessions WHERE user_id = ' . sql_quote($u->{id}));
  login_as($u->{email}, 'wrong-' . unique_slug());
  my $after = psql('SELECT count(*) FROM sessions WHERE user_id = ' . sql_quote($u->{id}));
  is($after, $before, 'no session row was created by a failed login');
  my $r = login_as($u->{email}, $u->{password});
  is($r->{status}, 200, 'successful login');
  my $n = psql('SELECT count(*) FROM sessions WHERE user_id = ' . sql_quote($u->{id}));
  is($n, $before + 1, 'exactly one session row was created by the successful login');
};
