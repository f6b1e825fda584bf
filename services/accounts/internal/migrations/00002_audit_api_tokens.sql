-- +goose Up
-- API tokens: machines' credentials, one organization and one role each. The
-- secret is stored as a SHA-256 hash (it is 32 random bytes: no need for a
-- slow hash).
CREATE TABLE api_tokens (
    id              uuid PRIMARY KEY,
    organization_id uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    display_name    text        NOT NULL,
    role            text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    secret_hash     bytea       NOT NULL,
    creator_id      uuid        REFERENCES users ON DELETE SET NULL,
    create_time     timestamptz NOT NULL DEFAULT now(),
    expire_time     timestamptz,
    last_use_time   timestamptz,
    revoke_time     timestamptz
);
CREATE INDEX api_tokens_organization ON api_tokens (organization_id, create_time DESC);

-- The audit log. Append-only: no API edits it, and the database refuses to
-- delete an entry or change what it says happened. Only who did it may be
-- rewritten, to pseudonymize a person who deleted their account.
CREATE TABLE audit_entries (
    id                 uuid PRIMARY KEY,
    organization_id    uuid        NOT NULL,
    actor              text        NOT NULL,
    actor_display_name text        NOT NULL,
    action             text        NOT NULL,
    target             text        NOT NULL,
    client_address     text        NOT NULL,
    outcome            text        NOT NULL CHECK (outcome IN ('succeeded', 'denied', 'failed')),
    details            jsonb       NOT NULL DEFAULT '{}',
    create_time        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_entries_organization_time ON audit_entries (organization_id, create_time DESC, id DESC);

-- +goose StatementBegin
CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit entries cannot be deleted';
    END IF;
    IF (NEW.id, NEW.organization_id, NEW.action, NEW.target, NEW.outcome, NEW.details, NEW.create_time)
       IS DISTINCT FROM
       (OLD.id, OLD.organization_id, OLD.action, OLD.target, OLD.outcome, OLD.details, OLD.create_time) THEN
        RAISE EXCEPTION 'audit entries cannot be changed';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();

-- +goose Down
DROP TABLE audit_entries;
DROP FUNCTION audit_entries_append_only();
DROP TABLE api_tokens;
