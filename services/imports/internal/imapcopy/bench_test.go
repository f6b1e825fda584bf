package imapcopy

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/platform/dovecottest"
)

// BenchmarkCopy copies MAILPLANE_IMAPCOPY_BENCH messages (70% 2-8 KB, 25%
// 20-100 KB, 5% 0.5-2 MB, in four folders) from one Dovecot account into
// three others: with Debian's mbsync, with doveadm backup (imapc: over
// IMAP), and with Run; each one's messages/s, MB/s and peak RSS are
// reported (docs/benchmarks.md). Without the variable it is skipped:
//
//	MAILPLANE_IMAPCOPY_BENCH=10000 go test -run '^$' -bench Copy -benchtime 1x ./services/imports/internal/imapcopy/
func BenchmarkCopy(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("MAILPLANE_IMAPCOPY_BENCH"))
	if n <= 0 {
		b.Skip("MAILPLANE_IMAPCOPY_BENCH (a number of messages) is not set")
	}
	const pw = "bench secret"
	d := dovecottest.New(b)
	users := map[string]string{"src@bench.test": pw}
	for i := 0; i < b.N; i++ {
		for _, tool := range []string{"mbsync", "doveadm", "imapcopy"} {
			users[fmt.Sprintf("%s%d@bench.test", tool, i)] = pw
		}
	}
	d.Start(b, d.StoreConf(b, dovecottest.Store{Separator: "/", Users: users}))
	total := seedMaildir(b, d, "src@bench.test", n)
	// Dovecot indexes the source once, before any tool reads it.
	cmdOutput(b, append(d.Doveadm(), "mailbox", "status", "-u", "src@bench.test", "messages", "*")...)
	mb := float64(total) / 1e6
	b.Logf("%d messages, %.1f MB", n, mb)
	host, port, _ := strings.Cut(d.Addr, ":")

	// MAILPLANE_IMAPCOPY_BENCH_ONLY=imapcopy runs that tool alone.
	only := os.Getenv("MAILPLANE_IMAPCOPY_BENCH_ONLY")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		report := func(tool string, elapsed time.Duration, rssKiB int64, user string) {
			if got := count(b, d, user); got != n {
				b.Errorf("%s copied %d messages, want %d", tool, got, n)
			}
			s := elapsed.Seconds()
			b.ReportMetric(float64(n)/s, tool+"-msg/s")
			b.ReportMetric(mb/s, tool+"-MB/s")
			b.ReportMetric(float64(rssKiB)/1024, tool+"-peak-MiB")
			b.Logf("%-9s %6.1f s  %6.0f msg/s  %5.1f MB/s  peak RSS %4.0f MiB", tool, s, float64(n)/s, mb/s, float64(rssKiB)/1024)
		}

		// mbsync: pull everything, arrival dates kept.
		dir := b.TempDir()
		if only == "" || only == "mbsync" {
			dst := fmt.Sprintf("mbsync%d@bench.test", i)
			conf := filepath.Join(dir, "mbsyncrc")
			os.WriteFile(conf, []byte(fmt.Sprintf(`IMAPAccount src
Host %[1]s
Port %[2]s
User src@bench.test
Pass "%[3]s"
SSLType None
AuthMechs LOGIN

IMAPStore src
Account src

IMAPAccount dst
Host %[1]s
Port %[2]s
User %[4]s
Pass "%[3]s"
SSLType None
AuthMechs LOGIN

IMAPStore dst
Account dst

Channel copy
Far :src:
Near :dst:
Patterns *
Create Near
Sync Pull
Expunge None
CopyArrivalDate yes
SyncState %[5]s/
`, host, port, pw, dst, dir)), 0o600)
			elapsed, rss := measure(b, "mbsync", "-q", "-c", conf, "copy")
			report("mbsync", elapsed, rss, dst)
		}

		// doveadm backup from the source over IMAP (imapc), as Dovecot's
		// own migration does.
		if only == "" || only == "doveadm" {
			dst := fmt.Sprintf("doveadm%d@bench.test", i)
			args := append(d.Doveadm(), "-o", "imapc_host="+host, "-o", "imapc_port="+port, "-o", "imapc_user=src@bench.test",
				"-o", "imapc_password="+pw, "-o", "imapc_features=rfc822.size fetch-headers", "-o", "mail_prefetch_count=20",
				"backup", "-R", "-u", dst, "imapc:")
			elapsed, rss := measure(b, args[0], args[1:]...)
			report("doveadm", elapsed, rss, dst)
		}
		if only != "" && only != "imapcopy" {
			continue
		}

		// Run, in this process: its peak RSS is this process's, counted
		// from here (Linux: clear_refs 5 resets VmHWM).
		dst := fmt.Sprintf("imapcopy%d@bench.test", i)
		debug.FreeOSMemory()
		os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
		start := time.Now()
		p, err := Run(context.Background(), Job{
			Sources:     []Account{account(d, "src@bench.test", pw)},
			Destination: account(d, dst, pw),
			Checkpoints: &memCheckpoints{},
		})
		if err != nil {
			b.Fatalf("Run: %v", err)
		}
		elapsed := time.Since(start)
		if p.MessagesCopied != int64(n) {
			b.Errorf("Run: %+v", p)
		}
		report("imapcopy", elapsed, vmHWM(b), dst)
	}
}

