#!/usr/bin/perl
# The admin API access matrix: for each admin tier and each resource, which objects are listed,
# read, changed, created and deleted, and with which status.
#
# A world is built through the API as the bootstrap super_admin:
#
#   P1 ── T1a (tenant_admin TA1a), T1b          P2 ── T2 (tenant_admin TA2)
#   partner_admin PA1 of P1
#   in each tenant: a user, a group, an identity provider, an agent, a TENANT application
#   a PARTNER application of P1 and of P2, a GLOBAL application
#
# Rules (policy: super_admin everything; partner_admin their partner's tenants; tenant_admin their
# own tenant):
#   * an object outside the caller's reach is not found (404), exactly as an id that does not
#     exist: never a 403 that would reveal it;
#   * a write the caller's tier may never make is 403 {"detail":"Access denied"} (partners for
#     anyone but the super_admin, tenants for a tenant_admin, GLOBAL applications for anyone but
#     the super_admin, PARTNER applications for a tenant_admin, changes to a visible object the
#     tier may not change);
#   * a create that names a tenant or partner outside the caller's reach is refused like one that
#     names a tenant or partner that does not exist (422 on that field), byte for byte.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my %PREFIX = (partners => 'prt_', tenants => 'tnt_', users => 'usr_', groups => 'grp_',
              applications => 'app_', 'identity-providers' => 'idp_', agents => 'agt_');
# the field each kind's PATCH changes
my %PATCH_FIELD = (partners => 'name', tenants => 'name', users => 'first_name', groups => 'description',
                   applications => 'description', 'identity-providers' => 'name', agents => 'description');

my $SA = admin_token();
my %W;        # world objects by name: { id, kind, res, tenant, partner }
my $seq = 0;

# ---------------------------------------------------------------------------
# Bodies

# A create body for a kind placed in a tenant (tenant kinds), a partner (tenants, PARTNER apps)
# or nowhere (partners, GLOBAL apps).
sub body_for {
  my ($kind, $place) = @_;
  my $n = ++$seq;
  my $t = $place->{tenant};
  my $p = $place->{partner};
  return { name => "Partner $n", slug => unique_slug('mx-p') } if $kind eq 'partners';
  return { name => "Tenant $n", slug => unique_slug('mx-t'), (defined $p ? (partner_id => $p) : ()) }
    if $kind eq 'tenants';
  return { tenant_id => $t, email => unique_email('mx-u'), first_name => "User$n" } if $kind eq 'users';
  return { tenant_id => $t, name => "Group $n" } if $kind eq 'groups';
  return { tenant_id => $t, name => "IdP $n", provider_type => 'OIDC' } if $kind eq 'identity-providers';
  return { tenant_id => $t, name => "Agent $n" } if $kind eq 'agents';
  return { name => "App $n", application_type => 'SPA', scope => 'TENANT', tenant_id => $t }
    if $kind eq 'app-tenant';
  return { name => "App $n", application_type => 'SPA', scope => 'PARTNER', partner_id => $p }
    if $kind eq 'app-partner';
  return { name => "App $n", application_type => 'SPA', scope => 'GLOBAL' } if $kind eq 'app-global';
  die "body_for: $kind\n";
}

sub res_of { my $k = shift; $k =~ /\Aapp-/ ? 'applications' : $k }

# Makes a world object as the super_admin and records it under $name.
sub make {
  my ($name, $kind, $place, %extra) = @_;
  my $body = { %{ body_for($kind, $place) }, %extra };
  my $o = admin_create($SA, res_of($kind), $body);
  $W{$name} = { %$o, kind => $kind, res => res_of($kind), tenant => $place->{tenant},
                partner => $place->{partner} };
  return $W{$name};
}

# ---------------------------------------------------------------------------
# The world

my @STATUSES;    # every status seen; checked for 5xx at the end
sub rq { my $r = admin_req(@_); push @STATUSES, [$r->{status}, "$_[1] $_[2]"]; return $r }

