#!/usr/bin/perl
# The audit log through the admin API: list with filters, one entry, actions, resource types,
# chain verification; each limited to the caller's reach.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);
use SKFixture qw(api created new_user token_of);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 11;

my $ADMIN = '/api/v1/admin';
my $PW    = 'Audit-Fixture-Pass-42';
my @FIELDS = qw(id occurred_at tenant_id partner_id actor_id actor_email actor_type action resource_type
                resource_id result ip_address user_agent request_id details);

my $super = SKFixture::setup(prefix => 'aud', role => 'tenant_admin', password => $PW);
my $ST = $super->{access_token};
sub audit { my ($token, $query) = @_; api(GET => '/audit' . (defined $query ? "?$query" : ''), $token) }
sub total { $_[0]{json}{pagination}{total} }
sub items { @{ $_[0]{json}{items} // [] } }
sub v422 {
  my ($r, $loc, $name) = @_;
  is($r->{status}, 422, "$name: 422") or return diag($r->{content});
  ok(find_verror($r, $loc), "$name: error at [@$loc]") or diag($r->{content});
}

my $partner = created('/partners', { name => 'Audit partner', slug => unique_slug('audp') });
my $tA = created('/tenants', { name => 'A', slug => unique_slug('auda'), partner_id => $partner->{id} });
my $tB = created('/tenants', { name => 'B', slug => unique_slug('audb') });
my $a1 = new_user(tenant_id => $tA->{id});
my $b1 = new_user(tenant_id => $tB->{id});
my $pa = new_user(partner_id => $partner->{id}, role => 'partner_admin');
my $TA = token_of($a1);
my $TB = token_of($b1);
my $PA = token_of($pa);
my $gA = created('/groups', { tenant_id => $tA->{id}, name => 'audited A' });
my $gB = created('/groups', { tenant_id => $tB->{id}, name => 'audited B' });
my $bad_ip = unique_ip();
my $bad = req(POST => "$ADMIN/auth/login", json => { email => $a1->{email}, password => 'not-the-password' },
              ip => $bad_ip);
my $gA_row = psql("SELECT id FROM audit_log WHERE action = 'group.create' AND resource_id = " . sql_quote($gA->{id}));
my $gB_row = psql("SELECT id FROM audit_log WHERE action = 'group.create' AND resource_id = " . sql_quote($gB->{id}));

subtest 'list as the super_admin' => sub {
  my $r = audit($ST, 'per_page=50');
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  my @i = items($r);
  ok(@i > 5, 'entries listed');
  ok(!grep({ my $e = $_; grep { !exists $e->{$_} } @FIELDS } @i), 'every field present in every entry');
  my @ids = map { $_->{id} } @i;
  is_deeply(\@ids, [sort { $b <=> $a } @ids], 'newest first (ids descending)');
  is($ids[0], psql('SELECT max(id) FROM audit_log'), 'the first is the newest row');
  is(total($r), psql('SELECT count(*) FROM audit_log'), 'total counts every row');
  like($i[0]{occurred_at}, qr/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\z/, 'occurred_at ISO 8601 UTC');
  is(ref $i[0]{details}, 'HASH', 'details is an object');
  my $p2 = audit($ST, 'per_page=2&page=2');
  is_deeply([map { $_->{id} } items($p2)], [@ids[2, 3]], 'pages follow each other');
  is(req(GET => "$ADMIN/audit")->{status}, 401, 'no token: 401');
};

subtest 'filters' => sub {
  my $r = audit($ST, "action=group.create&resource_id=$gA->{id}");
  is(total($r), 1, 'action + resource_id: one entry') or return diag($r->{content});
  my ($e) = items($r);
  is($e->{id}, $gA_row, 'the group.create row');
  is($e->{resource_type}, 'group', 'resource_type');
  is($e->{tenant_id}, $tA->{id}, 'tenant_id');
  is($e->{partner_id}, $partner->{id}, 'partner_id');
  is($e->{actor_id}, $super->{user}{id}, 'actor_id');
  is($e->{result}, 'success', 'result');

  my $t = audit($ST, "tenant_id=$tB->{id}&per_page=100");
  ok(total($t) >= 1 && !grep({ ($_->{tenant_id} // '') ne $tB->{id} } items($t)), 'tenant_id filter');
  ok(grep({ $_->{id} == $gB_row } items($t)), 'tenant_id filter finds the group of B');
  my $p = audit($ST, "partner_id=$partner->{id}&per_page=100");
  ok(grep({ $_->{id} == $gA_row } items($p)), 'partner_id filter covers the partner\'s tenants');
  ok(!grep({ $_->{id} == $gB_row } items($p)), 'partner_id filter leaves other tenants out');
  my $act = audit($ST, "actor_id=$a1->{id}&per_page=100");
  ok(total($act) >= 2 && !grep({ ($_->{actor_id} // '') ne $a1->{id} } items($act)), 'actor_id filter');
  my $em = audit($ST, 'actor_email=' . uc($a1->{email}) . '&per_page=100');
  ok(total($em) >= 2 && !grep({ lc($_->{actor_email} // '') ne lc $a1->{email} } items($em)),
     'actor_email filter, case-insensitive');
  my $f = audit($ST, "result=failure&actor_email=$a1->{email}");
  is($bad->{status}, 401, 'a failed sign-in happened');
  is(total($f), 1, 'result filter finds the failed sign-in');
  is((items($f))[0]{action}, 'admin.login', 'it is an admin.login');
  my $ip = audit($ST, "ip_address=$bad_ip");
  is(total($ip), 1, 'ip_address filter');
  is(total(audit($ST, "resource_type=group&resource_id=$gB->{id}")), 1, 'resource_type filter');
  is(total(audit($ST, 'action=no.such.action')), 0, 'unknown action: empty');
  is(audit($ST, 'action=' . ('a' x 400))->{status}, 422, 'overlong filter: 422');
  v422(audit($ST, 'result=maybe'), ['query', 'result'], 'result=maybe');
};

subtest 'time range' => sub {
  my $q = "resource_id=$gA->{id}";
  is(total(audit($ST, "$q&start_time=2000-01-01")), 1, 'date only');
  is(total(audit($ST, "$q&start_time=2000-01-01T00:00:00Z&end_time=2999-12-31T23:59:59Z")), 1, 'both ends, Z');
  is(total(audit($ST, "$q&start_time=2000-01-01T00:00:00.123456%2B01:00")), 1, 'fraction and encoded offset');
  is(total(audit($ST, "$q&start_time=2000-01-01T00:00:00+01:00")), 1, 'an offset whose + arrived as a space');
  is(total(audit($ST, "$q&start_time=2000-01-01T00:00-0130")), 1, 'minutes and a compact negative offset');
  is(total(audit($ST, "$q&start_time=2999-01-01T00:00:00Z")), 0, 'start in the future: empty');
  is(total(audit($ST, "$q&end_time=2000-01-01")), 0, 'end in the past: empty');
  my $at = psql("SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM audit_log "
                . "WHERE id = $gA_row");
  is(total(audit($ST, "$q&start_time=$at&end_time=$at")), 1, 'both ends inclusive');
  for my $bad ('yesterday', '2024-13-01', '2024-02-30', '2023-02-29', '2024-01-01T25:00:00Z', '2024-01-01T10:61',
               '2024-01-01T00:00:00+2', '2024-01-01T00:00:00Zjunk', '24-01-01', '2024-01-01T', '') {
    v422(audit($ST, "start_time=$bad"), ['query', 'start_time'], "start_time '$bad'");
  }
  my $leap = audit($ST, "$q&end_time=2024-02-29");
  is($leap->{status}, 200, 'a leap day is a date');
  is(total($leap), 0, 'and the entry is later');
  v422(audit($ST, 'end_time=2024-01-01X'), ['query', 'end_time'], 'invalid end_time');
};

subtest 'reach of a tenant_admin' => sub {
  my $r = audit($TA, 'per_page=100');
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  ok(total($r) >= 3, 'their tenant\'s entries');
  ok(!grep({ ($_->{tenant_id} // '') ne $tA->{id} } items($r)), 'all of their tenant');
  is(total(audit($TA, "resource_id=$gB->{id}")), 0, 'another tenant\'s entry is not listed');
  is(total(audit($TA, "tenant_id=$tB->{id}")), 0, 'not even when asked for');
  is(total(audit($TA, "resource_id=$gA->{id}")), 1, 'their tenant\'s entry is');
  is(total(audit($TB, "resource_id=$gA->{id}")), 0, 'and not to the other tenant');
};

subtest 'reach of a partner_admin' => sub {
  my $r = audit($PA, 'per_page=100');
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  ok(!grep({ ($_->{partner_id} // '') ne $partner->{id} && ($_->{tenant_id} // '') ne $tA->{id} } items($r)),
     'only the partner\'s and its tenants\' entries');
  is(total(audit($PA, "resource_id=$gA->{id}")), 1, 'an entry of a tenant of the partner');
  is(total(audit($PA, "resource_id=$gB->{id}")), 0, 'not an entry of another tenant');
};

subtest 'one entry' => sub {
  my $r = api(GET => "/audit/$gA_row", $ST);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is($r->{json}{id}, $gA_row, 'id');
  is($r->{json}{action}, 'group.create', 'action');
  ok(!grep({ !exists $r->{json}{$_} } @FIELDS), 'every field present');
  is(api(GET => "/audit/$gA_row", $TA)->{status}, 200, 'the tenant_admin of the tenant');
  is(api(GET => "/audit/$gA_row/", $PA)->{status}, 200, 'the partner_admin (trailing slash)');
  my $n = api(GET => "/audit/$gA_row", $TB);
  is($n->{status}, 404, 'another tenant: 404');
  is($n->{json}{detail}, 'Audit entry not found', 'detail');
  for my $id ('abc', '-1', '0', '1.5', '99999999999999999999', '1e3') {
    is(api(GET => "/audit/$id", $ST)->{status}, 404, "id '$id': 404");
  }
};

subtest 'actions and resource types' => sub {
  my $r = api(GET => '/audit/actions', $ST);
  is($r->{status}, 200, 'actions: 200') or return diag($r->{content});
  my @a = @{ $r->{json}{actions} // [] };
  ok((grep { $_ eq 'group.create' } @a) && (grep { $_ eq 'partner.create' } @a), 'actions listed');
  is_deeply(\@a, [sort { $a cmp $b } @a], 'sorted');
  my %seen;
  ok(!grep({ $seen{$_}++ } @a), 'each once');
  my @ta = @{ api(GET => '/audit/actions', $TA)->{json}{actions} // [] };
  ok((grep { $_ eq 'group.create' } @ta), 'tenant_admin: their tenant\'s actions');
  ok(!(grep { $_ eq 'partner.create' } @ta), 'tenant_admin: not the platform\'s');

  my $t = api(GET => '/audit/resource-types', $ST);
  is($t->{status}, 200, 'resource types: 200') or return diag($t->{content});
  my @t = @{ $t->{json}{resource_types} // [] };
  ok((grep { $_ eq 'group' } @t) && (grep { $_ eq 'partner' } @t), 'resource types listed');
  ok(!grep({ !defined } @t), 'no null');
  my @tt = @{ api(GET => '/audit/resource-types/', $TA)->{json}{resource_types} // [] };
  ok((grep { $_ eq 'group' } @tt) && !(grep { $_ eq 'partner' } @tt), 'tenant_admin: within reach');
  is(req(GET => "$ADMIN/audit/actions")->{status}, 401, 'no token: 401');
};

subtest 'verify the chain' => sub {
  my $r = api(GET => '/audit/verify', $ST);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  ok($r->{json}{ok}, 'ok');
  cmp_ok($r->{json}{checked}, '>=', $gB_row, 'rows checked');
  ok(exists $r->{json}{first_broken_id} && !defined $r->{json}{first_broken_id}, 'first_broken_id null');
  ok(exists $r->{json}{reason}, 'reason present');
  for ([$TA, 'tenant_admin'], [$PA, 'partner_admin']) {
    my $d = api(GET => '/audit/verify', $_->[0]);
    is($d->{status}, 403, "$_->[1]: 403");
    is($d->{json}{detail}, 'Requires Super Admin role', "$_->[1]: detail");
  }
};

subtest 'verification reports tampering' => sub {
  my $before = psql("SELECT details::text FROM audit_log WHERE id = $gA_row");
  my $guard = SK::Restore->new(sub {
    psql("SET scaikey.audit_maintenance = 'on'; UPDATE audit_log SET details = " . sql_quote($before)
         . "::jsonb WHERE id = $gA_row");
  });
  psql("SET scaikey.audit_maintenance = 'on'; UPDATE audit_log SET details = details || '{\"x\":1}' "
       . "WHERE id = $gA_row");
  my $r = api(GET => '/audit/verify', $ST);
  is($r->{status}, 200, 'status 200') or diag($r->{content});
  ok(!$r->{json}{ok}, 'not ok');
  is($r->{json}{first_broken_id}, $gA_row, 'first_broken_id is the changed row');
  ok($r->{json}{reason}, 'a reason');
  is($r->{json}{checked}, psql("SELECT count(*) FROM audit_log WHERE id < $gA_row"), 'checked = intact rows before');
  $guard->run;
  ok(api(GET => '/audit/verify', $ST)->{json}{ok}, 'ok again once restored');
};

subtest 'reads are not audited, methods are read-only' => sub {
  my $n = psql('SELECT count(*) FROM audit_log');
  audit($ST);
  api(GET => "/audit/$gA_row", $ST);
  api(GET => '/audit/verify', $ST);
  is(psql('SELECT count(*) FROM audit_log'), $n, 'no rows written by reading');
  is(api(DELETE => "/audit/$gA_row", $ST)->{status}, 405, 'DELETE: 405');
  is(api(POST => '/audit', $ST, {})->{status}, 405, 'POST: 405');
};

subtest 'pagination limits' => sub {
  v422(audit($ST, 'per_page=101'), ['query', 'per_page'], 'per_page=101');
  v422(audit($ST, 'page=x'), ['query', 'page'], 'page=x');
  is(scalar(items(audit($ST, 'per_page=1'))), 1, 'per_page=1');
};

package SK::Restore;

sub new    { my ($c, $f) = @_; bless { f => $f, pid => $$ }, $c }
sub run    { my $s = shift; my $f = delete $s->{f}; $f->() if $f && $s->{pid} == $$ }
sub DESTROY { local ($@, $?); eval { $_[0]->run } }
