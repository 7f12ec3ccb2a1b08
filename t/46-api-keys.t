#!/usr/bin/perl
# API keys: a person's own keys (/api/v1/me/api-keys), the administrators' view
# (/api/v1/admin/api-keys), the tenant a key is scoped to (X-Tenant-ID / x-project-id), and the
# look-up statement the guard runs for every request that carries a key.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP ();
use SK qw(req admin_login psql sql_quote unique_slug create_tenant create_user find_verror);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 13;

my $ME    = '/api/v1/me/api-keys';
my $ADMIN = '/api/v1/admin/api-keys';
my $KEY_RE = qr/\Ask_[A-Za-z0-9_-]{43}\z/;
my $JSON  = JSON::PP->new->utf8->canonical;

my @CREATED_FIELDS = sort qw(id name key key_prefix key_type scopes tenant_id last_used_at expires_at
                             is_active created_at deactivated_at);
my @OWN_FIELDS   = sort qw(id name key_prefix key_type scopes tenant_id last_used_at expires_at is_active
                           created_at deactivated_at);
my @ADMIN_FIELDS = sort(@OWN_FIELDS, qw(user_id agent_id created_by));

# ---- the cast ----

my $super = admin_login() or BAIL_OUT('the bootstrap admin cannot sign in');
my $tA = create_tenant();
my $tB = create_tenant();
my $partner = psql('INSERT INTO partners (name, slug) VALUES (' . sql_quote('Keys partner') . ', '
                   . sql_quote(unique_slug('kp')) . ') RETURNING id');
my $tP = create_tenant();
psql("UPDATE tenants SET partner_id = " . sql_quote($partner) . " WHERE id = " . sql_quote($tP->{id}));

my $ta  = create_user(role => 'tenant_admin', tenant_id => $tA->{id}, prefix => 'keys-ta');
my $ta2 = create_user(role => 'tenant_admin', tenant_id => $tA->{id}, prefix => 'keys-ta2');
my $tb  = create_user(role => 'tenant_admin', tenant_id => $tB->{id}, prefix => 'keys-tb');
my $pa  = create_user(role => 'partner_admin', partner_id => $partner, prefix => 'keys-pa');
my $ua  = create_user(role => 'user', tenant_id => $tA->{id}, prefix => 'keys-ua');
my ($agent_id, $agent_client) = split /\|/, psql(
  'INSERT INTO mcp_agents (tenant_id, name) VALUES (' . sql_quote($tA->{id}) . ", 'keys agent') "
  . 'RETURNING id, client_id');

sub token_of {
  my ($u) = @_;
  my $j = admin_login(email => $u->{email}, password => $u->{password});
  BAIL_OUT("$u->{email} cannot sign in") unless $j;
  return $j->{access_token};
}
my $T_SUPER = $super->{access_token};
my $T_TA    = token_of($ta);
my $T_TB    = token_of($tb);
my $T_PA    = token_of($pa);

# ---- helpers ----

sub mine   { my ($tok, $body, %h) = @_; req(POST => $ME, token => $tok, json => $body, headers => \%h) }
sub make_for { my ($tok, $body) = @_; req(POST => $ADMIN, token => $tok, json => $body) }

sub one {
  my ($sql) = @_;
  my $v = psql($sql);
  return $v;
}

sub count_keys_of { one('SELECT count(*) FROM api_keys WHERE user_id = ' . sql_quote($_[0])) }

