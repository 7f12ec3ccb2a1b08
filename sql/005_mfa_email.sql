-- 005_mfa_email.sql: email as a second factor.
--
-- A user has at most one email method (the account's own address): a confirmation that races
-- another finds the row already there. The emailed codes themselves are one_time_codes of purpose
-- 'mfa_email' (001), bound in data.for to what they were sent for: a sign-in challenge
-- ("mfa:<challenge id>"), a hosted sign-in ("flow:<flow id>") or the enrolment ("enable").

CREATE UNIQUE INDEX mfa_methods_one_email_idx ON mfa_methods (user_id) WHERE method_type = 'email';
CREATE INDEX one_time_codes_mfa_email_idx ON one_time_codes (user_id, (data ->> 'for'))
    WHERE purpose = 'mfa_email' AND used_at IS NULL;
