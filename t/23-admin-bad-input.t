#!/usr/bin/perl
# Malformed, hostile and oversized input on the admin auth endpoints.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SK qw(:all);

plan skip_all => 'SK_BASE_URL not set' unless $ENV{SK_BASE_URL};
plan tests => 15;

my $LOGIN = '/api/v1/admin/auth/login';

sub login_json { req(POST => $LOGIN, json => $_[0], ip => unique_ip()) }
sub login_raw  { my ($body, %o) = @_; req(POST => $LOGIN, raw => $body, ip => unique_ip(), %o) }

# Every answer in this file must be a JSON error, never a 5xx and never HTML.
sub json_error_ok {
  my ($r, $name) = @_;
  cmp_ok($r->{status}, '<', 500, "$name: not a server error (got $r->{status})");
  ok(is_json_error($r), "$name: JSON {\"detail\":...} body")
    or diag(substr($r->{content}, 0, 300));
}

sub v422_ok {
  my ($r, $loc, $type, $name) = @_;
  is($r->{status}, 422, "$name: 422");
  json_error_ok($r, $name);
  my $e = find_verror($r, $loc);
  ok($e, "$name: error at loc [@$loc]") or return diag(substr($r->{content}, 0, 300));
  is($e->{type}, $type, "$name: type $type");
  ok(defined $e->{msg} && !ref $e->{msg} && length $e->{msg}, "$name: msg is a non-empty string");
  return $e;
}

subtest 'missing fields' => sub {
  my $e = v422_ok(login_json({ password => 'x' }), ['body', 'email'], 'missing', 'no email');
  is($e && $e->{msg}, 'Field required', 'no email: msg Field required');
  v422_ok(login_json({ email => 'a@example.test' }), ['body', 'password'], 'missing', 'no password');
  my $both = login_json({});
  v422_ok($both, ['body', 'email'], 'missing', 'empty object (email)');
  my $p = find_verror($both, ['body', 'password']);
  is($p && $p->{type}, 'missing', 'empty object: password reported too');
  is(scalar(verrors($both)), 2, 'empty object: exactly two errors');
};

subtest 'fields of the wrong type' => sub {
  my @cases = (
    [email    => 123],
    [email    => ['a@example.test']],
    [email    => undef],
    [email    => { x => 1 }],
    [password => 123],
    [password => JSON::PP::true()],
    [password => undef],
    [password => ['x']],
  );
  for my $c (@cases) {
    my ($field, $v) = @$c;
    my %body = (email => 'a@example.test', password => 'x', $field => $v);
    my $show = defined $v ? (ref $v ? ref($v) : $v) : 'null';
    v422_ok(login_json(\%body), ['body', $field], 'string_type', "$field = $show");
  }
};

subtest 'bad email syntax' => sub {
  for my $bad ('not-an-email', 'a@', '@example.test', 'a b@example.test', 'a@@example.test', '',
               'a@exa mple.test', 'a@example..test') {
    v422_ok(login_json({ email => $bad, password => 'x' }), ['body', 'email'], 'value_error', "email '$bad'");
  }
};

subtest 'unknown field' => sub {
  v422_ok(login_json({ email => 'a@example.test', password => 'x', role => 'super_admin' }),
          ['body', 'role'], 'extra_forbidden', 'extra field role');
};

subtest 'malformed JSON' => sub {
  for my $body ('{"email":', "{email: 'a\@example.test'}", "{'email':'a\@example.test','password':'x'}",
                '{"email":"a@example.test","password":"x",}', '{"email":"a@example.test","password":"x"} x',
                '{"email":"a@example.test" "password":"x"}', '{"password":"\\q"}', 'nul') {
    v422_ok(login_raw($body), ['body'], 'json_invalid', "body $body");
  }
};

subtest 'JSON that is not an object' => sub {
  for my $body ('[]', '[{"email":"a@example.test","password":"x"}]', '42', 'null', '"a@example.test"', 'true') {
    v422_ok(login_raw($body), ['body'], 'model_attributes_type', "body $body");
  }
};

