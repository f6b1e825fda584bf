-- +goose Up
-- The mail services whose domains are diagnosed: a copy of what mailboxes
-- publishes (its mail_service events) from its verification to its purge;
-- a deleted one is inactive (its keys and changes kept for an undelete).
CREATE TABLE mail_services (
    id                   uuid PRIMARY KEY,
    organization_id      uuid        NOT NULL,
    domain               text        NOT NULL CHECK (domain = lower(domain)),
    active               boolean     NOT NULL DEFAULT true,
    -- Selectors of the customer's other senders (a newsletter tool's),
    -- checked beside ours.
    other_dkim_selectors text[]      NOT NULL DEFAULT '{}',
    create_time          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_services_organization ON mail_services (organization_id);
CREATE INDEX mail_services_domain ON mail_services (domain);

-- The last diagnostic of each mail service, as the API returns it
-- (dnssecurityv1.Diagnostic, protobuf): read without running again.
CREATE TABLE diagnostics (
    mail_service_id uuid PRIMARY KEY REFERENCES mail_services ON DELETE CASCADE,
    status          smallint    NOT NULL,
    diagnostic      bytea       NOT NULL,
    run_time        timestamptz NOT NULL
);
-- The daily run takes the oldest first.
CREATE INDEX diagnostics_run_time ON diagnostics (run_time);

-- Zones we host and may update (RFC 2136 with TSIG). The secret is sealed
-- with the service's secret key (platform/secret), bound to the row's id.
CREATE TABLE hosted_zones (
    id              uuid PRIMARY KEY,
    organization_id uuid        NOT NULL,
    domain          text        NOT NULL CHECK (domain = lower(domain)),
    primary_addr    text        NOT NULL,
    servers         text[]      NOT NULL DEFAULT '{}',
    tsig_key_name   text        NOT NULL,
    tsig_algorithm  text        NOT NULL,
    tsig_secret     bytea       NOT NULL,
    create_time     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT hosted_zones_domain_key UNIQUE (domain)
);
CREATE INDEX hosted_zones_organization ON hosted_zones (organization_id, domain);

-- Every change made to a mail service's records: before, after, who,
-- when, and its propagation. state: 1 to publish (not hosted), 2
-- propagating, 3 applied, 4 failed (ChangeState).
CREATE TABLE changes (
    id              uuid PRIMARY KEY,
    mail_service_id uuid        NOT NULL REFERENCES mail_services ON DELETE CASCADE,
    kind            smallint    NOT NULL,
    record_name     text        NOT NULL,
    before_value    text        NOT NULL DEFAULT '',
    after_value     text        NOT NULL DEFAULT '',
    state           smallint    NOT NULL,
    instructions    text        NOT NULL DEFAULT '',
    error           text        NOT NULL DEFAULT '',
    actor           text        NOT NULL DEFAULT '',
    create_time     timestamptz NOT NULL DEFAULT now(),
    apply_time      timestamptz
);
CREATE INDEX changes_mail_service ON changes (mail_service_id, create_time DESC, id DESC);

-- DKIM keys: the private key sealed (platform/secret, bound to the mail
-- service and selector). state: 1 publishing, 2 active, 3 retiring, 4
-- retired (DkimKeyState); at most one active key per mail service.
CREATE TABLE dkim_keys (
    mail_service_id uuid        NOT NULL REFERENCES mail_services ON DELETE CASCADE,
    selector        text        NOT NULL,
    algorithm       smallint    NOT NULL,
    state           smallint    NOT NULL,
    record          text        NOT NULL,
    private_key     bytea       NOT NULL,
    create_time     timestamptz NOT NULL DEFAULT now(),
    activate_time   timestamptz,
    retire_time     timestamptz,
    PRIMARY KEY (mail_service_id, selector)
);
CREATE UNIQUE INDEX dkim_keys_active ON dkim_keys (mail_service_id) WHERE state = 2;

-- +goose Down
DROP TABLE dkim_keys, changes, hosted_zones, diagnostics, mail_services;
