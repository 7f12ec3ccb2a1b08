#!/usr/bin/perl
# The guard (AuthType ScaiKey) in front of other locations: every credential kind, valid, expired
# and forged; the 401/400/403 answers (RFC 6750, resource_metadata of RFC 9728); what a backend
# receives, directly (SetHandler scaikey-whoami) and through mod_proxy; header scrubbing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MIME::Base64 qw(encode_base64);
use JSON::PP ();
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $ADMIN = admin_login() or BAIL_OUT('admin login failed');
my $AT    = $ADMIN->{access_token};
my $WHO   = '/demo/whoami';
my $META  = base() . '/.well-known/oauth-protected-resource/demo/';
my $MODS  = '/usr/lib/apache2/modules';

# ---- helpers ----

sub new_key {
  my (%body) = @_;
  my $r = req(POST => '/api/v1/admin/api-keys', token => $AT, json => { name => 'guard test', %body });
  die "api key: $r->{status} $r->{content}\n" unless $r->{status} =~ /\A20[01]\z/ && $r->{json}{key};
  return $r->{json};
}

sub who {
  my ($path, %o) = @_;
  return req(GET => $path, %o);
}

sub key_header { (headers => { 'X-API-Key' => $_[0] }) }

# X-ScaiKey-* headers of a whoami answer, names normalised (lower case, '-' for '_')
sub guard_headers {
  my ($r) = @_;
  my $h = ref $r->{json} eq 'HASH' ? $r->{json}{headers} // {} : {};
  my %n;
  for my $k (keys %$h) { (my $l = lc $k) =~ tr/_/-/; $n{$l} = $h->{$k} }
  return \%n;
}

