package imports

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/notify"
	"github.com/riverqueue/river"
	"time"
)

// noticeArgs is the River job sending a job's confirmation to one
// person.
type noticeArgs struct {
	Job uuid.UUID `json:"job"`
	To  string    `json:"to"`
}

func (noticeArgs) Kind() string { return "import_notice" }

// noticeAttempts is how many times a confirmation is tried.
const noticeAttempts = 10

// queueNotices queues the confirmations of ended job j in tx: to its
// destination and to whoever started it. A bulk import's rows tell
// their destinations; its parent tells the creator, once, with the sums.
func (s *Server) queueNotices(ctx context.Context, tx pgx.Tx, j *job) error {
	var to []string
	if j.destinationEmail != "" {
		to = append(to, j.destinationEmail)
	}
	if j.creatorEmail != "" && j.parent == nil && !strings.EqualFold(j.creatorEmail, j.destinationEmail) {
		to = append(to, j.creatorEmail)
	}
	for _, t := range to {
		if _, err := s.jobs.InsertTx(ctx, tx, noticeArgs{Job: j.id, To: t}, &river.InsertOpts{MaxAttempts: noticeAttempts}); err != nil {
			return fmt.Errorf("queue confirmation: %w", err)
		}
	}
	return nil
}

// noticeWorker sends a confirmation.
type noticeWorker struct {
	river.WorkerDefaults[noticeArgs]
	s *Server
}

// NextRetry waits a minute after the first failure, doubling up to an hour.
func (w *noticeWorker) NextRetry(job *river.Job[noticeArgs]) time.Time {
	return jobs.Backoff(job.Attempt, time.Minute, time.Hour)
}

// noticeFailures is how many failed messages a confirmation lists.
const noticeFailures = 20

// Work renders the confirmation in the creator's language and sends it.
func (w *noticeWorker) Work(ctx context.Context, rj *river.Job[noticeArgs]) error {
	s := w.s
	rows, _ := s.pool.Query(ctx, jobColumns+` WHERE id = $1`, rj.Args.Job)
	j, err := pgx.CollectExactlyOneRow(rows, scanJob)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read import job: %w", err)
	}
	if err := s.fill(ctx, s.pool, j); err != nil {
		return err
	}
	rows, _ = s.pool.Query(ctx, `
SELECT f.folder, f.subject, f.reason FROM failures f JOIN jobs j ON j.id = f.job_id
WHERE j.id = $1 OR j.parent_id = $1 ORDER BY j.position, f.seq LIMIT $2`, j.id, noticeFailures)
	fails, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([3]string, error) {
		var f [3]string
		return f, r.Scan(&f[0], &f[1], &f[2])
	})
	if err != nil {
		return fmt.Errorf("read failures: %w", err)
	}
	subject, body, err := confirmation(j, fails)
	if err != nil {
		return err
	}
	return s.email.Send(ctx, notify.Email{To: rj.Args.To, Subject: subject, Body: body})
}

// noticeText is a confirmation's words in one language.
type noticeText struct {
	subject map[string]string // by state
	body    string            // a text/template over noticeData
	failure string            // one failed message: folder, subject, reason
}

// noticeData are the fields a confirmation's body shows.
type noticeData struct {
	Destination, Sources                    string
	Folders, Total, Copied, Skipped, Failed string
	Bytes, Error                            string
	Failures                                []string
	More                                    string
}

