#!/usr/bin/perl
# Platform tokens on the admin API.
#
# A GLOBAL confidential application's client_credentials token (POST /api/v1/platform/oauth/token)
# carries platform_token: true and reaches the whole admin API, across every partner and tenant,
# within its scopes:
#
#   no admin scope   every admin route: 403 {"detail":"Platform token requires admin:read or admin:write scope"}
#   admin:read       reads 200; writes 403 {"detail":"Platform token requires admin:write scope"}
#   admin:write      reads and writes succeed
#
# A TENANT or PARTNER application's client_credentials token is not a platform token: 403
# {"detail":"Access denied"} on every admin route. A token of a suspended or deleted application
# stops working at once (401), and so does an expired one.
#
# Every admin route is listed below (@ROUTES); the list is checked against the published OpenAPI
# document and against the server's route tables, so that a new route cannot go untested.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $ADMIN        = '/api/v1/admin';
my $SCOPE_DETAIL = 'Platform token requires admin:read or admin:write scope';
my $WRITE_DETAIL = 'Platform token requires admin:write scope';
my $DENIED       = 'Access denied';
my $TAG          = unique_slug('pt');
my $SETTING      = 'sk_platform_token_test_' . ($TAG =~ s/\W/_/gr);

# ---------------------------------------------------------------------------
# Clean-up, also when the test dies or is interrupted

my @UNDO;
sub on_exit { push @UNDO, $_[0] }
END {
  local ($?, $@);
  while (my $f = pop @UNDO) { eval { $f->() } }
}
$SIG{INT} = $SIG{TERM} = sub { exit 1 };
on_exit(sub { psql('UPDATE platform_settings SET settings = settings - ' . sql_quote($SETTING)) });

my $SA = admin_token();
my $seq = 0;
sub n { ++$seq }

my @STATUSES;    # every answer to a platform or application token, checked for 5xx at the end
sub call {
  my ($token, $method, $path, %o) = @_;
  my $r = req($method, $path, token => $token, %o);
  push @STATUSES, [$r->{status}, "$method $path"];
  return $r;
}

# ---------------------------------------------------------------------------
# Fixtures, made by the bootstrap super_admin

sub sa_post {
  my ($path, $body) = @_;
  my $r = req(POST => "$ADMIN$path", token => $SA, json => $body);
  die "POST $path: $r->{status} $r->{content}\n" unless $r->{status} =~ /\A20[01]\z/ && ref $r->{json} eq 'HASH';
  return $r->{json};
}

sub mk { my ($res, $body) = @_; admin_create($SA, $res, $body) }

sub fresh_partner { mk(partners => { name => 'PT partner ' . n(), slug => unique_slug('pt-p') }) }
sub fresh_tenant {
  my ($w) = @_;
  mk(tenants => { name => 'PT tenant ' . n(), slug => unique_slug('pt-t'), partner_id => $w->{partner}{id} });
}
sub fresh_user {
  my ($w, %o) = @_;
  mk(users => { tenant_id => $w->{tenant}{id}, email => unique_email('pt-u'), first_name => 'Pat', %o });
}
sub fresh_group { mk(groups => { tenant_id => $_[0]{tenant}{id}, name => 'PT group ' . n() }) }
sub fresh_app {
  mk(applications => { name => 'PT app ' . n(), application_type => 'SERVICE', scope => 'TENANT',
                       tenant_id => $_[0]{tenant}{id} });
}
sub fresh_idp { mk('identity-providers' => { tenant_id => $_[0]{tenant}{id}, name => 'PT idp ' . n(), provider_type => 'OIDC' }) }
sub fresh_agent { mk(agents => { tenant_id => $_[0]{tenant}{id}, name => 'PT agent ' . n() }) }
sub fresh_key { sa_post('/api-keys', { name => 'PT key ' . n(), user_id => $_[0]{user}{id} }) }

# A live admin console session of a new tenant_admin of the world's tenant.
sub fresh_session {
  my ($w) = @_;
  my $pw = 'Pt-session-' . int(rand(1e9));
  my $u = fresh_user($w, role => 'tenant_admin', password => $pw);
  my ($j, $r) = admin_login(email => $u->{email}, password => $pw);
  die "login of $u->{email}: $r->{status} $r->{content}\n" unless $j;
  my (undef, $c) = jwt_parts($j->{access_token});
  die "no sid in the access token\n" unless $c && $c->{sid};
  return { id => $c->{sid}, user => $u };
}

# A world: a partner, a tenant under it, and one of everything in that tenant.
sub make_world {
  my %w;
  $w{partner} = fresh_partner();
  $w{tenant}  = fresh_tenant(\%w);
  $w{user}    = fresh_user(\%w);
  $w{group}   = fresh_group(\%w);
  $w{child}   = fresh_group(\%w);
  sa_post("/groups/$w{group}{id}/members", { user_id => $w{user}{id} });
  sa_post("/groups/$w{group}{id}/nested", { child_group_id => $w{child}{id} });
  $w{app}     = fresh_app(\%w);
  $w{idp}     = fresh_idp(\%w);
  $w{agent}   = fresh_agent(\%w);
  $w{key}     = fresh_key(\%w);
  $w{session} = fresh_session(\%w);
  $w{audit_id} = psql("SELECT max(id) FROM audit_log WHERE action = 'group.create' AND resource_id = "
                      . sql_quote($w{group}{id}));
  die "no audit row for the world's group\n" unless $w{audit_id};
  return \%w;
}

# ---------------------------------------------------------------------------
# Every admin route: method, path (below /api/v1/admin), read or write, the status of success,
# and what the call needs (path parameters and a body) in a world.

use constant { R => 'read', W => 'write' };

