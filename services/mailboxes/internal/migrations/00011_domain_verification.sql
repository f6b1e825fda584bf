-- +goose Up
-- A mail service is a claim on a domain until a TXT record proves the
-- organization controls it (docs/mailboxes.md, "Domains"). Several
-- organizations may hold pending claims on one domain; the first verified
-- gets it and the others end ('claim_lost'); a claim not verified within 7
-- days ends too ('expired'). Mail services that exist already were live:
-- they are verified.
ALTER TABLE mail_services
    ADD COLUMN state text NOT NULL DEFAULT 'verified'
        CHECK (state IN ('pending', 'verified', 'claim_lost', 'expired')),
    ADD COLUMN verification_token text NOT NULL DEFAULT '',
    ADD COLUMN verify_time timestamptz,
    ADD COLUMN last_check_time timestamptz,
    ADD COLUMN last_check_result text NOT NULL DEFAULT '',
    -- When the checker looks next, and how many looks found nothing (the
    -- interval grows with them).
    ADD COLUMN next_check_time timestamptz,
    ADD COLUMN checks integer NOT NULL DEFAULT 0;
UPDATE mail_services SET verify_time = create_time;
ALTER TABLE mail_services ALTER COLUMN state SET DEFAULT 'pending';

-- A domain belongs to one verified mail service in all Mailplane (deleted
-- ones included until purged, so that a deleted domain stays restorable);
-- pending and ended claims block nobody. One organization holds at most one
-- pending claim per domain.
ALTER TABLE mail_services DROP CONSTRAINT mail_services_domain_key;
CREATE UNIQUE INDEX mail_services_domain_key ON mail_services (domain) WHERE state = 'verified';
CREATE UNIQUE INDEX mail_services_one_claim ON mail_services (organization_id, domain) WHERE state = 'pending';
-- Subdomains of a verified domain, found by their reversed name's prefix.
CREATE INDEX mail_services_reversed ON mail_services (reverse(domain) text_pattern_ops) WHERE state = 'verified';
-- The claims the checker looks at.
CREATE INDEX mail_services_pending ON mail_services (next_check_time) WHERE state = 'pending';

-- Dovecot serves only verified domains. The columns stay as they were, so
-- the view is replaced in place and Dovecot's grant on it stays;
-- dovecot_device_passwords and dovecot_login read through it.
CREATE OR REPLACE VIEW dovecot_users AS
SELECT a.id AS address_id, a.local_key || '@' || m.domain AS login, a.quota_bytes, a.mail_service_id
FROM addresses a
JOIN mail_services m ON m.id = a.mail_service_id
WHERE m.delete_time IS NULL AND m.state = 'verified' AND a.kind IN ('mailbox', 'no_reply');

-- +goose Down
CREATE OR REPLACE VIEW dovecot_users AS
SELECT a.id AS address_id, a.local_key || '@' || m.domain AS login, a.quota_bytes, a.mail_service_id
FROM addresses a
JOIN mail_services m ON m.id = a.mail_service_id
WHERE m.delete_time IS NULL AND a.kind IN ('mailbox', 'no_reply');
DROP INDEX mail_services_pending;
DROP INDEX mail_services_reversed;
DROP INDEX mail_services_one_claim;
DROP INDEX mail_services_domain_key;
DELETE FROM mail_services WHERE state <> 'verified';
ALTER TABLE mail_services ADD CONSTRAINT mail_services_domain_key UNIQUE (domain);
ALTER TABLE mail_services
    DROP COLUMN state, DROP COLUMN verification_token, DROP COLUMN verify_time,
    DROP COLUMN last_check_time, DROP COLUMN last_check_result,
    DROP COLUMN next_check_time, DROP COLUMN checks;
