#!/usr/bin/perl
# Browser sign-in at a guarded location (ScaiKeyLogin): a browser without a credential is sent to
# the hosted login and comes back signed in, with a cookie that the guard verifies like a bearer
# token; API clients keep getting RFC 6750 answers. The unhappy paths: forged, replayed and
# foreign answers at the callback, a reused code, a revoked session, a forged cookie, bad
# directives.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);
use SKBrowser qw(new_app url_params);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $SA   = admin_token();
my $PW   = admin_password();
my $T    = create_tenant();
my $alice = create_user(role => 'user', tenant_id => $T->{id}, email => unique_email('gb-alice'));
my $app  = new_app($SA, tenant_id => $T->{id}, application_type => 'WEB', redirect_uris => ['https://placeholder.test/cb']);
my $HTML = { Accept => 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' };

my ($X, $server) = extra_apache(<<"CONF", base());
<Location /browser/>
    AuthType ScaiKey
    ScaiKeyLogin $T->{slug} $app->{client_id}
    ScaiKeyRevocationDelay 0
    Require scaikey-tenant $T->{slug}
</Location>
<Location /browser/whoami>
    SetHandler scaikey-whoami
</Location>
CONF
ok($X, 'a server with a ScaiKeyLogin location started') or BAIL_OUT('no server');
my $CB = "$X/browser/.scaikey/callback";
my $r = req(PATCH => "/api/v1/admin/applications/$app->{id}", token => $SA, json => { redirect_uris => [$CB] });
is($r->{status}, 200, 'the application accepts the callback as redirect_uri') or diag($r->{content});
my $ISS = base() . "/api/v1/auth/tenants/$T->{slug}";

sub cookie_named { my ($b, $prefix) = @_; my ($n) = grep { /\A\Q$prefix\E[0-9a-f]{8}\z/ } keys %{ $b->cookies }; $n }
sub set_cookie_line { my ($b, $prefix) = @_; my ($l) = grep { /\A\Q$prefix\E[0-9a-f]{8}=/ } $b->last_set_cookies; $l // '' }

# a browser at the protected page: to the authorization endpoint; returns the parameters
sub start {
  my ($b, $path) = @_;
  my $r = $b->get("$X$path", headers => $HTML);
  is($r->{status}, 302, "$path: a browser is sent away") or diag($r->{content});
  my $loc = $r->{headers}{location} // '';
  like($loc, qr{\A\Q$ISS\E/oauth/authorize\?}, 'to the tenant\'s authorization endpoint');
  return ($loc, url_params($loc));
}

# signs in on the hosted login page; returns the URL the browser is sent to (the callback)
sub sign_in {
  my ($b, $authorize) = @_;
  my $r = $b->get($authorize);
  return $r->{headers}{location} if $r->{status} == 302 && index($r->{headers}{location} // '', $CB) == 0;
  $r = $b->get($r->{headers}{location});
  $r = $b->post(SKBrowser::form_action($r), [flow => SKBrowser::field($r, 'flow'), csrf => SKBrowser::field($r, 'csrf'),
                                              email => $alice->{email}, password => $PW]);
  return SKBrowser::next_url($r);
}

my ($first_cookie, $first_callback, $first_sid);

subtest 'a browser signs in and comes back' => sub {
  my $b = SKBrowser->new;
  my ($loc, $p) = start($b, '/browser/whoami?x=1');
  is($p->{client_id}, $app->{client_id}, 'client_id');
  is($p->{redirect_uri}, $CB, 'redirect_uri: the callback inside the location');
  is($p->{response_type}, 'code', 'response_type code');
  is($p->{code_challenge_method}, 'S256', 'PKCE S256');
  like($p->{code_challenge} // '', qr/\A[A-Za-z0-9_-]{43}\z/, 'a code challenge');
  like($p->{state} // '', qr/\A[A-Za-z0-9_-]{43}\z/, 'a state');
  my $sc = set_cookie_line($b, 'scaikey_gs_');
  like($sc, qr/; Path=\/; HttpOnly; SameSite=Lax; Max-Age=600\z/, 'state cookie: HttpOnly, SameSite=Lax, 10 minutes');
  unlike($sc, qr/\Q$p->{state}\E|[?&]/, 'the state cookie is not the bare state');

  my $callback = sign_in($b, $loc);
  like($callback // '', qr{\A\Q$CB\E\?code=}, 'the hosted login sends the browser to the callback');
  my $cp = url_params($callback);
  is($cp->{state}, $p->{state}, 'with the state');
  is($cp->{iss}, $ISS, 'and iss');
  $first_callback = $callback;

  $r = $b->get($callback);
  is($r->{status}, 302, 'callback: 302') or diag($r->{content});
  is($r->{headers}{location}, "$X/browser/whoami?x=1", 'back to the page first asked for');
  like($r->{headers}{'cache-control'} // '', qr/no-store/, 'not cacheable');
  my $tc = set_cookie_line($b, 'scaikey_g_');
  like($tc, qr/\Ascaikey_g_[0-9a-f]{8}=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+\z/,
       'sign-in cookie: a JWT, HttpOnly, SameSite=Lax');
  ok(!cookie_named($b, 'scaikey_gs_'), 'the state cookie is gone');
  my $jwt = $b->cookie(cookie_named($b, 'scaikey_g_'));
  my (undef, $claims) = jwt_parts($jwt);
  is($claims->{sub}, $alice->{id}, 'token sub: the user');
  is($claims->{iss}, $ISS, 'token iss: the tenant issuer');
  is($claims->{aud}, $app->{client_id}, 'token aud: the application');
  ok($claims->{sid}, 'token sid: a session');
  $first_sid = $claims->{sid};
  is(psql("SELECT kind || '|' || client_id || '|' || user_id FROM sessions WHERE id = " . sql_quote($first_sid)),
     "user|$app->{client_id}|$alice->{id}", 'the session is a user session of the application');
  is(psql("SELECT count(*) FROM audit_log WHERE action = 'oauth.authorization_code' AND resource_id = "
          . sql_quote($first_sid) . " AND details->>'via' = 'guard'"), 1, 'audited');

  $r = $b->get("$X/browser/whoami?x=1", headers => $HTML);
  is($r->{status}, 200, 'the page: 200') or diag($r->{content});
  my $h = { map { (lc($_) =~ tr/_/-/r) => $r->{json}{headers}{$_} } keys %{ $r->{json}{headers} // {} } };
  is($h->{'x-scaikey-sub'}, $alice->{id}, 'the backend receives the user');
  is($h->{'x-scaikey-tenant'}, $T->{id}, 'and the tenant');
  $first_cookie = $jwt;
};

subtest 'API clients keep their answers' => sub {
  my $r = req(GET => '/browser/whoami', base => $X);
  is($r->{status}, 401, 'no Accept: text/html: 401');
  like($r->{headers}{'www-authenticate'} // '', qr/\ABearer realm=/, 'with WWW-Authenticate');
  $r = req(GET => '/browser/whoami', base => $X, headers => { Accept => 'application/json' });
  is($r->{status}, 401, 'Accept: application/json: 401');
  $r = req(POST => '/browser/whoami', base => $X, headers => $HTML, raw => 'a=b');
  is($r->{status}, 401, 'a POST is not redirected');
  $r = req(GET => '/browser/whoami', base => $X, token => $first_cookie);
  is($r->{status}, 200, 'the sign-in token works as a bearer token too');
  $r = req(GET => '/browser/whoami', base => $X, headers => { Accept => 'text/html', Authorization => 'Bearer x.y.z' });
  is($r->{status}, 401, 'a browser sending a bad bearer token gets 401, not a redirect');
};

subtest 'the callback refuses what it did not start' => sub {
  my $b = SKBrowser->new;
  my ($loc, $p) = start($b, '/browser/whoami');
  my $callback = sign_in($b, $loc);
  my $cp = url_params($callback);
  my $state_cookie = cookie_named($b, 'scaikey_gs_');
  my $saved = $b->cookie($state_cookie);
  my $cb = sub { my (%q) = @_; "$CB" . query_string(map { ($_ => $q{$_}) } sort keys %q) };

  my $r = $b->get($cb->(code => $cp->{code}, state => 'x' x 43, iss => $ISS));
  is($r->{status}, 400, 'another state: 400');
  like($r->{json}{error_description} // '', qr/state/, 'says state');
  ok(!$b->cookie($state_cookie), 'the state cookie is used up');
  $b->set_cookie($state_cookie, $saved);
  $r = $b->get($cb->(code => $cp->{code}, state => $cp->{state}, iss => 'https://evil.example/api/v1/auth/tenants/x'));
  is($r->{status}, 400, 'another issuer (mix-up): 400');
  $b->set_cookie($state_cookie, $saved =~ s/\.[0-9a-f]{8}/.00000000/r);
  $r = $b->get($cb->(code => $cp->{code}, state => $cp->{state}, iss => $ISS));
  is($r->{status}, 400, 'a state cookie with a wrong MAC: 400');
  $r = $b->get($cb->(code => $cp->{code}, state => $cp->{state}, iss => $ISS));
  is($r->{status}, 400, 'no state cookie: 400');
  like($r->{json}{error_description} // '', qr/not started here/, 'says so');
  $b->set_cookie($state_cookie, $saved);
  $r = $b->get("$CB" . query_string(code => $cp->{code}, code => $cp->{code}, state => $cp->{state}, iss => $ISS));
  is($r->{status}, 400, 'a repeated parameter: 400');
  $b->set_cookie($state_cookie, $saved);
  $r = $b->get($cb->(error => 'access_denied', state => $cp->{state}, iss => $ISS));
  is($r->{status}, 403, 'error=access_denied: 403');
  is($r->{json}{error}, 'access_denied', 'named');
  $b->set_cookie($state_cookie, $saved);
  $r = $b->get($cb->(code => 'not-a-code', state => $cp->{state}, iss => $ISS));
  is($r->{status}, 400, 'an unknown code: 400');
  is($r->{json}{error}, 'invalid_grant', 'invalid_grant');
  ok(!cookie_named($b, 'scaikey_g_'), 'no sign-in cookie after any of these');
  # the real code is still good (none of the above spent it)
  $b->set_cookie($state_cookie, $saved);
  $r = $b->get($callback);
  is($r->{status}, 302, 'the genuine answer still completes the sign-in');
};

subtest 'a code presented again ends what it issued' => sub {
  my $b = SKBrowser->new;
  my ($loc, $p) = start($b, '/browser/whoami');
  # the first browser's callback replayed here, with this browser's own state
  my $old = url_params($first_callback);
  my $r = $b->get("$CB" . query_string(code => $old->{code}, iss => $ISS, state => $p->{state}));
  is($r->{status}, 400, 'a used code: 400');
  is($r->{json}{error}, 'invalid_grant', 'invalid_grant');
  is(psql("SELECT revoked_reason FROM sessions WHERE id = " . sql_quote($first_sid)), 'code_reuse',
     'the session the code opened is revoked');
  $r = req(GET => '/browser/whoami', base => $X, token => $first_cookie);
  is($r->{status}, 401, 'its token no longer opens the location');
};

subtest 'a revoked session, an expired or forged cookie: sign in again' => sub {
  my $b = SKBrowser->new;
  my ($loc) = start($b, '/browser/whoami');
  $b->get(sign_in($b, $loc));
  my $name = cookie_named($b, 'scaikey_g_');
  ok($name, 'signed in');
  is($b->get("$X/browser/whoami", headers => $HTML)->{status}, 200, 'the page: 200');
  my (undef, $c) = jwt_parts($b->cookie($name));
  my $r = req(DELETE => "/api/v1/admin/sessions/$c->{sid}", token => $SA);
  is($r->{status}, 204, 'an administrator revokes the session') or diag($r->{content});
  $r = $b->get("$X/browser/whoami", headers => $HTML);
  is($r->{status}, 302, 'the next page view signs in again');
  like($r->{headers}{location} // '', qr{\A\Q$ISS\E/oauth/authorize\?}, 'at the authorization endpoint');
  like(set_cookie_line($b, 'scaikey_g_'), qr/Max-Age=0\z/, 'the dead cookie is cleared');
  # the SSO session is still alive: back without a login page
  my $cb = $b->get($r->{headers}{location});
  is($cb->{status}, 302, 'the SSO session answers at once');
  like($cb->{headers}{location} // '', qr{\A\Q$CB\E\?code=}, 'straight to the callback');
  $r = $b->get($cb->{headers}{location});
  is($r->{status}, 302, 'signed in again');
  is($b->get("$X/browser/whoami", headers => $HTML)->{status}, 200, 'the page: 200');

  $b->set_cookie($name, 'forged.' . ('A' x 40) . '.sig');
  $r = $b->get("$X/browser/whoami", headers => $HTML);
  is($r->{status}, 302, 'a forged cookie: sign in again');
  my $api = req(GET => '/browser/whoami', base => $X, headers => { Cookie => "$name=forged.x.y" });
  is($api->{status}, 401, 'an API client with a forged cookie: 401');
};

subtest 'directives are checked at start-up' => sub {
  for my $bad ("ScaiKeyLogin 'Not A Slug' app_x", "ScaiKeyLogin platform 'bad id'",
               "ScaiKeyLogin platform app_x relative/path") {
    my ($u, $g) = do { local $SIG{__WARN__} = sub {}; extra_apache("<Location /x/>\nAuthType ScaiKey\n$bad\n</Location>", base()) };
    ok(!$u, "refused: $bad");
    $g->stop if $g;
  }
  my ($u, $g) = do { local $SIG{__WARN__} = sub {}; extra_apache("<LocationMatch ^/y/>\nAuthType ScaiKey\nScaiKeyLogin platform app_x\n</LocationMatch>", base()) };
  ok(!$u, 'refused: no callback path in a <LocationMatch>');
  $g->stop if $g;
};

$server->stop;
done_testing();