subtest 'the world is built through the API' => sub {
  make(P1 => 'partners', {});
  make(P2 => 'partners', {});
  make(T1a => 'tenants', { partner => $W{P1}{id} });
  make(T1b => 'tenants', { partner => $W{P1}{id} });
  make(T2 => 'tenants', { partner => $W{P2}{id} });
  for my $t (qw(T1a T1b T2)) {
    my $place = { tenant => $W{$t}{id}, partner => $W{$t}{partner_id} };
    make("U_$t", 'users', $place);
    make("G_$t", 'groups', $place);
    make("I_$t", 'identity-providers', $place);
    make("A_$t", 'agents', $place);
    make("AT_$t", 'app-tenant', $place);
  }
  make(AP_P1 => 'app-partner', { partner => $W{P1}{id} });
  make(AP_P2 => 'app-partner', { partner => $W{P2}{id} });
  make(AG => 'app-global', {});

  my $pw = 'Matrix-pass-' . int(rand(1e9));
  for my $a ([PA1 => 'partner_admin', { partner => $W{P1}{id} }, partner_id => $W{P1}{id}],
             [TA1a => 'tenant_admin', { tenant => $W{T1a}{id}, partner => $W{P1}{id} }, tenant_id => $W{T1a}{id}],
             [TA2 => 'tenant_admin', { tenant => $W{T2}{id}, partner => $W{P2}{id} }, tenant_id => $W{T2}{id}]) {
    my ($name, $role, $place, @where) = @$a;
    my $u = admin_create($SA, 'users', { email => unique_email('mx-' . lc $name), password => $pw,
                                         role => $role, first_name => $name, @where });
    $W{$name} = { %$u, kind => 'users', res => 'users', tenant => $place->{tenant}, partner => $place->{partner},
                  password => $pw };
    is_deeply([grep { $_ eq 'password' || /hash|secret/i } keys %$u], [], "$name: the created account shows no password or hash");
  }
  for my $n (sort keys %W) {
    like($W{$n}{id}, qr/\A\Q$PREFIX{$W{$n}{res}}\E[a-z0-9]{16}\z/, "$n has a $PREFIX{$W{$n}{res}} id");
  }
  is($W{T1a}{partner_id}, $W{P1}{id}, 'T1a is under P1');
  is($W{T2}{partner_id}, $W{P2}{id}, 'T2 is under P2');
  is($W{AT_T1a}{tenant_id}, $W{T1a}{id}, 'the TENANT app of T1a lives in T1a');
  is($W{AP_P1}{partner_id}, $W{P1}{id}, 'the PARTNER app of P1 lives at P1');
  is($W{PA1}{role}, 'partner_admin', 'PA1 is a partner_admin');
  ok(!defined $W{PA1}{tenant_id}, 'PA1 has no tenant');
  is($W{TA1a}{role}, 'tenant_admin', 'TA1a is a tenant_admin');
};

my %TOKEN = (super_admin => $SA);
subtest 'each admin logs in' => sub {
  for my $a ([partner_admin => 'PA1'], [tenant_admin => 'TA1a'], [tenant_admin_t2 => 'TA2']) {
    my ($j, $r) = admin_login(email => $W{$a->[1]}{email}, password => $W{$a->[1]}{password});
    is($r->{status}, 200, "$a->[1] logs in") or diag($r->{content});
    $TOKEN{$a->[0]} = $j && $j->{access_token};
    my $me = req(GET => '/api/v1/admin/auth/me', token => $TOKEN{$a->[0]});
    is($me->{json} && $me->{json}{id}, $W{$a->[1]}{id}, "$a->[1]: /me names the account");
  }
};
unless ($TOKEN{partner_admin} && $TOKEN{tenant_admin} && $W{AG}) {
  fail('the world could not be built: the matrix cannot run');
  done_testing();
  exit 1;
}

subtest 'an account with role user cannot use the admin API' => sub {
  my $pw = 'User-pass-' . int(rand(1e9));
  my $u = admin_create($SA, 'users', { tenant_id => $W{T1a}{id}, email => unique_email('mx-plain'),
                                       password => $pw });
  is($u->{role}, 'user', 'role user is the default');
  my ($j, $r) = admin_login(email => $u->{email}, password => $pw);
  is($r->{status}, 401, 'right password: 401');
  ok(!$j, 'no tokens');
  my (undef, $wrong) = admin_login(email => $u->{email}, password => "$pw-wrong");
  is($wrong->{status}, 401, 'wrong password: 401');
  is_deeply($r->{json}, $wrong->{json}, 'same answer as a wrong password');
  is(psql(sprintf("SELECT count(*) FROM sessions WHERE user_id = %s", sql_quote($u->{id}))), 0,
     'no session was opened');
};

