package install

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/filters/internal/rules"
	"github.com/mailplane/mailplane/services/platform/dovecottest"
	"golang.org/x/sync/errgroup"
)

// benchScripts are the scripts of an address with the default platform
// filters and two rules, compiled as the service does.
func benchScripts(b *testing.B) Scripts {
	b.Helper()
	personal, err := rules.Compile([]rules.Rule{
		{Name: "invoices", Enabled: true, Match: rules.All, Conditions: []rules.Condition{{Field: rules.Subject, Op: rules.Contains, Value: "invoice"}}, Actions: []rules.Action{{Kind: rules.Flag}, {Kind: rules.Move, Folder: "Invoices"}}},
		{Name: "boss", Enabled: true, Match: rules.All, Conditions: []rules.Condition{{Field: rules.From, Op: rules.Contains, Value: "boss@"}}, Actions: []rules.Action{{Kind: rules.Move, Folder: "Work/Boss"}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	before, after, err := rules.Platform{Spam: true, SpamFolder: "Spam", Ads: true, NewsletterFolder: "Newsletters", NoticeFolder: "Notifications"}.Scripts("")
	if err != nil {
		b.Fatal(err)
	}
	s, err := FromRules(before, after, personal)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkInstall1000 installs the scripts of 1,000 addresses into a
// real Dovecot configured as deployed: one Install per address, in turn
// (as one install job does) and from 4 and 10 at once (the job workers of
// a replica; 10 is jobs' default): addresses/s.
func BenchmarkInstall1000(b *testing.B) {
	m := dovecottest.StartMail(b, nil)
	in := &Installer{Addr: m.SieveAddr, Personal: Login{dovecottest.PersonalMaster, dovecottest.PersonalSecret},
		Platform: Login{dovecottest.PlatformMaster, dovecottest.PlatformSecret}, Timeout: 30 * time.Second}
	s := benchScripts(b)
	ctx := context.Background()
	for _, workers := range []int{1, 4, 10} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			start := time.Now()
			for i := 0; i < b.N; i++ {
				next := make(chan int)
				var g errgroup.Group
				for range workers {
					g.Go(func() error {
						for a := range next {
							if err := in.Install(ctx, "bench"+strconv.Itoa(a)+"@example.test", s); err != nil {
								return err
							}
						}
						return nil
					})
				}
				for a := range 1000 {
					next <- a
				}
				close(next)
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(1000*b.N)/time.Since(start).Seconds(), "addresses/s")
		})
	}
}
