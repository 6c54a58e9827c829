package planspec

import (
	"fmt"
	"strings"
)

// Order returns the items in the order a run takes them: every item after
// the items its after list names, and otherwise in file order (of the
// items ready to run, the one written first goes first). It fails on an
// after entry naming no item, or on a cycle.
func (p *Plan) Order() ([]*Item, error) {
	idx, err := p.graph()
	if err != nil {
		return nil, err
	}
	items := p.Spec.Items
	waiting := make([]int, len(items)) // unfinished dependencies
	next := make([][]int, len(items))  // who waits for each item
	for i, it := range items {
		for _, a := range uniq(it.After) {
			waiting[i]++
			next[idx[a]] = append(next[idx[a]], i)
		}
	}
	done := make([]bool, len(items))
	out := make([]*Item, 0, len(items))
	for len(out) < len(items) {
		pick := -1
		for i := range items {
			if !done[i] && waiting[i] == 0 {
				pick = i
				break
			}
		}
		if pick < 0 {
			return nil, p.cycleError()
		}
		done[pick] = true
		out = append(out, items[pick])
		for _, j := range next[pick] {
			waiting[j]--
		}
	}
	return out, nil
}

// Phases groups the items into waves: phase 0 holds the items with no
// after list, phase n the items whose latest dependency is in phase n-1.
// Items of one phase do not depend on each other (an executor may run
// them side by side, or restart their consumers together); each phase
// keeps file order. Concatenated, the phases are a valid order too,
// though not always the one Order returns.
func (p *Plan) Phases() ([][]*Item, error) {
	order, err := p.Order()
	if err != nil {
		return nil, err
	}
	level := map[string]int{}
	maxLevel := 0
	for _, it := range order {
		l := 0
		for _, a := range it.After {
			if level[a]+1 > l {
				l = level[a] + 1
			}
		}
		level[it.Name] = l
		maxLevel = max(maxLevel, l)
	}
	phases := make([][]*Item, maxLevel+1)
	for _, it := range p.Spec.Items {
		phases[level[it.Name]] = append(phases[level[it.Name]], it)
	}
	return phases, nil
}

// graph indexes the items by name and checks every after entry.
func (p *Plan) graph() (map[string]int, error) {
	idx := map[string]int{}
	for i, it := range p.Spec.Items {
		if it == nil {
			return nil, fmt.Errorf("plan: spec.items[%d] is empty: give it a name and a secret or jwks", i)
		}
		if _, dup := idx[it.Name]; dup {
			return nil, fmt.Errorf("plan: item %q: the name is used twice: give each item its own name", it.Name)
		}
		idx[it.Name] = i
	}
	for _, it := range p.Spec.Items {
		for _, a := range it.After {
			if _, ok := idx[a]; !ok || a == it.Name {
				return nil, fmt.Errorf("plan: item %q: after names %q, which is not another item of this plan: use the name of another item", it.Name, a)
			}
		}
	}
	return idx, nil
}

func (p *Plan) cycleError() error {
	c := p.cycle()
	if c == nil {
		return fmt.Errorf("plan: the after lists cannot be ordered")
	}
	return fmt.Errorf("plan: item %q: the after lists form a cycle %s: remove one of these after entries", c[0], strings.Join(c, " -> "))
}

// cycle returns the first cycle of after entries found walking the items
// in file order, as names from an item back to itself ("a", "b", "a": a
// is after b, b after a), or nil. After entries naming no item are
// skipped.
func (p *Plan) cycle() []string {
	idx := map[string]int{}
	for i, it := range p.Spec.Items {
		if it != nil {
			if _, dup := idx[it.Name]; !dup {
				idx[it.Name] = i
			}
		}
	}
	const (
		unseen = iota
		onPath
		finished
	)
	state := make([]int, len(p.Spec.Items))
	var path []int
	var found []string
	var visit func(i int) bool
	visit = func(i int) bool {
		state[i] = onPath
		path = append(path, i)
		for _, a := range p.Spec.Items[i].After {
			j, ok := idx[a]
			if !ok {
				continue
			}
			switch state[j] {
			case onPath:
				start := 0
				for k, x := range path {
					if x == j {
						start = k
					}
				}
				for _, x := range path[start:] {
					found = append(found, p.Spec.Items[x].Name)
				}
				found = append(found, p.Spec.Items[j].Name)
				return true
			case unseen:
				if visit(j) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		state[i] = finished
		return false
	}
	for i, it := range p.Spec.Items {
		if it != nil && state[i] == unseen && visit(i) {
			return found
		}
	}
	return nil
}

func uniq(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
