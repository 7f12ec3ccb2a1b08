#!/usr/bin/perl
# Input validation of the admin API resources: bodies, fields, path ids and list queries.
# Bad input is answered 422 {"detail":[{"loc":[...],"msg":...,"type":...}]} (404 for ids that
# name nothing), nothing is stored or changed, and nothing in this file gets a server error.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
binmode(Test::More->builder->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);

my $SA = admin_token();
my @SEEN;       # [status, what] of every answer
my %REFUSED;    # table => key column => [values of bodies that must not have been stored]
my $n = 0;

sub rq {
  my $r = admin_req($SA, @_);
  push @SEEN, [$r->{status}, join(' ', grep { defined && !ref } @_[0 .. 2])];
  return $r;
}

my $P = admin_create($SA, 'partners', { name => 'Validation partner', slug => unique_slug('val-p') });
my $T = admin_create($SA, 'tenants', { name => 'Validation tenant', slug => unique_slug('val-t'),
                                       partner_id => $P->{id} });

# ---------------------------------------------------------------------------
# The resources: a fresh valid create body, the required fields, every typed field with its type
# and its maximum length, and the fields accepted on create only.

my %TABLE = (partners => 'partners', tenants => 'tenants', users => 'users', groups => 'groups',
             applications => 'applications', 'identity-providers' => 'identity_providers',
             agents => 'mcp_agents');

my %RES = (
  partners => {
    valid    => sub { { name => 'Val partner ' . ++$n, slug => unique_slug('val-p') } },
    key      => 'slug',
    required => [qw(name slug)],
    fields   => { name => ['string', 200], slug => ['slug', 63], status => ['enum'], contact_email => ['email', 320],
                  max_tenants => ['int'], max_users_per_tenant => ['int'], max_applications_per_tenant => ['int'],
                  settings => ['object'], branding => ['object'] },
    enums    => { status => [qw(active DELETED Active), ''] },
    create_only => [],
  },
  tenants => {
    valid    => sub { { name => 'Val tenant ' . ++$n, slug => unique_slug('val-t'), partner_id => $P->{id} } },
    key      => 'slug',
    required => [qw(name slug)],
    fields   => { partner_id => ['string', 64], name => ['string', 200], slug => ['slug', 63], status => ['enum'],
                  contact_email => ['email', 320], custom_domain => ['string', 253], settings => ['object'],
                  branding => ['object'] },
    enums    => { status => [qw(active DELETED)] },
    create_only => [],
  },
  users => {
    valid    => sub { { tenant_id => $T->{id}, email => unique_email('val-u') } },
    key      => 'email',
    required => [qw(email)],
    fields   => { tenant_id => ['string', 64], email => ['email', 320], password => ['string', 1024],
                  role => ['enum'], status => ['enum'], first_name => ['string', 200], last_name => ['string', 200],
                  display_name => ['string', 200], title => ['string', 1000], department => ['string', 1000],
                  phone => ['string', 1000], identity_source => ['enum'], custom_attributes => ['object'],
                  email_verified => ['bool'], is_service_account => ['bool'], must_change_password => ['bool'] },
    enums    => { role => [qw(admin USER Super_Admin)], status => [qw(DELETED active)],
                  identity_source => [qw(KERBEROS local)] },
    create_only => [qw(tenant_id partner_id password is_service_account)],
  },
  groups => {
    valid    => sub { { tenant_id => $T->{id}, name => 'Val group ' . ++$n } },
    key      => 'name',
    required => [qw(name)],
    fields   => { tenant_id => ['string', 64], name => ['string', 200], description => ['string', 1000],
                  group_type => ['enum'], external_id => ['string', 1000] },
    enums    => { group_type => [qw(security MAILING)] },
    create_only => [qw(tenant_id)],
  },
  applications => {
    valid    => sub { { tenant_id => $T->{id}, name => 'Val app ' . ++$n, application_type => 'WEB', scope => 'TENANT' } },
    key      => 'name',
    required => [qw(name application_type scope)],
    fields   => { name => ['string', 200], description => ['string', 1000], application_type => ['enum'],
                  scope => ['enum'], tenant_id => ['string', 64], allowed_scopes => ['list'],
                  redirect_uris => ['list'], allowed_origins => ['list'], post_logout_redirect_uris => ['list'],
                  grant_types => ['list'], backchannel_logout_uri => ['url', 2000], token_lifetime => ['int'],
                  refresh_token_lifetime => ['int'], token_exchange_allowed => ['bool'],
                  require_consent => ['bool'], status => ['enum'] },
    enums    => { application_type => [qw(web BROWSER)], scope => [qw(global PLATFORM)], status => [qw(DISABLED)] },
    create_only => [qw(application_type scope tenant_id partner_id)],
  },
  'identity-providers' => {
    valid    => sub { { tenant_id => $T->{id}, name => 'Val idp ' . ++$n, provider_type => 'OIDC' } },
    key      => 'name',
    required => [qw(name provider_type)],
    fields   => { tenant_id => ['string', 64], name => ['string', 200], provider_type => ['enum'],
                  enabled => ['bool'], config => ['object'], attribute_mapping => ['object'],
                  group_mapping => ['object'], display_order => ['int'], client_secret => ['string', 4096] },
    enums    => { provider_type => [qw(oidc SAML2 KERBEROS)] },
    create_only => [qw(tenant_id provider_type)],
  },
  agents => {
    valid    => sub { { tenant_id => $T->{id}, name => 'Val agent ' . ++$n } },
    key      => 'name',
    required => [qw(name)],
    fields   => { tenant_id => ['string', 64], name => ['string', 200], description => ['string', 1000],
                  agent_type => ['string', 64], status => ['enum'], allowed_tools => ['list'],
                  allowed_scopes => ['list'], rate_limit_rpm => ['int'], owner_user_id => ['string', 64],
                  metadata => ['object'] },
    enums    => { status => [qw(RUNNING active)] },
    create_only => [qw(tenant_id)],
  },
);
my @RESOURCES = qw(partners tenants users groups applications identity-providers agents);

