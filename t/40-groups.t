#!/usr/bin/perl
# Group membership and nesting: /api/v1/admin/groups/{group_id}/members and .../nested.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 13;

my $ADMIN = '/api/v1/admin';
my $PW    = 'Group-Fixture-Pass-42';

sub api { my ($method, $path, $token, $json) = @_; admin_req($token, $method, "$ADMIN$path", (defined $json ? (json => $json) : ())) }

my $super = admin_login() or BAIL_OUT('the bootstrap admin cannot sign in');
my $ST = $super->{access_token};

sub created { my ($path, $body) = @_; admin_create($ST, $path =~ s{\A/}{}r, $body) }
sub new_tenant {
  my ($pid) = @_;
  created('/tenants', { name => 'Groups tenant', slug => unique_slug('grp'),
                        (defined $pid ? (partner_id => $pid) : ()) });
}
sub new_user {
  my (%o) = @_;
  created('/users', { email => unique_email('grp'), password => $PW, role => 'user', %o });
}
sub new_group { my ($tid, $name) = @_; created('/groups', { tenant_id => $tid, name => $name // 'Group' }) }
sub token_of { admin_token(email => $_[0]{email}, password => $PW) }
sub detail_is {
  my ($r, $status, $detail, $name) = @_;
  is($r->{status}, $status, "$name: $status") or diag($r->{content});
  is($r->{json} && $r->{json}{detail}, $detail, "$name: detail") if defined $detail;
}
sub v422 {
  my ($r, $loc, $name, $msg) = @_;
  is($r->{status}, 422, "$name: 422") or return diag($r->{content});
  my $e = find_verror($r, $loc);
  ok($e, "$name: error at [@$loc]") or return diag($r->{content});
  is($e->{msg}, $msg, "$name: msg") if defined $msg;
}
sub audit_count {
  my (%w) = @_;
  my $where = join ' AND ', map {
    $_ eq 'details' ? "details @> " . sql_quote($w{$_}) . '::jsonb' : "$_ = " . sql_quote($w{$_})
  } sort keys %w;
  return psql("SELECT count(*) FROM audit_log WHERE $where");
}
sub ids { my ($r) = @_; [sort map { $_->{id} } @{ $r->{json}{items} // [] }] }

my $partner = created('/partners', { name => 'Groups partner', slug => unique_slug('grpp') });
my $ta_t  = new_tenant($partner->{id});
my $tb_t  = new_tenant();
my $admin = new_user(tenant_id => $ta_t->{id}, role => 'tenant_admin');
my $TA    = token_of($admin);
my $ua1   = new_user(tenant_id => $ta_t->{id}, first_name => 'Ada', last_name => 'One', display_name => 'Ada One');
my $ua2   = new_user(tenant_id => $ta_t->{id});
my $ub    = new_user(tenant_id => $tb_t->{id});
my $g1    = new_group($ta_t->{id}, 'g1');
my $g2    = new_group($ta_t->{id}, 'g2');
my $g3    = new_group($ta_t->{id}, 'g3');
my $gb    = new_group($tb_t->{id}, 'gb');

subtest 'add a member' => sub {
  my $r = api(POST => "/groups/$g1->{id}/members", $TA, { user_id => $ua1->{id} });
  is($r->{status}, 201, 'status 201') or return diag($r->{content});
  is($r->{json}{group_id}, $g1->{id}, 'group_id');
  is($r->{json}{user_id}, $ua1->{id}, 'user_id');
  like($r->{json}{created_at} // '', qr/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z/, 'created_at ISO 8601 UTC');
  is(psql('SELECT count(*) FROM group_members WHERE group_id = ' . sql_quote($g1->{id})
          . ' AND user_id = ' . sql_quote($ua1->{id})), 1, 'row stored');
  is(audit_count(action => 'group.member_add', resource_type => 'group', resource_id => $g1->{id},
                 tenant_id => $ta_t->{id}, actor_id => $admin->{id},
                 details => qq({"user_id":"$ua1->{id}"})), 1, 'audit row group.member_add');
  my $again = api(POST => "/groups/$g1->{id}/members/", $TA, { user_id => $ua1->{id} });
  detail_is($again, 409, 'User is already a member', 'adding again (trailing slash)');
  is(audit_count(action => 'group.member_add', resource_id => $g1->{id}), 1, 'no audit row for the refused add');
};

subtest 'invalid member bodies' => sub {
  my $p = "/groups/$g1->{id}/members";
  v422(api(POST => $p, $TA, {}), ['body', 'user_id'], 'no user_id', 'Field required');
  v422(api(POST => $p, $TA, { user_id => 7 }), ['body', 'user_id'], 'numeric user_id');
  v422(api(POST => $p, $TA, { user_id => '' }), ['body', 'user_id'], 'empty user_id');
  v422(api(POST => $p, $TA, { user_id => $ua2->{id}, role => 'x' }), ['body', 'role'], 'extra member');
  v422(req(POST => "$ADMIN$p", token => $TA, raw => '{"user_id":'), ['body'], 'broken JSON');
  v422(api(POST => $p, $TA, { user_id => $ub->{id} }), ['body', 'user_id'], 'user of another tenant',
       'User not found');
  v422(api(POST => $p, $ST, { user_id => $ub->{id} }), ['body', 'user_id'],
       'user of another tenant, even for the super_admin', 'User not found');
  v422(api(POST => $p, $TA, { user_id => 'usr_doesnotexist00' }), ['body', 'user_id'], 'unknown user',
       'User not found');
  my $gone = new_user(tenant_id => $ta_t->{id});
  is(api(DELETE => "/users/$gone->{id}", $ST)->{status}, 204, 'a user deleted');
  v422(api(POST => $p, $TA, { user_id => $gone->{id} }), ['body', 'user_id'], 'deleted user', 'User not found');
  is(psql('SELECT count(*) FROM group_members WHERE group_id = ' . sql_quote($g1->{id})), 1,
     'nothing stored by refused requests');
};

subtest 'another tenant\'s group is not found' => sub {
  my $gp = "/groups/$gb->{id}";
  detail_is(api(POST => "$gp/members", $TA, { user_id => $ub->{id} }), 404, 'Group not found', 'add');
  detail_is(api(GET => "$gp/members", $TA), 404, 'Group not found', 'list');
  detail_is(api(DELETE => "$gp/members/$ub->{id}", $TA), 404, 'Group not found', 'remove');
  detail_is(api(POST => "$gp/nested", $TA, { child_group_id => $g1->{id} }), 404, 'Group not found', 'nest');
  detail_is(api(GET => "$gp/nested", $TA), 404, 'Group not found', 'nested list');
  detail_is(api(DELETE => "$gp/nested/$g1->{id}", $TA), 404, 'Group not found', 'unnest');
  detail_is(api(GET => '/groups/grp_doesnotexist00/members', $ST), 404, 'Group not found', 'unknown group');
  is(api(GET => "$gp/members", $ST)->{status}, 200, 'the super_admin sees it');

  # a partner_admin reaches the groups of their partner's tenants only
  my $pa = new_user(partner_id => $partner->{id}, role => 'partner_admin');
  my $PA = token_of($pa);
  is(api(GET => "$gp/members", $PA)->{status}, 404, 'partner_admin: group outside the partner is not found');
  my $r = api(POST => "/groups/$g3->{id}/members", $PA, { user_id => $ua2->{id} });
  is($r->{status}, 201, 'partner_admin: adds a member in a tenant of the partner') or diag($r->{content});
  is(api(DELETE => "/groups/$g3->{id}/members/$ua2->{id}", $PA)->{status}, 204, 'partner_admin: removes it');
};

subtest 'unauthenticated and unusable tokens' => sub {
  my $r = req(GET => "$ADMIN/groups/$g1->{id}/members");
  is($r->{status}, 401, 'no token: 401');
  is(api(POST => "/groups/$g1->{id}/members", 'garbage', { user_id => $ua2->{id} })->{status}, 401,
     'garbage token: 401');
};

subtest 'nest groups' => sub {
  my $r = api(POST => "/groups/$g1->{id}/nested", $TA, { child_group_id => $g2->{id} });
  is($r->{status}, 201, 'g2 in g1: 201') or return diag($r->{content});
  is($r->{json}{group_id}, $g1->{id}, 'group_id is the parent');
  is($r->{json}{child_group_id}, $g2->{id}, 'child_group_id');
  ok($r->{json}{created_at}, 'created_at');
  is(audit_count(action => 'group.nest', resource_id => $g1->{id}, details => qq({"child_group_id":"$g2->{id}"})),
     1, 'audit row group.nest');
  detail_is(api(POST => "/groups/$g1->{id}/nested", $TA, { child_group_id => $g2->{id} }), 409,
            'Group is already nested in this group', 'nesting again');
  is(api(POST => "/groups/$g2->{id}/nested", $TA, { child_group_id => $g3->{id} })->{status}, 201, 'g3 in g2');

  my $l = api(GET => "/groups/$g1->{id}/nested", $TA);
  is($l->{status}, 200, 'nested list: 200') or diag($l->{content});
  is_deeply(ids($l), [$g2->{id}], 'g1 holds g2 directly');
  is($l->{json}{pagination}{total}, 1, 'pagination total');
  is($l->{json}{items}[0]{name}, 'g2', 'child group described');
  is_deeply(ids(api(GET => "/groups/$g2->{id}/nested/", $TA)), [$g3->{id}], 'g2 holds g3 (trailing slash)');
};

subtest 'cycles are refused' => sub {
  my $before = psql('SELECT count(*) FROM group_nesting');
  detail_is(api(POST => "/groups/$g1->{id}/nested", $TA, { child_group_id => $g1->{id} }), 409,
            'Nesting would create a cycle', 'a group in itself');
  detail_is(api(POST => "/groups/$g2->{id}/nested", $TA, { child_group_id => $g1->{id} }), 409,
            'Nesting would create a cycle', 'g1 in g2 (two-group cycle)');
  detail_is(api(POST => "/groups/$g3->{id}/nested", $ST, { child_group_id => $g1->{id} }), 409,
            'Nesting would create a cycle', 'g1 in g3 (three-group cycle)');
  is(psql('SELECT count(*) FROM group_nesting'), $before, 'nothing stored');
  is(audit_count(action => 'group.nest', resource_id => $g3->{id}), 0, 'no audit row for a refused nesting');
};

subtest 'invalid nesting bodies' => sub {
  my $p = "/groups/$g1->{id}/nested";
  v422(api(POST => $p, $TA, {}), ['body', 'child_group_id'], 'no child_group_id', 'Field required');
  v422(api(POST => $p, $TA, { child_group_id => [] }), ['body', 'child_group_id'], 'list child_group_id');
  v422(api(POST => $p, $TA, { child_group_id => $gb->{id} }), ['body', 'child_group_id'],
       'group of another tenant', 'Group not found');
  v422(api(POST => $p, $ST, { child_group_id => $gb->{id} }), ['body', 'child_group_id'],
       'group of another tenant, super_admin', 'Group not found');
  v422(api(POST => $p, $TA, { child_group_id => 'grp_doesnotexist00' }), ['body', 'child_group_id'],
       'unknown group', 'Group not found');
};

subtest 'direct and effective members' => sub {
  # g1 = {ua1} + g2; g2 = {ua2, ua1} + g3; g3 = {u3}
  my $u3 = new_user(tenant_id => $ta_t->{id});
  for ([$g2, $ua2], [$g2, $ua1], [$g3, $u3]) {
    my $r = api(POST => "/groups/$_->[0]{id}/members", $ST, { user_id => $_->[1]{id} });
    is($r->{status}, 201, "member added to $_->[0]{name}") or diag($r->{content});
  }
  my $d = api(GET => "/groups/$g1->{id}/members", $TA);
  is($d->{status}, 200, 'direct: 200') or return diag($d->{content});
  is_deeply(ids($d), [$ua1->{id}], 'direct members of g1');
  my $m = $d->{json}{items}[0];
  is_deeply([sort grep { $_ ne 'direct' } keys %$m], [sort qw(id email first_name last_name display_name status)],
            'member fields');
  is($m->{first_name}, 'Ada', 'first_name');
  is($m->{display_name}, 'Ada One', 'display_name');
  is($m->{status}, 'ACTIVE', 'status');
  ok(!grep({ /pass|hash/i } keys %$m), 'no password material');
  is_deeply($d->{json}{pagination}, { page => 1, per_page => 20, total => 1, total_pages => 1 }, 'pagination');

  my $e = api(GET => "/groups/$g1->{id}/members?effective=true", $TA);
  is($e->{status}, 200, 'effective: 200') or return diag($e->{content});
  is_deeply(ids($e), [sort $ua1->{id}, $ua2->{id}, $u3->{id}], 'effective members, each once');
  is($e->{json}{pagination}{total}, 3, 'effective total counts each user once');
  my %direct = map { $_->{id} => $_->{direct} } @{ $e->{json}{items} };
  ok($direct{ $ua1->{id} } && !$direct{ $u3->{id} }, 'direct flag tells direct from inherited members');
  is_deeply(ids(api(GET => "/groups/$g1->{id}/members?effective=false", $TA)), [$ua1->{id}], 'effective=false');

  my $p1 = api(GET => "/groups/$g1->{id}/members?effective=true&per_page=2&page=2", $TA);
  is(scalar @{ $p1->{json}{items} }, 1, 'second page of two holds the third member');
  is($p1->{json}{pagination}{total_pages}, 2, 'total_pages');

  v422(api(GET => "/groups/$g1->{id}/members?effective=yes", $TA), ['query', 'effective'], 'effective=yes');
  v422(api(GET => "/groups/$g1->{id}/members?per_page=0", $TA), ['query', 'per_page'], 'per_page=0');

  # a deleted group passes no membership on
  my $g4 = new_group($ta_t->{id}, 'g4');
  my $u4 = new_user(tenant_id => $ta_t->{id});
  api(POST => "/groups/$g4->{id}/members", $ST, { user_id => $u4->{id} });
  is(api(POST => "/groups/$g3->{id}/nested", $ST, { child_group_id => $g4->{id} })->{status}, 201, 'g4 in g3');
  is(api(GET => "/groups/$g1->{id}/members?effective=true", $TA)->{json}{pagination}{total}, 4, 'u4 inherited');
  is(api(DELETE => "/groups/$g4->{id}", $ST)->{status}, 204, 'g4 deleted');
  is(api(GET => "/groups/$g1->{id}/members?effective=true", $TA)->{json}{pagination}{total}, 3,
     'members of a deleted group are no longer inherited');
  ok(!grep({ $_ eq $g4->{id} } @{ ids(api(GET => "/groups/$g3->{id}/nested", $TA)) }),
     'a deleted group is not listed as nested');
};

subtest 'remove a member' => sub {
  my $r = api(DELETE => "/groups/$g2->{id}/members/$ua1->{id}", $TA);
  is($r->{status}, 204, 'status 204') or diag($r->{content});
  is($r->{content}, '', 'no body');
  is(psql('SELECT count(*) FROM group_members WHERE group_id = ' . sql_quote($g2->{id})
          . ' AND user_id = ' . sql_quote($ua1->{id})), 0, 'row gone');
  is(audit_count(action => 'group.member_remove', resource_id => $g2->{id},
                 details => qq({"user_id":"$ua1->{id}"})), 1, 'audit row group.member_remove');
  detail_is(api(DELETE => "/groups/$g2->{id}/members/$ua1->{id}", $TA), 404, 'Member not found', 'again');
  detail_is(api(DELETE => "/groups/$g2->{id}/members/usr_doesnotexist00", $TA), 404, 'Member not found',
            'unknown user');
  detail_is(api(DELETE => "/groups/$g2->{id}/members/$ub->{id}", $TA), 404, 'Member not found',
            'user of another tenant');
};

subtest 'unnest' => sub {
  my $r = api(DELETE => "/groups/$g1->{id}/nested/$g2->{id}", $TA);
  is($r->{status}, 204, 'status 204') or diag($r->{content});
  is(psql('SELECT count(*) FROM group_nesting WHERE parent_group_id = ' . sql_quote($g1->{id})), 0, 'row gone');
  is(audit_count(action => 'group.unnest', resource_id => $g1->{id}, details => qq({"child_group_id":"$g2->{id}"})),
     1, 'audit row group.unnest');
  detail_is(api(DELETE => "/groups/$g1->{id}/nested/$g2->{id}", $TA), 404, 'Nested group not found', 'again');
  is_deeply(ids(api(GET => "/groups/$g1->{id}/members?effective=true", $TA)), [$ua1->{id}],
            'g2\'s members are no longer g1\'s');
  is(api(POST => "/groups/$g2->{id}/nested", $TA, { child_group_id => $g1->{id} })->{status}, 201,
     'the former cycle direction is now allowed');
};

subtest 'the tenant_admin manages their own tenant\'s groups' => sub {
  is(api(GET => "/groups/$g1->{id}/members", $TA)->{status}, 200, 'tenant_admin reads');
  my $u = new_user(tenant_id => $ta_t->{id});
  my $r = api(POST => "/groups/$g1->{id}/members", $TA, { user_id => $u->{id} });
  is($r->{status}, 201, 'tenant_admin writes in their own tenant');
};

subtest 'wrong methods' => sub {
  is(api(PUT => "/groups/$g1->{id}/members", $TA, {})->{status}, 405, 'PUT members: 405');
  is(api(GET => "/groups/$g1->{id}/members/$ua1->{id}", $TA)->{status}, 405, 'GET one member: 405');
};

subtest 'audit rows are written with the change, never alone' => sub {
  my $adds = psql("SELECT count(*) FROM audit_log WHERE action = 'group.member_add' AND resource_id = "
                  . sql_quote($g1->{id}));
  my $rows = psql('SELECT count(*) FROM group_members WHERE group_id = ' . sql_quote($g1->{id}));
  my $removes = psql("SELECT count(*) FROM audit_log WHERE action = 'group.member_remove' AND resource_id = "
                     . sql_quote($g1->{id}));
  is($adds - $removes, $rows, 'one audit row per stored membership change of g1');
};
