-- +goose Up
-- addresses is the local copy of mailboxes' addresses (from its address
-- events): which addresses a caller may import into is decided here,
-- without a call to mailboxes on every request.
CREATE TABLE addresses (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL,
    mail_service_id uuid NOT NULL,
    email           text NOT NULL,
    -- login is the address's Dovecot login (local part @ ASCII domain).
    login           text NOT NULL
);
CREATE INDEX addresses_organization ON addresses (organization_id, lower(email));

-- address_users are the people who may use an address.
CREATE TABLE address_users (
    address_id uuid NOT NULL REFERENCES addresses ON DELETE CASCADE,
    user_id    uuid NOT NULL,
    PRIMARY KEY (address_id, user_id)
);

-- jobs are imports: a single import, a bulk import's parent, or one of
-- its rows (parent_id set).
CREATE TABLE jobs (
    id                 uuid PRIMARY KEY,
    organization_id    uuid NOT NULL,
    parent_id          uuid REFERENCES jobs ON DELETE CASCADE,
    -- bulk: a parent, whose progress is its rows'.
    bulk               boolean NOT NULL DEFAULT false,
    position           integer NOT NULL DEFAULT 0,
    creator            text NOT NULL,
    creator_user_id    uuid,
    -- The creator's email and language, for the confirmation.
    creator_email      text NOT NULL DEFAULT '',
    language           text NOT NULL DEFAULT 'en',
    -- destination is the address's name (empty for a bulk parent).
    destination        text NOT NULL DEFAULT '',
    destination_email  text NOT NULL DEFAULT '',
    destination_login  text NOT NULL DEFAULT '',
    -- sources are the API's Source messages without their passwords
    -- (JSON); passwords are theirs, each sealed (platform/secret), and
    -- NULL once the job has ended.
    sources            jsonb NOT NULL DEFAULT '[]',
    passwords          bytea[],
    -- hosts are the sources' servers, for the per-server limit.
    hosts              text[] NOT NULL DEFAULT '{}',
    state              text NOT NULL DEFAULT 'pending'
                       CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    error              text NOT NULL DEFAULT '',
    folders_total      integer NOT NULL DEFAULT 0,
    folders_done       integer NOT NULL DEFAULT 0,
    messages_total     bigint NOT NULL DEFAULT 0,
    messages_copied    bigint NOT NULL DEFAULT 0,
    messages_skipped   bigint NOT NULL DEFAULT 0,
    messages_failed    bigint NOT NULL DEFAULT 0,
    bytes              bigint NOT NULL DEFAULT 0,
    create_time        timestamptz NOT NULL DEFAULT now(),
    start_time         timestamptz,
    end_time           timestamptz,
    update_time        timestamptz NOT NULL DEFAULT now(),
    -- A job that has ended holds no password.
    CHECK (state IN ('pending', 'running') OR passwords IS NULL)
);
CREATE INDEX jobs_organization ON jobs (organization_id, id) WHERE parent_id IS NULL;
CREATE INDEX jobs_parent ON jobs (parent_id, position) WHERE parent_id IS NOT NULL;
CREATE INDEX jobs_running_hosts ON jobs USING gin (hosts) WHERE state = 'running';

-- folders are the checkpoints of a job: per source folder, how far it
-- was copied (imapcopy.Checkpoints).
CREATE TABLE folders (
    job_id       uuid NOT NULL REFERENCES jobs ON DELETE CASCADE,
    source       integer NOT NULL,
    folder       text NOT NULL,
    uid_validity bigint NOT NULL,
    last_uid     bigint NOT NULL,
    done         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (job_id, source, folder)
);

-- failures are the messages a job could not copy, the first 1000.
CREATE TABLE failures (
    job_id  uuid NOT NULL REFERENCES jobs ON DELETE CASCADE,
    seq     integer NOT NULL,
    source  integer NOT NULL,
    folder  text NOT NULL,
    uid     bigint NOT NULL,
    subject text NOT NULL,
    reason  text NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- +goose Down
DROP TABLE failures;
DROP TABLE folders;
DROP TABLE jobs;
DROP TABLE address_users;
DROP TABLE addresses;
