#!/usr/bin/perl
# Mail through sendmail or SMTP leaves after the response: the sending endpoints answer before
# the mail server has taken the message, so their answer time does not tell whether the address
# has an account. Checked with a sendmail stand-in that takes 4 seconds (t/lib/slow-sendmail),
# and with one that fails (the failure is audited after the answer).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $SLOW = 4;
my $SA   = admin_token();
my $T    = create_tenant();
my $user = create_user(role => 'user', tenant_id => $T->{id}, email => unique_email('outbox'));
my $dir  = tempdir('sk-outbox-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0777, $dir;

sub send_code {
  my ($base, $email) = @_;
  my $t0 = time();
  my $r = req(POST => "/api/v1/auth/tenants/$T->{slug}/email-code/send", base => $base,
              json => { email => $email }, ip => unique_ip());
  return ($r, time() - $t0);
}

sub mails { opendir(my $d, $dir) or return (); my @f = sort grep { /\.eml\z/ } readdir $d; closedir $d; @f }

my ($X, $server) = extra_apache(qq{ScaiKeyMail sendmail "$FindBin::Bin/lib/slow-sendmail $dir $SLOW"});
ok($X, 'a server whose sendmail takes 4 seconds') or BAIL_OUT('no server');

subtest 'the answer does not wait for the mail server' => sub {
  my ($r, $secs) = send_code($X, $user->{email});
  is($r->{status}, 202, 'known address: 202') or diag($r->{content});
  cmp_ok($secs, '<', $SLOW - 1, sprintf('answered in %.2f s, before the %d s delivery', $secs, $SLOW));
  is(scalar(mails()), 0, 'the message has not been delivered yet');
  my ($r2, $secs2) = send_code($X, unique_email('nobody'));
  is($r2->{status}, 202, 'unknown address: 202');
  cmp_ok($secs2, '<', $SLOW - 1, sprintf('answered in %.2f s', $secs2));

  my $deadline = time() + $SLOW + 10;
  sleep 0.2 while !mails() && time() < $deadline;
  my @m = mails();
  is(scalar @m, 1, 'then the message is delivered, once (none for the unknown address)');
  open(my $fh, '<:raw', "$dir/$m[0]") or die $!;
  my $raw = do { local $/; <$fh> };
  like($raw, qr/^To: \Q$user->{email}\E\r?$/mi, 'to the user');
  my ($code) = $raw =~ /^\s+(\d{6})\s*$/m;
  ok($code, 'with a six-digit code');
  my $v = req(POST => "/api/v1/auth/tenants/$T->{slug}/email-code/verify", base => $X,
              json => { email => $user->{email}, code => "$code" }, ip => unique_ip());
  is($v->{status}, 200, 'the code signs the user in') or diag($v->{content});
  ok($v->{json}{access_token}, 'tokens');
};
$server->stop;

subtest 'a delivery that fails is audited after the answer' => sub {
  my ($F, $g) = extra_apache(qq{ScaiKeyMail sendmail "/bin/false"});
  ok($F, 'a server whose sendmail fails') or return;
  my $before = psql("SELECT count(*) FROM audit_log WHERE action = 'mail.send' AND result = 'failure' AND resource_id = "
                    . sql_quote($user->{id}));
  my ($r) = send_code($F, $user->{email});
  is($r->{status}, 202, 'the endpoint answers as usual');
  my $n = $before;
  my $deadline = time() + 15;
  while (time() < $deadline) {
    $n = psql("SELECT count(*) FROM audit_log WHERE action = 'mail.send' AND result = 'failure' AND resource_id = "
              . sql_quote($user->{id}));
    last if $n > $before;
    sleep 0.2;
  }
  is($n, $before + 1, 'mail.send failure audited');
  my $details = psql("SELECT details::text FROM audit_log WHERE action = 'mail.send' AND resource_id = "
                     . sql_quote($user->{id}) . " ORDER BY id DESC LIMIT 1");
  like($details, qr/sign-in code/, 'naming the kind of message');
  unlike($details, qr/\b\d{6}\b/, 'never the code');
  $g->stop;
};

done_testing();
