#!/usr/bin/perl
# Life of admin API objects: soft delete, reuse of slugs and emails, conflicts, partner limits,
# moving a tenant between partners, and what deleting or suspending does to logins and tokens.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $SA = admin_token();
my $ME = '/api/v1/admin/auth/me';
my %TABLE = (partners => 'partners', tenants => 'tenants', users => 'users', groups => 'groups',
             applications => 'applications', 'identity-providers' => 'identity_providers', agents => 'mcp_agents');
my $n = 0;

sub partner { admin_create($SA, 'partners', { name => 'Life partner ' . ++$n, slug => unique_slug('lf-p'), @_ }) }
sub tenant {
  my ($p, @more) = @_;
  admin_create($SA, 'tenants', { name => 'Life tenant ' . ++$n, slug => unique_slug('lf-t'),
                                 ($p ? (partner_id => $p->{id}) : ()), @more });
}

# an admin account made through the API, logged in: { %user, password, token, refresh }
sub admin_account {
  my (%o) = @_;
  my $pw = 'Life-pass-' . int(rand(1e9));
  my $u = admin_create($o{token} // $SA, 'users', { email => unique_email('lf-adm'), password => $pw,
                                                    role => $o{role}, %{ $o{where} // {} } });
  my ($j, $r) = admin_login(email => $u->{email}, password => $pw);
  diag("login of $u->{email} failed: $r->{status} $r->{content}") unless $j;
  return { %$u, password => $pw, token => $j && $j->{access_token}, refresh => $j && $j->{refresh_token} };
}

sub me_status { req(GET => $ME, token => $_[0])->{status} }
sub db_value { psql($_[0]) }
sub sq { sql_quote($_[0]) }

sub conflict_ok {
  my ($r, $detail, $name) = @_;
  is($r->{status}, 409, "$name: 409") or diag($r->{content});
  ok(is_json_error($r), "$name: JSON error");
  if (ref $detail) {
    like($r->{json} && $r->{json}{detail}, $detail, "$name: detail $detail");
  } else {
    is($r->{json} && $r->{json}{detail}, $detail, "$name: detail '$detail'");
  }
}

# ---------------------------------------------------------------------------

my $P = partner();
my $T = tenant($P);

subtest 'DELETE is soft: gone from the API, kept in the database' => sub {
  my %make = (
    partners             => sub { { name => 'Doomed partner', slug => unique_slug('lf-dp') } },
    tenants              => sub { { name => 'Doomed tenant', slug => unique_slug('lf-dt'), partner_id => $P->{id} } },
    users                => sub { { tenant_id => $T->{id}, email => unique_email('lf-du') } },
    groups               => sub { { tenant_id => $T->{id}, name => 'Doomed group ' . ++$n } },
    applications         => sub { { tenant_id => $T->{id}, name => 'Doomed app ' . ++$n, application_type => 'SPA',
                                    scope => 'TENANT' } },
    'identity-providers' => sub { { tenant_id => $T->{id}, name => 'Doomed idp ' . ++$n, provider_type => 'SAML' } },
    agents               => sub { { tenant_id => $T->{id}, name => 'Doomed agent ' . ++$n } },
  );
  for my $res (sort keys %make) {
    my $keep = admin_create($SA, $res, $make{$res}->());
    my $o = admin_create($SA, $res, $make{$res}->());
    my %q = $res eq 'partners' || $res eq 'tenants' ? () : (tenant_id => $T->{id});
    my ($before) = admin_list_all($SA, $res, %q);
    ok((grep { $_->{id} eq $o->{id} } @{ $before // [] }), "$res: listed before the delete");

    my $d = admin_req($SA, 'DELETE', $res, $o->{id});
    is($d->{status}, 204, "$res: DELETE 204") or diag($d->{content});
    is($d->{content}, '', "$res: DELETE has no body");

    my $g = admin_req($SA, 'GET', $res, $o->{id});
    is($g->{status}, 404, "$res: GET after delete 404");
    my $ghost = admin_req($SA, 'GET', $res, substr($o->{id}, 0, 4) . 'zz00000000000000');
    is_deeply($g->{json}, $ghost->{json}, "$res: the same answer as an id that never existed");
    is(admin_req($SA, 'PATCH', $res, $o->{id}, json => {})->{status}, 404, "$res: PATCH after delete 404");
    is(admin_req($SA, 'DELETE', $res, $o->{id})->{status}, 404, "$res: a second DELETE 404");

    my ($after) = admin_list_all($SA, $res, %q);
    ok(!(grep { $_->{id} eq $o->{id} } @{ $after // [] }), "$res: not listed after the delete");
    ok((grep { $_->{id} eq $keep->{id} } @{ $after // [] }), "$res: its sibling is still listed");
    my $key = $res eq 'users' ? 'email' : $res =~ /\A(?:partners|tenants)\z/ ? 'slug' : 'name';
    my $s = admin_req($SA, 'GET', admin_path($res) . query_string(%q, search => $o->{$key}));
    is_deeply([ids_of($s)], [], "$res: a search for it finds nothing");

    my $row = db_value(sprintf("SELECT deleted_at IS NOT NULL, %s FROM %s WHERE id = %s", $key, $TABLE{$res}, sq($o->{id})));
    is($row, "t|$o->{$key}", "$res: the row is kept with deleted_at set and its data intact");
    is(db_value(sprintf('SELECT deleted_at IS NULL FROM %s WHERE id = %s', $TABLE{$res}, sq($keep->{id}))), 't',
       "$res: the sibling row is not marked deleted");
  }
};

subtest 'duplicate slugs are 409 and a deleted slug can be used again' => sub {
  for my $res (qw(partners tenants)) {
    my $slug = unique_slug("lf-$res");
    my %extra = $res eq 'tenants' ? (partner_id => $P->{id}) : ();
    my $first = admin_create($SA, $res, { name => 'First', slug => $slug, %extra });
    my $single = $res eq 'partners' ? 'partner' : 'tenant';
    my $dup = admin_req($SA, 'POST', $res, json => { name => 'Second', slug => $slug, %extra });
    conflict_ok($dup, "A $single with this slug already exists", "$res: the same slug again");
    is(db_value(sprintf('SELECT count(*) FROM %s WHERE slug = %s', $res, sq($slug))), 1, "$res: still one row with the slug");

    my $other = admin_create($SA, $res, { name => 'Other', slug => unique_slug("lf-$res"), %extra });
    my $p = admin_req($SA, 'PATCH', $res, $other->{id}, json => { slug => $slug });
    conflict_ok($p, "A $single with this slug already exists", "$res: PATCH to a slug in use");
    isnt(admin_req($SA, 'GET', $res, $other->{id})->{json}{slug}, $slug, "$res: the PATCH changed nothing");

    is(admin_req($SA, 'DELETE', $res, $first->{id})->{status}, 204, "$res: the first one is deleted");
    my $again = admin_req($SA, 'POST', $res, json => { name => 'Again', slug => $slug, %extra });
    is($again->{status}, 201, "$res: the slug is free again") or diag($again->{content});
    isnt($again->{json} && $again->{json}{id}, $first->{id}, "$res: a new object, not the old one revived");
    is(admin_req($SA, 'GET', $res, $first->{id})->{status}, 404, "$res: the deleted one stays deleted");
    is(db_value(sprintf('SELECT count(*) FROM %s WHERE slug = %s', $res, sq($slug))), 2,
       "$res: two rows carry the slug, one of them deleted");
    # PATCH onto the slug of a deleted object is fine too
    my $third = admin_create($SA, $res, { name => 'Third', slug => unique_slug("lf-$res"), %extra });
    my $old = $third->{slug};
    is(admin_req($SA, 'DELETE', $res, $third->{id})->{status}, 204, "$res: another one deleted");
    my $q = admin_req($SA, 'PATCH', $res, $other->{id}, json => { slug => $old });
    is($q->{status}, 200, "$res: PATCH to the slug of a deleted object");
  }
};

subtest 'duplicate emails are 409 and a deleted email can be used again' => sub {
  my $T2 = tenant($P);
  my $email = unique_email('lf-mail');
  my $first = admin_create($SA, 'users', { tenant_id => $T->{id}, email => $email });
  for my $variant ($email, uc $email, ucfirst $email) {
    my $dup = admin_req($SA, 'POST', 'users', json => { tenant_id => $T->{id}, email => $variant });
    conflict_ok($dup, 'A user with this email already exists in this tenant', "the email '$variant' again in the tenant");
  }
  is(db_value(sprintf('SELECT count(*) FROM users WHERE lower(email) = lower(%s) AND deleted_at IS NULL', sq($email))), 1,
     'one live account with the email');
  my $elsewhere = admin_req($SA, 'POST', 'users', json => { tenant_id => $T2->{id}, email => $email });
  is($elsewhere->{status}, 201, 'the same email in another tenant is another account') or diag($elsewhere->{content});

  my $other = admin_create($SA, 'users', { tenant_id => $T->{id}, email => unique_email('lf-mail2') });
  my $p = admin_req($SA, 'PATCH', 'users', $other->{id}, json => { email => uc $email });
  conflict_ok($p, 'A user with this email already exists in this tenant', 'PATCH to an email in use');
  isnt(lc admin_req($SA, 'GET', 'users', $other->{id})->{json}{email}, lc $email, 'the PATCH changed nothing');

  is(admin_req($SA, 'DELETE', 'users', $first->{id})->{status}, 204, 'the first account is deleted');
  my $again = admin_req($SA, 'POST', 'users', json => { tenant_id => $T->{id}, email => $email });
  is($again->{status}, 201, 'the email is free again in the tenant') or diag($again->{content});
  isnt($again->{json} && $again->{json}{id}, $first->{id}, 'a new account');

  # accounts without a tenant share one namespace
  my $pe = unique_email('lf-pa');
  my $pa = admin_req($SA, 'POST', 'users', json => { email => $pe, role => 'partner_admin', partner_id => $P->{id} });
  is($pa->{status}, 201, 'a partner_admin');
  my $sa = admin_req($SA, 'POST', 'users', json => { email => uc $pe, role => 'super_admin' });
  conflict_ok($sa, 'A platform account with this email already exists', 'a super_admin with the same email');
  my $in_tenant = admin_req($SA, 'POST', 'users', json => { email => $pe, tenant_id => $T->{id} });
  is($in_tenant->{status}, 201, 'a tenant account may share the email of a platform account');
};

subtest 'deleting a user ends their sessions' => sub {
  my $ta = admin_account(role => 'tenant_admin', where => { tenant_id => $T->{id} });
  my $second = admin_token(email => $ta->{email}, password => $ta->{password});
  is(me_status($ta->{token}), 200, 'the token works before');
  is(me_status($second), 200, 'a second session works before');
  is(admin_req($ta->{token}, 'GET', 'groups')->{status}, 200, 'the admin API answers before');

  my $d = admin_req($SA, 'DELETE', 'users', $ta->{id});
  is($d->{status}, 204, 'the super_admin deletes the account');
  is(me_status($ta->{token}), 401, 'the token is refused at once');
  is(me_status($second), 401, 'so is the other session');
  is(admin_req($ta->{token}, 'GET', 'groups')->{status}, 401, 'the admin API refuses the token');
  my $rf = req(POST => '/api/v1/admin/auth/refresh', json => { refresh_token => $ta->{refresh} }, ip => unique_ip());
  is($rf->{status}, 401, 'the refresh token is refused');
  my (undef, $l) = admin_login(email => $ta->{email}, password => $ta->{password});
  is($l->{status}, 401, 'the account cannot log in any more');
  is(db_value(sprintf('SELECT count(*) FROM sessions WHERE user_id = %s AND revoked_at IS NULL', sq($ta->{id}))), 0,
     'no live session left in the database');
  is(db_value(sprintf("SELECT count(*) FROM sessions WHERE user_id = %s AND revoked_reason = 'account_deleted'",
                      sq($ta->{id}))), 2, 'both sessions revoked because the account was deleted');
  is(db_value(sprintf('SELECT count(*) FROM refresh_tokens WHERE user_id = %s AND revoked_at IS NULL', sq($ta->{id}))), 0,
     'no live refresh token left');
};

subtest 'nobody deletes their own account' => sub {
  my $P2 = partner();
  my $T2 = tenant($P2);
  my @who = (admin_account(role => 'super_admin'),
             admin_account(role => 'partner_admin', where => { partner_id => $P2->{id} }),
             admin_account(role => 'tenant_admin', where => { tenant_id => $T2->{id} }));
  for my $a (@who) {
    my $r = admin_req($a->{token}, 'DELETE', 'users', $a->{id});
    conflict_ok($r, 'You cannot delete your own account', "a $a->{role} deletes their own account");
    is(admin_req($SA, 'GET', 'users', $a->{id})->{status}, 200, "$a->{role}: the account is still there");
    is(me_status($a->{token}), 200, "$a->{role}: the token still works");
  }
  # and a super_admin cannot take away their own role or status
  my $s = $who[0];
  my $r = admin_req($s->{token}, 'PATCH', 'users', $s->{id}, json => { role => 'tenant_admin' });
  is($r->{status}, 409, 'a super_admin cannot change their own role');
  $r = admin_req($s->{token}, 'PATCH', 'users', $s->{id}, json => { status => 'SUSPENDED' });
  is($r->{status}, 409, 'nor suspend themselves');
  is(admin_req($SA, 'GET', 'users', $s->{id})->{json}{status}, 'ACTIVE', 'the account stays ACTIVE');
  # another super_admin may delete them
  is(admin_req($SA, 'DELETE', 'users', $s->{id})->{status}, 204, 'another super_admin deletes the account');
};

subtest 'partner limit max_tenants' => sub {
  my $L = partner(max_tenants => 1);
  is($L->{max_tenants}, 1, 'the partner allows one tenant');
  my $t1 = admin_req($SA, 'POST', 'tenants', json => { name => 'L1', slug => unique_slug('lf-l'), partner_id => $L->{id} });
  is($t1->{status}, 201, 'the first tenant');
  my $slug = unique_slug('lf-l');
  my $t2 = admin_req($SA, 'POST', 'tenants', json => { name => 'L2', slug => $slug, partner_id => $L->{id} });
  conflict_ok($t2, qr/\bmax_tenants\b/, 'a second tenant');
  is(db_value(sprintf('SELECT count(*) FROM tenants WHERE slug = %s', sq($slug))), 0, 'the refused tenant was not stored');
  is(db_value(sprintf('SELECT count(*) FROM tenants WHERE partner_id = %s AND deleted_at IS NULL', sq($L->{id}))), 1,
     'the partner has one tenant');

  # the partner's own admin meets the same limit
  my $pa = admin_account(role => 'partner_admin', where => { partner_id => $L->{id} });
  my $t3 = admin_req($pa->{token}, 'POST', 'tenants', json => { name => 'L3', slug => unique_slug('lf-l') });
  conflict_ok($t3, qr/\bmax_tenants\b/, 'a second tenant by the partner_admin');

  # moving a tenant in counts too
  my $outside = tenant($P);
  my $mv = admin_req($SA, 'PATCH', 'tenants', $outside->{id}, json => { partner_id => $L->{id} });
  conflict_ok($mv, qr/\bmax_tenants\b/, 'moving a tenant into the full partner');
  is(admin_req($SA, 'GET', 'tenants', $outside->{id})->{json}{partner_id}, $P->{id}, 'the tenant stays where it was');

  # deleted tenants do not count
  is(admin_req($SA, 'DELETE', 'tenants', $t1->{json}{id})->{status}, 204, 'the first tenant is deleted');
  my $t4 = admin_req($SA, 'POST', 'tenants', json => { name => 'L4', slug => unique_slug('lf-l'), partner_id => $L->{id} });
  is($t4->{status}, 201, 'there is room again') or diag($t4->{content});

  # a limit of 0, and no limit
  my $Z = partner(max_tenants => 0);
  conflict_ok(admin_req($SA, 'POST', 'tenants', json => { name => 'Z', slug => unique_slug('lf-z'), partner_id => $Z->{id} }),
              qr/\bmax_tenants\b/, 'max_tenants 0: the first tenant');
  is(admin_req($SA, 'PATCH', 'partners', $Z->{id}, json => { max_tenants => undef })->{status}, 200, 'the limit is lifted');
  for my $i (1 .. 3) {
    is(admin_req($SA, 'POST', 'tenants', json => { name => "Z$i", slug => unique_slug('lf-z'), partner_id => $Z->{id} })->{status},
       201, "no limit: tenant $i");
  }
  is(admin_req($SA, 'PATCH', 'partners', $Z->{id}, json => { max_tenants => 3 })->{status}, 200, 'a limit equal to the count');
  conflict_ok(admin_req($SA, 'POST', 'tenants', json => { name => 'Z4', slug => unique_slug('lf-z'), partner_id => $Z->{id} }),
              qr/\bmax_tenants\b/, 'max_tenants 3 with 3 tenants: a fourth');
};

subtest 'partner limit max_users_per_tenant' => sub {
  my $L = partner(max_users_per_tenant => 2);
  my $LT = tenant($L);
  my $LT2 = tenant($L);
  my @made;
  for my $i (1 .. 2) {
    my $r = admin_req($SA, 'POST', 'users', json => { tenant_id => $LT->{id}, email => unique_email('lf-lim') });
    is($r->{status}, 201, "user $i of 2") or diag($r->{content});
    push @made, $r->{json};
  }
  my $email = unique_email('lf-lim');
  my $r = admin_req($SA, 'POST', 'users', json => { tenant_id => $LT->{id}, email => $email });
  conflict_ok($r, qr/\bmax_users_per_tenant\b/, 'a third user');
  is(db_value(sprintf('SELECT count(*) FROM users WHERE email = %s', sq($email))), 0, 'the refused user was not stored');
  my $ta = admin_req($SA, 'POST', 'users', json => { tenant_id => $LT->{id}, email => unique_email('lf-lim'),
                                                     role => 'tenant_admin' });
  conflict_ok($ta, qr/\bmax_users_per_tenant\b/, 'a tenant_admin counts as a user of the tenant');
  is(admin_req($SA, 'POST', 'users', json => { tenant_id => $LT2->{id}, email => unique_email('lf-lim') })->{status}, 201,
     'the limit is per tenant: another tenant of the partner still has room');
  my $pa = admin_req($SA, 'POST', 'users', json => { partner_id => $L->{id}, role => 'partner_admin',
                                                     email => unique_email('lf-lim') });
  is($pa->{status}, 201, 'a partner_admin belongs to no tenant and is not counted');
  is(admin_req($SA, 'DELETE', 'users', $made[0]{id})->{status}, 204, 'one user is deleted');
  is(admin_req($SA, 'POST', 'users', json => { tenant_id => $LT->{id}, email => unique_email('lf-lim') })->{status}, 201,
     'there is room again');
  conflict_ok(admin_req($SA, 'POST', 'users', json => { tenant_id => $LT->{id}, email => unique_email('lf-lim') }),
              qr/\bmax_users_per_tenant\b/, 'and then none');
  is(db_value(sprintf('SELECT count(*) FROM users WHERE tenant_id = %s AND deleted_at IS NULL', sq($LT->{id}))), 2,
     'the tenant holds two live users');
};

subtest 'partner limit max_applications_per_tenant' => sub {
  my $L = partner(max_applications_per_tenant => 1);
  my $LT = tenant($L);
  my %app = (application_type => 'SPA', scope => 'TENANT', tenant_id => $LT->{id});
  my $a1 = admin_req($SA, 'POST', 'applications', json => { %app, name => 'Lim app 1' });
  is($a1->{status}, 201, 'the first application');
  my $name = 'Lim app 2 ' . unique_slug();
  my $a2 = admin_req($SA, 'POST', 'applications', json => { %app, name => $name });
  conflict_ok($a2, qr/\bmax_applications_per_tenant\b/, 'a second application in the tenant');
  is(db_value(sprintf('SELECT count(*) FROM applications WHERE name = %s', sq($name))), 0, 'the refused application was not stored');
  my $conf = admin_req($SA, 'POST', 'applications', json => { %app, name => 'Lim web', application_type => 'WEB' });
  conflict_ok($conf, qr/\bmax_applications_per_tenant\b/, 'a confidential one neither');
  ok(!exists(($conf->{json} // {})->{client_secret}), 'the refused application shows no secret');
  my $pa = admin_req($SA, 'POST', 'applications', json => { name => 'Partner app', application_type => 'SPA',
                                                            scope => 'PARTNER', partner_id => $L->{id} });
  is($pa->{status}, 201, "a PARTNER application is not one of the tenant's");
  is(admin_req($SA, 'POST', 'applications', json => { %app, name => 'Other tenant', tenant_id => tenant($L)->{id} })->{status},
     201, 'another tenant of the partner has its own room');
  is(admin_req($SA, 'DELETE', 'applications', $a1->{json}{id})->{status}, 204, 'the first application is deleted');
  is(admin_req($SA, 'POST', 'applications', json => { %app, name => 'Lim app 3' })->{status}, 201, 'there is room again');
};

subtest 'moving a tenant to another partner' => sub {
  my ($M1, $M2) = (partner(), partner());
  my $TM = tenant($M1);
  my $UM = admin_create($SA, 'users', { tenant_id => $TM->{id}, email => unique_email('lf-mv') });
  my $AM = admin_create($SA, 'applications', { tenant_id => $TM->{id}, name => 'Moving app', application_type => 'SPA',
                                               scope => 'TENANT' });
  my $PM1 = admin_create($SA, 'applications', { partner_id => $M1->{id}, name => 'M1 app', application_type => 'SPA',
                                                scope => 'PARTNER' });
  my $PM2 = admin_create($SA, 'applications', { partner_id => $M2->{id}, name => 'M2 app', application_type => 'SPA',
                                                scope => 'PARTNER' });
  my $pa1 = admin_account(role => 'partner_admin', where => { partner_id => $M1->{id} });
  my $pa2 = admin_account(role => 'partner_admin', where => { partner_id => $M2->{id} });
  my $ta  = admin_account(role => 'tenant_admin', where => { tenant_id => $TM->{id} });

  my $sees = sub {
    my ($a, $res, $id) = @_;
    my ($items) = admin_list_all($a->{token}, $res);
    my $listed = grep { $_->{id} eq $id } @{ $items // [] };
    my $got = admin_req($a->{token}, 'GET', $res, $id)->{status};
    return ($listed ? 'listed' : 'unlisted') . "/$got";
  };
  is($sees->($pa1, 'tenants', $TM->{id}), 'listed/200', 'before: the admin of M1 sees the tenant');
  is($sees->($pa1, 'users', $UM->{id}), 'listed/200', "before: and the tenant's user");
  is($sees->($pa1, 'applications', $AM->{id}), 'listed/200', "before: and the tenant's application");
  is($sees->($pa2, 'tenants', $TM->{id}), 'unlisted/404', 'before: the admin of M2 does not');
  is($sees->($pa2, 'users', $UM->{id}), 'unlisted/404', "before: nor the tenant's user");
  my ($ta_apps) = admin_list_all($ta->{token}, 'applications');
  my %ta_see = map { $_->{id} => 1 } @{ $ta_apps // [] };
  ok($ta_see{ $PM1->{id} } && !$ta_see{ $PM2->{id} }, "before: the tenant_admin lists M1's PARTNER app, not M2's");

  my $mv = admin_req($pa1->{token}, 'PATCH', 'tenants', $TM->{id}, json => { partner_id => $M2->{id} });
  is($mv->{status}, 403, 'the admin of M1 cannot give the tenant away');
  my $r = admin_req($SA, 'PATCH', 'tenants', $TM->{id}, json => { partner_id => $M2->{id} });
  is($r->{status}, 200, 'the super_admin moves the tenant') or diag($r->{content});
  is($r->{json} && $r->{json}{partner_id}, $M2->{id}, 'the tenant now belongs to M2');
  is(db_value(sprintf('SELECT partner_id FROM tenants WHERE id = %s', sq($TM->{id}))), $M2->{id}, 'stored');

  is($sees->($pa1, 'tenants', $TM->{id}), 'unlisted/404', 'after: the admin of M1 no longer sees the tenant');
  is($sees->($pa1, 'users', $UM->{id}), 'unlisted/404', "after: nor its user");
  is($sees->($pa1, 'applications', $AM->{id}), 'unlisted/404', "after: nor its application");
  is(admin_req($pa1->{token}, 'PATCH', 'users', $UM->{id}, json => { first_name => 'x' })->{status}, 404,
     'after: the admin of M1 cannot change the user');
  is($sees->($pa2, 'tenants', $TM->{id}), 'listed/200', 'after: the admin of M2 sees the tenant');
  is($sees->($pa2, 'users', $UM->{id}), 'listed/200', "after: and its user");
  is($sees->($pa2, 'applications', $AM->{id}), 'listed/200', "after: and its application");
  is(admin_req($pa2->{token}, 'PATCH', 'users', $UM->{id}, json => { first_name => 'Moved' })->{status}, 200,
     'after: the admin of M2 manages the user');
  ($ta_apps) = admin_list_all($ta->{token}, 'applications');
  %ta_see = map { $_->{id} => 1 } @{ $ta_apps // [] };
  ok(!$ta_see{ $PM1->{id} } && $ta_see{ $PM2->{id} }, "after: the tenant_admin lists M2's PARTNER app, not M1's");
  my $filtered = admin_req($SA, 'GET', admin_path('users') . query_string(partner_id => $M1->{id}));
  ok(!(grep { $_ eq $UM->{id} } ids_of($filtered)), 'after: the partner_id filter of M1 no longer finds the user');
  my $filtered2 = admin_req($SA, 'GET', admin_path('users') . query_string(partner_id => $M2->{id}));
  ok((grep { $_ eq $UM->{id} } ids_of($filtered2)), 'after: the partner_id filter of M2 does');
  my $bad = admin_req($SA, 'PATCH', 'tenants', $TM->{id}, json => { partner_id => 'prt_zz00000000000000' });
  is($bad->{status}, 422, 'moving a tenant to a partner that does not exist: 422');
  ok(find_verror($bad, ['body', 'partner_id']), 'the error is on partner_id');
};

subtest 'a suspended tenant: no login, no tokens; re-activation restores login' => sub {
  my $SP = partner();
  my $ST = tenant($SP);
  my $OT = tenant($SP);
  my $ta = admin_account(role => 'tenant_admin', where => { tenant_id => $ST->{id} });
  my $other = admin_account(role => 'tenant_admin', where => { tenant_id => $OT->{id} });
  my $pa = admin_account(role => 'partner_admin', where => { partner_id => $SP->{id} });
  is(me_status($ta->{token}), 200, 'the tenant_admin works before');

  my $r = admin_req($SA, 'PATCH', 'tenants', $ST->{id}, json => { status => 'SUSPENDED' });
  is($r->{status}, 200, 'the super_admin suspends the tenant');
  is($r->{json} && $r->{json}{status}, 'SUSPENDED', 'status SUSPENDED');

  is(me_status($ta->{token}), 401, 'the existing token stops validating');
  is(admin_req($ta->{token}, 'GET', 'users')->{status}, 401, 'the admin API refuses it');
  my $rf = req(POST => '/api/v1/admin/auth/refresh', json => { refresh_token => $ta->{refresh} }, ip => unique_ip());
  is($rf->{status}, 401, 'the refresh token is refused');
  ok(!exists(($rf->{json} // {})->{access_token}), 'no new token from the refresh');
  my ($j, $l) = admin_login(email => $ta->{email}, password => $ta->{password});
  is($l->{status}, 403, 'login: 403');
  is_deeply($l->{json}, { detail => 'Account is disabled' }, 'login: Account is disabled') or diag($l->{content});
  ok(!$j, 'login: no tokens');
  my (undef, $wrong) = admin_login(email => $ta->{email}, password => 'not-' . $ta->{password});
  is($wrong->{status}, 401, 'a wrong password still gets the plain 401');

  is(me_status($other->{token}), 200, "another tenant's admin is not affected");
  is(me_status($pa->{token}), 200, 'the partner_admin is not affected');
  my $g = admin_req($pa->{token}, 'GET', 'tenants', $ST->{id});
  is($g->{json} && $g->{json}{status}, 'SUSPENDED', 'the partner_admin sees the tenant SUSPENDED');
  my ($sus) = admin_list_all($SA, 'tenants', status => 'SUSPENDED');
  ok((grep { $_->{id} eq $ST->{id} } @{ $sus // [] }), 'the tenant is listed under status SUSPENDED');

  $r = admin_req($SA, 'PATCH', 'tenants', $ST->{id}, json => { status => 'ACTIVE' });
  is($r->{status}, 200, 'the tenant is re-activated');
  my ($j2, $l2) = admin_login(email => $ta->{email}, password => $ta->{password});
  is($l2->{status}, 200, 'login works again') or diag($l2->{content});
  is(me_status($j2 && $j2->{access_token}), 200, 'and its token validates');
};

subtest 'suspending or deleting what an admin hangs from' => sub {
  my $SP = partner();
  my $ST = tenant($SP);
  my $ta = admin_account(role => 'tenant_admin', where => { tenant_id => $ST->{id} });
  my $pa = admin_account(role => 'partner_admin', where => { partner_id => $SP->{id} });
  is(admin_req($SA, 'PATCH', 'partners', $SP->{id}, json => { status => 'SUSPENDED' })->{status}, 200, 'the partner is suspended');
  is(me_status($pa->{token}), 401, "the partner_admin's token stops validating");
  is(me_status($ta->{token}), 401, "so does the token of a tenant_admin under it");
  my (undef, $l) = admin_login(email => $pa->{email}, password => $pa->{password});
  is($l->{status}, 403, 'the partner_admin cannot log in');
  is(admin_req($SA, 'PATCH', 'partners', $SP->{id}, json => { status => 'ACTIVE' })->{status}, 200, 'the partner is re-activated');
  my (undef, $l2) = admin_login(email => $pa->{email}, password => $pa->{password});
  is($l2->{status}, 200, 'the partner_admin logs in again');

  # a suspended account
  my $ta2 = admin_account(role => 'tenant_admin', where => { tenant_id => $ST->{id} });
  is(admin_req($SA, 'PATCH', 'users', $ta2->{id}, json => { status => 'SUSPENDED' })->{status}, 200, 'an account is suspended');
  is(me_status($ta2->{token}), 401, 'its token stops validating');
  is(db_value(sprintf("SELECT count(*) FROM sessions WHERE user_id = %s AND revoked_at IS NULL", sq($ta2->{id}))), 0,
     'its sessions are revoked');
  my (undef, $l3) = admin_login(email => $ta2->{email}, password => $ta2->{password});
  is($l3->{status}, 403, 'it cannot log in');

  # a deleted tenant
  my $DT = tenant($SP);
  my $ta3 = admin_account(role => 'tenant_admin', where => { tenant_id => $DT->{id} });
  is(me_status($ta3->{token}), 200, 'the admin of a tenant about to be deleted works');
  is(admin_req($SA, 'DELETE', 'tenants', $DT->{id})->{status}, 204, 'the tenant is deleted');
  is(me_status($ta3->{token}), 401, "its admin's token stops validating");
  my (undef, $l4) = admin_login(email => $ta3->{email}, password => $ta3->{password});
  isnt($l4->{status}, 200, 'its admin cannot log in');
};

done_testing();
