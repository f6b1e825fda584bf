package pg

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Probe tells whether the database of a pool can be reached. It pings over a
// connection of its own, not one of the pool's: under a heavy load every
// pooled connection is busy, and a probe that waited for one would call a
// busy service down.
type Probe struct {
	cfg  *pgx.ConnConfig
	mu   sync.Mutex
	conn *pgx.Conn
}

// NewProbe returns a probe of pool's database.
func NewProbe(pool *pgxpool.Pool) *Probe {
	return &Probe{cfg: pool.Config().ConnConfig.Copy()}
}

// Check connects if need be and pings the database; ctx bounds both.
func (p *Probe) Check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil || p.conn.IsClosed() {
		c, err := pgx.ConnectConfig(ctx, p.cfg)
		if err != nil {
			return fmt.Errorf("connect to database: %w", err)
		}
		p.conn = c
	}
	if err := p.conn.Ping(ctx); err != nil {
		p.conn.Close(context.WithoutCancel(ctx))
		p.conn = nil
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close closes the probe's connection.
func (p *Probe) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		p.conn.Close(context.Background())
		p.conn = nil
	}
}
