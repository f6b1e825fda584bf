package filters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	"github.com/mailplane/mailplane/services/filters/filtersevents"
	"github.com/mailplane/mailplane/services/filters/internal/install"
	"github.com/mailplane/mailplane/services/filters/internal/rules"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DefaultMaxRules caps an address's rules: the rule model's cap.
const DefaultMaxRules = rules.MaxRules

// Rule is a stored rule.
type Rule struct {
	ID          uuid.UUID
	Position    int
	DisplayName string
	Disabled    bool
	MatchAny    bool
	Conditions  []Condition
	Actions     []Action
	Created     time.Time
	Updated     time.Time
}

// Condition is a rule's test, as stored (JSON).
type Condition struct {
	Field    filtersv1.Field    `json:"field"`
	Header   string             `json:"header,omitempty"`
	Operator filtersv1.Operator `json:"operator,omitempty"`
	Value    string             `json:"value,omitempty"`
	Negate   bool               `json:"negate,omitempty"`
	Size     int64              `json:"size,omitempty"`
}

// Action is a rule's action, as stored (JSON).
type Action struct {
	Kind    filtersv1.ActionKind `json:"kind"`
	Folder  string               `json:"folder,omitempty"`
	Address string               `json:"address,omitempty"`
	Message string               `json:"message,omitempty"`
}

const (
	ruleColumns = `id, position, display_name, disabled, match_any, conditions, actions, create_time, update_time`
	selectRules = `SELECT ` + ruleColumns + ` FROM rules WHERE address_id = $1 ORDER BY position`
	selectRule  = `SELECT ` + ruleColumns + ` FROM rules WHERE address_id = $1 AND id = $2`
	countRules  = `SELECT count(*) FROM rules WHERE address_id = $1`
	// lockAddress serializes the changes of one address's order.
	lockAddress = `SELECT id FROM addresses WHERE id = $1 FOR UPDATE`
	shiftDown   = `UPDATE rules SET position = position + 1 WHERE address_id = $1 AND position >= $2`
	insertRule  = `
INSERT INTO rules (id, address_id, position, display_name, disabled, match_any, conditions, actions)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING create_time, update_time`
	updateRule = `
UPDATE rules SET display_name = $3, disabled = $4, match_any = $5, conditions = $6, actions = $7, update_time = now()
WHERE address_id = $1 AND id = $2 RETURNING update_time`
	deleteRule = `DELETE FROM rules WHERE address_id = $1 AND id = $2 RETURNING position`
	closeGap   = `UPDATE rules SET position = position - 1 WHERE address_id = $1 AND position > $2`
	// moveRule moves the rule from $3 to $4, shifting those between.
	moveRule = `
UPDATE rules SET position = CASE
    WHEN id = $2 THEN $4::integer
    WHEN $3::integer < $4::integer THEN position - 1
    ELSE position + 1 END
WHERE address_id = $1 AND position BETWEEN least($3::integer, $4::integer) AND greatest($3::integer, $4::integer)`
)

