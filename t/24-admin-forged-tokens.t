#!/usr/bin/perl
# Forged, tampered and expired bearer tokens on /api/v1/admin/auth/me.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 8;

require Crypt::PK::RSA;
require Crypt::PK::ECC;

my $ME = '/api/v1/admin/auth/me';
my $canon = JSON::PP->new->utf8->canonical;

sub me { req(GET => $ME, @_) }

sub invalid_token_ok {
  my ($r, $name) = @_;
  is($r->{status}, 401, "$name: 401");
  is_deeply($r->{json}, { detail => 'Invalid or expired token' }, "$name: detail")
    or diag(substr($r->{content}, 0, 300));
  like($r->{headers}{'www-authenticate'} // '', qr/\ABearer\b.*\berror="invalid_token"/,
       "$name: WWW-Authenticate Bearer error=\"invalid_token\"");
}

my $jwks = jwks();
my $user = create_user();
my ($login, $lr) = admin_login(email => $user->{email}, password => $user->{password});
my $other_user = create_user();
my $other = admin_login(email => $other_user->{email}, password => $other_user->{password});

my $token = $login ? $login->{access_token} : '';
my ($H, $C) = jwt_parts($token);
my ($hseg, $cseg, $sseg) = split /\./, $token;
my ($JWK) = grep { ($_->{kid} // '') eq (($H // {})->{kid} // '') } @{ ($jwks // {})->{keys} // [] };

my $attacker = Crypt::PK::RSA->new;
$attacker->generate_key(256, 65537);
my $attacker_ec = Crypt::PK::ECC->new;
$attacker_ec->generate_key('secp256r1');

subtest 'prerequisites' => sub {
  ok($jwks, 'JWKS fetched');
  ok($login, 'logged in') or diag("$lr->{status} $lr->{content}");
  ok($other, 'second user logged in');
  ok($H && $C, 'token decodes');
  ok($JWK, 'the token\'s kid is in the JWKS');
  is(me(token => $token)->{status}, 200, 'the genuine token is accepted');
};

subtest 'alg none' => sub {
  plan skip_all => 'no token' unless $H;
  for my $alg ('none', 'None', 'NONE', 'nOnE') {
    invalid_token_ok(me(token => forge_jwt({ %$H, alg => $alg }, $C, undef)), "alg $alg, empty signature");
  }
  invalid_token_ok(me(token => forge_jwt({ %$H, alg => 'none' }, $C, { signature => $sseg })),
                   'alg none with the original signature');
  my $no_alg = { %$H };
  delete $no_alg->{alg};
  invalid_token_ok(me(token => forge_jwt($no_alg, $C, undef)), 'no alg at all');
  invalid_token_ok(me(token => "$hseg.$cseg."), 'genuine header and claims, empty signature');
  invalid_token_ok(me(token => "$hseg.$cseg"), 'genuine header and claims, no signature segment');
};

subtest 'signed by another RSA key' => sub {
  plan skip_all => 'no token' unless $H;
  invalid_token_ok(me(token => forge_jwt({ %$H }, $C, { rsa => $attacker })), 'our kid, attacker key');
  invalid_token_ok(me(token => forge_jwt({ %$H, kid => 'attacker-' . unique_slug() }, $C, { rsa => $attacker })),
                   'unknown kid, attacker key');
  my $nokid = { %$H };
  delete $nokid->{kid};
  invalid_token_ok(me(token => forge_jwt($nokid, $C, { rsa => $attacker })), 'no kid, attacker key');
  my $pub = $attacker->export_key_jwk('public', 1);
  $pub->{kid} = 'embedded-' . unique_slug();
  invalid_token_ok(me(token => forge_jwt({ %$H, kid => $pub->{kid}, jwk => $pub }, $C, { rsa => $attacker })),
                   'attacker public key embedded as jwk header');
  invalid_token_ok(me(token => forge_jwt({ %$H, jku => 'http://127.0.0.1:9/jwks.json' }, $C, { rsa => $attacker })),
                   'jku header pointing elsewhere');
  invalid_token_ok(me(token => forge_jwt({ %$H, alg => 'ES256' }, $C, { ecc => $attacker_ec })),
                   'ES256 with our kid, attacker EC key');
  invalid_token_ok(me(token => forge_jwt({ %$H, alg => 'PS256' }, $C, { rsa => $attacker })),
                   'PS256 with our kid, attacker key');
};

subtest 'HS256 keyed with our public key (algorithm confusion)' => sub {
  plan skip_all => 'no token or JWK' unless $H && $JWK;
  my %secrets = ('the JWK as JSON' => $canon->encode($JWK));
  if (($JWK->{kty} // '') eq 'RSA') {
    my $pk = Crypt::PK::RSA->new({ %$JWK });
    my $pem = $pk->export_key_pem('public');
    $secrets{'the public key PEM'} = $pem;
    (my $trimmed = $pem) =~ s/\s+\z//;
    $secrets{'the PEM without final newline'} = $trimmed;
    $secrets{'the X.509 PEM'} = $pk->export_key_pem('public_x509');
    $secrets{'the DER public key'} = $pk->export_key_der('public');
    $secrets{'the X.509 DER public key'} = $pk->export_key_der('public_x509');
    $secrets{'the modulus n'} = $JWK->{n};
  } else {
    my $pk = Crypt::PK::ECC->new({ %$JWK });
    $secrets{'the public key PEM'} = $pk->export_key_pem('public');
    $secrets{'the DER public key'} = $pk->export_key_der('public');
  }
  $secrets{'the JWKS document'} = $canon->encode($jwks);
  for my $name (sort keys %secrets) {
    for my $alg ('HS256', 'HS512') {
      invalid_token_ok(me(token => forge_jwt({ %$H, alg => $alg }, $C, { hmac => $secrets{$name} })),
                       "$alg keyed with $name");
    }
  }
};

subtest 'tampered claims or header with the original signature' => sub {
  plan skip_all => 'no token' unless $H;
  my $sig = { signature => $sseg };
  invalid_token_ok(me(token => forge_jwt($H, { %$C, exp => $C->{exp} + 3600 }, $sig)), 'exp extended');
  invalid_token_ok(me(token => forge_jwt($H, { %$C, sub => $other_user->{id} }, $sig)), 'sub changed');
  invalid_token_ok(me(token => forge_jwt($H, { %$C, role => 'super_admin', tenant_id => 'tnt_x' }, $sig)),
                   'role and tenant changed');
  invalid_token_ok(me(token => forge_jwt($H, { %$C, sid => 'ses_forged' }, $sig)), 'sid changed');
  invalid_token_ok(me(token => forge_jwt($H, { %$C, iss => 'https://evil.example' }, $sig)), 'iss changed');
  invalid_token_ok(me(token => forge_jwt($H, { %$C, aud => 'other' }, $sig)), 'aud changed');
  invalid_token_ok(me(token => forge_jwt({ %$H, typ => 'JWT' }, $C, $sig)), 'header typ changed');
  invalid_token_ok(me(token => forge_jwt($H, $C, $sig)), 'same header and claims re-encoded')
    unless forge_jwt($H, $C, $sig) eq $token;
  my ($oh, $oc, $os) = split /\./, ($other ? $other->{access_token} : '..');
  invalid_token_ok(me(token => "$hseg.$cseg.$os"), 'signature of another genuine token');
  invalid_token_ok(me(token => "$oh.$cseg.$sseg"), 'header of another genuine token')
    unless $oh eq $hseg;    # headers of tokens signed by the same key are byte-identical
  invalid_token_ok(me(token => "$hseg.$oc.$sseg"), 'claims of another genuine token');
  my $flip = $sseg;
  substr($flip, 10, 1) = substr($flip, 10, 1) eq 'A' ? 'B' : 'A';
  invalid_token_ok(me(token => "$hseg.$cseg.$flip"), 'one signature character changed');
  is(me(token => $token)->{status}, 200, 'the genuine token is still accepted');
};

subtest 'expired token and foreign issuer, both with a valid signature' => sub {
  # A second server on the same database (hence the same signing keys) with a
  # 1 s access token lifetime, no clock skew allowance, and its own base URL as
  # issuer.
  my ($xbase, $guard) = extra_apache("ScaiKeyAccessTokenTTL 1\nScaiKeyClockSkew 0");
  ok($xbase, 'second server with a 1 s access token lifetime started') or return;
  my ($x, $xr) = admin_login(base => $xbase, email => $user->{email}, password => $user->{password});
  ok($x, 'logged in on the second server') or return diag("$xr->{status} $xr->{content}");
  is($x->{expires_in}, 1, 'expires_in is 1');
  my (undef, $xc) = eval { verify_jwt($x->{access_token}, $jwks, verify_exp => 0) };
  ok($xc, 'its signature verifies against the platform JWKS') or return diag($@);
  is($xc->{exp} - $xc->{iat}, 1, 'exp - iat == 1');
  is($xc->{iss}, "$xbase/api/v1/platform/oauth", 'its iss is the second server\'s');
  isnt($xc->{iss}, base() . '/api/v1/platform/oauth', 'which is not the main server\'s');
  # Still inside the main server's clock skew allowance: only the issuer can
  # make it refuse the token here.
  invalid_token_ok(me(token => $x->{access_token}), 'token of another issuer on the main server');

  sleep 3;
  my ($ok_exp) = eval { verify_jwt($x->{access_token}, $jwks); 1 };
  ok(!$ok_exp, 'the independent library considers it expired');
  invalid_token_ok(me(base => $xbase, token => $x->{access_token}), 'expired token on its own server');
  invalid_token_ok(me(token => $x->{access_token}), 'expired token on the main server');
  my $rr = req(POST => '/api/v1/admin/auth/refresh', base => $xbase, ip => unique_ip(),
               json => { refresh_token => $x->{refresh_token} });
  is($rr->{status}, 200, 'the refresh token outlives the access token');
  $guard->stop if $guard;
};

subtest 'garbage bearer values' => sub {
  invalid_token_ok(me(token => 'abc'), 'Bearer abc');
  invalid_token_ok(me(token => '..'), 'Bearer ..');
  invalid_token_ok(me(token => '...'), 'Bearer ...');
  invalid_token_ok(me(token => 'e30.e30.'), 'Bearer e30.e30. (empty JSON objects)');
  invalid_token_ok(me(token => '!!!.###.$$$'), 'non base64url characters');
  invalid_token_ok(me(token => b64url('not json') . '.' . b64url('{}') . '.' . b64url('x')), 'header is not JSON');
  invalid_token_ok(me(token => b64url('[]') . '.' . b64url('[]') . '.' . b64url('x')), 'header is a JSON array');
  invalid_token_ok(me(token => b64url('{"alg":"RS256","kid":1}') . '.' . b64url('{}') . '.' . b64url('x')),
                   'kid is not a string');
  my $empty = me(headers => { Authorization => 'Bearer ' });
  is($empty->{status}, 401, 'Bearer with an empty token: 401');
  ok(is_json_error($empty), 'Bearer with an empty token: JSON error body');
  like($empty->{headers}{'www-authenticate'} // '', qr/\ABearer\b/, 'Bearer with an empty token: Bearer challenge');
};

subtest 'the genuine token survived all of the above' => sub {
  plan skip_all => 'no token' unless $H;
  my $r = me(token => $token);
  is($r->{status}, 200, 'still 200');
  is($r->{json}{id}, $user->{id}, 'still the same user');
};