my @ROUTES = (
  # partners
  [GET    => '/partners',                                   R, 200],
  [POST   => '/partners',                                   W, 201, sub { (body => { name => 'PT partner ' . n(), slug => unique_slug('pt-p') }) }],
  [GET    => '/partners/{partner_id}',                      R, 200, sub { (partner_id => $_[0]{partner}{id}) }],
  [PATCH  => '/partners/{partner_id}',                      W, 200, sub { (partner_id => fresh_partner()->{id}, body => { name => 'PT renamed ' . n() }) }],
  [DELETE => '/partners/{partner_id}',                      W, 204, sub { (partner_id => fresh_partner()->{id}) }],
  # tenants
  [GET    => '/tenants',                                    R, 200],
  [POST   => '/tenants',                                    W, 201, sub { (body => { name => 'PT tenant ' . n(), slug => unique_slug('pt-t'), partner_id => $_[0]{partner}{id} }) }],
  [GET    => '/tenants/{tenant_id}',                        R, 200, sub { (tenant_id => $_[0]{tenant}{id}) }],
  [PATCH  => '/tenants/{tenant_id}',                        W, 200, sub { (tenant_id => fresh_tenant($_[0])->{id}, body => { name => 'PT renamed ' . n() }) }],
  [DELETE => '/tenants/{tenant_id}',                        W, 204, sub { (tenant_id => fresh_tenant($_[0])->{id}) }],
  # users
  [GET    => '/users',                                      R, 200],
  [POST   => '/users',                                      W, 201, sub { (body => { tenant_id => $_[0]{tenant}{id}, email => unique_email('pt-new') }) }],
  [GET    => '/users/{user_id}',                            R, 200, sub { (user_id => $_[0]{user}{id}) }],
  [PATCH  => '/users/{user_id}',                            W, 200, sub { (user_id => fresh_user($_[0])->{id}, body => { first_name => 'Renamed' . n() }) }],
  [DELETE => '/users/{user_id}',                            W, 204, sub { (user_id => fresh_user($_[0])->{id}) }],
  [POST   => '/users/{user_id}/reset-password',             W, 200, sub { (user_id => fresh_user($_[0])->{id}, body => {}) }],
  [POST   => '/users/{user_id}/mfa/disable',                W, 200, sub { (user_id => fresh_user($_[0])->{id}) }],
  [GET    => '/users/{user_id}/sessions',                   R, 200, sub { (user_id => $_[0]{session}{user}{id}) }],
  [GET    => '/users/{user_id}/groups',                     R, 200, sub { (user_id => $_[0]{user}{id}) }],
  # groups
  [GET    => '/groups',                                     R, 200],
  [POST   => '/groups',                                     W, 201, sub { (body => { tenant_id => $_[0]{tenant}{id}, name => 'PT group ' . n() }) }],
  [GET    => '/groups/{group_id}',                          R, 200, sub { (group_id => $_[0]{group}{id}) }],
  [PATCH  => '/groups/{group_id}',                          W, 200, sub { (group_id => fresh_group($_[0])->{id}, body => { description => 'patched ' . n() }) }],
  [DELETE => '/groups/{group_id}',                          W, 204, sub { (group_id => fresh_group($_[0])->{id}) }],
  [GET    => '/groups/{group_id}/members',                  R, 200, sub { (group_id => $_[0]{group}{id}) }],
  [POST   => '/groups/{group_id}/members',                  W, 201, sub { (group_id => fresh_group($_[0])->{id}, body => { user_id => fresh_user($_[0])->{id} }) }],
  [DELETE => '/groups/{group_id}/members/{user_id}',        W, 204, sub {
     my $g = fresh_group($_[0]);
     my $u = fresh_user($_[0]);
     sa_post("/groups/$g->{id}/members", { user_id => $u->{id} });
     (group_id => $g->{id}, user_id => $u->{id});
   }],
  [GET    => '/groups/{group_id}/nested',                   R, 200, sub { (group_id => $_[0]{group}{id}) }],
  [POST   => '/groups/{group_id}/nested',                   W, 201, sub { (group_id => fresh_group($_[0])->{id}, body => { child_group_id => fresh_group($_[0])->{id} }) }],
  [DELETE => '/groups/{group_id}/nested/{child_group_id}',  W, 204, sub {
     my $g = fresh_group($_[0]);
     my $c = fresh_group($_[0]);
     sa_post("/groups/$g->{id}/nested", { child_group_id => $c->{id} });
     (group_id => $g->{id}, child_group_id => $c->{id});
   }],
  # applications
  [GET    => '/applications',                               R, 200],
  [POST   => '/applications',                               W, 201, sub { (body => { name => 'PT app ' . n(), application_type => 'SERVICE', scope => 'TENANT', tenant_id => $_[0]{tenant}{id} }) }],
  [GET    => '/applications/{app_id}',                      R, 200, sub { (app_id => $_[0]{app}{id}) }],
  [PATCH  => '/applications/{app_id}',                      W, 200, sub { (app_id => fresh_app($_[0])->{id}, body => { description => 'patched ' . n() }) }],
  [DELETE => '/applications/{app_id}',                      W, 204, sub { (app_id => fresh_app($_[0])->{id}) }],
  [POST   => '/applications/{app_id}/rotate-secret',        W, 200, sub { (app_id => fresh_app($_[0])->{id}) }],
  # identity providers
  [GET    => '/identity-providers',                         R, 200],
  [POST   => '/identity-providers',                         W, 201, sub { (body => { tenant_id => $_[0]{tenant}{id}, name => 'PT idp ' . n(), provider_type => 'OIDC' }) }],
  [GET    => '/identity-providers/{idp_id}',                R, 200, sub { (idp_id => $_[0]{idp}{id}) }],
  [PATCH  => '/identity-providers/{idp_id}',                W, 200, sub { (idp_id => fresh_idp($_[0])->{id}, body => { name => 'PT renamed ' . n() }) }],
  [DELETE => '/identity-providers/{idp_id}',                W, 204, sub { (idp_id => fresh_idp($_[0])->{id}) }],
  # MCP agents
  [GET    => '/agents',                                     R, 200],
  [POST   => '/agents',                                     W, 201, sub { (body => { tenant_id => $_[0]{tenant}{id}, name => 'PT agent ' . n() }) }],
  [GET    => '/agents/{agent_id}',                          R, 200, sub { (agent_id => $_[0]{agent}{id}) }],
  [PATCH  => '/agents/{agent_id}',                          W, 200, sub { (agent_id => fresh_agent($_[0])->{id}, body => { description => 'patched ' . n() }) }],
  [DELETE => '/agents/{agent_id}',                          W, 204, sub { (agent_id => fresh_agent($_[0])->{id}) }],
  [POST   => '/agents/{agent_id}/rotate-secret',            W, 200, sub { (agent_id => fresh_agent($_[0])->{id}) }],
  # sessions
  [GET    => '/sessions',                                   R, 200],
  [POST   => '/sessions/revoke-all',                        W, 200, sub { my $s = fresh_session($_[0]); (body => { user_id => $s->{user}{id} }, _session => $s->{id}) }],
  [GET    => '/sessions/{session_id}',                      R, 200, sub { (session_id => $_[0]{session}{id}) }],
  [DELETE => '/sessions/{session_id}',                      W, 204, sub { (session_id => fresh_session($_[0])->{id}) }],
  # audit log
  [GET    => '/audit',                                      R, 200],
  [GET    => '/audit/actions',                              R, 200],
  [GET    => '/audit/resource-types',                       R, 200],
  [GET    => '/audit/verify',                               R, 200],
  [GET    => '/audit/{audit_id}',                           R, 200, sub { (audit_id => $_[0]{audit_id}) }],
  # dashboard
  [GET    => '/dashboard/stats',                            R, 200],
  [GET    => '/dashboard/activity',                         R, 200],
  # platform settings
  [GET    => '/platform-settings',                          R, 200],
  [PATCH  => '/platform-settings',                          W, 200, sub { (body => { $SETTING => 'set ' . n() }) }],
  # API keys
  [GET    => '/api-keys',                                   R, 200],
  [POST   => '/api-keys',                                   W, 201, sub { (body => { name => 'PT key ' . n(), user_id => $_[0]{user}{id} }) }],
  [GET    => '/api-keys/{key_id}',                          R, 200, sub { (key_id => $_[0]{key}{id}) }],
  [DELETE => '/api-keys/{key_id}',                          W, 200, sub { (key_id => fresh_key($_[0])->{id}) }],
  # signing keys
  [GET    => '/keys',                                       R, 200],
  [POST   => '/keys/rotate',                                W, 200],
);

