package pg

// GroupSenders is how many rounds a Group has in flight at most.
const GroupSenders = groupSenders

// Waiting is how many writes wait for a round of g.
func (g *Group) Waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiting)
}
