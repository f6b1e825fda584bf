-- +goose Up
-- spam_reports are the messages customers moved into Spam (spam) or out
-- of it (ham) over IMAP, as Dovecot's report program described them: no
-- body, only what identifies the message and its spam headers. Kept 30
-- days (the periodic prune); the event is what learners consume.
CREATE TABLE spam_reports (
    id           uuid PRIMARY KEY,
    address_id   uuid NOT NULL REFERENCES addresses ON DELETE CASCADE,
    spam         boolean NOT NULL,
    message_id   text NOT NULL,
    from_header  text NOT NULL,
    subject      text NOT NULL,
    sha256       text NOT NULL,
    size_bytes   bigint NOT NULL,
    spam_headers jsonb NOT NULL,
    create_time  timestamptz NOT NULL DEFAULT now()
);
-- The hourly cap counts an address's recent reports.
CREATE INDEX spam_reports_address ON spam_reports (address_id, create_time);
CREATE INDEX spam_reports_time ON spam_reports (create_time);

-- Reports name the address by its Dovecot login.
CREATE INDEX addresses_login ON addresses (login);

-- +goose Down
DROP INDEX addresses_login;
DROP TABLE spam_reports;
