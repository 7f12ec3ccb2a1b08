#!/usr/bin/perl
# Lists of the admin API: page / per_page, the pagination block, a stable order (created_at, id),
# search (case-insensitive prefix of email and names) and filters.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $SA  = admin_token();
my $P   = admin_create($SA, 'partners', { name => 'Paging partner', slug => unique_slug('pg-p') });
my $T   = admin_create($SA, 'tenants', { name => 'Paging tenant', slug => unique_slug('pg-t'), partner_id => $P->{id} });
my $TAG = unique_slug('pg');          # every email of this file starts with it
my $N   = 45;

# The 45 users. Names are chosen for the searches below; some emails are stored upper-case.
my %NAME = (1 => ['50% Off', 'Member'], 2 => ['50x Off', 'Member'], 3 => ['a_c', 'Member'], 4 => ['abc', 'Member'],
            (map { $_ => ['Quentin', 'Member'] } 10 .. 14), (map { $_ => ['Pat', 'Quorra'] } 20 .. 22));
my (@U, %by_i);
for my $i (1 .. $N) {
  my ($first, $last) = @{ $NAME{$i} // ['Pat', 'Member'] };
  my $local = sprintf('%s-%02d', $TAG, $i);
  $local = uc $local if $i % 2 == 0;
  my $u = admin_create($SA, 'users', {
    tenant_id    => $T->{id},
    email        => "$local\@example.test",
    first_name   => $first,
    last_name    => $last,
    display_name => "$first $last",
    role         => $i % 9 == 0 ? 'tenant_admin' : 'user',
    status       => $i % 4 == 0 ? 'SUSPENDED' : $i == 7 ? 'LOCKED' : 'ACTIVE',
  });
  $u->{i} = $i;
  push @U, $u;
  $by_i{ $u->{id} } = $i;
}

# Reorder creation times: users 20..30 share one instant (their order is then by id), and user 45
# is the oldest of all.
psql(sprintf("UPDATE users SET created_at = (SELECT min(created_at) FROM users WHERE tenant_id = %s) + interval '1 second' "
             . 'WHERE id IN (%s)', sql_quote($T->{id}), join(', ', map { sql_quote($U[$_ - 1]{id}) } 20 .. 30)));
psql(sprintf("UPDATE users SET created_at = created_at - interval '1 hour' WHERE id = %s", sql_quote($U[44]{id})));

# the order the API must follow, computed by the database independently
my @ORDER = psql(sprintf('SELECT id FROM users WHERE tenant_id = %s AND deleted_at IS NULL ORDER BY created_at, id',
                         sql_quote($T->{id})));

sub list { my (%q) = @_; admin_req($SA, 'GET', admin_path('users') . query_string(tenant_id => $T->{id}, %q)) }

sub page_ok {
  my ($r, $want, $name) = @_;
  is($r->{status}, 200, "$name: 200") or return diag($r->{content});
  is_deeply([sort keys %{ $r->{json} }], [qw(items pagination)], "$name: items and pagination, nothing else");
  is_deeply($r->{json}{pagination}, $want, "$name: pagination " . join(', ', map { "$_ $want->{$_}" } sort keys %$want));
  my $items = $r->{json}{items};
  is(ref $items, 'ARRAY', "$name: items is a list");
  return ids_of($r);
}

sub is_set {
  my ($r, $want_i, $name) = @_;
  my @got = sort { $a <=> $b } map { $by_i{$_} // -1 } ids_of($r);
  is_deeply(\@got, [sort { $a <=> $b } @$want_i], "$name: users @$want_i");
  is($r->{json} && $r->{json}{pagination}{total}, scalar @$want_i, "$name: total " . scalar @$want_i);
}

subtest 'the tenant holds 45 users' => sub {
  is(scalar @U, $N, '45 users created');
  is(scalar @ORDER, $N, 'the database lists 45 users of the tenant');
  is($ORDER[0], $U[44]{id}, 'the user made oldest comes first in the database order');
};

subtest 'default page size is 20' => sub {
  my @ids = page_ok(list(), { page => 1, per_page => 20, total => 45, total_pages => 3 }, 'no page parameters');
  is_deeply(\@ids, [@ORDER[0 .. 19]], 'the first 20 users in order');
};

subtest 'pages of 20: 20, 20, 5' => sub {
  my @all;
  for my $c ([1, 20], [2, 20], [3, 5]) {
    my ($page, $count) = @$c;
    my @ids = page_ok(list(page => $page, per_page => 20), { page => $page, per_page => 20, total => 45, total_pages => 3 },
                      "page $page");
    is(scalar @ids, $count, "page $page has $count users");
    push @all, @ids;
  }
  is_deeply(\@all, \@ORDER, 'the pages together are every user once, in (created_at, id) order');
  my %seen;
  is(scalar(grep { $seen{$_}++ } @all), 0, 'no user on two pages');
  is_deeply([sort @all], [sort map { $_->{id} } @U], 'exactly the users created');
};

subtest 'the order is created_at, then id' => sub {
  my @ids = ids_of(list(per_page => 100));
  is($ids[0], $U[44]{id}, 'the oldest user is first although made last');
  my @tied = grep { my $i = $by_i{$_}; $i >= 20 && $i <= 30 } @ids;
  is_deeply(\@tied, [sort @tied], 'users created at the same instant come by id');
  my @pos = map { my $id = $_; (grep { $ids[$_] eq $id } 0 .. $#ids)[0] } @tied;
  is($pos[-1] - $pos[0], $#tied, 'and stand together');
  my $r = list(per_page => 100);
  my @ts = map { $_->{created_at} } @{ $r->{json}{items} };
  is_deeply(\@ts, [sort @ts], 'created_at never decreases along the list');
  # the same query twice gives the same order
  is_deeply([ids_of(list(per_page => 100))], \@ids, 'a second request lists the same order');
};

subtest 'other page sizes' => sub {
  my @all;
  for my $page (1 .. 7) {
    my @ids = page_ok(list(page => $page, per_page => 7), { page => $page, per_page => 7, total => 45, total_pages => 7 },
                      "per_page 7, page $page");
    is(scalar @ids, $page < 7 ? 7 : 3, "per_page 7, page $page: " . ($page < 7 ? 7 : 3) . ' users');
    push @all, @ids;
  }
  is_deeply(\@all, \@ORDER, 'per_page 7: the pages together are the whole ordered list');

  my @one = page_ok(list(per_page => 100), { page => 1, per_page => 100, total => 45, total_pages => 1 }, 'per_page 100');
  is_deeply(\@one, \@ORDER, 'per_page 100: everything on one page');

  my @last = page_ok(list(per_page => 1, page => 45), { page => 45, per_page => 1, total => 45, total_pages => 45 },
                     'per_page 1, page 45');
  is_deeply(\@last, [$ORDER[-1]], 'per_page 1, page 45: the last user');
  my @mid = page_ok(list(per_page => 1, page => 23), { page => 23, per_page => 1, total => 45, total_pages => 45 },
                    'per_page 1, page 23');
  is_deeply(\@mid, [$ORDER[22]], 'per_page 1, page 23: the 23rd user');

  my @ten = page_ok(list(per_page => 15, page => 3), { page => 3, per_page => 15, total => 45, total_pages => 3 },
                    'per_page 15, page 3');
  is_deeply(\@ten, [@ORDER[30 .. 44]], 'per_page 15 divides 45: the third page is full');
};

subtest 'beyond the last page' => sub {
  for my $c ([4, 20], [1000, 20], [46, 1], [2, 100]) {
    my ($page, $pp) = @$c;
    my @ids = page_ok(list(page => $page, per_page => $pp),
                      { page => $page, per_page => $pp, total => 45, total_pages => int((45 + $pp - 1) / $pp) },
                      "page $page of per_page $pp");
    is_deeply(\@ids, [], "page $page of per_page $pp: no items");
  }
  my @none = page_ok(list(search => 'no-such-user-' . $TAG), { page => 1, per_page => 20, total => 0, total_pages => 0 },
                     'a search matching nothing');
  is_deeply(\@none, [], 'a search matching nothing: no items');
};

subtest 'search by email prefix, case-insensitive' => sub {
  my @first9 = 1 .. 9;
  is_set(list(search => "$TAG-0"), \@first9, "search '$TAG-0'");
  is_set(list(search => uc "$TAG-0"), \@first9, 'the same search upper-case');
  is_set(list(search => ucfirst "$TAG-0"), \@first9, 'the same search in mixed case');
  is_set(list(search => "$TAG-1"), [10 .. 19], "search '$TAG-1'");
  is_set(list(search => "$TAG-45"), [45], 'a whole local part');
  is_set(list(search => "$TAG-45\@example.test"), [45], 'a whole email');
  is_set(list(search => uc "$TAG-44\@EXAMPLE.TEST"), [44], 'a whole email, upper-case, stored upper-case');
  is_set(list(search => $TAG, per_page => 100), [1 .. 45], 'the common prefix');
  my $r = list(search => "$TAG-0", per_page => 4, page => 3);
  is_deeply($r->{json}{pagination}, { page => 3, per_page => 4, total => 9, total_pages => 3 },
            'a search is paginated: 9 matches in pages of 4');
  is_deeply([ids_of($r)], [(grep { $by_i{$_} <= 9 } @ORDER)[8]], 'the third page holds the ninth match');
};

subtest 'search by name prefix' => sub {
  is_set(list(search => 'quen'), [10 .. 14], "first name 'quen'");
  is_set(list(search => 'QUO'), [20 .. 22], "last name 'QUO'");
  is_set(list(search => 'qu'), [10 .. 14, 20 .. 22], "'qu' matches first and last names");
  is_set(list(search => 'Pat Quo'), [20 .. 22], "display name 'Pat Quo'");
  is_set(list(search => 'Quentin Member'), [10 .. 14], "display name 'Quentin Member'");
  is_set(list(search => 'abc'), [4], "'abc'");
};

subtest 'LIKE metacharacters match themselves' => sub {
  is_set(list(search => '50%'), [1], "'50%' matches '50% Off' and not '50x Off'");
  is_set(list(search => '50'), [1, 2], "'50' matches both");
  is_set(list(search => 'a_'), [3], "'a_' matches 'a_c' and not 'abc'");
  is_set(list(search => '%'), [], "'%' alone matches nothing");
  is_set(list(search => '_'), [], "'_' alone matches nothing");
  is_set(list(search => '%Off'), [], "'%Off' matches nothing");
  is_set(list(search => '\\'), [], 'a backslash matches nothing');
  is_set(list(search => '5\\%'), [], "'5\\%' matches nothing");
  is_set(list(search => "$TAG-_1"), [], 'an underscore inside an email prefix is literal');
};

subtest 'filters' => sub {
  my @susp = grep { $_ % 4 == 0 } 1 .. 45;
  my @admins = grep { $_ % 9 == 0 } 1 .. 45;
  my @active = grep { $_ % 4 != 0 && $_ != 7 } 1 .. 45;
  is_set(list(status => 'SUSPENDED'), \@susp, 'status SUSPENDED');
  is_set(list(status => 'LOCKED'), [7], 'status LOCKED');
  is_set(list(status => 'ACTIVE', per_page => 100), \@active, 'status ACTIVE');
  is_set(list(status => 'PENDING'), [], 'status PENDING');
  is_set(list(role => 'tenant_admin'), \@admins, 'role tenant_admin');
  is_set(list(role => 'user', per_page => 100), [grep { $_ % 9 != 0 } 1 .. 45], 'role user');
  is_set(list(role => 'partner_admin'), [], 'role partner_admin');
  is_set(list(status => 'SUSPENDED', role => 'tenant_admin'), [grep { $_ % 36 == 0 } 1 .. 45], 'status and role together');
  is_set(list(status => 'SUSPENDED', search => "$TAG-1"), [12, 16], 'a filter and a search together');
  my $r = list(status => 'ACTIVE', per_page => 10, page => 4);
  is_deeply($r->{json}{pagination}, { page => 4, per_page => 10, total => scalar @active, total_pages => 4 },
            'a filtered list is paginated over the matches');
  my @active_order = grep { my $i = $by_i{$_}; $i % 4 != 0 && $i != 7 } @ORDER;
  is_deeply([ids_of($r)], [@active_order[30 .. $#active_order]], 'the last page of the filtered list');
  my $p = admin_req($SA, 'GET', admin_path('users') . query_string(partner_id => $P->{id}, per_page => 100));
  is_set($p, [1 .. 45], 'partner_id: the users of every tenant of the partner');
  my $other = admin_create($SA, 'tenants', { name => 'Paging other', slug => unique_slug('pg-o'), partner_id => $P->{id} });
  is_set(admin_req($SA, 'GET', admin_path('users') . query_string(tenant_id => $other->{id})), [],
         'another tenant of the same partner: none of them');
};

subtest 'every list has the same pagination block' => sub {
  for my $res (qw(partners tenants users groups applications identity-providers agents)) {
    my $r = admin_req($SA, 'GET', admin_path($res) . query_string(per_page => 2));
    is($r->{status}, 200, "$res: 200") or next;
    my $pg = $r->{json}{pagination};
    is_deeply([sort keys %$pg], [qw(page per_page total total_pages)], "$res: page, per_page, total, total_pages");
    is($pg->{page}, 1, "$res: page 1 by default");
    is($pg->{per_page}, 2, "$res: per_page as asked");
    cmp_ok(scalar @{ $r->{json}{items} }, '<=', 2, "$res: at most per_page items");
    is($pg->{total_pages}, int(($pg->{total} + 1) / 2), "$res: total_pages = ceil(total / per_page)");
    my $d = admin_req($SA, 'GET', admin_path($res));
    is($d->{json} && $d->{json}{pagination}{per_page}, 20, "$res: per_page 20 by default");
    my $trailing = admin_req($SA, 'GET', admin_path($res) . '/' . query_string(per_page => 2));
    is_deeply($trailing->{json}, $r->{json}, "$res: the path with a trailing slash lists the same");
  }
};

done_testing();