sub www { my $w = $_[0]{headers}{'www-authenticate'}; ref $w ? join(', ', @$w) : ($w // '') }

sub invalid_ok {
  my ($r, $why, $name) = @_;
  is($r->{status}, 401, "$name: 401") or diag($r->{content});
  like(www($r), qr/\ABearer realm="scaikey", error="invalid_token", error_description="[^"]*"/,
       "$name: WWW-Authenticate error=invalid_token");
  like(www($r), qr/error_description="\Q$why\E"/, "$name: error_description $why") if defined $why;
  is(ref $r->{json} eq 'HASH' ? $r->{json}{error} : undef, 'invalid_token', "$name: JSON body");
}

# ---- the callers ----

my $tenant = create_tenant();
my $global = admin_create($AT, 'applications', {
  name => 'guard global', application_type => 'SERVICE', scope => 'GLOBAL',
  allowed_scopes => ['demo:read', 'orders:read'] });
my $tapp = admin_create($AT, 'applications', {
  name => 'guard tenant app', application_type => 'SERVICE', scope => 'TENANT', tenant_id => $tenant->{id},
  allowed_scopes => ['demo:read'] });
my $agent = admin_create($AT, 'agents', {
  name => 'guard agent', tenant_id => $tenant->{id}, allowed_scopes => ['demo:read'] });
my $tadmin = create_user(role => 'tenant_admin', tenant_id => $tenant->{id}, prefix => 'guard-ta');
my $user   = create_user(role => 'user', tenant_id => $tenant->{id}, prefix => 'guard-u');

my $T_GLOBAL = client_token(id => $global->{client_id}, secret => $global->{client_secret});
my $T_TENANT = client_token(id => $tapp->{client_id}, secret => $tapp->{client_secret}, slug => $tenant->{slug});
my $T_AGENT  = client_token(id => $agent->{client_id}, secret => $agent->{client_secret}, slug => $tenant->{slug});
my $T_PERSON = admin_token(email => $tadmin->{email}, password => $tadmin->{password});
my $K_USER   = new_key(user_id => $user->{id}, scopes => ['demo:read']);
my $K_AGENT  = new_key(agent_id => $agent->{id}, scopes => ['demo:read']);
my $K_NARROW = new_key(user_id => $user->{id}, scopes => ['other:read']);

# A backend that is not guarded (what mod_proxy talks to; it is its own issuer, which gives
# tokens of a foreign issuer), then a server in front of it with locations of its own and the
# main server's issuer, so that the main server's tokens are valid there.
my ($BACK, $back_guard) = extra_apache(<<'CONF');
<Location /backend/whoami>
    SetHandler scaikey-whoami
    Require all granted
</Location>
CONF
my ($X, $x_guard) = $BACK ? extra_apache(<<"CONF", base()) : ();
ScaiKeyClockSkew 0
ScaiKeyAccessTokenTTL 2
<IfModule !proxy_module>
    LoadModule proxy_module $MODS/mod_proxy.so
</IfModule>
<IfModule !proxy_http_module>
    LoadModule proxy_http_module $MODS/mod_proxy_http.so
</IfModule>
<IfModule !authz_host_module>
    LoadModule authz_host_module $MODS/mod_authz_host.so
</IfModule>
<Location /x/>
    SetHandler scaikey-whoami
    Require all granted
</Location>
<Location /x/any>
    AuthType ScaiKey
    Require valid-user
</Location>
<Location /x/email>
    AuthType ScaiKey
    ScaiKeyUserClaim email
    Require valid-user
</Location>
<Location /x/aud>
    AuthType ScaiKey
    ScaiKeyAudience https://orders.example.com urn:example:other
    Require valid-user
</Location>
<Location /x/open>
    AuthType ScaiKey
    <RequireAny>
        Require ip 127.0.0.1
        Require scaikey-scope demo:read
    </RequireAny>
</Location>
<Location /x/proxied>
    AuthType ScaiKey
    Require scaikey-scope demo:read
    ProxyPass "$BACK/backend/whoami"
</Location>
CONF
ok($BACK && $X, 'backend and front servers started') or BAIL_OUT('extra servers did not start');

# ---- tests ----

subtest 'no credential: 401 without an error code' => sub {
  my $r = who($WHO);
  is($r->{status}, 401, 'status 401');
  is(www($r), qq{Bearer realm="scaikey", resource_metadata="$META"}, 'WWW-Authenticate names realm and metadata only');
  like($r->{headers}{'content-type'} // '', qr{\Aapplication/json}, 'JSON body');
  is($r->{json}{error}, 'unauthenticated', 'body says why');
  is(who('/demo/1k.txt')->{status}, 401, 'the static file too');
  my $b = who('/x/any', base => $X);
  is(www($b), 'Bearer realm="scaikey"', 'no resource_metadata where the location has none');
  $b = who('/x/any', base => $X, headers => { Authorization => 'Basic ' . encode_base64('a:b', '') });
  is($b->{status}, 401, 'another scheme: 401');
  is(www($b), 'Bearer realm="scaikey"', 'another scheme counts as no credential');
};

subtest 'platform client token' => sub {
  my $r = who($WHO, token => $T_GLOBAL);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  my $j = $r->{json};
  is($j->{user}, $global->{client_id}, 'r->user is sub, the client_id');
  is($j->{auth_type}, 'ScaiKey', 'auth type');
  is_deeply($j->{headers}, {
    'X-ScaiKey-Sub' => $global->{client_id}, 'X-ScaiKey-Client' => $global->{client_id},
    'X-ScaiKey-Scopes' => 'demo:read orders:read', 'X-ScaiKey-Auth' => 'jwt' }, 'headers for the backend');
  is_deeply($j->{env}, {
    SCAIKEY_SUB => $global->{client_id}, SCAIKEY_CLIENT => $global->{client_id},
    SCAIKEY_SCOPES => 'demo:read orders:read', SCAIKEY_AUTH => 'jwt' }, 'the same as variables');
  my $f = who('/demo/1k.txt', token => $T_GLOBAL);
  is($f->{status}, 200, 'static file: 200');
  is(length $f->{content}, 1024, 'static file: 1 KiB');
};

subtest 'tenant client token (tenant issuer)' => sub {
  my (undef, $c) = jwt_parts($T_TENANT);
  is($c->{iss}, base() . "/api/v1/auth/tenants/$tenant->{slug}", 'issued by the tenant');
  my $r = who($WHO, token => $T_TENANT);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is($r->{json}{headers}{'X-ScaiKey-Tenant'}, $tenant->{id}, 'X-ScaiKey-Tenant');
  is($r->{json}{env}{SCAIKEY_TENANT}, $tenant->{id}, 'SCAIKEY_TENANT');
};

subtest 'MCP agent token' => sub {
  my (undef, $c) = jwt_parts($T_AGENT);
  is($c->{agent_id}, $agent->{id}, 'the token names the agent');
  my $r = who($WHO, token => $T_AGENT);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is($r->{json}{headers}{'X-ScaiKey-Sub'}, $agent->{client_id}, 'sub is the agent client_id');
  is($r->{json}{headers}{'X-ScaiKey-Tenant'}, $tenant->{id}, 'tenant');
};

subtest 'a person: admin sign-in token' => sub {
  my $r = who($WHO, token => $T_PERSON);
  is($r->{status}, 403, 'lacks demo:read: 403');
  is(www($r), qq{Bearer error="insufficient_scope", scope="demo:read", resource_metadata="$META"},
     'WWW-Authenticate insufficient_scope with the scope');
  is_deeply($r->{json}, { error => 'insufficient_scope', scope => 'demo:read' }, 'JSON body');
  $r = who('/x/any', base => $X, token => $T_PERSON);
  is($r->{status}, 200, 'valid-user: 200') or return diag($r->{content});
  is_deeply($r->{json}{headers}, {
    'X-ScaiKey-Sub' => $tadmin->{id}, 'X-ScaiKey-Tenant' => $tenant->{id},
    'X-ScaiKey-Scopes' => 'openid profile email', 'X-ScaiKey-Roles' => 'tenant_admin',
    'X-ScaiKey-Client' => 'scaikey-admin', 'X-ScaiKey-Email' => $tadmin->{email},
    'X-ScaiKey-Auth' => 'jwt' }, 'headers of a person');
  $r = who('/x/email', base => $X, token => $T_PERSON);
  is($r->{json}{user}, $tadmin->{email}, 'ScaiKeyUserClaim email: r->user is the email');
  $r = who('/x/email', base => $X, token => $T_GLOBAL);
  invalid_ok($r, "the credential has no 'email' claim", 'a client token has no email');
};

subtest 'API keys' => sub {
  my $r = who($WHO, key_header($K_USER->{key}));
  is($r->{status}, 200, 'X-API-Key: 200') or return diag($r->{content});
  is_deeply($r->{json}{headers}, {
    'X-ScaiKey-Sub' => $user->{id}, 'X-ScaiKey-Tenant' => $tenant->{id}, 'X-ScaiKey-Scopes' => 'demo:read',
    'X-ScaiKey-Roles' => 'user', 'X-ScaiKey-Email' => $user->{email}, 'X-ScaiKey-Auth' => 'api_key' },
    'headers of a person\'s key');
  is($r->{json}{user}, $user->{id}, 'r->user');
  $r = who($WHO, token => $K_USER->{key});
  is($r->{status}, 200, 'Authorization: Bearer <key>: 200');
  is($r->{json}{headers}{'X-ScaiKey-Auth'}, 'api_key', 'recognised as a key');
  $r = who($WHO, key_header($K_AGENT->{key}));
  is($r->{status}, 200, 'agent key: 200') or diag($r->{content});
  is($r->{json}{headers}{'X-ScaiKey-Sub'}, $agent->{client_id}, 'agent key: sub is the agent client_id');
  is($r->{json}{headers}{'X-ScaiKey-Client'}, $agent->{client_id}, 'agent key: client');
  $r = who($WHO, key_header($K_NARROW->{key}));
  is($r->{status}, 403, 'key without the scope: 403');
  invalid_ok(who($WHO, key_header('sk_short')), 'malformed API key', 'malformed key');
  invalid_ok(who($WHO, key_header('sk_' . ('A' x 43))), 'unknown, revoked or expired API key', 'unknown key');
  my $old = new_key(user_id => $user->{id}, scopes => ['demo:read']);
  psql("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = " . sql_quote($old->{id}));
  invalid_ok(who($WHO, key_header($old->{key})), 'unknown, revoked or expired API key', 'expired key');
};

subtest 'malformed requests: 400 invalid_request' => sub {
  my $r = who($WHO, token => $T_GLOBAL, key_header($K_USER->{key}));
  is($r->{status}, 400, 'Authorization and X-API-Key: 400');
  like(www($r), qr/\ABearer realm="scaikey", error="invalid_request", error_description="more than one credential/,
       'error invalid_request');
  $r = who($WHO, headers => { Authorization => 'Bearer ' });
  is($r->{status}, 400, 'empty bearer credential: 400');
};

subtest 'expired token, and the documented leeway' => sub {
  my $short = admin_create($AT, 'applications', {
    name => 'guard short', application_type => 'SERVICE', scope => 'GLOBAL', allowed_scopes => ['demo:read'] });
  psql("UPDATE applications SET token_lifetime = 2 WHERE id = " . sql_quote($short->{id}));
  my $t = client_token(id => $short->{client_id}, secret => $short->{client_secret});
  my (undef, $c) = jwt_parts($t);
  is($c->{exp} - $c->{iat}, 2, 'a 2-second token');
  is(who('/x/any', base => $X, token => $t)->{status}, 200, 'accepted (and cached) while valid');
  sleep 1 while time() <= $c->{exp} + 1;
  invalid_ok(who('/x/any', base => $X, token => $t), 'token expired', 'expired, ScaiKeyClockSkew 0');
  is(who($WHO, token => $t)->{status}, 200, 'still inside the 30 s leeway of the main server');
  # a person's token: the front server signs them for 2 seconds
  my ($l, $lr) = admin_login(base => $X, email => $tadmin->{email}, password => $tadmin->{password});
  ok($l, 'signed in at the front server') or return diag("$lr->{status} $lr->{content}");
  my (undef, $pc) = jwt_parts($l->{access_token});
  is($pc->{exp} - $pc->{iat}, 2, 'a 2-second person token');
  is(who('/x/any', base => $X, token => $l->{access_token})->{status}, 200, 'accepted while valid');
  sleep 1 while time() <= $pc->{exp} + 1;
  invalid_ok(who('/x/any', base => $X, token => $l->{access_token}), 'token expired', 'expired person token');
};

subtest 'forged tokens' => sub {
  require Crypt::PK::RSA;
  my ($h, $c) = jwt_parts($T_GLOBAL);
  my ($jwks) = jwks();
  my ($jwk) = grep { $_->{kid} eq $h->{kid} } @{ $jwks->{keys} };
  my $canon = JSON::PP->new->canonical;
  my $sig = (split /\./, $T_GLOBAL)[2];
  invalid_ok(who($WHO, token => forge_jwt({ %$h, alg => 'none' }, $c, undef)), undef, 'alg none');
  invalid_ok(who($WHO, token => forge_jwt({ %$h, alg => 'HS256' }, $c, { hmac => $canon->encode($jwk) })),
             undef, 'HS256 keyed with the JWK');
  my $pem = Crypt::PK::RSA->new({ %$jwk })->export_key_pem('public');
  invalid_ok(who($WHO, token => forge_jwt({ %$h, alg => 'HS256' }, $c, { hmac => $pem })), undef,
             'HS256 keyed with the public key PEM');
  my $attacker = Crypt::PK::RSA->new;
  $attacker->generate_key(256, 65537);
  invalid_ok(who($WHO, token => forge_jwt({ %$h, kid => 'not-a-kid' }, $c, { rsa => $attacker })),
             'unknown key', 'unknown kid');
  invalid_ok(who($WHO, token => forge_jwt($h, $c, { rsa => $attacker })), undef, 'our kid, another key');
  invalid_ok(who($WHO, token => forge_jwt($h, { %$c, scope => 'demo:read admin:write' }, { signature => $sig })),
             undef, 'claims changed');
  # iss: a token of the backend server, which has its own issuer, signed with the same keys
  my $foreign = client_token(id => $global->{client_id}, secret => $global->{client_secret}, base => $BACK);
  my (undef, $fc) = jwt_parts($foreign);
  is($fc->{iss}, "$BACK/api/v1/platform/oauth", 'a token of another issuer');
  invalid_ok(who($WHO, token => $foreign), 'issuer mismatch', 'wrong iss');
  # aud: per location
  invalid_ok(who('/x/aud', base => $X, token => $T_GLOBAL), 'audience mismatch', 'aud is the client_id');
  my $for_orders = client_token(id => $global->{client_id}, secret => $global->{client_secret},
                                resource => 'https://orders.example.com');
  is(who('/x/aud', base => $X, token => $for_orders)->{status}, 200, 'aud https://orders.example.com: 200');
  is(who($WHO, token => $T_GLOBAL)->{status}, 200, 'the genuine token still works');
};

subtest 'X-ScaiKey-* from the client never reach the backend' => sub {
  my %forged = ('X-ScaiKey-Sub' => 'forged', 'x-scaikey-email' => 'forged@example.com',
                'X-SCAIKEY-TENANT' => 'forged', 'X_ScaiKey_Roles' => 'forged', 'X-ScaiKey-Extra' => 'forged');
  my $ctl = who('/x/', base => $X, headers => \%forged);
  is(scalar(grep { $_ eq 'forged' || $_ eq 'forged@example.com' } values %{ guard_headers($ctl) }), 5,
     'control: an unguarded location sees all five');
  my $r = who($WHO, token => $T_GLOBAL, headers => \%forged);
  is($r->{status}, 200, 'guarded: 200');
  my $h = guard_headers($r);
  is($h->{'x-scaikey-sub'}, $global->{client_id}, 'the real sub');
  ok(!grep({ /forged/ } values %$h), 'nothing forged is left') or diag(explain($h));
  ok(!exists $h->{'x-scaikey-tenant'} && !exists $h->{'x-scaikey-email'}, 'no tenant or email for this client');
  $r = who('/x/open', base => $X, headers => \%forged);
  is($r->{status}, 200, 'RequireAny granted by address, no credential: 200');
  is_deeply(guard_headers($r), {}, 'unauthenticated: no X-ScaiKey-* at all');
  is_deeply($r->{json}{env}, {}, 'and no SCAIKEY_* variables');
  ok(!defined $r->{json}{user}, 'no user');
};

subtest 'through mod_proxy' => sub {
  my $r = who('/x/proxied', base => $X, token => $T_GLOBAL,
              headers => { 'X-ScaiKey-Sub' => 'forged', 'X_ScaiKey_Scopes' => 'everything' });
  is($r->{status}, 200, 'proxied: 200') or return diag($r->{content});
  is($r->{json}{uri}, '/backend/whoami', 'answered by the backend');
  ok(!defined $r->{json}{user}, 'the backend itself authenticates nobody');
  is_deeply(guard_headers($r), {
    'x-scaikey-sub' => $global->{client_id}, 'x-scaikey-client' => $global->{client_id},
    'x-scaikey-scopes' => 'demo:read orders:read', 'x-scaikey-auth' => 'jwt' },
    'the backend received the identity, and only it');
  $r = req(POST => '/x/proxied', base => $X, token => $T_GLOBAL, raw => '{"hello":"backend"}');
  is($r->{json}{body}, '{"hello":"backend"}', 'a request body reaches the backend');
  is(who('/x/proxied', base => $X)->{status}, 401, 'no credential: 401 at the front');
};

subtest 'RFC 9728 protected resource metadata' => sub {
  my $r = req(GET => '/.well-known/oauth-protected-resource/demo/');
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is_deeply($r->{json}, {
    resource => base() . '/demo/', authorization_servers => [base() . '/api/v1/platform/oauth'],
    bearer_methods_supported => ['header'], scopes_supported => ['demo:read'] }, 'the document');
};

$x_guard->stop if $x_guard;
$back_guard->stop if $back_guard;
done_testing();
