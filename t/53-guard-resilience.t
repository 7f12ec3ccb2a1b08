#!/usr/bin/perl
# The guard over time: revocations (logout, session revoke, key revoke, tenant suspended, user
# disabled, client and agent disabled) take effect within ScaiKeyRevocationDelay; with PostgreSQL
# stopped, verified credentials keep working from the cache, new JWTs from the keys in memory,
# unknown API keys get 503, nothing hangs; after PostgreSQL is back, revocations work again.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time sleep);
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
for (qw(SK_TOP SK_RUN SK_PG_HOST SK_PG_PORT SK_HTTPD_CONF)) {
  plan skip_all => "$_ not set (run under t/lib/harness.sh)" unless $ENV{$_};
}

my $ADMIN = admin_login() or BAIL_OUT('admin login failed');
my $AT    = $ADMIN->{access_token};

# ---- callers ----

sub new_key {
  my (%body) = @_;
  my $r = req(POST => '/api/v1/admin/api-keys', token => $AT, json => { name => 'resilience', %body });
  die "api key: $r->{status} $r->{content}\n" unless $r->{json}{key};
  return $r->{json};
}

sub person {
  my ($tenant) = @_;
  my $u = create_user(role => 'tenant_admin', tenant_id => $tenant->{id}, prefix => 'guard-rs');
  my ($j, $r) = admin_login(email => $u->{email}, password => $u->{password});
  die "login: $r->{status} $r->{content}\n" unless $j;
  my (undef, $c) = jwt_parts($j->{access_token});
  return { %$u, token => $j->{access_token}, sid => $c->{sid} };
}

my ($X, $x_guard) = extra_apache(whoami_location(1), base());
ok($X, 'server with a 1 s revocation delay started') or BAIL_OUT('extra server did not start');

sub at_r {
  my ($cred, %o) = @_;
  my %c = $cred =~ /\Ask_/ ? (headers => { 'X-API-Key' => $cred }) : (token => $cred);
  return req(GET => '/r', base => $X, %c, %o);
}

# Polls until the credential is refused; returns (seconds it took, last response).
sub refused_within {
  my ($cred, $limit, %o) = @_;
  my $t0 = time();
  my $r;
  while (1) {
    $r = $o{path} ? req(GET => $o{path}, ($cred =~ /\Ask_/ ? (headers => { 'X-API-Key' => $cred }) : (token => $cred)))
                  : at_r($cred);
    last if $r->{status} != 200 || time() - $t0 > $limit;
    sleep 0.1;
  }
  return (time() - $t0, $r);
}

sub revoked_ok {
  my ($cred, $why, $name, $revoke) = @_;
  is(at_r($cred)->{status}, 200, "$name: accepted (and cached) before") or return;
  ok($revoke->(), "$name: revoked");
  my ($took, $r) = refused_within($cred, 5);
  is($r->{status}, 401, "$name: then 401") or return diag($r->{content});
  cmp_ok($took, '<=', 2.5, sprintf('%s: within the 1 s delay (%.2f s)', $name, $took));
  like($r->{headers}{'www-authenticate'} // '', qr/error="invalid_token", error_description="\Q$why\E/,
       "$name: $why");
}

# Another credential the same revocation concerns, once the first was refused: 401 within the delay.
sub also_refused {
  my ($cred, $name) = @_;
  my ($took, $r) = refused_within($cred, 5);
  is($r->{status}, 401, "$name: 401") or return;
  cmp_ok($took, '<=', 1.5, sprintf('%s: within the 1 s delay (%.2f s later)', $name, $took));
}

my $t1 = create_tenant();
my $t2 = create_tenant();

subtest 'logout' => sub {
  my $p = person($t1);
  revoked_ok($p->{token}, 'session ended or account disabled', 'logout', sub {
    req(POST => '/api/v1/admin/auth/logout', token => $p->{token}, ip => unique_ip())->{status} =~ /\A20[04]\z/ });
};

subtest 'session revoked by an administrator' => sub {
  my $p = person($t1);
  revoked_ok($p->{token}, 'session ended or account disabled', 'DELETE /admin/sessions/{id}', sub {
    req(DELETE => "/api/v1/admin/sessions/$p->{sid}", token => $AT)->{status} == 204 });
};

subtest 'API key revoked' => sub {
  my $u = create_user(role => 'user', tenant_id => $t1->{id}, prefix => 'guard-rk');
  my $k = new_key(user_id => $u->{id});
  revoked_ok($k->{key}, 'unknown, revoked or expired API key', 'key revoke', sub {
    req(DELETE => "/api/v1/admin/api-keys/$k->{id}", token => $AT)->{status} =~ /\A20[04]\z/ });
};

subtest 'tenant suspended' => sub {
  my $app = admin_create($AT, 'applications', { name => 'suspend me', application_type => 'SERVICE',
                                                scope => 'TENANT', tenant_id => $t2->{id} });
  my $tok = client_token(id => $app->{client_id}, secret => $app->{client_secret}, slug => $t2->{slug});
  my $p = person($t2);
  my $u = create_user(role => 'user', tenant_id => $t2->{id}, prefix => 'guard-ts');
  my $k = new_key(user_id => $u->{id});
  is(at_r($_)->{status}, 200, 'accepted before') for $p->{token}, $k->{key};
  revoked_ok($tok, 'tenant suspended', 'tenant client token', sub {
    admin_req($AT, 'PATCH', 'tenants', $t2->{id}, json => { status => 'SUSPENDED' })->{status} == 200 });
  # every process reads the revocation feed itself: the others within the delay too
  also_refused($p->{token}, 'a person of the tenant');
  also_refused($k->{key}, 'a key of the tenant');
};

