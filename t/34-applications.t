#!/usr/bin/perl
# Applications (OAuth/OIDC clients) in the admin API: scope and ownership, client_id and the
# one-time client_secret (only its SHA-256 digest is stored), allowed_scopes, redirect URIs, and
# which admins see, register and change which applications.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $SA = admin_token();
my $n  = 0;
my $TAG = unique_slug('ap');      # application names of this run

my $P1  = admin_create($SA, 'partners', { name => 'Apps P1', slug => unique_slug('ap-p') });
my $P2  = admin_create($SA, 'partners', { name => 'Apps P2', slug => unique_slug('ap-p') });
my $T1a = admin_create($SA, 'tenants', { name => 'Apps T1a', slug => unique_slug('ap-t'), partner_id => $P1->{id} });
my $T1b = admin_create($SA, 'tenants', { name => 'Apps T1b', slug => unique_slug('ap-t'), partner_id => $P1->{id} });
my $T2  = admin_create($SA, 'tenants', { name => 'Apps T2', slug => unique_slug('ap-t'), partner_id => $P2->{id} });

# a registration body: a TENANT app of T1a unless told otherwise; an option set to undef leaves
# that field out
sub app_body {
  my (%o) = @_;
  my $scope = delete $o{scope} // 'TENANT';
  my %b = (name => 'App ' . ++$n . " $TAG", application_type => 'SPA', scope => $scope,
           ($scope eq 'TENANT' ? (tenant_id => $T1a->{id}) : $scope eq 'PARTNER' ? (partner_id => $P1->{id}) : ()), %o);
  delete @b{ grep { !defined $b{$_} } keys %b };
  return \%b;
}
sub post_app { admin_req($_[0], 'POST', 'applications', json => app_body(@_[1 .. $#_])) }
sub get_app  { admin_req($SA, 'GET', 'applications', $_[0]) }

sub account {
  my (%o) = @_;
  my $pw = 'Apps-pass-' . int(rand(1e9));
  my $u = admin_create($SA, 'users', { email => unique_email('ap-adm'), password => $pw, %o });
  return { %$u, token => admin_token(email => $u->{email}, password => $pw) };
}

sub v422_at {
  my ($r, $field, $type, $name) = @_;
  is($r->{status}, 422, "$name: 422") or return diag($r->{content});
  my $e = find_verror($r, ['body', $field]);
  ok($e, "$name: error at [body, $field]") or return diag($r->{content});
  is($e->{type}, $type, "$name: type $type") if defined $type;
}

# ---------------------------------------------------------------------------

my %secret_of;    # app id => the secret shown at creation

subtest 'client_id and client_secret at creation' => sub {
  my %ids;
  for my $type (qw(WEB SERVICE SPA NATIVE)) {
    my $r = post_app($SA, application_type => $type);
    is($r->{status}, 201, "$type: 201") or do { diag($r->{content}); next };
    my $a = $r->{json};
    like($a->{id}, qr/\Aapp_[a-z0-9]{16}\z/, "$type: id app_...");
    like($a->{client_id}, qr/\Aapp_[a-z0-9]{16}\z/, "$type: client_id generated, app_ and 16 lowercase alphanumerics");
    isnt($a->{client_id}, $a->{id}, "$type: the client_id is not the id");
    ok(!$ids{ $a->{client_id} }++, "$type: a client_id of its own");
    is($a->{application_type}, $type, "$type: application_type");
    is($a->{scope}, 'TENANT', "$type: scope");
    is($a->{tenant_id}, $T1a->{id}, "$type: tenant_id");
    is($a->{token_lifetime}, 3600, "$type: token_lifetime defaults to 3600");
    ok(!exists $a->{client_secret_hash}, "$type: no digest in the answer");
    my $hash = psql(sprintf('SELECT coalesce(client_secret_hash, \'(null)\') FROM applications WHERE id = %s',
                            sql_quote($a->{id})));
    if ($type eq 'WEB' || $type eq 'SERVICE') {
      my $s = $a->{client_secret};
      ok(defined $s && !ref $s && length($s) >= 32, "$type: a client_secret of at least 32 characters is shown");
      like($s // '', qr/\A[\x21-\x7e]+\z/, "$type: the secret is printable ASCII without spaces");
      is($hash, sha256_hex($s // ''), "$type: the database keeps sha256_hex(secret)");
      like($r->{headers}{'cache-control'} // '', qr/\bno-store\b/, "$type: the answer with the secret is not cached");
      $secret_of{ $a->{id} } = $s;
    } else {
      ok(!exists $a->{client_secret}, "$type: a public client gets no secret");
      is($hash, '(null)', "$type: no digest stored");
    }
  }
  my @s = values %secret_of;
  isnt($s[0], $s[1], 'two applications get different secrets') if @s == 2;
};

subtest 'the secret is shown once and stored nowhere in clear' => sub {
  ok(scalar keys %secret_of, 'secrets were issued') or return;
  for my $id (sort keys %secret_of) {
    my $s = $secret_of{$id};
    my $g = get_app($id);
    is($g->{status}, 200, "GET $id: 200");
    ok(!exists $g->{json}{client_secret}, "GET $id: no client_secret");
    ok(!exists $g->{json}{client_secret_hash}, "GET $id: no digest");
    unlike($g->{content}, qr/\Q$s\E/, "GET $id: the secret appears nowhere in the answer");
    unlike($g->{content}, qr/\Q${\ sha256_hex($s)}\E/, "GET $id: nor its digest");
    my $l = admin_req($SA, 'GET', admin_path('applications') . query_string(tenant_id => $T1a->{id}, per_page => 100));
    my ($item) = grep { $_->{id} eq $id } @{ $l->{json}{items} // [] };
    ok($item, "list: $id is listed");
    ok($item && !exists $item->{client_secret} && !exists $item->{client_secret_hash}, "list: $id without secret or digest");
    unlike($l->{content}, qr/\Q$s\E/, 'list: the secret appears nowhere');
    my $p = admin_req($SA, 'PATCH', 'applications', $id, json => { description => 'patched' });
    is($p->{status}, 200, "PATCH $id: 200");
    ok(!exists $p->{json}{client_secret}, "PATCH $id: no secret in the answer");
    is(psql(sprintf('SELECT client_secret_hash FROM applications WHERE id = %s', sql_quote($id))), sha256_hex($s),
       "PATCH $id: the stored digest is unchanged");

    is_deeply([db_tables_containing($s)], [], "the clear secret of $id is in no table, audit_log included");
    my $audit = psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'application.create' AND resource_id = %s",
                             sql_quote($id)));
    is($audit, 1, "the creation of $id is audited (and that row holds no secret)");
  }
  my $log = $ENV{SK_ERROR_LOG};
  if ($log && -r $log) {
    open(my $fh, '<', $log) or die "$log: $!";
    my $text = do { local $/; <$fh> };
    my @leaked = grep { index($text, $secret_of{$_}) >= 0 } keys %secret_of;
    is_deeply(\@leaked, [], 'no secret in the server error log');
  }
};

subtest 'client_id, client_secret and the digest cannot be set' => sub {
  for my $f (qw(client_id client_secret client_secret_hash)) {
    my $body = app_body(application_type => 'WEB', $f => ($f eq 'client_secret_hash' ? sha256_hex('x') : 'chosen-value-1234567890'));
    my $r = admin_req($SA, 'POST', 'applications', json => $body);
    v422_at($r, $f, 'extra_forbidden', "POST with $f");
    is(psql(sprintf('SELECT count(*) FROM applications WHERE name = %s', sql_quote($body->{name}))), 0, "POST with $f: not stored");
  }
  my ($id) = sort keys %secret_of;
  ok($id, 'an application with a secret to work on') or return;
  my $before = get_app($id)->{json};
  for my $f (qw(client_id client_secret client_secret_hash)) {
    my $r = admin_req($SA, 'PATCH', 'applications', $id, json => { $f => 'x' x 64 });
    v422_at($r, $f, 'extra_forbidden', "PATCH $f");
  }
  is_deeply(get_app($id)->{json}, $before, 'the application is unchanged');
};

subtest 'scope, type and owner are fixed at registration' => sub {
  my %apps = (
    TENANT  => post_app($SA)->{json},
    PARTNER => post_app($SA, scope => 'PARTNER')->{json},
    GLOBAL  => post_app($SA, scope => 'GLOBAL')->{json},
  );
  for my $scope (sort keys %apps) {
    my $a = $apps{$scope};
    ok($a && $a->{id}, "a $scope application") or next;
    my $before = get_app($a->{id})->{json};
    for my $c ([scope => 'GLOBAL'], [scope => 'PARTNER'], [scope => 'TENANT'], [application_type => 'WEB'],
               [tenant_id => $T1b->{id}], [partner_id => $P2->{id}], [tenant_id => undef], [partner_id => undef]) {
      my $r = admin_req($SA, 'PATCH', 'applications', $a->{id}, json => { $c->[0] => $c->[1] });
      v422_at($r, $c->[0], 'extra_forbidden', "$scope application: PATCH $c->[0]=" . ($c->[1] // 'null'));
    }
    my $r = admin_req($SA, 'PATCH', 'applications', $a->{id}, json => { scope => $scope, name => 'Renamed' });
    v422_at($r, 'scope', 'extra_forbidden', "$scope application: PATCH even of the same scope");
    is_deeply(get_app($a->{id})->{json}, $before, "$scope application: unchanged");
  }
  is($apps{PARTNER} && $apps{PARTNER}{partner_id}, $P1->{id}, 'the PARTNER application belongs to P1');
  ok($apps{PARTNER} && !defined $apps{PARTNER}{tenant_id}, 'and to no tenant');
  ok($apps{GLOBAL} && !defined $apps{GLOBAL}{tenant_id} && !defined $apps{GLOBAL}{partner_id},
     'the GLOBAL application belongs to no partner or tenant');

  # the owner must match the scope
  my @bad = (
    [{ scope => 'GLOBAL', tenant_id => $T1a->{id} }, 'scope'],
    [{ scope => 'GLOBAL', partner_id => $P1->{id} }, 'scope'],
    [{ scope => 'PARTNER', partner_id => undef }, 'partner_id'],
    [{ scope => 'PARTNER', tenant_id => $T1a->{id} }, 'partner_id'],
    [{ scope => 'TENANT', tenant_id => undef }, 'tenant_id'],
    [{ scope => 'TENANT', partner_id => $P1->{id} }, 'tenant_id'],
    [{ scope => 'TENANT', tenant_id => 'tnt_zz00000000000000' }, 'tenant_id'],
    [{ scope => 'PARTNER', partner_id => 'prt_zz00000000000000' }, 'partner_id'],
    [{ scope => 'tenant' }, 'scope'],
    [{ scope => 'PLATFORM' }, 'scope'],
    [{ application_type => 'MACHINE' }, 'application_type'],
  );
  for my $b (@bad) {
    my ($o, $field) = @$b;
    my $body = app_body(%$o);
    my $r = admin_req($SA, 'POST', 'applications', json => $body);
    my $shown = join(', ', map { "$_=" . ($o->{$_} // 'none') } sort keys %$o);
    v422_at($r, $field, undef, "POST $shown");
    is(psql(sprintf('SELECT count(*) FROM applications WHERE name = %s', sql_quote($body->{name}))), 0, "POST $shown: not stored");
  }
};

subtest 'allowed_scopes: PATCH replaces the list' => sub {
  my $r = post_app($SA, allowed_scopes => [qw(openid profile email)]);
  is($r->{status}, 201, 'created with three scopes') or return;
  my $id = $r->{json}{id};
  is_deeply($r->{json}{allowed_scopes}, [qw(openid profile email)], 'the three scopes, in order');
  my $p = admin_req($SA, 'PATCH', 'applications', $id, json => { allowed_scopes => [qw(offline_access)] });
  is($p->{status}, 200, 'PATCH with another list');
  is_deeply($p->{json}{allowed_scopes}, ['offline_access'], 'the answer holds only the new list');
  is_deeply(get_app($id)->{json}{allowed_scopes}, ['offline_access'], 'stored: replaced, not merged');
  $p = admin_req($SA, 'PATCH', 'applications', $id, json => { name => 'Only the name' });
  is_deeply($p->{json}{allowed_scopes}, ['offline_access'], 'a PATCH without the field keeps it');
  $p = admin_req($SA, 'PATCH', 'applications', $id, json => { allowed_scopes => [qw(openid admin:read)] });
  is_deeply(get_app($id)->{json}{allowed_scopes}, [qw(openid admin:read)], 'replaced again');
  $p = admin_req($SA, 'PATCH', 'applications', $id, json => { allowed_scopes => [] });
  is($p->{status}, 200, 'PATCH with an empty list');
  is_deeply(get_app($id)->{json}{allowed_scopes}, [], 'stored empty');
  for my $bad ([undef, 'list_type'], ['openid', 'list_type'], [{ openid => 1 }, 'list_type'], [[1], 'string_type'],
               [[undef], 'string_type'], [[''], 'string_type']) {
    my $r2 = admin_req($SA, 'PATCH', 'applications', $id, json => { allowed_scopes => $bad->[0] });
    v422_at($r2, 'allowed_scopes', $bad->[1], 'PATCH allowed_scopes=' . JSON::PP->new->allow_nonref->encode($bad->[0]));
  }
  is_deeply(get_app($id)->{json}{allowed_scopes}, [], 'the refused PATCHes changed nothing');
};

subtest 'redirect URIs are exact absolute URIs' => sub {
  my @good = ('https://app.example.test/callback', 'http://localhost:8080/cb', 'https://app.example.test/cb?x=1&y=2',
              'com.example.app:/oauth2redirect', 'http://127.0.0.1:53124/', 'https://app.example.test');
  my $r = post_app($SA, application_type => 'WEB', redirect_uris => \@good, post_logout_redirect_uris => [$good[0]]);
  is($r->{status}, 201, 'exact absolute URIs are accepted') or diag($r->{content});
  is_deeply($r->{json} && $r->{json}{redirect_uris}, \@good, 'stored as given, in order');
  my $id = $r->{json} && $r->{json}{id};
  my @bad = ('https://*.example.test/cb', 'https://app.example.test/cb/*', 'https://app.example.test/*',
             'https://app.example.test/cb#frag', 'https://app.example.test/cb#', '/relative/callback', 'callback',
             'app.example.test/cb', '//app.example.test/cb', 'https:/app.example.test/cb', 'https:app.example.test',
             'https://', 'https:///cb', ' https://app.example.test/cb', 'https://app.example.test/c b',
             "https://app.example.test/cb\n", '*', ':/x');
  for my $field (qw(redirect_uris post_logout_redirect_uris)) {
    for my $u (@bad) {
      (my $shown = $u) =~ s/\n/\\n/g;
      my $body = app_body(application_type => 'WEB', $field => [$good[0], $u]);
      my $c = admin_req($SA, 'POST', 'applications', json => $body);
      v422_at($c, $field, undef, "POST $field with '$shown'");
      ok(!exists(($c->{json} // {})->{client_secret}), "POST $field with '$shown': no secret handed out");
      is(psql(sprintf('SELECT count(*) FROM applications WHERE name = %s', sql_quote($body->{name}))), 0,
         "POST $field with '$shown': not stored");
      next unless $id;
      my $p = admin_req($SA, 'PATCH', 'applications', $id, json => { $field => [$u] });
      v422_at($p, $field, undef, "PATCH $field to '$shown'");
    }
  }
  is_deeply($id ? get_app($id)->{json}{redirect_uris} : undef, \@good, 'the refused PATCHes left the URIs alone');
  my $p = admin_req($SA, 'PATCH', 'applications', $id // 'none', json => { redirect_uris => ['https://other.example.test/cb'] });
  is($p->{status}, 200, 'PATCH with another exact URI');
  is_deeply(get_app($id // 'none')->{json}{redirect_uris}, ['https://other.example.test/cb'], 'the list is replaced');
};

# ---------------------------------------------------------------------------
# Who sees and changes which applications

my $PA1  = account(role => 'partner_admin', partner_id => $P1->{id});
my $TA1a = account(role => 'tenant_admin', tenant_id => $T1a->{id});

my %A;
$A{global}  = post_app($SA, scope => 'GLOBAL', application_type => 'SERVICE')->{json};
$A{p1}      = post_app($SA, scope => 'PARTNER', partner_id => $P1->{id})->{json};
$A{p2}      = post_app($SA, scope => 'PARTNER', partner_id => $P2->{id})->{json};
$A{t1a}     = post_app($SA, tenant_id => $T1a->{id})->{json};
$A{t1b}     = post_app($SA, tenant_id => $T1b->{id})->{json};
$A{t2}      = post_app($SA, tenant_id => $T2->{id})->{json};

# role => application => expected status of GET, PATCH, DELETE (a DELETE that should succeed is
# tried on a copy)
my %SEE = (
  #                    get  patch delete
  tenant_admin  => { global => [200, 403, 403], p1 => [200, 403, 403], p2 => [404, 404, 404],
                     t1a => [200, 200, 204], t1b => [404, 404, 404], t2 => [404, 404, 404] },
  partner_admin => { global => [200, 403, 403], p1 => [200, 200, 204], p2 => [404, 404, 404],
                     t1a => [200, 200, 204], t1b => [200, 200, 204], t2 => [404, 404, 404] },
);
my %TOK = (tenant_admin => $TA1a->{token}, partner_admin => $PA1->{token});

subtest "what each admin lists" => sub {
  for my $role (sort keys %SEE) {
    my ($items, $r) = admin_list_all($TOK{$role}, 'applications');
    is($r->{status}, 200, "$role lists applications") or next;
    my %listed = map { $_->{id} => 1 } @$items;
    my @want = sort grep { $SEE{$role}{$_}[0] == 200 } keys %A;
    is_deeply([sort grep { $listed{ $A{$_}{id} } } keys %A], \@want, "$role lists exactly @want of these");
    my @foreign = grep {
      my $s = $_->{scope};
      !($s eq 'GLOBAL'
        || ($s eq 'PARTNER' && $_->{partner_id} eq $P1->{id})
        || ($s eq 'TENANT' && ($_->{tenant_id} eq $T1a->{id} || ($role eq 'partner_admin' && $_->{tenant_id} eq $T1b->{id}))))
    } @$items;
    is(scalar @foreign, 0, "$role: nothing else from outside their reach") or diag(explain [map { $_->{id} } @foreign]);
    ok(!(grep { exists $_->{client_secret} || exists $_->{client_secret_hash} } @$items), "$role: no secrets in the list");
    # filters narrow, never widen
    my $g = admin_req($TOK{$role}, 'GET', admin_path('applications') . query_string(scope => 'GLOBAL', per_page => 100));
    ok((grep { $_ eq $A{global}{id} } ids_of($g)), "$role: scope=GLOBAL lists the GLOBAL application");
    ok(!(grep { $_->{scope} ne 'GLOBAL' } @{ $g->{json}{items} // [] }), "$role: scope=GLOBAL lists only GLOBAL ones");
    my $f = admin_req($TOK{$role}, 'GET', admin_path('applications') . query_string(partner_id => $P2->{id}));
    is_deeply([ids_of($f)], [], "$role: partner_id of another partner lists nothing");
    $f = admin_req($TOK{$role}, 'GET', admin_path('applications') . query_string(tenant_id => $T2->{id}));
    is_deeply([ids_of($f)], [], "$role: tenant_id of another partner's tenant lists nothing");
    $f = admin_req($TOK{$role}, 'GET', admin_path('applications') . query_string(application_type => 'SERVICE', per_page => 100));
    ok(!(grep { $_->{application_type} ne 'SERVICE' } @{ $f->{json}{items} // [] }), "$role: application_type=SERVICE lists only SERVICE ones");
    ok((grep { $_ eq $A{global}{id} } ids_of($f)), "$role: ... including the GLOBAL SERVICE application");
  }
};

subtest 'what each admin reads, changes and deletes' => sub {
  for my $role (sort keys %SEE) {
    for my $k (sort keys %A) {
      my ($g, $pt, $dl) = @{ $SEE{$role}{$k} };
      my $id = $A{$k}{id};
      my $r = admin_req($TOK{$role}, 'GET', 'applications', $id);
      is($r->{status}, $g, "$role GET $k: $g") or diag($r->{content});
      ok(!exists(($r->{json} // {})->{client_secret}), "$role GET $k: no secret") if $g == 200;
      my $before = get_app($id)->{json};
      my $name = "Renamed by $role " . ++$n;
      $r = admin_req($TOK{$role}, 'PATCH', 'applications', $id, json => { name => $name });
      is($r->{status}, $pt, "$role PATCH $k: $pt") or diag($r->{content});
      is_deeply($r->{json}, { detail => 'Access denied' }, "$role PATCH $k: Access denied") if $pt == 403;
      is_deeply($r->{json}, get_app('app_zz00000000000000')->{json}, "$role PATCH $k: the plain not-found answer")
        if $pt == 404;
      is(get_app($id)->{json}{name}, $pt == 200 ? $name : $before->{name}, "$role PATCH $k: stored name");
      my $target = $id;
      if ($dl == 204) {
        my %own = $A{$k}{scope} eq 'TENANT' ? (tenant_id => $A{$k}{tenant_id}) : (partner_id => $A{$k}{partner_id});
        $target = post_app($SA, scope => $A{$k}{scope}, %own)->{json}{id};
      }
      $r = admin_req($TOK{$role}, 'DELETE', 'applications', $target);
      is($r->{status}, $dl, "$role DELETE $k: $dl") or diag($r->{content});
      is(get_app($target)->{status}, $dl == 204 ? 404 : 200, "$role DELETE $k: " . ($dl == 204 ? 'gone' : 'still there'));
    }
  }
};

subtest 'what each admin registers' => sub {
  # role => [what, body options, expected status]
  my @cases = (
    [tenant_admin  => 'a TENANT app for their tenant',          { tenant_id => $T1a->{id} },                    201],
    [tenant_admin  => 'a TENANT app without naming the tenant', { tenant_id => undef },                         201],
    [tenant_admin  => 'a TENANT app for a sibling tenant',      { tenant_id => $T1b->{id} },                    422],
    [tenant_admin  => "a TENANT app for another partner's tenant", { tenant_id => $T2->{id} },                  422],
    [tenant_admin  => 'a PARTNER app for their partner',        { scope => 'PARTNER', partner_id => $P1->{id} }, 403],
    [tenant_admin  => 'a PARTNER app for another partner',      { scope => 'PARTNER', partner_id => $P2->{id} }, 403],
    [tenant_admin  => 'a GLOBAL app',                           { scope => 'GLOBAL' },                          403],
    [partner_admin => 'a PARTNER app for their partner',        { scope => 'PARTNER', partner_id => $P1->{id} }, 201],
    [partner_admin => 'a PARTNER app without naming the partner', { scope => 'PARTNER', partner_id => undef },  201],
    [partner_admin => 'a TENANT app in one of their tenants',   { tenant_id => $T1b->{id} },                    201],
    [partner_admin => 'a PARTNER app for another partner',      { scope => 'PARTNER', partner_id => $P2->{id} }, 422],
    [partner_admin => "a TENANT app in another partner's tenant", { tenant_id => $T2->{id} },                   422],
    [partner_admin => 'a GLOBAL app',                           { scope => 'GLOBAL' },                          403],
    [super_admin   => 'a GLOBAL app',                           { scope => 'GLOBAL' },                          201],
  );
  my %tok = (%TOK, super_admin => $SA);
  for my $c (@cases) {
    my ($role, $what, $o, $want) = @$c;
    my $body = app_body(application_type => 'WEB', %$o);
    my $r = admin_req($tok{$role}, 'POST', 'applications', json => $body);
    is($r->{status}, $want, "$role registers $what: $want") or diag($r->{content});
    my $stored = psql(sprintf('SELECT count(*) FROM applications WHERE name = %s', sql_quote($body->{name})));
    if ($want == 201) {
      is($stored, 1, "$role registers $what: stored");
      my $scope = $body->{scope};
      my $owner = $scope eq 'TENANT' ? ($body->{tenant_id} // $T1a->{id}) : $scope eq 'PARTNER' ? ($body->{partner_id} // $P1->{id}) : undef;
      my $f = $scope eq 'TENANT' ? 'tenant_id' : 'partner_id';
      is($r->{json}{$f}, $owner, "$role registers $what: owned by $f " . ($owner // 'none')) if defined $owner;
      ok(defined $r->{json}{client_secret}, "$role registers $what: the secret is shown to its creator");
    } else {
      is($stored, 0, "$role registers $what: nothing stored");
      ok(!exists(($r->{json} // {})->{client_secret}), "$role registers $what: no secret handed out");
      is_deeply($r->{json}, { detail => 'Access denied' }, "$role registers $what: Access denied") if $want == 403;
      ok(find_verror($r, ['body', exists $o->{partner_id} ? 'partner_id' : 'tenant_id']),
         "$role registers $what: refused like an owner that does not exist") if $want == 422;
    }
  }
};

subtest 'a tenant_admin changes only what may change on their TENANT app' => sub {
  my $a = post_app($TA1a->{token}, application_type => 'WEB', tenant_id => undef);
  is($a->{status}, 201, 'the tenant_admin registers an app') or return;
  my $id = $a->{json}{id};
  my $s = $a->{json}{client_secret};
  is(psql(sprintf('SELECT client_secret_hash FROM applications WHERE id = %s', sql_quote($id))), sha256_hex($s // ''),
     'its digest is stored');
  my $p = admin_req($TA1a->{token}, 'PATCH', 'applications', $id,
                    json => { allowed_scopes => ['openid'], redirect_uris => ['https://ta.example.test/cb'], token_lifetime => 600 });
  is($p->{status}, 200, 'scopes, redirect URIs and token lifetime change');
  is_deeply([@{ $p->{json} }{qw(allowed_scopes redirect_uris token_lifetime)}], [['openid'], ['https://ta.example.test/cb'], 600],
            'the new values');
  for my $f ([scope => 'GLOBAL'], [scope => 'PARTNER'], [tenant_id => $T1b->{id}], [application_type => 'SPA']) {
    my $r = admin_req($TA1a->{token}, 'PATCH', 'applications', $id, json => { $f->[0] => $f->[1] });
    v422_at($r, $f->[0], 'extra_forbidden', "the tenant_admin PATCHes $f->[0]");
  }
  is(get_app($id)->{json}{scope}, 'TENANT', 'the app stays TENANT');
  is(get_app($id)->{json}{tenant_id}, $T1a->{id}, 'in the same tenant');
};

done_testing();
