#!/usr/bin/perl
# Keyset cursor on lists: ?after=<id> walks the same order as the pages, however deep.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(req admin_token admin_create admin_path query_string ids_of unique_slug unique_email);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $token = admin_token();
my $tenant = admin_create($token, 'tenants', { name => 'Cursor', slug => unique_slug() });
my @made = map { admin_create($token, 'users', { tenant_id => $tenant->{id}, email => unique_email("cur$_") })->{id} } 1 .. 23;

my $list = sub { req(GET => admin_path('users') . query_string(tenant_id => $tenant->{id}, @_), token => $token) };

# the pages, in order
my @paged;
for my $page (1 .. 3) {
  my $r = $list->(per_page => 10, page => $page);
  is($r->{status}, 200, "page $page: 200");
  push @paged, ids_of($r);
}
is_deeply(\@paged, \@made, 'pages list the users in creation order');

# the cursor walk
my @walked;
my $after;
my $steps = 0;
while ($steps++ < 10) {
  my $r = $list->(per_page => 10, after => $after // '');
  is($r->{status}, 200, "cursor step $steps: 200");
  my @ids = ids_of($r);
  push @walked, @ids;
  is($r->{json}{pagination}{total}, 23, "cursor step $steps: total is the whole list");
  $after = $r->{json}{pagination}{next_after};
  if (@ids == 10) {
    is($after, $ids[-1], "cursor step $steps: next_after is the last id of a full page");
  }
  else {
    ok(!defined $after, "cursor step $steps: no next_after after a short page");
  }
  last unless defined $after;
}
is_deeply(\@walked, \@made, 'the cursor walk yields the same users in the same order, without repeats');

# without after, a list has no cursor in its pagination
my $plain = $list->(per_page => 10);
ok(!exists $plain->{json}{pagination}{next_after}, 'a page walk carries no cursor');

# a cursor that names no row of the list yields nothing; bad cursors are refused
my $r = $list->(after => 'usr_doesnotexist');
is($r->{status}, 200, 'unknown cursor: 200');
is_deeply([ids_of($r)], [], 'unknown cursor: no items');
$r = $list->(after => 'x' x 65);
is($r->{status}, 422, 'over-long cursor: 422');
is($r->{json}{detail}[0]{loc}[1], 'after', 'over-long cursor: loc names after');
$r = $list->(after => "usr_x' OR '1'='1");
is($r->{status}, 200, 'SQL metacharacters in the cursor: 200, no error');
is_deeply([ids_of($r)], [], 'SQL metacharacters in the cursor: no items');

done_testing();
