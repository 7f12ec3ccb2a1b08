#!/usr/bin/perl
# Sessions in the admin API: list, get, revoke one, revoke all of a user or a tenant.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);
use SKFixture qw(api created new_user);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 10;

my $ADMIN = '/api/v1/admin';
my $PW    = 'Session-Fixture-Pass-42';
my $ME    = "$ADMIN/auth/me";
my @FIELDS = qw(id user_id tenant_id partner_id kind client_id ip_address user_agent created_at last_seen_at
                expires_at revoked_at);

my $super = SKFixture::setup(prefix => 'ses', role => 'tenant_admin', password => $PW);
my $ST = $super->{access_token};
# signs in: { token, refresh, sid }
sub session_of {
  my ($u) = @_;
  my ($j, $r) = admin_login(email => $u->{email}, password => $PW);
  die "login of $u->{email}: $r->{status} $r->{content}\n" unless $j;
  my (undef, $c) = jwt_parts($j->{access_token});
  return { token => $j->{access_token}, refresh => $j->{refresh_token}, sid => $c->{sid} };
}
sub alive { req(GET => $ME, token => $_[0]{token})->{status} == 200 }
sub detail_is {
  my ($r, $status, $detail, $name) = @_;
  is($r->{status}, $status, "$name: $status") or diag($r->{content});
  is($r->{json} && $r->{json}{detail}, $detail, "$name: detail") if defined $detail;
}
sub v422 {
  my ($r, $loc, $name) = @_;
  is($r->{status}, 422, "$name: 422") or return diag($r->{content});
  ok(find_verror($r, $loc), "$name: error at [@$loc]") or diag($r->{content});
}
sub audit_count {
  my (%w) = @_;
  my $where = join ' AND ', map {
    $_ eq 'details' ? "details @> " . sql_quote($w{$_}) . '::jsonb' : "$_ = " . sql_quote($w{$_})
  } sort keys %w;
  return psql("SELECT count(*) FROM audit_log WHERE $where");
}
sub sids { my ($r) = @_; [sort map { $_->{id} } @{ $r->{json}{items} // [] }] }
sub list { my ($token, $query) = @_; api(GET => '/sessions' . ($query ? "?$query" : ''), $token) }

my $partner = created('/partners', { name => 'Sessions partner', slug => unique_slug('sesp') });
my $tA = created('/tenants', { name => 'A', slug => unique_slug('sesa'), partner_id => $partner->{id} });
my $tC = created('/tenants', { name => 'C', slug => unique_slug('sesc'), partner_id => $partner->{id} });
my $tB = created('/tenants', { name => 'B', slug => unique_slug('sesb') });
my $a1 = new_user(tenant_id => $tA->{id});
my $a2 = new_user(tenant_id => $tA->{id});
my $c1 = new_user(tenant_id => $tC->{id});
my $b1 = new_user(tenant_id => $tB->{id});
my $pa = new_user(partner_id => $partner->{id}, role => 'partner_admin');
my $sa1  = session_of($a1);
my $sa2  = session_of($a2);
my $sa2b = session_of($a2);
my $sc1  = session_of($c1);
my $sb1  = session_of($b1);
my $spa  = session_of($pa);

subtest 'list as the super_admin, with filters' => sub {
  my $r = list($ST, "tenant_id=$tA->{id}");
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is_deeply(sids($r), [sort map { $_->{sid} } $sa1, $sa2, $sa2b], 'tenant_id filter');
  my $s = $r->{json}{items}[0];
  ok(!grep({ !exists $s->{$_} } @FIELDS), 'every field present') or diag(explain $s);
  is($s->{tenant_id}, $tA->{id}, 'tenant_id');
  is($s->{kind}, 'admin', 'kind');
  ok(!grep({ /hash|secret|token/i } keys %$s), 'no secret material');
  is($r->{json}{items}[0]{id}, $sa2b->{sid}, 'newest first');
  is_deeply(sids(list($ST, "user_id=$a2->{id}")), [sort $sa2->{sid}, $sa2b->{sid}], 'user_id filter');
  is_deeply(sids(list($ST, "partner_id=$partner->{id}")),
            [sort map { $_->{sid} } $sa1, $sa2, $sa2b, $sc1, $spa], 'partner_id filter: the partner and its tenants');
  is_deeply(sids(list($ST, "partner_id=$partner->{id}&tenant_id=$tC->{id}")), [$sc1->{sid}], 'filters combine');
  is(list($ST, 'tenant_id=tnt_doesnotexist00')->{json}{pagination}{total}, 0, 'unknown tenant: empty');
  my $all = list($ST, 'per_page=100');
  ok(grep({ $_->{id} eq $sb1->{sid} } @{ $all->{json}{items} }), 'unfiltered list includes every tenant');
  is(list($ST, 'page=0')->{status}, 422, 'page=0: 422');
  is(list($ST, 'user_id=' . ('u' x 400))->{status}, 422, 'overlong filter: 422');
  is(req(GET => "$ADMIN/sessions/")->{status}, 401, 'no token: 401');
};

subtest 'a tenant_admin lists their tenant only' => sub {
  my $r = list($sa1->{token});
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is_deeply(sids($r), [sort map { $_->{sid} } $sa1, $sa2, $sa2b], 'the tenant\'s sessions');
  is(list($sa1->{token}, "tenant_id=$tB->{id}")->{json}{pagination}{total}, 0, 'another tenant by filter: empty');
  is(list($sa1->{token}, "user_id=$b1->{id}")->{json}{pagination}{total}, 0, 'another tenant\'s user: empty');
};

subtest 'a partner_admin lists their partner\'s' => sub {
  my $r = list($spa->{token});
  is_deeply(sids($r), [sort map { $_->{sid} } $sa1, $sa2, $sa2b, $sc1, $spa], 'the partner\'s sessions');
  is(list($spa->{token}, "tenant_id=$tB->{id}")->{json}{pagination}{total}, 0, 'outside the partner: empty');
  my $p = list($spa->{token}, 'per_page=2&page=3');
  is(scalar @{ $p->{json}{items} }, 1, 'third page of two');
  is($p->{json}{pagination}{total_pages}, 3, 'total_pages');
};

subtest 'get one session' => sub {
  my $r = api(GET => "/sessions/$sa2->{sid}", $ST);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is($r->{json}{id}, $sa2->{sid}, 'id');
  is($r->{json}{user_id}, $a2->{id}, 'user_id');
  ok(!grep({ !exists $r->{json}{$_} } @FIELDS), 'every field present');
  is(api(GET => "/sessions/$sa2->{sid}", $sa1->{token})->{status}, 200, 'the tenant_admin of its tenant: 200');
  is(api(GET => "/sessions/$sa2->{sid}/", $spa->{token})->{status}, 200, 'the partner_admin: 200');
  detail_is(api(GET => "/sessions/$sb1->{sid}", $sa1->{token}), 404, 'Session not found', 'another tenant');
  detail_is(api(GET => "/sessions/$sb1->{sid}", $spa->{token}), 404, 'Session not found', 'outside the partner');
  detail_is(api(GET => '/sessions/ses_doesnotexist00', $ST), 404, 'Session not found', 'unknown id');
  detail_is(api(GET => '/sessions/' . ('s' x 200), $ST), 404, 'Session not found', 'overlong id');
};

subtest 'revoke one session' => sub {
  detail_is(api(DELETE => "/sessions/$sa2->{sid}", $sa1->{token}), 403, 'Access denied',
            'a tenant_admin cannot end a fellow tenant_admin\'s session');
  detail_is(api(DELETE => "/sessions/$sb1->{sid}", $sa1->{token}), 404, 'Session not found', 'another tenant');
  ok(alive($sa2) && alive($sb1), 'both still alive');

  my $r = api(DELETE => "/sessions/$sa2->{sid}", $spa->{token});
  is($r->{status}, 204, 'the partner_admin ends it: 204') or diag($r->{content});
  is($r->{content}, '', 'no body');
  is(req(GET => $ME, token => $sa2->{token})->{status}, 401, 'its access token fails at once');
  is(req(POST => "$ADMIN/auth/refresh", json => { refresh_token => $sa2->{refresh} }, ip => unique_ip())->{status},
     401, 'its refresh token fails');
  ok(alive($sa2b), 'the user\'s other session is untouched');
  my $q = sql_quote($sa2->{sid});
  is(psql("SELECT revoked_reason FROM sessions WHERE id = $q"), 'admin_revoked', 'revoked_reason admin_revoked');
  is(psql("SELECT count(*) FROM refresh_tokens WHERE session_id = $q AND revoked_at IS NULL"), 0,
     'refresh tokens revoked');
  is(audit_count(action => 'session.revoke', resource_type => 'session', resource_id => $sa2->{sid},
                 tenant_id => $tA->{id}, actor_id => $pa->{id}, details => qq({"user_id":"$a2->{id}"})), 1,
     'audit row session.revoke');
  detail_is(api(DELETE => "/sessions/$sa2->{sid}", $ST), 404, 'Session not found', 'an ended session');
  my $g = api(GET => "/sessions/$sa2->{sid}", $ST);
  is($g->{status}, 200, 'an ended session can still be looked at');
  ok($g->{json}{revoked_at}, 'revoked_at set');
  is($g->{json}{revoked_reason}, 'admin_revoked', 'revoked_reason shown');
  ok(!grep({ $_ eq $sa2->{sid} } @{ sids(list($ST, "tenant_id=$tA->{id}")) }), 'no longer listed');

  # a tenant_admin ends the session of a plain user of their tenant
  my $u = created('/users', { email => unique_email('ses-user'), password => $PW, tenant_id => $tA->{id} });
  my $sid = psql("INSERT INTO sessions (user_id, tenant_id, kind, expires_at) VALUES ("
                 . sql_quote($u->{id}) . ', ' . sql_quote($tA->{id}) . ", 'user', now() + interval '1 hour') RETURNING id");
  is(api(DELETE => "/sessions/$sid", $sa1->{token})->{status}, 204, 'tenant_admin ends a user\'s session');

  # an expired session is not active
  my $old = psql("INSERT INTO sessions (user_id, tenant_id, kind, expires_at) VALUES ("
                 . sql_quote($u->{id}) . ', ' . sql_quote($tA->{id}) . ", 'user', now() - interval '1 second') RETURNING id");
  detail_is(api(DELETE => "/sessions/$old", $ST), 404, 'Session not found', 'an expired session');
  ok(!grep({ $_ eq $old } @{ sids(list($ST, "user_id=$u->{id}")) }), 'an expired session is not listed');
  is(api(PATCH => "/sessions/$sa1->{sid}", $ST, {})->{status}, 405, 'PATCH: 405');
};

subtest 'revoke-all: invalid bodies' => sub {
  my $p = '/sessions/revoke-all';
  v422(api(POST => $p, $ST, {}), ['body'], 'neither user_id nor tenant_id');
  v422(api(POST => $p, $ST, { user_id => $a1->{id}, tenant_id => $tA->{id} }), ['body'], 'both');
  v422(api(POST => $p, $ST, { user_id => 5 }), ['body', 'user_id'], 'numeric user_id');
  v422(api(POST => $p, $ST, { tenant_id => undef }), ['body', 'tenant_id'], 'null tenant_id');
  v422(api(POST => $p, $ST, { user_id => $a1->{id}, all => JSON::PP::true() }), ['body', 'all'], 'extra field');
  v422(req(POST => "$ADMIN$p", token => $ST, raw => 'nope'), ['body'], 'not JSON');
  ok(alive($sa1), 'nothing revoked');
  is(req(POST => "$ADMIN$p", json => { user_id => $a1->{id} })->{status}, 401, 'no token: 401');
};

subtest 'revoke-all of a user' => sub {
  detail_is(api(POST => '/sessions/revoke-all', $sa1->{token}, { user_id => $b1->{id} }), 404, 'User not found',
            'a user of another tenant');
  detail_is(api(POST => '/sessions/revoke-all', $ST, { user_id => 'usr_doesnotexist00' }), 404, 'User not found',
            'an unknown user');
  detail_is(api(POST => '/sessions/revoke-all', $sa1->{token}, { user_id => $a2->{id} }), 403, 'Access denied',
            'a fellow tenant_admin');
  ok(alive($sa2b) && alive($sb1), 'nothing revoked');
  my $extra = session_of($a2);
  my $r = api(POST => '/sessions/revoke-all', $ST, { user_id => $a2->{id} });
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is_deeply($r->{json}, { revoked => 2 }, 'two live sessions revoked');
  ok(!alive($sa2b) && !alive($extra), 'their access tokens fail');
  ok(alive($sa1), 'another user of the tenant keeps theirs');
  is(audit_count(action => 'session.revoke_all', resource_type => 'user', resource_id => $a2->{id},
                 tenant_id => $tA->{id}, details => '{"revoked":2}'), 1, 'audit row session.revoke_all');
  is_deeply(api(POST => '/sessions/revoke-all', $ST, { user_id => $a2->{id} })->{json}, { revoked => 0 },
            'again: nothing left to revoke');
};

subtest 'revoke-all of a tenant' => sub {
  detail_is(api(POST => '/sessions/revoke-all', $sa1->{token}, { tenant_id => $tB->{id} }), 404, 'Tenant not found',
            'another tenant');
  detail_is(api(POST => '/sessions/revoke-all', $spa->{token}, { tenant_id => $tB->{id} }), 404, 'Tenant not found',
            'outside the partner');
  ok(alive($sb1), 'nothing revoked');
  my $c2 = session_of($c1);
  my $r = api(POST => '/sessions/revoke-all', $spa->{token}, { tenant_id => $tC->{id} });
  is($r->{status}, 200, 'partner_admin: status 200') or return diag($r->{content});
  is_deeply($r->{json}, { revoked => 2 }, 'the tenant\'s two sessions');
  ok(!alive($sc1) && !alive($c2), 'their tokens fail');
  ok(alive($sa1) && alive($spa) && alive($sb1), 'other tenants\' and the caller\'s sessions stay');
  is(audit_count(action => 'session.revoke_all', resource_type => 'tenant', resource_id => $tC->{id},
                 partner_id => $partner->{id}, details => '{"revoked":2}'), 1, 'audit row session.revoke_all');
};

subtest 'a tenant_admin ends every session of their tenant, their own included' => sub {
  my $again = session_of($a1);
  my $r = api(POST => '/sessions/revoke-all/', $sa1->{token}, { tenant_id => $tA->{id} });
  is($r->{status}, 200, 'status 200 (trailing slash)') or return diag($r->{content});
  cmp_ok($r->{json}{revoked}, '>=', 2, 'at least their own two sessions');
  ok(!alive($sa1) && !alive($again), 'their own tokens fail now');
  is(psql('SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND tenant_id = ' . sql_quote($tA->{id})), 0,
     'no live session left in the tenant');
  ok(alive($sb1), 'another tenant is untouched');
};

subtest 'the ended sessions leave the lists' => sub {
  is(list($ST, "tenant_id=$tA->{id}")->{json}{pagination}{total}, 0, 'tenant A: none active');
  is(list($ST, "tenant_id=$tC->{id}")->{json}{pagination}{total}, 0, 'tenant C: none active');
  is_deeply(sids(list($ST, "tenant_id=$tB->{id}")), [$sb1->{sid}], 'tenant B: one active');
};
