#!/usr/bin/perl
# The guard's revocation feed: every process learns from the store what was revoked or disabled
# (revoked client tokens, ended sessions, disabled users, suspended tenants, disabled clients)
# and refuses the tokens concerned within ScaiKeyRevocationDelay, both tokens it has verified
# before the revocation (cached) and tokens it sees for the first time after it. A fresh token
# costs no query of its own; with PostgreSQL stopped, fresh tokens are served (fail-static).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time sleep);
use SK qw(:all);
use SKOAuth qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
for (qw(SK_TOP SK_RUN SK_PG_HOST SK_PG_PORT)) {
  plan skip_all => "$_ not set (run under t/lib/harness.sh)" unless $ENV{$_};
}

my $AT = admin_token();

my ($X, $x_guard) = extra_apache(whoami_location(1), base());
ok($X, 'server with a 1 s revocation delay started') or BAIL_OUT('extra server did not start');

sub at_r { req(GET => '/r', base => $X, token => $_[0]) }

# Polls until the token is refused: (seconds it took, last response).
sub refused_within {
  my ($tok, $limit) = @_;
  my $t0 = time();
  my $r;
  while (1) {
    $r = at_r($tok);
    last if $r->{status} != 200 || time() - $t0 > $limit;
    sleep 0.1;
  }
  return (time() - $t0, $r);
}

