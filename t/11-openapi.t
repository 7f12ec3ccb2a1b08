#!/usr/bin/perl
# GET /openapi.json: the served API description is complete (every route is described, no
# operation is an "x-undocumented" stub), matches docs/openapi.json, and is not served in
# production mode.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 8;

my $TOP = $ENV{SK_TOP} // "$FindBin::Bin/..";
my $json = JSON::PP->new->utf8->canonical;
my @METHODS = qw(get put post delete options head patch trace);

my $r = req(GET => '/openapi.json');
my $doc;

subtest 'GET /openapi.json answers 200 with JSON' => sub {
  is($r->{status}, 200, 'status 200') or diag($r->{content});
  like($r->{headers}{'content-type'} // '', qr{^application/json\b}i, 'Content-Type application/json');
  $doc = eval { $json->decode($r->{content}) };
  is(ref $doc, 'HASH', 'the body parses as a JSON object') or diag($@);
  like($doc->{openapi} // '', qr/^3\./, 'openapi is a 3.x version');
  is(ref $doc->{paths}, 'HASH', 'paths is an object');
};

$doc //= {};
my $paths = ref $doc->{paths} eq 'HASH' ? $doc->{paths} : {};

# [METHOD, path, operation] for every operation of the document
my @ops;
for my $p (sort keys %$paths) {
  for my $m (@METHODS) {
    push @ops, [uc $m, $p, $paths->{$p}{$m}] if ref $paths->{$p}{$m} eq 'HASH';
  }
}

subtest 'every operation has responses' => sub {
  ok(scalar @ops, 'the document has operations');
  my @bad = map { "$_->[0] $_->[1]" }
    grep { ref $_->[2]{responses} ne 'HASH' || !%{ $_->[2]{responses} } } @ops;
  ok(!@bad, 'no operation without responses') or diag(join "\n", 'without responses:', @bad);
};

subtest 'no operation is an undocumented stub' => sub {
  my @stubs = map { "$_->[0] $_->[1]" } grep { $_->[2]{'x-undocumented'} } @ops;
  ok(!@stubs, 'no operation carries x-undocumented')
    or diag(join "\n", scalar(@stubs) . ' undocumented operation(s); describe them in docs/openapi.json:', @stubs);
};

subtest 'the served document equals docs/openapi.json' => sub {
  my $file = "$TOP/docs/openapi.json";
  open(my $fh, '<:raw', $file) or do { fail("open $file: $!"); return };
  my $text = do { local $/; <$fh> };
  close $fh;
  my $base = eval { $json->decode($text) };
  is(ref $base, 'HASH', 'docs/openapi.json parses') or do { diag($@); return };
  is_deeply($doc, $base, 'served document and docs/openapi.json are the same')
    or diag('docs/openapi.json is out of date: run ./dev openapi');
};

# Routes from the route tables: { "METHOD", "/path" ... } entries (string macros such as
# ADMIN "/users" are expanded from the file's #defines) and CRUD("/path", "id", res) lines,
# which stand for list, create, get, patch and delete.
sub routes_from_sources {
  my @routes;
  my @files = sort glob("$TOP/mod_scaikey/http/routes*.c");
  for my $f (@files) {
    open(my $fh, '<', $f) or die "open $f: $!";
    my $src = do { local $/; <$fh> };
    close $fh;
    $src =~ s{/\*.*?\*/}{}gs;
    $src =~ s{//[^\n]*}{}g;
    # string macros: #define NAME "..." or a concatenation of strings and earlier macros
    my %def;
    my $expand;
    $expand = sub {
      my ($e) = @_;
      my $out = '';
      while ($e =~ /\G\s*(?:"([^"]*)"|(\w+))/gc) {
        if (defined $1) { $out .= $1 }
        elsif (exists $def{$2}) { $out .= $def{$2} }
        else { return undef }
      }
      return ($e =~ /\G\s*\z/gc) ? $out : undef;
    };
    while ($src =~ /^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+((?:"[^"\n]*"|\w+)(?:[ \t]+(?:"[^"\n]*"|\w+))*)[ \t]*$/mg) {
      my ($name, $val) = ($1, $2);
      next unless $val =~ /"/;
      my $v = $expand->($val);
      $def{$name} = $v if defined $v;
    }
    my $str = qr/(?:\w+\s+)*"[^"]*"(?:\s+(?:"[^"]*"|\w+))*|\w+/;
    for my $line (split /\n/, $src) {
      next if $line =~ /^\s*#/;
      if ($line =~ /\{\s*"([A-Z]+)"\s*,\s*($str)\s*,/) {
        my ($m, $p) = ($1, $expand->($2));
        push @routes, [$m, $p, $f] if defined $p;
      }
      elsif ($line =~ /^\s*CRUD\(\s*"([^"]+)"\s*,\s*"([^"]+)"/) {
        my ($p, $id) = ($1, $2);
        push @routes, map { [@$_, $f] } (
          ['GET', $p], ['POST', $p],
          ['GET', "$p/{$id}"], ['PATCH', "$p/{$id}"], ['DELETE', "$p/{$id}"]);
      }
    }
  }
  return (\@routes, scalar @files);
}

subtest 'every route of the route tables is in the document' => sub {
  my ($routes, $nfiles) = routes_from_sources();
  ok($nfiles, 'found mod_scaikey/http/routes*.c');
  ok(scalar(@$routes) > 20, 'parsed the route tables (' . scalar(@$routes) . ' routes)');
  ok((grep { $_->[0] eq 'GET' && $_->[1] eq '/openapi.json' } @$routes), 'the parser sees GET /openapi.json');
  my @missing = map { "$_->[0] $_->[1]  ($_->[2])" }
    grep { !(ref $paths->{ $_->[1] } eq 'HASH' && ref $paths->{ $_->[1] }{ lc $_->[0] } eq 'HASH') } @$routes;
  s{\Q$TOP\E/}{} for @missing;
  ok(!@missing, 'every route is described') or diag(join "\n", 'missing from /openapi.json:', @missing);
};

subtest 'operation ids are unique' => sub {
  my %seen;
  my @dup = grep { defined $_ && $seen{$_}++ == 1 } map { $_->[2]{operationId} } @ops;
  ok(!@dup, 'no operationId is used twice') or diag("duplicated: @dup");
};

subtest 'references resolve' => sub {
  my @bad;
  my $walk;
  $walk = sub {
    my ($n) = @_;
    if (ref $n eq 'HASH') {
      if (defined $n->{'$ref'} && !ref $n->{'$ref'}) {
        my ($kind, $name) = $n->{'$ref'} =~ m{^#/components/(\w+)/(.+)\z};
        push @bad, $n->{'$ref'} unless $kind && ref $doc->{components}{$kind} eq 'HASH'
          && exists $doc->{components}{$kind}{$name};
      }
      $walk->($_) for values %$n;
    }
    elsif (ref $n eq 'ARRAY') {
      $walk->($_) for @$n;
    }
  };
  $walk->($doc);
  my %u = map { $_ => 1 } @bad;
  ok(!@bad, 'every $ref names a component') or diag(join "\n", 'unresolved:', sort keys %u);
};

subtest 'production mode does not serve /openapi.json' => sub {
  my ($xbase, $guard) = extra_apache('ScaiKeyMode production');
  ok($xbase, 'second Apache in production mode started') or return;
  my $h = req(GET => '/api/v1/health', base => $xbase);
  is($h->{status}, 200, 'it is up (health 200)') or diag($h->{content});
  my $p = req(GET => '/openapi.json', base => $xbase);
  is($p->{status}, 404, '/openapi.json is 404') or diag($p->{content});
};
