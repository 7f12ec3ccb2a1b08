#!/usr/bin/perl
# MCP agents at the guard: rate_limit_rpm (429 with Retry-After, one counter per agent for its
# tokens and keys), and on MCP endpoints the tool filter: a JSON-RPC tools/call of a tool outside
# the agent's allowed_tools is refused before the backend, everything else reaches it with its
# body intact (also through mod_proxy, also chunked).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MIME::Base64 qw(encode_base64);
use JSON::PP ();
use POSIX ();
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $ADMIN = admin_login() or BAIL_OUT('admin login failed');
my $AT    = $ADMIN->{access_token};
my $MODS  = '/usr/lib/apache2/modules';
my $JSON  = JSON::PP->new->canonical;

sub agent_key {
  my ($agent) = @_;
  my $r = req(POST => '/api/v1/admin/api-keys', token => $AT,
              json => { name => 'agent key', agent_id => $agent->{id}, scopes => ['mcp:use'] });
  die "api key: $r->{status} $r->{content}\n" unless $r->{json}{key};
  return $r->{json}{key};
}

my $tenant = create_tenant();
sub agent {
  my (%f) = @_;
  my $a = admin_create($AT, 'agents', { name => 'mcp agent', tenant_id => $tenant->{id},
                                        allowed_scopes => ['mcp:use'], %f });
  $a->{token} = client_token(id => $a->{client_id}, secret => $a->{client_secret}, slug => $tenant->{slug});
  return $a;
}

my $limited = agent(name => 'limited agent', rate_limit_rpm => 3);
my $tooled  = agent(name => 'tooled agent', allowed_tools => ['search', 'fetch']);
my $bare    = agent(name => 'agent without tools');
my $service = admin_create($AT, 'applications', {
  name => 'mcp service', application_type => 'SERVICE', scope => 'GLOBAL', allowed_scopes => ['mcp:use'] });
my $T_SERVICE = client_token(id => $service->{client_id}, secret => $service->{client_secret});

my ($BACK, $back_guard) = extra_apache(<<'CONF');
<Location /backend/whoami>
    SetHandler scaikey-whoami
    Require all granted
</Location>
CONF
my ($X, $x_guard) = $BACK ? extra_apache(<<"CONF", base()) : ();
ScaiKeyRevocationDelay 1
<IfModule !proxy_module>
    LoadModule proxy_module $MODS/mod_proxy.so
</IfModule>
<IfModule !proxy_http_module>
    LoadModule proxy_http_module $MODS/mod_proxy_http.so
</IfModule>
<Location /plain>
    AuthType ScaiKey
    Require valid-user
    SetHandler scaikey-whoami
</Location>
<Location /mcp>
    AuthType ScaiKey
    ScaiKeyMCPEndpoint On
    Require valid-user
    SetHandler scaikey-whoami
</Location>
<Location /mcp-proxy>
    AuthType ScaiKey
    ScaiKeyMCPEndpoint On
    Require valid-user
    ProxyPass "$BACK/backend/whoami"
</Location>
CONF
ok($BACK && $X, 'servers started') or BAIL_OUT('extra servers did not start');

sub call {
  my ($path, $body, %o) = @_;
  return req(POST => $path, base => $X, raw => ref $body ? $JSON->encode($body) : $body, %o);
}

sub tool_call {
  my ($name, $id) = @_;
  return { jsonrpc => '2.0', (defined $id ? (id => $id) : ()), method => 'tools/call',
           params => { name => $name, arguments => { q => 'x' } } };
}

# ---- rate limit ----

subtest 'rate_limit_rpm: 429 with Retry-After, per agent' => sub {
  # a fresh 60-second window, so that the counts below fall into one
  my $sec = time() % 60;
  sleep(61 - $sec) if $sec > 45;
  for my $i (1 .. 3) {
    is(req(GET => '/plain', base => $X, token => $limited->{token})->{status}, 200, "request $i: 200");
  }
  my $r = req(GET => '/plain', base => $X, token => $limited->{token});
  is($r->{status}, 429, 'request 4: 429');
  my $retry = $r->{headers}{'retry-after'} // '';
  like($retry, qr/\A\d+\z/, 'Retry-After in seconds');
  ok($retry >= 1 && $retry <= 60, "Retry-After $retry is within the window");
  is($r->{json}{error}, 'rate_limited', 'JSON body');
  is($r->{json}{retry_after}, $retry, 'body and header agree');
  $r = req(GET => '/plain', base => $X, headers => { 'X-API-Key' => agent_key($limited) });
  is($r->{status}, 429, 'the agent\'s API key shares the count');
  is(req(GET => '/plain', base => $X, token => $tooled->{token})->{status}, 200, 'another agent: not limited');
  is(req(GET => '/plain', base => $X, token => $T_SERVICE)->{status}, 200, 'a client that is no agent: not limited');
  my $p = req(PATCH => "/api/v1/admin/agents/$limited->{id}", token => $AT, json => { rate_limit_rpm => 1000 });
  is($p->{status}, 200, 'limit raised') or diag($p->{content});
  select(undef, undef, undef, 1.3);
  is(req(GET => '/plain', base => $X, token => $limited->{token})->{status}, 200,
     'the new limit applies after the revocation delay');
};

# ---- tool filter ----

