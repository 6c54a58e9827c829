// Package policy reads a RotationPolicy (how old each kind of credential
// may get) and evaluates credentials against it. Parsing is strict: an
// unknown field or a bad duration is an error naming its line.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"
	"github.com/kube-rotate/kube-rotate/pkg/model/duration"
)

// APIVersion and Kind of a policy file.
const (
	APIVersion = v1alpha1.APIVersion
	Kind       = v1alpha1.KindRotationPolicy
)

// Credential kinds a rule can select.
const (
	KindSecret = "secret"
	KindTLS    = "tls"
	KindJWK    = "jwk"
	KindKeyset = "kops-keyset"
)

// Policy is a parsed RotationPolicy.
type Policy struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       Spec     `yaml:"spec"`
}

// Metadata names the policy.
type Metadata struct {
	Name string `yaml:"name"`
}

// Spec holds the default limits and the rules, tried in order.
type Spec struct {
	Default Limits `yaml:"default"`
	Rules   []Rule `yaml:"rules"`
}

// Limits are how old a credential may get.
type Limits struct {
	// MaxAge: older is overdue.
	MaxAge Duration `yaml:"maxAge"`
	// WarnBefore: within this of MaxAge is a warning.
	WarnBefore Duration `yaml:"warnBefore"`
	// Overlap (JWKS): how long a retiring key may stay published.
	Overlap Duration `yaml:"overlap"`
}

// Rule selects credentials and gives their limits; unset limits come from
// the default.
type Rule struct {
	Name   string `yaml:"name"`
	Match  Match  `yaml:"match"`
	Limits `yaml:",inline"`
}

// Match selects credentials; empty fields match everything.
type Match struct {
	// Kind: secret, tls, jwk or kops-keyset.
	Kind       string   `yaml:"kind"`
	Namespaces []string `yaml:"namespaces"`
	// Names are globs (path.Match syntax) on the Secret or file name.
	Names []string `yaml:"names"`
	// Labels must all be present with these values.
	Labels map[string]string `yaml:"labels"`
	// Types are Secret types, e.g. kubernetes.io/tls.
	Types []string `yaml:"types"`
	// Keysets are kOps keyset names (globs).
	Keysets []string `yaml:"keysets"`
	// KIDs are JWKS key ids (globs).
	KIDs []string `yaml:"kids"`
}

// Duration is a day-aware duration ("90d", "12h") that remembers whether
// it was set.
type Duration struct {
	time.Duration
	Set bool
}

// UnmarshalYAML parses a duration, naming the line on error.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a string like 90d or 12h", n.Line)
	}
	v, err := duration.Parse(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	d.Duration, d.Set = v, true
	return nil
}

