-- +goose Up
-- The mail domains each organization hosts, as the mailboxes service
-- announces them (created, then purged 30 days after deletion). A login
-- email is released only on one of them.
CREATE TABLE organization_domains (
    domain          text PRIMARY KEY CHECK (domain = lower(domain)),
    organization_id uuid NOT NULL
);
CREATE INDEX organization_domains_organization ON organization_domains (organization_id);

-- +goose Down
DROP TABLE organization_domains;