# the admin console's own session endpoints: about a person's sign-in, not the admin API's resources
my @CONSOLE = ([GET => '/auth/me'], [POST => '/auth/logout']);

my %PREFIX = (partner_id => 'prt_', tenant_id => 'tnt_', user_id => 'usr_', group_id => 'grp_',
              child_group_id => 'grp_', app_id => 'app_', idp_id => 'idp_', agent_id => 'agt_',
              session_id => 'ses_', key_id => 'key_');
my %CRUD_RES = (partners => 1, tenants => 1, users => 1, groups => 1, applications => 1,
                'identity-providers' => 1, agents => 1);

sub fill {
  my ($tpl, $args) = @_;
  (my $p = $tpl) =~ s/\{(\w+)\}/defined $args->{$1} ? $args->{$1} : die "no value for {$1} in $tpl\n"/ge;
  return $p;
}

# ---------------------------------------------------------------------------
# The route table is complete

subtest 'the route table lists every admin route' => sub {
  my %mine = map { ("$_->[0] $_->[1]" => 1) } @ROUTES, @CONSOLE;
  is(scalar(keys %mine), @ROUTES + @CONSOLE, 'no route is listed twice');

  my $doc = req(GET => '/openapi.json');
  is($doc->{status}, 200, 'the OpenAPI document is published');
  my %published;
  for my $p (keys %{ ($doc->{json} // {})->{paths} // {} }) {
    next unless $p =~ m{\A\Q$ADMIN\E(/.*)\z};
    my $rel = $1;
    next if $rel =~ m{\A/auth/(?:login|refresh)\z};    # no bearer token taken
    $rel =~ s{/+\z}{};
    for my $m (keys %{ $doc->{json}{paths}{$p} }) {
      next unless $m =~ /\A(?:get|post|put|patch|delete)\z/;
      $published{ uc($m) . " $rel" } = 1;
    }
  }
  ok(scalar(keys %published) > 10, 'the document lists admin operations');
  is_deeply([sort grep { !$mine{$_} } keys %published], [], 'every published admin operation is in the table');
  is_deeply([sort grep { !$published{$_} } keys %mine], [], 'every operation of the table is published');

  # the server's own route tables
  my $top = $ENV{SK_TOP} // "$FindBin::Bin/..";
  my @files = glob("$top/mod_scaikey/http/routes*.c");
  ok(@files >= 1, 'the route tables are found') or return;
  my %served;
  for my $f (@files) {
    open(my $fh, '<', $f) or die "$f: $!";
    my @lines = <$fh>;
    close $fh;
    my %macro = map { /\A#define\s+(\w+)\s+"([^"]*)"/ ? ($1 => $2) : () } @lines;
    for my $l (@lines) {
      next if $l =~ /\\\s*\z/;                                   # inside a macro definition
      if ($l =~ /\bCRUD\(\s*"([^"]+)"\s*,\s*"(\w+)"/) {
        my ($base, $id) = ($1, $2);
        $served{"$_ $base"} = 1 for qw(GET POST);
        $served{"$_ $base/{$id}"} = 1 for qw(GET PATCH DELETE);
      } elsif ($l =~ /\{\s*"([A-Z]+)"\s*,\s*([^,]+),/) {
        # the path: string literals and macros naming string literals, side by side
        my ($m, $expr, $path, $ok) = ($1, $2, '', 1);
        for my $part ($expr =~ /("[^"]*"|\w+)/g) {
          if ($part =~ /\A"(.*)"\z/) { $path .= $1 }
          elsif (exists $macro{$part}) { $path .= $macro{$part} }
          else { $ok = 0 }
        }
        $served{"$m $path"} = 1 if $ok;
      }
    }
  }
  my %served_admin;
  for (keys %served) {
    my ($m, $p) = split / /, $_, 2;
    next unless $p =~ m{\A\Q$ADMIN\E(/.*)\z};
    my $rel = $1;
    next if $rel =~ m{\A/auth/(?:login|refresh)\z};
    $served_admin{"$m $rel"} = 1;
  }
  ok(scalar(keys %served_admin) > 10, 'admin routes read from the route tables');
  is_deeply([sort grep { !$mine{$_} } keys %served_admin], [], 'every served admin route is in the table');
  is_deeply([sort grep { !$served_admin{$_} } keys %mine], [], 'every route of the table is served');
};

# ---------------------------------------------------------------------------
# The applications and their tokens

my %WORLD = (A => make_world(), B => make_world());

sub token_request {
  my (%o) = @_;    # app, slug, scope, secret, base
  my $path = defined $o{slug} ? "/api/v1/auth/tenants/$o{slug}/oauth/token" : '/api/v1/platform/oauth/token';
  my $form = query_string(grant_type => 'client_credentials', (defined $o{scope} ? (scope => $o{scope}) : ()));
  $form =~ s/\A\?//;
  my $enc = sub { my $s = query_string(x => $_[0]); $s =~ s/\A\?x=//; $s };
  my $basic = encode_base64($enc->($o{app}{client_id}) . ':' . $enc->($o{secret} // $o{app}{client_secret}), '');
  return req(POST => $path, raw => $form, (defined $o{base} ? (base => $o{base}) : ()),
             headers => { 'Content-Type' => 'application/x-www-form-urlencoded', Authorization => "Basic $basic" });
}

sub token_of {
  my (%o) = @_;
  my $r = token_request(%o);
  die "client_credentials for $o{app}{client_id}: $r->{status} $r->{content}\n"
    unless $r->{status} == 200 && ref $r->{json} eq 'HASH' && $r->{json}{access_token};
  return $r->{json};
}

# applications holding admin scopes do not outlive the test
sub forget_app {
  my ($app) = @_;
  on_exit(sub { req(DELETE => "$ADMIN/applications/$app->{id}", token => $SA) });
  return $app;
}

sub new_app {
  my (%body) = @_;
  return forget_app(mk(applications => { name => 'PT client ' . n(), application_type => 'SERVICE', %body }));
}

# GLOBAL SERVICE applications, registered through the admin API by the bootstrap super_admin
my %SCOPES = (
  none_empty => [],
  none_other => ['users:read', 'groups:read', 'admin', 'ADMIN:READ', 'admin:read:all', 'admin:writer'],
  read       => ['admin:read'],
  write      => ['admin:write'],
  both       => ['admin:read', 'admin:write'],
);
my (%APP, %TOKEN, %ISSUED);

subtest 'GLOBAL SERVICE applications are registered by the super_admin' => sub {
  for my $k (sort keys %SCOPES) {
    my $r = req(POST => "$ADMIN/applications", token => $SA,
                json => { name => "PT $k", application_type => 'SERVICE', scope => 'GLOBAL',
                          allowed_scopes => $SCOPES{$k} });
    is($r->{status}, 201, "$k: 201") or do { diag($r->{content}); next };
    my $a = $r->{json};
    is($a->{scope}, 'GLOBAL', "$k: scope GLOBAL");
    is_deeply($a->{allowed_scopes}, $SCOPES{$k}, "$k: allowed_scopes as registered");
    like($a->{client_secret} // '', qr/\S{20}/, "$k: a client secret is shown once");
    ok(!defined $a->{tenant_id} && !defined $a->{partner_id}, "$k: no tenant, no partner");
    $APP{$k} = forget_app($a);
  }
  # a TENANT application in world A's tenant, and a PARTNER application of world A's partner,
  # both allowed both admin scopes
  $APP{tenant} = new_app(scope => 'TENANT', tenant_id => $WORLD{A}{tenant}{id},
                         allowed_scopes => ['admin:read', 'admin:write']);
  $APP{partner} = new_app(scope => 'PARTNER', partner_id => $WORLD{A}{partner}{id},
                          allowed_scopes => ['admin:read', 'admin:write']);
  ok($APP{tenant}{client_secret} && $APP{partner}{client_secret}, 'TENANT and PARTNER applications registered');
};
BAIL_OUT('the applications could not be registered') unless keys %APP == 7;

subtest 'client_credentials tokens' => sub {
  for my $k (sort keys %SCOPES) {
    my $r = token_request(app => $APP{$k});
    is($r->{status}, 200, "$k: 200") or do { diag($r->{content}); next };
    my $j = $r->{json};
    is($j->{token_type}, 'Bearer', "$k: token_type Bearer");
    is($j->{scope}, join(' ', @{ $SCOPES{$k} }), "$k: scope defaults to all allowed_scopes");
    is($j->{expires_in}, $APP{$k}{token_lifetime}, "$k: expires_in is the application's token_lifetime");
    ok(!exists $j->{refresh_token}, "$k: no refresh token");
    like($r->{headers}{'cache-control'} // '', qr/no-store/, "$k: Cache-Control no-store");
    $TOKEN{$k} = $j->{access_token};
    $ISSUED{$k} = $j;
  }
  my $narrow = token_request(app => $APP{both}, scope => 'admin:read');
  is($narrow->{status}, 200, 'both: a token asked for admin:read only');
  is($narrow->{json} && $narrow->{json}{scope}, 'admin:read', 'it carries admin:read only');
  $TOKEN{both_as_read} = $narrow->{json} && $narrow->{json}{access_token};

  my $wider = token_request(app => $APP{read}, scope => 'admin:read admin:write');
  is($wider->{status}, 400, 'read: asking for admin:write too is refused');
  is($wider->{json} && $wider->{json}{error}, 'invalid_scope', 'read: error invalid_scope');
  my $bad = token_request(app => $APP{write}, secret => 'sks_not-the-secret');
  is($bad->{status}, 401, 'a wrong secret: 401');
  is($bad->{json} && $bad->{json}{error}, 'invalid_client', 'a wrong secret: invalid_client');
  my $tenant_app_here = token_request(app => $APP{tenant});
  is($tenant_app_here->{status}, 401, 'a TENANT application gets no token at the platform endpoint');

  for my $k (qw(tenant partner)) {
    my $t = token_request(app => $APP{$k}, slug => $WORLD{A}{tenant}{slug});
    is($t->{status}, 200, "$k application: a token at the tenant endpoint") or do { diag($t->{content}); next };
    $TOKEN{$k} = $t->{json}{access_token};
    $ISSUED{$k} = $t->{json};
  }
};
BAIL_OUT('tokens missing') unless 8 == grep { $TOKEN{$_} } qw(none_empty none_other read write both both_as_read tenant partner);

subtest 'claims, verified against the platform JWKS' => sub {
  my $jwks = jwks();
  ok($jwks && @{ $jwks->{keys} // [] }, 'the platform JWKS') or return;
  for my $k (qw(none_empty read write both both_as_read)) {
    my $app = $APP{ $k eq 'both_as_read' ? 'both' : $k };
    my ($h, $c) = eval { verify_jwt($TOKEN{$k}, $jwks) };
    ok($c, "$k: the signature verifies (Crypt::JWT)") or do { diag($@); next };
    my (undef, $raw) = jwt_parts($TOKEN{$k});
    ok(JSON::PP::is_bool($raw->{platform_token}) && $raw->{platform_token}, "$k: platform_token is JSON true");
    is($c->{app_scope}, 'GLOBAL', "$k: app_scope GLOBAL");
    is($c->{token_type}, 'client_credentials', "$k: token_type client_credentials");
    is($c->{sub}, $app->{client_id}, "$k: sub is the client_id");
    is($c->{client_id}, $app->{client_id}, "$k: client_id");
    is($c->{iss}, base() . '/api/v1/platform/oauth', "$k: iss is the platform issuer");
    my $aud = ref $c->{aud} eq 'ARRAY' ? $c->{aud} : [$c->{aud}];
    ok(grep({ defined $_ && $_ eq $app->{client_id} } @$aud), "$k: aud is the client_id");
    is($c->{scope}, $k eq 'both_as_read' ? 'admin:read' : join(' ', @{ $SCOPES{$k} }), "$k: scope claim");
    is($c->{exp} - $c->{iat}, $app->{token_lifetime}, "$k: exp - iat is the token lifetime");
    ok(abs($c->{iat} - time()) < 300, "$k: iat is now");
    ok(!exists $c->{sid} && !exists $c->{role} && !exists $c->{tenant_id} && !exists $c->{partner_id},
       "$k: no session, role, tenant or partner");
    is($h->{typ}, 'at+jwt', "$k: typ at+jwt");
  }
  for my $k (qw(tenant partner)) {
    my ($h, $c) = eval { verify_jwt($TOKEN{$k}, $jwks) };
    ok($c, "$k application: the signature verifies") or do { diag($@); next };
    ok(!$c->{platform_token}, "$k application: not a platform token");
    is($c->{app_scope}, uc $k, "$k application: app_scope " . uc $k);
    is($c->{token_type}, 'client_credentials', "$k application: token_type client_credentials");
    is($c->{sub}, $APP{$k}{client_id}, "$k application: sub is the client_id");
    is($c->{tenant_id}, $WORLD{A}{tenant}{id}, "$k application: tenant_id of the tenant asked at");
    is($c->{scope}, 'admin:read admin:write', "$k application: it carries both admin scopes");
  }
};

# ---------------------------------------------------------------------------
# The matrix: every route, every kind of token

# kind => [world, refusal of reads, refusal of writes] (undef: allowed)
my %KIND = (
  none_empty   => ['A', $SCOPE_DETAIL, $SCOPE_DETAIL],
  none_other   => ['A', $SCOPE_DETAIL, $SCOPE_DETAIL],
  read         => ['B', undef,         $WRITE_DETAIL],
  both_as_read => ['A', undef,         $WRITE_DETAIL],
  write        => ['A', undef,         undef],
  both         => ['B', undef,         undef],
  tenant       => ['A', $DENIED,       $DENIED],
  partner      => ['A', $DENIED,       $DENIED],
);
my @KINDS = qw(none_empty none_other read both_as_read write both tenant partner);

sub is_refusal {
  my ($r, $detail, $name) = @_;
  is_deeply({ status => $r->{status}, body => $r->{json} }, { status => 403, body => { detail => $detail } },
            "$name: 403 {\"detail\":\"$detail\"}") or diag(substr($r->{content}, 0, 300));
  like($r->{headers}{'content-type'} // '', qr{\Aapplication/json\b}, "$name: JSON");
}

# What a successful write left behind: the generic resources.
sub check_crud_write {
  my ($m, $tpl, $args, $r, $name) = @_;
  my ($res, $idp) = $tpl =~ m{\A/([a-z-]+)(?:/\{(\w+)\})?\z} or return;
  return unless $CRUD_RES{$res};
  if ($m eq 'POST') {
    my $id = $r->{json} && $r->{json}{id};
    is(req(GET => "$ADMIN/$res/" . ($id // 'none'), token => $SA)->{status}, 200, "$name: the new object exists");
    for my $k (qw(tenant_id partner_id)) {
      is($r->{json}{$k}, $args->{body}{$k}, "$name: it lives where asked ($k)") if exists $args->{body}{$k};
    }
  } elsif ($m eq 'PATCH') {
    my $g = req(GET => "$ADMIN/$res/$args->{$idp}", token => $SA);
    my ($f) = keys %{ $args->{body} };
    is($g->{json} && $g->{json}{$f}, $args->{body}{$f}, "$name: the change is stored");
  } elsif ($m eq 'DELETE') {
    is(req(GET => "$ADMIN/$res/$args->{$idp}", token => $SA)->{status}, 404, "$name: gone");
  }
}

sub sa_get { req(GET => "$ADMIN$_[0]", token => $SA) }
sub listed { my ($path, $id) = @_; scalar grep { $_ eq $id } ids_of(sa_get($path)) }

# What a successful write left behind: the special actions. ($r, \%args, $world, $name)
my %CHECK = (
  'POST /users/{user_id}/reset-password' => sub {
    like($_[0]{json} && $_[0]{json}{temporary_password} // '', qr/\A\S{12,}\z/, "$_[3]: a temporary password");
  },
  'POST /groups/{group_id}/members' => sub {
    ok(listed("/groups/$_[1]{group_id}/members?per_page=100", $_[1]{body}{user_id}), "$_[3]: the user is a member");
  },
  'DELETE /groups/{group_id}/members/{user_id}' => sub {
    ok(!listed("/groups/$_[1]{group_id}/members?per_page=100", $_[1]{user_id}), "$_[3]: the user is no member");
  },
  'POST /groups/{group_id}/nested' => sub {
    ok(listed("/groups/$_[1]{group_id}/nested?per_page=100", $_[1]{body}{child_group_id}), "$_[3]: nested");
  },
  'DELETE /groups/{group_id}/nested/{child_group_id}' => sub {
    ok(!listed("/groups/$_[1]{group_id}/nested?per_page=100", $_[1]{child_group_id}), "$_[3]: not nested");
  },
  'POST /applications/{app_id}/rotate-secret' => sub {
    my ($r, $a, $w, $name) = @_;
    my $t = token_request(app => $r->{json}, slug => $w->{tenant}{slug});
    is($t->{status}, 200, "$name: the new secret gets a token");
  },
  'POST /agents/{agent_id}/rotate-secret' => sub {
    my ($r, $a, $w, $name) = @_;
    my $t = token_request(app => $r->{json}, slug => $w->{tenant}{slug});
    is($t->{status}, 200, "$name: the new secret gets a token");
  },
  'POST /sessions/revoke-all' => sub {
    cmp_ok($_[0]{json} && $_[0]{json}{revoked} // 0, '>=', 1, "$_[3]: sessions revoked");
    my $g = sa_get("/sessions/$_[1]{_session}");
    ok($g->{json} && JSON::PP::is_bool($g->{json}{active}) && !$g->{json}{active}, "$_[3]: the user's session ended");
  },
  'DELETE /sessions/{session_id}' => sub {
    my $g = sa_get("/sessions/$_[1]{session_id}");
    ok($g->{json} && JSON::PP::is_bool($g->{json}{active}) && !$g->{json}{active}, "$_[3]: the session ended");
  },
  'PATCH /platform-settings' => sub {
    is(sa_get('/platform-settings')->{json}{$SETTING}, $_[1]{body}{$SETTING}, "$_[3]: the setting is stored");
  },
  'POST /api-keys' => sub {
    like($_[0]{json}{key} // '', qr/\S{20}/, "$_[3]: the key is shown");
    my $g = sa_get('/api-keys/' . ($_[0]{json}{id} // 'none'));
    ok($g->{json} && $g->{json}{is_active}, "$_[3]: the key exists and is active");
  },
  'DELETE /api-keys/{key_id}' => sub {
    my $g = sa_get("/api-keys/$_[1]{key_id}");
    ok($g->{json} && !$g->{json}{is_active}, "$_[3]: the key is revoked");
  },
);

my $UA = "scaikey-platform-token-test/$TAG";

for my $kind (@KINDS) {
  subtest "every admin route with a token of kind $kind" => sub {
    my ($wname, $read_refusal, $write_refusal) = @{ $KIND{$kind} };
    my $w = $WORLD{$wname};
    my $client = $APP{ $kind eq 'both_as_read' ? 'both' : $kind }{client_id};
    my $ip = unique_ip();
    # what every call needs, made first: then nothing but the calls themselves touches the store
    my @plan = map { [$_, { $_->[4] ? $_->[4]->($w) : () }] } @ROUTES;
    my $before = defined $write_refusal ? db_state() : undef;
    for my $i (0 .. $#plan) {
      my ($rt, $args) = @{ $plan[$i] };
      my ($m, $tpl, $rw, $ok) = @$rt;
      my $name = "$kind: $m $tpl";
      my $refusal = $rw eq R ? $read_refusal : $write_refusal;
      my $r = call($TOKEN{$kind}, $m, $ADMIN . fill($tpl, $args), ip => $ip, ua => "$UA/$kind/$i",
                   (exists $args->{body} ? (json => $args->{body}) : ()));
      if (defined $refusal) {
        is_refusal($r, $refusal, $name);
        next;
      }
      is($r->{status}, $ok, "$name: $ok") or do { diag(substr($r->{content}, 0, 400)); next };
      if ($rw eq R) {
        my ($last) = $tpl =~ /\{(\w+)\}\z/;
        if ($last && $m eq 'GET') {
          is($r->{json} && "$r->{json}{id}", "$args->{$last}", "$name: the object asked for");
        } else {
          ok(ref $r->{json} eq 'HASH', "$name: a JSON object");
        }
      } else {
        check_crud_write($m, $tpl, $args, $r, $name);
        $CHECK{"$m $tpl"}->($r, $args, $w, $name) if $CHECK{"$m $tpl"};
      }
    }
    is_deeply([changed_tables($before, db_state())], [], "$kind: the refused writes changed nothing") if $before;
    # the audit trail: each successful write once, with the client as actor; a refused one never
    my %rows = map { split /\|/, $_, 2 } psql(
      'SELECT user_agent, count(*) FROM audit_log WHERE result = \'success\' AND actor_id = ' . sql_quote($client)
      . ' AND user_agent LIKE ' . sql_quote("$UA/$kind/%") . ' GROUP BY user_agent');
    for my $i (grep { $plan[$_][0][2] eq W } 0 .. $#plan) {
      my ($m, $tpl) = @{ $plan[$i][0] };
      is($rows{"$UA/$kind/$i"} // 0, defined $write_refusal ? 0 : 1,
         "$kind: $m $tpl: " . (defined $write_refusal ? 'no success recorded' : 'recorded once, the client as actor'));
    }
  };
}

subtest 'the scope is checked before anything about the target or the body' => sub {
  for my $kind (qw(none_empty read tenant)) {
    my (undef, $read_refusal, $write_refusal) = @{ $KIND{$kind} };
    for my $rt (grep { $_->[1] =~ /\{/ || $_->[2] eq W } @ROUTES) {
      my ($m, $tpl, $rw) = @$rt;
      my $refusal = $rw eq R ? $read_refusal : $write_refusal;
      next unless defined $refusal;
      my %ghost = map { $_ => ($PREFIX{$_} // '') . ($_ eq 'audit_id' ? '999999999999' : 'zz00000000000000') }
                  $tpl =~ /\{(\w+)\}/g;
      $ghost{audit_id} = '999999999999' if exists $ghost{audit_id};
      my $r = call($TOKEN{$kind}, $m, $ADMIN . fill($tpl, \%ghost), ($rw eq W ? (json => {}) : ()));
      is_refusal($r, $refusal, "$kind: $m $tpl (ids that do not exist, empty body)");
    }
  }
};

subtest 'a platform token reaches every tenant and partner' => sub {
  my $t = $TOKEN{read};
  for my $wn (qw(A B)) {
    my $w = $WORLD{$wn};
    my $tid = $w->{tenant}{id};
    my @want = (
      [tenants              => [partner_id => $w->{partner}{id}, search => $w->{tenant}{slug}], $tid],
      [partners             => [search => $w->{partner}{slug}],                                 $w->{partner}{id}],
      [users                => [tenant_id => $tid, search => $w->{user}{email}],                $w->{user}{id}],
      [groups               => [tenant_id => $tid, search => $w->{group}{name}],                $w->{group}{id}],
      [applications         => [tenant_id => $tid, search => $w->{app}{name}],                  $w->{app}{id}],
      ['identity-providers' => [tenant_id => $tid, search => $w->{idp}{name}],                  $w->{idp}{id}],
      [agents               => [tenant_id => $tid, search => $w->{agent}{name}],                $w->{agent}{id}],
      [sessions             => [user_id => $w->{session}{user}{id}],                            $w->{session}{id}],
      ['api-keys'           => [tenant_id => $tid, per_page => 100],                            $w->{key}{id}],
      [audit                => [resource_id => $w->{group}{id}],                                $w->{audit_id}],
    );
    for my $x (@want) {
      my ($res, $q, $id) = @$x;
      my $path = "$ADMIN/$res" . query_string(@$q);
      my $r = call($t, GET => $path);
      is($r->{status}, 200, "world $wn: GET $res filtered: 200") or next;
      ok(grep({ "$_" eq "$id" } ids_of($r)), "world $wn: GET $res lists the world's object $id");
    }
  }
  my $r = call($TOKEN{read}, GET => "$ADMIN/applications"
               . query_string(scope => 'PARTNER', partner_id => $WORLD{A}{partner}{id}, per_page => 100));
  ok(grep({ $_ eq $APP{partner}{id} } ids_of($r)), "a partner's PARTNER applications are listed");
};

subtest 'the admin console session endpoints are not for platform tokens' => sub {
  for my $kind (qw(none_empty read write both)) {
    for my $c (@CONSOLE) {
      my $r = call($TOKEN{$kind}, $c->[0], "$ADMIN$c->[1]");
      is($r->{status}, 403, "$kind: $c->[0] $c->[1]: 403") or diag($r->{content});
    }
  }
  my $still = call($TOKEN{both}, GET => "$ADMIN/tenants?per_page=1");
  is($still->{status}, 200, 'a "logout" did not end the platform token');
};

# ---------------------------------------------------------------------------
# Tokens follow their application

subtest 'widening allowed_scopes does not change a token already issued' => sub {
  my $app = new_app(scope => 'GLOBAL', allowed_scopes => ['admin:read']);
  my $t1 = token_of(app => $app)->{access_token};
  my $body = { tenant_id => $WORLD{A}{tenant}{id}, name => 'PT widened ' . n() };
  is_refusal(call($t1, POST => "$ADMIN/groups", json => $body), $WRITE_DETAIL, 'before widening');
  my $p = req(PATCH => "$ADMIN/applications/$app->{id}", token => $SA,
              json => { allowed_scopes => ['admin:read', 'admin:write'] });
  is($p->{status}, 200, 'allowed_scopes widened') or diag($p->{content});
  is_refusal(call($t1, POST => "$ADMIN/groups", json => $body), $WRITE_DETAIL, 'the old token, after widening');
  my $t2 = token_of(app => $app);
  is($t2->{scope}, 'admin:read admin:write', 'a new token carries the new scopes');
  is(call($t2->{access_token}, POST => "$ADMIN/groups", json => $body)->{status}, 201, 'the new token writes');
};

sub invalid_token_ok {
  my ($r, $name, $why) = @_;
  is($r->{status}, 401, "$name: 401") or diag(substr($r->{content}, 0, 300));
  is_deeply($r->{json}, { detail => 'Invalid or expired token' }, "$name: detail");
  like($r->{headers}{'www-authenticate'} // '', qr/\ABearer\b.*\berror="invalid_token"/, "$name: invalid_token");
  like($r->{headers}{'www-authenticate'} // '', qr/error_description="\Q$why\E"/, "$name: $why") if defined $why;
}

subtest 'a suspended application\'s token stops working at once' => sub {
  my $app = new_app(scope => 'GLOBAL', allowed_scopes => ['admin:read', 'admin:write']);
  my $t = token_of(app => $app)->{access_token};
  is(call($t, GET => "$ADMIN/tenants?per_page=1")->{status}, 200, 'the token works');
  my $p = req(PATCH => "$ADMIN/applications/$app->{id}", token => $SA, json => { status => 'SUSPENDED' });
  is($p->{status}, 200, 'application suspended') or diag($p->{content});
  invalid_token_ok(call($t, GET => "$ADMIN/tenants?per_page=1"), 'a read after suspension');
  invalid_token_ok(call($t, POST => "$ADMIN/groups", json => { tenant_id => $WORLD{A}{tenant}{id}, name => 'PT x' }),
                   'a write after suspension');
  my $again = token_request(app => $app);
  is($again->{status}, 401, 'no new token for a suspended application');
  is($again->{json} && $again->{json}{error}, 'invalid_client', 'invalid_client');
};

subtest 'a deleted application\'s token stops working at once' => sub {
  my $app = new_app(scope => 'GLOBAL', allowed_scopes => ['admin:read', 'admin:write']);
  my $t = token_of(app => $app)->{access_token};
  is(call($t, GET => "$ADMIN/tenants?per_page=1")->{status}, 200, 'the token works');
  is(req(DELETE => "$ADMIN/applications/$app->{id}", token => $SA)->{status}, 204, 'application deleted');
  invalid_token_ok(call($t, GET => "$ADMIN/tenants?per_page=1"), 'a read after deletion');
  invalid_token_ok(call($t, PATCH => "$ADMIN/platform-settings", json => { $SETTING => 'x' }), 'a write after deletion');
  my $again = token_request(app => $app);
  is($again->{status}, 401, 'no new token for a deleted application');
};

subtest 'an expired platform token is refused' => sub {
  # A second server on the same database and with the same issuer, allowing no clock skew. The
  # application's token lifetime is set in the store: the API's lowest is 60 s.
  my ($xbase, $guard) = extra_apache('ScaiKeyClockSkew 0', base());
  ok($xbase, 'a second server without clock skew allowance') or return;
  my $life = 4;
  my $app = new_app(scope => 'GLOBAL', allowed_scopes => ['admin:read', 'admin:write']);
  psql("UPDATE applications SET token_lifetime = $life WHERE id = " . sql_quote($app->{id}));
  my $j = token_of(app => $app);
  is($j->{expires_in}, $life, "expires_in $life");
  my (undef, $c) = jwt_parts($j->{access_token});
  is($c->{exp} - $c->{iat}, $life, "exp - iat == $life");
  my $fresh = call($j->{access_token}, GET => "$ADMIN/tenants?per_page=1", base => $xbase);
  if (time() < $c->{exp}) {
    is($fresh->{status}, 200, 'before it expires, the second server takes it');
  }
  sleep(1) while time() <= $c->{exp} + 1;
  invalid_token_ok(call($j->{access_token}, GET => "$ADMIN/tenants?per_page=1", base => $xbase),
                   'a read with the expired token', 'token expired');
  invalid_token_ok(call($j->{access_token}, POST => "$ADMIN/groups", base => $xbase,
                        json => { tenant_id => $WORLD{A}{tenant}{id}, name => 'PT expired' }),
                   'a write with the expired token', 'token expired');
  is(psql("SELECT count(*) FROM groups WHERE name = 'PT expired'"), 0, 'nothing was written');
  $guard->stop if $guard;
};

subtest 'no answer was a server error' => sub {
  my @bad = grep { $_->[0] >= 500 } @STATUSES;
  is(scalar @bad, 0, scalar(@STATUSES) . ' answers, none 5xx') or diag(explain \@bad);
};

done_testing();
