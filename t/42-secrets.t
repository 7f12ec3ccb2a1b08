#!/usr/bin/perl
# Client secret rotation of applications and MCP agents.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Digest::SHA qw(sha256_hex);
use SK qw(:all);
use SKFixture qw(api created new_user token_of);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 8;

my $ADMIN = '/api/v1/admin';
my $PW    = 'Secret-Fixture-Pass-42';

my $super = SKFixture::setup(prefix => 'sec', role => 'user', password => $PW);
my $ST = $super->{access_token};
sub app {
  my ($type, $scope, %o) = @_;
  created('/applications', { name => "$type app", application_type => $type, scope => $scope, %o });
}
sub detail_is {
  my ($r, $status, $detail, $name) = @_;
  is($r->{status}, $status, "$name: $status") or diag($r->{content});
  is($r->{json} && $r->{json}{detail}, $detail, "$name: detail") if defined $detail;
}
sub audit_count {
  my (%w) = @_;
  my $where = join ' AND ', map { "$_ = " . sql_quote($w{$_}) } sort keys %w;
  return psql("SELECT count(*) FROM audit_log WHERE $where");
}
sub occurrences {
  my ($needle) = @_;
  return psql('SELECT count(*) FROM audit_log a WHERE strpos(a::text, ' . sql_quote($needle) . ') > 0');
}
sub stored_hash {
  my ($table, $id) = @_;
  return psql("SELECT coalesce(client_secret_hash, 'none') FROM $table WHERE id = " . sql_quote($id));
}

my $partner = created('/partners', { name => 'Secrets partner', slug => unique_slug('secp') });
my $ta      = created('/tenants', { name => 'A', slug => unique_slug('seca'), partner_id => $partner->{id} });
my $tb      = created('/tenants', { name => 'B', slug => unique_slug('secb') });
my $adm     = new_user(tenant_id => $ta->{id}, role => 'tenant_admin');
my $TA      = token_of($adm);
my $web     = app('WEB', 'TENANT', tenant_id => $ta->{id});
my $service = app('SERVICE', 'TENANT', tenant_id => $ta->{id});
my $spa     = app('SPA', 'TENANT', tenant_id => $ta->{id});
my $native  = app('NATIVE', 'TENANT', tenant_id => $ta->{id});
my $foreign = app('WEB', 'TENANT', tenant_id => $tb->{id});
my $global  = app('SERVICE', 'GLOBAL');
my $agent   = created('/agents', { tenant_id => $ta->{id}, name => 'Agent A' });
my $agent_b = created('/agents', { tenant_id => $tb->{id}, name => 'Agent B' });