// Parse reads a policy strictly and validates it.
func Parse(data []byte) (*Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	p := &Policy{}
	if err := dec.Decode(p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the policy file is empty")
		}
		return nil, fmt.Errorf("policy: %w", unwrapYAML(err))
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("policy: the file holds more than one YAML document: keep one RotationPolicy per file")
	}
	if p.APIVersion != APIVersion || p.Kind != Kind {
		return nil, fmt.Errorf("policy: apiVersion/kind is %q/%q: want %s / %s", p.APIVersion, p.Kind, APIVersion, Kind)
	}
	if err := p.Spec.Default.check("spec.default", true); err != nil {
		return nil, err
	}
	for i, r := range p.Spec.Rules {
		where := fmt.Sprintf("spec.rules[%d]", i)
		if r.Name != "" {
			where += " (" + r.Name + ")"
		}
		if err := r.Match.check(where); err != nil {
			return nil, err
		}
		eff := p.Spec.Default.merge(r.Limits)
		if err := eff.check(where, false); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// unwrapYAML keeps yaml.v3's first "line N: ..." message, on one line:
// yaml.v3 quotes the offending value, newlines included.
func unwrapYAML(err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	return errors.New(strings.ReplaceAll(msg, "\n", `\n`))
}

func (l Limits) check(where string, isDefault bool) error {
	if isDefault && !l.MaxAge.Set {
		return fmt.Errorf("policy: %s.maxAge is required: the age every credential is held to unless a rule says otherwise", where)
	}
	if l.MaxAge.Set && l.MaxAge.Duration <= 0 {
		return fmt.Errorf("policy: %s: maxAge must be longer than 0", where)
	}
	if l.WarnBefore.Duration >= l.MaxAge.Duration && l.WarnBefore.Set {
		return fmt.Errorf("policy: %s: warnBefore (%s) must be shorter than maxAge (%s)", where, duration.Format(l.WarnBefore.Duration), duration.Format(l.MaxAge.Duration))
	}
	return nil
}

func (m Match) check(where string) error {
	switch m.Kind {
	case "", KindSecret, KindTLS, KindJWK, KindKeyset:
	default:
		return fmt.Errorf("policy: %s: match.kind %q is not known: use secret, tls, jwk or kops-keyset", where, m.Kind)
	}
	for _, list := range [][]string{m.Names, m.Keysets, m.KIDs} {
		for _, g := range list {
			if _, err := path.Match(g, ""); err != nil {
				return fmt.Errorf("policy: %s: %q is not a valid glob", where, g)
			}
		}
	}
	return nil
}

// merge returns l with the limits r sets.
func (l Limits) merge(r Limits) Limits {
	if r.MaxAge.Set {
		l.MaxAge = r.MaxAge
	}
	if r.WarnBefore.Set {
		l.WarnBefore = r.WarnBefore
	}
	if r.Overlap.Set {
		l.Overlap = r.Overlap
	}
	return l
}

// Credential is what rules match on.
type Credential struct {
	Kind, Namespace, Name, Type, Keyset, KID string
	Labels                                   map[string]string
}

// For returns the limits for c and the name of the rule that gave them
// ("default" when none matched). The first matching rule wins.
func (p *Policy) For(c Credential) (Limits, string) {
	for i, r := range p.Spec.Rules {
		if r.Match.matches(c) {
			name := r.Name
			if name == "" {
				name = fmt.Sprintf("rules[%d]", i)
			}
			return p.Spec.Default.merge(r.Limits), name
		}
	}
	return p.Spec.Default, "default"
}

func (m Match) matches(c Credential) bool {
	if m.Kind != "" && m.Kind != c.Kind {
		return false
	}
	if len(m.Namespaces) > 0 && !contains(m.Namespaces, c.Namespace) {
		return false
	}
	if len(m.Types) > 0 && !contains(m.Types, c.Type) {
		return false
	}
	if len(m.Names) > 0 && !globAny(m.Names, c.Name) {
		return false
	}
	if len(m.Keysets) > 0 && !globAny(m.Keysets, c.Keyset) {
		return false
	}
	if len(m.KIDs) > 0 && !globAny(m.KIDs, c.KID) {
		return false
	}
	for k, v := range m.Labels {
		if got, ok := c.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func globAny(globs []string, s string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

// State of a credential against its limits (an API type: reports print it).
type State = v1alpha1.CredentialState

// States, from best to worst.
const (
	StateOK      = v1alpha1.StateOK
	StateWarn    = v1alpha1.StateWarn
	StateOverdue = v1alpha1.StateOverdue
	StateExpired = v1alpha1.StateExpired
)

// Evaluate returns the state of a credential of the given age; notAfter,
// if not zero, is when it expires (certificates).
func Evaluate(l Limits, age time.Duration, now, notAfter time.Time) State {
	switch {
	case !notAfter.IsZero() && !now.Before(notAfter):
		return StateExpired
	case age >= l.MaxAge.Duration:
		return StateOverdue
	case l.WarnBefore.Set && age >= l.MaxAge.Duration-l.WarnBefore.Duration,
		!notAfter.IsZero() && l.WarnBefore.Set && notAfter.Sub(now) <= l.WarnBefore.Duration:
		return StateWarn
	}
	return StateOK
}

// Default returns a policy of one default rule, for use without a file
// (--max-age, --warn-before, --overlap).
func Default(maxAge, warnBefore, overlap time.Duration) (*Policy, error) {
	p := &Policy{APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: "flags"}}
	p.Spec.Default.MaxAge = Duration{maxAge, true}
	if warnBefore > 0 {
		p.Spec.Default.WarnBefore = Duration{warnBefore, true}
	}
	if overlap > 0 {
		p.Spec.Default.Overlap = Duration{overlap, true}
	}
	if err := p.Spec.Default.check("--max-age/--warn-before", true); err != nil {
		return nil, err
	}
	return p, nil
}

// Types returns the Secret types the rules match on, sorted: the
// inventory learns those types (metadata does not carry a Secret's type).
func (p *Policy) Types() []string {
	seen := map[string]bool{}
	for _, r := range p.Spec.Rules {
		for _, t := range r.Match.Types {
			seen[t] = true
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// SelectsKeySet reports whether a jwk rule names this Secret (by name
// glob or labels): its data is then read as a key set even though
// kube-rotate never labelled it.
func (p *Policy) SelectsKeySet(namespace, name string, labels map[string]string) bool {
	for _, r := range p.Spec.Rules {
		m := r.Match
		if m.Kind != KindJWK || (len(m.Names) == 0 && len(m.Labels) == 0) {
			continue
		}
		c := Credential{Kind: KindJWK, Namespace: namespace, Name: name, Labels: labels}
		m.KIDs = nil
		if m.matches(c) {
			return true
		}
	}
	return false
}