subtest 'user disabled' => sub {
  my $p = person($t1);
  my $k = new_key(user_id => $p->{id});
  is(at_r($k->{key})->{status}, 200, 'the key is accepted before');
  revoked_ok($p->{token}, 'session ended or account disabled', 'user suspended', sub {
    admin_req($AT, 'PATCH', 'users', $p->{id}, json => { status => 'SUSPENDED' })->{status} == 200 });
  also_refused($k->{key}, 'the user\'s key');
};

subtest 'client and agent disabled' => sub {
  my $app = admin_create($AT, 'applications', { name => 'disable me', application_type => 'SERVICE', scope => 'GLOBAL' });
  my $tok = client_token(id => $app->{client_id}, secret => $app->{client_secret});
  revoked_ok($tok, 'client disabled or deleted', 'application suspended', sub {
    admin_req($AT, 'PATCH', 'applications', $app->{id}, json => { status => 'SUSPENDED' })->{status} == 200 });
  my $agent = admin_create($AT, 'agents', { name => 'disable me', tenant_id => $t1->{id} });
  my $atok = client_token(id => $agent->{client_id}, secret => $agent->{client_secret}, slug => $t1->{slug});
  revoked_ok($atok, 'client disabled or deleted', 'agent suspended', sub {
    admin_req($AT, 'PATCH', 'agents', $agent->{id}, json => { status => 'SUSPENDED' })->{status} == 200 });
};

subtest 'the default delay (5 s) on the main server' => sub {
  my $u = create_user(role => 'user', tenant_id => $t1->{id}, prefix => 'guard-dd');
  my $k = new_key(user_id => $u->{id}, scopes => ['demo:read']);
  my $path = '/demo/whoami';
  is(req(GET => $path, headers => { 'X-API-Key' => $k->{key} })->{status}, 200, 'accepted before');
  req(DELETE => "/api/v1/admin/api-keys/$k->{id}", token => $AT);
  my ($took, $r) = refused_within($k->{key}, 10, path => $path);
  is($r->{status}, 401, 'refused after the revocation');
  cmp_ok($took, '<=', 6.5, sprintf('within 5 s (%.2f s)', $took));
};

subtest 'PostgreSQL stopped: fail-static, never hanging' => sub {
  my $app = admin_create($AT, 'applications', { name => 'outage', application_type => 'SERVICE', scope => 'GLOBAL',
                                                allowed_scopes => ['demo:read'] });
  my $cached = client_token(id => $app->{client_id}, secret => $app->{client_secret});
  my $fresh  = client_token(id => $app->{client_id}, secret => $app->{client_secret});
  my $p      = person($t1);
  my $u      = create_user(role => 'user', tenant_id => $t1->{id}, prefix => 'guard-db');
  my $key    = new_key(user_id => $u->{id}, scopes => ['demo:read'])->{key};
  my $unseen = new_key(user_id => $u->{id}, scopes => ['demo:read'])->{key};
  is(at_r($_)->{status}, 200, 'verified and cached while the database runs') for $cached, $key, $p->{token};
  is(req(GET => '/demo/whoami', token => $cached)->{status}, 200, 'also on the main server');

  ok(pg_stop(), 'PostgreSQL stopped') or return;
  sleep 1.3;    # every cached check is now older than the delay: the guard wants the database
  my $t0 = time();
  for my $round (1 .. 3) {
    my $r = at_r($cached);
    is($r->{status}, 200, "round $round: cached token: 200") or diag($r->{content});
    is(at_r($key)->{status}, 200, "round $round: cached API key: 200");
    is(at_r($p->{token})->{status}, 200, "round $round: cached session token: 200");
  }
  my $r = at_r($fresh);
  is($r->{status}, 200, 'a token never seen before: 200 (signature checked with the keys in memory)');
  is($r->{json}{headers}{'X-ScaiKey-Sub'}, $app->{client_id}, 'with its identity');
  $r = at_r($unseen);
  is($r->{status}, 503, 'an API key never seen before: 503');
  like($r->{headers}{'retry-after'} // '', qr/\A\d+\z/, 'with Retry-After');
  is($r->{json}{error}, 'temporarily_unavailable', 'and a JSON body');
  $r = at_r('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.');
  is($r->{status}, 401, 'a forged token: 401');
  is(req(GET => '/r', base => $X)->{status}, 401, 'no credential: 401');
  is(req(GET => '/demo/whoami', token => $cached)->{status}, 200, 'main server: cached token: 200');
  my $slowest = 0;
  for (1 .. 20) {
    my $x = at_r($_ % 2 ? $cached : $key);
    $slowest = $x->{elapsed} if $x->{elapsed} > $slowest;
  }
  cmp_ok($slowest, '<', 1.5, sprintf('20 more requests, the slowest took %.3f s', $slowest));
  cmp_ok(time() - $t0, '<', 15, 'nothing waited for the database');

  ok(pg_start(), 'PostgreSQL started again') or return;
  ok(main_server_fresh(), 'the main server answers from the database again');
  my $deadline = time() + 30;
  my $back;
  while (time() < $deadline) {
    $back = at_r($unseen);
    last if $back->{status} == 200;
    sleep 0.3;
  }
  is($back->{status}, 200, 'the unseen key works once the database answers');
  my $q = person($t1);
  is(at_r($q->{token})->{status}, 200, 'a new session works');
  revoked_ok($p->{token}, 'session ended or account disabled', 'revocation after the outage', sub {
    req(DELETE => "/api/v1/admin/sessions/$p->{sid}", token => $AT)->{status} == 204 });
};

$x_guard->stop if $x_guard;
done_testing();