subtest 'rotate an application secret' => sub {
  my $before = stored_hash('applications', $web->{id});
  is($before, sha256_hex($web->{client_secret}), 'the creation secret is stored as its digest');
  my $r = api(POST => "/applications/$web->{id}/rotate-secret", $TA);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is_deeply([sort keys %{ $r->{json} }], [qw(client_id client_secret)], 'client_id and client_secret only');
  is($r->{json}{client_id}, $web->{client_id}, 'client_id of the application');
  my $secret = $r->{json}{client_secret};
  like($secret, qr/\Asks_[A-Za-z0-9_-]{43}\z/, 'secret: sks_ and 32 random bytes');
  like($r->{headers}{'cache-control'} // '', qr/no-store/, 'Cache-Control: no-store');
  is(stored_hash('applications', $web->{id}), sha256_hex($secret), 'only the digest of the new secret is stored');
  isnt(stored_hash('applications', $web->{id}), $before, 'the old digest is gone');
  is(psql('SELECT secret_rotated_at IS NOT NULL FROM applications WHERE id = ' . sql_quote($web->{id})), 't',
     'secret_rotated_at set');
  ok(api(GET => "/applications/$web->{id}", $TA)->{json}{secret_rotated_at}, 'secret_rotated_at shown');
  is(audit_count(action => 'application.secret_rotate', resource_type => 'application', resource_id => $web->{id},
                 tenant_id => $ta->{id}, actor_id => $adm->{id}), 1, 'audit row application.secret_rotate');
  is(occurrences($secret), 0, 'the secret is in no audit row');
  is(psql("SELECT count(*) FROM applications WHERE client_secret_hash = " . sql_quote($secret)), 0,
     'the clear secret is not stored');

  my $again = api(POST => "/applications/$web->{id}/rotate-secret/", $TA);
  is($again->{status}, 200, 'again (trailing slash): 200');
  isnt($again->{json}{client_secret}, $secret, 'a new secret each time');
  my $s = api(POST => "/applications/$service->{id}/rotate-secret", $ST);
  is($s->{status}, 200, 'SERVICE application: 200');
};

subtest 'public clients have no secret' => sub {
  for my $a ($spa, $native) {
    detail_is(api(POST => "/applications/$a->{id}/rotate-secret", $TA), 409, 'Public clients have no secret',
              "$a->{application_type}");
    is(stored_hash('applications', $a->{id}), 'none', "$a->{application_type}: still no secret");
  }
  is(audit_count(action => 'application.secret_rotate', resource_id => $spa->{id}), 0, 'no audit row');
};

subtest 'applications out of reach or out of rights' => sub {
  detail_is(api(POST => "/applications/$foreign->{id}/rotate-secret", $TA), 404, 'Application not found',
            'another tenant\'s application');
  my $hash = stored_hash('applications', $foreign->{id});
  is($hash, sha256_hex($foreign->{client_secret}), 'its secret is unchanged');
  detail_is(api(POST => '/applications/app_doesnotexist00/rotate-secret', $ST), 404, 'Application not found',
            'unknown application');
  detail_is(api(POST => "/applications/$global->{id}/rotate-secret", $TA), 403, 'Access denied',
            'a GLOBAL application is visible to a tenant_admin but not theirs to change');
  is(stored_hash('applications', $global->{id}), sha256_hex($global->{client_secret}), 'GLOBAL secret unchanged');
  is(api(POST => "/applications/$global->{id}/rotate-secret", $ST)->{status}, 200, 'the super_admin may');
  is(req(POST => "$ADMIN/applications/$web->{id}/rotate-secret")->{status}, 401, 'no token: 401');
  is(api(GET => "/applications/$web->{id}/rotate-secret", $TA)->{status}, 405, 'GET: 405');
  is(api(DELETE => "/applications/$foreign->{id}", $ST)->{status}, 204, 'an application deleted');
  is(api(POST => "/applications/$foreign->{id}/rotate-secret", $ST)->{status}, 404, 'a deleted application: 404');
};

subtest 'a partner_admin rotates within their partner' => sub {
  my $pa = new_user(partner_id => $partner->{id}, role => 'partner_admin');
  my $PA = token_of($pa);
  my $r = api(POST => "/applications/$web->{id}/rotate-secret", $PA);
  is($r->{status}, 200, 'application of a tenant in the partner: 200') or diag($r->{content});
  my $papp = app('WEB', 'PARTNER', partner_id => $partner->{id});
  is(api(POST => "/applications/$papp->{id}/rotate-secret", $PA)->{status}, 200, 'PARTNER application: 200');
  is(audit_count(action => 'application.secret_rotate', resource_id => $papp->{id}, partner_id => $partner->{id}), 1,
     'audit row carries the partner');
  is(api(POST => "/agents/$agent_b->{id}/rotate-secret", $PA)->{status}, 404, 'agent outside the partner: 404');
};

subtest 'rotate an agent secret' => sub {
  is(stored_hash('mcp_agents', $agent->{id}), sha256_hex($agent->{client_secret}), 'creation secret digest stored');
  my $r = api(POST => "/agents/$agent->{id}/rotate-secret", $TA);
  is($r->{status}, 200, 'status 200') or return diag($r->{content});
  is($r->{json}{client_id}, $agent->{client_id}, 'client_id of the agent');
  like($r->{json}{client_secret}, qr/\Asks_[A-Za-z0-9_-]{43}\z/, 'secret format');
  like($r->{headers}{'cache-control'} // '', qr/no-store/, 'Cache-Control: no-store');
  is(stored_hash('mcp_agents', $agent->{id}), sha256_hex($r->{json}{client_secret}), 'digest stored');
  is(audit_count(action => 'agent.secret_rotate', resource_type => 'agent', resource_id => $agent->{id},
                 tenant_id => $ta->{id}), 1, 'audit row agent.secret_rotate');
  is(occurrences($r->{json}{client_secret}), 0, 'the secret is in no audit row');
};

subtest 'agents out of reach' => sub {
  detail_is(api(POST => "/agents/$agent_b->{id}/rotate-secret", $TA), 404, 'Agent not found', 'another tenant');
  is(stored_hash('mcp_agents', $agent_b->{id}), sha256_hex($agent_b->{client_secret}), 'its secret is unchanged');
  detail_is(api(POST => '/agents/agt_doesnotexist00/rotate-secret', $TA), 404, 'Agent not found', 'unknown agent');
  detail_is(api(POST => '/agents/' . ('x' x 300) . '/rotate-secret', $TA), 404, 'Agent not found', 'overlong id');
  is(api(POST => "/agents/$agent_b->{id}/rotate-secret", $ST)->{status}, 200, 'the super_admin may');
};

subtest 'a request body is ignored' => sub {
  my $r = api(POST => "/agents/$agent->{id}/rotate-secret", $TA, { client_secret => 'chosen-by-caller' });
  is($r->{status}, 200, 'status 200') or diag($r->{content});
  isnt($r->{json}{client_secret}, 'chosen-by-caller', 'the secret is never chosen by the caller');
};

subtest 'secrets are not listed anywhere' => sub {
  my $l = api(GET => "/applications/$web->{id}", $TA);
  ok(!grep({ /secret_hash|client_secret$/ } keys %{ $l->{json} }), 'the application shows no secret or digest');
  my $g = api(GET => "/agents/$agent->{id}", $TA);
  ok(!grep({ /secret_hash|client_secret$/ } keys %{ $g->{json} }), 'the agent shows no secret or digest');
};
