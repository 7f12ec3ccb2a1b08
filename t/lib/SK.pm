package SK;

# Helpers for the mod_scaikey integration tests (t/*.t).
#
# The tests talk HTTP to a running server (SK_BASE_URL) and inspect its
# PostgreSQL database through SK_PSQL. See t/lib/harness.sh for how the
# environment is prepared.

use strict;
use warnings;

use Exporter 'import';
use HTTP::Tiny;
use JSON::PP ();
use MIME::Base64 qw(encode_base64 decode_base64);
use Digest::SHA qw(hmac_sha256 hmac_sha384 hmac_sha512 sha256_hex);
use File::Temp qw(tempdir tempfile);
use Time::HiRes ();
use POSIX ();
use File::Path ();

our @EXPORT_OK = qw(
  base req admin_login psql psql_try sql_quote unique_ip unique_email unique_slug
  b64url b64url_decode forge_jwt jwt_parts jwks verify_jwt extra_apache
  create_tenant create_user admin_email admin_password is_json_error access_token_ok
  verrors find_verror
);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

# ---------------------------------------------------------------------------
# HTTP

sub base {
  my $b = $ENV{SK_BASE_URL} // '';
  $b =~ s{/+\z}{};
  return $b;
}

sub admin_email    { $ENV{SK_ADMIN_EMAIL} }
sub admin_password { $ENV{SK_ADMIN_PASSWORD} }

my $HTTP;

sub _http {
  $HTTP //= HTTP::Tiny->new(
    timeout      => 60,
    max_redirect => 0,
    keep_alive   => 0,
    agent        => 'scaikey-tests/1',
  );
  return $HTTP;
}

