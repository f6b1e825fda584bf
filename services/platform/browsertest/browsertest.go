// Package browsertest starts Debian's headless Chromium for tests that
// drive a page through github.com/chromedp/chromedp, and collects what the
// page reports as errors.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// New starts a headless Chromium that lives as long as t and returns its
// browser context (no timeout: give each step its own). Without chromium
// the test skips, except in CI, where it must run.
func New(t *testing.T) context.Context {
	t.Helper()
	chrome := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancel)
	browser, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first run starts the browser, which lives as long as its context.
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return browser
}

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed, and CI must run the browser tests: apt-get install chromium (.ci/run does)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the browser test is skipped outside CI")
	return ""
}

// Errors collects what a page reports as errors: console.error calls,
// uncaught exceptions, and the browser's own error entries (a resource
// that failed to load, a Content-Security-Policy violation).
type Errors struct {
	mu   sync.Mutex
	list []string
}

// Listen starts collecting the errors of the tab of ctx (chromedp enables
// the runtime and log domains when it attaches); call it before
// navigating.
func Listen(ctx context.Context) (*Errors, error) {
	e := &Errors{}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, strings.Trim(string(a.Value), `"`)+a.Description)
				}
				e.add("console." + string(ev.Type) + ": " + strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			e.add(fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				e.add(fmt.Sprintf("%s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("listen to the page's errors: %w", err)
	}
	return e, nil
}

func (e *Errors) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, s)
}

// List returns the errors so far.
func (e *Errors) List() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.list...)
}
