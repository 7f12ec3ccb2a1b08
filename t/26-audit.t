#!/usr/bin/perl
# Audit trail of the admin auth endpoints and its tamper-evident hash chain.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 6;

my @COLS = qw(id action result actor_id actor_email resource_type resource_id ip_address user_agent);

my $u     = create_user(prefix => 'audit');
my $ip    = unique_ip();
my $ua    = 'scaikey-audit-test/' . unique_slug();
my $bad   = 'wrong-' . unique_slug() . '-pw';
my $ghost = unique_email('audit-ghost');

sub call {
  my ($method, $path, %o) = @_;
  return req($method, $path, ip => $ip, ua => $ua, %o);
}

sub audit_rows {
  my $sql = 'SELECT ' . join(', ', map { "coalesce(${_}::text, '')" } @COLS)
          . ' FROM audit_log WHERE user_agent = ' . sql_quote($ua) . ' ORDER BY id';
  my @rows;
  for my $line (psql($sql)) {
    my %r;
    @r{@COLS} = split /\|/, $line, -1;
    $r{ip_address} =~ s{/(?:32|128)\z}{};
    push @rows, \%r;
  }
  return @rows;
}

sub find_row {
  my ($rows, %want) = @_;
  for my $r (@$rows) {
    return $r unless grep { ($r->{$_} // '') ne $want{$_} } keys %want;
  }
  return undef;
}

sub occurrences {
  my ($needle) = @_;
  return psql('SELECT count(*) FROM audit_log a WHERE strpos(a::text, ' . sql_quote($needle) . ') > 0');
}

# The events.
my $fail  = call(POST => '/api/v1/admin/auth/login', json => { email => $u->{email}, password => $bad });
my $fail2 = call(POST => '/api/v1/admin/auth/login', json => { email => $ghost, password => $bad });
my $ok    = call(POST => '/api/v1/admin/auth/login', json => { email => $u->{email}, password => $u->{password} });
my $sid   = $ok->{json} ? (jwt_parts($ok->{json}{access_token}))[1]{sid} : undef;
my $ref   = call(POST => '/api/v1/admin/auth/refresh',
                 json => { refresh_token => $ok->{json} ? $ok->{json}{refresh_token} : '' });
my $out   = call(POST => '/api/v1/admin/auth/logout',
                 token => $ref->{json} ? $ref->{json}{access_token} : 'none');

subtest 'the audited requests behaved' => sub {
  is($fail->{status}, 401, 'failed login');
  is($fail2->{status}, 401, 'failed login of an unknown email');
  is($ok->{status}, 200, 'successful login');
  ok(defined $sid, 'session id known');
  is($ref->{status}, 200, 'refresh');
  is($out->{status}, 200, 'logout');
};

my @rows = audit_rows();

subtest 'audit rows of each event' => sub {
  my $s = find_row(\@rows, action => 'admin.login', result => 'success');
  ok($s, 'admin.login success recorded') or diag(explain \@rows);
  if ($s) {
    is($s->{actor_id}, $u->{id}, 'login success: actor_id is the user id');
    is(lc $s->{actor_email}, lc $u->{email}, 'login success: actor_email') if length $s->{actor_email};
    is($s->{resource_type}, 'session', 'login success: resource_type session');
    is($s->{resource_id}, $sid // '', 'login success: resource_id is the session id');
    is($s->{ip_address}, $ip, 'login success: ip_address is the forwarded client address');
    is($s->{user_agent}, $ua, 'login success: user_agent');
  }

  my $f = find_row(\@rows, action => 'admin.login', result => 'failure', actor_email => lc $u->{email});
  ok($f, 'admin.login failure recorded with the email tried') or diag(explain \@rows);
  is($f && $f->{ip_address}, $ip, 'login failure: ip_address') if $f;
  my $g = find_row(\@rows, action => 'admin.login', result => 'failure', actor_email => $ghost);
  ok($g, 'admin.login failure recorded for an unknown email');
  ok(!$g || $g->{actor_id} eq '', 'unknown email: no actor_id');

  my $r = find_row(\@rows, action => 'admin.refresh', result => 'success');
  ok($r, 'admin.refresh success recorded');
  is($r && $r->{actor_id}, $u->{id}, 'refresh: actor_id is the user id');
  is($r && $r->{ip_address}, $ip, 'refresh: ip_address');

  my $l = find_row(\@rows, action => 'admin.logout', result => 'success');
  ok($l, 'admin.logout success recorded');
  is($l && $l->{actor_id}, $u->{id}, 'logout: actor_id is the user id');

  if ($f && $s && $r && $l) {
    ok($f->{id} < $s->{id} && $s->{id} < $r->{id} && $r->{id} < $l->{id}, 'rows are in event order');
  }
  my @other = grep { $_->{result} !~ /\A(?:success|failure|denied|error)\z/ } @rows;
  is(scalar @other, 0, 'every result is one of success/failure/denied/error');
};

subtest 'no secrets in the audit log' => sub {
  my @secrets = (
    ['the wrong password tried', $bad],
    ['the access token from login', $ok->{json} && $ok->{json}{access_token}],
    ['the refresh token from login', $ok->{json} && $ok->{json}{refresh_token}],
    ['the access token from refresh', $ref->{json} && $ref->{json}{access_token}],
    ['the refresh token from refresh', $ref->{json} && $ref->{json}{refresh_token}],
  );
  push @secrets, ['the account password', $u->{password}] if length($u->{password} // '') >= 8;
  for my $s (@secrets) {
    ok(defined $s->[1] && length $s->[1], "$s->[0] is known") or next;
    is(occurrences($s->[1]), 0, "$s->[0] appears in no audit row");
  }
  my ($sig) = ($ok->{json} ? (split /\./, $ok->{json}{access_token})[2] : undef);
  is(occurrences($sig), 0, 'the access token signature appears in no audit row') if defined $sig;
};

my ($target) = grep { $_->{action} eq 'admin.login' && $_->{result} eq 'success' } @rows;

subtest 'the audit log cannot be changed without maintenance mode' => sub {
  plan skip_all => 'no audit row to work on' unless $target;
  my $id = $target->{id};
  my ($rc, undef, $err) = psql_try("BEGIN; UPDATE audit_log SET action = 'x' WHERE id = $id; ROLLBACK;");
  isnt($rc, 0, 'plain UPDATE fails');
  like($err, qr/ERROR/, 'plain UPDATE: database error reported');
  ($rc, undef, $err) = psql_try("BEGIN; DELETE FROM audit_log WHERE id = $id; ROLLBACK;");
  isnt($rc, 0, 'plain DELETE fails');
  like($err, qr/ERROR/, 'plain DELETE: database error reported');
  ($rc, undef, $err) = psql_try("BEGIN; SET LOCAL scaikey.audit_maintenance = 'off'; "
                                . "UPDATE audit_log SET action = 'x' WHERE id = $id; ROLLBACK;");
  isnt($rc, 0, 'UPDATE with maintenance mode explicitly off fails');
  is(psql("SELECT action FROM audit_log WHERE id = $id"), 'admin.login', 'row unchanged');
};

subtest 'tampering is detected by sk_audit_verify()' => sub {
  plan skip_all => 'no audit row to work on' unless $target;
  my $id = $target->{id};
  my ($okv, $checked) = split /\|/, psql('SELECT ok, checked FROM sk_audit_verify()');
  is($okv, 't', 'the chain verifies before tampering') or return;
  cmp_ok($checked, '>=', scalar @rows, 'rows were checked');

  my $guard = SK::Restore->new(sub {
    psql("SET scaikey.audit_maintenance = 'on'; UPDATE audit_log SET action = 'admin.login' WHERE id = $id");
  });
  psql("SET scaikey.audit_maintenance = 'on'; UPDATE audit_log SET action = 'x' WHERE id = $id");
  is(psql("SELECT action FROM audit_log WHERE id = $id"), 'x', 'row tampered in maintenance mode');
  my ($ok2, undef, $broken, $reason) = split /\|/, psql('SELECT ok, checked, first_broken_id, reason FROM sk_audit_verify()'), -1;
  is($ok2, 'f', 'verification fails after tampering');
  is($broken, $id, 'first_broken_id is the tampered row');
  ok(defined $reason && length $reason, 'a reason is given');

  $guard->run;
  is(psql("SELECT action FROM audit_log WHERE id = $id"), 'admin.login', 'row restored');
  is(psql('SELECT ok FROM sk_audit_verify()'), 't', 'the chain verifies again after restoring');
};

subtest 'tampering with details is detected too' => sub {
  plan skip_all => 'no audit row to work on' unless $target;
  my $id = $target->{id};
  my $before = psql("SELECT coalesce(details::text, 'null') FROM audit_log WHERE id = $id");
  my $restore_sql = "SET scaikey.audit_maintenance = 'on'; UPDATE audit_log SET details = "
    . ($before eq 'null' ? 'NULL' : sql_quote($before) . '::jsonb') . " WHERE id = $id";
  my $guard = SK::Restore->new(sub { psql($restore_sql) });
  psql("SET scaikey.audit_maintenance = 'on'; UPDATE audit_log SET details = "
       . "coalesce(details, '{}'::jsonb) || '{\"tampered\":true}'::jsonb WHERE id = $id");
  my ($ok2, undef, $broken) = split /\|/, psql('SELECT ok, checked, first_broken_id FROM sk_audit_verify()'), -1;
  is($ok2, 'f', 'changed details are detected');
  is($broken, $id, 'first_broken_id is the tampered row');
  $guard->run;
  is(psql("SELECT coalesce(details::text, 'null') FROM audit_log WHERE id = $id"), $before, 'details restored');
  is(psql('SELECT ok FROM sk_audit_verify()'), 't', 'the chain verifies again after restoring');
};

package SK::Restore;

sub new    { my ($c, $f) = @_; bless { f => $f, pid => $$ }, $c }
sub run    { my $s = shift; my $f = delete $s->{f}; $f->() if $f && $s->{pid} == $$ }
sub disarm { delete $_[0]{f} }
sub DESTROY { local ($@, $?); eval { $_[0]->run } }