# req($method, $path, %opt)
#   json    => perl data, sent as application/json
#   raw     => string body (Content-Type application/json unless given in headers)
#   headers => { name => value }
#   token   => bearer token (Authorization: Bearer ...)
#   ip      => client address sent as X-Forwarded-For
#   ua      => User-Agent
#   base    => another base URL
# Returns { status, reason, headers (lower-case names), content, json (decoded
# body or undef), elapsed (seconds), url }. Status 599 means no HTTP answer.
sub req {
  my ($method, $path, %opt) = @_;
  my $url = ($opt{base} // base()) . $path;
  my %h = %{ $opt{headers} // {} };
  my %lc = map { lc($_) => $_ } keys %h;

  my $body;
  if (exists $opt{json}) {
    $body = $JSON->encode($opt{json});
  } elsif (exists $opt{raw}) {
    $body = $opt{raw};
    utf8::encode($body) if utf8::is_utf8($body);
  }
  if (defined $body && !exists $lc{'content-type'}) {
    $h{'Content-Type'} = 'application/json';
  }
  if (defined $opt{token} && !exists $lc{authorization}) {
    $h{Authorization} = "Bearer $opt{token}";
  }
  $h{'X-Forwarded-For'} = $opt{ip} if defined $opt{ip} && !exists $lc{'x-forwarded-for'};
  $h{'User-Agent'}      = $opt{ua} if defined $opt{ua} && !exists $lc{'user-agent'};

  my %args = (headers => \%h);
  $args{content} = $body if defined $body;
  my $t0  = Time::HiRes::time();
  my $res = _http()->request($method, $url, \%args);
  my $elapsed = Time::HiRes::time() - $t0;

  my $json;
  if (defined $res->{content} && length $res->{content}) {
    $json = eval { $JSON->decode($res->{content}) };
  }
  return {
    status  => $res->{status},
    reason  => $res->{reason},
    headers => $res->{headers} // {},
    content => $res->{content} // '',
    json    => $json,
    elapsed => $elapsed,
    url     => $url,
  };
}

# True when the response carries a JSON error body {"detail": ...}
# with an application/json content type.
sub is_json_error {
  my ($r) = @_;
  my $ct = $r->{headers}{'content-type'} // '';
  return 0 unless $ct =~ m{^application/json\b}i;
  return 0 unless ref $r->{json} eq 'HASH';
  return exists $r->{json}{detail} ? 1 : 0;
}

# Validation errors of a 422 answer: the list of {loc, msg, type} objects.
sub verrors {
  my ($r) = @_;
  my $d = ref $r->{json} eq 'HASH' ? $r->{json}{detail} : undef;
  return ref $d eq 'ARRAY' ? grep { ref $_ eq 'HASH' } @$d : ();
}

# The first validation error whose loc is exactly @$loc (undef if none).
sub find_verror {
  my ($r, $loc) = @_;
  my $want = join "\0", @$loc;
  for my $e (verrors($r)) {
    next unless ref $e->{loc} eq 'ARRAY';
    return $e if join("\0", map { $_ // '' } @{ $e->{loc} }) eq $want;
  }
  return undef;
}

# admin_login(email => ..., password => ..., ip => ..., ua => ..., base => ...)
# In scalar context returns the decoded JSON of a 200 answer, undef otherwise.
# In list context returns ($json_or_undef, $response).
sub admin_login {
  my (%opt) = @_;
  my $email    = exists $opt{email}    ? $opt{email}    : admin_email();
  my $password = exists $opt{password} ? $opt{password} : admin_password();
  my $r = req(
    POST => '/api/v1/admin/auth/login',
    json => { email => $email, password => $password },
    ip   => $opt{ip} // unique_ip(),
    (defined $opt{ua}   ? (ua   => $opt{ua})   : ()),
    (defined $opt{base} ? (base => $opt{base}) : ()),
  );
  my $json = ($r->{status} == 200 && ref $r->{json} eq 'HASH') ? $r->{json} : undef;
  return wantarray ? ($json, $r) : $json;
}

# ---------------------------------------------------------------------------
# Database

sub sql_quote {
  my ($s) = @_;
  return 'NULL' unless defined $s;
  $s =~ s/'/''/g;
  return "'$s'";
}

# psql_try($sql): runs $SK_PSQL -v ON_ERROR_STOP=1 -c $sql.
# Returns ($exit_code, \@output_lines, $stderr_text).
sub psql_try {
  my ($sql) = @_;
  die "SK_PSQL is not set\n" unless $ENV{SK_PSQL};
  my ($efh, $efile) = tempfile('sk-psql-XXXXXX', TMPDIR => 1, UNLINK => 1);
  my $pid = open(my $out, '-|');
  die "fork: $!" unless defined $pid;
  if (!$pid) {
    open(STDERR, '>&', $efh) or die "stderr: $!";
    open(STDIN, '<', '/dev/null');
    # The SQL is passed as a positional argument, never interpolated into
    # the shell command line.
    exec('sh', '-c', $ENV{SK_PSQL} . ' -v ON_ERROR_STOP=1 -c "$1"', 'sh', $sql)
      or do { print STDERR "exec: $!\n"; POSIX::_exit(127) };
  }
  local $/ = "\n";
  my @lines = <$out>;
  close($out);
  my $rc = $? >> 8;
  chomp @lines;
  pop @lines while @lines && $lines[-1] eq '';
  seek($efh, 0, 0);
  my $err = do { local $/; <$efh> } // '';
  close($efh);
  return ($rc, \@lines, $err);
}

# psql($sql): output lines (columns separated by '|'); dies on error.
sub psql {
  my ($sql) = @_;
  my ($rc, $lines, $err) = psql_try($sql);
  die "psql failed (exit $rc) for [$sql]: $err\n" if $rc != 0;
  return wantarray ? @$lines : $lines->[0];
}

sub _rand_tag {
  return sprintf('%d%04x%04x', $$, int(rand(0x10000)), int(rand(0x10000)));
}

sub unique_email {
  my ($prefix) = @_;
  $prefix //= 'sk';
  return lc("$prefix-" . _rand_tag() . '@example.test');
}

sub unique_slug {
  my ($prefix) = @_;
  $prefix //= 'skt';
  return lc("$prefix-" . _rand_tag());
}

# A random 10.x.y.z address, used as X-Forwarded-For so that each test acts
# as its own client (the server trusts that header from the loopback peer).
my %ips_given;
sub unique_ip {
  for (1 .. 1000) {
    my $ip = sprintf('10.%d.%d.%d', int(rand(256)), int(rand(256)), 1 + int(rand(254)));
    next if $ips_given{$ip}++;
    return $ip;
  }
  die "unique_ip: no address left\n";
}

# create_tenant(name => ..., slug => ..., status => ...) -> { id, slug, name }
sub create_tenant {
  my (%o) = @_;
  my $slug = $o{slug} // unique_slug();
  my $name = $o{name} // "Test tenant $slug";
  my @cols = ('name', 'slug');
  my @vals = (sql_quote($name), sql_quote($slug));
  if (defined $o{status}) { push @cols, 'status'; push @vals, sql_quote($o{status}) }
  my $id = psql(sprintf('INSERT INTO tenants (%s) VALUES (%s) RETURNING id',
                        join(', ', @cols), join(', ', @vals)));
  die "create_tenant: no id returned\n" unless defined $id && length $id;
  return { id => $id, slug => $slug, name => $name };
}

# create_user(role => 'super_admin', tenant_id => ..., partner_id => ...,
#             status => 'ACTIVE', email => ..., first_name/last_name/display_name)
# The new user gets the bootstrap admin's password hash, hence the password
# $ENV{SK_ADMIN_PASSWORD}. Returns { id, email, password, ... }.
sub create_user {
  my (%o) = @_;
  my $email = $o{email} // unique_email($o{prefix} // 'sk-user');
  my $role  = $o{role}  // 'super_admin';
  my %col = (
    email        => $email,
    role         => $role,
    status       => $o{status} // 'ACTIVE',
    first_name   => exists $o{first_name}   ? $o{first_name}   : 'Tess',
    last_name    => exists $o{last_name}    ? $o{last_name}    : 'Tester',
    display_name => exists $o{display_name} ? $o{display_name} : 'Tess Tester',
  );
  $col{tenant_id}  = $o{tenant_id}  if defined $o{tenant_id};
  $col{partner_id} = $o{partner_id} if defined $o{partner_id};
  my @names = sort keys %col;
  my $sql = sprintf(
    'INSERT INTO users (%s, password_hash) SELECT %s, password_hash FROM users '
      . 'WHERE lower(email) = lower(%s) AND deleted_at IS NULL '
      . 'ORDER BY id LIMIT 1 RETURNING id',
    join(', ', @names),
    join(', ', map { sql_quote($col{$_}) } @names),
    sql_quote(admin_email()),
  );
  my $id = psql($sql);
  die "create_user: the bootstrap admin was not found (no id returned)\n"
    unless defined $id && length $id;
  return { %col, id => $id, password => admin_password() };
}

# ---------------------------------------------------------------------------
# JOSE helpers

sub b64url {
  my ($bytes) = @_;
  my $s = encode_base64($bytes, '');
  $s =~ tr{+/}{-_};
  $s =~ s/=+\z//;
  return $s;
}

sub b64url_decode {
  my ($s) = @_;
  return undef unless defined $s && $s =~ /\A[A-Za-z0-9_-]*\z/;
  $s =~ tr{-_}{+/};
  $s .= '=' x ((4 - length($s) % 4) % 4);
  return decode_base64($s);
}

# jwt_parts($token) -> ($header_hashref, $claims_hashref, $signature_bytes)
# Decodes without any verification; undef members where a part is not JSON.
sub jwt_parts {
  my ($token) = @_;
  my @p = split /\./, $token, -1;
  return () unless @p == 3;
  my $h = eval { $JSON->decode(b64url_decode($p[0]) // '') };
  my $c = eval { $JSON->decode(b64url_decode($p[1]) // '') };
  return ($h, $c, b64url_decode($p[2]));
}

# forge_jwt($header, $claims, $signing)
#   $header / $claims: hashref (JSON-encoded) or a string (used verbatim)
#   $signing:
#     undef                 -> empty signature ("h.p.")
#     CODE ref              -> called with "h.p", returns raw signature bytes
#     { hmac => $key }      -> HS256/384/512 according to header alg
#     { rsa  => $pk }       -> Crypt::PK::RSA private key, RS256/384/512 (PKCS#1 v1.5)
#     { ecc  => $pk }       -> Crypt::PK::ECC private key, ES256/384/512 (JOSE r||s)
#     { signature => $b64 } -> this exact (already base64url) signature segment
sub forge_jwt {
  my ($header, $claims, $signing) = @_;
  my $alg = ref $header ? ($header->{alg} // '') : '';
  my $h = ref $header ? $JSON->encode($header) : $header;
  my $c = ref $claims ? $JSON->encode($claims) : $claims;
  my $input = b64url($h) . '.' . b64url($c);
  my $sig = '';
  if (!defined $signing) {
    $sig = '';
  } elsif (ref $signing eq 'CODE') {
    $sig = b64url($signing->($input));
  } elsif (ref $signing eq 'HASH' && exists $signing->{signature}) {
    $sig = $signing->{signature};
  } elsif (ref $signing eq 'HASH' && exists $signing->{hmac}) {
    my %f = (HS256 => \&hmac_sha256, HS384 => \&hmac_sha384, HS512 => \&hmac_sha512);
    my $f = $f{$alg} // \&hmac_sha256;
    $sig = b64url($f->($input, $signing->{hmac}));
  } elsif (ref $signing eq 'HASH' && exists $signing->{rsa}) {
    my ($bits) = $alg =~ /(\d+)\z/;
    $bits ||= 256;
    my $pad = $alg =~ /^PS/ ? 'pss' : 'v1.5';
    $sig = b64url($signing->{rsa}->sign_message($input, "SHA$bits", $pad));
  } elsif (ref $signing eq 'HASH' && exists $signing->{ecc}) {
    my ($bits) = $alg =~ /(\d+)\z/;
    $bits ||= 256;
    $sig = b64url($signing->{ecc}->sign_message_rfc7518($input, "SHA$bits"));
  } else {
    die "forge_jwt: unknown signing spec\n";
  }
  return "$input.$sig";
}

# jwks(%opt) -> ($decoded_jwks_or_undef, $response); opt: slug => tenant slug, base => url
sub jwks {
  my (%opt) = @_;
  my $path = defined $opt{slug}
    ? "/api/v1/auth/tenants/$opt{slug}/.well-known/jwks.json"
    : '/api/v1/platform/.well-known/jwks.json';
  my $r = req(GET => $path, (defined $opt{base} ? (base => $opt{base}) : ()));
  my $j = ($r->{status} == 200 && ref $r->{json} eq 'HASH') ? $r->{json} : undef;
  return wantarray ? ($j, $r) : $j;
}

# verify_jwt($token, $jwks, %decode_jwt_options)
# Verifies a token with the independent Crypt::JWT library against the given
# JWKS (the algorithm accepted is the one the JWKS lists for the token's kid).
# Returns ($header, $claims) or dies with the library's reason.
sub verify_jwt {
  my ($token, $jwks, %o) = @_;
  require Crypt::JWT;
  my ($h) = jwt_parts($token);
  die "not a JWS compact token\n" unless ref $h eq 'HASH';
  my ($k) = grep { defined $_->{kid} && defined $h->{kid} && $_->{kid} eq $h->{kid} }
    @{ $jwks->{keys} // [] };
  die "kid not in the JWKS\n" unless $k;
  die "JWKS key has no alg\n" unless defined $k->{alg};
  return Crypt::JWT::decode_jwt(
    token         => $token,
    kid_keys      => $jwks,
    accepted_alg  => $k->{alg},
    decode_header => 1,
    %o,
  );
}

# access_token_ok($token, $jwks, user => {...}, expires_in => N, name => '...')
# Runs the Test::More assertions every admin access token must pass and
# returns ($header, $claims) (undef when the token does not verify).
sub access_token_ok {
  my ($token, $jwks, %e) = @_;
  require Test::More;
  my $name = $e{name} // 'access token';
  my $u    = $e{user} // {};
  my $ok = sub { Test::More::ok($_[0], "$name: $_[1]") };
  my $is = sub { Test::More::is($_[0], $_[1], "$name: $_[2]") };

  my @seg = split /\./, ($token // ''), -1;
  $is->(scalar @seg, 3, 'compact JWS with three segments') or return;
  my ($h, $c) = eval { verify_jwt($token, $jwks) };
  $ok->($c, 'signature verifies against the published JWKS (Crypt::JWT)')
    or do { Test::More::diag("decode_jwt: $@"); return };

  my ($k) = grep { ($_->{kid} // '') eq ($h->{kid} // '') } @{ $jwks->{keys} };
  $is->($h->{alg}, $k->{alg}, 'header alg is the alg of the JWKS key');
  $is->($h->{typ}, 'at+jwt', 'header typ at+jwt');

  $is->($c->{iss}, base() . '/api/v1/platform/oauth', 'iss');
  $is->($c->{sub}, $u->{id}, 'sub is the user id') if defined $u->{id};
  my $aud = $c->{aud};
  $ok->((defined $aud && !ref $aud && $aud eq 'scaikey-admin')
          || (ref $aud eq 'ARRAY' && grep { $_ eq 'scaikey-admin' } @$aud),
        'aud scaikey-admin');
  my $num = sub { defined $_[0] && !ref $_[0] && $_[0] =~ /\A\d+\z/ };
  $ok->($num->($c->{iat}) && $num->($c->{exp}), 'iat and exp are integers');
  $ok->(($c->{exp} // 0) > ($c->{iat} // 0), 'exp > iat');
  $is->(($c->{exp} // 0) - ($c->{iat} // 0), $e{expires_in}, 'exp - iat == expires_in')
    if defined $e{expires_in};
  $ok->(abs(($c->{iat} // 0) - time()) < 300, 'iat is close to the current time');
  $ok->(defined $c->{jti} && !ref $c->{jti} && length $c->{jti}, 'jti present');
  $is->($c->{role}, $u->{role}, 'role claim') if defined $u->{role};
  $ok->(defined $c->{sid} && $c->{sid} =~ /\Ases_\S+\z/, 'sid is a session id');
  $ok->(defined $c->{scope} && !ref $c->{scope}, 'scope is a string');
  $is->(lc($c->{email} // ''), lc($u->{email}), 'email claim') if defined $u->{email};
  for my $f (qw(tenant_id partner_id)) {
    if (defined $u->{$f}) {
      $is->($c->{$f}, $u->{$f}, "$f claim");
    } elsif (exists $u->{$f}) {
      $ok->(!defined $c->{$f}, "no $f claim for a user without one");
    }
  }
  $ok->(!grep({ /pass|hash|secret/i } keys %$c), 'no password/secret material in the claims');
  if (defined $c->{sid} && defined $c->{sub}) {
    my $row = psql(sprintf(
      "SELECT user_id || '|' || kind || '|' || (revoked_at IS NULL) || '|' || (expires_at > now()) "
        . "FROM sessions WHERE id = %s", sql_quote($c->{sid})));
    $is->($row, "$c->{sub}|admin|true|true", 'sid names a live admin session of the user');
  }
  return ($h, $c);
}

# ---------------------------------------------------------------------------
# A second server with extra Apache configuration lines.

# extra_apache($lines [, $issuer]) -> ($base_url, $guard) or () when it could
# not start. $issuer (ScaiKeyIssuer) defaults to the new server's own base URL.
# The guard stops the server when it goes out of scope.
sub extra_apache {
  my ($lines, $issuer) = @_;
  my $top = $ENV{SK_TOP} // '';
  my $script = "$top/t/lib/extra-apache";
  unless (-x $script) {
    warn "extra_apache: $script is not executable\n";
    return;
  }
  # Removed by the guard once the server is stopped (not by File::Temp,
  # whose END-time cleanup would run before the guard is destroyed).
  my $dir = tempdir('sk-extra-XXXXXX', TMPDIR => 1, CLEANUP => 0);
  # Output goes to files, not pipes: a daemon started by the script may keep
  # inherited descriptors open.
  my ($ofh) = tempfile('sk-extra-out-XXXXXX', TMPDIR => 1, UNLINK => 1);
  my ($efh) = tempfile('sk-extra-err-XXXXXX', TMPDIR => 1, UNLINK => 1);
  my $pid = fork();
  die "fork: $!" unless defined $pid;
  if (!$pid) {
    open(STDOUT, '>&', $ofh);
    open(STDERR, '>&', $efh);
    open(STDIN, '<', '/dev/null');
    exec($script, 'start', $dir, $lines, (defined $issuer ? ($issuer) : ())) or POSIX::_exit(127);
  }
  waitpid($pid, 0);
  my $rc = $? >> 8;
  seek($ofh, 0, 0);
  my @out = <$ofh>;
  seek($efh, 0, 0);
  my $err = do { local $/; <$efh> } // '';
  # The script prints the base URL (last http(s) line of its output).
  my ($url) = reverse grep { m{^https?://\S+\z} } map { my $l = $_; $l =~ s/\s+\z//; $l } @out;
  if ($rc != 0 || !$url) {
    warn "extra_apache: start failed (exit $rc): @out $err\n";
    system($script, 'stop', $dir);
    File::Path::remove_tree($dir);
    return;
  }
  $url =~ s{/+\z}{};
  my $guard = bless { script => $script, dir => $dir, pid => $$ }, 'SK::Guard';
  return ($url, $guard);
}

package SK::Guard;

sub stop {
  my ($self) = @_;
  return if $self->{stopped}++ || $self->{pid} != $$;
  local ($?, $!);
  system($self->{script}, 'stop', $self->{dir});
  File::Path::remove_tree($self->{dir});
}

sub DESTROY { $_[0]->stop }

1;

# ---------------------------------------------------------------------------
# Admin API resources (t/3*.t)

package SK;

# ---------------------------------------------------------------------------
# Outside the module: PostgreSQL of the harness (t/53, t/54) and the mail directory (t/7*.t)

push @EXPORT_OK, qw(harness_sh pg_stop pg_start main_server_fresh mails_to last_code whoami_location at_once);

# Configuration lines for a second server: /r guarded (Require valid-user) and answered by the
# whoami handler, with the given revocation delay.
sub whoami_location {
  my ($delay) = @_;
  return <<"CONF";
ScaiKeyRevocationDelay $delay
<Location /r>
    AuthType ScaiKey
    Require valid-user
    SetHandler scaikey-whoami
</Location>
CONF
}


# runs shell text with t/lib/conf.sh loaded; true when it exits 0
sub harness_sh {
  my ($script) = @_;
  return system('bash', '-c', '. "$SK_TOP/t/lib/conf.sh"; ' . $script) == 0;
}

my $pg_stopped = 0;
sub pg_stop {
  $pg_stopped = 1;
  return harness_sh('sk_pg_stop "$SK_RUN/pg/data" fast');
}
sub pg_start {
  my $ok = harness_sh('sk_pg_start "$SK_RUN/pg/data" "$SK_PG_HOST" "$SK_PG_PORT" "$SK_RUN/pg/log" '
                      . '-c fsync=off -c synchronous_commit=off -c full_page_writes=off');
  $pg_stopped = 0 if $ok;
  return $ok;
}
# whatever happens, the database is running again when a test ends
END { pg_start() if $pg_stopped }

# The main server's pooled connections died with PostgreSQL (each fails once before mod_dbd
# replaces it): a graceful restart gives it, and the tests that follow, fresh ones.
sub main_server_fresh {
  my ($port) = base() =~ /:(\d+)\z/;
  harness_sh('sk_httpd_start "$SK_HTTPD_CONF" "$(dirname "$SK_HTTPD_CONF")" ' . $port . ' >/dev/null')
    or return 0;
  for (1 .. 50) {
    my $l = admin_login();
    return 1 if $l && req(GET => '/api/v1/admin/auth/me', token => $l->{access_token})->{status} == 200;
    sleep 0.2;
  }
  return 0;
}

# every message of the mail directory sent to $to, oldest first: { file, headers, body, raw }
sub mails_to {
  my ($to) = @_;
  my @out;
  opendir(my $d, $ENV{SK_MAILDIR}) or die "maildir: $!";
  for my $f (sort grep { /\.eml\z/ } readdir $d) {
    open(my $fh, '<:raw', "$ENV{SK_MAILDIR}/$f") or next;
    my $raw = do { local $/; <$fh> };
    close $fh;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my %h;
    for my $line (split /\r\n(?![ \t])/, $head) {
      my ($k, $v) = split /:\s*/, $line, 2;
      $h{lc $k} = $v;
    }
    next unless lc($h{to} // '') eq lc($to);
    push @out, { file => $f, headers => \%h, body => $body, raw => $raw };
  }
  closedir $d;
  return @out;
}


# ---------------------------------------------------------------------------
# A client_credentials token (t/5x, t/66): id and secret (or app, an application as created),
# and optionally slug (a tenant's token endpoint instead of the platform's), scope, resource,
# base (another server). Dies unless 200.

# The six-digit code of the newest mail to an address, or undef.
sub last_code {
  my @m = mails_to($_[0]);
  return @m && $m[-1]{body} =~ /^\s+(\d{6})\s*$/m ? $1 : undef;
}

# at_once($n, $code): $code->($i) in $n processes at the same moment (each waits on a pipe the
# parent closes once all are forked). What each returns, as one line, in the order they finish.
sub at_once {
  my ($n, $code) = @_;
  pipe(my $rd, my $wr) or die "pipe: $!";
  pipe(my $go_rd, my $go_wr) or die "pipe: $!";
  my @kids;
  for my $i (1 .. $n) {
    my $pid = fork() // die "fork: $!";
    if (!$pid) {
      close $rd;
      close $go_wr;
      sysread($go_rd, my $buf, 1);
      my $out = eval { $code->($i) } // 'died';
      $out =~ s/\n/ /g;
      syswrite($wr, "$out\n");
      POSIX::_exit(0);
    }
    push @kids, $pid;
  }
  close $wr;
  close $go_rd;
  close $go_wr;
  my @out = map { chomp; $_ } <$rd>;
  waitpid($_, 0) for @kids;
  return @out;
}

push @EXPORT_OK, qw(client_token);

sub client_token {
  my (%o) = @_;
  @o{qw(id secret)} = @{ $o{app} }{qw(client_id client_secret)} if $o{app};
  my $path = defined $o{slug} ? "/api/v1/auth/tenants/$o{slug}/oauth/token" : '/api/v1/platform/oauth/token';
  my $form = query_string(grant_type => 'client_credentials',
                          (defined $o{scope} ? (scope => $o{scope}) : ()),
                          (defined $o{resource} ? (resource => $o{resource}) : ()));
  $form =~ s/\A\?//;
  my $r = req(POST => $path, raw => $form, (defined $o{base} ? (base => $o{base}) : ()),
              headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                           Authorization => 'Basic ' . encode_base64("$o{id}:$o{secret}", '') });
  die "client_credentials for $o{id}: $r->{status} $r->{content}\n" unless $r->{status} == 200;
  return $r->{json}{access_token};
}

# ---------------------------------------------------------------------------
# TOTP as an authenticator app computes it (t/72, t/76): the base32 secret decoded, and the
# RFC 6238 code of a time step (SHA-1, 6 digits, 30 s steps)

push @EXPORT_OK, qw(b32decode totp_at);

sub b32decode {
  my ($s) = @_;
  my $alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  my $bits = join '', map { sprintf '%05b', index($alpha, $_) } split //, uc $s;
  my $out = '';
  $out .= chr(oct('0b' . substr($bits, 0, 8, ''))) while length($bits) >= 8;
  return $out;
}

sub totp_at {
  my ($key, $step) = @_;
  my $h = Digest::SHA::hmac_sha1(pack('NN', int($step / 4294967296), $step % 4294967296), $key);
  my $o = ord(substr($h, -1)) & 0x0f;
  return sprintf('%06d', (unpack('N', substr($h, $o, 4)) & 0x7fffffff) % 1000000);
}

# ---------------------------------------------------------------------------
# The database as a whole (t/35, t/36): a digest of each table's rows, and the tables two of
# them differ in. The audit log is left out: the tests that compare look after it themselves.

push @EXPORT_OK, qw(db_state changed_tables);

sub db_state {
  my @tables = grep { $_ ne 'audit_log' }
    psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
         . "AND table_type = 'BASE TABLE' ORDER BY table_name");
  my $sql = join(' UNION ALL ', map {
    sprintf(q{SELECT %s || '=' || md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')) FROM "%s" x},
            sql_quote($_), $_)
  } @tables);
  return { map { split /=/, $_, 2 } psql($sql) };
}

sub changed_tables {
  my ($a, $b) = @_;
  my %all = (%$a, %$b);
  return grep { ($a->{$_} // '') ne ($b->{$_} // '') } sort keys %all;
}


push @EXPORT_OK, qw(admin_path admin_req admin_create admin_token admin_list_all query_string
                    ids_of sha256_hex db_tables_containing);

my %ADMIN_PATH = (
  partners             => '/api/v1/admin/partners',
  tenants              => '/api/v1/admin/tenants',
  users                => '/api/v1/admin/users',
  groups               => '/api/v1/admin/groups',
  applications         => '/api/v1/admin/applications',
  'identity-providers' => '/api/v1/admin/identity-providers',
  agents               => '/api/v1/admin/agents',
);

# admin_path('users' [, $id]) -> '/api/v1/admin/users' or '/api/v1/admin/users/<id>'
sub admin_path {
  my ($res, $id) = @_;
  my $p = $ADMIN_PATH{$res} // die "admin_path: unknown resource $res\n";
  return defined $id ? "$p/$id" : $p;
}

# query_string(k => v, ...) -> '?k=v&...' ('' when empty); values are percent-encoded.
sub query_string {
  my (@kv) = @_;
  return '' unless @kv;
  my $enc = sub {
    my $s = shift;
    utf8::encode($s) if utf8::is_utf8($s);
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
  };
  my @parts;
  while (my ($k, $v) = splice(@kv, 0, 2)) {
    push @parts, $enc->($k) . '=' . $enc->($v // '');
  }
  return '?' . join('&', @parts);
}

# admin_req($token, $method, $resource_or_path [, $id], %req_options)
# $resource_or_path is a resource name ('users') or a path starting with '/'.
sub admin_req {
  my ($token, $method, $what, @rest) = @_;
  my $id = (@rest % 2) ? shift @rest : undef;
  my $path = $what =~ m{\A/} ? $what : admin_path($what, $id);
  return req($method, $path, token => $token, @rest);
}

# admin_create($token, $resource, \%body) -> created object (dies unless 201)
sub admin_create {
  my ($token, $res, $body) = @_;
  my $r = req(POST => admin_path($res), token => $token, json => $body);
  die "admin_create $res: $r->{status} $r->{content}\n"
    unless $r->{status} == 201 && ref $r->{json} eq 'HASH' && defined $r->{json}{id};
  return $r->{json};
}

# admin_token(email => ..., password => ...) -> access token of a fresh login (dies on failure)
sub admin_token {
  my (%o) = @_;
  my ($j, $r) = admin_login(%o);
  die "admin_token: login of " . ($o{email} // admin_email()) . " failed: $r->{status} $r->{content}\n"
    unless $j && $j->{access_token};
  return $j->{access_token};
}

# admin_list_all($token, $resource, %query) -> ($items_arrayref, $first_response)
# Walks every page (per_page 100). $items is undef when a page is not a 200.
sub admin_list_all {
  my ($token, $res, %q) = @_;
  my (@items, $first);
  for (my $page = 1; $page <= 1000; $page++) {
    my $r = req(GET => admin_path($res) . query_string(%q, per_page => 100, page => $page), token => $token);
    $first //= $r;
    return (undef, $r) unless $r->{status} == 200 && ref $r->{json} eq 'HASH'
      && ref $r->{json}{items} eq 'ARRAY' && ref $r->{json}{pagination} eq 'HASH';
    push @items, @{ $r->{json}{items} };
    last if $page >= ($r->{json}{pagination}{total_pages} // 0) || !@{ $r->{json}{items} };
  }
  return (\@items, $first);
}

# db_tables_containing($text) -> names of the tables of the database (schema public) in which
# some row, read as text, contains $text (bytea columns read as hex, so sealed data never matches).
sub db_tables_containing {
  my ($needle) = @_;
  die "db_tables_containing: empty text\n" unless defined $needle && length $needle;
  my @tables = psql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                    . "AND table_type = 'BASE TABLE' ORDER BY table_name");
  die "db_tables_containing: no tables\n" unless @tables;
  my $q = sql_quote($needle);
  my $sql = join(' UNION ALL ', map {
    sprintf('SELECT %s FROM %s x WHERE strpos(x::text, %s) > 0', sql_quote($_), qq{"$_"}, $q)
  } @tables);
  utf8::encode($sql) if utf8::is_utf8($sql);
  my %hit = map { $_ => 1 } grep { length } psql($sql);
  return sort keys %hit;
}

# ids_of($response_or_items) -> ids of a list answer's items (or of an items array)
sub ids_of {
  my ($x) = @_;
  my $items = ref $x eq 'ARRAY' ? $x : (ref $x->{json} eq 'HASH' ? $x->{json}{items} : undef);
  return map { $_->{id} } grep { ref $_ eq 'HASH' } @{ $items // [] };
}

1;
