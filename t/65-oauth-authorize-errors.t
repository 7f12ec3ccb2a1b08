#!/usr/bin/perl
# Error paths of the authorization endpoint (RFC 6749 §4.1.2.1: a bad client or redirect_uri is a
# page, never a redirect; the rest goes back with error and state), of the authorization_code
# grant (§5.2: invalid_request, invalid_grant, code reuse revoking the first tokens, PKCE), and of
# the hosted pages (anti-forgery tokens, sign-in throttling, HTML escaping of branding and hints).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use SK qw(:all);
use SKBrowser qw(new_app pkce token_request url_params page_title);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $SA  = admin_token();
my $PW  = admin_password();
my $CB  = 'https://app.example.test/callback';
my $CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https:; form-action 'self'";

my $T  = admin_create($SA, 'tenants', { name => 'Errors Tenant', slug => unique_slug('le-a') });
my $T2 = admin_create($SA, 'tenants', { name => 'Errors Tenant Two', slug => unique_slug('le-b') });
my $TP = "/api/v1/auth/tenants/$T->{slug}/oauth";
my $T2P = "/api/v1/auth/tenants/$T2->{slug}/oauth";
my $PP = '/api/v1/platform/oauth';

my $user = create_user(role => 'user', tenant_id => $T->{id});
my $web  = new_app($SA, tenant_id => $T->{id}, application_type => 'WEB');
my $web2 = new_app($SA, tenant_id => $T->{id}, application_type => 'WEB');
my $spa  = new_app($SA, tenant_id => $T->{id}, application_type => 'SPA', allowed_scopes => [qw(openid profile)]);
my $other_tenant_app = new_app($SA, tenant_id => $T2->{id});

sub authorize_url {
  my ($base, $app, %p) = @_;
  my %q = (response_type => 'code', client_id => ref $app ? $app->{client_id} : $app, redirect_uri => $CB, %p);
  delete @q{ grep { !defined $q{$_} } keys %q };
  return "$base/authorize" . query_string(map { ($_ => $q{$_}) } sort keys %q);
}