sub iso_in_years {
  my ($years, $suffix) = @_;
  my @t = gmtime(time + $years * 366 * 86400);
  return sprintf('%04d-06-15T12:00:00%s', $t[5] + 1900, $suffix // 'Z');
}

sub v422_ok {
  my ($r, $loc, $type, $name) = @_;
  is($r->{status}, 422, "$name: 422") or return diag($r->{content});
  my $e = find_verror($r, $loc);
  ok($e, "$name: error at [@$loc]") or return diag($r->{content});
  is($e->{type}, $type, "$name: type $type") if defined $type;
}

sub by_id { my ($r) = @_; return { map { $_->{id} => $_ } @{ $r->{json}{items} // [] } } }

# The guard's look-up statement, run as the module runs it: its text comes from the module's
# statement table, the digest is the only argument.
sub statement_sql {
  my ($label) = @_;
  my $file = ($ENV{SK_TOP} // "$FindBin::Bin/..") . '/mod_scaikey/store/statements_keys.c';
  open(my $fh, '<', $file) or die "$file: $!";
  my $src = do { local $/; <$fh> };
  $src =~ /\{\s*"\Q$label\E",\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\}/s or die "no statement $label in $file\n";
  my $lits = $1;
  return join '', map { (my $s = $_) =~ s/\\(.)/$1/g; $s } ($lits =~ /"((?:[^"\\]|\\.)*)"/g);
}
my $LOOKUP_SQL = statement_sql('apikey_lookup');

sub lookup {
  my ($key) = @_;
  my @args = (sha256_hex($key));
  (my $sql = $LOOKUP_SQL) =~ s/%(s|%)/$1 eq '%' ? '%' : sql_quote(shift @args)/ge;
  my $out = psql($sql);
  return defined $out && length $out ? $JSON->decode($out) : undef;
}

sub nowhere_in_db_ok {
  my ($key, $name) = @_;
  is(one('SELECT count(*) FROM api_keys k WHERE strpos(k::text, ' . sql_quote($key) . ') > 0'), 0,
     "$name: the clear key is in no api_keys row");
  is(one('SELECT count(*) FROM audit_log a WHERE strpos(a::text, ' . sql_quote($key) . ') > 0'), 0,
     "$name: the clear key is in no audit row");
  is(one('SELECT count(*) FROM audit_log a WHERE strpos(a::text, ' . sql_quote(sha256_hex($key)) . ') > 0'), 0,
     "$name: nor is its digest");
}

# ---- the tests ----

my ($own, $own_key);

subtest 'a person creates a key for themselves' => sub {
  my $r = mine($T_TA, { name => 'CI pipeline', scopes => ['products:read', 'products:write'] });
  is($r->{status}, 201, 'created (201)') or return diag($r->{content});
  $own = $r->{json};
  $own_key = $own->{key};
  is_deeply([sort keys %$own], \@CREATED_FIELDS, 'members of the answer');
  like($own_key, $KEY_RE, 'the key is sk_ + 43 base64url characters');
  like($own->{id}, qr/\Akey_[a-z0-9]{16}\z/, 'id');
  is($own->{key_prefix}, substr($own_key, 0, 12), 'key_prefix is its first 12 characters');
  is($own->{name}, 'CI pipeline', 'name');
  is($own->{key_type}, 'server', 'key_type defaults to server');
  is_deeply($own->{scopes}, ['products:read', 'products:write'], 'scopes');
  is($own->{tenant_id}, $tA->{id}, "scoped to the person's tenant");
  ok(JSON::PP::is_bool($own->{is_active}) && $own->{is_active}, 'is_active true');
  ok(!defined $own->{expires_at}, 'no expiry unless asked');
  ok(!defined $own->{last_used_at} && !defined $own->{deactivated_at}, 'never used, not revoked');
  like($own->{created_at}, qr/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z/, 'created_at ISO 8601 UTC');
  like($r->{headers}{'cache-control'} // '', qr/no-store/, 'Cache-Control: no-store');
  is($r->{headers}{location}, "$ME/$own->{id}", 'Location');

  my $row = psql('SELECT key_hash, user_id, coalesce(tenant_id, \'\'), key_prefix, created_by, key_type, scopes::text '
                 . 'FROM api_keys WHERE id = ' . sql_quote($own->{id}));
  my ($hash, $uid, $tid, $prefix, $by, $type, $scopes) = split /\|/, $row // '';
  is($hash, sha256_hex($own_key), 'the store keeps the SHA-256 (hex) of the key');
  is($uid, $ta->{id}, 'owned by the caller');
  is($tid, $tA->{id}, "in the caller's tenant");
  is($prefix, $own->{key_prefix}, 'prefix stored');
  is($by, $ta->{id}, 'created_by the caller');
  is($type, 'server', 'key_type stored');
  is_deeply($JSON->decode($scopes // '[]'), $own->{scopes}, 'scopes stored');
  nowhere_in_db_ok($own_key, 'own key');

  my $audit = psql("SELECT actor_id || '|' || coalesce(tenant_id, '') || '|' || result || '|' || "
                   . "(details->>'name') || '|' || (details->>'key_prefix') FROM audit_log "
                   . "WHERE action = 'api_key.create' AND resource_type = 'api_key' AND resource_id = "
                   . sql_quote($own->{id}));
  is($audit, "$ta->{id}|$tA->{id}|success|CI pipeline|$own->{key_prefix}",
     'audited: api_key.create by the caller, in the tenant, with name and prefix');
};

subtest 'the key is shown once' => sub {
  my $list = req(GET => $ME, token => $T_TA);
  is($list->{status}, 200, 'list 200');
  my $item = by_id($list)->{ $own->{id} };
  ok($item, 'the key is listed') or return;
  is_deeply([sort keys %$item], \@OWN_FIELDS, 'list members: no key, no digest');
  is($item->{key_prefix}, $own->{key_prefix}, 'listed with its prefix');
  is_deeply([sort keys %{ $list->{json}{pagination} }], [qw(page per_page total total_pages)], 'paginated');
  my $get = req(GET => "$ME/$own->{id}", token => $T_TA);
  is($get->{status}, 200, 'get 200');
  is_deeply([sort keys %{ $get->{json} }], \@OWN_FIELDS, 'get members');
  my $aget = req(GET => "$ADMIN/$own->{id}", token => $T_SUPER);
  is($aget->{status}, 200, 'admin get 200');
  is_deeply([sort keys %{ $aget->{json} }], \@ADMIN_FIELDS, 'admin get members');
  my $alist = req(GET => "$ADMIN?user_id=$ta->{id}", token => $T_SUPER);
  for my $r ($list, $get, $aget, $alist) {
    unlike($r->{content}, qr/\Q$own_key\E/, "the key is not in $r->{url}");
    unlike($r->{content}, qr/\Q${\ sha256_hex($own_key)}\E/, "nor its digest");
    unlike($r->{content}, qr/key_hash/, 'no key_hash member');
  }
};

subtest 'expiry: expires_in_days and expires_at' => sub {
  my $r = mine($T_TA, { name => 'thirty days', expires_in_days => 30 });
  is($r->{status}, 201, 'expires_in_days: 201') or return diag($r->{content});
  like($r->{json}{expires_at}, qr/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z/, 'expires_at ISO 8601 UTC');
  is(one("SELECT abs(extract(epoch FROM expires_at - (now() + interval '30 days'))) < 120 FROM api_keys WHERE id = "
         . sql_quote($r->{json}{id})), 't', 'expires 30 days from now');
  nowhere_in_db_ok($r->{json}{key}, 'expiring key');

  my $at = iso_in_years(2, '+02:00');
  (my $utc = $at) =~ s/T12:00:00\+02:00\z/T10:00:00Z/;
  $r = mine($T_TA, { name => 'dated', expires_at => $at, key_type => 'client' });
  is($r->{status}, 201, 'expires_at with an offset: 201') or return diag($r->{content});
  is($r->{json}{expires_at}, $utc, 'expires_at answered in UTC');
  is($r->{json}{key_type}, 'client', 'key_type client');
  ok($r->{json}{is_active}, 'active until then');

  $r = mine($T_TA, { name => 'fraction', expires_at => iso_in_years(1) =~ s/Z\z/.250Z/r });
  is($r->{status}, 201, 'expires_at with a fraction of a second: 201');

  $r = mine($T_TA, { name => 'nulls', expires_at => undef, expires_in_days => undef, scopes => undef });
  is($r->{status}, 201, 'null expiry and scopes: 201') or return diag($r->{content});
  ok(!defined $r->{json}{expires_at}, 'no expiry');
  is_deeply($r->{json}{scopes}, [], 'no scopes');
};

subtest 'invalid input is refused with 422 and creates nothing' => sub {
  my $before = count_keys_of($ta->{id});
  my $past = iso_in_years(-1);
  my @cases = (
    [{ name => 'x', expires_in_days => 5, expires_at => iso_in_years(1) }, ['body'], 'value_error', 'both expiries'],
    [{ name => 'x', expires_at => $past }, ['body', 'expires_at'], 'datetime_future', 'past expires_at'],
    [{ name => 'x', expires_at => 'tomorrow' }, ['body', 'expires_at'], 'datetime_parsing', 'expires_at not a date'],
    [{ name => 'x', expires_at => '2031-02-30T00:00:00Z' }, ['body', 'expires_at'], 'datetime_parsing', 'no such day'],
    [{ name => 'x', expires_at => 1893456000 }, ['body', 'expires_at'], 'string_type', 'expires_at a number'],
    [{ name => 'x', expires_in_days => 0 }, ['body', 'expires_in_days'], 'int_range', 'expires_in_days 0'],
    [{ name => 'x', expires_in_days => 3651 }, ['body', 'expires_in_days'], 'int_range', 'expires_in_days 3651'],
    [{ name => 'x', expires_in_days => '30' }, ['body', 'expires_in_days'], 'int_type', 'expires_in_days a string'],
    [{ name => 'x', expires_in_days => 1.5 }, ['body', 'expires_in_days'], 'int_type', 'expires_in_days 1.5'],
    [{ name => 'x', expires_in_days => JSON::PP::true() }, ['body', 'expires_in_days'], 'int_type', 'expires_in_days true'],
    [{}, ['body', 'name'], 'missing', 'no name'],
    [{ name => '' }, ['body', 'name'], 'string_too_short', 'empty name'],
    [{ name => "  \t " }, ['body', 'name'], 'string_too_short', 'blank name'],
    [{ name => 'n' x 201 }, ['body', 'name'], 'string_too_long', 'name of 201 characters'],
    [{ name => 123 }, ['body', 'name'], 'string_type', 'name a number'],
    [{ name => undef }, ['body', 'name'], 'string_type', 'name null'],
    [{ name => 'x', scopes => 'read' }, ['body', 'scopes'], 'list_type', 'scopes a string'],
    [{ name => 'x', scopes => [1] }, ['body', 'scopes'], 'string_type', 'scopes of numbers'],
    [{ name => 'x', scopes => [''] }, ['body', 'scopes'], 'string_type', 'an empty scope'],
    [{ name => 'x', scopes => [map { "s$_" } 1 .. 51] }, ['body', 'scopes'], 'too_long', '51 scopes'],
    [{ name => 'x', scopes => ['s' x 201] }, ['body', 'scopes'], 'string_too_long', 'a scope of 201 characters'],
    [{ name => 'x', key_type => 'laptop' }, ['body', 'key_type'], 'enum', 'unknown key_type'],
    [{ name => 'x', key_type => undef }, ['body', 'key_type'], 'string_type', 'key_type null'],
    [{ name => 'x', permissions => ['a'] }, ['body', 'permissions'], 'extra_forbidden', 'unknown field'],
    [{ name => 'x', user_id => $ua->{id} }, ['body', 'user_id'], 'extra_forbidden', 'user_id on the self-service form'],
  );
  for my $c (@cases) {
    my ($body, $loc, $type, $name) = @$c;
    v422_ok(mine($T_TA, $body), $loc, $type, $name);
  }
  my $r = req(POST => $ME, token => $T_TA, raw => '["name"]');
  is($r->{status}, 422, 'a body that is not an object: 422');
  $r = req(POST => $ME, token => $T_TA, raw => '{"name":');
  is($r->{status}, 422, 'malformed JSON: 422');
  is(count_keys_of($ta->{id}), $before, 'no key was made');
};

subtest 'a person revokes their own key' => sub {
  my $made = mine($T_TA, { name => 'to revoke' })->{json};
  ok(lookup($made->{key}), 'the key works before');
  my $r = req(DELETE => "$ME/$made->{id}", token => $T_TA);
  is($r->{status}, 200, 'revoked (200)') or return diag($r->{content});
  is_deeply([sort keys %{ $r->{json} }], [qw(deactivated_at id is_active)], 'members');
  is($r->{json}{id}, $made->{id}, 'id');
  ok(JSON::PP::is_bool($r->{json}{is_active}) && !$r->{json}{is_active}, 'is_active false');
  like($r->{json}{deactivated_at} // '', qr/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z/, 'deactivated_at');
  ok(!lookup($made->{key}), 'the key no longer works');

  sleep 1;
  my $again = req(DELETE => "$ME/$made->{id}", token => $T_TA);
  is($again->{status}, 200, 'revoking again: 200');
  is($again->{json}{deactivated_at}, $r->{json}{deactivated_at}, 'the first deactivated_at stays');
  ok(!$again->{json}{is_active}, 'still inactive');

  my $item = by_id(req(GET => $ME, token => $T_TA))->{ $made->{id} };
  ok($item && !$item->{is_active}, 'listed as inactive');
  is($item && $item->{deactivated_at}, $r->{json}{deactivated_at}, 'with deactivated_at');

  my @audit = psql("SELECT (details->>'name') || '|' || (details->>'key_prefix') || '|' || actor_id FROM audit_log "
                   . "WHERE action = 'api_key.revoke' AND resource_id = " . sql_quote($made->{id}));
  is_deeply(\@audit, ["to revoke|$made->{key_prefix}|$ta->{id}"], 'audited once: api_key.revoke with name and prefix');
  nowhere_in_db_ok($made->{key}, 'revoked key');

  is(req(DELETE => "$ME/$own->{id}", token => $T_TB)->{status}, 404, "another person's key: 404 on revoke");
  is(req(GET => "$ME/$own->{id}", token => $T_TB)->{status}, 404, "another person's key: 404 on get");
  ok(!by_id(req(GET => $ME, token => $T_TB))->{ $own->{id} }, "another person's key is not in one's list");
  ok(lookup($own_key), 'and it still works');
  my $nf = req(DELETE => "$ME/key_doesnotexist0000", token => $T_TA);
  is($nf->{status}, 404, 'unknown key: 404');
  is($nf->{json} && $nf->{json}{detail}, 'API key not found', 'detail');
};

subtest 'expired keys are inactive and refused' => sub {
  my $made = mine($T_TA, { name => 'short-lived', expires_in_days => 1 })->{json};
  ok(lookup($made->{key}), 'works while valid');
  psql("UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = " . sql_quote($made->{id}));
  my $item = by_id(req(GET => $ME, token => $T_TA))->{ $made->{id} };
  ok($item, 'still listed');
  ok($item && JSON::PP::is_bool($item->{is_active}) && !$item->{is_active}, 'is_active false once expired');
  ok(!defined($item && $item->{deactivated_at}), 'though never revoked');
  ok(!lookup($made->{key}), 'the look-up refuses it');
  my $inactive = by_id(req(GET => "$ADMIN?is_active=false&user_id=$ta->{id}&per_page=100", token => $T_SUPER));
  ok($inactive->{ $made->{id} }, 'admin filter is_active=false finds it');
  ok(!$inactive->{ $own->{id} }, 'and not the active ones');
};

subtest 'the look-up statement' => sub {
  my $made = mine($T_TA, { name => 'looked up', scopes => ['a'], expires_in_days => 2 })->{json};
  my $k = lookup($made->{key});
  ok($k, 'found by digest') or return;
  is_deeply([sort keys %$k], [sort qw(id name key_type scopes tenant_id user_id agent_id expires_at subject email
                                      role partner_id)], 'members');
  is($k->{id}, $made->{id}, 'id');
  is($k->{subject}, $ta->{id}, 'subject: the owner');
  is($k->{user_id}, $ta->{id}, 'user_id');
  ok(!defined $k->{agent_id}, 'no agent');
  is($k->{tenant_id}, $tA->{id}, 'tenant_id');
  is(lc $k->{email}, lc $ta->{email}, 'email');
  is($k->{role}, 'tenant_admin', 'role');
  ok(!defined $k->{partner_id}, 'no partner');
  is_deeply($k->{scopes}, ['a'], 'scopes');
  like($k->{expires_at}, qr/\A\d+\z/, 'expires_at in seconds');
  ok(abs($k->{expires_at} - (time + 2 * 86400)) < 300, 'expires_at about two days ahead');

  my $q = 'SELECT last_used_at FROM api_keys WHERE id = ' . sql_quote($made->{id});
  my $used = one($q);
  ok(length($used // ''), 'last_used_at set by the look-up');
  lookup($made->{key});
  is(one($q), $used, 'not written again within a minute');
  psql("UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = " . sql_quote($made->{id}));
  my $old = one($q);
  lookup($made->{key});
  isnt(one($q), $old, 'written again after a minute');

  psql("UPDATE users SET status = 'SUSPENDED' WHERE id = " . sql_quote($ta->{id}));
  ok(!lookup($made->{key}), 'refused while the owner is suspended');
  psql("UPDATE users SET status = 'ACTIVE' WHERE id = " . sql_quote($ta->{id}));
  psql("UPDATE tenants SET status = 'SUSPENDED' WHERE id = " . sql_quote($tA->{id}));
  ok(!lookup($made->{key}), "refused while the owner's tenant is suspended");
  psql("UPDATE tenants SET status = 'ACTIVE' WHERE id = " . sql_quote($tA->{id}));
  ok(lookup($made->{key}), 'accepted again');
  ok(!lookup(substr($made->{key}, 0, 45) . (substr($made->{key}, 45) eq 'A' ? 'B' : 'A')), 'another key is unknown');

  my $p = mine($T_PA, { name => 'partner level' });
  is($p->{status}, 201, "a partner_admin's own key");
  my $pk = lookup($p->{json}{key});
  is($pk && $pk->{partner_id}, $partner, "partner_id: the owner's partner");
  ok($pk && !defined $pk->{tenant_id}, 'no tenant');
};

my ($user_key, $agent_key);

subtest 'administrators make keys for users and agents' => sub {
  my $r = make_for($T_SUPER, { name => 'for a user', user_id => $ua->{id}, scopes => ['x'] });
  is($r->{status}, 201, 'for a user: 201') or return diag($r->{content});
  $user_key = $r->{json};
  like($user_key->{key}, $KEY_RE, 'the key, once');
  is_deeply([sort keys %$user_key], [sort(@ADMIN_FIELDS, 'key')], 'members');
  is($user_key->{user_id}, $ua->{id}, 'user_id');
  ok(!defined $user_key->{agent_id}, 'no agent');
  is($user_key->{tenant_id}, $tA->{id}, "the user's tenant");
  is($user_key->{created_by}, $super->{user}{id}, 'created_by the administrator');
  like($r->{headers}{'cache-control'} // '', qr/no-store/, 'Cache-Control: no-store');
  is($r->{headers}{location}, "$ADMIN/$user_key->{id}", 'Location');
  nowhere_in_db_ok($user_key->{key}, 'user key');
  my $lk = lookup($user_key->{key});
  is($lk && $lk->{subject}, $ua->{id}, 'works for the user');

  $r = make_for($T_SUPER, { name => 'for an agent', agent_id => $agent_id, expires_in_days => 7 });
  is($r->{status}, 201, 'for an agent: 201') or return diag($r->{content});
  $agent_key = $r->{json};
  is($agent_key->{agent_id}, $agent_id, 'agent_id');
  ok(!defined $agent_key->{user_id}, 'no user');
  is($agent_key->{tenant_id}, $tA->{id}, "the agent's tenant");
  my $ak = lookup($agent_key->{key});
  is($ak && $ak->{subject}, $agent_client, "subject: the agent's client_id");
  ok($ak && !defined $ak->{email} && !defined $ak->{role}, 'no email, no role');
  psql("UPDATE mcp_agents SET status = 'SUSPENDED' WHERE id = " . sql_quote($agent_id));
  ok(!lookup($agent_key->{key}), 'refused while the agent is suspended');
  psql("UPDATE mcp_agents SET status = 'ACTIVE' WHERE id = " . sql_quote($agent_id));

  my $audit = one("SELECT (details->>'agent_id') || '|' || coalesce(tenant_id, '') FROM audit_log "
                  . "WHERE action = 'api_key.create' AND resource_id = " . sql_quote($agent_key->{id}));
  is($audit, "$agent_id|$tA->{id}", 'audited with the owner, in its tenant');

  v422_ok(make_for($T_SUPER, { name => 'x', user_id => $ua->{id}, agent_id => $agent_id }),
          ['body'], 'value_error', 'both owners');
  v422_ok(make_for($T_SUPER, { name => 'x' }), ['body'], 'value_error', 'no owner');
  v422_ok(make_for($T_SUPER, { name => 'x', user_id => 'usr_doesnotexist000' }), ['body', 'user_id'],
          'value_error', 'unknown user');
  v422_ok(make_for($T_SUPER, { name => 'x', agent_id => 'agt_doesnotexist000' }), ['body', 'agent_id'],
          'value_error', 'unknown agent');
  v422_ok(make_for($T_SUPER, { name => 'x', user_id => 5 }), ['body', 'user_id'], 'string_type', 'user_id a number');
  v422_ok(make_for($T_SUPER, { name => 'x', user_id => $ua->{id}, owner => 'me' }), ['body', 'owner'],
          'extra_forbidden', 'unknown field');
  v422_ok(make_for($T_TB, { name => 'x', user_id => $ua->{id} }), ['body', 'user_id'], 'value_error',
          "a user of another tenant is not found");
  v422_ok(make_for($T_TB, { name => 'x', agent_id => $agent_id }), ['body', 'agent_id'], 'value_error',
          "an agent of another tenant is not found");
  v422_ok(make_for($T_PA, { name => 'x', user_id => $ua->{id} }), ['body', 'user_id'], 'value_error',
          "a user outside the partner is not found");
  is(make_for($T_TA, { name => 'x', user_id => $ta2->{id} })->{status}, 403,
     'a tenant_admin makes no key for another tenant_admin');
  $r = make_for($T_TA, { name => 'by the tenant admin', user_id => $ua->{id} });
  is($r->{status}, 201, "a tenant_admin makes one for a user of their tenant");
  is($r->{json}{created_by}, $ta->{id}, 'created_by');
  is(make_for($T_TA, { name => 'self', user_id => $ta->{id} })->{status}, 201, '... and for themselves');
};

subtest 'administrators list the keys within their reach' => sub {
  my $bkey = mine($T_TB, { name => 'tenant B key' })->{json};
  my $all = by_id(req(GET => "$ADMIN?per_page=100&tenant_id=$tA->{id}", token => $T_SUPER));
  ok($all->{ $own->{id} } && $all->{ $user_key->{id} } && $all->{ $agent_key->{id} }, 'super_admin: tenant A keys');
  ok(!$all->{ $bkey->{id} }, 'filtered by tenant_id');
  ok(!grep({ ($_->{tenant_id} // '') ne $tA->{id} } values %$all), 'only tenant A');
  my $item = $all->{ $user_key->{id} };
  is_deeply([sort keys %$item], \@ADMIN_FIELDS, 'item members') if $item;

  my $by_user = req(GET => "$ADMIN?user_id=$ua->{id}", token => $T_SUPER);
  ok(!grep({ ($_->{user_id} // '') ne $ua->{id} } @{ $by_user->{json}{items} }) && @{ $by_user->{json}{items} },
     'filter user_id');
  my $by_agent = req(GET => "$ADMIN?agent_id=$agent_id", token => $T_SUPER);
  is_deeply([map { $_->{id} } @{ $by_agent->{json}{items} }], [$agent_key->{id}], 'filter agent_id');
  v422_ok(req(GET => "$ADMIN?is_active=maybe", token => $T_SUPER), ['query', 'is_active'], 'bool_parsing',
          'is_active not a boolean');
  v422_ok(req(GET => "$ADMIN?per_page=0", token => $T_SUPER), ['query', 'per_page'], undef, 'per_page 0');

  my $seen_b = by_id(req(GET => "$ADMIN?per_page=100", token => $T_TB));
  ok($seen_b->{ $bkey->{id} }, "tenant_admin B sees their tenant's keys");
  ok(!grep({ ($_->{tenant_id} // '') ne $tB->{id} } values %$seen_b), 'and nothing else');
  my $seen_a = by_id(req(GET => "$ADMIN?per_page=100", token => $T_TA));
  ok($seen_a->{ $own->{id} } && $seen_a->{ $user_key->{id} } && !$seen_a->{ $bkey->{id} }, 'tenant_admin A likewise');
  my $seen_p = by_id(req(GET => "$ADMIN?per_page=100", token => $T_PA));
  ok(!$seen_p->{ $own->{id} } && !$seen_p->{ $bkey->{id} }, "a partner_admin does not see other partners' tenants");
  is(req(GET => "$ADMIN?tenant_id=$tA->{id}", token => $T_TB)->{json}{pagination}{total}, 0,
     "naming another tenant in the filter shows nothing");
};

subtest 'administrators revoke only within their reach' => sub {
  my $r = req(DELETE => "$ADMIN/$user_key->{id}", token => $T_TB);
  is($r->{status}, 404, "a tenant_admin cannot revoke another tenant's key (404)");
  is($r->{json} && $r->{json}{detail}, 'API key not found', 'detail');
  is(req(GET => "$ADMIN/$user_key->{id}", token => $T_TB)->{status}, 404, '... nor see it');
  is(req(DELETE => "$ADMIN/$user_key->{id}", token => $T_PA)->{status}, 404, 'nor can a partner_admin of another partner');
  ok(lookup($user_key->{key}), 'the key still works');

  $r = req(DELETE => "$ADMIN/$user_key->{id}", token => $T_TA);
  is($r->{status}, 200, "the tenant's admin revokes it") or return diag($r->{content});
  ok(!$r->{json}{is_active}, 'inactive');
  ok(!lookup($user_key->{key}), 'refused from now on');
  my $again = req(DELETE => "$ADMIN/$user_key->{id}", token => $T_SUPER);
  is($again->{status}, 200, 'revoking again: 200');
  is($again->{json}{deactivated_at}, $r->{json}{deactivated_at}, 'the first deactivated_at stays');
  is(one("SELECT count(*) FROM audit_log WHERE action = 'api_key.revoke' AND resource_id = " . sql_quote($user_key->{id})),
     1, 'audited once');
  is(one("SELECT actor_id FROM audit_log WHERE action = 'api_key.revoke' AND resource_id = " . sql_quote($user_key->{id})),
     $ta->{id}, 'by the tenant admin');
  is(req(DELETE => "$ADMIN/key_doesnotexist0000", token => $T_SUPER)->{status}, 404, 'unknown key: 404');
};

subtest 'keys scoped to a tenant (X-Tenant-ID, x-project-id)' => sub {
  my %before = map { $_->{id} => count_keys_of($_->{id}) } ($ta, $pa);
  my $r = mine($T_SUPER, { name => 'for tenant A' }, 'X-Tenant-ID' => $tA->{id});
  is($r->{status}, 201, 'super_admin, X-Tenant-ID: 201') or diag($r->{content});
  is($r->{json}{tenant_id}, $tA->{id}, 'scoped to that tenant');
  my $k = lookup($r->{json}{key});
  is($k && $k->{tenant_id}, $tA->{id}, 'the look-up says so');
  is($k && $k->{subject}, $super->{user}{id}, 'and the key is still the caller');
  $r = mine($T_SUPER, { name => 'for tenant B' }, 'x-project-id' => $tB->{id});
  is($r->{status}, 201, 'x-project-id means the same');
  is($r->{json}{tenant_id}, $tB->{id}, 'scoped to tenant B');
  $r = mine($T_SUPER, { name => 'platform level' });
  is($r->{status}, 201, 'no header');
  ok(!defined $r->{json}{tenant_id}, 'no tenant');
  $r = mine($T_SUPER, { name => 'nowhere' }, 'X-Tenant-ID' => 'tnt_doesnotexist00');
  is($r->{status}, 404, 'an unknown tenant: 404');
  is($r->{json} && $r->{json}{detail}, 'Tenant not found', 'Tenant not found');
  v422_ok(mine($T_SUPER, { name => 'x' }, 'X-Tenant-ID' => $tA->{id}, 'x-project-id' => $tB->{id}),
          ['header', 'x-project-id'], 'value_error', 'two different tenants');

  $r = mine($T_PA, { name => 'partner tenant' }, 'X-Tenant-ID' => $tP->{id});
  is($r->{status}, 201, "partner_admin, a tenant of their partner: 201") or diag($r->{content});
  is($r->{json}{tenant_id}, $tP->{id}, 'scoped to it');
  $r = mine($T_PA, { name => 'outside' }, 'X-Tenant-ID' => $tA->{id});
  is($r->{status}, 404, 'partner_admin, a tenant outside their partner: 404');
  is($r->{json} && $r->{json}{detail}, 'Tenant not found', 'Tenant not found');

  $r = mine($T_TA, { name => 'elsewhere' }, 'X-Tenant-ID' => $tB->{id});
  is($r->{status}, 404, 'tenant_admin, another tenant: 404');
  $r = mine($T_TA, { name => 'elsewhere' }, 'x-project-id' => $tB->{id});
  is($r->{status}, 404, 'tenant_admin, another tenant by x-project-id: 404');
  $r = mine($T_TA, { name => 'at home' }, 'X-Tenant-ID' => $tA->{id});
  is($r->{status}, 201, 'tenant_admin, their own tenant: 201');
  is($r->{json}{tenant_id}, $tA->{id}, 'scoped to it');
  is(count_keys_of($ta->{id}), $before{ $ta->{id} } + 1, 'the refused requests made no key');
  is(count_keys_of($pa->{id}), $before{ $pa->{id} } + 1, '... for the partner_admin either');

  my $list = req(GET => "$ME?per_page=100", token => $T_SUPER, headers => { 'X-Tenant-ID' => $tA->{id} });
  ok(@{ $list->{json}{items} } && !grep({ ($_->{tenant_id} // '') ne $tA->{id} } @{ $list->{json}{items} }),
     'GET with X-Tenant-ID lists the keys of that tenant');
  my $every = req(GET => "$ME?per_page=100", token => $T_SUPER);
  cmp_ok($every->{json}{pagination}{total}, '>', $list->{json}{pagination}{total}, 'without it, all of them');
};

subtest 'pagination of a person\'s keys' => sub {
  my $total = req(GET => $ME, token => $T_TA)->{json}{pagination}{total};
  cmp_ok($total, '>=', 5, 'several keys');
  my %seen;
  for my $page (1 .. 3) {
    my $r = req(GET => "$ME?per_page=2&page=$page", token => $T_TA);
    is($r->{json}{pagination}{per_page}, 2, "page $page: per_page");
    cmp_ok(scalar @{ $r->{json}{items} }, '<=', 2, "page $page: at most two");
    $seen{ $_->{id} }++ for @{ $r->{json}{items} };
  }
  ok(!grep({ $_ > 1 } values %seen), 'pages do not overlap');
  is(req(GET => "$ME?per_page=2", token => $T_TA)->{json}{pagination}{total_pages}, int(($total + 1) / 2), 'total_pages');
};

subtest 'a caller is required' => sub {
  for my $c ([GET => $ME], [POST => $ME], [GET => "$ME/$own->{id}"], [DELETE => "$ME/$own->{id}"],
             [GET => $ADMIN], [POST => $ADMIN], [GET => "$ADMIN/$own->{id}"], [DELETE => "$ADMIN/$own->{id}"]) {
    my $r = req($c->[0], $c->[1], ($c->[0] eq 'POST' ? (json => { name => 'x' }) : ()));
    is($r->{status}, 401, "$c->[0] $c->[1] without a token: 401");
  }
  is(req(GET => $ME, token => $own_key)->{status}, 401, 'an API key is not a bearer token for this API');
  is(req(PATCH => "$ME/$own->{id}", token => $T_TA, json => {})->{status}, 405, 'PATCH: 405');
  ok(lookup($own_key), 'the first key is still live');
};
