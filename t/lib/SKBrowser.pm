package SKBrowser;

# A minimal browser for the hosted login tests (t/64, t/65): a cookie jar, one client address
# (X-Forwarded-For) per browser, form fields read from the served HTML, and helpers for OAuth
# clients (applications, PKCE, the token endpoint).

use strict;
use warnings;

use Exporter 'import';
use HTTP::Tiny;
use JSON::PP ();
use Digest::SHA qw(sha256);
use MIME::Base64 qw(encode_base64);
use SK qw(base unique_ip b64url query_string admin_create);

our @EXPORT_OK = qw(new_app pkce token_request html_unescape url_params page_title);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

sub new {
  my ($class, %o) = @_;
  return bless {
    jar  => {},
    ip   => $o{ip} // unique_ip(),
    http => HTTP::Tiny->new(timeout => 60, max_redirect => 0, keep_alive => 0, agent => 'scaikey-browser/1'),
  }, $class;
}

sub ip { $_[0]{ip} }

# the cookies the browser holds (name => value)
sub cookies { return { %{ $_[0]{jar} } } }
sub cookie  { $_[0]{jar}{ $_[1] } }
sub set_cookie { my ($s, $n, $v) = @_; defined $v ? ($s->{jar}{$n} = $v) : delete $s->{jar}{$n} }