var noticeTexts = map[string]noticeText{
	"en": {
		subject: map[string]string{"succeeded": "Your import into %s is done", "failed": "Your import into %s failed", "cancelled": "Your import into %s was cancelled"},
		body: `Import from {{.Sources}} into {{.Destination}}.
{{if .Error}}
It stopped: {{.Error}}
{{end}}
Folders: {{.Folders}}
Messages found: {{.Total}}
Copied: {{.Copied}}
Already there (not copied again): {{.Skipped}}
Not copied: {{.Failed}}
Size copied: {{.Bytes}}
{{if .Failures}}
Messages not copied:
{{range .Failures}}- {{.}}
{{end}}{{.More}}{{end}}`,
		failure: "%s: %q (%s)",
	},
	"fr": {
		subject: map[string]string{"succeeded": "Votre import vers %s est terminé", "failed": "Votre import vers %s a échoué", "cancelled": "Votre import vers %s a été annulé"},
		body: `Import de {{.Sources}} vers {{.Destination}}.
{{if .Error}}
Il s'est arrêté : {{.Error}}
{{end}}
Dossiers : {{.Folders}}
Messages trouvés : {{.Total}}
Copiés : {{.Copied}}
Déjà présents (non copiés à nouveau) : {{.Skipped}}
Non copiés : {{.Failed}}
Taille copiée : {{.Bytes}}
{{if .Failures}}
Messages non copiés :
{{range .Failures}}- {{.}}
{{end}}{{.More}}{{end}}`,
		failure: "%s : %q (%s)",
	},
	"de": {
		subject: map[string]string{"succeeded": "Ihr Import nach %s ist abgeschlossen", "failed": "Ihr Import nach %s ist fehlgeschlagen", "cancelled": "Ihr Import nach %s wurde abgebrochen"},
		body: `Import von {{.Sources}} nach {{.Destination}}.
{{if .Error}}
Er wurde angehalten: {{.Error}}
{{end}}
Ordner: {{.Folders}}
Gefundene Nachrichten: {{.Total}}
Kopiert: {{.Copied}}
Bereits vorhanden (nicht erneut kopiert): {{.Skipped}}
Nicht kopiert: {{.Failed}}
Kopierte Größe: {{.Bytes}}
{{if .Failures}}
Nicht kopierte Nachrichten:
{{range .Failures}}- {{.}}
{{end}}{{.More}}{{end}}`,
		failure: "%s: %q (%s)",
	},
	"it": {
		subject: map[string]string{"succeeded": "L'importazione in %s è completata", "failed": "L'importazione in %s non è riuscita", "cancelled": "L'importazione in %s è stata annullata"},
		body: `Importazione da {{.Sources}} in {{.Destination}}.
{{if .Error}}
Si è fermata: {{.Error}}
{{end}}
Cartelle: {{.Folders}}
Messaggi trovati: {{.Total}}
Copiati: {{.Copied}}
Già presenti (non copiati di nuovo): {{.Skipped}}
Non copiati: {{.Failed}}
Dimensione copiata: {{.Bytes}}
{{if .Failures}}
Messaggi non copiati:
{{range .Failures}}- {{.}}
{{end}}{{.More}}{{end}}`,
		failure: "%s: %q (%s)",
	},
	"es": {
		subject: map[string]string{"succeeded": "Su importación a %s ha terminado", "failed": "Su importación a %s ha fallado", "cancelled": "Su importación a %s fue cancelada"},
		body: `Importación de {{.Sources}} a {{.Destination}}.
{{if .Error}}
Se detuvo: {{.Error}}
{{end}}
Carpetas: {{.Folders}}
Mensajes encontrados: {{.Total}}
Copiados: {{.Copied}}
Ya presentes (no copiados de nuevo): {{.Skipped}}
No copiados: {{.Failed}}
Tamaño copiado: {{.Bytes}}
{{if .Failures}}
Mensajes no copiados:
{{range .Failures}}- {{.}}
{{end}}{{.More}}{{end}}`,
		failure: "%s: %q (%s)",
	},
}

var noticeBodies = func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for l, t := range noticeTexts {
		m[l] = template.Must(template.New(l).Option("missingkey=error").Parse(t.body))
	}
	return m
}()

// confirmation renders ended job j's confirmation in its language, with
// the first failed messages (folder, subject, reason).
func confirmation(j *job, fails [][3]string) (subject, body string, err error) {
	lang := j.language
	t, ok := noticeTexts[lang]
	if !ok {
		lang, t = "en", noticeTexts["en"]
	}
	dest := j.destinationEmail
	var srcs []string
	for _, s := range j.sources {
		switch {
		case s.HostedEmail != "":
			srcs = append(srcs, s.HostedEmail)
		default:
			srcs = append(srcs, s.Login+" @ "+s.Host)
		}
	}
	if j.bulk {
		dest = strconv.Itoa(len(j.children)) + " addresses"
		srcs = []string{"CSV"}
	}
	d := noticeData{
		Destination: dest, Sources: strings.Join(srcs, ", "), Error: plain(j.err),
		Folders: fmt.Sprintf("%d / %d", j.foldersDone, j.foldersTotal),
		Total:   strconv.FormatInt(j.total, 10), Copied: strconv.FormatInt(j.copied, 10),
		Skipped: strconv.FormatInt(j.skipped, 10), Failed: strconv.FormatInt(j.failed, 10),
		Bytes: humanBytes(j.bytes),
	}
	for _, f := range fails {
		d.Failures = append(d.Failures, fmt.Sprintf(t.failure, plain(f[0]), plain(f[1]), plain(f[2])))
	}
	if n := j.failed - int64(len(fails)); len(fails) > 0 && n > 0 {
		d.More = fmt.Sprintf("(+%d)\n", n)
	}
	var b bytes.Buffer
	if err := noticeBodies[lang].Execute(&b, d); err != nil {
		return "", "", fmt.Errorf("render confirmation: %w", err)
	}
	return fmt.Sprintf(t.subject[j.state], dest), b.String(), nil
}

// plain makes s one line of text: what comes from a mailbox (subjects,
// folder names) must not shape the confirmation.
func plain(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return ' '
		}
		return r
	}, s)
}

// humanBytes writes n in B, KB, MB or GB (powers of 1000, as mail
// clients show sizes).
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, u := float64(n), 0
	for f >= unit && u < 3 {
		f /= unit
		u++
	}
	return fmt.Sprintf("%.1f %s", f, [...]string{"B", "KB", "MB", "GB"}[u])
}
