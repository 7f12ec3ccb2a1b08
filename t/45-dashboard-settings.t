#!/usr/bin/perl
# Dashboard (stats, activity) and platform settings.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);
use SKFixture qw(api created new_user token_of);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 10;

my $ADMIN = '/api/v1/admin';
my $PW    = 'Dash-Fixture-Pass-42';
my $PS    = '/platform-settings';
my @STATS = qw(tenants users groups applications agents active_sessions);

my $super = SKFixture::setup(prefix => 'dash', role => 'tenant_admin', password => $PW);
my $ST = $super->{access_token};
sub v422 {
  my ($r, $loc, $name) = @_;
  is($r->{status}, 422, "$name: 422") or return diag($r->{content});
  ok(find_verror($r, $loc), "$name: error at [@$loc]") or diag($r->{content});
}
sub n { psql($_[0]) + 0 }

my $partner = created('/partners', { name => 'Dash partner', slug => unique_slug('dshp') });
my $tA  = created('/tenants', { name => 'A', slug => unique_slug('dsha'), partner_id => $partner->{id} });
my $tA2 = created('/tenants', { name => 'A2', slug => unique_slug('dshc'), partner_id => $partner->{id} });
my $tB  = created('/tenants', { name => 'B', slug => unique_slug('dshb') });
my $a1  = new_user(tenant_id => $tA->{id});
my $b1  = new_user(tenant_id => $tB->{id});
my $pa  = new_user(partner_id => $partner->{id}, role => 'partner_admin');
created('/users', { email => unique_email('dash-user'), password => $PW, tenant_id => $tA->{id} });
created('/groups', { tenant_id => $tA->{id}, name => 'g' }) for 1 .. 2;
created('/groups', { tenant_id => $tB->{id}, name => 'g' });
created('/applications', { name => 'a', application_type => 'SPA', scope => 'TENANT', tenant_id => $tA->{id} });
created('/applications', { name => 'p', application_type => 'WEB', scope => 'PARTNER', partner_id => $partner->{id} });
created('/applications', { name => 'b', application_type => 'SPA', scope => 'TENANT', tenant_id => $tB->{id} });
created('/agents', { tenant_id => $tA2->{id}, name => 'agent' });
my $TA = token_of($a1);
my $TB = token_of($b1);
my $PA = token_of($pa);

subtest 'stats of the super_admin' => sub {
  my $r = api(GET => '/dashboard/stats', $ST);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  my $s = $r->{json};
  is_deeply([sort keys %$s], [sort 'partners', @STATS], 'the counts');
  is($s->{partners}, n('SELECT count(*) FROM partners WHERE deleted_at IS NULL'), 'partners');
  is($s->{tenants}, n('SELECT count(*) FROM tenants WHERE deleted_at IS NULL'), 'tenants');
  is($s->{users}, n('SELECT count(*) FROM users WHERE deleted_at IS NULL'), 'users');
  is($s->{groups}, n('SELECT count(*) FROM groups WHERE deleted_at IS NULL'), 'groups');
  is($s->{applications}, n('SELECT count(*) FROM applications WHERE deleted_at IS NULL'), 'applications');
  is($s->{agents}, n('SELECT count(*) FROM mcp_agents WHERE deleted_at IS NULL'), 'agents');
  is($s->{active_sessions}, n('SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > now()'),
     'active_sessions');
  created('/tenants', { name => 'one more', slug => unique_slug('dshx') });
  is(api(GET => '/dashboard/stats/', $ST)->{json}{tenants}, $s->{tenants} + 1, 'a new tenant is counted');
  is(req(GET => "$ADMIN/dashboard/stats")->{status}, 401, 'no token: 401');
};

subtest 'stats of a tenant_admin' => sub {
  my $r = api(GET => '/dashboard/stats', $TA);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  my $s = $r->{json};
  ok(!exists $s->{partners}, 'no partner count');
  is($s->{tenants}, 1, 'their tenant');
  is($s->{users}, 2, 'their tenant\'s users');
  is($s->{groups}, 2, 'their tenant\'s groups');
  is($s->{applications}, 2 + n("SELECT count(*) FROM applications WHERE scope = 'GLOBAL' AND deleted_at IS NULL"),
     'their tenant\'s application, their partner\'s and the GLOBAL ones');
  is($s->{agents}, 0, 'no agent in their tenant');
  is($s->{active_sessions}, 1, 'their own session');
  my $b = api(GET => '/dashboard/stats', $TB)->{json};
  is_deeply([@$b{qw(tenants users groups agents active_sessions)}], [1, 1, 1, 0, 1], 'another tenant counts its own');
};

