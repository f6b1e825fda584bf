package pgtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
)

// TestNewMigratedDatabase: tests asking at once for a template nobody made
// yet each get their own copy of one migrated database.
func TestNewMigratedDatabase(t *testing.T) {
	ctx := context.Background()
	// A migration no other run has, so that this test makes the template.
	migrations := fstest.MapFS{"00001_init.sql": {Data: []byte(fmt.Sprintf(`-- +goose Up
-- run %s
CREATE TABLE widgets (id int PRIMARY KEY);
-- +goose Down
DROP TABLE widgets;
`, rand.Text()))}}
	admin, err := pgx.Connect(ctx, NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(ctx) })
	schema := Schema{Name: "widgets", Migrations: migrations}
	name, err := templateName([]Schema{schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(ctx, "DROP DATABASE "+name) })

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				c, err := pgx.Connect(ctx, NewMigratedDatabase(t, schema))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close(ctx)
				if _, err := c.Exec(ctx, fmt.Sprintf("INSERT INTO widgets.widgets VALUES (%d)", i)); err != nil {
					t.Fatal(err)
				}
				var n int
				if err := c.QueryRow(ctx, "SELECT count(*) FROM widgets.widgets").Scan(&n); err != nil || n != 1 {
					t.Errorf("%d widgets (%v), want only this test's", n, err)
				}
			})
		})
	}
	wg.Wait()

	rows, _ := admin.Query(ctx, "SELECT datname, datallowconn FROM pg_database WHERE datname IN ($1::text, $1::text || '_building')", name)
	got, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody may connect to the template: a connection would make every
	// copy fail. Nothing unfinished is left beside it.
	want := []map[string]any{{"datname": name, "datallowconn": false}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("databases named after the template (-want +got):\n%s", diff)
	}
}
