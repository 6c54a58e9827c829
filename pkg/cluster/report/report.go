// Package report checks every credential's age against a rotation policy:
// Secrets, TLS certificates, JWKS keys (in Secrets and in files) and kOps
// keysets. It is the core shared by `kubectl rotate status` and the
// GitHub Action. Items carry ages, sources, limits and the commands that
// rotate them; never a value.
package report

import (
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubeduration "k8s.io/apimachinery/pkg/util/duration"

	"github.com/kube-rotate/kube-rotate/pkg/model/duration"
	"github.com/kube-rotate/kube-rotate/pkg/model/policy"
)

// Kind of the report object printed by -o json|yaml.
const Kind = "RotationReport"

// StateUnknown: the credential's age cannot be worked out.
const StateUnknown policy.State = "unknown"

// Item is one credential checked against the policy.
type Item struct {
	// ID names the credential across runs (the Action keys issues by it):
	// secret:NS/NAME, tls:NS/NAME, jwk:NS/NAME/KEY#signing,
	// jwk:NS/NAME/KEY#retiring:KID, jwk-file:PATH#signing, ...,
	// kops-keyset:CLUSTER/KEYSET.
	ID string `json:"id"`
	// Kind is secret, tls, jwk or kops-keyset (policy match kinds).
	Kind string `json:"kind"`
	// Credential is how the table names it.
	Credential string `json:"credential"`

	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	// Key is the Secret data key holding a key set.
	Key string `json:"key,omitempty"`
	// File is a key-set file.
	File    string `json:"file,omitempty"`
	KID     string `json:"kid,omitempty"`
	Cluster string `json:"cluster,omitempty"`
	Keyset  string `json:"keyset,omitempty"`
	// KeyState is a JWKS key's state (next, active, retiring) or a
	// kOps keyset's rotation stage.
	KeyState string `json:"keyState,omitempty"`

	// Since is when the value was set; nil when unknown.
	Since *time.Time `json:"since,omitempty"`
	// Age is Now - Since as kubectl prints ages (95d, 3h27m); AgeSeconds
	// is exact.
	Age        string `json:"age,omitempty"`
	AgeSeconds int64  `json:"ageSeconds,omitempty"`
	// AgeSource says where Since comes from.
	AgeSource string     `json:"ageSource,omitempty"`
	NotAfter  *time.Time `json:"notAfter,omitempty"`

	// Rule is the policy rule that gave the limits.
	Rule       string `json:"rule"`
	MaxAge     string `json:"maxAge"`
	WarnBefore string `json:"warnBefore,omitempty"`
	Overlap    string `json:"overlap,omitempty"`

	State policy.State `json:"state"`
	// Reason explains the state in one sentence.
	Reason string `json:"reason,omitempty"`
	// Commands rotate the credential (or finish its rotation), in order.
	Commands []string `json:"commands,omitempty"`
	// Labels of the Secret, for policy matching; not printed.
	Labels map[string]string `json:"-"`
}

// Summary counts items by state.
type Summary struct {
	Total   int `json:"total"`
	OK      int `json:"ok"`
	Warn    int `json:"warn"`
	Overdue int `json:"overdue"`
	Expired int `json:"expired"`
	Unknown int `json:"unknown"`
}

// Report is the result of one check.
type Report struct {
	metav1.TypeMeta `json:",inline"`
	Generated       time.Time `json:"generated"`
	// Policy names the policy file, or the flags that stood in for one.
	Policy  string  `json:"policy"`
	Summary Summary `json:"summary"`
	Items   []Item  `json:"items"`
	// Errors are sources that could not be read (one line each); the
	// rest of the report stands.
	Errors []string `json:"errors,omitempty"`
}

// GetObjectKind lets kubectl's printers print a Report.
func (r *Report) GetObjectKind() schema.ObjectKind { return &r.TypeMeta }

// DeepCopyObject implements runtime.Object.
func (r *Report) DeepCopyObject() runtime.Object {
	c := *r
	c.Items = append([]Item(nil), r.Items...)
	c.Errors = append([]string(nil), r.Errors...)
	return &c
}

