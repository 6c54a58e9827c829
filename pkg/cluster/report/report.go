// Package report checks every credential's age against a rotation policy:
// Secrets, TLS certificates, JWKS keys (in Secrets and in files) and kOps
// keysets. It is the core shared by `kubectl rotate status` and the
// GitHub Action. Items carry ages, sources, limits and the commands that
// rotate them; never a value.
package report

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	kubeduration "k8s.io/apimachinery/pkg/util/duration"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/model/duration"
	"github.com/kube-rotate/kube-rotate/pkg/model/policy"
)

// Kind of the report object printed by -o json|yaml.
const Kind = v1alpha1.KindRotationReport

// StateUnknown: the credential's age cannot be worked out.
const StateUnknown = v1alpha1.StateUnknown

// The report's types are kube-rotate's API types (pkg/apis): one
// definition for the status command, the Action and their -o json|yaml.
type (
	// Item is one credential checked against the policy.
	Item = v1alpha1.ReportItem
	// Summary counts items by state.
	Summary = v1alpha1.ReportSummary
	// Report is the result of one check: a RotationReport.
	Report = v1alpha1.RotationReport
)

// finish sorts the items (worst first, then by id) and counts them.
func finish(r *Report) {
	rank := map[policy.State]int{policy.StateExpired: 0, policy.StateOverdue: 1, policy.StateWarn: 2, StateUnknown: 3, policy.StateOK: 4}
	sort.SliceStable(r.Items, func(i, j int) bool {
		a, b := r.Items[i], r.Items[j]
		if rank[a.State] != rank[b.State] {
			return rank[a.State] < rank[b.State]
		}
		return a.ID < b.ID
	})
	r.Summary = Summarize(r.Items, func(Item) bool { return true })
	for i := range r.Clusters {
		name := r.Clusters[i].Name
		r.Clusters[i].Summary = Summarize(r.Items, func(it Item) bool { return it.Cluster == name })
	}
}

// Summarize counts the items for which in returns true.
func Summarize(items []Item, in func(Item) bool) Summary {
	var s Summary
	for _, it := range items {
		if !in(it) {
			continue
		}
		s.Total++
		switch it.State {
		case policy.StateOK:
			s.OK++
		case policy.StateWarn:
			s.Warn++
		case policy.StateOverdue:
			s.Overdue++
		case policy.StateExpired:
			s.Expired++
		default:
			s.Unknown++
		}
	}
	return s
}

// setAge fills the age fields from since.
func setAge(it *Item, since time.Time, source string, now time.Time) {
	s := since.UTC()
	it.Since, it.AgeSource = v1alpha1.TimePtr(&s), source
	age := now.Sub(since).Truncate(time.Second)
	if age < 0 {
		age = 0
	}
	it.Age, it.AgeSeconds = kubeduration.HumanDuration(age), int64(age/time.Second)
}

// setLimits fills the limit fields.
func setLimits(it *Item, l policy.Limits, rule string) {
	it.Rule, it.MaxAge = rule, duration.Format(l.MaxAge.Duration)
	if l.WarnBefore.Set {
		it.WarnBefore = duration.Format(l.WarnBefore.Duration)
	}
	if l.Overlap.Set {
		it.Overlap = duration.Format(l.Overlap.Duration)
	}
}

// ageOf returns the item's age, or -1 when unknown.
func ageOf(it *Item) time.Duration {
	if it.Since == nil {
		return -1
	}
	return time.Duration(it.AgeSeconds) * time.Second
}

// evaluate sets State and Reason from the age and limits.
// expiring names what has a NotAfter: a certificate, or a key whose exp
// Slurm enforces.
func expiring(it *Item) string {
	if it.Kind == policy.KindJWK {
		return "key (exp)"
	}
	return "certificate"
}

func evaluate(it *Item, l policy.Limits, now time.Time) {
	if it.Since == nil && it.NotAfter == nil {
		it.State = StateUnknown
		return
	}
	var notAfter time.Time
	if it.NotAfter != nil {
		notAfter = it.NotAfter.Time
	}
	it.State = policy.Evaluate(l, ageOf(it), now, notAfter)
	switch it.State {
	case policy.StateExpired:
		it.Reason = expiring(it) + " expired " + kubeduration.HumanDuration(now.Sub(notAfter)) + " ago"
	case policy.StateOverdue:
		it.Reason = it.Age + " old, limit " + it.MaxAge
	case policy.StateWarn:
		if !notAfter.IsZero() && notAfter.Sub(now) <= l.WarnBefore.Duration {
			it.Reason = expiring(it) + " expires in " + kubeduration.HumanDuration(notAfter.Sub(now))
		} else {
			it.Reason = "due in " + kubeduration.HumanDuration(l.MaxAge.Duration-ageOf(it))
		}
	}
}

// Merge joins reports of several runs (the jobs of a fleet's matrix) into
// one: every item, cluster and error, counted again. The policy is the
// runs' if they agree, and Generated the newest run's. A cluster that two
// reports both hold is an error of the fleet's setup (two jobs named
// their clusters the same): it is returned, and nothing is merged.
func Merge(reports []*Report) (*Report, error) {
	out := &Report{Items: []Item{}}
	owner := map[string]int{}
	var policies []string
	for i, r := range reports {
		if i == 0 {
			out.TypeMeta = r.TypeMeta
		}
		if r.Generated.After(out.Generated.Time) {
			out.Generated = r.Generated
		}
		if !slices.Contains(policies, r.Policy) {
			policies = append(policies, r.Policy)
		}
		for _, c := range r.Clusters {
			if j, ok := owner[c.Name]; ok && j != i {
				return nil, fmt.Errorf("cluster %q is in reports %d and %d: give each job its own cluster name", c.Name, j+1, i+1)
			}
			owner[c.Name] = i
			out.Clusters = append(out.Clusters, c)
		}
		out.Items = append(out.Items, r.Items...)
		out.Errors = append(out.Errors, r.Errors...)
	}
	out.Policy = strings.Join(policies, ", ")
	sort.SliceStable(out.Clusters, func(i, j int) bool { return out.Clusters[i].Name < out.Clusters[j].Name })
	finish(out)
	return out, nil
}