# ---------------------------------------------------------------------------
# The matrix
#
# One row per role and kind: the object the role calls its own, the objects that are foreign to
# it, and the expected status of get / patch / delete / create on each. A create uses the own
# (foreign) object's placement; a delete with an expected 204 removes a fresh copy made at that
# placement, any other delete is tried on the world object itself (which must survive).

my @OPS = qw(get_own get_foreign patch_own patch_foreign delete_own delete_foreign create_own create_foreign);

my @MATRIX = (
  # role           kind                  own      foreign             get      patch    delete   create
  #                                                                   own frg  own frg  own frg  own frg
  [super_admin  => 'partners',           'P1',    ['P2'],             200,200, 200,200, 204,204, 201,201],
  [super_admin  => 'tenants',            'T1a',   ['T2'],             200,200, 200,200, 204,204, 201,201],
  [super_admin  => 'users',              'U_T1a', ['U_T2'],           200,200, 200,200, 204,204, 201,201],
  [super_admin  => 'groups',             'G_T1a', ['G_T2'],           200,200, 200,200, 204,204, 201,201],
  [super_admin  => 'identity-providers', 'I_T1a', ['I_T2'],           200,200, 200,200, 204,204, 201,201],
  [super_admin  => 'agents',             'A_T1a', ['A_T2'],           200,200, 200,200, 204,204, 201,201],
  [super_admin  => 'app-tenant',         'AT_T1a',['AT_T2'],          200,200, 200,200, 204,204, 201,201],
  [super_admin  => 'app-partner',        'AP_P1', ['AP_P2'],          200,200, 200,200, 204,204, 201,201],
  [super_admin  => 'app-global',         'AG',    [],                 200,undef, 200,undef, 204,undef, 201,undef],

  [partner_admin => 'partners',          'P1',    ['P2'],             404,404, 404,404, 404,404, 403,403],
  [partner_admin => 'tenants',           'T1a',   ['T2'],             200,404, 200,404, 204,404, 201,422],
  [partner_admin => 'users',             'U_T1a', ['U_T2'],           200,404, 200,404, 204,404, 201,422],
  [partner_admin => 'groups',            'G_T1a', ['G_T2'],           200,404, 200,404, 204,404, 201,422],
  [partner_admin => 'identity-providers','I_T1a', ['I_T2'],           200,404, 200,404, 204,404, 201,422],
  [partner_admin => 'agents',            'A_T1a', ['A_T2'],           200,404, 200,404, 204,404, 201,422],
  [partner_admin => 'app-tenant',        'AT_T1b',['AT_T2'],          200,404, 200,404, 204,404, 201,422],
  [partner_admin => 'app-partner',       'AP_P1', ['AP_P2'],          200,404, 200,404, 204,404, 201,422],
  [partner_admin => 'app-global',        'AG',    [],                 200,undef, 403,undef, 403,undef, 403,undef],

  [tenant_admin => 'partners',           'P1',    ['P2'],             404,404, 404,404, 404,404, 403,403],
  [tenant_admin => 'tenants',            'T1a',   ['T1b', 'T2'],      200,404, 200,404, 403,404, 403,403],
  [tenant_admin => 'users',              'U_T1a', ['U_T1b', 'U_T2'],  200,404, 200,404, 204,404, 201,422],
  [tenant_admin => 'groups',             'G_T1a', ['G_T1b', 'G_T2'],  200,404, 200,404, 204,404, 201,422],
  [tenant_admin => 'identity-providers', 'I_T1a', ['I_T1b', 'I_T2'],  200,404, 200,404, 204,404, 201,422],
  [tenant_admin => 'agents',             'A_T1a', ['A_T1b', 'A_T2'],  200,404, 200,404, 204,404, 201,422],
  [tenant_admin => 'app-tenant',         'AT_T1a',['AT_T1b', 'AT_T2'],200,404, 200,404, 204,404, 201,422],
  # the parent partner's PARTNER app is visible to the tenant_admin but not theirs to change
  [tenant_admin => 'app-partner',        'AP_P1', ['AP_P2'],          200,404, 403,404, 403,404, 403,403],
  [tenant_admin => 'app-global',         'AG',    [],                 200,undef, 403,undef, 403,undef, 403,undef],
);