# $cached was accepted before the revocation, $unseen never presented before it: both are refused
# within the 1 s delay (plus the time a request and a poll take).
sub both_refused {
  my (%o) = @_;
  my ($name, $cached, $unseen, $why) = @o{qw(name cached unseen why)};
  is(at_r($cached)->{status}, 200, "$name: a token accepted (and cached) before") or return;
  ok($o{revoke}->(), "$name: revoked");
  my $t0 = time();
  my ($took, $r) = refused_within($cached, 5);
  is($r->{status}, 401, "$name: the cached token is then refused") or return diag($r->{content});
  cmp_ok($took, '<=', 2.5, sprintf('%s: within the 1 s delay (%.2f s)', $name, $took));
  like($r->{headers}{'www-authenticate'} // '', qr/error="invalid_token", error_description="\Q$why\E/,
       "$name: $why");
  sleep(1.2 - (time() - $t0)) if time() - $t0 < 1.2;
  $r = at_r($unseen);
  is($r->{status}, 401, "$name: a token never presented before is refused too") or diag($r->{content});
  like($r->{headers}{'www-authenticate'} // '', qr/error_description="\Q$why\E/, "$name: $why (unseen)");
}

sub revoke_token {
  my ($app, $slug, $tok) = @_;
  return oauth_post(endpoint_path($slug, 'revoke'), [token => $tok, token_type_hint => 'access_token'],
                    basic => [$app->{client_id}, $app->{client_secret}])->{status} == 200;
}

my $tenant = create_tenant();
my $slug = $tenant->{slug};
my $web = new_app($AT, application_type => 'WEB', scope => 'TENANT', tenant_id => $tenant->{id},
                  allowed_scopes => [qw(openid profile)], redirect_uris => ['https://web.example/cb']);

# Two access tokens of one session of a person of the tenant (as a sign-in and a refresh would
# give them): (session id, token, token)
sub person_tokens {
  my ($user) = @_;
  my $sid = sso_session(user_id => $user->{id}, tenant_id => $tenant->{id}, client_id => $web->{client_id});
  my @t;
  for (1 .. 2) {
    my $rt = sso_refresh(session_id => $sid, user_id => $user->{id}, client_id => $web->{client_id},
                         scope => 'openid profile');
    my $r = token_req($slug, [grant_type => 'refresh_token', refresh_token => $rt],
                      basic => [$web->{client_id}, $web->{client_secret}]);
    die "refresh: $r->{status} $r->{content}\n" unless $r->{status} == 200;
    push @t, $r->{json}{access_token};
  }
  return ($sid, @t);
}

subtest 'a revoked client token (platform)' => sub {
  my $app = new_app($AT, application_type => 'SERVICE', scope => 'GLOBAL');
  my $tok = client_token(app => $app);
  my $other = client_token(app => $app);
  is(at_r($tok)->{status}, 200, 'accepted (and cached) before');
  ok(revoke_token($app, undef, $tok), 'POST /revoke');
  my ($took, $r) = refused_within($tok, 5);
  is($r->{status}, 401, 'then 401') or diag($r->{content});
  cmp_ok($took, '<=', 2.5, sprintf('within the 1 s delay (%.2f s)', $took));
  like($r->{headers}{'www-authenticate'} // '', qr/error_description="token revoked"/, 'token revoked');
  is(at_r($other)->{status}, 200, 'another token of the client: 200');
  # revoked before it was ever presented
  my $unseen = client_token(app => $app);
  ok(revoke_token($app, undef, $unseen), 'revoking a token never presented');
  sleep 1.2;
  is(at_r($unseen)->{status}, 401, 'it is refused on first sight');
  is(req(GET => '/demo/whoami', token => $unseen)->{status}, 401, 'also on the main server (5 s delay)')
    or sleep 5;
};

subtest 'a revoked client token (tenant)' => sub {
  my $app = new_app($AT, application_type => 'SERVICE', scope => 'TENANT', tenant_id => $tenant->{id});
  my ($cached, $unseen, $other) = map { client_token(app => $app, slug => $slug) } 1 .. 3;
  is(at_r($cached)->{status}, 200, 'accepted (and cached) before');
  ok(revoke_token($app, $slug, $cached), 'POST /revoke of a token seen before');
  ok(revoke_token($app, $slug, $unseen), 'POST /revoke of a token never presented');
  my ($took, $r) = refused_within($cached, 5);
  is($r->{status}, 401, 'the cached token: then 401') or diag($r->{content});
  cmp_ok($took, '<=', 2.5, sprintf('within the 1 s delay (%.2f s)', $took));
  # each process reads the feed on its own schedule: the one that answers may lag the other
  ($took, $r) = refused_within($unseen, 5);
  is($r->{status}, 401, 'the unseen token: 401');
  cmp_ok($took, '<=', 2.5, sprintf('within the 1 s delay (%.2f s)', $took));
  like($r->{headers}{'www-authenticate'} // '', qr/error_description="token revoked"/, 'token revoked');
  is(at_r($other)->{status}, 200, 'another token of the client: 200');
};

subtest 'a revoked session' => sub {
  my $u = create_user(role => 'user', tenant_id => $tenant->{id}, prefix => 'feed-s');
  my ($sid, $cached, $unseen) = person_tokens($u);
  both_refused(name => 'session revoked', cached => $cached, unseen => $unseen,
               why => 'session ended or account disabled',
               revoke => sub { req(DELETE => "/api/v1/admin/sessions/$sid", token => $AT)->{status} == 204 });
};

subtest 'a disabled user' => sub {
  my $u = create_user(role => 'user', tenant_id => $tenant->{id}, prefix => 'feed-u');
  my (undef, $cached, $unseen) = person_tokens($u);
  both_refused(name => 'user suspended', cached => $cached, unseen => $unseen,
               why => 'session ended or account disabled',
               revoke => sub { admin_req($AT, 'PATCH', 'users', $u->{id}, json => { status => 'SUSPENDED' })->{status} == 200 });
};

subtest 'a suspended tenant' => sub {
  my $t2 = create_tenant();
  my $app = new_app($AT, application_type => 'SERVICE', scope => 'TENANT', tenant_id => $t2->{id});
  my ($cached, $unseen) = map { client_token(app => $app, slug => $t2->{slug}) } 1 .. 2;
  both_refused(name => 'tenant suspended', cached => $cached, unseen => $unseen, why => 'tenant suspended',
               revoke => sub { admin_req($AT, 'PATCH', 'tenants', $t2->{id}, json => { status => 'SUSPENDED' })->{status} == 200 });
};

subtest 'a suspended tenant: its people' => sub {
  my $u = create_user(role => 'user', tenant_id => $tenant->{id}, prefix => 'feed-t');
  my (undef, $cached, $unseen) = person_tokens($u);
  both_refused(name => 'tenant of a person suspended', cached => $cached, unseen => $unseen,
               why => 'session ended or account disabled',
               revoke => sub { admin_req($AT, 'PATCH', 'tenants', $tenant->{id}, json => { status => 'SUSPENDED' })->{status} == 200 });
  admin_req($AT, 'PATCH', 'tenants', $tenant->{id}, json => { status => 'ACTIVE' });
};

subtest 'PostgreSQL stopped: fresh tokens are served' => sub {
  my $app = new_app($AT, application_type => 'SERVICE', scope => 'GLOBAL');
  my $seen = client_token(app => $app);
  my @fresh = map { client_token(app => $app) } 1 .. 3;
  my $revoked = client_token(app => $app);
  ok(revoke_token($app, undef, $revoked), 'one token revoked before the outage');
  sleep 1.2;
  is(at_r($seen)->{status}, 200, 'a token seen while the database runs');
  ok(pg_stop(), 'PostgreSQL stopped') or return;
  sleep 1.3;
  my $t0 = time();
  for my $i (0 .. $#fresh) {
    my $r = at_r($fresh[$i]);
    is($r->{status}, 200, "fresh token $i: 200") or diag($r->{content});
  }
  is(at_r($revoked)->{status}, 401, 'the token revoked before the outage stays refused');
  cmp_ok(time() - $t0, '<', 5, 'nothing waited for the database');
  ok(pg_start(), 'PostgreSQL started again');
  my $tok = client_token_retry($app);
  # the main server's pooled connections died with PostgreSQL: each fails once
  my $revoked_after;
  for (1 .. 20) { last if $tok && ($revoked_after = revoke_token($app, undef, $tok)); sleep 0.2 }
  ok($revoked_after, 'revocation after the outage');
  my ($took, $r) = refused_within($tok, 10);
  is($r->{status}, 401, 'is honoured again') or diag($r->{content});
  # the pooled connections were re-opened in place and lost their prepared statements: writes in
  # transactions must prepare them again rather than fail
  my @bad;
  for my $i (1 .. 20) {
    my $w = req(POST => '/api/v1/admin/groups', token => $AT,
                json => { tenant_id => $tenant->{id}, name => "after the outage $i" });
    push @bad, "$w->{status} $w->{content}" unless $w->{status} == 201;
  }
  is(scalar @bad, 0, 'twenty writes (each a transaction with its audit row) after the outage: all 201')
    or diag(join "\n", @bad);
  ok(main_server_fresh(), 'the main server starts the tests that follow with fresh connections');
};

sub client_token_retry {
  my ($app) = @_;
  for (1 .. 50) {
    my $r = client_cc(undef, $app);
    return $r->{json}{access_token} if $r->{status} == 200;
    sleep 0.2;
  }
  return;
}

$x_guard->stop if $x_guard;
done_testing();
