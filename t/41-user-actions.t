#!/usr/bin/perl
# Special actions on users: reset-password, mfa/disable, their sessions and their groups.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 11;

my $ADMIN = '/api/v1/admin';
my $PW    = 'User-Fixture-Pass-42';
my $ME    = "$ADMIN/auth/me";

sub api { my ($method, $path, $token, $json) = @_; admin_req($token, $method, "$ADMIN$path", (defined $json ? (json => $json) : ())) }

my $super = admin_login() or BAIL_OUT('the bootstrap admin cannot sign in');
my $ST = $super->{access_token};

sub created { my ($path, $body) = @_; admin_create($ST, $path =~ s{\A/}{}r, $body) }
sub new_tenant {
  created('/tenants', { name => 'Users tenant', slug => unique_slug('usr') });
}
sub new_user {
  my (%o) = @_;
  created('/users', { email => unique_email('usr'), password => $PW, role => 'user', %o });
}
sub login_as {
  my ($u, $pw) = @_;
  my ($j, $r) = admin_login(email => $u->{email}, password => $pw // $PW);
  return $j;
}
sub token_of {
  my ($u) = @_;
  my $j = login_as($u) or die "login of $u->{email} failed\n";
  return $j->{access_token};
}
sub detail_is {
  my ($r, $status, $detail, $name) = @_;
  is($r->{status}, $status, "$name: $status") or diag($r->{content});
  is($r->{json} && $r->{json}{detail}, $detail, "$name: detail") if defined $detail;
}
sub v422 {
  my ($r, $loc, $name, $type) = @_;
  is($r->{status}, 422, "$name: 422") or return diag($r->{content});
  my $e = find_verror($r, $loc);
  ok($e, "$name: error at [@$loc]") or return diag($r->{content});
  is($e->{type}, $type, "$name: type $type") if defined $type;
}
sub audit_count {
  my (%w) = @_;
  my $where = join ' AND ', map {
    $_ eq 'details' ? "details @> " . sql_quote($w{$_}) . '::jsonb' : "$_ = " . sql_quote($w{$_})
  } sort keys %w;
  return psql("SELECT count(*) FROM audit_log WHERE $where");
}
sub occurrences {
  my ($needle) = @_;
  return psql('SELECT count(*) FROM audit_log a WHERE strpos(a::text, ' . sql_quote($needle) . ') > 0');
}
sub col { my ($u, $c) = @_; psql("SELECT $c FROM users WHERE id = " . sql_quote($u->{id})) }

my $ta  = new_tenant();
my $tb  = new_tenant();
my $adm = new_user(tenant_id => $ta->{id}, role => 'tenant_admin');
my $TA  = token_of($adm);

subtest 'set a password' => sub {
  my $target = new_user(tenant_id => $ta->{id}, role => 'tenant_admin');
  my $s1 = login_as($target);
  my $s2 = login_as($target);
  ok($s1 && $s2, 'the target has two sessions') or return;
  my $old_hash = col($target, 'password_hash');
  my $new = 'Brand-New-Pass-' . unique_slug();
  my $r = api(POST => "/users/$target->{id}/reset-password", $ST, { password => $new });
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is_deeply($r->{json}, { detail => 'Password updated' }, 'body');
  isnt(col($target, 'password_hash'), $old_hash, 'hash changed');
  like(col($target, 'password_hash'), qr/\A\$argon2id\$/, 'argon2id hash');
  is(col($target, 'password_changed_at IS NOT NULL'), 't', 'password_changed_at set');
  is(col($target, 'must_change_password'), 'f', 'must_change_password untouched');
  is(req(GET => $ME, token => $s1->{access_token})->{status}, 401, 'first session ended: its token fails');
  is(req(GET => $ME, token => $s2->{access_token})->{status}, 401, 'second session ended too');
  is(psql("SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND user_id = " . sql_quote($target->{id})), 0,
     'no live session left');
  ok(!login_as($target), 'the old password no longer signs in');
  ok(login_as($target, $new), 'the new password signs in');
  is(audit_count(action => 'user.password_reset', resource_type => 'user', resource_id => $target->{id},
                 tenant_id => $ta->{id}, details => '{"temporary":false,"sessions_revoked":2}'), 1,
     'audit row user.password_reset');
  is(occurrences($new), 0, 'the password is in no audit row');

  my $f = api(POST => "/users/$target->{id}/reset-password", $ST,
              { password => "Another-$new", must_change_password => JSON::PP::true() });
  is($f->{status}, 200, 'with must_change_password: 200') or diag($f->{content});
  is(col($target, 'must_change_password'), 't', 'must_change_password set as asked');
  is(psql('SELECT count(*) FROM password_history WHERE user_id = ' . sql_quote($target->{id})), 2,
     'each new hash kept in the password history');
};

subtest 'temporary password' => sub {
  my $target = new_user(tenant_id => $ta->{id}, role => 'tenant_admin');
  my $s = login_as($target);
  my $r = req(POST => "$ADMIN/users/$target->{id}/reset-password", token => $ST);
  is($r->{status}, 200, 'empty body: 200') or return diag($r->{content});
  my $tmp = $r->{json}{temporary_password};
  ok(defined $tmp && length($tmp) >= 16, 'a temporary password of 16+ characters');
  is_deeply([keys %{ $r->{json} }], ['temporary_password'], 'only the password in the body');
  like($r->{headers}{'cache-control'} // '', qr/no-store/, 'Cache-Control: no-store');
  is(col($target, 'must_change_password'), 't', 'must_change_password set');
  is(req(GET => $ME, token => $s->{access_token})->{status}, 401, 'the session ended');
  ok(login_as($target, $tmp), 'the temporary password signs in');
  is(occurrences($tmp), 0, 'the temporary password is in no audit row');
  is(audit_count(action => 'user.password_reset', resource_id => $target->{id},
                 details => '{"temporary":true}'), 1, 'audit row says temporary');

  my $r2 = api(POST => "/users/$target->{id}/reset-password", $TA, {});
  is($r2->{status}, 403, 'a tenant_admin cannot reset a fellow tenant_admin') or diag($r2->{content});
  my $plain = new_user(tenant_id => $ta->{id});
  my $r3 = api(POST => "/users/$plain->{id}/reset-password", $TA, {});
  is($r3->{status}, 200, '{} body from the tenant_admin for a user: 200') or diag($r3->{content});
  ok($r3->{json}{temporary_password}, 'temporary password returned');
  isnt($r3->{json}{temporary_password}, $tmp, 'each temporary password is new');
};

subtest 'invalid bodies' => sub {
  my $u = new_user(tenant_id => $ta->{id});
  my $p = "/users/$u->{id}/reset-password";
  my $hash = col($u, 'password_hash');
  v422(api(POST => $p, $TA, { password => 'short' }), ['body', 'password'], 'short password', 'string_too_short');
  v422(api(POST => $p, $TA, { password => 'x' x 1025 }), ['body', 'password'], 'long password', 'string_too_long');
  v422(api(POST => $p, $TA, { password => 12345678 }), ['body', 'password'], 'numeric password', 'string_type');
  v422(api(POST => $p, $TA, { password => undef }), ['body', 'password'], 'null password');
  v422(api(POST => $p, $TA, { pass => 'Long-Enough-1' }), ['body', 'pass'], 'unknown field', 'extra_forbidden');
  v422(api(POST => $p, $TA, { must_change_password => JSON::PP::false() }), ['body', 'must_change_password'],
       'must_change_password without a password');
  v422(req(POST => "$ADMIN$p", token => $TA, raw => '[1]'), ['body'], 'array body');
  is(col($u, 'password_hash'), $hash, 'nothing changed');
};

subtest 'users out of reach' => sub {
  my $other = new_user(tenant_id => $tb->{id});
  detail_is(api(POST => "/users/$other->{id}/reset-password", $TA, {}), 404, 'User not found', 'reset, other tenant');
  detail_is(api(POST => "/users/$other->{id}/mfa/disable", $TA), 404, 'User not found', 'mfa, other tenant');
  detail_is(api(GET => "/users/$other->{id}/sessions", $TA), 404, 'User not found', 'sessions, other tenant');
  detail_is(api(GET => "/users/$other->{id}/groups", $TA), 404, 'User not found', 'groups, other tenant');
  detail_is(api(POST => '/users/usr_doesnotexist00/reset-password', $ST, {}), 404, 'User not found', 'unknown user');
  detail_is(api(POST => "/users/$super->{user}{id}/reset-password", $TA, {}), 404, 'User not found',
            'the super_admin is out of a tenant_admin\'s reach');
  is(req(POST => "$ADMIN/users/$other->{id}/reset-password")->{status}, 401, 'no token: 401');
};

subtest 'disable MFA' => sub {
  my $u = new_user(tenant_id => $ta->{id});
  my $q = sql_quote($u->{id});
  psql("INSERT INTO mfa_methods (user_id, method_type, confirmed_at) VALUES ($q, 'totp', now()), ($q, 'email', now())");
  psql("INSERT INTO mfa_backup_codes (user_id, code_hash) VALUES ($q, repeat('a', 64)), ($q, repeat('b', 64)), "
       . "($q, repeat('c', 64))");
  psql("UPDATE users SET mfa_enabled = true WHERE id = $q");
  my $r = api(POST => "/users/$u->{id}/mfa/disable", $TA);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is_deeply($r->{json}, { detail => 'MFA disabled' }, 'body');
  is(psql("SELECT count(*) FROM mfa_methods WHERE user_id = $q"), 0, 'methods deleted');
  is(psql("SELECT count(*) FROM mfa_backup_codes WHERE user_id = $q"), 0, 'backup codes deleted');
  is(col($u, 'mfa_enabled'), 'f', 'mfa_enabled false');
  is(api(GET => "/users/$u->{id}", $TA)->{json}{mfa_enabled}, JSON::PP::false(), 'the user shows mfa_enabled false');
  is(audit_count(action => 'user.mfa_disable', resource_type => 'user', resource_id => $u->{id},
                 tenant_id => $ta->{id}, details => '{"methods":2,"backup_codes":3}'), 1, 'audit row user.mfa_disable');
  my $again = api(POST => "/users/$u->{id}/mfa/disable/", $TA);
  is($again->{status}, 200, 'again (trailing slash): 200');
  my $peer = new_user(tenant_id => $ta->{id}, role => 'tenant_admin');
  is(api(POST => "/users/$peer->{id}/mfa/disable", $TA)->{status}, 403, 'not for a fellow tenant_admin');
  is(api(POST => "/users/$peer->{id}/mfa/disable", $ST)->{status}, 200, 'the super_admin may');
  is(api(GET => "/users/$u->{id}/mfa/disable", $TA)->{status}, 405, 'GET: 405');
};

subtest 'a user\'s sessions' => sub {
  my $target = new_user(tenant_id => $ta->{id}, role => 'tenant_admin');
  my $s1 = login_as($target);
  my $s2 = login_as($target);
  my (undef, $c1) = jwt_parts($s1->{access_token});
  my (undef, $c2) = jwt_parts($s2->{access_token});
  my $r = api(GET => "/users/$target->{id}/sessions", $TA);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is($r->{json}{pagination}{total}, 2, 'two sessions');
  is_deeply([sort map { $_->{id} } @{ $r->{json}{items} }], [sort $c1->{sid}, $c2->{sid}], 'the session ids');
  my $s = $r->{json}{items}[0];
  for my $f (qw(id kind client_id ip_address user_agent created_at last_seen_at expires_at revoked_at)) {
    ok(exists $s->{$f}, "field $f");
  }
  is($s->{kind}, 'admin', 'kind');
  ok(!defined $s->{revoked_at}, 'not revoked');
  ok(!grep({ /hash|secret|token/i } keys %$s), 'no secret material');

  psql("UPDATE sessions SET revoked_at = now(), revoked_reason = 'test' WHERE id = " . sql_quote($c1->{sid}));
  my $a = api(GET => "/users/$target->{id}/sessions", $TA);
  is_deeply([map { $_->{id} } @{ $a->{json}{items} }], [$c2->{sid}], 'active sessions only by default');
  my $all = api(GET => "/users/$target->{id}/sessions?include_revoked=true", $TA);
  is($all->{json}{pagination}{total}, 2, 'include_revoked=true lists the ended one too');
  my ($rev) = grep { $_->{id} eq $c1->{sid} } @{ $all->{json}{items} };
  ok($rev && $rev->{revoked_at}, 'the ended one carries revoked_at');
  v422(api(GET => "/users/$target->{id}/sessions?include_revoked=1", $TA), ['query', 'include_revoked'],
       'include_revoked=1');
  my $p = api(GET => "/users/$target->{id}/sessions?include_revoked=true&per_page=1", $TA);
  is(scalar @{ $p->{json}{items} }, 1, 'per_page=1');
  is($p->{json}{pagination}{total_pages}, 2, 'two pages');
};

subtest 'a user\'s groups' => sub {
  my $u  = new_user(tenant_id => $ta->{id});
  my $g1 = created('/groups', { tenant_id => $ta->{id}, name => 'inner' });
  my $g2 = created('/groups', { tenant_id => $ta->{id}, name => 'outer' });
  my $g3 = created('/groups', { tenant_id => $ta->{id}, name => 'unrelated' });
  is(api(POST => "/groups/$g1->{id}/members", $ST, { user_id => $u->{id} })->{status}, 201, 'member of inner');
  is(api(POST => "/groups/$g2->{id}/nested", $ST, { child_group_id => $g1->{id} })->{status}, 201, 'inner in outer');
  my $d = api(GET => "/users/$u->{id}/groups", $TA);
  is($d->{status}, 200, 'status 200') or return diag($d->{content});
  is_deeply([map { $_->{id} } @{ $d->{json}{items} }], [$g1->{id}], 'direct groups');
  is($d->{json}{items}[0]{name}, 'inner', 'group described');
  is($d->{json}{items}[0]{tenant_id}, $ta->{id}, 'tenant_id');
  my $e = api(GET => "/users/$u->{id}/groups?effective=true", $TA);
  is_deeply([sort map { $_->{id} } @{ $e->{json}{items} }], [sort $g1->{id}, $g2->{id}], 'effective groups');
  my %direct = map { $_->{id} => $_->{direct} } @{ $e->{json}{items} };
  ok($direct{ $g1->{id} } && !$direct{ $g2->{id} }, 'direct flag');
  is($e->{json}{pagination}{total}, 2, 'total');
  v422(api(GET => "/users/$u->{id}/groups?effective=TRUE", $TA), ['query', 'effective'], 'effective=TRUE');
  is(api(DELETE => "/groups/$g1->{id}", $ST)->{status}, 204, 'inner deleted');
  is(api(GET => "/users/$u->{id}/groups?effective=true", $TA)->{json}{pagination}{total}, 0,
     'a deleted group neither counts nor passes membership on');
};

subtest 'a partner_admin acts within their partner' => sub {
  my $p  = created('/partners', { name => 'Users partner', slug => unique_slug('usrp') });
  my $tp = created('/tenants', { name => 'In partner', slug => unique_slug('usrt'), partner_id => $p->{id} });
  my $pa = new_user(partner_id => $p->{id}, role => 'partner_admin');
  my $PA = token_of($pa);
  my $inside = new_user(tenant_id => $tp->{id}, role => 'tenant_admin');
  my $outside = new_user(tenant_id => $ta->{id});
  my $r = api(POST => "/users/$inside->{id}/reset-password", $PA, { password => 'Partner-Set-Pass-1' });
  is($r->{status}, 200, 'resets a tenant_admin of a tenant in the partner') or diag($r->{content});
  is(audit_count(action => 'user.password_reset', resource_id => $inside->{id}, partner_id => $p->{id}), 1,
     'audit row carries the partner');
  is(api(POST => "/users/$outside->{id}/reset-password", $PA, {})->{status}, 404, 'not outside the partner');
  my $peer = new_user(partner_id => $p->{id}, role => 'partner_admin');
  is(api(POST => "/users/$peer->{id}/reset-password", $PA, {})->{status}, 403, 'not a fellow partner_admin');
};

subtest 'the reset is one transaction with its audit row' => sub {
  my $u = new_user(tenant_id => $ta->{id});
  my $n = audit_count(action => 'user.password_reset', resource_id => $u->{id});
  api(POST => "/users/$u->{id}/reset-password", $TA, { password => 'x' });
  is(audit_count(action => 'user.password_reset', resource_id => $u->{id}), $n, 'no audit row for a refused reset');
  api(POST => "/users/$u->{id}/reset-password", $TA, {});
  is(audit_count(action => 'user.password_reset', resource_id => $u->{id}), $n + 1, 'one audit row per reset');
};

subtest 'deleted users' => sub {
  my $u = new_user(tenant_id => $ta->{id});
  is(api(DELETE => "/users/$u->{id}", $TA)->{status}, 204, 'deleted');
  is(api(POST => "/users/$u->{id}/reset-password", $TA, {})->{status}, 404, 'reset: 404');
  is(api(POST => "/users/$u->{id}/mfa/disable", $TA)->{status}, 404, 'mfa: 404');
  is(api(GET => "/users/$u->{id}/sessions", $TA)->{status}, 404, 'sessions: 404');
};

subtest 'the caller\'s own password' => sub {
  my $sa = create_user(role => 'super_admin');
  my $own = login_as($sa, $sa->{password});
  ok($own, 'a second super_admin signed in') or return;
  my $r = api(POST => "/users/$sa->{id}/reset-password", $own->{access_token}, { password => 'My-Own-New-Pass-1' });
  is($r->{status}, 200, 'a super_admin may reset their own password') or diag($r->{content});
  is(req(GET => $ME, token => $own->{access_token})->{status}, 401, 'which ends their sessions too');
};