sub error_page {
  my ($r, $status, $name) = @_;
  is($r->{status}, $status, "$name: $status") or diag($r->{content});
  ok(!defined $r->{headers}{location}, "$name: no redirect");
  like($r->{headers}{'content-type'} // '', qr{\Atext/html; charset=utf-8\z}i, "$name: an HTML page");
  is($r->{headers}{'content-security-policy'}, $CSP, "$name: content security policy");
  is($r->{headers}{'x-frame-options'}, 'DENY', "$name: X-Frame-Options DENY");
}

sub redirected_error {
  my ($r, $error, $state, $name) = @_;
  is($r->{status}, 302, "$name: 302") or return diag($r->{content});
  my $loc = $r->{headers}{location} // '';
  like($loc, qr/\A\Q$CB\E\?/, "$name: to the redirect_uri");
  my $p = url_params($loc);
  is($p->{error}, $error, "$name: error=$error");
  ok(defined $p->{error_description} && length $p->{error_description}, "$name: error_description");
  is($p->{state}, $state, "$name: state") if defined $state;
  ok(!defined $p->{code}, "$name: no code");
}

# the browser signs in; returns the URL the continue page leads to
sub sign_in {
  my ($b, $url, %o) = @_;
  my $r = $b->get($url);
  return $r unless $r->{status} == 302 && ($r->{headers}{location} // '') =~ m{/login\?flow=};
  $r = $b->get($r->{headers}{location});
  return $b->post(SKBrowser::form_action($r), [flow => SKBrowser::field($r, 'flow'), csrf => SKBrowser::field($r, 'csrf'),
                                                email => $o{email} // $user->{email}, password => $o{password} // $PW]);
}

# a fresh code for app (signs in with a new browser): ($code, $verifier)
sub fresh_code {
  my ($app, %o) = @_;
  my ($verifier, $challenge) = $o{pkce} ? pkce() : ();
  my $r = sign_in(SKBrowser->new, authorize_url($TP, $app, scope => $o{scope} // 'openid',
                                               ($challenge ? (code_challenge => $challenge, code_challenge_method => 'S256') : ())));
  my $code = url_params(SKBrowser::next_url($r) // '')->{code};
  return ($code, $verifier);
}

sub token {
  my ($app, %f) = @_;
  my %all = (grant_type => 'authorization_code', redirect_uri => $CB, %f);
  return token_request("$TP/token", $app, [map { ($_ => $all{$_}) } sort keys %all]);
}

sub grant_error {
  my ($r, $error, $name) = @_;
  is($r->{status}, 400, "$name: 400") or diag($r->{content});
  is($r->{json} && $r->{json}{error}, $error, "$name: $error");
  like($r->{headers}{'cache-control'} // '', qr/no-store/, "$name: no-store");
}

# ---------------------------------------------------------------------------------------------

subtest 'a bad client or redirect_uri is a page, never a redirect' => sub {
  my $b = SKBrowser->new;
  error_page($b->get(authorize_url($TP, 'app_nosuchclient000', state => 's')), 400, 'unknown client_id');
  error_page($b->get(authorize_url($TP, undef, state => 's')), 400, 'missing client_id');
  error_page($b->get(authorize_url($TP, $web, redirect_uri => 'https://evil.example.test/cb', state => 's')), 400,
             'redirect_uri mismatch');
  error_page($b->get(authorize_url($TP, $web, redirect_uri => "$CB/", state => 's')), 400,
             'redirect_uri differing by a trailing slash');
  error_page($b->get(authorize_url($TP, $web, redirect_uri => undef, state => 's')), 400, 'missing redirect_uri');
  error_page($b->get(authorize_url($TP, $other_tenant_app, state => 's')), 400, 'another tenant\'s application');
  error_page($b->get(authorize_url($PP, $web, state => 's')), 400, 'a TENANT application at the platform');
  error_page($b->get("$TP/authorize?response_type=code&client_id=$web->{client_id}&client_id=$web->{client_id}"
                     . "&redirect_uri=" . query_string(x => $CB) =~ s/\A\?x=//r), 400, 'client_id twice');
  error_page($b->get(authorize_url('/api/v1/auth/tenants/no-such-tenant-zz/oauth', $web)), 404, 'unknown tenant');
  my $off = new_app($SA, tenant_id => $T->{id}, status => 'SUSPENDED');
  error_page($b->get(authorize_url($TP, $off)), 400, 'suspended client');
  my $r = $b->get(authorize_url($TP, 'app_nosuchclient000'));
  like($r->{content}, qr/client_id/, 'the page says what is wrong');
  ok(!$b->cookie('scaikey_flow') && !$b->cookie('scaikey_sso'), 'no cookies for refused requests');
};

subtest 'other authorization errors go back to the client with the state' => sub {
  my $b = SKBrowser->new;
  redirected_error($b->get(authorize_url($TP, $web, response_type => 'token', state => 'a1')),
                   'unsupported_response_type', 'a1', 'response_type=token');
  redirected_error($b->get(authorize_url($TP, $web, response_type => undef, state => 'a2')),
                   'invalid_request', 'a2', 'missing response_type');
  redirected_error($b->get(authorize_url($TP, $web, scope => 'openid admin:write', state => 'a3')),
                   'invalid_scope', 'a3', 'a scope outside allowed_scopes');
  redirected_error($b->get(authorize_url($TP, $spa, state => 'a4')), 'invalid_request', 'a4',
                   'SPA without PKCE');
  my ($v, $c) = pkce();
  redirected_error($b->get(authorize_url($TP, $spa, code_challenge => $v, code_challenge_method => 'plain', state => 'a5')),
                   'invalid_request', 'a5', 'plain PKCE');
  redirected_error($b->get(authorize_url($TP, $spa, code_challenge => $c, state => 'a6')),
                   'invalid_request', 'a6', 'a challenge without method (plain)');
  redirected_error($b->get(authorize_url($TP, $spa, code_challenge => 'short', code_challenge_method => 'S256',
                                         state => 'a7')), 'invalid_request', 'a7', 'a malformed challenge');
  redirected_error($b->get(authorize_url($TP, $web, prompt => 'none login', state => 'a8')),
                   'invalid_request', 'a8', 'prompt=none with another value');
  redirected_error($b->get(authorize_url($TP, $web, max_age => '-5', state => 'a9')),
                   'invalid_request', 'a9', 'a negative max_age');
  redirected_error($b->get(authorize_url($TP, $web, state => 'b1') . '&scope=openid&scope=email'),
                   'invalid_request', 'b1', 'a repeated parameter');
  redirected_error($b->get(authorize_url($TP, $web, response_mode => 'fragment', state => 'b2')),
                   'invalid_request', 'b2', 'response_mode=fragment');
  redirected_error($b->get(authorize_url($TP, $web, request => 'eyJ.x.y', state => 'b3')),
                   'request_not_supported', 'b3', 'a request object');
  redirected_error($b->get(authorize_url($TP, $web, prompt => 'none', state => 'b4')),
                   'login_required', 'b4', 'prompt=none without a session');
  my $svc = new_app($SA, tenant_id => $T->{id}, application_type => 'SERVICE', grant_types => ['client_credentials']);
  redirected_error($b->get(authorize_url($TP, $svc, state => 'b5')), 'unauthorized_client', 'b5',
                   'an application without the authorization_code grant');
  my $r = $b->get(authorize_url($TP, $web, response_type => 'token'));
  my $p = url_params($r->{headers}{location});
  ok(!exists $p->{state}, 'no state sent, none returned');
  is($p->{iss}, base() . "/api/v1/auth/tenants/$T->{slug}", 'iss with the error');
};

subtest 'token endpoint: invalid_request and invalid_grant' => sub {
  grant_error(token($web), 'invalid_request', 'missing code');
  my ($code) = fresh_code($web);
  ok($code, 'a code');
  grant_error(token_request("$TP/token", $web, [grant_type => 'authorization_code', code => $code]),
              'invalid_request', 'missing redirect_uri');
  grant_error(token($web, code => 'not-a-code-' . ('x' x 40)), 'invalid_grant', 'unknown code');
  my $r = token($web, code => $code, redirect_uri => "$CB?x=1");
  grant_error($r, 'invalid_grant', 'redirect_uri differing at the token step');
  grant_error(token($web, code => $code), 'invalid_grant', 'the code was spent by the failed attempt');
  $r = token_request("$TP/token", $web, [grant_type => 'authorization_code', code => $code, code => 'other',
                                          redirect_uri => $CB]);
  grant_error($r, 'invalid_request', 'a repeated parameter');

  ($code) = fresh_code($web);
  grant_error(token($web2, code => $code), 'invalid_grant', 'the code of another client');
  is(token($web, code => $code)->{status}, 200, 'still good for its own client');

  ($code) = fresh_code($web);
  grant_error(token($web, code => $code, code_verifier => 'a' x 43), 'invalid_grant',
              'a code_verifier for a request without code_challenge');

  ($code) = fresh_code($web);
  psql(sprintf("UPDATE oauth_codes SET expires_at = now() - interval '1 second' WHERE code_hash = %s",
               sql_quote(sha256_hex($code))));
  $r = token($web, code => $code);
  grant_error($r, 'invalid_grant', 'expired code');
  like($r->{json}{error_description} // '', qr/expired/, 'says expired');

  $r = token_request("$TP/token", $web, [grant_type => 'authorization_code', code => 'x', redirect_uri => $CB],
                     no_auth => 1);
  is($r->{status}, 401, 'a confidential client without its secret: 401');
  is($r->{json} && $r->{json}{error}, 'invalid_client', 'invalid_client');

  ($code) = fresh_code($other_tenant_app);
  ok(!$code, 'no code for another tenant\'s app at this tenant');
};

subtest 'PKCE at the token step' => sub {
  my ($code, $verifier) = fresh_code($spa, pkce => 1);
  ok($code, 'a code with S256');
  grant_error(token($spa, code => $code), 'invalid_grant', 'missing code_verifier');
  ($code, $verifier) = fresh_code($spa, pkce => 1);
  my ($other) = pkce();
  grant_error(token($spa, code => $code, code_verifier => $other), 'invalid_grant', 'PKCE mismatch');
  grant_error(token($spa, code => $code, code_verifier => $verifier), 'invalid_grant', 'spent by the mismatch');
  ($code, $verifier) = fresh_code($spa, pkce => 1);
  grant_error(token($spa, code => $code, code_verifier => 'short'), 'invalid_request', 'a malformed code_verifier');
  my $r = token($spa, code => $code, code_verifier => $verifier);
  is($r->{status}, 200, 'the right verifier (the malformed one did not spend the code)') or diag($r->{content});
};

subtest 'a reused code is refused and the tokens issued from it are revoked' => sub {
  my ($code, $verifier) = fresh_code($web, pkce => 1, scope => 'openid offline_access');
  my $r = token($web, code => $code, code_verifier => $verifier);
  is($r->{status}, 200, 'first use: 200') or return diag($r->{content});
  my $first = $r->{json};
  my (undef, $ac) = jwt_parts($first->{access_token});
  is(req(GET => "$TP/userinfo", token => $first->{access_token})->{status}, 200, 'the access token works');

  $r = token($web, code => $code, code_verifier => $verifier);
  grant_error($r, 'invalid_grant', 'second use');
  like($r->{json}{error_description} // '', qr/already used/, 'says already used');
  is(psql(sprintf("SELECT (revoked_at IS NOT NULL) || '|' || revoked_reason FROM sessions WHERE id = %s",
                  sql_quote($ac->{sid}))), 'true|code_reuse', 'the grant session was revoked');
  is(req(GET => "$TP/userinfo", token => $first->{access_token})->{status}, 401, 'the first access token stops working');
  $r = token_request("$TP/token", $web, [grant_type => 'refresh_token', refresh_token => $first->{refresh_token}]);
  grant_error($r, 'invalid_grant', 'the first refresh token is revoked');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'oauth.code_reuse' AND resource_id = %s",
                  sql_quote($ac->{sid}))), 1, 'audited');
};

subtest 'anti-forgery: missing or wrong token, another browser' => sub {
  my $b = SKBrowser->new;
  my $r = $b->get(authorize_url($TP, $web));
  $r = $b->get($r->{headers}{location});
  my ($flow, $csrf, $action) = (SKBrowser::field($r, 'flow'), SKBrowser::field($r, 'csrf'), SKBrowser::form_action($r));
  my @cred = (email => $user->{email}, password => $PW);
  my $logins = sub { psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'user.login' AND actor_id = %s",
                                  sql_quote($user->{id}))) };
  my $before = $logins->();
  $r = $b->post($action, [flow => $flow, @cred]);
  error_page($r, 403, 'missing csrf');
  ok(!$b->cookie('scaikey_sso'), 'missing csrf: not signed in');
  $r = $b->post($action, [flow => $flow, csrf => ('0' x 64), @cred]);
  error_page($r, 403, 'wrong csrf');
  $r = $b->post($action, [flow => $flow, csrf => substr($csrf, 0, 63), @cred]);
  error_page($r, 403, 'truncated csrf');
  my $evil = SKBrowser->new;
  $r = $evil->post($action, [flow => $flow, csrf => $csrf, @cred]);
  error_page($r, 403, 'the right token from a browser without the binding cookie');
  $evil->set_cookie('scaikey_flow', 'A' x 43);
  $r = $evil->post($action, [flow => $flow, csrf => $csrf, @cred]);
  error_page($r, 403, 'the right token with another binding cookie');
  is($logins->(), $before, 'no sign-in was attempted for forged forms');
  $r = $b->post($action, [flow => 'x' x 43, csrf => $csrf, @cred]);
  error_page($r, 400, 'an unknown flow');
  $r = $b->post($action, [flow => $flow, csrf => $csrf, @cred]);
  is($r->{status}, 200, 'the genuine form signs in') or diag($r->{content});
  ok(SKBrowser::next_url($r) =~ /code=/, 'and gives a code');
  $r = $b->post($action, [flow => $flow, csrf => $csrf, @cred]);
  error_page($r, 400, 'the same form again (the flow has ended)');
  $r = $b->post("/api/v1/auth/tenants/$T2->{slug}/oauth/login", [flow => $flow, csrf => $csrf, @cred]);
  error_page($r, 400, 'a flow on another tenant\'s page');
  psql(sprintf("UPDATE one_time_codes SET expires_at = now() - interval '1 second' WHERE purpose = 'flow' AND code_hash = %s",
               sql_quote(sha256_hex($flow))));
  error_page($b->get("$TP/login?flow=$flow"), 400, 'an expired flow');

  # consent form
  my $cons = new_app($SA, tenant_id => $T->{id}, require_consent => JSON::PP::true());
  $r = $b->get(authorize_url($TP, $cons));
  $r = $b->get($r->{headers}{location});
  is(page_title($r->{content}), 'Allow access?', 'consent page');
  my ($cf, $cc) = (SKBrowser::field($r, 'flow'), SKBrowser::field($r, 'csrf'));
  error_page($b->post(SKBrowser::form_action($r), [flow => $cf, decision => 'allow']), 403, 'consent without csrf');
  error_page($b->post(SKBrowser::form_action($r), [flow => $cf, csrf => 'f' x 64, decision => 'allow']), 403,
             'consent with a wrong csrf');
  error_page(SKBrowser->new->post(SKBrowser::form_action($r), [flow => $cf, csrf => $cc, decision => 'allow']), 403,
             'consent from another browser');
  is(psql(sprintf("SELECT count(*) FROM oauth_consents WHERE application_id = %s", sql_quote($cons->{id}))), 0,
     'nothing granted');
};

subtest 'sign-in failures are throttled (429) and audited' => sub {
  my $victim = create_user(role => 'user', tenant_id => $T->{id});
  my $r;
  for my $i (1 .. 5) {
    my $b = SKBrowser->new;    # each attempt from another address: the account counter
    $r = sign_in($b, authorize_url($TP, $web), email => $victim->{email}, password => "wrong-$i");
    is($r->{status}, 401, "wrong password $i: 401") or diag($r->{content});
  }
  like($r->{content}, qr/Invalid email or password/, 'the failure page says so');
  $r = sign_in(SKBrowser->new, authorize_url($TP, $web), email => $victim->{email});
  is($r->{status}, 429, 'the account is locked: 429 even with the right password') or diag($r->{content});
  like($r->{headers}{'retry-after'} // '', qr/\A\d+\z/, 'Retry-After');
  like($r->{headers}{'content-type'} // '', qr{text/html}, 'as a page');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'user.login' AND result = 'failure' AND actor_id = %s",
                  sql_quote($victim->{id}))), 5, 'five failures audited');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'user.login' AND result = 'denied' "
                  . "AND lower(actor_email) = lower(%s) AND details->>'reason' = 'throttled'", sql_quote($victim->{email}))),
     1, 'the throttled attempt audited');

  # an unknown account takes a password verification too and fails the same way
  my $b = SKBrowser->new;
  $r = sign_in($b, authorize_url($TP, $web), email => unique_email('nobody'));
  is($r->{status}, 401, 'unknown account: 401');
  like($r->{content}, qr/Invalid email or password/, 'the same message');

  # one address, many accounts: the address counter
  my $ip = unique_ip();
  for my $i (1 .. 20) {
    $r = sign_in(SKBrowser->new(ip => $ip), authorize_url($TP, $web), email => unique_email("ipt$i"), password => 'x');
  }
  is($r->{status}, 401, '20 failures from one address: 401');
  $r = sign_in(SKBrowser->new(ip => $ip), authorize_url($TP, $web));
  is($r->{status}, 429, 'the 21st attempt from that address: 429');
  is(sign_in(SKBrowser->new, authorize_url($TP, $web))->{status}, 200, 'another address still signs in');
};

subtest 'HTML escaping: hostile branding and login_hint' => sub {
  my $name = q{<script>alert("x")</script>&'};
  my $ht = admin_create($SA, 'tenants', { name => 'Hostile', slug => unique_slug('le-h'),
    branding => { name => $name, primary_color => 'red;}</style><script>alert(1)</script>',
                  logo_url => 'javascript:alert(1)' } });
  my $happ = new_app($SA, tenant_id => $ht->{id}, name => q{App "<b>bold</b>"}, require_consent => JSON::PP::true());
  my $hint = q{"><img src=x onerror=alert(1)>};
  my $b = SKBrowser->new;
  my $r = $b->get(authorize_url("/api/v1/auth/tenants/$ht->{slug}/oauth", $happ, login_hint => $hint));
  $r = $b->get($r->{headers}{location});
  is($r->{status}, 200, 'login page');
  unlike($r->{content}, qr/<script/i, 'no script element');
  unlike($r->{content}, qr/<img src=x/i, 'the hint does not become markup');
  like($r->{content}, qr/&lt;script&gt;alert\(&#34;x&#34;\)&lt;\/script&gt;&amp;&#39;/, 'the name is escaped');
  is(SKBrowser::field($r, 'email'), $hint, 'the hint is an escaped attribute value');
  unlike($r->{content}, qr/red;\}/, 'a colour that is not #hex is ignored');
  unlike($r->{content}, qr/javascript:/i, 'a non-https logo is ignored');
  unlike($r->{content}, qr/<img/i, 'no logo at all');

  admin_req($SA, 'PATCH', 'tenants', $ht->{id}, json => { branding => { name => 'Fine', logo_url => 'http://cdn.example.test/l.png' } });
  $r = $b->get(authorize_url("/api/v1/auth/tenants/$ht->{slug}/oauth", $happ));
  $r = $b->get($r->{headers}{location});
  unlike($r->{content}, qr/<img/i, 'an http logo is ignored');
  admin_req($SA, 'PATCH', 'tenants', $ht->{id},
            json => { branding => { name => 'Fine', logo_url => 'https://cdn.example.test/l.png?a=1&b="2"', primary_color => '#AbC' } });
  $r = $b->get(authorize_url("/api/v1/auth/tenants/$ht->{slug}/oauth", $happ));
  $r = $b->get($r->{headers}{location});
  unlike($r->{content}, qr/<img/i, 'a logo URL with a quote is ignored');
  admin_req($SA, 'PATCH', 'tenants', $ht->{id},
            json => { branding => { name => 'Fine', logo_url => 'https://cdn.example.test/l.png?a=1&b=2', primary_color => '#AbC' } });
  $r = $b->get(authorize_url("/api/v1/auth/tenants/$ht->{slug}/oauth", $happ));
  $r = $b->get($r->{headers}{location});
  like($r->{content}, qr{<img src="https://cdn\.example\.test/l\.png\?a=1&amp;b=2" alt="">}, 'an https logo, escaped');
  like($r->{content}, qr/background:#AbC/, 'a #hex colour is used');

  my $hu = create_user(role => 'user', tenant_id => $ht->{id});
  $r = $b->post(SKBrowser::form_action($r), [flow => SKBrowser::field($r, 'flow'), csrf => SKBrowser::field($r, 'csrf'),
                                              email => $hu->{email}, password => $PW]);
  $r = $b->get($r->{headers}{location} // '');
  is(page_title($r->{content}), 'Allow access?', 'consent page');
  unlike($r->{content}, qr/<b>bold/, 'the application name is escaped');
  like($r->{content}, qr/App &#34;&lt;b&gt;bold&lt;\/b&gt;&#34;/, 'shown as text');
};

subtest 'logout errors' => sub {
  my $b = SKBrowser->new;
  sign_in($b, authorize_url($TP, $web));
  my $sid = $b->cookie('scaikey_sso') =~ s/\..*//r;
  my $r = $b->get("$TP/logout" . query_string(client_id => $web->{client_id},
                                                post_logout_redirect_uri => 'https://evil.example.test/'));
  error_page($r, 400, 'unregistered post_logout_redirect_uri');
  $r = $b->get("$TP/logout" . query_string(post_logout_redirect_uri => 'https://app.example.test/x'));
  error_page($r, 400, 'post_logout_redirect_uri without a client');
  $r = $b->get("$TP/logout" . query_string(id_token_hint => 'eyJhbGciOiJub25lIn0.eyJhIjoxfQ.'));
  error_page($r, 400, 'a forged id_token_hint');
  is(psql(sprintf('SELECT revoked_at IS NULL FROM sessions WHERE id = %s', sql_quote($sid))), 't',
     'the session is still live after refused logouts');
};

subtest 'a sign-in form that cannot be read is an error page (400 or 413), never a 500' => sub {
  my $TP = "/api/v1/auth/tenants/$T->{slug}/oauth";
  for my $path ("$PP/login", "$PP/login/tenant", "$PP/login/password", "$TP/login", "$TP/consent",
                "$TP/login/mfa", "$TP/login/mfa/email") {
    my %form = ('Content-Type' => 'application/x-www-form-urlencoded');
    error_page(req(POST => $path, raw => '{"flow":"x"}', headers => { 'Content-Type' => 'application/json' },
                   ip => unique_ip()), 400, "$path, JSON");
    error_page(req(POST => $path, raw => "flow=\xff\xfe", headers => \%form, ip => unique_ip()), 400,
               "$path, bad UTF-8");
    my $r = req(POST => $path, raw => 'flow=' . ('x' x (1024 * 1024)), headers => \%form, ip => unique_ip());
    error_page($r, 413, "$path, 1 MiB");
    is(page_title($r->{content}), 'Invalid request', "$path, 1 MiB: the page says so");
  }
};

done_testing();
