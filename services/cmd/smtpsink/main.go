// Command smtpsink is the SMTP server the lists benchmark sends into, for
// the lists service and for GNU Mailman alike: plain SMTP on loopback, no
// TLS, no AUTH, every message accepted, counted and thrown away. It checks
// that each copy is personalized: one recipient, a return path that names
// it (VERP, local=domain) and a body that names it (the footer), so that a
// run which silently fell back to shared copies shows.
//
//	smtpsink -addr 127.0.0.1:8025 -http 127.0.0.1:8026 -footer 'subscribed as %s'
//
// GET http://127.0.0.1:8026/ returns the counts as JSON; POST /reset zeroes
// them.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8025", "SMTP address")
	web := flag.String("http", "127.0.0.1:8026", "address of the counts (GET /, POST /reset)")
	footer := flag.String("footer", "subscribed as %s", "what a personalized body holds, %s the recipient")
	flag.Parse()
	if err := run(*addr, *web, *footer); err != nil {
		fmt.Fprintln(os.Stderr, "smtpsink:", err)
		os.Exit(1)
	}
}

// counts is what the sink received since the last reset. First and Last
// are the times of the first and last message accepted (Unix seconds), so
// a rate is Messages-1 over Last-First, without the client's polling.
type counts struct {
	Messages     int     `json:"messages"`
	Recipients   int     `json:"recipients"`
	Bytes        int64   `json:"bytes"`
	Personalized int     `json:"personalized"` // one recipient, named in the body
	VERP         int     `json:"verp"`         // one recipient, named in the return path
	Connections  int     `json:"connections"`
	First        float64 `json:"first"`
	Last         float64 `json:"last"`
}

type sink struct {
	footer string
	mu     sync.Mutex
	c      counts
}

func run(addr, web, footer string) error {
	s := &sink{footer: footer}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := smtp.NewServer(s)
	srv.Domain = "sink.localhost"
	srv.MaxMessageBytes = 64 << 20
	srv.MaxRecipients = 1000
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		c := s.c
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c)
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		s.c = counts{}
		s.mu.Unlock()
	})
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(lis) }()
	go func() { errc <- http.ListenAndServe(web, mux) }()
	log.Printf("smtpsink: SMTP on %s, counts on http://%s/", lis.Addr(), web)
	return <-errc
}

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.c.Connections++
	s.mu.Unlock()
	return &session{s: s}, nil
}

type session struct {
	s    *sink
	from string
	to   []string
	buf  bytes.Buffer
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	ss.buf.Reset()
	if _, err := ss.buf.ReadFrom(r); err != nil {
		return err
	}
	var personal, verp bool
	if len(ss.to) == 1 {
		rcpt := ss.to[0]
		// The footer may be folded or encoded in a real mail; the
		// benchmark's addresses are short and ASCII, so it is not.
		personal = bytes.Contains(ss.buf.Bytes(), []byte(fmt.Sprintf(ss.s.footer, rcpt)))
		verp = strings.Contains(ss.from, "+"+strings.Replace(rcpt, "@", "=", 1)+"@")
	}
	now := float64(time.Now().UnixNano()) / 1e9
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	c := &ss.s.c
	if c.Messages == 0 {
		c.First = now
	}
	c.Last = now
	c.Messages++
	c.Recipients += len(ss.to)
	c.Bytes += int64(ss.buf.Len())
	if personal {
		c.Personalized++
	}
	if verp {
		c.VERP++
	}
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }
