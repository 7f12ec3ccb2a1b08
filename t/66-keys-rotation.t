#!/usr/bin/perl
# Signing keys: the next/current/previous/retired life cycle. Manual rotation while tokens are
# outstanding (they keep verifying, with Crypt::JWT against the JWKS and at the API), new tokens
# with the new kid, retirement only once a key stopped signing longer ago than the longest token
# lifetime, permissions and audit; switching a server to ES256 against the same database; the
# scheduled rotation of mod_watchdog, also with two servers checking at once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(sleep time);
use POSIX ();
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};

my $KEYS   = '/api/v1/admin/keys';
my $ROTATE = '/api/v1/admin/keys/rotate';
my $ME     = '/api/v1/admin/auth/me';
# how long a process may sign with a rotated-out key (SK_KEYRING_REFRESH_SECONDS), and some
my $RELOAD = 15;

my $SA = admin_token();
# what happened before this test: earlier rotations, the error log so far
my $ROTATIONS0 = psql("SELECT count(*) FROM audit_log WHERE action = 'key.rotate'");
my $LOG0 = -s $ENV{SK_ERROR_LOG} // 0;
my %PREV0 = map { $_->{kid} => 1 } grep { $_->{status} eq 'previous' } @{ keys_now() };
my %RET0  = map { $_->{kid} => 1 } grep { $_->{status} eq 'retired' } @{ keys_now() };
sub new_previous { my ($s) = @_; return [sort grep { !$PREV0{$_} } @{ $s->{previous} // [] }] }
sub new_retired  { my ($s) = @_; return [sort grep { !$RET0{$_} } @{ $s->{retired} // [] }] }

# ---- helpers ----

sub header_of { my ($h) = jwt_parts($_[0]); return $h // {} }
sub kid_of    { header_of($_[0])->{kid} // '' }

# the keys as GET /api/v1/admin/keys lists them, and by status: { status => [kid, ...] }
sub keys_now {
  my ($base) = @_;
  my $r = req(GET => $KEYS, token => $SA, (defined $base ? (base => $base) : ()));
  die "GET $KEYS: $r->{status} $r->{content}\n" unless $r->{status} == 200 && ref $r->{json}{items} eq 'ARRAY';
  return $r->{json}{items};
}

sub by_status {
  my ($items) = @_;
  my %s;
  push @{ $s{ $_->{status} } }, $_->{kid} for @$items;
  return \%s;
}

sub key_row { my ($kid) = @_; my ($k) = grep { $_->{kid} eq $kid } @{ keys_now() }; return $k }

sub rotate {
  my ($token, %o) = @_;
  return req(POST => $ROTATE, token => $token, (defined $o{base} ? (base => $o{base}) : ()));
}

# calls $make until $check accepts what it made (or $secs pass); returns the last result
sub eventually {
  my ($make, $check, $secs) = @_;
  my $deadline = time() + ($secs // $RELOAD);
  my $v;
  while (1) {
    $v = $make->();
    return $v if $check->($v) || time() > $deadline;
    sleep 0.3;
  }
}

sub jwks_kids { my ($j) = @_; return { map { $_->{kid} => $_ } @{ $j->{keys} // [] } } }

sub jwks_with {
  my ($want, %o) = @_;    # $want: kids that must all be listed
  return eventually(sub { scalar jwks(%o) },
                    sub { my $k = jwks_kids($_[0]); !grep { !$k->{$_} } @$want });
}

sub jwks_without {
  my ($gone, %o) = @_;
  return eventually(sub { scalar jwks(%o) }, sub { !jwks_kids($_[0])->{$gone} });
}

# a token of the admin signed with $kid (each process uses the new key within $RELOAD seconds)
sub admin_token_with_kid {
  my ($kid, %o) = @_;
  return eventually(sub { admin_token(%o) }, sub { kid_of($_[0]) eq $kid });
}

# delays the moment a previous key stopped signing (updated_at, kept by a trigger) by $secs
sub stopped_signing_ago {
  my ($kid, $secs) = @_;
  psql("SET session_replication_role = replica; "
       . "UPDATE signing_keys SET updated_at = now() - make_interval(secs => $secs) WHERE kid = "
       . sql_quote($kid) . "; RESET session_replication_role");
}

sub me_status { my ($t, %o) = @_; return req(GET => $ME, token => $t, %o)->{status} }

# ---- callers ----

my $writer = admin_create($SA, 'applications', {
  name => 'keys writer', application_type => 'SERVICE', scope => 'GLOBAL',
  allowed_scopes => ['admin:read', 'admin:write'] });
my $reader = admin_create($SA, 'applications', {
  name => 'keys reader', application_type => 'SERVICE', scope => 'GLOBAL', allowed_scopes => ['admin:read'] });
my $tenant  = create_tenant();
my $partner = admin_create($SA, 'partners', { name => 'Keys partner', slug => unique_slug('keys-p') });
my $ta = create_user(role => 'tenant_admin', tenant_id => $tenant->{id}, prefix => 'keys-ta');
my $pa = create_user(role => 'partner_admin', partner_id => $partner->{id}, prefix => 'keys-pa');
my $TA = admin_token(email => $ta->{email}, password => $ta->{password});
my $PA = admin_token(email => $pa->{email}, password => $pa->{password});
my $PW = client_token(id => $writer->{client_id}, secret => $writer->{client_secret});
my $PR = client_token(id => $reader->{client_id}, secret => $reader->{client_secret});
my $SA_ID = psql('SELECT id FROM users WHERE lower(email) = lower(' . sql_quote(admin_email()) . ')');

# the longest token lifetime the rotation honours, and its margin (clock skew 30 + 10 + 30)
my $LIFE = psql("SELECT greatest(3600, coalesce((SELECT max(token_lifetime) FROM applications), 0), "
                . "CASE WHEN EXISTS (SELECT 1 FROM mcp_agents) THEN 3600 ELSE 0 END)");
my $MARGIN = 70;

subtest 'after start-up: a current and a next key, published' => sub {
  my $items = keys_now();
  my $s = by_status($items);
  my @cur = grep { $_->{status} eq 'current' && $_->{alg} eq 'RS256' } @$items;
  is(scalar @cur, 1, 'one current RS256 key');
  my @next = grep { $_->{status} eq 'next' && $_->{alg} eq 'RS256' } @$items;
  is(scalar @next, 1, 'one next RS256 key');
  for my $k (@$items) {
    is_deeply([sort keys %$k], [qw(activated_at alg created_at kid retired_at status)],
              "key $k->{kid}: kid, alg, status and times only");
  }
  like($cur[0]{activated_at} // '', qr/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z/, 'the current key has activated_at');
  ok(!defined $next[0]{activated_at}, 'the next key has not been activated');
  my $j = jwks_with([map { $_->{kid} } @cur, @next]);
  my $k = jwks_kids($j);
  ok($k->{ $cur[0]{kid} } && $k->{ $next[0]{kid} }, 'the JWKS lists the current and the next key');
  is(kid_of(admin_token()), $cur[0]{kid}, 'tokens are signed with the current key');
};

subtest 'permissions' => sub {
  is(req(GET => $KEYS)->{status}, 401, 'no token: 401');
  is(req(POST => $ROTATE)->{status}, 401, 'rotate without token: 401');
  for ([$TA, 'tenant_admin'], [$PA, 'partner_admin']) {
    my ($t, $who) = @$_;
    my $r = req(GET => $KEYS, token => $t);
    is($r->{status}, 403, "$who: list 403");
    ok(is_json_error($r), "$who: JSON error body");
    is(rotate($t)->{status}, 403, "$who: rotate 403");
  }
  my $r = req(GET => $KEYS, token => $PR);
  is($r->{status}, 200, 'platform token with admin:read: list 200');
  $r = rotate($PR);
  is($r->{status}, 403, 'platform token with admin:read only: rotate 403');
  like($r->{json}{detail} // '', qr/admin:write/, 'the answer names admin:write');
  is(req(GET => $KEYS, token => $PW)->{status}, 200, 'platform token with admin:write: list 200');
  is(psql("SELECT count(*) FROM audit_log WHERE action = 'key.rotate'"), $ROTATIONS0,
     'refused rotations changed nothing');
};

my ($K0, $N0, $N1, $N2);    # kids: the first current key, the first next key, ...

subtest 'manual rotation while tokens are outstanding' => sub {
  my $s = by_status(keys_now());
  ($K0, $N0) = ($s->{current}[0], $s->{next}[0]);
  my $old_admin = admin_token();
  my $old_platform = client_token(id => $reader->{client_id}, secret => $reader->{client_secret});
  is(kid_of($old_admin), $K0, 'an admin token signed with the current key');
  is(kid_of($old_platform), $K0, 'a platform token signed with the current key');

  my $r = rotate($SA);
  is($r->{status}, 200, 'POST rotate: 200') or diag($r->{content});
  is_deeply([sort keys %{ $r->{json} // {} }], [qw(current next previous)], 'answer: current, next, previous');
  is($r->{json}{current}, $N0, 'the next key became current');
  is($r->{json}{previous}, $K0, 'the current key became previous');
  $N1 = $r->{json}{next};
  ok($N1 && $N1 ne $N0 && $N1 ne $K0, 'a new next key');
  like($r->{headers}{'cache-control'} // '', qr/no-store/, 'not cacheable');

  $s = by_status(keys_now());
  is_deeply($s->{current}, [$N0], 'list: current');
  is_deeply($s->{next}, [$N1], 'list: next');
  is_deeply(new_previous($s), [$K0], 'list: previous (keys that were previous before stay so)');
  my $k = key_row($N0);
  ok(defined $k->{activated_at}, 'the new current key has activated_at');

  my $j = jwks_with([$K0, $N0, $N1]);
  my $jk = jwks_kids($j);
  ok($jk->{$K0} && $jk->{$N0} && $jk->{$N1}, 'the JWKS lists previous, current and next');
  for ([$old_admin, 'admin token'], [$old_platform, 'platform token']) {
    my ($t, $what) = @$_;
    my ($h, $c) = eval { verify_jwt($t, $j) };
    ok($c, "$what signed before the rotation verifies with Crypt::JWT against the JWKS") or diag($@);
  }
  is(me_status($old_admin), 200, 'GET /auth/me accepts the admin token signed before the rotation');
  is(req(GET => $KEYS, token => $old_platform)->{status}, 200, 'the old platform token is still accepted');

  my $new_admin = admin_token_with_kid($N0);
  is(kid_of($new_admin), $N0, 'new admin tokens carry the new kid');
  my $new_platform = eventually(sub { client_token(id => $reader->{client_id}, secret => $reader->{client_secret}) },
                                sub { kid_of($_[0]) eq $N0 });
  is(kid_of($new_platform), $N0, 'new platform tokens carry the new kid');
  my (undef, $c) = eval { verify_jwt($new_admin, $j) };
  ok($c, 'a new token verifies with Crypt::JWT against the JWKS') or diag($@);
  is(me_status($new_admin), 200, 'and is accepted');

  my @audit = psql("SELECT actor_id || '|' || actor_type || '|' || result || '|' || resource_type || '|' || "
                   . "resource_id || '|' || (details->>'previous') || '|' || (details->>'next') || '|' || "
                   . "(details->>'trigger') FROM audit_log WHERE action = 'key.rotate' AND resource_id = "
                   . sql_quote($N0));
  is_deeply(\@audit, ["$SA_ID|admin|success|signing_key|$N0|$K0|$N1|manual"],
            'one audit row key.rotate: actor, new current key, previous and next');
};

subtest 'retirement only once a key stopped signing longer ago than the token lifetime' => sub {
  my $k0_admin = $SA;
  $SA = admin_token_with_kid($N0);    # the first key will be retired below
  my $old_admin = $SA;
  # second rotation, by a platform token with admin:write
  my $r = rotate($PW);
  is($r->{status}, 200, 'second rotation (platform token with admin:write): 200') or diag($r->{content});
  is($r->{json}{current}, $N1, 'current');
  is($r->{json}{previous}, $N0, 'previous');
  $N2 = $r->{json}{next};
  my $s = by_status(keys_now());
  is_deeply(new_previous($s), [sort $K0, $N0], 'the first key stays previous: it stopped signing just now');
  is_deeply(new_retired($s), [], 'nothing retired');
  is(psql("SELECT actor_id || '|' || actor_type FROM audit_log WHERE action = 'key.rotate' AND resource_id = "
          . sql_quote($N1)), "$writer->{client_id}|service", 'audited with the platform client as actor');

  # third rotation: the first key stopped signing not quite a token lifetime ago
  stopped_signing_ago($K0, $LIFE - 120);
  $r = rotate($SA);
  is($r->{status}, 200, 'third rotation: 200');
  $s = by_status(keys_now());
  ok((grep { $_ eq $K0 } @{ $s->{previous} // [] }), 'a key younger than the token lifetime stays previous');
  is_deeply(new_retired($s), [], 'nothing retired');
  my $N3 = $r->{json}{next};

  # fourth: now it stopped signing longer ago than the lifetime (and the margin)
  stopped_signing_ago($K0, $LIFE + $MARGIN + 120);
  $r = rotate($SA);
  is($r->{status}, 200, 'fourth rotation: 200');
  is($r->{json}{current}, $N3, 'current');
  my $k = key_row($K0);
  is($k->{status}, 'retired', 'the oldest key is retired');
  like($k->{retired_at} // '', qr/\A\d{4}-\d\d-\d\dT/, 'with retired_at');
  $s = by_status(keys_now());
  is_deeply(new_previous($s), [sort $N0, $N1, $N2], 'the younger previous keys stay');
  is_deeply(new_retired($s), [$K0], 'only the oldest key was retired');
  is(psql("SELECT details->>'retired' FROM audit_log WHERE action = 'key.rotate' AND resource_id = "
          . sql_quote($N3)), qq{["$K0"]}, 'the audit row names the retired key');
  my $j = jwks_without($K0);
  ok(!jwks_kids($j)->{$K0}, 'the retired key left the JWKS');
  ok(jwks_kids($j)->{$N0}, 'the previous keys are still published');
  my (undef, $c) = eval { verify_jwt($old_admin, $j) };
  ok($c, 'a token of a previous key still verifies with Crypt::JWT') or diag($@);
  is(me_status($old_admin), 200, 'and is accepted');
  is(eventually(sub { me_status($k0_admin) }, sub { $_[0] == 401 }), 401,
     'a token of the retired key is refused (here before its exp, as time was simulated)');
  is(psql("SELECT count(*) FROM signing_keys WHERE status = 'next'"), 1, 'exactly one next key');
};

subtest 'switching a server to ES256 against the same database' => sub {
  # every process signs with the current key once it has reloaded (the rotations above came
  # seconds apart, so one may still sign with a key the simulated clock has since retired)
  my $rs_kid = by_status(keys_now())->{current}[0];
  my $rs_token = admin_token_with_kid($rs_kid);
  # /r is guarded with neither cache: every request checks the token's signature again
  my ($ES, $guard) = extra_apache("ScaiKeySigningAlg ES256\nScaiKeyProcessCache off\nScaiKeyCache none\n"
                                  . whoami_location(1), base());
  ok($ES, 'a second server with ScaiKeySigningAlg ES256 started') or return;
  my $items = keys_now();
  my @es_cur = map { $_->{kid} } grep { $_->{alg} eq 'ES256' && $_->{status} eq 'current' } @$items;
  my @es_next = map { $_->{kid} } grep { $_->{alg} eq 'ES256' && $_->{status} eq 'next' } @$items;
  is(scalar @es_cur, 1, 'its start created an ES256 current key');
  is(scalar @es_next, 1, 'and an ES256 next key');
  is(scalar(grep { $_->{alg} eq 'RS256' && $_->{status} eq 'current' } @$items), 1,
     'the RS256 current key is still there');

  my $es_token = admin_token(base => $ES);
  is(header_of($es_token)->{alg}, 'ES256', 'its tokens are ES256');
  is(kid_of($es_token), $es_cur[0], 'signed with the ES256 current key');

  # Past 64 checks a process checks an ES256 key's signatures with the key's own table
  # (core/es256.c): 4 clients x 100 requests, spread over both processes, then forgeries.
  my $refused = 0;
  $refused += $_ for at_once(4, sub {
    scalar grep { req(GET => '/r', base => $ES, token => $es_token)->{status} != 200 } 1 .. 100
  });
  is($refused, 0, 'an ES256 token checked 400 times by the guard, from 4 clients at once: always accepted');
  my ($h64, $p64, $s64) = split /\./, $es_token;
  my $sig = b64url_decode($s64);
  my @forged;
  for my $i (0, 13, 31, 32, 50, 63) {
    my $b = $sig;
    substr($b, $i, 1) = chr(ord(substr($b, $i, 1)) ^ 0x04);
    push @forged, "$h64.$p64." . b64url($b);
  }
  push @forged, "$h64.$p64." . b64url("\0" x 64), "$h64.$p64." . b64url(substr($sig, 32) . substr($sig, 0, 32));
  my @answers = map { req(GET => '/r', base => $ES, token => $_)->{status} } (@forged) x 3;
  is_deeply([grep { $_ != 401 } @answers], [], 'signatures changed by a bit, zero or with r and s swapped: 401 each time');
  is(req(GET => '/r', base => $ES, token => $es_token)->{status}, 200, 'the genuine token still 200');

  my $j = jwks_with([$es_cur[0], $es_next[0], $rs_kid], base => $ES);
  my (undef, $c) = eval { verify_jwt($es_token, $j) };
  ok($c, 'the ES256 token verifies with Crypt::JWT against the JWKS') or diag($@);
  ($c) = (eval { verify_jwt($rs_token, $j) })[1];
  ok($c, 'an RS256 token verifies against the same JWKS');
  is(me_status($rs_token, base => $ES), 200, 'the ES256 server accepts RS256 tokens');
  is(me_status($es_token), 200, 'the RS256 server accepts the ES256 token (a kid new to it)');
  is(header_of(admin_token())->{alg}, 'RS256', 'the RS256 server still signs RS256');

  # a rotation on the ES256 server moves the installation to ES256
  my $r = rotate($SA, base => $ES);
  is($r->{status}, 200, 'rotation on the ES256 server: 200') or diag($r->{content});
  is($r->{json}{current}, $es_next[0], 'the ES256 next key became current');
  is($r->{json}{previous}, $es_cur[0], 'the ES256 current key became previous');
  my @rs = psql("SELECT status FROM signing_keys WHERE alg = 'RS256' AND status <> 'retired'");
  ok(@rs && !grep({ $_ ne 'previous' } @rs), 'the RS256 keys still published are previous: they verify until retired');
  is(psql("SELECT count(*) FROM signing_keys WHERE alg = 'RS256' AND status IN ('current', 'next')"), 0,
     'no RS256 current or next key');
  is(me_status($rs_token), 200, 'the RS256 token is still accepted by the RS256 server');
  is(me_status($rs_token, base => $ES), 200, 'and by the ES256 server');
  $j = jwks_with([$rs_kid, $es_next[0]], base => $ES);
  ($c) = (eval { verify_jwt($rs_token, $j) })[1];
  ok($c, 'and still verifies with Crypt::JWT') or diag($@);
  my $t = eventually(sub { admin_token() }, sub { header_of($_[0])->{alg} eq 'ES256' });
  is(kid_of($t), $es_next[0], 'the RS256-configured server now signs with the ES256 current key');
  $guard->stop;

  # a rotation on the RS256 server moves it back
  $r = rotate($SA);
  is($r->{status}, 200, 'rotation on the RS256 server: 200');
  my $rs_cur = $r->{json}{current};
  is(key_row($rs_cur)->{alg}, 'RS256', 'an RS256 key is current again');
  is($r->{json}{previous}, undef, 'no RS256 key was current before: previous is null');
  my $s = by_status(keys_now());
  ok((grep { $_ eq $es_next[0] } @{ $s->{previous} }), 'the ES256 current key became previous');
  is(psql("SELECT count(*) FROM signing_keys WHERE alg = 'ES256' AND status = 'next'"), 0,
     'the ES256 next key was retired');
  $t = admin_token_with_kid($rs_cur);
  is(header_of($t)->{alg}, 'RS256', 'RS256 tokens again');
  is(me_status($es_token), 200, 'the ES256 token still verifies');
};

subtest 'scheduled rotation (mod_watchdog)' => sub {
  my $before = by_status(keys_now());
  my $cur0 = $before->{current}[0];
  my $old = admin_token_with_kid($cur0);
  my $t0 = psql("SELECT now()");
  my $conf = "ScaiKeyKeyRotationInterval 2\nScaiKeyKeyRotationCheck 1";
  my ($W1, $g1) = extra_apache($conf, base());
  ok($W1, 'a server with ScaiKeyKeyRotationInterval 2 started') or return;
  my $s = eventually(sub { by_status(keys_now()) }, sub { ($_[0]{current}[0] // '') ne $cur0 }, 15);
  isnt($s->{current}[0], $cur0, 'the watchdog rotated the keys');
  ok($s->{next} && @{ $s->{next} } == 1, 'with a new next key');
  my $row = psql("SELECT actor_type || '|' || (details->>'trigger') || '|' || coalesce(actor_id, '-') "
                 . "FROM audit_log WHERE action = 'key.rotate' AND occurred_at >= " . sql_quote($t0)
                 . " ORDER BY id LIMIT 1");
  is($row, 'system|schedule|-', 'audited as a scheduled rotation by the system');

  # two servers checking every second: still one rotation per interval
  my ($W2, $g2) = extra_apache($conf, base());
  ok($W2, 'a second such server started') or return;
  my $t1 = psql("SELECT now()");
  sleep 7;
  my @act = psql("SELECT extract(epoch FROM activated_at) FROM signing_keys WHERE activated_at > "
                 . sql_quote($t1) . " ORDER BY activated_at");
  cmp_ok(scalar @act, '>=', 2, 'rotations went on (' . scalar(@act) . ' in 7 s)');
  my @gaps = map { $act[$_] - $act[$_ - 1] } 1 .. $#act;
  ok(!grep({ $_ < 1.9 } @gaps), 'never two rotations within the interval')
    or diag("gaps between activations: @gaps");
  is(me_status($old), 200, 'a token signed before the scheduled rotations is still accepted');
  is(psql("SELECT count(*) FROM signing_keys WHERE status = 'current'"), 1, 'one current key');
  is(psql("SELECT count(*) FROM signing_keys WHERE status = 'next'"), 1, 'one next key');
  $g2->stop;
  $g1->stop;

  # the main server's own schedule (default 90 days) does not rotate these young keys
  my $cur = by_status(keys_now())->{current}[0];
  sleep 2;
  is(by_status(keys_now())->{current}[0], $cur, 'no rotation without a due key');
  open(my $fh, '<', $ENV{SK_ERROR_LOG}) or die "$ENV{SK_ERROR_LOG}: $!";
  seek($fh, $LOG0, 0);
  my @failed = grep { /SK251[15]/ } <$fh>;
  is(scalar @failed, 0, 'no failed check was logged during this test') or diag(@failed);
  my $t = admin_token_with_kid($cur);
  is(me_status($t), 200, 'tokens of the current key work');

  # leave the keys settled for whatever runs next: every process of the server publishes the
  # current and the next key (they rotated every two seconds above)
  my $k = by_status(keys_now());
  my $settled = 0;
  my $deadline = time() + $RELOAD;
  while (time() < $deadline && $settled < 8) {
    my $j = jwks_kids(scalar jwks());
    $settled = ($j->{ $k->{current}[0] } && $j->{ $k->{next}[0] }) ? $settled + 1 : 0;
    sleep 0.2 unless $settled;
  }
  is($settled, 8, 'every process publishes the current and the next key again');
};

done_testing();
