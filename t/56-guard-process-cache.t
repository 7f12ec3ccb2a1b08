#!/usr/bin/perl
# The guard's table of recent credentials in each process (ScaiKeyProcessCache): a credential is
# always answered with its own identity, also when the table is far smaller than the credentials
# in use (entries evicted and verified again); revocations reach what the table holds within the
# delay; the table can be turned off, and works without the shared cache; a wrong value stops
# Apache with a message.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use SK qw(:all);
use SKOAuth qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
for (qw(SK_TOP SK_RUN SK_PG_HOST SK_PG_PORT)) {
  plan skip_all => "$_ not set (run under t/lib/harness.sh)" unless $ENV{$_};
}

my $AT = admin_token();

my $LOCATION = whoami_location(1);

# The message Apache stops with for these lines, or undef when it starts.
sub start_error {
  my ($lines) = @_;
  my $warned = '';
  local $SIG{__WARN__} = sub { $warned .= $_[0] };
  my ($url, $guard) = extra_apache($lines, base());
  return $url ? undef : $warned;
}

subtest 'a wrong value stops Apache' => sub {
  for my $bad ('many', '-1', '1048577', '1.5') {
    my $err = start_error("ScaiKeyProcessCache \"$bad\"\n$LOCATION");
    ok(defined $err, "ScaiKeyProcessCache '$bad': Apache does not start");
    like($err // '', qr/ScaiKeyProcessCache: '\Q$bad\E' is not a number of entries/, 'and says why');
  }
  my $err = start_error("<Location /x>\nScaiKeyProcessCache 10\n</Location>\n$LOCATION");
  ok(defined $err, 'inside <Location>: Apache does not start');
  like($err // '', qr/ScaiKeyProcessCache.*not allowed/s, 'and says where it belongs');
};

sub revoke_token {
  my ($app, $tok) = @_;
  return oauth_post(endpoint_path(undef, 'revoke'), [token => $tok, token_type_hint => 'access_token'],
                    basic => [$app->{client_id}, $app->{client_secret}])->{status} == 200;
}

sub new_key {
  my ($user) = @_;
  my $r = req(POST => '/api/v1/admin/api-keys', token => $AT,
              json => { name => 'process-cache', user_id => $user->{id}, scopes => ['demo:read'] });
  die "api key: $r->{status} $r->{content}\n" unless $r->{json}{key};
  return $r->{json};
}

sub at {
  my ($base, $cred) = @_;
  return req(GET => '/r', base => $base,
             $cred =~ /\Ask_/ ? (headers => { 'X-API-Key' => $cred }) : (token => $cred));
}

sub refused_within {
  my ($base, $cred, $limit) = @_;
  my $t0 = time();
  my $r;
  while (1) {
    $r = at($base, $cred);
    last if $r->{status} != 200 || time() - $t0 > $limit;
    sleep 0.1;
  }
  return (time() - $t0, $r);
}

# Credentials of several callers, each with the identity the backend must see for it.
my @apps = map { new_app($AT, application_type => 'SERVICE', scope => 'GLOBAL') } 1 .. 3;
my @users = map { create_user(prefix => 'pcache') } 1 .. 3;
my @creds;
for my $app (@apps) {
  push @creds, { cred => client_token(app => $app), user => $app->{client_id}, client => $app->{client_id} }
    for 1 .. 8;
}
for my $u (@users) {
  push @creds, { cred => new_key($u)->{key}, user => $u->{id} } for 1 .. 2;
}

# Every credential, in turn, several times over: each answer is the credential's own caller.
sub each_answered_as_itself {
  my ($base, $name) = @_;
  my ($wrong, $refused) = (0, 0);
  for my $round (1 .. 3) {
    for my $c (@creds) {
      my $r = at($base, $c->{cred});
      if ($r->{status} != 200) {
        $refused++;
        diag("$name: $r->{status} $r->{content}") if $refused <= 3;
        next;
      }
      my $h = $r->{json}{headers} // {};
      $wrong++ if ($r->{json}{user} // '') ne $c->{user} ||
                  ($c->{client} && ($h->{'X-ScaiKey-Client'} // '') ne $c->{client});
    }
  }
  is($refused, 0, "$name: every credential accepted, every time");
  is($wrong, 0, "$name: each one answered with its own identity");
}

sub revocations_reach {
  my ($base, $name) = @_;
  my $app = new_app($AT, application_type => 'SERVICE', scope => 'GLOBAL');
  my $tok = client_token(app => $app);
  is(at($base, $tok)->{status}, 200, "$name: a client token accepted (and kept)");
  ok(revoke_token($app, $tok), "$name: revoked");
  my ($took, $r) = refused_within($base, $tok, 5);
  is($r->{status}, 401, "$name: then refused") or diag($r->{content});
  cmp_ok($took, '<=', 2.5, sprintf('%s: within the 1 s delay (%.2f s)', $name, $took));
  like($r->{headers}{'www-authenticate'} // '', qr/error_description="token revoked"/, "$name: token revoked");

  my $key = new_key($users[0]);
  is(at($base, $key->{key})->{status}, 200, "$name: an API key accepted (and kept)");
  is(req(DELETE => "/api/v1/admin/api-keys/$key->{id}", token => $AT)->{status}, 200, "$name: key revoked");
  ($took, $r) = refused_within($base, $key->{key}, 6);
  is($r->{status}, 401, "$name: the key is then refused") or diag($r->{content});
  cmp_ok($took, '<=', 3.5, sprintf('%s: within the delay (%.2f s)', $name, $took));
}

for my $case (
  [ 'a table of 8 entries for 30 credentials', "ScaiKeyProcessCache 8\n" ],
  [ 'no table (shared cache only)', "ScaiKeyProcessCache off\n" ],
  [ 'the table without a shared cache', "ScaiKeyCache none\n" ],
) {
  my ($name, $lines) = @$case;
  subtest $name => sub {
    my ($X, $guard) = extra_apache($lines . $LOCATION, base());
    ok($X, 'server started') or return;
    each_answered_as_itself($X, $name);
    revocations_reach($X, $name);
  };
}

done_testing();