# the Set-Cookie headers of the last answer
sub last_set_cookies { @{ $_[0]{last_set_cookies} // [] } }

sub _absolute {
  my ($url) = @_;
  return $url =~ m{\Ahttps?://} ? $url : base() . $url;
}

sub _store_cookies {
  my ($self, $res) = @_;
  my $sc = $res->{headers}{'set-cookie'};
  my @sc = !defined $sc ? () : ref $sc ? @$sc : ($sc);
  $self->{last_set_cookies} = \@sc;
  for my $c (@sc) {
    my ($pair, @attrs) = split /;\s*/, $c;
    my ($n, $v) = split /=/, $pair, 2;
    next unless defined $n && length $n;
    if (grep { /\Amax-age=0\z/i } @attrs) {
      delete $self->{jar}{$n};
    } else {
      $self->{jar}{$n} = $v // '';
    }
  }
}

# request($method, $url, %opt): content (string), headers; the jar's cookies are sent
sub request {
  my ($self, $method, $url, %opt) = @_;
  my %h = %{ $opt{headers} // {} };
  $h{'X-Forwarded-For'} //= $self->{ip};
  my $jar = $self->{jar};
  $h{Cookie} = join('; ', map { "$_=$jar->{$_}" } sort keys %$jar) if %$jar && !exists $h{Cookie};
  my %args = (headers => \%h);
  $args{content} = $opt{content} if defined $opt{content};
  my $res = $self->{http}->request($method, _absolute($url), \%args);
  $self->_store_cookies($res);
  my $json;
  $json = eval { $JSON->decode($res->{content}) } if ($res->{headers}{'content-type'} // '') =~ /json/;
  return { status => $res->{status}, headers => $res->{headers} // {}, content => $res->{content} // '',
           json => $json, url => _absolute($url) };
}

sub get { my ($self, $url, %o) = @_; $self->request(GET => $url, %o) }

sub _form_encode {
  my (@kv) = @_;
  my $qs = query_string(@kv);
  $qs =~ s/\A\?//;
  return $qs;
}

# post($url, [k => v, ...]) as application/x-www-form-urlencoded
sub post {
  my ($self, $url, $fields, %o) = @_;
  return $self->request(POST => $url, content => _form_encode(@$fields),
                        headers => { 'Content-Type' => 'application/x-www-form-urlencoded', %{ $o{headers} // {} } });
}

# ---------------------------------------------------------------------------
# HTML

sub html_unescape {
  my ($s) = @_;
  return undef unless defined $s;
  $s =~ s/&#(\d+);/chr($1)/ge;
  $s =~ s/&#x([0-9a-fA-F]+);/chr(hex $1)/ge;
  $s =~ s/&lt;/</g;
  $s =~ s/&gt;/>/g;
  $s =~ s/&quot;/"/g;
  $s =~ s/&amp;/&/g;
  return $s;
}

sub page_title {
  my ($html) = @_;
  return $html =~ m{<h1>(.*?)</h1>}s ? html_unescape($1) : undef;
}

# the value of the input named $name in the page (first one)
sub field {
  my ($res_or_html, $name) = @_;
  my $html = ref $res_or_html ? $res_or_html->{content} : $res_or_html;
  for my $tag ($html =~ /(<input\b[^>]*>)/g) {
    my ($n) = $tag =~ /\bname="([^"]*)"/;
    next unless defined $n && $n eq $name;
    my ($v) = $tag =~ /\bvalue="([^"]*)"/;
    return html_unescape($v // '');
  }
  return undef;
}

# the form's action, resolved against the page's URL
sub form_action {
  my ($res) = @_;
  my ($a) = $res->{content} =~ /<form\b[^>]*\baction="([^"]*)"/;
  return undef unless defined $a;
  $a = html_unescape($a);
  return $a if $a =~ m{\Ahttps?://};
  my $u = $res->{url};
  $u =~ s/[?#].*\z//;
  return $u =~ s{\A(https?://[^/]+).*\z}{$1}r . $a if $a =~ m{\A/};
  $u =~ s{[^/]*\z}{};
  return $u . $a;
}

# where the answer sends the browser: a Location header or the continue page's meta refresh
sub next_url {
  my ($res) = @_;
  return $res->{headers}{location} if defined $res->{headers}{location};
  if ($res->{content} =~ /<meta http-equiv="refresh" content="0;url=([^"]*)"/) {
    return html_unescape($1);
  }
  return undef;
}

# the query parameters of a URL (decoded)
sub url_params {
  my ($url) = @_;
  my %p;
  my ($q) = ($url // '') =~ /\?([^#]*)/;
  for my $pair (split /&/, $q // '') {
    my ($k, $v) = split /=/, $pair, 2;
    for ($k, $v) {
      next unless defined;
      tr/+/ /;
      s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    }
    $p{$k} = $v;
  }
  return \%p;
}

# ---------------------------------------------------------------------------
# OAuth helpers

# new_app($admin_token, %fields) -> the created application (with client_secret for WEB/SERVICE)
sub new_app {
  my ($token, %o) = @_;
  my %b = (name => 'Login test app ' . int(rand(1e9)), application_type => 'WEB', scope => 'TENANT',
           allowed_scopes => [qw(openid profile email offline_access)],
           redirect_uris => ['https://app.example.test/callback'], %o);
  delete @b{ grep { !defined $b{$_} } keys %b };
  return admin_create($token, 'applications', \%b);
}

# pkce() -> ($verifier, $challenge)
sub pkce {
  my $v = b64url(join '', map { chr int rand 256 } 1 .. 32);
  return ($v, b64url(sha256($v)));
}

# token_request($token_path, $app, [fields]) -> { status, json, ... }; confidential clients use
# client_secret_basic, public ones send client_id
sub token_request {
  my ($path, $app, $fields, %o) = @_;
  my %h = ('Content-Type' => 'application/x-www-form-urlencoded');
  my @f = @$fields;
  if (defined $app->{client_secret} && !$o{no_auth}) {
    $h{Authorization} = 'Basic ' . encode_base64("$app->{client_id}:$app->{client_secret}", '');
  } elsif (!$o{no_auth}) {
    push @f, client_id => $app->{client_id};
  }
  my $http = HTTP::Tiny->new(timeout => 60, max_redirect => 0, keep_alive => 0);
  my $res = $http->request(POST => base() . $path, { headers => \%h, content => _form_encode(@f) });
  my $json = eval { $JSON->decode($res->{content}) };
  return { status => $res->{status}, headers => $res->{headers}, content => $res->{content}, json => $json };
}

1;