// Failing reports whether any item is at or past level: "overdue" means
// overdue or expired; "warn" also counts warnings and unknown ages.
func (r *Report) Failing(level string) bool {
	switch level {
	case "overdue":
		return r.Summary.Overdue+r.Summary.Expired > 0
	case "warn":
		return r.Summary.Overdue+r.Summary.Expired+r.Summary.Warn+r.Summary.Unknown > 0
	}
	return false
}

// Due returns the items that are overdue or expired.
func (r *Report) Due() []Item {
	var out []Item
	for _, it := range r.Items {
		if it.State == policy.StateOverdue || it.State == policy.StateExpired {
			out = append(out, it)
		}
	}
	return out
}

// finish sorts the items (worst first, then by id) and counts them.
func (r *Report) finish() {
	rank := map[policy.State]int{policy.StateExpired: 0, policy.StateOverdue: 1, policy.StateWarn: 2, StateUnknown: 3, policy.StateOK: 4}
	sort.SliceStable(r.Items, func(i, j int) bool {
		a, b := r.Items[i], r.Items[j]
		if rank[a.State] != rank[b.State] {
			return rank[a.State] < rank[b.State]
		}
		return a.ID < b.ID
	})
	r.Summary = Summary{Total: len(r.Items)}
	for _, it := range r.Items {
		switch it.State {
		case policy.StateOK:
			r.Summary.OK++
		case policy.StateWarn:
			r.Summary.Warn++
		case policy.StateOverdue:
			r.Summary.Overdue++
		case policy.StateExpired:
			r.Summary.Expired++
		default:
			r.Summary.Unknown++
		}
	}
}

// setAge fills the age fields from since.
func (it *Item) setAge(since time.Time, source string, now time.Time) {
	s := since.UTC()
	it.Since, it.AgeSource = &s, source
	age := now.Sub(since).Truncate(time.Second)
	if age < 0 {
		age = 0
	}
	it.Age, it.AgeSeconds = kubeduration.HumanDuration(age), int64(age/time.Second)
}

// setLimits fills the limit fields.
func (it *Item) setLimits(l policy.Limits, rule string) {
	it.Rule, it.MaxAge = rule, duration.Format(l.MaxAge.Duration)
	if l.WarnBefore.Set {
		it.WarnBefore = duration.Format(l.WarnBefore.Duration)
	}
	if l.Overlap.Set {
		it.Overlap = duration.Format(l.Overlap.Duration)
	}
}

// ageOf returns the item's age, or -1 when unknown.
func (it *Item) ageOf() time.Duration {
	if it.Since == nil {
		return -1
	}
	return time.Duration(it.AgeSeconds) * time.Second
}

// evaluate sets State and Reason from the age and limits.
// expiring names what has a NotAfter: a certificate, or a key whose exp
// Slurm enforces.
func (it *Item) expiring() string {
	if it.Kind == policy.KindJWK {
		return "key (exp)"
	}
	return "certificate"
}

func (it *Item) evaluate(l policy.Limits, now time.Time) {
	if it.Since == nil && it.NotAfter == nil {
		it.State = StateUnknown
		return
	}
	var notAfter time.Time
	if it.NotAfter != nil {
		notAfter = *it.NotAfter
	}
	it.State = policy.Evaluate(l, it.ageOf(), now, notAfter)
	switch it.State {
	case policy.StateExpired:
		it.Reason = it.expiring() + " expired " + kubeduration.HumanDuration(now.Sub(notAfter)) + " ago"
	case policy.StateOverdue:
		it.Reason = it.Age + " old, limit " + it.MaxAge
	case policy.StateWarn:
		if !notAfter.IsZero() && notAfter.Sub(now) <= l.WarnBefore.Duration {
			it.Reason = it.expiring() + " expires in " + kubeduration.HumanDuration(notAfter.Sub(now))
		} else {
			it.Reason = "due in " + kubeduration.HumanDuration(l.MaxAge.Duration-it.ageOf())
		}
	}
}
