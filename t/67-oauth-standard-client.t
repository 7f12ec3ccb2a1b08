#!/usr/bin/perl
# An unmodified standard OpenID Connect client library (Authlib) completes the authorization code
# flow against both flavours: its own authorization URL (PKCE S256, state, nonce), the hosted login
# in a browser with a cookie jar, its code exchange (client_secret_basic, client_secret_post, and a
# public client), its OIDC Core validation of the ID token against the discovered JWKS, userinfo,
# refresh, and the reuse of a spent refresh token ending the family.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use SK qw(:all);
use SKBrowser qw(new_app url_params);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
my $PY = '/usr/bin/python3';
plan skip_all => 'python3-authlib is not installed'
  unless -x $PY && system($PY, '-c', 'import authlib, requests') == 0;

my $SA = admin_token();
my $PW = admin_password();
my $CB = 'https://app.example.test/callback';
my $T  = admin_create($SA, 'tenants', { name => 'Standard Client Tenant', slug => unique_slug('std') });
my $alice = create_user(role => 'user', tenant_id => $T->{id}, email => unique_email('std-alice'));

sub client {
  my (@args) = @_;
  open(my $fh, '-|', $PY, "$FindBin::Bin/lib/oidc_code_client.py", @args) or die "python: $!";
  my $out = do { local $/; <$fh> };
  close($fh);
  return eval { JSON::PP->new->decode($out) } // { error => "no JSON: $out" };
}

# the user agent: follows the authorization URL through the hosted pages to the callback URL
sub browse {
  my ($url, $email) = @_;
  my $b = SKBrowser->new;
  my $r = $b->get($url);
  return (undef, "authorize: $r->{status} $r->{content}") unless $r->{status} == 302;
  $r = $b->get($r->{headers}{location});
  for (1 .. 4) {
    return (undef, "page: $r->{status}") unless $r->{status} == 200 || $r->{status} == 303;
    if ($r->{status} == 303) { $r = $b->get($r->{headers}{location}); next }
    my @form = (flow => SKBrowser::field($r, 'flow'), csrf => SKBrowser::field($r, 'csrf'));
    if (defined SKBrowser::field($r, 'password')) {
      push @form, password => $PW;
      push @form, email => $email if defined SKBrowser::field($r, 'email') && SKBrowser::field($r, 'email') eq '';
    } elsif (defined SKBrowser::field($r, 'email')) {
      push @form, email => $email;
    } else {
      my $next = SKBrowser::next_url($r);
      return ($next, undef) if defined $next && index($next, $CB) == 0;
      return (undef, "unexpected page: $r->{content}");
    }
    $r = $b->post(SKBrowser::form_action($r), \@form);
    my $next = SKBrowser::next_url($r);
    return ($next, undef) if defined $next && index($next, $CB) == 0;
  }
  return (undef, 'no callback after four pages');
}

sub flow {
  my ($label, %o) = @_;    # issuer, app, method, scope, email
  my @common = ($o{issuer}, $o{app}{client_id}, $o{app}{client_secret} // '-', $o{method}, $CB, $o{scope});
  my $st = client('start', @common);
  ok(!$st->{error}, "$label: Authlib made the authorization URL") or return diag($st->{error});
  my $q = url_params($st->{url});
  is($q->{code_challenge_method}, 'S256', "$label: with PKCE S256");
  ok($q->{nonce} && $q->{state}, "$label: with state and nonce");
  my ($callback, $err) = browse($st->{url}, $o{email});
  ok($callback, "$label: the browser came back to the redirect_uri") or return diag($err);
  is(url_params($callback)->{iss}, $o{issuer}, "$label: the callback carries iss (RFC 9207)");
  my $res = client('finish', @common, $callback, $st->{state}, $st->{verifier}, $st->{nonce});
  ok(!$res->{error}, "$label: Authlib completed the flow") or return diag($res->{error});
  is($res->{token_type}, 'Bearer', "$label: Bearer token");
  ok($res->{id_token_valid}, "$label: Authlib validated the ID token (signature, iss, aud, exp, nonce, at_hash)");
  is($res->{id_token}{sub}, $o{user}{id}, "$label: ID token sub");
  is($res->{id_token}{nonce}, $st->{nonce}, "$label: ID token nonce");
  ok($res->{id_token}{at_hash}, "$label: ID token at_hash (checked against the access token)");
  is(lc($res->{userinfo}{email} // ''), lc $o{user}{email}, "$label: userinfo email");
  is($res->{userinfo}{sub}, $o{user}{id}, "$label: userinfo sub equals the ID token's");
  is($res->{code_reuse_error}, 'invalid_grant', "$label: the code exchanged again: invalid_grant");
  ok($res->{has_refresh_token}, "$label: a refresh token (offline_access)");
  ok($res->{refreshed}, "$label: Authlib refreshed, with a new refresh token");
  is($res->{reuse_error}, 'invalid_grant', "$label: the spent refresh token again: invalid_grant");
  is($res->{family_after_reuse_error}, 'invalid_grant', "$label: then the newest refresh token is dead too");
  if (defined $o{app}{client_secret}) {
    ok(defined $res->{active_after_reuse} && !$res->{active_after_reuse},
       "$label: and its access token introspects inactive");
  }
  is($res->{revoke_status}, 200, "$label: Authlib revoked the access token");
}

subtest 'tenant issuer, confidential WEB client, client_secret_basic' => sub {
  my $web = new_app($SA, tenant_id => $T->{id}, application_type => 'WEB');
  flow('tenant/basic', issuer => base() . "/api/v1/auth/tenants/$T->{slug}", app => $web,
       method => 'client_secret_basic', scope => 'openid email profile offline_access', email => $alice->{email},
       user => $alice);
};

subtest 'tenant issuer, confidential WEB client, client_secret_post' => sub {
  my $web = new_app($SA, tenant_id => $T->{id}, application_type => 'WEB');
  flow('tenant/post', issuer => base() . "/api/v1/auth/tenants/$T->{slug}", app => $web,
       method => 'client_secret_post', scope => 'openid email offline_access', email => $alice->{email},
       user => $alice);
};

subtest 'tenant issuer, public SPA client (PKCE, no secret)' => sub {
  my $spa = new_app($SA, tenant_id => $T->{id}, application_type => 'SPA');
  flow('tenant/public', issuer => base() . "/api/v1/auth/tenants/$T->{slug}", app => $spa,
       method => 'none', scope => 'openid email offline_access', email => $alice->{email}, user => $alice);
};

subtest 'platform issuer, GLOBAL WEB client, email-first login' => sub {
  my $g = new_app($SA, scope => 'GLOBAL', tenant_id => undef, application_type => 'WEB');
  flow('platform', issuer => base() . '/api/v1/platform/oauth', app => $g, method => 'client_secret_basic',
       scope => 'openid email offline_access', email => $alice->{email}, user => $alice);
};

done_testing();
