#!/usr/bin/perl
# Health endpoint and the platform / tenant JWKS documents.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 7;

require Crypt::PK::RSA;
require Crypt::PK::ECC;

my $json = JSON::PP->new->utf8->canonical;
my @PRIVATE = qw(d p q dp dq qi oth k);

sub json_ct_ok {
  my ($r, $name) = @_;
  like($r->{headers}{'content-type'} // '', qr{^application/json\b}i, "$name: Content-Type application/json");
}

subtest 'GET /api/v1/health' => sub {
  my $r = req(GET => '/api/v1/health');
  is($r->{status}, 200, 'status 200') or diag($r->{content});
  json_ct_ok($r, 'health');
  is(ref $r->{json}, 'HASH', 'body is a JSON object');
  is($r->{json}{status}, 'ok', 'status is "ok"');
};

my ($platform, $pr) = jwks();

subtest 'platform JWKS document' => sub {
  is($pr->{status}, 200, 'status 200') or diag($pr->{content});
  json_ct_ok($pr, 'platform jwks');
  ok($platform, 'body is a JSON object') or return;
  is(ref $platform->{keys}, 'ARRAY', '"keys" is an array') or return;
  my @keys = @{ $platform->{keys} };
  cmp_ok(scalar @keys, '>=', 1, 'at least one key is published');

  my %seen;
  for my $k (@keys) {
    my $kid = $k->{kid} // '(none)';
    ok(defined $k->{kid} && !ref $k->{kid} && length $k->{kid}, "key $kid: kid is a non-empty string");
    ok(!$seen{$kid}++, "key $kid: kid is unique");
    is($k->{use}, 'sig', "key $kid: use is sig");
    like($k->{alg} // '', qr/\A(?:RS256|ES256)\z/, "key $kid: alg is RS256 or ES256");
    my @priv = grep { exists $k->{$_} } @PRIVATE;
    is_deeply(\@priv, [], "key $kid: no private members");

    if (($k->{alg} // '') =~ /^RS/) {
      is($k->{kty}, 'RSA', "key $kid: kty RSA for $k->{alg}");
      ok(defined $k->{n} && defined $k->{e}, "key $kid: n and e present");
      my $pk = eval { Crypt::PK::RSA->new({ %$k }) };
      ok($pk, "key $kid: imports as an RSA key") or diag($@);
      if ($pk) {
        ok(!$pk->is_private, "key $kid: imported key is public only");
        cmp_ok($pk->size * 8, '>=', 2048, "key $kid: modulus has at least 2048 bits");
      }
    } elsif (($k->{alg} // '') eq 'ES256') {
      is($k->{kty}, 'EC', "key $kid: kty EC for ES256");
      is($k->{crv}, 'P-256', "key $kid: crv P-256");
      my $pk = eval { Crypt::PK::ECC->new({ %$k }) };
      ok($pk, "key $kid: imports as an EC key") or diag($@);
      ok($pk && !$pk->is_private, "key $kid: imported key is public only");
    }
  }
  ok((grep { ($_->{alg} // '') eq 'RS256' } @keys), 'the default configuration publishes an RS256 key');
};

subtest 'tenant JWKS lists the same keys as the platform JWKS' => sub {
  my $t = create_tenant();
  my ($tj, $tr) = jwks(slug => $t->{slug});
  is($tr->{status}, 200, "status 200 for tenant $t->{slug}") or diag($tr->{content});
  json_ct_ok($tr, 'tenant jwks');
  ok($tj && ref $tj->{keys} eq 'ARRAY', 'body has a keys array') or return;
  ok($platform, 'platform JWKS available for comparison') or return;
  my %p = map { $_->{kid} => $json->encode($_) } grep { defined $_->{kid} } @{ $platform->{keys} };
  my %t = map { $_->{kid} => $json->encode($_) } grep { defined $_->{kid} } @{ $tj->{keys} };
  is_deeply([sort keys %t], [sort keys %p], 'same kids');
  for my $kid (sort keys %p) {
    is($t{$kid}, $p{$kid}, "key $kid is identical in both documents");
  }
  my @priv = grep { my $k = $_; grep { exists $k->{$_} } @PRIVATE } @{ $tj->{keys} };
  is(scalar @priv, 0, 'tenant document has no private members either');
};

subtest 'tenant JWKS of an unknown slug is a 404' => sub {
  my $slug = unique_slug('nosuch');
  my $r = req(GET => "/api/v1/auth/tenants/$slug/.well-known/jwks.json");
  is($r->{status}, 404, 'status 404');
  json_ct_ok($r, 'unknown tenant');
  is_deeply($r->{json}, { detail => 'Tenant not found' }, 'body {"detail":"Tenant not found"}')
    or diag($r->{content});
};

subtest 'tenant JWKS with hostile slugs never errors out' => sub {
  for my $slug ("x'%20OR%20'1'%3D'1", '%27%3B--', 'a' x 300, '%C3%28', 'UPPER.case') {
    my $r = req(GET => "/api/v1/auth/tenants/$slug/.well-known/jwks.json");
    my $show = length($slug) > 40 ? substr($slug, 0, 40) . '...' : $slug;
    ok(($r->{status} >= 400 && $r->{status} < 500), "slug $show: 4xx (got $r->{status})");
    ok(is_json_error($r), "slug $show: JSON error body") or diag($r->{content});
  }
};

subtest 'a deleted tenant is not served' => sub {
  my $t = create_tenant();
  my ($before) = jwks(slug => $t->{slug});
  ok($before, 'served while the tenant exists');
  psql("UPDATE tenants SET deleted_at = now() WHERE id = " . sql_quote($t->{id}));
  my (undef, $r) = jwks(slug => $t->{slug});
  is($r->{status}, 404, 'deleted tenant: 404');
  is_deeply($r->{json}, { detail => 'Tenant not found' }, 'deleted tenant: Tenant not found');
};

subtest 'unknown API route answers with a JSON error' => sub {
  my $r = req(GET => '/api/v1/no-such-route-' . unique_slug());
  is($r->{status}, 404, 'status 404');
  ok(is_json_error($r), 'JSON {"detail":...} body, not HTML') or diag($r->{content});
  unlike($r->{content}, qr/<html/i, 'no HTML');
};
