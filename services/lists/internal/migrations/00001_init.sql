-- +goose Up
-- Discussion lists. local_key is the local part in lower case: the list's
-- address and its robot addresses (-request, -join, ...) are reserved in
-- mailboxes under it. domain is the mail service's, copied at creation
-- (a mail service's domain never changes).
CREATE TABLE lists (
    id                  uuid PRIMARY KEY,
    organization_id     uuid        NOT NULL,
    mail_service_id     uuid        NOT NULL,
    local_part          text        NOT NULL,
    local_key           text        NOT NULL,
    domain              text        NOT NULL,
    display_name        text        NOT NULL DEFAULT '',
    description         text        NOT NULL DEFAULT '',
    -- [{"user": "users/…"} | {"email": "…"}]
    moderators          jsonb       NOT NULL DEFAULT '[]',
    language            smallint    NOT NULL,
    subscription_policy smallint    NOT NULL,
    posting_policy      smallint    NOT NULL,
    reply_to            smallint    NOT NULL,
    subject_prefix      text        NOT NULL DEFAULT '',
    max_message_bytes   bigint      NOT NULL,
    footer_text         text        NOT NULL DEFAULT '',
    footer_html         text        NOT NULL DEFAULT '',
    welcome_message     text        NOT NULL DEFAULT '',
    goodbye_message     text        NOT NULL DEFAULT '',
    -- argon2id (platform/passwords); '' when none is set.
    moderator_password  text        NOT NULL DEFAULT '',
    -- Kept with each member added or removed, in the same transaction.
    member_count        integer     NOT NULL DEFAULT 0,
    create_time         timestamptz NOT NULL DEFAULT now(),
    update_time         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT lists_local_key UNIQUE (mail_service_id, local_key)
);
CREATE INDEX lists_organization ON lists (organization_id);

-- Members. email_key is the address with its domain in lower case: one
-- membership per address and list.
CREATE TABLE members (
    id           uuid PRIMARY KEY,
    list_id      uuid        NOT NULL REFERENCES lists ON DELETE CASCADE,
    email        text        NOT NULL,
    email_key    text        NOT NULL,
    display_name text        NOT NULL DEFAULT '',
    create_time  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT members_email UNIQUE (list_id, email_key)
);

-- What remains of a member who left (GDPR): when and how consent was
-- given and withdrawn, without the address.
CREATE TABLE consents (
    id            uuid PRIMARY KEY,
    list_id       uuid        NOT NULL REFERENCES lists ON DELETE CASCADE,
    given_time    timestamptz NOT NULL,
    given_by      text        NOT NULL,
    withdrawn_time timestamptz NOT NULL DEFAULT now(),
    withdrawn_by  text        NOT NULL
);

-- +goose Down
DROP TABLE consents, members, lists;
