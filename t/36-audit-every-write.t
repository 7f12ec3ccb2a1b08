#!/usr/bin/perl
# Every write of the admin API leaves exactly one audit row, in the same transaction as the write.
#
#   * each write route, done by a super_admin person and by a platform token (admin:write): one
#     new row with its action, resource type and id, the caller as actor, result success, the
#     client's address (X-Forwarded-For) and User-Agent, and where the object lives;
#   * a refused write (403, 404, 409, 422) records no success and changes nothing;
#   * no row holds a secret: client secrets, temporary passwords, API keys, passwords, their
#     stored digests, the values of platform settings;
#   * the hash chain still verifies (sk_audit_verify() and GET /api/v1/admin/audit/verify);
#   * when the audit row cannot be written the write is undone and the answer is 503: a trigger
#     that refuses the rows of marked requests, and a CHECK constraint that refuses group.create
#     rows of one marked request, are put on audit_log for the time of the test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $ADMIN   = '/api/v1/admin';
my $TAG     = unique_slug('aw');
(my $TAGID  = $TAG) =~ s/\W/_/g;
my $UA      = "scaikey-audit-writes/$TAG";
my $SETTING = "sk_audit_writes_$TAGID";
# named to fire before the chain trigger (audit_log_chain): it refuses before an id is drawn
my $POISON  = "a_sk_test_poison_$TAGID";
my $BLOCK   = "sk_test_block_$TAGID";

# ---------------------------------------------------------------------------
# Clean-up, also when the test dies or is interrupted

my @UNDO;
sub on_exit { push @UNDO, $_[0] }
sub undo_now { my ($name) = @_; for (grep { $_->[0] eq $name } @UNDO) { my $f = $_->[1]; $_->[1] = undef; $f->() if $f } }
END {
  local ($?, $@);
  while (my $u = pop @UNDO) { eval { $u->[1]->() if $u->[1] } }
}
$SIG{INT} = $SIG{TERM} = sub { exit 1 };
push @UNDO, [settings => sub { psql('UPDATE platform_settings SET settings = settings - ' . sql_quote($SETTING)) }];

my $SA = admin_token();
my $seq = 0;
sub n { ++$seq }

my @STATUSES;
sub call {
  my ($token, $method, $path, %o) = @_;
  my $r = req($method, "$ADMIN$path", token => $token, %o);
  push @STATUSES, [$r->{status}, "$method $path"];
  return $r;
}

# A refused audit insert that got as far as the chain trigger used up an id. Once no such insert
# can come any more, the id sequence goes back to the newest row, under the chain's own lock
# (sql/001_init.sql), so that the test leaves the ids as it found them.
sub close_audit_id_gap {
  psql('BEGIN; SELECT pg_advisory_xact_lock(8314596442290611316); '
       . "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), coalesce(max(id), 1), count(*) > 0) FROM audit_log; "
       . 'COMMIT');
}

my @COLS = qw(id action result resource_type resource_id actor_id actor_email actor_type tenant_id partner_id
              ip_address user_agent details);