subtest 'invalid UTF-8 and empty bodies' => sub {
  for my $c (["\xff\xfe in a string", qq({"email":"\xff\xfe\@example.test","password":"x"})],
             ['overlong encoding',     qq({"email":"a\@example.test","password":"\xc0\xaf"})],
             ['truncated sequence',    qq({"email":"a\@example.test","password":"\xe2\x82"})],
             ['latin-1 byte',          qq({"email":"a\@example.test","password":"caf\xe9"})]) {
    my $r = login_raw($c->[1]);
    is($r->{status}, 422, "$c->[0]: 422");
    json_error_ok($r, $c->[0]);
    ok(scalar(verrors($r)) >= 1, "$c->[0]: detail is a list of validation errors");
  }
  my $empty = login_raw('');
  is($empty->{status}, 422, 'empty body: 422');
  json_error_ok($empty, 'empty body');
  my $ws = login_raw("  \n ");
  is($ws->{status}, 422, 'whitespace body: 422');
  json_error_ok($ws, 'whitespace body');
};

subtest 'oversized bodies' => sub {
  my $big = '{"email":"a@example.test","password":"' . ('x' x (1024 * 1024)) . '"}';
  my $r = login_raw($big);
  is($r->{status}, 413, '1 MiB body: 413');
  is_deeply($r->{json}, { detail => 'Request body too large' }, '1 MiB body: detail') or diag(substr($r->{content}, 0, 300));
  like($r->{headers}{'content-type'} // '', qr{^application/json\b}i, '1 MiB body: JSON');

  my $long = ('a' x 9988) . '@example.test';
  is(length $long, 10001, 'the long email has 10 000+ characters');
  my $le = login_json({ email => $long, password => 'x' });
  is($le->{status}, 422, 'very long email: 422');
  json_error_ok($le, 'very long email');
  ok(find_verror($le, ['body', 'email']), 'very long email: error at [body, email]');

  my $lp = login_json({ email => unique_email('longpw'), password => 'p' x 10000 });
  ok($lp->{status} == 401 || $lp->{status} == 422, "very long password: 401 or 422 (got $lp->{status})");
  json_error_ok($lp, 'very long password');
};

subtest 'deeply nested JSON' => sub {
  # Kept under 32 KiB so that the body size limit is not what answers.
  my $r = login_raw('[' x 30000);
  is($r->{status}, 422, 'thirty thousand [ : 422');
  json_error_ok($r, 'deep array');
  my $r2 = login_raw('{"email":' . ('{"a":' x 4000) . '1' . ('}' x 4000) . ',"password":"x"}');
  is($r2->{status}, 422, 'deeply nested object value: 422');
  json_error_ok($r2, 'deep object');
  my $r3 = login_raw('{"email":1e999999,"password":"x"}');
  is($r3->{status}, 422, 'huge number: 422');
  json_error_ok($r3, 'huge number');
};

subtest 'Content-Type handling' => sub {
  my $body = '{"email":"' . unique_email('ct') . '","password":"x"}';
  for my $ct ('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
              'application/jsonp', 'text/json') {
    my $r = login_raw($body, headers => { 'Content-Type' => $ct });
    is($r->{status}, 415, "$ct: 415");
    is_deeply($r->{json}, { detail => 'Content-Type must be application/json' }, "$ct: detail")
      or diag($r->{content});
  }
  my $ok = login_raw($body, headers => { 'Content-Type' => 'application/json; charset=utf-8' });
  is($ok->{status}, 401, 'application/json with a charset parameter is accepted (401 for an unknown account)');
  is_deeply($ok->{json}, { detail => 'Invalid email or password' }, 'charset parameter: normal answer');
};

subtest 'SQL metacharacters in the email' => sub {
  for my $email ("a'or'1'='1\@x.test", "x\@x.test'; DROP TABLE users;--", "x\@x.test\" OR \"\"=\"",
                 "admin'--\@x.test", "x\@x.test' UNION SELECT password_hash FROM users--",
                 '%@example.test', '_@example.test', "\\\@example.test") {
    my $r = login_json({ email => $email, password => "' OR '1'='1" });
    ok($r->{status} == 401 || $r->{status} == 422, "email $email: 401 or 422 (got $r->{status})");
    json_error_ok($r, "email $email");
    ok(!exists(($r->{json} // {})->{access_token}), "email $email: no token");
  }
  is(psql("SELECT to_regclass('public.users') IS NOT NULL"), 't', 'users table still exists');
  is(psql('SELECT count(*) FROM users WHERE lower(email) = lower(' . sql_quote(admin_email()) . ') AND deleted_at IS NULL'),
     1, 'the bootstrap admin is still there');
};

subtest 'SQL metacharacters and LIKE wildcards do not match real accounts' => sub {
  my $u = create_user();
  my ($local, $domain) = split /\@/, $u->{email};
  for my $pattern ('%@' . $domain, substr($local, 0, -1) . '_@' . $domain, "$local\@%") {
    my $r = login_json({ email => $pattern, password => $u->{password} });
    ok($r->{status} == 401 || $r->{status} == 422, "pattern $pattern with the right password: refused (got $r->{status})");
    ok(!exists(($r->{json} // {})->{access_token}), "pattern $pattern: no token");
  }
};

subtest 'NUL bytes' => sub {
  my $u = create_user();
  my $r = login_json({ email => $u->{email}, password => "$u->{password}\x{0}" });
  ok($r->{status} == 401 || $r->{status} == 422, "password + NUL: 401 or 422 (got $r->{status})");
  json_error_ok($r, 'password + NUL');
  ok(!exists(($r->{json} // {})->{access_token}), 'password + NUL: no token (no truncation at NUL)');
  my $r2 = login_json({ email => $u->{email}, password => "\x{0}" });
  ok($r2->{status} == 401 || $r2->{status} == 422, "password NUL only: 401 or 422 (got $r2->{status})");
  json_error_ok($r2, 'password NUL only');
  my $r3 = login_json({ email => "$u->{email}\x{0}", password => $u->{password} });
  ok($r3->{status} == 401 || $r3->{status} == 422, "email + NUL: 401 or 422 (got $r3->{status})");
  ok(!exists(($r3->{json} // {})->{access_token}), 'email + NUL: no token (no truncation at NUL)');
};

subtest 'wrong methods' => sub {
  for my $c ([GET => $LOGIN], [PUT => $LOGIN], [DELETE => '/api/v1/admin/auth/me'],
             [GET => '/api/v1/admin/auth/refresh'], [GET => '/api/v1/admin/auth/logout']) {
    my $r = req($c->[0], $c->[1], ip => unique_ip());
    ok($r->{status} == 404 || $r->{status} == 405, "$c->[0] $c->[1]: 404 or 405 (got $r->{status})");
    json_error_ok($r, "$c->[0] $c->[1]");
  }
};

subtest 'refresh endpoint rejects hostile bodies the same way' => sub {
  my $R = '/api/v1/admin/auth/refresh';
  my $big = req(POST => $R, raw => '{"refresh_token":"' . ('x' x (1024 * 1024)) . '"}', ip => unique_ip());
  is($big->{status}, 413, '1 MiB refresh body: 413');
  is_deeply($big->{json}, { detail => 'Request body too large' }, '1 MiB refresh body: detail');
  my $arr = req(POST => $R, raw => '[]', ip => unique_ip());
  v422_ok($arr, ['body'], 'model_attributes_type', 'refresh body []');
  my $utf = req(POST => $R, raw => qq({"refresh_token":"\xff\xff"}), ip => unique_ip());
  is($utf->{status}, 422, 'refresh invalid UTF-8: 422');
  json_error_ok($utf, 'refresh invalid UTF-8');
  my $sql = req(POST => $R, json => { refresh_token => "' OR 1=1 --" }, ip => unique_ip());
  is($sql->{status}, 401, 'refresh SQL metacharacters: 401');
  json_error_ok($sql, 'refresh SQL metacharacters');
};
