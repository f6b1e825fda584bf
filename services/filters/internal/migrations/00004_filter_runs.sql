-- +goose Up
-- filter_runs are "run now" jobs: an address's rules (a snapshot taken
-- at the start, so a resumed run applies the same ones) applied to stored
-- mail. progress is runnow.Progress: the counters and the checkpoint a
-- resumed job starts from. One running run per address.
CREATE TABLE filter_runs (
    id                uuid PRIMARY KEY,
    address_id        uuid NOT NULL REFERENCES addresses ON DELETE CASCADE,
    rule_id           uuid,
    rules             jsonb NOT NULL,
    folder            text NOT NULL,
    subfolders        boolean NOT NULL,
    dry_run           boolean NOT NULL,
    state             smallint NOT NULL,
    progress          jsonb,
    entry_count       integer NOT NULL DEFAULT 0,
    entries_truncated boolean NOT NULL DEFAULT false,
    error             text NOT NULL DEFAULT '',
    create_time       timestamptz NOT NULL DEFAULT now(),
    end_time          timestamptz
);
CREATE UNIQUE INDEX filter_runs_one_running ON filter_runs (address_id) WHERE state = 1;
CREATE INDEX filter_runs_by_address ON filter_runs (address_id, create_time DESC, id DESC);

-- filter_run_entries are what a dry run found, in the order it met the
-- messages (seq), at most 10,000 per run.
CREATE TABLE filter_run_entries (
    run_id     uuid NOT NULL REFERENCES filter_runs ON DELETE CASCADE,
    seq        integer NOT NULL,
    folder     text NOT NULL,
    uid        bigint NOT NULL,
    message_id text NOT NULL,
    sender     text NOT NULL,
    subject    text NOT NULL,
    actions    text[] NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- +goose Down
DROP TABLE filter_run_entries;
DROP TABLE filter_runs;