subtest 'stats of a partner_admin' => sub {
  my $s = api(GET => '/dashboard/stats', $PA)->{json};
  ok(!exists $s->{partners}, 'no partner count');
  is($s->{tenants}, 2, 'the partner\'s tenants');
  is($s->{users}, 3, 'their tenants\' users and the partner_admin');
  is($s->{groups}, 2, 'groups');
  is($s->{agents}, 1, 'agents');
  is($s->{active_sessions}, 2, 'sessions of the partner\'s users');
};

subtest 'activity' => sub {
  my $r = api(GET => '/dashboard/activity', $ST);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  my @i = @{ $r->{json}{items} // [] };
  is(scalar @i, 20, 'twenty entries by default');
  is($i[0]{id}, psql('SELECT max(id) FROM audit_log'), 'the newest first');
  my @ids = map { $_->{id} } @i;
  is_deeply(\@ids, [sort { $b <=> $a } @ids], 'newest first');
  ok(exists $i[0]{action} && exists $i[0]{occurred_at} && exists $i[0]{actor_email}, 'audit entry fields');
  is(scalar @{ api(GET => '/dashboard/activity?limit=5', $ST)->{json}{items} }, 5, 'limit=5');
  my $all = n('SELECT count(*) FROM audit_log');
  is(scalar @{ api(GET => '/dashboard/activity?limit=100', $ST)->{json}{items} }, $all < 100 ? $all : 100,
     'limit=100');
  v422(api(GET => '/dashboard/activity?limit=0', $ST), ['query', 'limit'], 'limit=0');
  v422(api(GET => '/dashboard/activity?limit=101', $ST), ['query', 'limit'], 'limit=101');
  v422(api(GET => '/dashboard/activity?limit=ten', $ST), ['query', 'limit'], 'limit=ten');
  v422(api(GET => '/dashboard/activity?limit=', $ST), ['query', 'limit'], 'empty limit');

  my $t = api(GET => '/dashboard/activity?limit=100', $TA);
  is($t->{status}, 200, 'tenant_admin: 200');
  my @ti = @{ $t->{json}{items} };
  ok(@ti >= 3, 'tenant_admin: their tenant\'s entries');
  ok(!grep({ ($_->{tenant_id} // '') ne $tA->{id} } @ti), 'tenant_admin: nothing from other tenants');
  my @pi = @{ api(GET => '/dashboard/activity?limit=100', $PA)->{json}{items} };
  ok(!grep({ ($_->{partner_id} // '') ne $partner->{id} && ($_->{tenant_id} // '') !~ /\A(?:\Q$tA->{id}\E|\Q$tA2->{id}\E)\z/ } @pi),
     'partner_admin: the partner\'s and its tenants\' entries only');
};

(my $k1 = 'test_' . unique_slug('k')) =~ tr/-/_/;
my $k2 = "${k1}_obj";
my $secret = 'smtp-' . unique_slug('pw');
END { psql("UPDATE platform_settings SET settings = settings - '$k1' - '$k2'") if $ENV{SK_PSQL} && $k1 }

subtest 'read platform settings' => sub {
  my $r = api(GET => $PS, $ST);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is(ref $r->{json}, 'HASH', 'an object');
  is_deeply($r->{json}, JSON::PP->new->decode(psql('SELECT settings::text FROM platform_settings')),
            'the stored settings');
  is(api(GET => "$PS/", $ST)->{status}, 200, 'trailing slash');
};

subtest 'only the platform\'s administrators' => sub {
  for ([$TA, 'tenant_admin'], [$PA, 'partner_admin']) {
    my ($t, $who) = @$_;
    my $g = api(GET => $PS, $t);
    is($g->{status}, 403, "$who GET: 403");
    is($g->{json}{detail}, 'Requires Super Admin role', "$who GET: detail");
    my $p = api(PATCH => $PS, $t, { $k1 => 1 });
    is($p->{status}, 403, "$who PATCH: 403");
    is($p->{json}{detail}, 'Requires Super Admin role', "$who PATCH: detail");
  }
  is(req(GET => "$ADMIN$PS")->{status}, 401, 'no token: 401');
  ok(!exists api(GET => $PS, $ST)->{json}{$k1}, 'nothing changed');
};

subtest 'merge' => sub {
  my $r = api(PATCH => $PS, $ST, { $k1 => 1, $k2 => { host => 'mail.example.test', password => $secret } });
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is($r->{json}{$k1}, 1, 'new key');
  is_deeply($r->{json}{$k2}, { host => 'mail.example.test', password => $secret }, 'new object key');
  is_deeply(api(GET => $PS, $ST)->{json}, $r->{json}, 'GET shows the result');
  my $r2 = api(PATCH => $PS, $ST, { $k2 => { host => 'other.example.test' } });
  is_deeply($r2->{json}{$k2}, { host => 'other.example.test' }, 'a top-level key is replaced, not merged');
  is($r2->{json}{$k1}, 1, 'other keys stay');
  my $r3 = api(PATCH => $PS, $ST, { $k1 => undef });
  ok(!exists $r3->{json}{$k1}, 'a key set to null is removed');
  ok(exists $r3->{json}{$k2}, 'the rest stays');
  my $r4 = api(PATCH => $PS, $ST, {});
  is($r4->{status}, 200, 'an empty patch: 200');
  is_deeply($r4->{json}, $r3->{json}, 'an empty patch changes nothing');
};

subtest 'audit of changes, without values' => sub {
  my $rows = psql("SELECT count(*) FROM audit_log WHERE action = 'platform_settings.update' "
                  . "AND resource_type = 'platform_settings' AND actor_id = " . sql_quote($super->{user}{id})
                  . " AND details->'set' ? " . sql_quote($k2));
  cmp_ok($rows, '>=', 2, 'audit rows name the keys set');
  is(psql("SELECT count(*) FROM audit_log WHERE action = 'platform_settings.update' AND details->'removed' ? "
          . sql_quote($k1)), 1, 'and the keys removed');
  is(psql('SELECT count(*) FROM audit_log a WHERE strpos(a::text, ' . sql_quote($secret) . ') > 0'), 0,
     'values never reach the audit log');
  is(psql('SELECT count(*) FROM audit_log a WHERE strpos(a::text, ' . sql_quote('mail.example.test') . ') > 0'), 0,
     'not even harmless ones');
};

subtest 'invalid patches' => sub {
  my $before = api(GET => $PS, $ST)->{json};
  my %many = map { ("k$_" => $_) } 1 .. 65;
  v422(api(PATCH => $PS, $ST, \%many), ['body'], '65 keys');
  my %ok = map { ("${k1}_$_" => undef) } 1 .. 64;
  is(api(PATCH => $PS, $ST, \%ok)->{status}, 200, '64 keys are fine');
  v422(req(PATCH => "$ADMIN$PS", token => $ST, raw => '[1,2]'), ['body'], 'an array');
  v422(req(PATCH => "$ADMIN$PS", token => $ST, raw => '"x"'), ['body'], 'a string');
  v422(req(PATCH => "$ADMIN$PS", token => $ST, raw => '{"a":'), ['body'], 'broken JSON');
  v422(api(PATCH => $PS, $ST, { '' => 1 }), ['body', ''], 'an empty key');
  v422(api(PATCH => $PS, $ST, { ('k' x 129) => 1 }), ['body', 'k' x 129], 'a long key');
  is(req(PATCH => "$ADMIN$PS", token => $ST, raw => '{"x":1}', headers => { 'Content-Type' => 'text/plain' })
       ->{status}, 415, 'not JSON: 415');
  is_deeply(api(GET => $PS, $ST)->{json}, $before, 'nothing changed');
  is(api(PUT => $PS, $ST, {})->{status}, 405, 'PUT: 405');
};

subtest 'clean up' => sub {
  my $r = api(PATCH => $PS, $ST, { $k2 => undef });
  is($r->{status}, 200, 'removed the test keys');
  ok(!grep({ index($_, $k1) == 0 } keys %{ $r->{json} }), 'no test key left');
};
