package SKFixture;
# The admin-API fixture of t/42-t/45: the bootstrap super_admin signed in, users made by it with
# one password and a default role, their tokens, and calls to /api/v1/admin with any token.
#
#   use SKFixture qw(api created new_user token_of);
#   my $super = SKFixture::setup(prefix => 'sec', role => 'user', password => $PW);
use strict;
use warnings;
use Exporter 'import';
use Test::More ();
use SK qw(admin_login admin_req admin_create admin_token unique_email);

our @EXPORT_OK = qw(api created new_user token_of);

my $ADMIN = '/api/v1/admin';
my ($ST, %DEF);

# setup(prefix => email prefix, role => default role, password => every user's password):
# the super_admin's sign-in answer ({access_token, user, ...}); stops the test file without one
sub setup {
  (%DEF) = @_;
  my $super = admin_login() or Test::More::BAIL_OUT('the bootstrap admin cannot sign in');
  $ST = $super->{access_token};
  return $super;
}

# api($method, $path under /api/v1/admin, $token [, $json])
sub api {
  my ($method, $path, $token, $json) = @_;
  return admin_req($token, $method, "$ADMIN$path", (defined $json ? (json => $json) : ()));
}

# created($path, $body): made by the super_admin; dies unless created
sub created { my ($path, $body) = @_; return admin_create($ST, $path =~ s{\A/}{}r, $body) }

sub new_user {
  my (%o) = @_;
  return created('/users', { email => unique_email($DEF{prefix}), password => $DEF{password},
                             role => $DEF{role}, %o });
}

sub token_of { return admin_token(email => $_[0]{email}, password => $DEF{password}) }

1;
