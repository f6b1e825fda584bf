package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// load is the steady REST load on the edge and what it saw.
type load struct {
	base   string
	client *http.Client
	token  string
	org    string
	ms     string

	creates, reads opCounts
	n              atomic.Int64

	mu sync.Mutex
	// made maps each create's local part to the address name the edge
	// answered; lost holds the local parts of creates the client gave up.
	made map[string]string
	lost map[string]bool
	// failures are a few answers that were not retried, for the report.
	failures []string
}

// opCounts count one kind of request. An operation is what the client
// wants done; its attempts include the retries.
type opCounts struct {
	sent, attempts, retried, succeeded, lost, exhausted, duplicates atomic.Int64
}

// Retrying: a well-behaved client waits the Retry-After it is given (or
// backs off from retryBase, doubling up to retryMax) and gives up after
// retryFor.
const (
	retryBase     = 200 * time.Millisecond
	retryMax      = 4 * time.Second
	retryFor      = 90 * time.Second
	attemptFor    = 30 * time.Second
	maxFailureLog = 20
)

// newLoad signs a user up through the edge, with an organization and a
// mail service whose addresses the load creates.
func newLoad(ctx context.Context, base string) (*load, error) {
	l := &load{
		base: base,
		client: &http.Client{Timeout: attemptFor, Transport: &http.Transport{
			MaxIdleConnsPerHost: 100,
			IdleConnTimeout:     90 * time.Second,
		}},
		made: map[string]string{},
		lost: map[string]bool{},
	}
	email := "rollout-" + randomHex(4) + "@example.com"
	password := "rolling restart password"
	var ignore any
	if err := l.setup(ctx, http.MethodPost, "/v1/auth:signUp", map[string]string{"email": email, "password": password, "displayName": "Rollout", "organizationDisplayName": "Rollout"}, &ignore); err != nil {
		return nil, fmt.Errorf("sign up: %w", err)
	}
	var in struct {
		AccessToken string `json:"accessToken"`
	}
	if err := l.setup(ctx, http.MethodPost, "/v1/auth:signIn", map[string]string{"email": email, "password": password}, &in); err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	l.token = in.AccessToken
	var me struct {
		Memberships []struct {
			Name string `json:"name"`
		} `json:"memberships"`
	}
	if err := l.setup(ctx, http.MethodGet, "/v1/users/me", nil, &me); err != nil || len(me.Memberships) == 0 {
		return nil, fmt.Errorf("users/me: %v", err)
	}
	l.org, _, _ = strings.Cut(me.Memberships[0].Name, "/members/")
	var ms struct {
		Name string `json:"name"`
	}
	if err := l.setup(ctx, http.MethodPost, "/v1/"+l.org+"/mailServices", map[string]string{"domain": "rollout-" + randomHex(4) + ".example"}, &ms); err != nil {
		return nil, fmt.Errorf("mail service: %w", err)
	}
	l.ms = ms.Name
	return l, nil
}

// setup sends one request of the setup, retried as the load's are, and
// decodes its answer into v.
func (l *load) setup(ctx context.Context, method, path string, body any, v any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	var c opCounts
	res := l.do(ctx, &c, method, path, b, "")
	if res.err != nil {
		return res.err
	}
	return json.Unmarshal(res.body, v)
}

// run starts a create and a read every 1/rate seconds until ctx is done,
// then waits for the operations in flight (and their retries) to end.
func (l *load) run(ctx context.Context, rate float64) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	// Retries outlive the load's end: an operation is not abandoned
	// because the run is over.
	opCtx := context.WithoutCancel(ctx)
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
		}
		n := l.n.Add(1)
		wg.Go(func() { l.create(opCtx, n) })
		wg.Go(func() { l.read(opCtx, n) })
	}
}

// create makes address r<n>, with a key of its own kept for every retry.
func (l *load) create(ctx context.Context, n int64) {
	local := "r" + strconv.FormatInt(n, 10)
	body, _ := json.Marshal(map[string]any{"address": map[string]string{"localPart": local}})
	res := l.do(ctx, &l.creates, http.MethodPost, "/v1/"+l.ms+"/addresses", body, uuid.NewString())
	l.mu.Lock()
	defer l.mu.Unlock()
	if res.err != nil {
		l.lost[local] = true
		return
	}
	var a struct {
		Address struct {
			Name string `json:"name"`
		} `json:"address"`
	}
	if err := json.Unmarshal(res.body, &a); err != nil || a.Address.Name == "" {
		l.lost[local] = true
		l.fail(fmt.Sprintf("create %s: answer without a name: %s", local, res.body))
		return
	}
	l.made[local] = a.Address.Name
}

