#!/usr/bin/perl
# The authorization code flow with the hosted login, end to end over HTTP with a cookie jar:
# authorize -> login page -> credentials (+ anti-forgery token) -> consent when required -> code
# -> token (PKCE) -> userinfo -> refresh; the SSO session (prompt=none, prompt=login, max_age,
# idle timeout, admin API listing and revocation, logout); state and nonce carried through; the
# platform's email-first flow for GLOBAL applications; the stop at the MFA step (t/76 goes on from there).
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
my $PW  = admin_password();         # create_user gives users the bootstrap admin's password
my $CB  = 'https://app.example.test/callback';
my $BYE = 'https://app.example.test/signed-out';
my $CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https:; form-action 'self'";

my $T  = admin_create($SA, 'tenants', { name => 'Login Tenant One', slug => unique_slug('li-a'),
                                        branding => { name => 'Acme Sign-in', primary_color => '#0a7d33' } });
my $T2 = admin_create($SA, 'tenants', { name => 'Login Tenant Two', slug => unique_slug('li-b') });
my $TP = "/api/v1/auth/tenants/$T->{slug}";
my $PP = '/api/v1/platform/oauth';

my $alice = create_user(role => 'user', tenant_id => $T->{id}, first_name => 'Alice', last_name => 'Liddell',
                        display_name => 'Alice L');
my $web = new_app($SA, tenant_id => $T->{id}, application_type => 'WEB',
                  post_logout_redirect_uris => [$BYE]);
my $spa = new_app($SA, tenant_id => $T->{id}, application_type => 'SPA', require_consent => JSON::PP::true(),
                  allowed_scopes => [qw(openid profile email groups)]);

sub authorize_url {
  my ($base, $app, %p) = @_;
  my %q = (response_type => 'code', client_id => $app->{client_id}, redirect_uri => $CB, %p);
  delete @q{ grep { !defined $q{$_} } keys %q };
  return "$base/authorize" . query_string(map { ($_ => $q{$_}) } sort keys %q);
}