# Values of the wrong type for each kind of field, with the error type expected.
my $T_ = JSON::PP::true();
my $F_ = JSON::PP::false();
my %WRONG = (
  string => [[123, 'string_type'], [$T_, 'string_type'], [[], 'string_type'], [{}, 'string_type'], [1.5, 'string_type']],
  int    => [['5', 'int_type'], [1.5, 'int_type'], [$T_, 'int_type'], [[], 'int_type'], [{}, 'int_type']],
  bool   => [['true', 'bool_type'], [1, 'bool_type'], [0, 'bool_type'], [[], 'bool_type'], [undef, 'bool_type']],
  object => [[[], 'dict_type'], ['{}', 'dict_type'], [1, 'dict_type'], [$F_, 'dict_type'], [undef, 'dict_type']],
  list   => [['x', 'list_type'], [{}, 'list_type'], [1, 'list_type'], [undef, 'list_type'],
             [[1], 'string_type'], [[''], 'string_type'], [[['x']], 'string_type']],
);
$WRONG{$_} = $WRONG{string} for qw(slug email enum url);

# One existing object of each resource, for PATCH.
my %OBJ = map { $_ => admin_create($SA, $_, $RES{$_}{valid}->()) } @RESOURCES;

# ---------------------------------------------------------------------------

