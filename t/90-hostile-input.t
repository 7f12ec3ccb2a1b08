#!/usr/bin/perl
# Every operation of the API description, called with hostile input: path parameters that name
# nothing (an unknown id, SQL metacharacters, bytes that are not UTF-8, 300 characters), query
# strings of the wrong types, and bodies that are not JSON, not an object, of the wrong types,
# nested 2,000 deep, not UTF-8 or over 1 MiB, and a form of hostile fields; and hostile bearer
# tokens. By a super_admin, by a tenant user and by nobody:
# never a 5xx, and an error of the API's JSON shape wherever the answer is JSON (RFC 6749's at the
# OAuth endpoints).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MIME::Base64 ();
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $json = JSON::PP->new->utf8->canonical;
my $doc = eval { $json->decode(req(GET => '/openapi.json')->{content}) };
plan skip_all => 'no /openapi.json (production mode)' unless ref $doc eq 'HASH';

# operations left out: they end the caller's own session or rotate the keys of the installation,
# which later requests of this file would feel (each has its own tests)
my $SKIP = qr{/logout\z|/keys/rotate\z|revoke-all|/refresh\z};

my @IDS = ('00000000-0000-0000-0000-000000000000', "x' OR '1'='1", '%FF%FE', 'a' x 300);
my @QUERIES = ('limit=-1&offset=-5', 'limit=99999999999999999999999', 'limit=abc&page=x', 'cursor=%FF%FE',
               "cursor=' OR 1=1--", 'sort=;DROP&order=%27', 'q=%FF&search=' . ('a' x 5000),
               'a=1&a=2&a=3&from=notadate&to=2026-13-45',
               'response_type=code&client_id=%FF&redirect_uri=javascript:alert(1)&scope=%00&state=%3Cscript%3E'
               . '&code_challenge=' . ('x' x 3000) . '&code_challenge_method=plain&nonce=%C3%28&prompt=%FF&flow=%FF');
my $FORM = "flow=%FF%FE&csrf=%27%22%3C&email=x%00y&password=" . ('p' x 5000) . "&code=%F0%28%8C%28&client_id=%C3%28"
         . "&grant_type=client_credentials&token=%FF&scope=%00&redirect_uri=javascript:alert(1)&tenant_id=%27";
my @BODIES = ('{', '[1,2]', 'null', "\xff\xfe{}", '{"name": "\u0000", "email": {"$gt": ""}}',
              '{"email":12,"name":[],"password":{},"role":true,"scopes":"x","tenant_id":1.5,"unknown_field":1}',
              '[' x 2000, '{"x":"' . ('a' x (1024 * 1024 + 10)) . '"}');

my $tenant = create_tenant(name => 'Hostile Co');
my $user = create_user(role => 'user', tenant_id => $tenant->{id}, prefix => 'hostile');
my %TOKEN = (super_admin => undef, user => undef, nobody => undef);
sub token {
  my ($who) = @_;
  return undef if $who eq 'nobody';
  $TOKEN{$who} //= $who eq 'super_admin' ? admin_token()
    : req(POST => "/api/v1/auth/tenants/$tenant->{slug}/login",
          json => { email => $user->{email}, password => $user->{password} }, ip => unique_ip())->{json}{access_token};
  return $TOKEN{$who};
}

