#!/usr/bin/perl
# Failed-login throttling per account and per client address.
# Defaults: 5 failures per account and 20 failures per client IP in 900 s.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 3;

my $LOGIN   = '/api/v1/admin/auth/login';
my $TOO     = { detail => 'Too many failed login attempts. Try again later.' };
my $INVALID = { detail => 'Invalid email or password' };
my $ACCOUNT_LIMIT = 5;
my $IP_LIMIT      = 20;
my $WINDOW        = 900;

sub login_as {
  my ($email, $password, $ip) = @_;
  return req(POST => $LOGIN, json => { email => $email, password => $password }, ip => $ip // unique_ip());
}

sub throttled_ok {
  my ($r, $name) = @_;
  is($r->{status}, 429, "$name: 429");
  is_deeply($r->{json}, $TOO, "$name: detail") or diag(substr($r->{content}, 0, 300));
  like($r->{headers}{'content-type'} // '', qr{^application/json\b}i, "$name: JSON");
  my $ra = $r->{headers}{'retry-after'};
  like($ra // '', qr/\A[1-9]\d*\z/, "$name: Retry-After is a positive integer");
  cmp_ok($ra // 0, '<=', $WINDOW, "$name: Retry-After within the window") if defined $ra && $ra =~ /\A\d+\z/;
  ok(!exists(($r->{json} // {})->{access_token}), "$name: no token");
}

subtest 'per-account limit' => sub {
  my $victim    = create_user(prefix => 'throttle-acct');
  my $bystander = create_user(prefix => 'throttle-other');
  for my $i (1 .. $ACCOUNT_LIMIT) {
    my $r = login_as($victim->{email}, "wrong-$i-" . unique_slug());
    is($r->{status}, 401, "failure $i from a fresh address: 401");
    is_deeply($r->{json}, $INVALID, "failure $i: detail");
  }
  throttled_ok(login_as($victim->{email}, $victim->{password}), 'next attempt with the RIGHT password');
  throttled_ok(login_as($victim->{email}, 'wrong-again'), 'next attempt with a wrong password');
  my $upper = login_as(uc $victim->{email}, $victim->{password});
  isnt($upper->{status}, 200, "upper-cased email does not bypass the limit (got $upper->{status})");
  ok(!exists(($upper->{json} // {})->{access_token}), 'upper-cased email: no token');

  my $ok = login_as($bystander->{email}, $bystander->{password});
  is($ok->{status}, 200, 'a different account is unaffected');
  my $wrong = login_as($bystander->{email}, 'wrong-bystander');
  is($wrong->{status}, 401, 'a different account still gets plain 401 for a wrong password');
};

subtest 'below the limit the right password still works' => sub {
  my $u = create_user(prefix => 'throttle-near');
  for my $i (1 .. $ACCOUNT_LIMIT - 1) {
    is(login_as($u->{email}, "wrong-$i")->{status}, 401, "failure $i: 401");
  }
  my $ok = login_as($u->{email}, $u->{password});
  is($ok->{status}, 200, 'below the limit the right password still works');
};

subtest 'per-address limit' => sub {
  my $ip = unique_ip();
  for my $i (1 .. $IP_LIMIT) {
    my $r = login_as(unique_email("ipthrottle$i"), 'wrong-password', $ip);
    is($r->{status}, 401, "failure $i from $ip: 401");
  }
  throttled_ok(login_as(unique_email('ipthrottle-next'), 'wrong-password', $ip), 'failure 21 from the same address');

  my $u = create_user(prefix => 'throttle-ip');
  throttled_ok(login_as($u->{email}, $u->{password}, $ip), 'right password from the blocked address');
  my $ok = login_as($u->{email}, $u->{password}, unique_ip());
  is($ok->{status}, 200, 'the same account from another address logs in');
  my $other = login_as(unique_email('ipthrottle-elsewhere'), 'wrong-password', unique_ip());
  is($other->{status}, 401, 'a failure from another address is a plain 401');
};
