// Package logtest collects, in tests, what is written from several
// goroutines at once: a logger's records, a child process's two pipes.
package logtest

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that may be written and read concurrently.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