func scanRule(row pgx.Row) (*Rule, error) {
	var r Rule
	var conds, acts []byte
	if err := row.Scan(&r.ID, &r.Position, &r.DisplayName, &r.Disabled, &r.MatchAny, &conds, &acts, &r.Created, &r.Updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(conds, &r.Conditions); err != nil {
		return nil, fmt.Errorf("rule %s conditions: %w", r.ID, err)
	}
	if err := json.Unmarshal(acts, &r.Actions); err != nil {
		return nil, fmt.Errorf("rule %s actions: %w", r.ID, err)
	}
	return &r, nil
}

func listRules(ctx context.Context, q pgx.Tx, a uuid.UUID) ([]*Rule, error) {
	rows, err := q.Query(ctx, selectRules, a)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	defer rows.Close()
	var out []*Rule
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, fmt.Errorf("read rules: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (r *Rule) proto(a addressIDs) *filtersv1.Rule {
	p := &filtersv1.Rule{
		Name: ruleName(a, r.ID), DisplayName: r.DisplayName, Disabled: r.Disabled, Match: filtersv1.Match_MATCH_ALL,
		Position: int32(r.Position), CreateTime: timestamppb.New(r.Created), UpdateTime: timestamppb.New(r.Updated),
	}
	if r.MatchAny {
		p.Match = filtersv1.Match_MATCH_ANY
	}
	for _, c := range r.Conditions {
		p.Conditions = append(p.Conditions, &filtersv1.Condition{Field: c.Field, Header: c.Header, Operator: c.Operator, Value: c.Value, Negate: c.Negate, SizeBytes: c.Size})
	}
	for _, ac := range r.Actions {
		p.Actions = append(p.Actions, &filtersv1.Action{Kind: ac.Kind, Folder: ac.Folder, Address: ac.Address, Message: ac.Message})
	}
	return p
}

// ruleFrom checks p and returns the rule it describes; every error names
// the field, under prefix ("rule"). The enums are checked here; the rest
// by the rule model's Validate (rules.Rule.Validate), the one authority
// on what the Sieve compiler and run-now accept.
func ruleFrom(prefix string, p *filtersv1.Rule) (*Rule, error) {
	r := &Rule{DisplayName: strings.TrimSpace(p.GetDisplayName()), Disabled: p.GetDisabled(), MatchAny: p.GetMatch() == filtersv1.Match_MATCH_ANY}
	var vs []errs.FieldViolation
	bad := func(field, format string, args ...any) {
		vs = append(vs, errs.FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
	}
	if _, ok := filtersv1.Match_name[int32(p.GetMatch())]; !ok {
		bad(prefix+".match", "unknown match %d", p.GetMatch())
	}
	for i, c := range p.GetConditions() {
		f := fmt.Sprintf("%s.conditions[%d]", prefix, i)
		switch _, known := filtersv1.Field_name[int32(c.GetField())]; {
		case c.GetField() == filtersv1.Field_FIELD_UNSPECIFIED:
			bad(f+".field", "required")
		case !known:
			bad(f+".field", "unknown field %d", c.GetField())
		case c.GetField() == filtersv1.Field_FIELD_SIZE:
			if c.GetSizeBytes() <= 0 {
				bad(f+".sizeBytes", "want a size above 0 bytes")
			}
		case c.GetOperator() == filtersv1.Operator_OPERATOR_UNSPECIFIED:
			bad(f+".operator", "required")
		}
		r.Conditions = append(r.Conditions, Condition{Field: c.GetField(), Header: c.GetHeader(), Operator: c.GetOperator(), Value: c.GetValue(), Negate: c.GetNegate(), Size: c.GetSizeBytes()})
	}
	for i, ac := range p.GetActions() {
		if _, ok := kinds[ac.GetKind()]; !ok {
			bad(fmt.Sprintf("%s.actions[%d].kind", prefix, i), "required, one of move, copy, mark read, mark flagged, forward, reject, delete, stop")
		}
		r.Actions = append(r.Actions, Action{Kind: ac.GetKind(), Folder: ac.GetFolder(), Address: ac.GetAddress(), Message: ac.GetMessage()})
	}
	if len(vs) > 0 {
		return nil, errs.Fields(vs...)
	}
	if err := r.Model().Validate(0); err != nil {
		var e rules.Error
		if !errors.As(err, &e) {
			return nil, fmt.Errorf("validate rule: %w", err)
		}
		for _, v := range e {
			field := prefix + strings.TrimPrefix(v.Field, "rules[0]")
			field = strings.Replace(field, prefix+".name", prefix+".displayName", 1)
			field = strings.Replace(field, ".op", ".operator", 1)
			if strings.Contains(field, ".conditions[") && strings.HasSuffix(field, ".value") {
				// A size's value is sizeBytes in the API.
				if c := conditionAt(r, field); c != nil && c.Field == filtersv1.Field_FIELD_SIZE {
					field = strings.TrimSuffix(field, ".value") + ".sizeBytes"
				}
			}
			vs = append(vs, errs.FieldViolation{Field: field, Description: v.Description})
		}
		return nil, errs.Fields(vs...)
	}
	return r, nil
}

// conditionAt is the condition a field path like "rule.conditions[2].value"
// names, or nil.
func conditionAt(r *Rule, field string) *Condition {
	var i int
	if _, err := fmt.Sscanf(field[strings.Index(field, ".conditions[")+len(".conditions["):], "%d]", &i); err != nil || i < 0 || i >= len(r.Conditions) {
		return nil
	}
	return &r.Conditions[i]
}

// kinds maps the API's action kinds to the model's.
var kinds = map[filtersv1.ActionKind]rules.Kind{
	filtersv1.ActionKind_ACTION_KIND_MOVE: rules.Move, filtersv1.ActionKind_ACTION_KIND_COPY: rules.Copy,
	filtersv1.ActionKind_ACTION_KIND_MARK_READ: rules.MarkRead, filtersv1.ActionKind_ACTION_KIND_MARK_FLAGGED: rules.Flag,
	filtersv1.ActionKind_ACTION_KIND_FORWARD: rules.Forward, filtersv1.ActionKind_ACTION_KIND_REJECT: rules.Reject,
	filtersv1.ActionKind_ACTION_KIND_DELETE: rules.Delete, filtersv1.ActionKind_ACTION_KIND_STOP: rules.Stop,
}

var fields = map[filtersv1.Field]rules.Field{
	filtersv1.Field_FIELD_FROM: rules.From, filtersv1.Field_FIELD_TO_CC: rules.ToCc, filtersv1.Field_FIELD_SUBJECT: rules.Subject,
	filtersv1.Field_FIELD_HEADER: rules.Header, filtersv1.Field_FIELD_SIZE: rules.Size, filtersv1.Field_FIELD_BODY: rules.Body,
}

var ops = map[filtersv1.Operator]rules.Op{
	filtersv1.Operator_OPERATOR_IS: rules.Is, filtersv1.Operator_OPERATOR_CONTAINS: rules.Contains,
	filtersv1.Operator_OPERATOR_MATCHES: rules.Matches, filtersv1.Operator_OPERATOR_REGEX: rules.Regex,
}

// Model is r in the rule model the compiler and run-now take.
func (r *Rule) Model() rules.Rule {
	m := rules.Rule{Name: r.DisplayName, Enabled: !r.Disabled, Match: rules.All}
	if r.MatchAny {
		m.Match = rules.Any
	}
	for _, c := range r.Conditions {
		mc := rules.Condition{Field: fields[c.Field], Header: c.Header, Op: ops[c.Operator], Value: c.Value, Negate: c.Negate}
		if c.Field == filtersv1.Field_FIELD_SIZE {
			// "larger than N"; negated, "not larger": under N+1.
			mc.Op, mc.Value, mc.Negate = rules.Over, strconv.FormatInt(c.Size, 10), false
			if c.Negate {
				mc.Op, mc.Value = rules.Under, strconv.FormatInt(c.Size+1, 10)
			}
		}
		m.Conditions = append(m.Conditions, mc)
	}
	for _, a := range r.Actions {
		m.Actions = append(m.Actions, rules.Action{Kind: kinds[a.Kind], Folder: a.Folder, Address: a.Address, Message: a.Message})
	}
	return m
}

// checkFolder accepts an IMAP folder name the rule model accepts.
func checkFolder(f string) error { return rules.CheckFolder(f) }

// checkScriptSize refuses a change after which address a's rules compile
// to a personal script larger than Dovecot takes (install.MaxScript, as
// sent: CRLF line ends): saved, it would never be installed, nor the
// address's platform scripts with it, while the API said yes.
func checkScriptSize(ctx context.Context, tx pgx.Tx, a uuid.UUID) error {
	rs, err := listRules(ctx, tx, a)
	if err != nil {
		return err
	}
	models := make([]rules.Rule, len(rs))
	for i, r := range rs {
		models[i] = r.Model()
	}
	text, err := rules.Compile(models)
	if err != nil {
		return fmt.Errorf("compile rules: %w", err)
	}
	if n := len(text) + strings.Count(text, "\n") - strings.Count(text, "\r\n"); n > install.MaxScript {
		return errs.Field("rule", fmt.Sprintf("the address's rules would make a Sieve script of %d bytes, more than the %d the mail store takes: shorten or delete rules", n, install.MaxScript))
	}
	return nil
}

func plausibleAddress(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && len(s) <= 254 && !strings.ContainsAny(s, " \t\r\n\x00\"<>,;")
}

func (s *Server) CreateRule(ctx context.Context, req *filtersv1.CreateRuleRequest) (*filtersv1.CreateRuleResponse, error) {
	a, err := parseAddress("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	c, err := s.access(ctx, a)
	if err != nil {
		return nil, err
	}
	r, err := ruleFrom("rule", req.GetRule())
	if err != nil {
		return nil, err
	}
	if req.Position != nil && req.GetPosition() < 0 {
		return nil, errs.Field("position", "want 0 or more")
	}
	r.ID = uuid.Must(uuid.NewV7())
	conds, _ := json.Marshal(r.Conditions)
	acts, _ := json.Marshal(r.Actions)
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockAddress, a.addr); err != nil {
			return fmt.Errorf("lock address: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, countRules, a.addr).Scan(&n); err != nil {
			return fmt.Errorf("count rules: %w", err)
		}
		if n >= s.maxRules {
			return errs.E(errs.ResourceExhausted, "the address has %d rules, the most it may have: delete one first", n).WithReason("TOO_MANY_RULES")
		}
		r.Position = n
		if req.Position != nil && int(req.GetPosition()) < n {
			r.Position = int(req.GetPosition())
			if _, err := tx.Exec(ctx, shiftDown, a.addr, r.Position); err != nil {
				return fmt.Errorf("make room: %w", err)
			}
		}
		if err := tx.QueryRow(ctx, insertRule, r.ID, a.addr, r.Position, r.DisplayName, r.Disabled, r.MatchAny, conds, acts).Scan(&r.Created, &r.Updated); err != nil {
			return fmt.Errorf("insert rule: %w", err)
		}
		if err := checkScriptSize(ctx, tx, a.addr); err != nil {
			return err
		}
		return s.ruleChanged(ctx, tx, a, c, r, filtersevents.RuleCreated, "filters.rule.create")
	})
	if err != nil {
		return nil, err
	}
	return &filtersv1.CreateRuleResponse{Rule: r.proto(a)}, nil
}

// ruleChanged writes a rule's event and audit record, and marks the
// address's scripts to install, in tx.
func (s *Server) ruleChanged(ctx context.Context, tx pgx.Tx, a addressIDs, c access.Caller, r *Rule, subject, action string) error {
	if err := outbox.Write(ctx, tx, subject, &filtersv1.RuleChanged{Rule: r.proto(a), Actor: c.Name()}); err != nil {
		return err
	}
	if err := audit(ctx, tx, a.org, c, action, ruleName(a, r.ID), nil); err != nil {
		return err
	}
	return s.changed(ctx, tx, a.addr)
}

func (s *Server) GetRule(ctx context.Context, req *filtersv1.GetRuleRequest) (*filtersv1.GetRuleResponse, error) {
	a, id, err := parseRule("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if _, err := s.access(ctx, a); err != nil {
		return nil, err
	}
	r, err := scanRule(s.pool.QueryRow(ctx, selectRule, a.addr, id))
	if err == pgx.ErrNoRows {
		return nil, errs.E(errs.NotFound, "rule %s not found", req.GetName())
	}
	if err != nil {
		return nil, fmt.Errorf("read rule: %w", err)
	}
	return &filtersv1.GetRuleResponse{Rule: r.proto(a)}, nil
}

func (s *Server) ListRules(ctx context.Context, req *filtersv1.ListRulesRequest) (*filtersv1.ListRulesResponse, error) {
	a, err := parseAddress("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if _, err := s.access(ctx, a); err != nil {
		return nil, err
	}
	resp := &filtersv1.ListRulesResponse{}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rules, err := listRules(ctx, tx, a.addr)
		for _, r := range rules {
			resp.Rules = append(resp.Rules, r.proto(a))
		}
		return err
	})
	return resp, err
}

