-- +goose Up
-- A mail service is a domain attached to an organization. A domain belongs to
-- at most one mail service across all organizations, deleted ones included
-- until they are purged (30 days after deletion).
CREATE TABLE mail_services (
    id              uuid PRIMARY KEY,
    organization_id uuid        NOT NULL,
    domain          text        NOT NULL CHECK (domain = lower(domain)),
    display_name    text        NOT NULL,
    create_time     timestamptz NOT NULL DEFAULT now(),
    update_time     timestamptz NOT NULL DEFAULT now(),
    delete_time     timestamptz,
    CONSTRAINT mail_services_domain_key UNIQUE (domain)
);
CREATE INDEX mail_services_organization ON mail_services (organization_id, domain);

-- Addresses. local_key is the local part folded to lower case: local parts
-- are unique regardless of case. A catch-all has local_key '*'.
CREATE TABLE addresses (
    id              uuid PRIMARY KEY,
    mail_service_id uuid        NOT NULL REFERENCES mail_services ON DELETE CASCADE,
    local_part      text        NOT NULL,
    local_key       text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('mailbox', 'no_reply', 'catch_all', 'redirect')),
    redirects       text[]      NOT NULL DEFAULT '{}',
    quota_bytes     bigint      NOT NULL DEFAULT 0,
    usage_bytes     bigint      NOT NULL DEFAULT 0,
    create_time     timestamptz NOT NULL DEFAULT now(),
    update_time     timestamptz NOT NULL DEFAULT now()
);
-- One catch-all per mail service falls out of this: its local_key is '*'.
CREATE UNIQUE INDEX addresses_local_key ON addresses (mail_service_id, local_key);

-- Every local part of a mail service, whoever holds it: an address, an alias
-- of one, or a reservation for another service. One table makes "is this
-- local part free?" one unique index.
CREATE TABLE local_parts (
    mail_service_id uuid NOT NULL REFERENCES mail_services ON DELETE CASCADE,
    local_key       text NOT NULL,
    address_id      uuid REFERENCES addresses ON DELETE CASCADE,
    is_alias        boolean NOT NULL DEFAULT false,
    holder          text,
    PRIMARY KEY (mail_service_id, local_key),
    CHECK ((address_id IS NULL) <> (holder IS NULL))
);
CREATE INDEX local_parts_address ON local_parts (address_id);

-- Who may use an address, with their rights. A pending row is an external
-- person invited by email (the accounts service holds the invitation).
CREATE TABLE address_users (
    address_id  uuid    NOT NULL REFERENCES addresses ON DELETE CASCADE,
    user_id     uuid,
    email       text    NOT NULL DEFAULT '',
    invitation  text    NOT NULL DEFAULT '',
    rights      jsonb,
    CHECK ((user_id IS NULL) <> (email = ''))
);
CREATE UNIQUE INDEX address_users_user ON address_users (address_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX address_users_email ON address_users (address_id, email) WHERE email <> '';
CREATE INDEX address_users_by_user ON address_users (user_id);

-- Device passwords: per address and user, generated, stored as SHA-256 hex
-- (they are high-entropy tokens, so a fast hash is enough and lets Dovecot
-- check them in SQL).
CREATE TABLE device_passwords (
    id             uuid PRIMARY KEY,
    address_id     uuid        NOT NULL REFERENCES addresses ON DELETE CASCADE,
    user_id        uuid        NOT NULL,
    device_name    text        NOT NULL,
    secret_sha256  text        NOT NULL UNIQUE,
    create_time    timestamptz NOT NULL DEFAULT now(),
    last_use_time  timestamptz,
    revoke_time    timestamptz
);
CREATE INDEX device_passwords_address ON device_passwords (address_id);

-- +goose Down
DROP TABLE device_passwords;
DROP TABLE address_users;
DROP TABLE local_parts;
DROP TABLE addresses;
DROP TABLE mail_services;
