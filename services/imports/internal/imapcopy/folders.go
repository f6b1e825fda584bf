package imapcopy

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap"
)

// The folder mapping (docs/imports.md, "Folders").

// specialUses are the SPECIAL-USE attributes (RFC 6154) mapped onto the
// destination's folder of the same use, with the names that stand for
// them on a server that has no attributes at all.
var specialUses = []struct {
	attr  string
	names []string
}{
	{imap.SentAttr, []string{"Sent", "Sent Items", "Sent Messages", "Sent Mail", "Envoyés", "Éléments envoyés", "Gesendet", "Gesendete Objekte", "Gesendete Elemente", "Inviata", "Posta inviata", "Enviados"}},
	{imap.DraftsAttr, []string{"Drafts", "Draft", "Brouillons", "Entwürfe", "Bozze", "Borradores"}},
	{imap.TrashAttr, []string{"Trash", "Deleted Items", "Deleted Messages", "Bin", "Corbeille", "Éléments supprimés", "Papierkorb", "Gelöschte Objekte", "Gelöschte Elemente", "Cestino", "Papelera"}},
	{imap.JunkAttr, []string{"Junk", "Spam", "Junk E-mail", "Junk Email", "Bulk Mail", "Courrier indésirable", "Indésirables", "Unerwünscht", "Posta indesiderata"}},
	{imap.ArchiveAttr, []string{"Archive", "Archives", "Archiv", "Archivio", "Archivo"}},
}

// skipAttrs mark folders that are not copied: they hold no messages of
// their own (\Noselect, \NonExistent), or are views of messages that are
// in other folders too (\Flagged, \Important: Gmail's Starred and
// Important).
var skipAttrs = []string{imap.NoSelectAttr, "\\NonExistent", imap.FlaggedAttr, imap.ImportantAttr}

// listed is a folder as LIST shows it.
type listed struct {
	Name  string // decoded
	Delim string // "" when the server has no hierarchy
	Attrs []string
}

// specialUse returns f's special use among specialUses, or "".
func specialUse(attrs []string) string {
	for _, su := range specialUses {
		for _, a := range attrs {
			if strings.EqualFold(a, su.attr) {
				return su.attr
			}
		}
	}
	return ""
}

// specialByName returns the special use a top-level folder's name
// stands for, or "".
func specialByName(name string) string {
	for _, su := range specialUses {
		for _, n := range su.names {
			if strings.EqualFold(n, name) {
				return su.attr
			}
		}
	}
	return ""
}

// hasAttrs reports whether any folder of a server has a special-use
// attribute: then names mean nothing.
func hasAttrs(fs []listed) bool {
	for _, f := range fs {
		if specialUse(f.Attrs) != "" {
			return true
		}
	}
	return false
}

// underInbox returns the prefix ("INBOX" and the separator) under which
// a server keeps every folder but the INBOX (Courier, Cyrus), or "".
func underInbox(fs []listed) string {
	prefix := ""
	n := 0
	for _, f := range fs {
		if strings.EqualFold(f.Name, "INBOX") {
			continue
		}
		n++
		if f.Delim == "" || len(f.Name) <= 6 || !strings.EqualFold(f.Name[:5], "INBOX") || f.Name[5:5+len(f.Delim)] != f.Delim {
			return ""
		}
		prefix = f.Name[:5+len(f.Delim)]
	}
	if n == 0 {
		return ""
	}
	return prefix
}

// mapping turns source folder names into destination folder names.
type mapping struct {
	// dest is the destination's folders, its separator, its prefix (see
	// underInbox) and its special-use folders by attribute.
	dest       map[string]bool
	destDelim  string
	destPrefix string
	destUse    map[string]string
}

// newMapping reads the destination's folders.
func newMapping(dest []listed) *mapping {
	m := &mapping{dest: map[string]bool{}, destUse: map[string]string{}, destPrefix: underInbox(dest)}
	byName := !hasAttrs(dest)
	for _, f := range dest {
		if m.destDelim == "" {
			m.destDelim = f.Delim
		}
		if slices.Contains(f.Attrs, "\\NonExistent") {
			continue
		}
		m.dest[f.Name] = true
		use := specialUse(f.Attrs)
		if use == "" && byName && !strings.Contains(strings.TrimPrefix(f.Name, m.destPrefix), f.Delim) {
			use = specialByName(strings.TrimPrefix(f.Name, m.destPrefix))
		}
		if use != "" && m.destUse[use] == "" && !slices.Contains(f.Attrs, imap.NoSelectAttr) {
			m.destUse[use] = f.Name
		}
	}
	if m.destDelim == "" {
		m.destDelim = "/"
	}
	return m
}

// source maps one source's folders: the destination name of each folder
// to copy, in the source's order, parents first.
func (m *mapping) source(fs []listed) []copyFolder {
	prefix := underInbox(fs)
	byName := !hasAttrs(fs)
	// A child follows its parent: the mapped parent's name, then its own.
	mapped := map[string]string{}
	all := map[string]listed{}
	for _, f := range fs {
		all[f.Name] = f
	}
	var out []copyFolder
	for _, f := range fs {
		out = append(out, copyFolder{source: f, dest: m.destName(f, prefix, byName, all, mapped)})
	}
	// Parents (Noselect ones included) come before their children in
	// LIST's order on most servers, not on all: keep the order, the
	// destination creates missing parents itself.
	var keep []copyFolder
	for _, c := range out {
		skip := false
		for _, a := range skipAttrs {
			if slices.ContainsFunc(c.source.Attrs, func(s string) bool { return strings.EqualFold(s, a) }) {
				skip = true
			}
		}
		if !skip {
			keep = append(keep, c)
		}
	}
	return keep
}

// copyFolder is a source folder and where it goes.
type copyFolder struct {
	source listed
	dest   string
}

func (m *mapping) destName(f listed, prefix string, byName bool, all map[string]listed, mapped map[string]string) string {
	if strings.EqualFold(f.Name, "INBOX") {
		return "INBOX"
	}
	if d, ok := mapped[f.Name]; ok {
		return d
	}
	name := strings.TrimPrefix(f.Name, prefix)
	var parts []string
	if f.Delim == "" {
		parts = []string{name}
	} else {
		parts = strings.Split(name, f.Delim)
	}
	var d string
	use := specialUse(f.Attrs)
	if use == "" && byName && len(parts) == 1 {
		use = specialByName(parts[0])
	}
	switch {
	case use != "" && m.destUse[use] != "":
		d = m.destUse[use]
	case len(parts) > 1:
		name := prefix + strings.Join(parts[:len(parts)-1], f.Delim)
		parent, ok := all[name]
		if !ok {
			parent = listed{Name: name, Delim: f.Delim}
		}
		d = m.destName(parent, prefix, byName, all, mapped) + m.destDelim + m.part(parts[len(parts)-1])
	default:
		d = m.destPrefix + m.part(parts[0])
	}
	mapped[f.Name] = d
	return d
}

// part is one level of a name, the destination's separator in it
// replaced: "2024/25" under "/" is "2024_25".
func (m *mapping) part(p string) string {
	if p == "" {
		p = "_"
	}
	return strings.ReplaceAll(p, m.destDelim, "_")
}
