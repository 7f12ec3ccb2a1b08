#!/usr/bin/perl
# Every directive of the module has its section in docs/configuration.md, and every directive
# section there names a directive the module has.
use strict;
use warnings;
use FindBin;
use Test::More;

my $top = "$FindBin::Bin/..";
sub slurp {
  my ($f) = @_;
  open(my $fh, '<', $f) or die "$f: $!";
  local $/;
  return <$fh>;
}

my $code = slurp("$top/mod_scaikey/config.c");
my @directives = $code =~ /AP_INIT_[A-Z0-9]+\(\s*"(ScaiKey\w+)"/g;
cmp_ok(scalar(@directives), ">=", 20, scalar(@directives) . ' directives in config.c');

my $docs = slurp("$top/docs/configuration.md");
my %documented = map { $_ => 1 } $docs =~ /^##+ (ScaiKey\w+)\s*$/mg;

for my $d (@directives) {
  ok($documented{$d}, "$d has a section in docs/configuration.md");
}
my %known = map { $_ => 1 } @directives;
for my $d (sort keys %documented) {
  ok($known{$d}, "the section $d names a directive of the module");
}
done_testing();