subtest 'allowed calls reach the backend with their body' => sub {
  my $body = $JSON->encode(tool_call('search', 1));
  my $r = call('/mcp', $body, token => $tooled->{token});
  is($r->{status}, 200, 'tools/call search: 200') or return diag($r->{content});
  is($r->{json}{body}, $body, 'the handler read the body byte for byte');
  is($r->{json}{body_length}, length $body, 'and all of it');
  is($r->{json}{headers}{'X-ScaiKey-Sub'}, $tooled->{client_id}, 'with the identity');
  $r = call('/mcp', { jsonrpc => '2.0', id => 2, method => 'tools/list' }, token => $tooled->{token});
  is($r->{status}, 200, 'tools/list: 200');
  $r = call('/mcp', [ tool_call('search', 3), tool_call('fetch', 4), { jsonrpc => '2.0', method => 'ping' } ],
            token => $tooled->{token});
  is($r->{status}, 200, 'a batch of allowed calls: 200');
  is(req(GET => '/mcp', base => $X, token => $tooled->{token})->{status}, 200, 'GET is not filtered');
  $r = call('/mcp', tool_call('delete', 5), headers => { 'X-API-Key' => agent_key($tooled) });
  is($r->{status}, 403, 'the agent\'s API key is filtered too');
  $r = call('/mcp', tool_call('delete', 6), token => $T_SERVICE);
  is($r->{status}, 200, 'a client that is no agent is not filtered');
  $r = call('/plain', tool_call('delete', 7), token => $tooled->{token});
  is($r->{status}, 200, 'not an MCP endpoint: not filtered');
  # a chunked body (no Content-Length)
  my @parts = ('{"jsonrpc":"2.0","id":8,', '"method":"tools/call",', '"params":{"name":"fetch"}}');
  my @send = @parts;
  my $res = HTTP::Tiny->new(keep_alive => 0)->request(POST => "$X/mcp", {
    headers => { Authorization => "Bearer $tooled->{token}", 'Content-Type' => 'application/json' },
    content => sub { shift @send } });
  is($res->{status}, 200, 'chunked body: 200') or diag($res->{content});
  my $j = eval { JSON::PP->new->decode($res->{content}) } // {};
  is($j->{body}, join('', @parts), 'chunked body: intact');
};

subtest 'calls outside allowed_tools are refused before the backend' => sub {
  my $r = call('/mcp', tool_call('delete', 7), token => $tooled->{token});
  is($r->{status}, 403, 'tools/call delete: 403');
  like($r->{headers}{'content-type'} // '', qr{\Aapplication/json}, 'JSON');
  is_deeply($r->{json}, { jsonrpc => '2.0', id => 7, error => {
    code => -32001, message => "tool 'delete' is not allowed for this agent", data => { tool => 'delete' } } },
    'a JSON-RPC error for the request id');
  ok(!exists $r->{json}{headers}, 'the backend did not answer');
  $r = call('/mcp', tool_call('delete'), token => $tooled->{token});
  is($r->{status}, 403, 'a notification: 403');
  ok(exists $r->{json}{id} && !defined $r->{json}{id}, 'with id null');
  $r = call('/mcp', [ tool_call('search', 10), tool_call('delete', 11) ], token => $tooled->{token});
  is($r->{status}, 403, 'a batch with one refused call: 403');
  is(ref $r->{json}, 'ARRAY', 'answered with a batch');
  is_deeply([ map { $_->{id} } @{ $r->{json} // [] } ], [11], 'naming the refused call');
  $r = call('/mcp', tool_call('search', 12), token => $bare->{token});
  is($r->{status}, 403, 'an agent without tools may call none');
  $r = call('/mcp', '{"jsonrpc":"2.0","id":1,"method":', token => $tooled->{token});
  is($r->{status}, 400, 'not JSON: 400');
  is($r->{json}{error}{code}, -32700, 'parse error');
  $r = call('/mcp', { jsonrpc => '2.0', id => 13, method => 'tools/call', params => {} }, token => $tooled->{token});
  is($r->{status}, 400, 'tools/call without a name: 400');
  $r = call('/mcp', '{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"search","pad":"'
                    . ('x' x (1024 * 1024)) . '"}}', token => $tooled->{token});
  is($r->{status}, 413, 'more than 1 MiB: 413');
  is(req(GET => '/plain', base => $X, token => $tooled->{token})->{status}, 200, 'the agent still works');
};

subtest 'through mod_proxy' => sub {
  my $body = $JSON->encode(tool_call('fetch', 20));
  my $r = call('/mcp-proxy', $body, token => $tooled->{token});
  is($r->{status}, 200, 'allowed call: 200') or return diag($r->{content});
  is($r->{json}{uri}, '/backend/whoami', 'answered by the backend');
  is($r->{json}{body}, $body, 'which received the body');
  is($r->{json}{headers}{'X-ScaiKey-Sub'}, $tooled->{client_id}, 'and the identity');
  $r = call('/mcp-proxy', tool_call('delete', 21), token => $tooled->{token});
  is($r->{status}, 403, 'refused call: 403 from the guard');
  is($r->{json}{id}, 21, 'JSON-RPC error');
};

subtest 'allowed_tools changes apply after the revocation delay' => sub {
  my $p = req(PATCH => "/api/v1/admin/agents/$tooled->{id}", token => $AT,
              json => { allowed_tools => ['search', 'fetch', 'delete'] });
  is($p->{status}, 200, 'delete allowed') or diag($p->{content});
  select(undef, undef, undef, 1.3);
  is(call('/mcp', tool_call('delete', 30), token => $tooled->{token})->{status}, 200, 'tools/call delete: 200');
};

$x_guard->stop if $x_guard;
$back_guard->stop if $back_guard;
done_testing();
