-- +goose Up
-- A list's web form settings and its one-click unsubscribe key, one row
-- per list, made when first needed. one_click_key seals the member
-- addresses in the List-Unsubscribe URLs (AES-256-GCM, see
-- unsubscribe.go): random per list, so that a key leaked with one list's
-- row forges nothing on another, and deleting the list retires it.
CREATE TABLE list_forms (
    list_id         uuid PRIMARY KEY REFERENCES lists ON DELETE CASCADE,
    redirect_urls   text[]      NOT NULL DEFAULT '{}',
    allowed_origins text[]      NOT NULL DEFAULT '{}',
    one_click_key   bytea       NOT NULL,
    update_time     timestamptz NOT NULL DEFAULT now()
);

-- Fixed-window counters of public form calls, keyed "<route> client:<ip>",
-- in the database so that every replica counts the same (as accounts'
-- sign_in_attempts).
CREATE TABLE form_hits (
    key          text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    hits         integer     NOT NULL
);
CREATE INDEX form_hits_window_start ON form_hits (window_start);

-- +goose Down
DROP TABLE form_hits, list_forms;