// read asks for the caller, or a page of addresses, in turn.
func (l *load) read(ctx context.Context, n int64) {
	path := "/v1/users/me"
	if n%2 == 0 {
		path = "/v1/" + l.ms + "/addresses?pageSize=10"
	}
	l.do(ctx, &l.reads, http.MethodGet, path, nil, "")
}

// result is an operation's end: the successful answer's body, or why it
// was given up.
type result struct {
	body []byte
	err  error
}

// do runs one operation, retrying what a client may retry: a request that
// got no answer (refused, reset, timed out: a create carries its
// Idempotency-Key, so sending it again cannot make a second address), 502,
// 503, 504 and 429, and 409 ABORTED (the same key running at the same
// time, its first attempt cut off). A 409 ALREADY_EXISTS on a retry means
// the key did not answer the first attempt's result: a duplicate.
func (l *load) do(ctx context.Context, c *opCounts, method, path string, body []byte, key string) result {
	c.sent.Add(1)
	deadline := time.Now().Add(retryFor)
	for attempt := 0; ; attempt++ {
		c.attempts.Add(1)
		if attempt == 1 {
			c.retried.Add(1)
		}
		status, answer, header, err := l.send(ctx, method, path, body, key)
		var wait time.Duration
		switch {
		case err != nil:
			wait = backoff(attempt)
		case status >= 200 && status < 300:
			c.succeeded.Add(1)
			return result{body: answer}
		case retriable(status, answer):
			wait = backoff(attempt)
			if s, err := strconv.Atoi(header.Get("Retry-After")); err == nil && s > 0 {
				wait = min(time.Duration(s)*time.Second, retryMax)
			}
		default:
			if attempt > 0 && status == http.StatusConflict && rpcCode(answer) == "ALREADY_EXISTS" {
				c.duplicates.Add(1)
			} else {
				c.lost.Add(1)
			}
			err := fmt.Errorf("%s %s: %d %s", method, path, status, bytes.TrimSpace(answer))
			l.mu.Lock()
			l.fail(fmt.Sprintf("attempt %d: %v", attempt+1, err))
			l.mu.Unlock()
			return result{err: err}
		}
		if time.Now().Add(wait).After(deadline) {
			c.exhausted.Add(1)
			err := fmt.Errorf("%s %s: gave up after %d attempts (last: %d %v)", method, path, attempt+1, status, err)
			l.mu.Lock()
			l.fail(err.Error())
			l.mu.Unlock()
			return result{err: err}
		}
		time.Sleep(wait)
	}
}

// send makes one attempt.
func (l *load) send(ctx context.Context, method, path string, body []byte, key string) (int, []byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if l.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		// The answer was cut off: as good as none.
		return 0, nil, nil, err
	}
	return resp.StatusCode, b, resp.Header, nil
}

// retriable reports whether an answer asks the client to try again.
func retriable(status int, body []byte) bool {
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return true
	case http.StatusConflict:
		return rpcCode(body) == "ABORTED"
	}
	return false
}

// rpcCode is the name of the google.rpc.Status code of an error body.
func rpcCode(body []byte) string {
	var st struct {
		Code int `json:"code"`
	}
	if json.Unmarshal(body, &st) != nil {
		return ""
	}
	switch st.Code {
	case 6:
		return "ALREADY_EXISTS"
	case 10:
		return "ABORTED"
	}
	return strconv.Itoa(st.Code)
}

func backoff(attempt int) time.Duration {
	d := retryBase << min(attempt, 10)
	return min(d, retryMax)
}

// fail keeps a few failures for the report; l.mu is held.
func (l *load) fail(s string) {
	if len(l.failures) < maxFailureLog {
		l.failures = append(l.failures, s)
	}
}

// loadCounts are the load's counts, copied.
type loadCounts struct {
	creates, reads counts
	failures       []string
}

type counts struct {
	sent, attempts, retried, succeeded, lost, exhausted, duplicates int64
}

func (c *opCounts) snapshot() counts {
	return counts{c.sent.Load(), c.attempts.Load(), c.retried.Load(), c.succeeded.Load(), c.lost.Load(), c.exhausted.Load(), c.duplicates.Load()}
}

func (l *load) counts() loadCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadCounts{creates: l.creates.snapshot(), reads: l.reads.snapshot(), failures: append([]string(nil), l.failures...)}
}
