-- +goose Up
-- addresses is the local copy of mailboxes' addresses (from its
-- address events): who may manage each one's filters is decided here,
-- without a call to mailboxes on every request.
CREATE TABLE addresses (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    mail_service_id uuid NOT NULL,
    login           text NOT NULL,
    create_time     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX addresses_mail_service ON addresses (mail_service_id, id);

-- address_users are an address's users and whether they hold the
-- "filters" right (mailboxes: unset rights mean all of them).
CREATE TABLE address_users (
    address_id uuid NOT NULL REFERENCES addresses ON DELETE CASCADE,
    user_id    uuid NOT NULL,
    filters    boolean NOT NULL,
    PRIMARY KEY (address_id, user_id)
);

-- settings are an address's platform filters, made with defaults when
-- the address is announced.
CREATE TABLE settings (
    address_id          uuid PRIMARY KEY REFERENCES addresses ON DELETE CASCADE,
    anti_spam           boolean NOT NULL DEFAULT true,
    spam_folder         text NOT NULL DEFAULT 'Spam',
    ad_filter           boolean NOT NULL DEFAULT true,
    newsletter_folder   text NOT NULL DEFAULT 'Newsletters',
    notification_folder text NOT NULL DEFAULT 'Notifications',
    blocked_senders     text[] NOT NULL DEFAULT '{}',
    allowed_senders     text[] NOT NULL DEFAULT '{}',
    reject_blocked      boolean NOT NULL DEFAULT false,
    external_mention    boolean NOT NULL DEFAULT false,
    update_time         timestamptz NOT NULL DEFAULT now()
);

-- rules are an address's own rules, run by position (0, 1, ...; dense).
-- conditions and actions are JSON of the API's messages.
CREATE TABLE rules (
    id           uuid PRIMARY KEY,
    address_id   uuid NOT NULL REFERENCES addresses ON DELETE CASCADE,
    position     integer NOT NULL,
    display_name text NOT NULL,
    disabled     boolean NOT NULL DEFAULT false,
    match_any    boolean NOT NULL DEFAULT false,
    conditions   jsonb NOT NULL,
    actions      jsonb NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now(),
    update_time  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rules_position UNIQUE (address_id, position) DEFERRABLE INITIALLY DEFERRED
);

-- pending_installs are the addresses whose scripts changed and are not
-- installed yet; version grows with each change, so that an install of
-- an older state does not clear a newer one.
CREATE TABLE pending_installs (
    address_id  uuid PRIMARY KEY REFERENCES addresses ON DELETE CASCADE,
    version     bigint NOT NULL DEFAULT 1,
    since       timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE pending_installs;
DROP TABLE rules;
DROP TABLE settings;
DROP TABLE address_users;
DROP TABLE addresses;
