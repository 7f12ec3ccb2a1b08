package SKOAuth;

# Helpers for the OAuth 2.0 / OpenID Connect tests (t/6*-oauth-*.t): the two flavours' paths,
# form requests with client authentication, applications, and a signed-in person's SSO session
# with a refresh token made directly in the database.

use strict;
use warnings;

use Exporter 'import';
use MIME::Base64 qw(encode_base64);
use MIME::Base64 qw(decode_base64);
use Digest::SHA qw(sha256_hex);
use JSON::PP ();
use SK qw(:all);

our @EXPORT_OK = qw(issuer_path issuer_url endpoint_path form_encode basic_auth oauth_post token_req
                    new_app sso_session sso_refresh client_cc server_sign);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

# issuer_path(undef) -> '/api/v1/platform/oauth'; issuer_path($slug) -> '/api/v1/auth/tenants/$slug'
sub issuer_path {
  my ($slug) = @_;
  return defined $slug ? "/api/v1/auth/tenants/$slug" : '/api/v1/platform/oauth';
}

sub issuer_url { base() . issuer_path(@_) }

# endpoint_path($slug, 'token') -> the platform's {issuer}/token or a tenant's {issuer}/oauth/token
sub endpoint_path {
  my ($slug, $name) = @_;
  return issuer_path($slug) . (defined $slug ? "/oauth/$name" : "/$name");
}

sub _enc {
  my ($s) = @_;
  $s //= '';
  utf8::encode($s) if utf8::is_utf8($s);
  $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
  return $s;
}

# form_encode(k => v, ...) in the given order (a key may repeat)
sub form_encode {
  my (@kv) = @_;
  my @parts;
  while (my ($k, $v) = splice(@kv, 0, 2)) {
    push @parts, _enc($k) . '=' . _enc($v);
  }
  return join('&', @parts);
}

# client_secret_basic (RFC 6749 §2.3.1): both parts form-urlencoded, then base64
sub basic_auth {
  my ($id, $secret) = @_;
  return 'Basic ' . encode_base64(_enc($id) . ':' . _enc($secret), '');
}

# oauth_post($path, \@form, basic => [$id, $secret], token => ..., headers => {...})
sub oauth_post {
  my ($path, $form, %o) = @_;
  my %h = ('Content-Type' => 'application/x-www-form-urlencoded', %{ $o{headers} // {} });
  $h{Authorization} = basic_auth(@{ $o{basic} }) if $o{basic};
  return req(POST => $path, raw => form_encode(@$form), headers => \%h,
             (defined $o{token} ? (token => $o{token}) : ()));
}

# token_req($slug, \@form, %o): POST to the flavour's token endpoint
sub token_req {
  my ($slug, $form, %o) = @_;
  return oauth_post(endpoint_path($slug, 'token'), $form, %o);
}

# new_app($admin_token, %fields) -> the created application (with client_secret when confidential)
sub new_app {
  my ($at, %f) = @_;
  return admin_create($at, 'applications', { name => 'OAuth test app ' . int(rand(1e9)), %f });
}

# client_cc($slug, $app, @form) -> response of a client_credentials grant with Basic
sub client_cc {
  my ($slug, $app, @form) = @_;
  return token_req($slug, [grant_type => 'client_credentials', @form],
                   basic => [$app->{client_id}, $app->{client_secret}]);
}

# sso_session(user_id => ..., tenant_id => ..., client_id => ...) -> session id
# An SSO session as the sign-in pages would open it.
sub sso_session {
  my (%o) = @_;
  return psql(sprintf("INSERT INTO sessions (user_id, tenant_id, kind, client_id, expires_at) "
                      . "VALUES (%s, %s, 'sso', %s, now() + interval '1 day') RETURNING id",
                      sql_quote($o{user_id}), sql_quote($o{tenant_id}), sql_quote($o{client_id})));
}

# sso_refresh(session_id => ..., user_id => ..., client_id => ..., scope => ...) -> refresh token
# A refresh token as the authorization_code grant would store it: only its digest is kept.
sub sso_refresh {
  my (%o) = @_;
  my $rt = 'skr_test' . join('', map { ('a' .. 'z', 0 .. 9)[int rand 36] } 1 .. 40);
  psql(sprintf("INSERT INTO refresh_tokens (token_hash, session_id, family_id, user_id, client_id, scope, "
               . "expires_at) VALUES (%s, %s, gen_random_uuid(), %s, %s, %s, now() + interval '%s seconds')",
               sql_quote(sha256_hex($rt)), sql_quote($o{session_id}), sql_quote($o{user_id}),
               sql_quote($o{client_id}), sql_quote($o{scope} // 'openid'), $o{ttl} // 86400));
  return $rt;
}

# server_sign(\%claims [, typ => 'at+jwt']) -> a JWT signed with the server's current signing key,
# for tokens the server would never issue itself (expired, foreign issuer, ...). The key is
# unsealed as the module does: AES-256-GCM under the master key, the kid as associated data.
sub server_sign {
  my ($claims, %o) = @_;
  require Crypt::AuthEnc::GCM;
  require Crypt::JWT;
  open(my $fh, '<', "$ENV{SK_RUN}/master.key") or die "master.key: $!\n";
  my $text = <$fh>;
  close($fh);
  $text =~ s/\s+//g;
  my $master = decode_base64($text);
  my ($kid, $alg, $sealed) = split /\|/, psql("SELECT kid, alg, translate(encode(private_sealed, 'base64'), "
                                             . "E'\\n', '') FROM signing_keys WHERE status = 'current' LIMIT 1");
  my $raw = decode_base64($sealed);
  my ($nonce, $ct, $tag) = (substr($raw, 0, 12), substr($raw, 12, length($raw) - 28), substr($raw, -16));
  my $jwk = Crypt::AuthEnc::GCM::gcm_decrypt_verify('AES', $master, $nonce, $kid, $ct, $tag)
    // die "server_sign: cannot unseal the signing key\n";
  return Crypt::JWT::encode_jwt(payload => $claims, alg => $alg, key => JSON::PP::decode_json($jwk),
                                extra_headers => { kid => $kid, typ => $o{typ} // 'at+jwt' });
}

1;