# The audit rows of the requests whose User-Agent starts with $prefix: { user_agent => [rows] }.
sub audit_rows_by_ua {
  my ($prefix) = @_;
  my $sql = 'SELECT json_build_object(' . join(', ', map { "'$_', a.$_" } @COLS) . ")::text FROM audit_log a "
          . 'WHERE a.user_agent LIKE ' . sql_quote("$prefix%") . ' ORDER BY a.id';
  my %by;
  for my $line (psql($sql)) {
    my $row = JSON::PP->new->decode($line);
    $row->{ip_address} =~ s{/(?:32|128)\z}{} if defined $row->{ip_address};
    push @{ $by{ $row->{user_agent} } }, $row;
  }
  return \%by;
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

my %W;
$W{partner} = mk(partners => { name => "AW partner $TAG", slug => unique_slug('aw-p') });
$W{tenant}  = mk(tenants => { name => "AW tenant $TAG", slug => unique_slug('aw-t'), partner_id => $W{partner}{id} });
$W{other_tenant} = mk(tenants => { name => "AW other $TAG", slug => unique_slug('aw-o') });

sub fresh_partner { mk(partners => { name => 'AW partner ' . n(), slug => unique_slug('aw-p') }) }
sub fresh_tenant { mk(tenants => { name => 'AW tenant ' . n(), slug => unique_slug('aw-t'), partner_id => $W{partner}{id} }) }
sub fresh_user {
  my (%o) = @_;
  mk(users => { tenant_id => $W{tenant}{id}, email => unique_email('aw-u'), first_name => 'Avery', %o });
}
sub fresh_group { mk(groups => { tenant_id => $_[0] // $W{tenant}{id}, name => 'AW group ' . n() }) }
sub fresh_app {
  my (%o) = @_;
  mk(applications => { name => 'AW app ' . n(), application_type => 'SERVICE', scope => 'TENANT',
                       tenant_id => $W{tenant}{id}, %o });
}
sub fresh_idp { mk('identity-providers' => { tenant_id => $W{tenant}{id}, name => 'AW idp ' . n(), provider_type => 'OIDC' }) }
sub fresh_agent { mk(agents => { tenant_id => $W{tenant}{id}, name => 'AW agent ' . n() }) }
sub fresh_key { sa_post('/api-keys', { name => 'AW key ' . n(), user_id => $_[0] }) }

# A live admin console session of a new tenant_admin (of the world's tenant unless told).
sub fresh_session {
  my ($tenant_id) = @_;
  my $pw = 'Aw-session-' . int(rand(1e9));
  my $u = mk(users => { tenant_id => $tenant_id // $W{tenant}{id}, email => unique_email('aw-s'),
                        role => 'tenant_admin', password => $pw });
  my ($j, $r) = admin_login(email => $u->{email}, password => $pw);
  die "login of $u->{email}: $r->{status} $r->{content}\n" unless $j;
  my (undef, $c) = jwt_parts($j->{access_token});
  return { id => $c->{sid}, user => $u, token => $j->{access_token} };
}

# A user with a confirmed TOTP method and two backup codes.
sub user_with_mfa {
  my $u = fresh_user();
  my $q = sql_quote($u->{id});
  psql("INSERT INTO mfa_methods (user_id, method_type, confirmed_at) VALUES ($q, 'totp', now()); "
       . "INSERT INTO mfa_backup_codes (user_id, code_hash) VALUES ($q, repeat('a', 64)), ($q, repeat('b', 64)); "
       . "UPDATE users SET mfa_enabled = true WHERE id = $q");
  return $u;
}

# ---------------------------------------------------------------------------
# The actors

my $PW = 'Audit-writes-' . int(rand(1e9));
my $person = mk(users => { email => unique_email('aw-admin'), password => $PW, role => 'super_admin', first_name => 'Audrey' });
push @UNDO, [person => sub { req(DELETE => "$ADMIN/users/$person->{id}", token => $SA) }];
my $PERSON_TOKEN = admin_token(email => $person->{email}, password => $PW);

sub cc_request {
  my ($app, %o) = @_;
  my $form = query_string(grant_type => 'client_credentials');
  $form =~ s/\A\?//;
  my $path = defined $o{slug} ? "/api/v1/auth/tenants/$o{slug}/oauth/token" : '/api/v1/platform/oauth/token';
  my $r = req(POST => $path, raw => $form,
              headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                           Authorization => 'Basic ' . encode_base64("$app->{client_id}:$app->{client_secret}", '') });
  return $r;
}
sub platform_app {
  my (@scopes) = @_;
  my $app = mk(applications => { name => 'AW platform ' . n(), application_type => 'SERVICE', scope => 'GLOBAL',
                                 allowed_scopes => \@scopes });
  push @UNDO, [app => sub { req(DELETE => "$ADMIN/applications/$app->{id}", token => $SA) }];
  my $r = cc_request($app);
  die "platform token: $r->{status} $r->{content}\n" unless $r->{status} == 200;
  return ($app, $r->{json}{access_token});
}
my ($PLATFORM_APP, $PLATFORM_TOKEN) = platform_app('admin:read', 'admin:write');
my (undef, $READONLY_TOKEN) = platform_app('admin:read');

my %ACTOR = (
  person   => { token => $PERSON_TOKEN, id => $person->{id}, email => lc $person->{email}, type => 'admin' },
  platform => { token => $PLATFORM_TOKEN, id => $PLATFORM_APP->{client_id}, email => undef, type => 'service' },
);

# ---------------------------------------------------------------------------
# The writes
#
#   path, status: the call and its success
#   setup:  sub returning the path parameters and the body (and anything the checks need)
#   action, type: of the audit row
#   id:     sub ($response, \%args) giving the resource_id the row names
#   where:  sub (\%args, $response) giving the tenant and partner the row names, or nothing
#   secrets: sub ($response, \%args) giving [label, value] pairs that must never be in the log
#   details: sub ($details, \%args, $response, $name) with further assertions on the details

sub at_home { ($W{tenant}{id}, $W{partner}{id}) }
sub body_id { $_[0]{json} && $_[0]{json}{id} }

my @WRITES = (
  { path => 'POST /partners', status => 201, action => 'partner.create', type => 'partner',
    setup => sub { (body => { name => 'AW partner ' . n(), slug => unique_slug('aw-p') }) }, id => \&body_id },
  { path => 'PATCH /partners/{partner_id}', status => 200, action => 'partner.update', type => 'partner',
    setup => sub { (partner_id => fresh_partner()->{id}, body => { name => 'AW renamed ' . n() }) },
    id => sub { $_[1]{partner_id} },
    details => sub { is_deeply($_[0]{fields}, ['name'], "$_[3]: details name the changed field") } },
  { path => 'DELETE /partners/{partner_id}', status => 204, action => 'partner.delete', type => 'partner',
    setup => sub { (partner_id => fresh_partner()->{id}) }, id => sub { $_[1]{partner_id} } },

  { path => 'POST /tenants', status => 201, action => 'tenant.create', type => 'tenant',
    setup => sub { (body => { name => 'AW tenant ' . n(), slug => unique_slug('aw-t'), partner_id => $W{partner}{id} }) },
    id => \&body_id, where => sub { (body_id($_[1]), $W{partner}{id}) } },
  { path => 'PATCH /tenants/{tenant_id}', status => 200, action => 'tenant.update', type => 'tenant',
    setup => sub { (tenant_id => fresh_tenant()->{id}, body => { name => 'AW renamed ' . n() }) },
    id => sub { $_[1]{tenant_id} }, where => sub { ($_[0]{tenant_id}, $W{partner}{id}) } },
  { path => 'DELETE /tenants/{tenant_id}', status => 204, action => 'tenant.delete', type => 'tenant',
    setup => sub { (tenant_id => fresh_tenant()->{id}) },
    id => sub { $_[1]{tenant_id} }, where => sub { ($_[0]{tenant_id}, $W{partner}{id}) } },

  { path => 'POST /users', status => 201, action => 'user.create', type => 'user',
    setup => sub { (body => { tenant_id => $W{tenant}{id}, email => unique_email('aw-new'),
                              password => 'Pw-' . unique_slug('secret') }) },
    id => \&body_id, where => \&at_home,
    secrets => sub { ['the password of a new user', $_[1]{body}{password}] } },
  { path => 'PATCH /users/{user_id}', status => 200, action => 'user.update', type => 'user',
    setup => sub { (user_id => fresh_user()->{id}, body => { first_name => 'Renamed' . n() }) },
    id => sub { $_[1]{user_id} }, where => \&at_home },
  { path => 'DELETE /users/{user_id}', status => 204, action => 'user.delete', type => 'user',
    setup => sub { (user_id => fresh_user()->{id}) }, id => sub { $_[1]{user_id} }, where => \&at_home },

  { path => 'POST /groups', status => 201, action => 'group.create', type => 'group',
    setup => sub { (body => { tenant_id => $W{tenant}{id}, name => 'AW group ' . n() }) },
    id => \&body_id, where => \&at_home },
  { path => 'PATCH /groups/{group_id}', status => 200, action => 'group.update', type => 'group',
    setup => sub { (group_id => fresh_group()->{id}, body => { description => 'patched ' . n() }) },
    id => sub { $_[1]{group_id} }, where => \&at_home },
  { path => 'DELETE /groups/{group_id}', status => 204, action => 'group.delete', type => 'group',
    setup => sub { (group_id => fresh_group()->{id}) }, id => sub { $_[1]{group_id} }, where => \&at_home },

  { path => 'POST /applications', status => 201, action => 'application.create', type => 'application',
    setup => sub { (body => { name => 'AW app ' . n(), application_type => 'SERVICE', scope => 'TENANT',
                              tenant_id => $W{tenant}{id} }) },
    id => \&body_id, where => \&at_home,
    secrets => sub { ['a new application\'s client secret', $_[0]{json}{client_secret}] } },
  { path => 'PATCH /applications/{app_id}', status => 200, action => 'application.update', type => 'application',
    setup => sub { (app_id => fresh_app()->{id}, body => { description => 'patched ' . n() }) },
    id => sub { $_[1]{app_id} }, where => \&at_home },
  { path => 'DELETE /applications/{app_id}', status => 204, action => 'application.delete', type => 'application',
    setup => sub { (app_id => fresh_app()->{id}) }, id => sub { $_[1]{app_id} }, where => \&at_home },

  { path => 'POST /identity-providers', status => 201, action => 'identity_provider.create', type => 'identity_provider',
    setup => sub { (body => { tenant_id => $W{tenant}{id}, name => 'AW idp ' . n(), provider_type => 'OIDC',
                              client_secret => 'idp-' . unique_slug('secret') }) },
    id => \&body_id, where => \&at_home,
    secrets => sub { ['an identity provider\'s client secret', $_[1]{body}{client_secret}] } },
  { path => 'PATCH /identity-providers/{idp_id}', status => 200, action => 'identity_provider.update',
    type => 'identity_provider',
    setup => sub { (idp_id => fresh_idp()->{id}, body => { client_secret => 'idp-' . unique_slug('rotated') }) },
    id => sub { $_[1]{idp_id} }, where => \&at_home,
    secrets => sub { ['an identity provider\'s new client secret', $_[1]{body}{client_secret}] } },
  { path => 'DELETE /identity-providers/{idp_id}', status => 204, action => 'identity_provider.delete',
    type => 'identity_provider',
    setup => sub { (idp_id => fresh_idp()->{id}) }, id => sub { $_[1]{idp_id} }, where => \&at_home },

  { path => 'POST /agents', status => 201, action => 'agent.create', type => 'agent',
    setup => sub { (body => { tenant_id => $W{tenant}{id}, name => 'AW agent ' . n() }) },
    id => \&body_id, where => \&at_home,
    secrets => sub { ['a new agent\'s client secret', $_[0]{json}{client_secret}] } },
  { path => 'PATCH /agents/{agent_id}', status => 200, action => 'agent.update', type => 'agent',
    setup => sub { (agent_id => fresh_agent()->{id}, body => { description => 'patched ' . n() }) },
    id => sub { $_[1]{agent_id} }, where => \&at_home },
  { path => 'DELETE /agents/{agent_id}', status => 204, action => 'agent.delete', type => 'agent',
    setup => sub { (agent_id => fresh_agent()->{id}) }, id => sub { $_[1]{agent_id} }, where => \&at_home },

  { path => 'POST /groups/{group_id}/members', status => 201, action => 'group.member_add', type => 'group',
    setup => sub { (group_id => fresh_group()->{id}, body => { user_id => fresh_user()->{id} }) },
    id => sub { $_[1]{group_id} }, where => \&at_home,
    details => sub { is($_[0]{user_id}, $_[1]{body}{user_id}, "$_[3]: details name the user") } },
  { path => 'DELETE /groups/{group_id}/members/{user_id}', status => 204, action => 'group.member_remove', type => 'group',
    setup => sub {
      my $g = fresh_group();
      my $u = fresh_user();
      sa_post("/groups/$g->{id}/members", { user_id => $u->{id} });
      (group_id => $g->{id}, user_id => $u->{id});
    },
    id => sub { $_[1]{group_id} }, where => \&at_home,
    details => sub { is($_[0]{user_id}, $_[1]{user_id}, "$_[3]: details name the user") } },
  { path => 'POST /groups/{group_id}/nested', status => 201, action => 'group.nest', type => 'group',
    setup => sub { (group_id => fresh_group()->{id}, body => { child_group_id => fresh_group()->{id} }) },
    id => sub { $_[1]{group_id} }, where => \&at_home,
    details => sub { is($_[0]{child_group_id}, $_[1]{body}{child_group_id}, "$_[3]: details name the child") } },
  { path => 'DELETE /groups/{group_id}/nested/{child_group_id}', status => 204, action => 'group.unnest', type => 'group',
    setup => sub {
      my $g = fresh_group();
      my $c = fresh_group();
      sa_post("/groups/$g->{id}/nested", { child_group_id => $c->{id} });
      (group_id => $g->{id}, child_group_id => $c->{id});
    },
    id => sub { $_[1]{group_id} }, where => \&at_home,
    details => sub { is($_[0]{child_group_id}, $_[1]{child_group_id}, "$_[3]: details name the child") } },

  { path => 'POST /users/{user_id}/reset-password', status => 200, action => 'user.password_reset', type => 'user',
    setup => sub { (user_id => fresh_user(password => 'Pw-' . unique_slug('old'))->{id}, body => {}) },
    id => sub { $_[1]{user_id} }, where => \&at_home,
    secrets => sub { ['a temporary password', $_[0]{json}{temporary_password}] },
    details => sub { ok($_[0]{temporary}, "$_[3]: details say the password is temporary") } },
  { path => 'POST /users/{user_id}/reset-password', status => 200, action => 'user.password_reset', type => 'user',
    setup => sub { (user_id => fresh_user()->{id}, body => { password => 'Pw-' . unique_slug('given') }) },
    id => sub { $_[1]{user_id} }, where => \&at_home,
    secrets => sub { ['a password set by an administrator', $_[1]{body}{password}] },
    details => sub { ok(JSON::PP::is_bool($_[0]{temporary}) && !$_[0]{temporary}, "$_[3]: details: not temporary") } },
  { path => 'POST /users/{user_id}/mfa/disable', status => 200, action => 'user.mfa_disable', type => 'user',
    setup => sub { (user_id => user_with_mfa()->{id}) },
    id => sub { $_[1]{user_id} }, where => \&at_home,
    details => sub {
      is($_[0]{methods}, 1, "$_[3]: details count the methods removed");
      is($_[0]{backup_codes}, 2, "$_[3]: details count the backup codes removed");
    } },

  { path => 'POST /applications/{app_id}/rotate-secret', status => 200, action => 'application.secret_rotate',
    type => 'application',
    setup => sub { (app_id => fresh_app()->{id}) }, id => sub { $_[1]{app_id} }, where => \&at_home,
    secrets => sub { ['a rotated application secret', $_[0]{json}{client_secret}] } },
  { path => 'POST /agents/{agent_id}/rotate-secret', status => 200, action => 'agent.secret_rotate', type => 'agent',
    setup => sub { (agent_id => fresh_agent()->{id}) }, id => sub { $_[1]{agent_id} }, where => \&at_home,
    secrets => sub { ['a rotated agent secret', $_[0]{json}{client_secret}] } },

  { path => 'DELETE /sessions/{session_id}', status => 204, action => 'session.revoke', type => 'session',
    setup => sub { my $s = fresh_session(); (session_id => $s->{id}, _token => $s->{token}) },
    id => sub { $_[1]{session_id} }, where => \&at_home,
    secrets => sub { ['the access token of a revoked session', $_[1]{_token}] } },
  { path => 'POST /sessions/revoke-all', status => 200, action => 'session.revoke_all', type => 'user',
    setup => sub { my $s = fresh_session(); (body => { user_id => $s->{user}{id} }) },
    id => sub { $_[1]{body}{user_id} }, where => \&at_home,
    details => sub { is($_[0]{revoked}, 1, "$_[3]: details count the sessions ended") } },
  { path => 'POST /sessions/revoke-all', status => 200, action => 'session.revoke_all', type => 'tenant',
    setup => sub {
      my $t = fresh_tenant();
      fresh_session($t->{id}) for 1 .. 2;
      (body => { tenant_id => $t->{id} });
    },
    id => sub { $_[1]{body}{tenant_id} }, where => sub { ($_[0]{body}{tenant_id}, $W{partner}{id}) },
    details => sub { is($_[0]{revoked}, 2, "$_[3]: details count the sessions ended") } },

  { path => 'PATCH /platform-settings', status => 200, action => 'platform_settings.update', type => 'platform_settings',
    setup => sub { (body => { $SETTING => 'value-' . unique_slug('setting') }) }, id => sub { undef },
    secrets => sub { ['the value of a platform setting', $_[1]{body}{$SETTING}] },
    details => sub { is_deeply($_[0]{set}, [$SETTING], "$_[3]: details name the key set") } },

  { path => 'POST /api-keys', status => 201, action => 'api_key.create', type => 'api_key',
    setup => sub { (body => { name => 'AW key ' . n(), user_id => fresh_user()->{id} }) },
    id => \&body_id, where => \&at_home,
    secrets => sub { (['an API key', $_[0]{json}{key}], ['an API key\'s digest', sha256_hex($_[0]{json}{key} // '')]) } },
  { path => 'DELETE /api-keys/{key_id}', status => 200, action => 'api_key.revoke', type => 'api_key',
    setup => sub { my $k = fresh_key(fresh_user()->{id}); (key_id => $k->{id}, _key => $k->{key}) },
    id => sub { $_[1]{key_id} }, where => \&at_home,
    secrets => sub { ['a revoked API key', $_[1]{_key}] } },
);

sub fill {
  my ($tpl, $args) = @_;
  (my $p = $tpl) =~ s/\{(\w+)\}/defined $args->{$1} ? $args->{$1} : die "no value for {$1} in $tpl\n"/ge;
  return $p;
}

my @SECRETS;       # [label, value]: in no audit row, ever
my @CHANGED_USERS; # users whose password changed: their hashes are in no audit row either

subtest 'the audit chain verifies before' => sub {
  is(psql('SELECT ok FROM sk_audit_verify()'), 't', 'sk_audit_verify() is ok');
};

for my $who (qw(person platform)) {
  subtest "every write, done by the $who, is audited once" => sub {
    my $actor = $ACTOR{$who};
    # what each call needs, made first
    my @plan = map { my %a = $_->{setup}->(); [$_, \%a] } @WRITES;
    my @done;
    for my $i (0 .. $#plan) {
      my ($wr, $args) = @{ $plan[$i] };
      my ($m, $tpl) = split / /, $wr->{path}, 2;
      my $ua = "$UA/$who/$i";
      my $ip = unique_ip();
      my $r = call($actor->{token}, $m, fill($tpl, $args), ip => $ip, ua => $ua,
                   (exists $args->{body} ? (json => $args->{body}) : ()));
      my $name = "$who: $wr->{path} ($wr->{action})";
      is($r->{status}, $wr->{status}, "$name: $wr->{status}") or diag(substr($r->{content}, 0, 400));
      push @done, [$i, $wr, $args, $r, $ua, $ip, $name];
      push @SECRETS, map { [$_->[0], $_->[1]] } $wr->{secrets}->($r, $args) if $wr->{secrets};
      push @CHANGED_USERS, $args->{user_id} if $wr->{action} eq 'user.password_reset';
      push @CHANGED_USERS, body_id($r) if $wr->{action} eq 'user.create' && body_id($r);
    }
    my $rows = audit_rows_by_ua("$UA/$who/");
    for my $d (@done) {
      my ($i, $wr, $args, $r, $ua, $ip, $name) = @$d;
      my @mine = @{ $rows->{$ua} // [] };
      is(scalar @mine, 1, "$name: exactly one audit row") or do { diag(explain \@mine); next };
      my $row = $mine[0];
      my %want = (action => $wr->{action}, result => 'success', resource_type => $wr->{type},
                  resource_id => $wr->{id}->($r, $args), actor_id => $actor->{id}, actor_type => $actor->{type},
                  ip_address => $ip, user_agent => $ua);
      if ($wr->{where}) {
        @want{qw(tenant_id partner_id)} = $wr->{where}->($args, $r);
      }
      my %got = map { $_ => $row->{$_} } keys %want;
      is_deeply(\%got, \%want, "$name: the row says what was done, to what, by whom, from where");
      if (defined $actor->{email}) {
        is(lc($row->{actor_email} // ''), $actor->{email}, "$name: actor_email");
      } else {
        ok(!defined $row->{actor_email}, "$name: no actor_email for a client");
      }
      is(ref $row->{details}, 'HASH', "$name: details is an object");
      $wr->{details}->($row->{details} // {}, $args, $r, $name) if $wr->{details};
    }
  };
}

# ---------------------------------------------------------------------------
# Refused writes

my $PA_PW = 'Aw-partner-' . int(rand(1e9));
my $pa = mk(users => { email => unique_email('aw-pa'), password => $PA_PW, role => 'partner_admin',
                       partner_id => $W{partner}{id} });
my $PA_TOKEN = admin_token(email => $pa->{email}, password => $PA_PW);
my $ta_session = fresh_session();
my $TA_TOKEN = $ta_session->{token};

subtest 'a refused write records no success and changes nothing' => sub {
  my $member_group = fresh_group();
  my $member = fresh_user();
  sa_post("/groups/$member_group->{id}/members", { user_id => $member->{id} });
  my $stranger = mk(users => { tenant_id => $W{other_tenant}{id}, email => unique_email('aw-x') });
  my $spa = fresh_app(application_type => 'SPA');
  my $short_pw = 'Sh0rt!';
  my $dup_slug = $W{partner}{slug};
  my $target_group = fresh_group();
  my @REFUSED = (
    # actor token, method, path, body, status, why
    [$PA_TOKEN,       POST   => '/partners', { name => 'AW nope', slug => unique_slug('aw-no') }, 403, 'a partner_admin creates a partner'],
    [$TA_TOKEN,       DELETE => "/tenants/$W{tenant}{id}", undef, 403, 'a tenant_admin deletes their tenant'],
    [$READONLY_TOKEN, POST   => '/groups', { tenant_id => $W{tenant}{id}, name => 'AW read-only' }, 403, 'an admin:read platform token creates a group'],
    [$READONLY_TOKEN, PATCH  => '/platform-settings', { $SETTING => 'read-only' }, 403, 'an admin:read platform token changes platform settings'],
    [$PERSON_TOKEN,   PATCH  => '/groups/grp_zz00000000000000', { description => 'ghost' }, 404, 'a group that does not exist'],
    [$TA_TOKEN,       PATCH  => "/users/$stranger->{id}", { first_name => 'Stranger' }, 404, 'a user out of reach'],
    [$TA_TOKEN,       POST   => '/sessions/revoke-all', { tenant_id => $W{other_tenant}{id} }, 404, 'a tenant out of reach'],
    [$PERSON_TOKEN,   POST   => '/partners', { name => 'AW dup', slug => $dup_slug }, 409, 'a partner slug taken'],
    [$PERSON_TOKEN,   POST   => "/groups/$member_group->{id}/members", { user_id => $member->{id} }, 409, 'a member added twice'],
    [$PERSON_TOKEN,   POST   => "/groups/$target_group->{id}/nested", { child_group_id => $target_group->{id} }, 409, 'a group nested in itself'],
    [$PERSON_TOKEN,   DELETE => "/users/$person->{id}", undef, 409, 'an admin deletes their own account'],
    [$PERSON_TOKEN,   POST   => "/applications/$spa->{id}/rotate-secret", undef, 409, 'a public client has no secret to rotate'],
    [$PERSON_TOKEN,   POST   => '/groups', { name => 'AW no tenant' }, 422, 'a group without a tenant'],
    [$PERSON_TOKEN,   POST   => "/groups/$target_group->{id}/members", { user_id => $stranger->{id} }, 422, 'a member from another tenant'],
    [$PERSON_TOKEN,   POST   => '/sessions/revoke-all', { user_id => $member->{id}, tenant_id => $W{tenant}{id} }, 422, 'revoke-all naming a user and a tenant'],
    [$PERSON_TOKEN,   POST   => '/api-keys', { name => 'AW ownerless' }, 422, 'an API key without an owner'],
    [$PERSON_TOKEN,   POST   => "/users/$member->{id}/reset-password", { password => $short_pw }, 422, 'a password too short'],
  );
  push @SECRETS, ['a refused password', $short_pw];
  my $before = db_state();
  for my $i (0 .. $#REFUSED) {
    my ($token, $m, $path, $body, $want, $why) = @{ $REFUSED[$i] };
    my $r = call($token, $m, $path, ip => unique_ip(), ua => "$UA/refused/$i", (defined $body ? (json => $body) : ()));
    is($r->{status}, $want, "$why: $want") or diag(substr($r->{content}, 0, 300));
    ok(is_json_error($r), "$why: a JSON error");
  }
  is_deeply([changed_tables($before, db_state())], [], 'the refused writes changed nothing');
  my $rows = audit_rows_by_ua("$UA/refused/");
  for my $i (0 .. $#REFUSED) {
    my @success = grep { $_->{result} eq 'success' } @{ $rows->{"$UA/refused/$i"} // [] };
    is(scalar @success, 0, "$REFUSED[$i][5]: no success recorded") or diag(explain \@success);
  }
};

# ---------------------------------------------------------------------------
# Secrets

subtest 'no audit row holds a secret' => sub {
  my @hashes = @CHANGED_USERS
    ? psql('SELECT id || \'|\' || password_hash FROM users WHERE password_hash IS NOT NULL AND id IN ('
           . join(', ', map { sql_quote($_) } @CHANGED_USERS) . ')')
    : ();
  is(scalar @hashes, scalar @CHANGED_USERS, 'the password digests of the users whose password changed');
  my @all = (@SECRETS, map { my ($id, $h) = split /\|/, $_, 2; ["the password digest of $id", $h] } @hashes);
  for (grep { $_->[0] =~ /client secret|rotated/ } @SECRETS) {
    push @all, ["the stored digest of $_->[0]", sha256_hex($_->[1])] if defined $_->[1];
  }
  ok(@all >= 20, scalar(@all) . ' secrets to look for');
  my @known = grep { defined $_->[1] && length $_->[1] >= 6 } @all;
  is(scalar @known, scalar @all, 'every secret is known');
  my $sql = join(' UNION ALL ', map {
    sprintf('SELECT %d || \'|\' || count(*) FROM audit_log a WHERE strpos(a::text, %s) > 0', $_, sql_quote($known[$_][1]))
  } 0 .. $#known);
  my %count = map { split /\|/, $_, 2 } psql($sql);
  for my $i (0 .. $#known) {
    is($count{$i}, 0, "$known[$i][0] is in no audit row");
  }
};

# ---------------------------------------------------------------------------
# A write and its audit row commit together, or neither does

subtest 'when the audit row cannot be written, the write is undone (503)' => sub {
  my $marker = "$UA/poison/";
  push @UNDO, [poison => sub {
    psql("DROP TRIGGER IF EXISTS $POISON ON audit_log; DROP FUNCTION IF EXISTS $POISON()");
    close_audit_id_gap();
  }];
  psql("CREATE FUNCTION $POISON() RETURNS trigger LANGUAGE plpgsql AS \$f\$ BEGIN "
       . "IF NEW.user_agent LIKE " . sql_quote("$marker%") . " THEN "
       . "RAISE EXCEPTION 'the audit store refused the row'; END IF; RETURN NEW; END \$f\$; "
       . "CREATE TRIGGER $POISON BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION $POISON()");
  my @plan = map { my %a = $_->{setup}->(); [$_, \%a] } @WRITES;
  my $before = db_state();
  my @statuses;
  for my $i (0 .. $#plan) {
    my ($wr, $args) = @{ $plan[$i] };
    my ($m, $tpl) = split / /, $wr->{path}, 2;
    my $r = call($PERSON_TOKEN, $m, fill($tpl, $args), ip => unique_ip(), ua => "$marker$i",
                 (exists $args->{body} ? (json => $args->{body}) : ()));
    push @statuses, $r->{status};
    is_deeply([$r->{status}, $r->{json}], [503, { detail => 'Service temporarily unavailable' }],
              "$wr->{path} ($wr->{action}): 503 when its audit row is refused") or diag(substr($r->{content}, 0, 300));
  }
  is_deeply([changed_tables($before, db_state())], [], 'none of the writes was kept');
  is(psql('SELECT count(*) FROM audit_log WHERE user_agent LIKE ' . sql_quote("$marker%")), 0, 'no row was kept either');
  undo_now('poison');
  is(psql("SELECT count(*) FROM pg_trigger WHERE tgname = '$POISON'"), 0, 'the refusing trigger is gone');

  # the same requests, now that the audit log takes their rows: they were valid
  for my $i (0 .. $#plan) {
    my ($wr, $args) = @{ $plan[$i] };
    my ($m, $tpl) = split / /, $wr->{path}, 2;
    my $r = call($PERSON_TOKEN, $m, fill($tpl, $args), ip => unique_ip(), ua => "$UA/retry/$i",
                 (exists $args->{body} ? (json => $args->{body}) : ()));
    is($r->{status}, $wr->{status}, "$wr->{path} ($wr->{action}): the same request succeeds afterwards")
      or diag(substr($r->{content}, 0, 300));
    push @SECRETS, map { [$_->[0], $_->[1]] } $wr->{secrets}->($r, $args) if $wr->{secrets};
  }
};

subtest 'a CHECK constraint on audit_log refusing group.create: no group, 503' => sub {
  my $ua = "$UA/blocked";
  push @UNDO, [block => sub { psql("ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS $BLOCK"); close_audit_id_gap() }];
  psql("ALTER TABLE audit_log ADD CONSTRAINT $BLOCK CHECK (action <> 'group.create' OR user_agent IS DISTINCT FROM "
       . sql_quote($ua) . ')');
  my $name = 'AW blocked ' . n();
  my $body = { tenant_id => $W{tenant}{id}, name => $name };
  my $r = call($PERSON_TOKEN, POST => '/groups', json => $body, ua => $ua, ip => unique_ip());
  is($r->{status}, 503, 'the group is refused with 503: the request was valid, the server could not record it')
    or diag($r->{content});
  ok(is_json_error($r), 'a JSON error');
  is(psql('SELECT count(*) FROM groups WHERE name = ' . sql_quote($name)), 0, 'no group row was created');
  is(psql('SELECT count(*) FROM audit_log WHERE user_agent = ' . sql_quote($ua)), 0, 'no audit row either');
  undo_now('block');
  is(psql("SELECT count(*) FROM pg_constraint WHERE conname = '$BLOCK'"), 0, 'the constraint is gone');
  my $again = call($PERSON_TOKEN, POST => '/groups', json => $body, ua => $ua, ip => unique_ip());
  is($again->{status}, 201, 'the same request succeeds once the constraint is gone');
  is(psql('SELECT count(*) FROM groups WHERE name = ' . sql_quote($name)), 1, 'one group');
};

# ---------------------------------------------------------------------------

subtest 'the audit chain still verifies' => sub {
  my ($ok, $checked) = split /\|/, psql('SELECT ok, checked FROM sk_audit_verify()');
  is($ok, 't', 'sk_audit_verify() is ok');
  my $r = call($PERSON_TOKEN, GET => '/audit/verify');
  is($r->{status}, 200, 'GET /api/v1/admin/audit/verify: 200') or return diag($r->{content});
  ok(JSON::PP::is_bool($r->{json}{ok}) && $r->{json}{ok}, 'it says ok');
  ok(!defined $r->{json}{first_broken_id}, 'no broken row');
  is($r->{json}{checked}, psql('SELECT count(*) FROM audit_log'), 'every row was checked');
  cmp_ok($r->{json}{checked}, '>=', $checked, 'as many as the database function checked, or more');
};

subtest 'secrets again, after the retried writes' => sub {
  my @known = grep { defined $_->[1] && length $_->[1] >= 6 } @SECRETS;
  my $sql = join(' UNION ALL ', map {
    sprintf('SELECT %d || \'|\' || count(*) FROM audit_log a WHERE strpos(a::text, %s) > 0', $_, sql_quote($known[$_][1]))
  } 0 .. $#known);
  my %count = map { split /\|/, $_, 2 } psql($sql);
  is_deeply([map { $known[$_][0] } grep { $count{$_} } 0 .. $#known], [], 'no secret is in any audit row');
};

subtest 'no server error but the 503 of a write that could not be recorded' => sub {
  my @bad = grep { $_->[0] >= 500 && $_->[0] != 503 } @STATUSES;
  is(scalar @bad, 0, scalar(@STATUSES) . ' answers, no 5xx other than 503') or diag(explain \@bad);
};

done_testing();