sub html_ok {
  my ($r, $status, $name) = @_;
  is($r->{status}, $status, "$name: $status") or diag($r->{content});
  like($r->{headers}{'content-type'} // '', qr{\Atext/html; charset=utf-8\z}i, "$name: text/html; charset=utf-8");
  is($r->{headers}{'content-security-policy'}, $CSP, "$name: content security policy");
  is($r->{headers}{'x-frame-options'}, 'DENY', "$name: X-Frame-Options DENY");
  like($r->{headers}{'cache-control'} // '', qr/\bno-store\b/, "$name: Cache-Control no-store");
}

sub sso_cookie { $_[0]->cookie('scaikey_sso') }
sub sso_id     { my $c = sso_cookie($_[0]) // ''; $c =~ /\A(ses_[a-z0-9]+)\./ ? $1 : undef }

# authorize in browser $b; follows to the login page, signs in, returns the final URL
sub sign_in {
  my ($b, $url, %o) = @_;
  my $r = $b->get($url);
  is($r->{status}, 302, 'authorize redirects to the login page') or return diag($r->{content});
  my $login = $r->{headers}{location};
  like($login, qr{/oauth/login\?flow=[A-Za-z0-9_-]{43}\z}, 'login page URL with a flow handle');
  $r = $b->get($login);
  is($r->{status}, 200, 'login page') or return diag($r->{content});
  $r = $b->post(SKBrowser::form_action($r), [flow => SKBrowser::field($r, 'flow'), csrf => SKBrowser::field($r, 'csrf'),
                                              email => $o{email}, password => $o{password} // $PW]);
  return $r;
}

sub code_of {
  my ($url) = @_;
  return url_params($url)->{code};
}

sub exchange {
  my ($path, $app, $code, $verifier, %extra) = @_;
  return token_request("$path/token", $app, [grant_type => 'authorization_code', code => $code, redirect_uri => $CB,
                                            (defined $verifier ? (code_verifier => $verifier) : ()), %extra]);
}

my ($jwks) = jwks();
my %TOK;    # tokens of the first flow

# ---------------------------------------------------------------------------------------------

subtest 'tenant flow: login page, credentials, code, tokens, userinfo, refresh' => sub {
  my $b = SKBrowser->new;
  my ($verifier, $challenge) = pkce();
  my $url = authorize_url("$TP/oauth", $web, scope => 'openid profile email offline_access', state => 'st-1 x&y',
                          nonce => 'n-0815', code_challenge => $challenge, code_challenge_method => 'S256',
                          login_hint => $alice->{email});
  my $r = $b->get($url);
  is($r->{status}, 302, 'authorize: 302 to the login page') or diag($r->{content});
  my $login = $r->{headers}{location} // '';
  like($login, qr{\A\Q${\ base()}$TP\E/oauth/login\?flow=[A-Za-z0-9_-]{43}\z}, 'the tenant login page, with a flow handle');
  my ($bind) = grep { /\Ascaikey_flow=/ } $b->last_set_cookies;
  like($bind // '', qr/; Path=\/; HttpOnly; SameSite=Lax\z/, 'binding cookie: HttpOnly, SameSite=Lax, Path=/');
  my ($flow) = $login =~ /flow=([A-Za-z0-9_-]+)/;
  is(psql(sprintf("SELECT count(*) FROM one_time_codes WHERE purpose = 'flow' AND code_hash = %s AND "
                  . "expires_at BETWEEN now() + interval '9 minutes' AND now() + interval '10 minutes'",
                  sql_quote(sha256_hex($flow)))), 1, 'the flow is kept server-side by digest, for 10 minutes');

  $r = $b->get($login);
  html_ok($r, 200, 'login page');
  is(page_title($r->{content}), 'Sign in', 'login page title');
  like($r->{content}, qr/Acme Sign-in/, 'branding name shown');
  like($r->{content}, qr/background:#0a7d33/, 'branding colour used');
  is(SKBrowser::field($r, 'email'), $alice->{email}, 'login_hint prefills the email');
  like(SKBrowser::field($r, 'csrf') // '', qr/\A[0-9a-f]{64}\z/, 'anti-forgery token in the form');
  unlike($r->{content}, qr/<script/i, 'no JavaScript');

  $r = $b->post(SKBrowser::form_action($r), [flow => SKBrowser::field($r, 'flow'), csrf => SKBrowser::field($r, 'csrf'),
                                              email => $alice->{email}, password => $PW]);
  html_ok($r, 200, 'credentials accepted: continue page');
  my ($sso) = grep { /\Ascaikey_sso=/ } $b->last_set_cookies;
  like($sso // '', qr/\Ascaikey_sso=ses_[a-z0-9]{16}\.[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax\z/,
       'SSO cookie (development: no __Host- prefix, no Secure)');
  my $next = SKBrowser::next_url($r) // '';
  like($next, qr/\A\Q$CB\E\?code=[A-Za-z0-9_-]{43}&/, 'back to the redirect_uri with a code');
  my $p = url_params($next);
  is($p->{state}, 'st-1 x&y', 'state carried through unchanged');
  is($p->{iss}, base() . $TP, 'iss (RFC 9207)');

  my ($sid, $secret) = sso_cookie($b) =~ /\A(ses_[a-z0-9]+)\.(.+)\z/;
  my $row = psql(sprintf("SELECT kind || '|' || user_id || '|' || tenant_id || '|' || secret_hash || '|' || "
                         . "(idle_expires_at BETWEEN now() + interval '1790 seconds' AND now() + interval '1800 seconds') || '|' || "
                         . "(expires_at BETWEEN now() + interval '35990 seconds' AND now() + interval '36000 seconds') "
                         . "FROM sessions WHERE id = %s", sql_quote($sid)));
  is($row, "sso|$alice->{id}|$T->{id}|" . sha256_hex($secret) . '|true|true',
     'SSO session row: kind sso, the tenant, sha256(secret), idle 1800 s and absolute 36000 s');
  ok(!db_tables_containing($secret), 'the cookie secret is stored nowhere in clear');
  my $code = $p->{code};
  ok(!db_tables_containing($code), 'the code is stored nowhere in clear');
  is(psql(sprintf("SELECT (expires_at - created_at = interval '60 seconds') || '|' || code_challenge_method || '|' || "
                  . "session_id FROM oauth_codes WHERE code_hash = %s", sql_quote(sha256_hex($code)))),
     "true|S256|$sid", 'code: digest stored, 60 seconds, S256, bound to the SSO session');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'user.login' AND result = 'success' AND "
                  . "actor_id = %s AND resource_id = %s", sql_quote($alice->{id}), sql_quote($sid))), 1,
     'sign-in audited (user.login success)');

  $r = exchange("$TP/oauth", $web, $code, $verifier);
  is($r->{status}, 200, 'token: 200') or diag($r->{content});
  my $t = $r->{json} // {};
  is($t->{token_type}, 'Bearer', 'token_type Bearer');
  ok($t->{access_token} && $t->{id_token} && $t->{refresh_token}, 'access, ID and refresh tokens (WEB app)');
  %TOK = %$t;
  my ($ih, $ic) = eval { verify_jwt($t->{id_token}, $jwks) };
  ok($ic, 'ID token verifies against the JWKS') or diag($@);
  is($ic->{nonce}, 'n-0815', 'nonce carried into the ID token');
  is($ic->{sub}, $alice->{id}, 'ID token sub');
  is($ic->{aud}, $web->{client_id}, 'ID token aud');
  is($ic->{iss}, base() . $TP, 'ID token iss');
  ok(($ic->{auth_time} // 0) > 0 && $ic->{auth_time} <= time() + 5, 'auth_time');
  is($ic->{email}, $alice->{email}, 'email claim (scope email)');
  my ($ah, $ac) = eval { verify_jwt($t->{access_token}, $jwks) };
  ok($ac, 'access token verifies') or diag($@);
  is($ac->{tenant_id}, $T->{id}, 'access token: tenant_id');
  is($ac->{client_id}, $web->{client_id}, 'access token: client_id');
  is($ac->{scope}, 'openid profile email offline_access', 'access token: scope');
  like($ac->{sid} // '', qr/\Ases_/, 'access token: a session of its own');
  isnt($ac->{sid}, $sid, 'the grant session is not the SSO session');
  is(psql(sprintf("SELECT kind || '|' || client_id FROM sessions WHERE id = %s", sql_quote($ac->{sid}))),
     "user|$web->{client_id}", 'grant session: kind user, the client');

  $r = req(GET => "$TP/oauth/userinfo", token => $t->{access_token});
  SKIP: {
    skip 'no userinfo endpoint', 2 if $r->{status} == 404;
    is($r->{status}, 200, 'userinfo: 200') or diag($r->{content});
    is($r->{json} && $r->{json}{sub}, $alice->{id}, 'userinfo: sub');
  }
  $r = token_request("$TP/oauth/token", $web, [grant_type => 'refresh_token', refresh_token => $t->{refresh_token}]);
  is($r->{status}, 200, 'refresh: 200') or diag($r->{content});
  ok($r->{json} && $r->{json}{refresh_token} && $r->{json}{refresh_token} ne $t->{refresh_token}, 'refresh rotates');
  $TOK{refresh_token} = $r->{json}{refresh_token} if $r->{json};
  $TOK{browser} = $b;
};

subtest 'SSO session: no login page the second time; the idle timeout slides' => sub {
  my $b = $TOK{browser} or return fail('no browser from the first flow');
  my $sid = sso_id($b);
  psql(sprintf("UPDATE sessions SET idle_expires_at = now() + interval '60 seconds' WHERE id = %s", sql_quote($sid)));
  my $r = $b->get(authorize_url("$TP/oauth", $web, scope => 'openid', state => 'again'));
  is($r->{status}, 302, 'authorize: 302') or diag($r->{content});
  my $p = url_params($r->{headers}{location});
  like($r->{headers}{location} // '', qr/\A\Q$CB\E\?/, 'straight back to the client');
  ok($p->{code}, 'with a code');
  is($p->{state}, 'again', 'and the state');
  is(psql(sprintf("SELECT idle_expires_at > now() + interval '1700 seconds' FROM sessions WHERE id = %s",
                  sql_quote($sid))), 't', 'idle_expires_at moved on');
  $r = exchange("$TP/oauth", $web, $p->{code});
  is($r->{status}, 200, 'the code works without PKCE for a WEB app that sent none') or diag($r->{content});

  $r = $b->post("$TP/oauth/authorize", [response_type => 'code', client_id => $web->{client_id}, redirect_uri => $CB,
                                         scope => 'openid', state => 'posted']);
  is($r->{status}, 302, 'authorize by POST (a form): 302') or diag($r->{content});
  $p = url_params($r->{headers}{location});
  ok($p->{code}, 'authorize by POST: a code');
  is($p->{state}, 'posted', 'authorize by POST: the state');

  psql(sprintf("UPDATE sessions SET idle_expires_at = now() - interval '1 second' WHERE id = %s", sql_quote($sid)));
  $r = $b->get(authorize_url("$TP/oauth", $web, prompt => 'none', state => 's'));
  is(url_params($r->{headers}{location})->{error}, 'login_required', 'an idle session is no session');
  psql(sprintf("UPDATE sessions SET idle_expires_at = now() + interval '1800 seconds' WHERE id = %s", sql_quote($sid)));
};

subtest 'prompt=none' => sub {
  my $b = $TOK{browser} or return fail('no browser');
  my $r = $b->get(authorize_url("$TP/oauth", $web, prompt => 'none', state => 'pn', nonce => 'nn'));
  is($r->{status}, 302, 'with a session: 302');
  my $p = url_params($r->{headers}{location});
  ok($p->{code}, 'with a session: a code');
  is($p->{state}, 'pn', 'state');
  $r = exchange("$TP/oauth", $web, $p->{code});
  my (undef, $ic) = jwt_parts($r->{json}{id_token} // '');
  is($ic && $ic->{nonce}, 'nn', 'nonce of this request in its ID token');

  my $nb = SKBrowser->new;
  $r = $nb->get(authorize_url("$TP/oauth", $web, prompt => 'none', state => 'pn2'));
  is($r->{status}, 302, 'without a session: 302');
  $p = url_params($r->{headers}{location});
  like($r->{headers}{location}, qr/\A\Q$CB\E\?/, 'to the redirect_uri');
  is($p->{error}, 'login_required', 'error=login_required');
  is($p->{state}, 'pn2', 'state');
  ok(!$p->{code}, 'no code');
  ok(defined $p->{error_description}, 'error_description');

  # a session of another tenant does not count here
  my $other = create_user(role => 'user', tenant_id => $T2->{id});
  my $app2 = new_app($SA, tenant_id => $T2->{id});
  my $ob = SKBrowser->new;
  $r = sign_in($ob, authorize_url("/api/v1/auth/tenants/$T2->{slug}/oauth", $app2), email => $other->{email});
  ok(sso_cookie($ob), 'signed in at the other tenant');
  $r = $ob->get(authorize_url("$TP/oauth", $web, prompt => 'none'));
  is(url_params($r->{headers}{location})->{error}, 'login_required', 'another tenant\'s session: login_required');
};

subtest 'prompt=login and max_age force a new sign-in' => sub {
  my $b = $TOK{browser} or return fail('no browser');
  my $old = sso_id($b);
  my $r = $b->get(authorize_url("$TP/oauth", $web, prompt => 'login', state => 'pl'));
  is($r->{status}, 302, 'prompt=login: 302');
  like($r->{headers}{location}, qr{/oauth/login\?flow=}, 'prompt=login: the login page despite the session');
  $r = sign_in($b, authorize_url("$TP/oauth", $web, prompt => 'login', state => 'pl'), email => $alice->{email});
  my $p = url_params(SKBrowser::next_url($r));
  ok($p->{code}, 'code after signing in again');
  is($p->{state}, 'pl', 'state');
  my $new = sso_id($b);
  isnt($new, $old, 'a new SSO session');
  is(psql(sprintf("SELECT revoked_reason FROM sessions WHERE id = %s", sql_quote($old))), 'replaced',
     'the previous one ended');

  psql(sprintf("UPDATE sessions SET created_at = now() - interval '100 seconds' WHERE id = %s", sql_quote($new)));
  $r = $b->get(authorize_url("$TP/oauth", $web, max_age => 500));
  ok(url_params($r->{headers}{location})->{code}, 'max_age=500 after 100 s: code');
  $r = $b->get(authorize_url("$TP/oauth", $web, max_age => 50));
  like($r->{headers}{location}, qr{/oauth/login\?flow=}, 'max_age=50 after 100 s: the login page');
  $r = $b->get(authorize_url("$TP/oauth", $web, max_age => 50, prompt => 'none', state => 'ma'));
  my $q = url_params($r->{headers}{location});
  is($q->{error}, 'login_required', 'max_age with prompt=none: login_required');
  is($q->{state}, 'ma', 'state');
};

subtest 'consent: required by the application, remembered, denied, forced' => sub {
  my $b = SKBrowser->new;
  my ($verifier, $challenge) = pkce();
  my $url = authorize_url("$TP/oauth", $spa, scope => 'openid profile', state => 'c1', code_challenge => $challenge,
                          code_challenge_method => 'S256');
  my $r = sign_in($b, $url, email => $alice->{email});
  is($r->{status}, 303, 'after the password: 303 to the consent page') or diag($r->{content});
  my $consent = $r->{headers}{location} // '';
  like($consent, qr{\A\Q${\ base()}$TP\E/oauth/consent\?flow=}, 'the consent page of the user\'s tenant');
  $r = $b->get($consent);
  html_ok($r, 200, 'consent page');
  like($r->{content}, qr/\Q$spa->{name}\E/, 'names the application');
  like($r->{content}, qr/See your name/, 'explains the scopes');
  my @form = (flow => SKBrowser::field($r, 'flow'), csrf => SKBrowser::field($r, 'csrf'));
  my $action = SKBrowser::form_action($r);

  $r = $b->post($action, [@form, decision => 'deny']);
  is($r->{status}, 200, 'deny: continue page');
  my $p = url_params(SKBrowser::next_url($r));
  is($p->{error}, 'access_denied', 'deny: error=access_denied');
  is($p->{state}, 'c1', 'deny: state');
  is(psql(sprintf("SELECT count(*) FROM oauth_consents WHERE user_id = %s AND application_id = %s",
                  sql_quote($alice->{id}), sql_quote($spa->{id}))), 0, 'deny: nothing granted');
  $r = $b->post($action, [@form, decision => 'allow']);
  is($r->{status}, 400, 'the flow ended with the denial');

  $r = $b->get($url);
  like($r->{headers}{location} // '', qr{/oauth/consent\?flow=}, 'with the SSO session: straight to the consent page');
  $r = $b->get($r->{headers}{location});
  $r = $b->post(SKBrowser::form_action($r), [flow => SKBrowser::field($r, 'flow'), csrf => SKBrowser::field($r, 'csrf'),
                                              decision => 'allow']);
  $p = url_params(SKBrowser::next_url($r));
  ok($p->{code}, 'allow: a code');
  is($p->{state}, 'c1', 'allow: state');
  is(psql(sprintf("SELECT scopes::text FROM oauth_consents WHERE user_id = %s AND application_id = %s AND revoked_at IS NULL",
                  sql_quote($alice->{id}), sql_quote($spa->{id}))), '["openid", "profile"]', 'the grant is remembered');

  $r = token_request("$TP/oauth/token", $spa, [grant_type => 'authorization_code', code => $p->{code},
                                                 redirect_uri => $CB, code_verifier => $verifier]);
  is($r->{status}, 200, 'SPA exchanges the code with client_id and code_verifier') or diag($r->{content});
  ok($r->{json}{access_token}, 'access token');
  ok(!exists $r->{json}{refresh_token}, 'no refresh token for an SPA without offline_access');

  ($verifier, $challenge) = pkce();
  $r = $b->get(authorize_url("$TP/oauth", $spa, scope => 'openid', code_challenge => $challenge,
                             code_challenge_method => 'S256'));
  ok(url_params($r->{headers}{location})->{code}, 'granted scopes: no consent page');
  $r = $b->get(authorize_url("$TP/oauth", $spa, scope => 'openid', prompt => 'consent', code_challenge => $challenge,
                             code_challenge_method => 'S256'));
  like($r->{headers}{location} // '', qr{/oauth/consent\?flow=}, 'prompt=consent: the consent page');
  $r = $b->get(authorize_url("$TP/oauth", $spa, scope => 'openid email', prompt => 'none', state => 'cn',
                             code_challenge => $challenge, code_challenge_method => 'S256'));
  $p = url_params($r->{headers}{location});
  is($p->{error}, 'consent_required', 'a new scope with prompt=none: consent_required');
  is($p->{state}, 'cn', 'state');
  $r = $b->get(authorize_url("$TP/oauth", $spa, scope => 'openid email', code_challenge => $challenge,
                             code_challenge_method => 'S256'));
  $r = $b->get($r->{headers}{location});
  like($r->{content}, qr/See your email address/, 'a new scope: asked again');
};

my %PLAT;
subtest 'platform flow: email first, the tenant found, its password page, code for the GLOBAL app' => sub {
  my $g = new_app($SA, scope => 'GLOBAL', tenant_id => undef, application_type => 'WEB');
  $PLAT{app} = $g;
  my $carol = create_user(role => 'user', tenant_id => $T2->{id}, email => unique_email('carol'));
  my $b = SKBrowser->new;
  my ($verifier, $challenge) = pkce();
  my $r = $b->get(authorize_url($PP, $g, scope => 'openid email', state => 'g1', nonce => 'gn',
                                code_challenge => $challenge, code_challenge_method => 'S256'));
  is($r->{status}, 302, 'authorize: 302');
  like($r->{headers}{location} // '', qr{\A\Q${\ base()}$PP\E/login\?flow=}, 'the platform\'s email page');
  $r = $b->get($r->{headers}{location});
  html_ok($r, 200, 'email page');
  ok(defined SKBrowser::field($r, 'email') && !defined SKBrowser::field($r, 'password'), 'asks for the email only');
  $r = $b->post(SKBrowser::form_action($r), [flow => SKBrowser::field($r, 'flow'), csrf => SKBrowser::field($r, 'csrf'),
                                              email => uc $carol->{email}]);
  is($r->{status}, 303, 'one tenant: 303');
  like($r->{headers}{location} // '', qr{\A\Q${\ base()}\E/api/v1/auth/tenants/\Q$T2->{slug}\E/oauth/login\?flow=},
       'to that tenant\'s password page');
  $r = $b->get($r->{headers}{location});
  html_ok($r, 200, 'tenant password page');
  like($r->{content}, qr/Login Tenant Two/, 'in the tenant\'s name');
  is(lc SKBrowser::field($r, 'email'), lc $carol->{email}, 'the email chosen, read-only');
  like($r->{content}, qr/\bUse another account\b/, 'a way back to the email page');
  $r = $b->post(SKBrowser::form_action($r), [flow => SKBrowser::field($r, 'flow'), csrf => SKBrowser::field($r, 'csrf'),
                                              password => $PW]);
  is($r->{status}, 200, 'signed in') or diag($r->{content});
  my $p = url_params(SKBrowser::next_url($r));
  ok($p->{code}, 'a code');
  is($p->{state}, 'g1', 'state');
  is($p->{iss}, base() . $PP, 'iss: the platform issuer');
  $r = exchange($PP, $g, $p->{code}, $verifier);
  is($r->{status}, 200, 'platform token endpoint: 200') or diag($r->{content});
  my (undef, $ac) = jwt_parts($r->{json}{access_token} // '');
  is($ac && $ac->{tenant_id}, $T2->{id}, 'the tokens carry the user\'s tenant_id');
  is($ac && $ac->{sub}, $carol->{id}, 'sub');
  is($ac && $ac->{iss}, base() . $PP, 'platform issuer');
  my (undef, $ic) = jwt_parts($r->{json}{id_token} // '');
  is($ic && $ic->{nonce}, 'gn', 'nonce');

  $r = $b->get(authorize_url($PP, $g, prompt => 'none', state => 'g2'));
  $p = url_params($r->{headers}{location});
  ok($p->{code}, 'platform prompt=none with the SSO session: a code');
  is($p->{state}, 'g2', 'state');
};

subtest 'platform flow: an email with accounts in several tenants chooses one' => sub {
  my $g = $PLAT{app} or return fail('no GLOBAL app');
  my $email = unique_email('dave');
  my $d1 = create_user(role => 'user', tenant_id => $T->{id}, email => $email);
  my $d2 = create_user(role => 'user', tenant_id => $T2->{id}, email => $email);
  my $b = SKBrowser->new;
  my $r = $b->get(authorize_url($PP, $g, state => 'm'));
  $r = $b->get($r->{headers}{location});
  my $flow = SKBrowser::field($r, 'flow');
  my $csrf = SKBrowser::field($r, 'csrf');
  $r = $b->post(SKBrowser::form_action($r), [flow => $flow, csrf => $csrf, email => $email]);
  html_ok($r, 200, 'choice page');
  like($r->{content}, qr/Login Tenant One/, 'lists the first tenant');
  like($r->{content}, qr/Login Tenant Two/, 'lists the second tenant');
  my $action = SKBrowser::form_action($r);
  like($action, qr{\Q$PP\E/login/tenant\z}, 'choice posts to login/tenant');
  $r = $b->post($action, [flow => $flow, csrf => $csrf, tenant => 'no-such-tenant']);
  is($r->{status}, 400, 'a tenant not offered: 400');
  $r = $b->post($action, [flow => $flow, csrf => $csrf, tenant => $T2->{slug}]);
  is($r->{status}, 303, 'chosen: 303');
  $r = $b->get($r->{headers}{location});
  $r = $b->post(SKBrowser::form_action($r), [flow => SKBrowser::field($r, 'flow'), csrf => SKBrowser::field($r, 'csrf'),
                                              password => $PW]);
  my $p = url_params(SKBrowser::next_url($r));
  ok($p->{code}, 'a code');
  $r = exchange($PP, $g, $p->{code});
  my (undef, $ac) = jwt_parts($r->{json}{access_token} // '');
  is($ac && $ac->{sub}, $d2->{id}, 'the account of the chosen tenant');
  is($ac && $ac->{tenant_id}, $T2->{id}, 'its tenant_id');
};

subtest 'the SSO session in the admin API; revoked there, prompt=none needs a login' => sub {
  my $b = $TOK{browser} or return fail('no browser');
  my $sid = sso_id($b);
  my $r = req(GET => '/api/v1/admin/sessions' . query_string(user_id => $alice->{id}, per_page => 100), token => $SA);
  is($r->{status}, 200, 'list: 200');
  my ($s) = grep { $_->{id} eq $sid } @{ $r->{json}{items} // [] };
  ok($s, 'the SSO session is listed');
  is($s && $s->{kind}, 'sso', 'kind sso');
  is($s && $s->{tenant_id}, $T->{id}, 'tenant_id');
  $r = $b->get(authorize_url("$TP/oauth", $web, prompt => 'none'));
  ok(url_params($r->{headers}{location})->{code}, 'before: prompt=none gives a code');
  $r = req(DELETE => "/api/v1/admin/sessions/$sid", token => $SA);
  is($r->{status}, 204, 'revoked: 204') or diag($r->{content});
  $r = $b->get(authorize_url("$TP/oauth", $web, prompt => 'none', state => 'rv'));
  my $p = url_params($r->{headers}{location});
  is($p->{error}, 'login_required', 'after: login_required');
  is($p->{state}, 'rv', 'state');
};

subtest 'logout ends the SSO session' => sub {
  my $b = SKBrowser->new;
  my $r = sign_in($b, authorize_url("$TP/oauth", $web, scope => 'openid'), email => $alice->{email});
  my $p = url_params(SKBrowser::next_url($r));
  $r = exchange("$TP/oauth", $web, $p->{code});
  my $idt = $r->{json}{id_token};
  my $sid = sso_id($b);
  ok($sid, 'signed in');

  $r = $b->get("$TP/oauth/logout" . query_string(id_token_hint => $idt, post_logout_redirect_uri => $BYE,
                                                  state => 'bye-1'));
  is($r->{status}, 302, 'logout with a registered post_logout_redirect_uri: 302') or diag($r->{content});
  is($r->{headers}{location}, "$BYE?state=bye-1", 'to it, with the state');
  my ($clear) = grep { /\Ascaikey_sso=/ } $b->last_set_cookies;
  like($clear // '', qr/\Ascaikey_sso=; .*Max-Age=0/, 'the cookie is cleared');
  is(psql(sprintf("SELECT (revoked_at IS NOT NULL) || '|' || revoked_reason FROM sessions WHERE id = %s",
                  sql_quote($sid))), 'true|logout', 'the session ended');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'user.logout' AND resource_id = %s", sql_quote($sid))),
     1, 'logout audited');
  $b->set_cookie('scaikey_sso', "$sid.x" . ('A' x 43));
  $r = $b->get(authorize_url("$TP/oauth", $web, prompt => 'none'));
  is(url_params($r->{headers}{location})->{error}, 'login_required', 'prompt=none afterwards: login_required');

  sign_in($b, authorize_url("$TP/oauth", $web), email => $alice->{email});
  $r = $b->post("$TP/oauth/logout", []);
  html_ok($r, 200, 'logout without a redirect: a page');
  is(page_title($r->{content}), 'Signed out', 'signed out page');
  ok(!sso_cookie($b), 'no SSO cookie left');
};

subtest 'MFA: the sign-in stops at the second-factor page' => sub {
  # mfa_enabled without any method enrolled: a code by email is offered (t/76 goes through it)
  my $m = create_user(role => 'user', tenant_id => $T->{id});
  psql(sprintf('UPDATE users SET mfa_enabled = true WHERE id = %s', sql_quote($m->{id})));
  my $b = SKBrowser->new;
  my $r = sign_in($b, authorize_url("$TP/oauth", $web), email => $m->{email});
  html_ok($r, 200, 'MFA page');
  is(page_title($r->{content}), 'Two-step verification', 'title');
  like($r->{content}, qr/Send me a code by email/, 'offers a code by email');
  ok(!sso_cookie($b), 'no SSO session');
  is(psql(sprintf("SELECT count(*) FROM audit_log WHERE action = 'user.login' AND result = 'success' AND actor_id = %s "
                  . "AND details->>'step' = 'password'", sql_quote($m->{id}))), 1, 'the password step audited');

  # MFA switched on after the SSO session began: prompt=none needs interaction, a login needs MFA
  my $k = create_user(role => 'user', tenant_id => $T->{id});
  my $kb = SKBrowser->new;
  $r = sign_in($kb, authorize_url("$TP/oauth", $web), email => $k->{email});
  ok(sso_cookie($kb), 'signed in before MFA');
  psql(sprintf('UPDATE users SET mfa_enabled = true WHERE id = %s', sql_quote($k->{id})));
  $r = $kb->get(authorize_url("$TP/oauth", $web, prompt => 'none', state => 'ir'));
  my $p = url_params($r->{headers}{location});
  is($p->{error}, 'interaction_required', 'prompt=none: interaction_required');
  is($p->{state}, 'ir', 'state');
  $r = $kb->get(authorize_url("$TP/oauth", $web));
  like($r->{headers}{location} // '', qr{/oauth/login\?flow=}, 'without prompt=none: the login page again');

  admin_req($SA, 'PATCH', 'tenants', $T2->{id}, json => { settings => { mfa_required => JSON::PP::true() } });
  my $n = create_user(role => 'user', tenant_id => $T2->{id});
  my $app2 = new_app($SA, tenant_id => $T2->{id});
  $r = sign_in(SKBrowser->new, authorize_url("/api/v1/auth/tenants/$T2->{slug}/oauth", $app2), email => $n->{email});
  is($r->{status}, 200, 'the tenant requires MFA: the same page');
  is(page_title($r->{content}), 'Two-step verification', 'title');
  admin_req($SA, 'PATCH', 'tenants', $T2->{id}, json => { settings => {} });
};

done_testing();