func (s *Server) UpdateRule(ctx context.Context, req *filtersv1.UpdateRuleRequest) (*filtersv1.UpdateRuleResponse, error) {
	a, id, err := parseRule("rule.name", req.GetRule().GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.access(ctx, a)
	if err != nil {
		return nil, err
	}
	paths, err := aip.UpdatePaths(req.GetUpdateMask(), req.GetRule(), "display_name", "disabled", "match", "conditions", "actions")
	if err != nil {
		return nil, err
	}
	var r *Rule
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		// The address first, as CreateRule does: two updates of
		// different rules must not each find the scripts under 1 MiB
		// and together pass it.
		if _, err := tx.Exec(ctx, lockAddress, a.addr); err != nil {
			return fmt.Errorf("lock address: %w", err)
		}
		old, err := scanRule(tx.QueryRow(ctx, selectRule+` FOR UPDATE`, a.addr, id))
		if err == pgx.ErrNoRows {
			return errs.E(errs.NotFound, "rule %s not found", req.GetRule().GetName())
		}
		if err != nil {
			return fmt.Errorf("read rule: %w", err)
		}
		// The rule as it will be, checked whole, so that every error
		// names its field.
		next := old.proto(a)
		in := req.GetRule()
		for _, p := range paths {
			switch p {
			case "display_name":
				next.DisplayName = in.GetDisplayName()
			case "disabled":
				next.Disabled = in.GetDisabled()
			case "match":
				next.Match = in.GetMatch()
			case "conditions":
				next.Conditions = in.GetConditions()
			case "actions":
				next.Actions = in.GetActions()
			}
		}
		r, err = ruleFrom("rule", next)
		if err != nil {
			return err
		}
		r.ID, r.Position, r.Created = old.ID, old.Position, old.Created
		conds, _ := json.Marshal(r.Conditions)
		acts, _ := json.Marshal(r.Actions)
		if err := tx.QueryRow(ctx, updateRule, a.addr, id, r.DisplayName, r.Disabled, r.MatchAny, conds, acts).Scan(&r.Updated); err != nil {
			return fmt.Errorf("update rule: %w", err)
		}
		if err := checkScriptSize(ctx, tx, a.addr); err != nil {
			return err
		}
		return s.ruleChanged(ctx, tx, a, c, r, filtersevents.RuleUpdated, "filters.rule.update")
	})
	if err != nil {
		return nil, err
	}
	return &filtersv1.UpdateRuleResponse{Rule: r.proto(a)}, nil
}