// seedMaildir writes n messages straight into user's maildir, the way
// Dovecot delivers them, and returns their bytes.
func seedMaildir(b *testing.B, d *dovecottest.Dovecot, user string, n int) int64 {
	r := rand.New(rand.NewPCG(1, 2))
	home := filepath.Join(d.Vmail, user)
	folders := []string{"", ".Archive.2024", ".Sent", ".Projects.Alpha"}
	var uid, gid int
	if fi, err := os.Stat(d.Vmail); err == nil {
		st := fi.Sys().(*syscall.Stat_t)
		uid, gid = int(st.Uid), int(st.Gid)
	}
	var dirs []string
	for _, f := range folders {
		dir := filepath.Join(home, "Maildir", f)
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
				b.Fatal(err)
			}
		}
		dirs = append(dirs, dir)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	line := make([]byte, 78)
	var total int64
	for i := 0; i < n; i++ {
		var size int
		switch p := r.IntN(100); {
		case p < 70:
			size = 2<<10 + r.IntN(6<<10)
		case p < 95:
			size = 20<<10 + r.IntN(80<<10)
		default:
			size = 512<<10 + r.IntN(1536<<10)
		}
		folder := 0
		if p := r.IntN(10); p >= 6 {
			folder = p - 6
			if folder > 3 {
				folder = 3
			}
		}
		date := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
		name := fmt.Sprintf("%d.M%dP1.bench:2,S", date.Unix(), i)
		path := filepath.Join(dirs[folder], "cur", name)
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriter(f)
		head := fmt.Sprintf("Message-ID: <%d.bench@example.net>\r\nFrom: Bench <bench@example.net>\r\nTo: src@bench.test\r\nDate: %s\r\nSubject: message %d\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n",
			i, date.Format(time.RFC1123Z), i)
		w.WriteString(head)
		written := len(head)
		for written < size {
			for j := 0; j < 76; j++ {
				line[j] = alphabet[r.IntN(64)]
			}
			line[76], line[77] = '\r', '\n'
			w.Write(line)
			written += len(line)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		os.Chtimes(path, date, date)
		total += int64(written)
	}
	filepath.Walk(home, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
	return total
}

// measure runs a command and returns how long it took and its peak RSS.
func measure(b *testing.B, name string, args ...string) (time.Duration, int64) {
	start := time.Now()
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v\n%s", name, err, out)
	}
	return elapsed, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
}

func cmdOutput(b *testing.B, args ...string) string {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// count is the number of messages user has in all folders.
func count(b *testing.B, d *dovecottest.Dovecot, user string) int {
	out := cmdOutput(b, append(d.Doveadm(), "-f", "flow", "mailbox", "status", "-u", user, "messages", "*")...)
	total := 0
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "messages="); ok {
			n, _ := strconv.Atoi(v)
			total += n
		}
	}
	return total
}

// vmHWM is this process's peak RSS in KiB.
func vmHWM(b *testing.B) int64 {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kib
		}
	}
	return 0
}