# Which world objects each role's list shows (every other world object must be absent).
# undef: the list itself is refused with 403.
my %VISIBLE = (
  super_admin => { map { $_ => 'all' } qw(partners tenants users groups identity-providers agents applications) },
  partner_admin => {
    partners             => undef,
    tenants              => [qw(T1a T1b)],
    users                => [qw(U_T1a U_T1b TA1a PA1)],
    groups               => [qw(G_T1a G_T1b)],
    'identity-providers' => [qw(I_T1a I_T1b)],
    agents               => [qw(A_T1a A_T1b)],
    applications         => [qw(AG AP_P1 AT_T1a AT_T1b)],
  },
  tenant_admin => {
    partners             => undef,
    tenants              => [qw(T1a)],
    users                => [qw(U_T1a TA1a)],
    groups               => [qw(G_T1a)],
    'identity-providers' => [qw(I_T1a)],
    agents               => [qw(A_T1a)],
    applications         => [qw(AG AP_P1 AT_T1a)],
  },
);

# Where each role may reach, to check that a list shows nothing from outside (including objects
# made by other test files).
sub within_reach {
  my ($role, $res, $item) = @_;
  return 1 if $role eq 'super_admin';
  my %tenants = $role eq 'partner_admin' ? map { $W{$_}{id} => 1 } qw(T1a T1b) : ($W{T1a}{id} => 1);
  my $pid = $W{P1}{id};
  my $t = $item->{tenant_id};
  if ($res eq 'tenants') {
    return $tenants{ $item->{id} } ? 1 : 0;
  }
  if ($res eq 'applications') {
    return 1 if ($item->{scope} // '') eq 'GLOBAL';
    return ($item->{partner_id} // '') eq $pid ? 1 : 0 if ($item->{scope} // '') eq 'PARTNER';
    return defined $t && $tenants{$t} ? 1 : 0;
  }
  if ($res eq 'users' && !defined $t) {
    return $role eq 'partner_admin' && ($item->{partner_id} // '') eq $pid ? 1 : 0;
  }
  return defined $t && $tenants{$t} ? 1 : 0;
}

sub not_found_ok {
  my ($r, $res, $name) = @_;
  is($r->{status}, 404, "$name: 404") or diag(substr($r->{content}, 0, 300));
  my $ghost = rq($SA, 'GET', $res, $PREFIX{$res} . 'zz00000000000000');
  is_deeply($r->{json}, $ghost->{json}, "$name: the same answer as an id that does not exist")
    or diag($r->{content});
}

sub status_ok {
  my ($r, $want, $name, $res) = @_;
  if ($want == 404) {
    return not_found_ok($r, $res, $name);
  }
  is($r->{status}, $want, "$name: $want") or diag(substr($r->{content}, 0, 400));
  is_deeply($r->{json}, { detail => 'Access denied' }, "$name: detail Access denied") if $want == 403;
}

# where a world object lives, as a placement for body_for
sub place_of {
  my ($o) = @_;
  return { tenant => $o->{tenant},
           partner => $o->{res} eq 'partners' ? $o->{id} : $o->{res} eq 'tenants' ? $o->{partner_id} : $o->{partner} };
}

sub current { my ($o) = @_; rq($SA, 'GET', $o->{res}, $o->{id})->{json} }

# --- lists -----------------------------------------------------------------

for my $role (qw(super_admin partner_admin tenant_admin)) {
 subtest "lists: $role" => sub {
  for my $res (qw(partners tenants users groups identity-providers agents applications)) {
    my $want = $VISIBLE{$role}{$res};
    my ($items, $r) = admin_list_all($TOKEN{$role}, $res);
    push @STATUSES, [$r->{status}, "list $res"];
    if (!defined $want) {
      is($r->{status}, 403, "$role lists $res: 403");
      is_deeply($r->{json}, { detail => 'Access denied' }, "$role lists $res: detail Access denied");
      next;
    }
    is($r->{status}, 200, "$role lists $res: 200") or do { diag($r->{content}); next };
    my %listed = map { $_->{id} => 1 } @$items;
    my @world = sort grep { $W{$_}{res} eq $res } keys %W;
    my @expect = ref $want ? sort @$want : @world;
    my @seen = sort grep { $listed{ $W{$_}{id} } } @world;
    is_deeply(\@seen, \@expect, "$role lists $res: exactly the expected world objects (@expect)");
    my @outside = grep { !within_reach($role, $res, $_) } @$items;
    is(scalar @outside, 0, "$role lists $res: nothing from outside the role's reach")
      or diag(explain [map { $_->{id} } @outside]);
    is($r->{json}{pagination}{total}, scalar @$items, "$role lists $res: total counts what is listed");
    my %dup;
    is(scalar(grep { $dup{$_->{id}}++ } @$items), 0, "$role lists $res: no duplicates across pages");
    next if $role eq 'super_admin';
    # filters cannot widen the reach
    for my $f ([tenant_id => $W{T2}{id}], [partner_id => $W{P2}{id}]) {
      next if $res eq 'partners';
      my $fr = rq($TOKEN{$role}, 'GET', admin_path($res) . query_string(@$f));
      is($fr->{status}, 200, "$role lists $res filtered by a foreign $f->[0]: 200");
      is_deeply([ids_of($fr)], [], "$role lists $res filtered by a foreign $f->[0]: nothing");
      is($fr->{json} && $fr->{json}{pagination}{total}, 0, "$role lists $res filtered by a foreign $f->[0]: total 0");
    }
  }
 };
}

# --- get, patch, create, delete ---------------------------------------------

my %row_ops;
for my $row (@MATRIX) {
  my ($role, $kind, $own, $foreign, @want) = @$row;
  my %w;
  @w{@OPS} = @want;
  push @{ $row_ops{$role} }, { role => $role, kind => $kind, res => res_of($kind), own => $own,
                               foreign => $foreign, want => \%w };
}
my @ROWS = map { @{ $row_ops{$_} } } qw(super_admin partner_admin tenant_admin);

sub targets {
  my ($row, $which) = @_;
  return $which eq 'own' ? ($row->{own}) : @{ $row->{foreign} };
}

subtest 'get' => sub {
  for my $row (@ROWS) {
    for my $which (qw(own foreign)) {
      my $want = $row->{want}{"get_$which"} // next;
      for my $n (targets($row, $which)) {
        my $o = $W{$n};
        my $r = rq($TOKEN{ $row->{role} }, 'GET', $o->{res}, $o->{id});
        my $name = "$row->{role} GET $row->{kind} $n";
        status_ok($r, $want, $name, $o->{res});
        is($r->{json} && $r->{json}{id}, $o->{id}, "$name: the object itself") if $want == 200;
      }
    }
  }
};

subtest 'patch' => sub {
  for my $row (@ROWS) {
    for my $which (qw(own foreign)) {
      my $want = $row->{want}{"patch_$which"} // next;
      for my $n (targets($row, $which)) {
        my $o = $W{$n};
        my $f = $PATCH_FIELD{ $o->{res} };
        my $before = current($o);
        my $value = "patched $row->{role} " . ++$seq;
        my $r = rq($TOKEN{ $row->{role} }, 'PATCH', $o->{res}, $o->{id}, json => { $f => $value });
        my $name = "$row->{role} PATCH $row->{kind} $n";
        status_ok($r, $want, $name, $o->{res});
        my $after = current($o);
        if ($want == 200) {
          is($r->{json} && $r->{json}{$f}, $value, "$name: the answer shows the new $f");
          is($after->{$f}, $value, "$name: the new $f is stored");
        } else {
          is_deeply($after, $before, "$name: the object is unchanged");
        }
      }
    }
  }
};

subtest 'create' => sub {
  for my $row (@ROWS) {
    for my $which (qw(own foreign)) {
      my $want = $row->{want}{"create_$which"} // next;
      for my $n (targets($row, $which)) {
        my $o = $W{$n};
        # a new object where the target lives (for partners and tenants: beside it)
        my $body = body_for($row->{kind}, place_of($o));
        my $r = rq($TOKEN{ $row->{role} }, 'POST', $row->{res}, json => $body);
        my $name = "$row->{role} POST $row->{kind} beside $n";
        if ($want == 422) {
          # the tenant or partner named is out of reach: answered as if it did not exist
          my $field = exists $body->{tenant_id} ? 'tenant_id' : 'partner_id';
          is($r->{status}, 422, "$name: 422") or diag(substr($r->{content}, 0, 300));
          ok(find_verror($r, ['body', $field]), "$name: the error is on $field");
          my $ghost = rq($TOKEN{ $row->{role} }, 'POST', $row->{res},
                         json => { %$body, $field => ($field eq 'tenant_id' ? 'tnt_' : 'prt_') . 'zz00000000000000' });
          is_deeply($r->{json}, $ghost->{json}, "$name: the same answer as for a $field that does not exist");
        } else {
          status_ok($r, $want, $name, $row->{res});
        }
        my $made = $r->{status} == 201 && $r->{json} ? $r->{json} : undef;
        if ($want == 201) {
          like($made && $made->{id}, qr/\A\Q$PREFIX{$row->{res}}\E/, "$name: a new id");
          for my $k (grep { /_id\z/ } keys %$body) {
            is($made && $made->{$k}, $body->{$k}, "$name: $k as asked");
          }
          my $g = rq($SA, 'GET', $row->{res}, $made ? $made->{id} : 'none');
          is($g->{status}, 200, "$name: the new object exists");
        } else {
          my $k = exists $body->{email} ? 'email' : exists $body->{slug} ? 'slug' : 'name';
          my $table = { partners => 'partners', tenants => 'tenants', users => 'users', groups => 'groups',
                        applications => 'applications', 'identity-providers' => 'identity_providers',
                        agents => 'mcp_agents' }->{ $row->{res} };
          is(psql(sprintf('SELECT count(*) FROM %s WHERE %s = %s', $table, $k, sql_quote($body->{$k}))), 0,
             "$name: nothing was stored");
        }
      }
    }
  }
};

subtest 'delete' => sub {
  my @last;
  for my $row (@ROWS) {
    for my $which (qw(own foreign)) {
      my $want = $row->{want}{"delete_$which"} // next;
      for my $n (targets($row, $which)) {
        if ($want == 204) {
          my $o = $W{$n};
          my $key = "copy of $n " . ++$seq;
          my $copy = make($key, $row->{kind}, place_of($o));
          my $r = rq($TOKEN{ $row->{role} }, 'DELETE', $copy->{res}, $copy->{id});
          my $name = "$row->{role} DELETE $row->{kind} (a copy of $n)";
          is($r->{status}, 204, "$name: 204") or diag($r->{content});
          is($r->{content}, '', "$name: no body");
          is(rq($SA, 'GET', $copy->{res}, $copy->{id})->{status}, 404, "$name: gone");
          delete $W{$key};
        } else {
          push @last, [$row, $n, $want];
        }
      }
    }
  }
  # refusals are tried on the world objects themselves, last
  for my $l (@last) {
    my ($row, $n, $want) = @$l;
    my $o = $W{$n};
    my $r = rq($TOKEN{ $row->{role} }, 'DELETE', $o->{res}, $o->{id});
    my $name = "$row->{role} DELETE $row->{kind} $n";
    status_ok($r, $want, $name, $o->{res});
    is(rq($SA, 'GET', $o->{res}, $o->{id})->{status}, 200, "$name: still there");
  }
};

# ---------------------------------------------------------------------------
# Accounts: who may grant which role, and where accounts live

subtest 'only a higher tier grants a role' => sub {
  # actor => role asked => status of the create
  my %GRANT = (
    super_admin   => { user => 201, tenant_admin => 201, partner_admin => 201, super_admin => 201 },
    partner_admin => { user => 201, tenant_admin => 201, partner_admin => 403, super_admin => 403 },
    tenant_admin  => { user => 201, tenant_admin => 403, partner_admin => 403, super_admin => 403 },
  );
  my %PLACE = (user => { tenant_id => $W{T1a}{id} }, tenant_admin => { tenant_id => $W{T1a}{id} },
               partner_admin => { partner_id => $W{P1}{id} }, super_admin => {});
  for my $actor (qw(super_admin partner_admin tenant_admin)) {
    for my $role (qw(user tenant_admin partner_admin super_admin)) {
      my $email = unique_email('mx-grant');
      my $r = rq($TOKEN{$actor}, 'POST', 'users', json => { email => $email, role => $role, %{ $PLACE{$role} } });
      my $want = $GRANT{$actor}{$role};
      my $name = "$actor creates a $role";
      is($r->{status}, $want, "$name: $want") or diag($r->{content});
      if ($want == 201) {
        is($r->{json} && $r->{json}{role}, $role, "$name: role $role");
      } else {
        like($r->{json} && !ref $r->{json}{detail} ? $r->{json}{detail} : '', qr/\AAccess denied\b/,
             "$name: detail Access denied");
        is(psql(sprintf('SELECT count(*) FROM users WHERE email = %s', sql_quote($email))), 0,
           "$name: nothing stored");
      }
    }
  }

  # raising an existing account
  my %RAISE = (partner_admin => { tenant_admin => 200, partner_admin => 403 },
               tenant_admin  => { tenant_admin => 403 });
  for my $actor (sort keys %RAISE) {
    for my $role (sort keys %{ $RAISE{$actor} }) {
      my $u = admin_create($SA, 'users', { tenant_id => $W{T1a}{id}, email => unique_email('mx-raise') });
      my $body = { role => $role };
      my $r = rq($TOKEN{$actor}, 'PATCH', 'users', $u->{id}, json => $body);
      my $want = $RAISE{$actor}{$role};
      is($r->{status}, $want, "$actor raises a user to $role: $want") or diag($r->{content});
      is(current({ res => 'users', id => $u->{id} })->{role}, $want == 200 ? $role : 'user',
         "$actor raises a user to $role: stored role");
    }
  }

  # an admin does not manage accounts of their own tier or above
  my $r = rq($TOKEN{tenant_admin}, 'PATCH', 'users', $W{TA1a}{id}, json => { first_name => 'Self' });
  is($r->{status}, 403, 'a tenant_admin does not change their own admin account through the admin API');
  $r = rq($TOKEN{partner_admin}, 'PATCH', 'users', $W{TA1a}{id}, json => { first_name => 'Changed by PA' });
  is($r->{status}, 200, 'a partner_admin changes a tenant_admin of their partner');
  $r = rq($TOKEN{partner_admin}, 'PATCH', 'users', $W{TA2}{id}, json => { first_name => 'x' });
  not_found_ok($r, 'users', 'a partner_admin changes a tenant_admin of another partner');
  my $sa_id = req(GET => '/api/v1/admin/auth/me', token => $SA)->{json}{id};
  $r = rq($TOKEN{partner_admin}, 'GET', 'users', $sa_id // 'none');
  not_found_ok($r, 'users', 'a partner_admin reads the super_admin account');
};

subtest 'defaults of a scoped admin' => sub {
  my $r = rq($TOKEN{partner_admin}, 'POST', 'tenants', json => { name => 'PA tenant', slug => unique_slug('mx-pa') });
  is($r->{status}, 201, 'a partner_admin creates a tenant without naming a partner');
  is($r->{json} && $r->{json}{partner_id}, $W{P1}{id}, 'it is placed under their partner');
  $r = rq($TOKEN{tenant_admin}, 'POST', 'groups', json => { name => 'TA group' });
  is($r->{status}, 201, 'a tenant_admin creates a group without naming a tenant');
  is($r->{json} && $r->{json}{tenant_id}, $W{T1a}{id}, 'it is placed in their tenant');
  $r = rq($TOKEN{partner_admin}, 'POST', 'applications',
          json => { name => 'PA app', application_type => 'SPA', scope => 'PARTNER' });
  is($r->{status}, 201, 'a partner_admin creates a PARTNER app without naming a partner');
  is($r->{json} && $r->{json}{partner_id}, $W{P1}{id}, 'it belongs to their partner');
  $r = rq($TOKEN{partner_admin}, 'POST', 'groups', json => { name => 'PA group' });
  is($r->{status}, 422, 'a partner_admin must say which tenant a group goes to');
  ok(find_verror($r, ['body', 'tenant_id']), 'the error is on tenant_id');
};

subtest 'a tenant_admin tends only some fields of their tenant' => sub {
  my $before = current($W{T1a});
  for my $c ([status => 'SUSPENDED'], [slug => unique_slug('mx-ta')], [partner_id => $W{P2}{id}],
             [partner_id => $W{P1}{id} . 'x']) {
    my $r = rq($TOKEN{tenant_admin}, 'PATCH', 'tenants', $W{T1a}{id}, json => { $c->[0] => $c->[1] });
    is($r->{status}, 403, "PATCH $c->[0] of their own tenant: 403") or diag($r->{content});
  }
  is_deeply(current($W{T1a}), $before, 'the tenant is unchanged');
  my $r = rq($TOKEN{partner_admin}, 'PATCH', 'tenants', $W{T1a}{id}, json => { partner_id => $W{P2}{id} });
  is($r->{status}, 403, 'a partner_admin cannot move a tenant to another partner');
  is(current($W{T1a})->{partner_id}, $W{P1}{id}, 'the tenant stays under P1');
};

subtest 'no request got a server error' => sub {
  my @bad = grep { $_->[0] >= 500 } @STATUSES;
  is(scalar @bad, 0, scalar(@STATUSES) . ' answers, none 5xx') or diag(explain \@bad);
};

done_testing();