func (s *Server) MoveRule(ctx context.Context, req *filtersv1.MoveRuleRequest) (*filtersv1.MoveRuleResponse, error) {
	a, id, err := parseRule("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if req.GetPosition() < 0 {
		return nil, errs.Field("position", "want 0 or more")
	}
	c, err := s.access(ctx, a)
	if err != nil {
		return nil, err
	}
	resp := &filtersv1.MoveRuleResponse{}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockAddress, a.addr); err != nil {
			return fmt.Errorf("lock address: %w", err)
		}
		r, err := scanRule(tx.QueryRow(ctx, selectRule, a.addr, id))
		if err == pgx.ErrNoRows {
			return errs.E(errs.NotFound, "rule %s not found", req.GetName())
		}
		if err != nil {
			return fmt.Errorf("read rule: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, countRules, a.addr).Scan(&n); err != nil {
			return fmt.Errorf("count rules: %w", err)
		}
		to := min(int(req.GetPosition()), n-1)
		if _, err := tx.Exec(ctx, moveRule, a.addr, id, r.Position, to); err != nil {
			return fmt.Errorf("move rule: %w", err)
		}
		r.Position = to
		if err := s.ruleChanged(ctx, tx, a, c, r, filtersevents.RuleMoved, "filters.rule.move"); err != nil {
			return err
		}
		rules, err := listRules(ctx, tx, a.addr)
		for _, r := range rules {
			resp.Rules = append(resp.Rules, r.proto(a))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// setPosition places a rule; the deferred unique constraint is checked
// at commit, once every rule has its place.
const setPosition = `UPDATE rules SET position = $3 WHERE address_id = $1 AND id = $2`

func (s *Server) ReorderRules(ctx context.Context, req *filtersv1.ReorderRulesRequest) (*filtersv1.ReorderRulesResponse, error) {
	a, err := parseAddress("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if len(req.GetRules()) > rules.MaxRules {
		return nil, errs.Field("rules", fmt.Sprintf("at most %d rules", rules.MaxRules))
	}
	order := make([]uuid.UUID, len(req.GetRules()))
	seen := make(map[uuid.UUID]bool, len(order))
	for i, n := range req.GetRules() {
		field := fmt.Sprintf("rules[%d]", i)
		ra, id, err := parseRule(field, n)
		if err != nil {
			return nil, err
		}
		if ra != a {
			return nil, errs.Field(field, "not a rule of "+req.GetParent())
		}
		if seen[id] {
			return nil, errs.Field(field, "named twice")
		}
		seen[id], order[i] = true, id
	}
	c, err := s.access(ctx, a)
	if err != nil {
		return nil, err
	}
	resp := &filtersv1.ReorderRulesResponse{}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockAddress, a.addr); err != nil {
			return fmt.Errorf("lock address: %w", err)
		}
		current, err := listRules(ctx, tx, a.addr)
		if err != nil {
			return err
		}
		for _, r := range current {
			if !seen[r.ID] {
				return errs.Field("rules", fmt.Sprintf("every rule of the address, each once: %s is missing", ruleName(a, r.ID)))
			}
		}
		if len(order) != len(current) {
			for i, id := range order {
				if !slices.ContainsFunc(current, func(r *Rule) bool { return r.ID == id }) {
					return errs.Field(fmt.Sprintf("rules[%d]", i), "no such rule")
				}
			}
		}
		for i, id := range order {
			if _, err := tx.Exec(ctx, setPosition, a.addr, id, i); err != nil {
				return fmt.Errorf("reorder: %w", err)
			}
		}
		rules, err := listRules(ctx, tx, a.addr)
		for _, r := range rules {
			resp.Rules = append(resp.Rules, r.proto(a))
		}
		if err != nil {
			return err
		}
		if err := audit(ctx, tx, a.org, c, "filters.rule.reorder", a.name(), nil); err != nil {
			return err
		}
		return s.changed(ctx, tx, a.addr)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *Server) DeleteRule(ctx context.Context, req *filtersv1.DeleteRuleRequest) (*filtersv1.DeleteRuleResponse, error) {
	a, id, err := parseRule("name", req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.access(ctx, a)
	if err != nil {
		return nil, err
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockAddress, a.addr); err != nil {
			return fmt.Errorf("lock address: %w", err)
		}
		r, err := scanRule(tx.QueryRow(ctx, selectRule, a.addr, id))
		if err == pgx.ErrNoRows {
			return errs.E(errs.NotFound, "rule %s not found", req.GetName())
		}
		if err != nil {
			return fmt.Errorf("read rule: %w", err)
		}
		if _, err := tx.Exec(ctx, deleteRule, a.addr, id); err != nil {
			return fmt.Errorf("delete rule: %w", err)
		}
		if _, err := tx.Exec(ctx, closeGap, a.addr, r.Position); err != nil {
			return fmt.Errorf("close gap: %w", err)
		}
		return s.ruleChanged(ctx, tx, a, c, r, filtersevents.RuleDeleted, "filters.rule.delete")
	})
	if err != nil {
		return nil, err
	}
	return &filtersv1.DeleteRuleResponse{}, nil
}