# the API's {"detail": ...}; the OAuth endpoints answer RFC 6749's {"error": ...} instead
sub error_shape_ok {
  my ($path, $r) = @_;
  return 1 if is_json_error($r);
  return ($path =~ s/\?.*//sr) =~ m{/oauth/(?:token|introspect|revoke|userinfo)\z} && ref $r->{json} eq 'HASH'
    && defined $r->{json}{error} && !ref $r->{json}{error};
}

my (@server_errors, @bad_shape);
my $count = 0;
sub call {
  my ($who, $method, $path, $body, $type) = @_;
  my $r = req($method, $path, (defined token($who) ? (token => token($who)) : ()), (defined $body ? (raw => $body) : ()),
              (defined $type ? (headers => { 'Content-Type' => $type }) : ()));
  $count++;
  if ($r->{status} == 401 && $who ne 'nobody' && $r->{content} =~ /revoked|expired/) {
    delete $TOKEN{$who};                    # signed out by an operation: sign in again
  }
  my $what = "$who $method $path" . (defined $body ? ' body ' . substr($body, 0, 30) : '');
  push @server_errors, "$r->{status} $what" if $r->{status} >= 500;
  push @bad_shape, "$r->{status} $what" if $r->{status} >= 400 && $path =~ m{\A/api/}
    && ($r->{headers}{'content-type'} // '') =~ m{\Aapplication/json}i && !error_shape_ok($path, $r);
}

for my $p (sort keys %{ $doc->{paths} }) {
  for my $m (grep { /\A(?:get|post|put|patch|delete)\z/ } sort keys %{ $doc->{paths}{$p} }) {
    next if $p =~ $SKIP;
    my $method = uc $m;
    my @paths = $p =~ /\{/ ? map { (my $x = $p) =~ s/\{[^}]+\}/$_/g; $x } @IDS : ($p);
    # with a real tenant slug (the other parameters hostile), so that the tenant's sign-in
    # pages, forms and OAuth endpoints are reached: first, as it gets every body and query (not
    # a real tenant id: the admin API would act on the tenant itself)
    if ($p =~ /\{tenant_slug\}/) {
      (my $x = $p) =~ s/\{tenant_slug\}/$tenant->{slug}/;
      $x =~ s/\{[^}]+\}/$IDS[2]/g;
      unshift @paths, $x;
    }
    for my $path (@paths) {
      if ($method eq 'GET') {
        call('super_admin', GET => $path);
        call('super_admin', GET => "$path?$_") for ($path eq $paths[0] ? @QUERIES : ());
      } elsif ($method eq 'DELETE') {
        call('super_admin', DELETE => $path);
      } else {
        call('super_admin', $method, $path, $_) for ($path eq $paths[0] ? @BODIES : $BODIES[5]);
        call('super_admin', $method, $path, $FORM, 'application/x-www-form-urlencoded') if $path eq $paths[0];
      }
    }
    # a person's token and none: the first hostile path, the first bodies
    for my $who (qw(user nobody)) {
      call($who, $method, $paths[-1], $method =~ /\A(?:GET|DELETE)\z/ ? undef : $BODIES[$_]) for 0, 5;
    }
  }
}

# an id that is not UTF-8 names nothing: the resource's own 404, not the store's refusal
for (['/api/v1/me/sessions/%FF%FE', 'Session not found'], ['/api/v1/me/authorized-apps/%C3%28', 'Authorized app not found'],
     ['/api/v1/admin/users/%FF', 'User not found']) {
  my ($path, $detail) = @$_;
  is(req(DELETE => $path)->{status}, 401, "DELETE $path without a token: 401");
  my $who = $path =~ m{/me/} ? 'user' : 'super_admin';
  my $r = req(DELETE => $path, token => token($who));
  is($r->{status}, 404, "DELETE $path by the $who: 404") or diag($r->{content});
  is_deeply($r->{json}, { detail => $detail }, "detail: $detail");
}

# hostile bearer tokens: not JWTs, JWTs whose parts are not base64url or not JSON, headers of
# the wrong types, alg none, a kid of 10,000 characters, 60 KB of token, a header that is not UTF-8
{
  my $b64 = sub { my $x = MIME::Base64::encode_base64($_[0], ''); $x =~ tr{+/}{-_}; $x =~ s/=+\z//; $x };
  my $claims = $b64->('{"sub":"x","exp":9999999999}');
  my @tokens = ('x', '...', 'a.b.c', 'a.b.c.d.e', '%%%.%%%.%%%',
                $b64->('[]') . ".$claims.", $b64->('"RS256"') . ".$claims.AAAA",
                $b64->('{"alg":"none"}') . ".$claims.", $b64->('{"alg":"RS256","kid":12}') . ".$claims.AAAA",
                $b64->('{"alg":"ES256","kid":"' . ('k' x 10000) . '"}') . ".$claims.AAAA",
                $b64->('{"alg":"RS256","kid":"x","crit":[{}]}') . ".$claims.AAAA",
                $b64->("{\"alg\":\"RS256\",\"kid\":\"\xff\"}") . ".$claims.AAAA",
                $b64->('{"alg":"ES256"}') . '.' . $b64->('{' x 3000) . '.AAAA', 'e' x 60000);
  for my $path ('/api/v1/admin/auth/me', '/api/v1/me', '/api/v1/admin/users') {
    for my $t (@tokens) {
      my $r = req(GET => $path, headers => { Authorization => "Bearer $t" });
      $count++;
      push @server_errors, "$r->{status} GET $path with token " . substr($t, 0, 30) if $r->{status} >= 500;
      # a 401 of the API's shape, or Apache's own 400/431 for a header too large
      my $ok = $r->{status} == 401 ? is_json_error($r) : ($r->{status} == 400 || $r->{status} == 431);
      push @bad_shape, "$r->{status} GET $path with token " . substr($t, 0, 30) unless $ok;
    }
  }
}

cmp_ok($count, '>', 1000, "$count requests made");
is_deeply(\@server_errors, [], 'no answer was a server error');
is_deeply(\@bad_shape, [], 'every JSON error of the API has its documented shape');
done_testing();
