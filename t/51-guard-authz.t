#!/usr/bin/perl
# The guard's Require providers: scaikey-scope, -role, -group (nested groups count; membership
# is cached for the revocation delay), -tenant, -claim (strings and array claims), alone and in
# RequireAll / RequireAny / RequireNone; the 403 answer (RFC 6750 insufficient_scope), also
# with AuthzSendForbiddenOnFailure On.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MIME::Base64 qw(encode_base64);
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $ADMIN = admin_login() or BAIL_OUT('admin login failed');
my $AT    = $ADMIN->{access_token};

sub www { my $w = $_[0]{headers}{'www-authenticate'}; ref $w ? join(', ', @$w) : ($w // '') }

sub group {
  my ($tenant, $name) = @_;
  return psql('INSERT INTO groups (tenant_id, name) VALUES (' . sql_quote($tenant) . ', '
              . sql_quote($name) . ') RETURNING id');
}

# ---- tenants, people, groups, clients ----

my $tA = create_tenant();
my $tB = create_tenant();
my $ta = create_user(role => 'tenant_admin', tenant_id => $tA->{id}, prefix => 'authz-ta');
my $ub = create_user(role => 'user', tenant_id => $tB->{id}, prefix => 'authz-ub');
my $parents = group($tA->{id}, 'Parents');
my $child   = group($tA->{id}, 'Child');
my $readers = group($tB->{id}, 'Readers');
psql("INSERT INTO group_nesting (parent_group_id, child_group_id) VALUES ('$parents', '$child')");
psql("INSERT INTO group_members (group_id, user_id) VALUES ('$child', '$ta->{id}')");
psql("INSERT INTO group_members (group_id, user_id) VALUES ('$readers', '$ub->{id}')");

my $appA = admin_create($AT, 'applications', {
  name => 'authz tenant app', application_type => 'SERVICE', scope => 'TENANT', tenant_id => $tA->{id},
  allowed_scopes => ['orders:read', 'orders:write', 'demo:read'] });
my $appG = admin_create($AT, 'applications', {
  name => 'authz global app', application_type => 'SERVICE', scope => 'GLOBAL', allowed_scopes => ['orders:read'] });
my $key = req(POST => '/api/v1/admin/api-keys', token => $AT,
              json => { name => 'authz key', user_id => $ub->{id}, scopes => ['orders:read'] });
BAIL_OUT("api key: $key->{status} $key->{content}") unless $key->{json}{key};

my %CALLER = (
  super  => { token => $AT },
  ta     => { token => admin_token(email => $ta->{email}, password => $ta->{password}) },
  appA   => { token => client_token(id => $appA->{client_id}, secret => $appA->{client_secret}, slug => $tA->{slug}) },
  appG   => { token => client_token(id => $appG->{client_id}, secret => $appG->{client_secret}) },
  keyUB  => { headers => { 'X-API-Key' => $key->{json}{key} } },
);

my ($X, $x_guard) = extra_apache(<<"CONF", base());
ScaiKeyRevocationDelay 1
<Location /g/>
    SetHandler scaikey-whoami
    AuthType ScaiKey
</Location>
<Location /g/scope>
    Require scaikey-scope orders:read orders:write
</Location>
<Location /g/role>
    Require scaikey-role tenant_admin partner_admin
</Location>
<Location /g/group-name>
    Require scaikey-group Parents
</Location>
<Location /g/group-id>
    Require scaikey-group $child
</Location>
<Location /g/tenant-slug>
    Require scaikey-tenant $tA->{slug}
</Location>
<Location /g/tenant-id>
    Require scaikey-tenant $tB->{id}
</Location>
<Location /g/claim>
    Require scaikey-claim app_scope=TENANT
</Location>
<Location /g/claim-list>
    Require scaikey-claim scopes=orders:read
</Location>
<Location /g/all>
    <RequireAll>
        Require scaikey-scope orders:read
        Require scaikey-tenant $tA->{slug}
    </RequireAll>
</Location>
<Location /g/any>
    <RequireAny>
        Require scaikey-role super_admin
        Require scaikey-scope orders:write
    </RequireAny>
</Location>
<Location /g/none>
    <RequireAll>
        Require valid-user
        <RequireNone>
            Require scaikey-tenant $tB->{slug}
        </RequireNone>
    </RequireAll>
</Location>
<Location /g/valid>
    Require valid-user
</Location>
<Location /g/forbid>
    AuthzSendForbiddenOnFailure On
    Require scaikey-scope nope
</Location>
<Location /g/doc>
    ErrorDocument 401 "Sign in first"
    ErrorDocument 403 "Not for you"
    AuthzSendForbiddenOnFailure On
    Require scaikey-scope nope
</Location>
CONF
ok($X, 'server with the rules started') or BAIL_OUT('extra server did not start');

sub as {
  my ($who, $path) = @_;
  my $c = $CALLER{$who};
  return req(GET => $path, base => $X, (defined $c->{token} ? (token => $c->{token}) : ()),
             headers => $c->{headers} // {});
}

# path => { caller => expected status }
my @RULES = (
  [ '/g/scope',       { appA => 200, appG => 403, ta => 403, keyUB => 403, super => 403 } ],
  [ '/g/role',        { ta => 200, super => 403, appA => 403, keyUB => 403 } ],
  [ '/g/group-name',  { ta => 200, keyUB => 403, appA => 403, super => 403 } ],
  [ '/g/group-id',    { ta => 200, keyUB => 403 } ],
  [ '/g/tenant-slug', { ta => 200, appA => 200, appG => 403, keyUB => 403, super => 403 } ],
  [ '/g/tenant-id',   { keyUB => 200, ta => 403, appA => 403 } ],
  [ '/g/claim',       { appA => 200, appG => 403, ta => 403, keyUB => 403 } ],
  [ '/g/claim-list',  { keyUB => 200, appA => 403, appG => 403 } ],
  [ '/g/all',         { appA => 200, appG => 403, keyUB => 403, ta => 403 } ],
  [ '/g/any',         { super => 200, appA => 200, appG => 403, ta => 403, keyUB => 403 } ],
  [ '/g/none',        { ta => 200, appG => 200, appA => 200, keyUB => 403 } ],
  [ '/g/valid',       { map { $_ => 200 } keys %CALLER } ],
);

for my $rule (@RULES) {
  my ($path, $want) = @$rule;
  subtest "Require at $path" => sub {
    for my $who (sort keys %$want) {
      my $r = as($who, $path);
      is($r->{status}, $want->{$who}, "$who: $want->{$who}") or diag($r->{content});
    }
    is(req(GET => $path, base => $X)->{status}, 401, 'no credential: 401');
  };
}

subtest '403 answers say what is missing' => sub {
  my $r = as(appG => '/g/scope');
  is(www($r), 'Bearer error="insufficient_scope", scope="orders:read orders:write"', 'scope rule');
  is_deeply($r->{json}, { error => 'insufficient_scope', scope => 'orders:read orders:write' }, 'JSON body');
  like($r->{headers}{'content-type'} // '', qr{\Aapplication/json}, 'JSON content type');
  $r = as(super => '/g/role');
  is(www($r), 'Bearer error="insufficient_scope", error_description="requires role tenant_admin or partner_admin"',
     'role rule');
  $r = as(ta => '/g/any');
  is(www($r), 'Bearer error="insufficient_scope", error_description="requires role super_admin", '
            . 'scope="orders:write"', 'RequireAny: both alternatives');
  $r = as(appG => '/g/claim');
  like(www($r), qr/error_description="requires claim app_scope=TENANT"/, 'claim rule');
  $r = as(appA => '/g/forbid');
  is($r->{status}, 403, 'AuthzSendForbiddenOnFailure On: 403');
  is(www($r), 'Bearer error="insufficient_scope", scope="nope"', 'with the same header');
  is($r->{json}{error}, 'insufficient_scope', 'and body');
  $r = as(appA => '/g/doc');
  is($r->{status}, 403, 'ErrorDocument: 403');
  is($r->{content}, 'Not for you', 'the operator\'s document answers');
  is(www($r), 'Bearer error="insufficient_scope", scope="nope"', 'with the guard\'s header');
  $r = req(GET => '/g/doc', base => $X);
  is_deeply([ $r->{status}, $r->{content}, www($r) ], [ 401, 'Sign in first', 'Bearer realm="scaikey"' ],
            'ErrorDocument 401 for no credential');
  $r = as(appA => '/g/scope');
  ok(!defined $r->{headers}{'www-authenticate'}, 'no WWW-Authenticate on success');
  is($r->{json}{headers}{'X-ScaiKey-Tenant'}, $tA->{id}, 'the backend sees the caller');
};

subtest 'groups: nested membership, cached for the revocation delay' => sub {
  my $r = as(ta => '/g/valid');
  is($r->{json}{headers}{'X-ScaiKey-Groups'}, join(' ', sort($parents, $child)), 'X-ScaiKey-Groups lists both');
  is(as(ta => '/g/group-name')->{status}, 200, 'member of Parents through Child');
  psql("DELETE FROM group_members WHERE user_id = '$ta->{id}'");
  is(as(ta => '/g/group-name')->{status}, 200, 'removed from Child: still a member within the delay');
  select(undef, undef, undef, 1.3);
  is(as(ta => '/g/group-name')->{status}, 403, 'after the delay: no longer');
  is(as(ta => '/g/group-id')->{status}, 403, 'nor of Child');
  psql("INSERT INTO group_members (group_id, user_id) VALUES ('$child', '$ta->{id}')");
  select(undef, undef, undef, 1.3);
  is(as(ta => '/g/group-name')->{status}, 200, 'added again: a member again after the delay');
};

$x_guard->stop if $x_guard;
done_testing();