# a 422 in the documented shape, with an error at $loc of type $type (any type when undef)
sub v422_ok {
  my ($r, $loc, $type, $name) = @_;
  is($r->{status}, 422, "$name: 422") or return diag(substr($r->{content}, 0, 400));
  like($r->{headers}{'content-type'} // '', qr{\Aapplication/json\b}i, "$name: JSON answer");
  my $d = $r->{json} && $r->{json}{detail};
  my $shape = ref $d eq 'ARRAY' && @$d && !grep {
    ref $_ ne 'HASH' || ref $_->{loc} ne 'ARRAY' || !@{ $_->{loc} } || $_->{loc}[0] !~ /\A(?:body|query|path)\z/
      || !defined $_->{msg} || ref $_->{msg} || !length $_->{msg} || !defined $_->{type} || ref $_->{type}
  } @$d;
  ok($shape, "$name: detail is a list of {loc, msg, type}") or diag($r->{content});
  return unless $loc;
  my $e = find_verror($r, $loc);
  ok($e, "$name: an error at [@$loc]") or return diag($r->{content});
  is($e->{type}, $type, "$name: type $type") if defined $type;
  return $e;
}

# a create that must fail: remembers the body so the end of the file can check nothing was stored
sub create_refused {
  my ($res, $body, $loc, $type, $name, %o) = @_;
  my $r = rq('POST', $res, $o{raw} ? (raw => $o{raw}) : (json => $body));
  my $key = $RES{$res}{key};
  push @{ $REFUSED{ $TABLE{$res} }{$key} }, $body->{$key} if ref $body eq 'HASH' && defined $body->{$key} && !ref $body->{$key};
  return v422_ok($r, $loc, $type, $name);
}

# a PATCH that must fail and leave the object as it was
sub patch_refused {
  my ($res, $body, $loc, $type, $name, %o) = @_;
  my $id = $OBJ{$res}{id};
  my $before = rq('GET', $res, $id)->{json};
  my $r = rq('PATCH', $res, $id, $o{raw} ? (raw => $o{raw}) : (json => $body));
  my $e = v422_ok($r, $loc, $type, $name);
  is_deeply(rq('GET', $res, $id)->{json}, $before, "$name: the object is unchanged");
  return $e;
}

# ---------------------------------------------------------------------------

subtest 'malformed JSON and bodies that are not objects' => sub {
  my @bad = ('{', '{"name":}', "{'name':'x'}", '{"name":"x",}', '{"name":"x"} trailing', '{"a":1,"a":2}',
             'nul', "\x{feff}{}", '{"name":"x\u0000y"}');
  my @notobj = ('[]', '[{"name":"x"}]', '"name"', '42', 'null', 'true');
  for my $res (@RESOURCES) {
    for my $b (@bad) {
      create_refused($res, undef, ['body'], 'json_invalid', "POST $res body <$b>", raw => $b);
      patch_refused($res, undef, ['body'], 'json_invalid', "PATCH $res body <$b>", raw => $b);
    }
    for my $b (@notobj) {
      create_refused($res, undef, ['body'], 'model_attributes_type', "POST $res body $b", raw => $b);
      patch_refused($res, undef, ['body'], 'model_attributes_type', "PATCH $res body $b", raw => $b);
    }
  }
};

subtest 'invalid UTF-8 in the body' => sub {
  for my $res (@RESOURCES) {
    my $body = $RES{$res}{valid}->();
    my $key = $RES{$res}{key};
    my $json = JSON::PP->new->utf8->canonical->encode($body);    # bytes
    (my $bad = $json) =~ s/"\Q$body->{$key}\E"/"$body->{$key}\xff\xfe"/;
    isnt($bad, $json, "$res: a body with bytes 0xff 0xfe") or next;
    create_refused($res, $body, ['body'], 'json_invalid', "POST $res with invalid UTF-8", raw => $bad);
    (my $lone = $json) =~ s/"\Q$body->{$key}\E"/"$body->{$key}\xc3"/;
    create_refused($res, $body, ['body'], 'json_invalid', "POST $res with a truncated UTF-8 sequence", raw => $lone);
    patch_refused($res, undef, ['body'], 'json_invalid', "PATCH $res with invalid UTF-8",
                  raw => "{\"$RES{$res}{required}[0]\":\"x\xc0\xaf\"}");
  }
};

subtest 'not JSON at all' => sub {
  for my $res (@RESOURCES) {
    my $body = $RES{$res}{valid}->();
    my $r = rq('POST', $res, json => $body, headers => { 'Content-Type' => 'text/plain' });
    is($r->{status}, 415, "POST $res as text/plain: 415");
    ok(is_json_error($r), "POST $res as text/plain: JSON error body");
    push @{ $REFUSED{ $TABLE{$res} }{ $RES{$res}{key} } }, $body->{ $RES{$res}{key} };
  }
};

subtest 'missing required fields' => sub {
  for my $res (@RESOURCES) {
    my $r = rq('POST', $res, json => {});
    v422_ok($r, undef, undef, "POST $res {}");
    for my $f (@{ $RES{$res}{required} }) {
      my $e = find_verror($r, ['body', $f]);
      is($e && $e->{type}, 'missing', "POST $res {}: $f missing");
      is($e && $e->{msg}, 'Field required', "POST $res {}: $f: Field required");
      my $body = $RES{$res}{valid}->();
      delete $body->{$f};
      create_refused($res, $body, ['body', $f], 'missing', "POST $res without $f");
    }
    my $r2 = rq('POST', $res, raw => '');
    v422_ok($r2, ['body', $RES{$res}{required}[0]], 'missing', "POST $res with an empty body");
  }
  # what is owned by a tenant needs one
  for my $res (qw(groups identity-providers agents)) {
    my $body = $RES{$res}{valid}->();
    delete $body->{tenant_id};
    create_refused($res, $body, ['body', 'tenant_id'], 'missing', "POST $res without tenant_id");
  }
  for my $role (qw(user tenant_admin)) {
    my $body = { email => unique_email('val-nt'), role => $role };
    create_refused('users', $body, ['body', 'tenant_id'], 'missing', "POST a $role without tenant_id");
  }
  create_refused('users', { email => unique_email('val-np'), role => 'partner_admin' }, ['body', 'partner_id'],
                 'missing', 'POST a partner_admin without partner_id');
  create_refused('applications', { name => 'Val app nt ' . ++$n, application_type => 'WEB', scope => 'TENANT' },
                 ['body', 'tenant_id'], undef, 'POST a TENANT application without tenant_id');
  create_refused('applications', { name => 'Val app np ' . ++$n, application_type => 'WEB', scope => 'PARTNER' },
                 ['body', 'partner_id'], undef, 'POST a PARTNER application without partner_id');
};

subtest 'fields of the wrong type' => sub {
  for my $res (@RESOURCES) {
    my $fields = $RES{$res}{fields};
    my %create_only = map { $_ => 1 } @{ $RES{$res}{create_only} };
    for my $f (sort keys %$fields) {
      for my $w (@{ $WRONG{ $fields->{$f}[0] } }) {
        my ($v, $type) = @$w;
        my $shown = JSON::PP->new->allow_nonref->canonical->encode($v);
        create_refused($res, { %{ $RES{$res}{valid}->() }, $f => $v }, ['body', $f], $type,
                       "POST $res $f=$shown");
        next if $create_only{$f};
        patch_refused($res, { $f => $v }, ['body', $f], $type, "PATCH $res $f=$shown");
      }
    }
    # a required field cannot be null
    for my $f (@{ $RES{$res}{required} }) {
      create_refused($res, { %{ $RES{$res}{valid}->() }, $f => undef }, ['body', $f], 'string_type',
                     "POST $res $f=null");
    }
  }
};

subtest 'numbers out of range' => sub {
  my @cases = (
    [partners => max_tenants => -1], [partners => max_users_per_tenant => -5],
    [partners => max_applications_per_tenant => 1000001],
    [applications => token_lifetime => 59], [applications => token_lifetime => 86401],
    [applications => token_lifetime => 0], [applications => refresh_token_lifetime => 299],
    ['identity-providers' => display_order => -1], ['identity-providers' => display_order => 10001],
    [agents => rate_limit_rpm => 0],
  );
  for my $c (@cases) {
    my ($res, $f, $v) = @$c;
    create_refused($res, { %{ $RES{$res}{valid}->() }, $f => $v }, ['body', $f], 'int_range', "POST $res $f=$v");
    patch_refused($res, { $f => $v }, ['body', $f], 'int_range', "PATCH $res $f=$v");
  }
  my $raw = '{"name":"Val big ' . ++$n . '","slug":"' . unique_slug('val-big') . '","max_tenants":99999999999999999999}';
  create_refused('partners', undef, undef, undef, 'POST partners with an integer beyond 64 bits', raw => $raw);
  create_refused('partners', { %{ $RES{partners}{valid}->() }, max_tenants => 1e300 }, ['body', 'max_tenants'],
                 'int_type', 'POST partners max_tenants=1e300');
};

subtest 'unknown and read-only fields are forbidden' => sub {
  my @never = qw(bogus id created_at updated_at deleted_at);
  my %extra = (users => [qw(password_hash mfa_enabled last_login_at)],
               applications => [qw(client_id client_secret client_secret_hash secret_rotated_at)],
               agents => [qw(client_id client_secret_hash last_used_at)],
               'identity-providers' => [qw(secret_sealed last_sync_at last_sync_status)]);
  for my $res (@RESOURCES) {
    for my $f (@never, @{ $extra{$res} // [] }) {
      my $e = create_refused($res, { %{ $RES{$res}{valid}->() }, $f => 'x' }, ['body', $f], 'extra_forbidden',
                             "POST $res with $f");
      is($e && $e->{msg}, 'Extra inputs are not permitted', "POST $res with $f: msg") if $f eq 'bogus';
      patch_refused($res, { $f => 'x' }, ['body', $f], 'extra_forbidden', "PATCH $res with $f");
    }
    # what can be set only at creation
    for my $f (@{ $RES{$res}{create_only} }) {
      my $v = $f eq 'tenant_id' ? $T->{id} : $f eq 'partner_id' ? $P->{id} : $f eq 'is_service_account' ? $T_
            : $f eq 'application_type' ? 'SERVICE' : $f eq 'scope' ? 'GLOBAL' : $f eq 'provider_type' ? 'LDAP'
            : 'Another-pass-123';
      patch_refused($res, { $f => $v }, ['body', $f], 'extra_forbidden', "PATCH $res $f (set at creation only)");
    }
    # case matters
    create_refused($res, { %{ $RES{$res}{valid}->() }, Name => 'x' }, ['body', 'Name'], 'extra_forbidden',
                   "POST $res with Name");
  }
};

subtest 'over-long strings' => sub {
  for my $res (@RESOURCES) {
    my $fields = $RES{$res}{fields};
    my %create_only = map { $_ => 1 } @{ $RES{$res}{create_only} };
    for my $f (sort grep { defined $fields->{$_}[1] } keys %$fields) {
      my ($type, $max) = @{ $fields->{$f} };
      my $v = $type eq 'email' ? ('a' x 64) . '@' . join('.', ('b' x 60) x 5) . '.test'
            : $type eq 'url' ? 'https://example.test/' . ('p' x ($max - 20 + 1))
            : $type eq 'slug' ? 'a' x ($max + 1)
            : 'x' x ($max + 1);
      my $want = $type eq 'email' ? 'value_error' : 'string_too_long';
      create_refused($res, { %{ $RES{$res}{valid}->() }, $f => $v }, ['body', $f], $want,
                     "POST $res $f of " . length($v) . ' characters');
      patch_refused($res, { $f => $v }, ['body', $f], $want, "PATCH $res $f of " . length($v) . ' characters')
        unless $create_only{$f};
    }
    # the longest name accepted is stored whole
    my $body = { %{ $RES{$res}{valid}->() } };
    if (exists $body->{name}) {
      $body->{name} = ('N' x 190) . sprintf('%010d', ++$n);
      my $r = rq('POST', $res, json => $body);
      is($r->{status}, 201, "POST $res with a name of 200 characters: 201") or diag($r->{content});
      is($r->{json} && $r->{json}{name}, $body->{name}, "POST $res with a name of 200 characters: stored whole");
    }
    create_refused($res, { %{ $RES{$res}{valid}->() }, name => '' }, ['body', 'name'], 'string_too_short',
                   "POST $res with an empty name") if grep { $_ eq 'name' } @{ $RES{$res}{required} };
  }
  # a name needs something besides white space
  for my $blank ('   ', "\t", "  \t ", "\n") {
    (my $shown = $blank) =~ s/\t/\\t/g;
    $shown =~ s/\n/\\n/g;
    for my $res (qw(partners groups)) {
      create_refused($res, { %{ $RES{$res}{valid}->() }, name => $blank }, undef, undef,
                     "POST $res with the blank name '$shown'");
    }
  }
  create_refused('applications', { %{ $RES{applications}{valid}->() }, allowed_scopes => [map { "s$_" } 1 .. 101] },
                 ['body', 'allowed_scopes'], 'too_long', 'POST applications with 101 allowed_scopes');
  create_refused('applications', { %{ $RES{applications}{valid}->() }, allowed_scopes => ['x' x 1025] },
                 ['body', 'allowed_scopes'], 'string_type', 'POST applications with an allowed scope of 1025 characters');
};

subtest 'bad enum values' => sub {
  for my $res (@RESOURCES) {
    my %create_only = map { $_ => 1 } @{ $RES{$res}{create_only} };
    for my $f (sort keys %{ $RES{$res}{enums} }) {
      for my $v (@{ $RES{$res}{enums}{$f} }) {
        my $e = create_refused($res, { %{ $RES{$res}{valid}->() }, $f => $v }, ['body', $f], 'enum',
                               "POST $res $f='$v'");
        patch_refused($res, { $f => $v }, ['body', $f], 'enum', "PATCH $res $f='$v'") unless $create_only{$f};
      }
    }
  }
};

subtest 'bad slugs' => sub {
  my @bad = ('Bad Slug', '-x', 'x-', 'a' x 64, 'UPPER', 'a_b', 'a.b', "caf\x{e9}", 'a b', '--', '-', "a\nb", 'a/b');
  for my $res (qw(partners tenants)) {
    for my $s (@bad) {
      my $want = length($s) > 63 ? 'string_too_long' : 'string_pattern_mismatch';
      (my $shown = $s) =~ s/\n/\\n/g;
      create_refused($res, { %{ $RES{$res}{valid}->() }, slug => $s }, ['body', 'slug'], $want, "POST $res slug '$shown'");
      patch_refused($res, { slug => $s }, ['body', 'slug'], $want, "PATCH $res slug '$shown'");
    }
    for my $s ('a', 'a' x 63, 'a-b-9', '0-x') {
      my $slug = $s eq 'a' || $s eq '0-x' ? unique_slug($s) : $s eq 'a' x 63 ? substr(unique_slug('a') . ('a' x 63), 0, 63) : unique_slug($s);
      my $r = rq('POST', $res, json => { %{ $RES{$res}{valid}->() }, slug => $slug });
      is($r->{status}, 201, "POST $res slug '$slug' (" . length($slug) . ' characters): 201') or diag($r->{content});
    }
  }
};

subtest 'bad email addresses' => sub {
  my @bad = ('not-an-email', 'a@b', '@example.test', 'a@', 'a@@example.test', 'a b@example.test', 'a@-example.test',
             'a@example-.test', '.a@example.test', 'a.@example.test', 'a..b@example.test', 'a@example..test',
             'a@exa_mple.test', '', ('x' x 65) . '@example.test', "a\@example.test\n");
  for my $e (@bad) {
    (my $shown = $e) =~ s/\n/\\n/g;
    create_refused('users', { tenant_id => $T->{id}, email => $e }, ['body', 'email'], 'value_error', "POST users email '$shown'");
    patch_refused('users', { email => $e }, ['body', 'email'], 'value_error', "PATCH users email '$shown'");
    for my $res (qw(partners tenants)) {
      create_refused($res, { %{ $RES{$res}{valid}->() }, contact_email => $e }, ['body', 'contact_email'], 'value_error',
                     "POST $res contact_email '$shown'");
    }
  }
};

subtest 'SQL metacharacters in values are stored as they are' => sub {
  my @nasty = ("Robert'); DROP TABLE groups;--", q{x' OR '1'='1}, q{a"b\\c%d_e}, "semi;colon -- and /* c */",
               "\$1 \$\$ dollar", "caf\x{e9} \x{4e2d}\x{6587} \x{1f512}");
  for my $s (@nasty) {
    my $r = rq('POST', 'groups', json => { tenant_id => $T->{id}, name => $s, description => $s });
    is($r->{status}, 201, "group named <$s>: 201") or diag($r->{content});
    my $id = $r->{json} && $r->{json}{id};
    my $g = rq('GET', 'groups', $id // 'none');
    is($g->{json} && $g->{json}{name}, $s, "group named <$s>: read back exactly");
    is($g->{json} && $g->{json}{description}, $s, "group named <$s>: description read back exactly");
    my $l = rq('GET', admin_path('groups') . query_string(tenant_id => $T->{id}, search => $s));
    is_deeply([ids_of($l)], [$id // 'none'], "group named <$s>: found by searching its own name, alone");
    my $p = rq('PATCH', 'users', $OBJ{users}{id}, json => { first_name => $s });
    is($p->{json} && $p->{json}{first_name}, $s, "user first_name <$s>: PATCH stores it exactly");
  }
  is(psql('SELECT count(*) > 0 FROM groups'), 't', 'the groups table is still there');
  is(psql(sprintf('SELECT count(*) FROM users WHERE id = %s AND deleted_at IS NULL', sql_quote($OBJ{users}{id}))), 1,
     'the patched user is still there (and only once)');
};

subtest 'hostile ids in the path are not found' => sub {
  my @ids = ("usr_x' OR '1'='1", "x'; DROP TABLE users; --", '%', '_', '*', 'usr_%', '1 OR 1=1', '0',
             "\x{e9}t\x{e9}", 'a' x 65, 'usr_' . ('a' x 1000), 'usr_' . ('b' x 6000));
  for my $res (@RESOURCES) {
    my $ghost = rq('GET', $res, 'zz_nothing');
    is($ghost->{status}, 404, "GET $res/zz_nothing: 404");
    for my $id (@ids) {
      my $path = admin_path($res) . '/' . query_string(x => $id) =~ s/\A\?x=//r;
      my $shown = length($id) > 40 ? substr($id, 0, 12) . '... (' . length($id) . ' characters)' : $id;
      for my $m (qw(GET PATCH DELETE)) {
        my $r = rq($m, $path, $m eq 'PATCH' ? (json => { name => 'x' }) : ());
        is($r->{status}, 404, "$m $res/<$shown>: 404") or diag(substr($r->{content}, 0, 200));
        is_deeply($r->{json}, $ghost->{json}, "$m $res/<$shown>: the plain not-found answer");
      }
    }
    # an id of 10 000 characters
    my $r = rq('GET', admin_path($res) . '/' . ('i' x 10000));
    is($r->{status}, 404, "GET $res/<10000 characters>: 404") or diag(substr($r->{content}, 0, 120));
  }
  is(psql('SELECT count(*) > 0 FROM users'), 't', 'the users table is still there');
};

subtest 'list queries' => sub {
  my %bad_filters = (
    partners => [[status => 'NOPE'], [status => 'active']],
    tenants => [[status => 'DELETED']],
    users => [[status => 'NOPE'], [role => 'admin'], [identity_source => 'x'], [role => "user' OR '1'='1"]],
    groups => [[group_type => 'MAILING']],
    applications => [[scope => 'global'], [application_type => 'BROWSER'], [status => 'x']],
    'identity-providers' => [[provider_type => 'saml2'], [enabled => 'maybe'], [enabled => '1']],
    agents => [[status => 'RUNNING']],
  );
  for my $res (@RESOURCES) {
    for my $f (@{ $bad_filters{$res} }) {
      my $r = rq('GET', admin_path($res) . query_string(@$f));
      v422_ok($r, ['query', $f->[0]], $f->[0] eq 'enabled' ? 'bool_parsing' : 'enum', "GET $res?$f->[0]=$f->[1]");
    }
    for my $q ([per_page => 0, 'greater_than_equal'], [per_page => 101, 'less_than_equal'],
               [per_page => 'abc', 'int_parsing'], [per_page => '', 'int_parsing'], [per_page => '1.5', 'int_parsing'],
               [per_page => '-1', 'greater_than_equal'], [per_page => '10abc', 'int_parsing'],
               [page => 0, 'greater_than_equal'], [page => -1, 'greater_than_equal'], [page => 'two', 'int_parsing'],
               [page => '1e3', 'int_parsing'], [page => '99999999999999999999', 'int_parsing']) {
      my $r = rq('GET', admin_path($res) . query_string($q->[0], $q->[1]));
      v422_ok($r, ['query', $q->[0]], $q->[2], "GET $res?$q->[0]=$q->[1]");
    }
    my $both = rq('GET', admin_path($res) . query_string(page => 0, per_page => 101));
    v422_ok($both, ['query', 'page'], 'greater_than_equal', "GET $res?page=0&per_page=101 (page)");
    ok(find_verror($both, ['query', 'per_page']), "GET $res?page=0&per_page=101: per_page reported too");
    my $long = rq('GET', admin_path($res) . query_string(search => 'x' x 321));
    v422_ok($long, ['query', 'search'], 'string_too_long', "GET $res?search=<321 characters>");
    # hostile but well-formed values simply match nothing
    for my $q ([search => "' OR 1=1 --"], [tenant_id => "' OR '1'='1"], [partner_id => 'x%'], [search => '\\']) {
      next if $res eq 'partners' && $q->[0] =~ /_id\z/;      # partners have no such filter
      my $r = rq('GET', admin_path($res) . query_string(@$q));
      is($r->{status}, 200, "GET $res?$q->[0]=$q->[1]: 200") or diag($r->{content});
      is_deeply([ids_of($r)], [], "GET $res?$q->[0]=$q->[1]: nothing matches");
    }
    # the boundaries are accepted
    for my $q ([per_page => 1], [per_page => 100], [page => 1]) {
      my $r = rq('GET', admin_path($res) . query_string(@$q));
      is($r->{status}, 200, "GET $res?$q->[0]=$q->[1]: 200");
    }
  }
};

subtest 'nothing refused was stored' => sub {
  for my $table (sort keys %REFUSED) {
    for my $col (sort keys %{ $REFUSED{$table} }) {
      my @v = grep { defined && length } @{ $REFUSED{$table}{$col} };
      next unless @v;
      my $list = join(', ', map { sql_quote($_) } @v);
      my $sql = "SELECT count(*) FROM $table WHERE $col IN ($list)";
      utf8::encode($sql);
      is(psql($sql), 0,
         "$table: none of the " . scalar(@v) . ' refused bodies was stored');
    }
  }
};

subtest 'no answer in this file was a server error' => sub {
  my @bad = grep { $_->[0] >= 500 } @SEEN;
  is(scalar @bad, 0, scalar(@SEEN) . ' answers, none 5xx') or diag(explain [@bad[0 .. ($#bad > 20 ? 20 : $#bad)]]);
  cmp_ok(scalar @SEEN, '>', 1000, 'the file made its requests');
};

done_testing();
