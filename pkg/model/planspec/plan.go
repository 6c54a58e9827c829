// Package planspec reads a RotationPlan: the Secrets and key sets that
// `kubectl rotate apply -f PLAN.yaml` rotates in one resumable run, the
// order they go in, and the hooks that apply and test each new value
// against the system behind it (ALTER ROLE, a re-encryption, a login).
//
// Each item runs four steps: create (new values into the pending
// companion Secret NAME-pending), set (the set hook applies them to the
// backing system), test (the test hook proves they work) and finish (the
// pending values move into place, the old ones stay in NAME-previous,
// consumers restart). This package parses, defaults, validates and orders
// a plan; it reads no cluster and runs nothing.
//
// Parsing is strict, as for a RotationPolicy: an unknown field anywhere,
// inside a hook's Job template included, is an error naming its line, and
// every error is one line.
package planspec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/kube-rotate/kube-rotate/pkg/apis/rotate/v1alpha1"

	"go.yaml.in/yaml/v3"

	"github.com/kube-rotate/kube-rotate/pkg/model/duration"
	"github.com/kube-rotate/kube-rotate/pkg/model/jwks"
)

// APIVersion and Kind of a plan file, from the group's one declaration.
const (
	APIVersion = v1alpha1.APIVersion
	Kind       = v1alpha1.KindRotationPlan
)

// Defaults the parser fills in (SetDefaults).
const (
	DefaultTimeout      = 5 * time.Minute
	DefaultPreviousTTL  = 7 * 24 * time.Hour
	DefaultHookTimeout  = 5 * time.Minute
	DefaultJobTimeout   = 10 * time.Minute
	DefaultPasswordSpec = "password:32"
	DefaultTokenBytes   = 32
	MinTokenBytes       = 16
	DefaultFormat       = "{{.Base64URL}}"
)

// SpecURLPassword is the jsonFields spec that puts the item's urlPassword
// password (the same one its URL keys get) into a JSON field.
const SpecURLPassword = "url-password"

// PendingSuffix and PreviousSuffix name the companion Secrets of the
// Secret an item changes: NAME-pending holds the new values until finish,
// NAME-previous keeps the old ones for previousTTL.
const (
	PendingSuffix  = "-pending"
	PreviousSuffix = "-previous"
)

// EnvPrefix starts the names of the variables the tool itself gives an
// exec hook (KUBE_ROTATE_VALUES_FILE, ...); a plan may not set them.
const EnvPrefix = "KUBE_ROTATE_"

// Plan is a parsed RotationPlan.
type Plan struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`

	// dir is the absolute directory of the plan file (ParseFile), against
	// which exec hooks' working directories resolve.
	dir string
}

// Metadata names the plan; the name also names the run's journal.
type Metadata struct {
	// Name is a DNS-1123 label.
	Name string `yaml:"name" json:"name"`
}

// Spec holds the run's settings and its items.
type Spec struct {
	// Namespace is the default namespace of the items; empty means the
	// kubeconfig's. SetDefaults copies it into every item that names none.
	Namespace string `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	// Restart says when consumers restart; default coalesced.
	Restart RestartMode `yaml:"restart,omitempty" json:"restart"`
	// Timeout bounds each rollout wait; default 5m.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitzero"`
	// PreviousTTL is how long NAME-previous keeps the old values; default 7d.
	PreviousTTL Duration `yaml:"previousTTL,omitempty" json:"previousTTL,omitzero"`
	// ReplacePrevious lets the plan replace a NAME-previous that still
	// holds the values of an earlier rotation that was not finished and
	// has not expired; without it such a plan is refused before any write.
	ReplacePrevious bool `yaml:"replacePrevious,omitempty" json:"replacePrevious,omitempty"`
	// Items, in file order.
	Items []*Item `yaml:"items" json:"items"`
}

// RestartMode says when the workloads that use the changed Secrets restart.
type RestartMode string

// Restart modes.
const (
	// RestartCoalesced restarts each workload once, after every write it
	// depends on (the default).
	RestartCoalesced RestartMode = "coalesced"
	// RestartPerItem restarts an item's consumers when that item finishes.
	RestartPerItem RestartMode = "per-item"
	// RestartNone restarts nothing.
	RestartNone RestartMode = "none"
)

// Item is one Secret or key set rotated in the run. Exactly one of Secret
// and JWKS is set.
type Item struct {
	// Name is unique in the plan, a DNS-1123 label.
	Name string `yaml:"name" json:"name"`
	// After lists items that must finish before this one starts.
	After []string `yaml:"after,omitempty" json:"after,omitempty"`
	// Secret: new values for keys of a Secret.
	Secret *SecretSpec `yaml:"secret,omitempty" json:"secret,omitempty"`
	// JWKS: a new signing key in a key set kept in a Secret.
	JWKS *JWKSSpec `yaml:"jwks,omitempty" json:"jwks,omitempty"`
	// Hooks apply (set) and test the pending values.
	Hooks Hooks `yaml:"hooks,omitempty" json:"hooks"`
}

// SecretSpec changes keys of one Secret; at least one of Generate,
// URLPassword, JSONFields and Hashed is set, and no key is changed twice.
type SecretSpec struct {
	// Name of the Secret.
	Name string `yaml:"name" json:"name"`
	// Namespace overrides spec.namespace.
	Namespace string `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	// Generate gives keys new random values.
	Generate []GenerateKey `yaml:"generate,omitempty" json:"generate,omitempty"`
	// URLPassword puts one new password into several connection URLs.
	URLPassword *URLPassword `yaml:"urlPassword,omitempty" json:"urlPassword,omitempty"`
	// JSONFields change top-level string fields of JSON values.
	JSONFields []JSONField `yaml:"jsonFields,omitempty" json:"jsonFields,omitempty"`
	// Hashed stores the SHA-256 of a new token and delivers the token once.
	Hashed *Hashed `yaml:"hashed,omitempty" json:"hashed,omitempty"`
	// CreateKeys allows Generate and Hashed keys the Secret lacks.
	CreateKeys bool `yaml:"createKeys,omitempty" json:"createKeys"`
}

// GenerateKey is a key and the generator of its new value.
type GenerateKey struct {
	Key string `yaml:"key" json:"key"`
	// Spec is a values.ParseSpec generator: random:32, hex:32,
	// base64url:N, password:N or uuid.
	Spec string `yaml:"spec" json:"spec"`
}

// URLPassword replaces the password part of connection URLs with one new
// password, shared by all of Keys and by the item's url-password JSON
// fields (Keys may be empty when such a field uses it).
type URLPassword struct {
	Keys []string `yaml:"keys,omitempty" json:"keys,omitempty"`
	// Generate is the password's generator spec; default password:32.
	Generate string `yaml:"generate,omitempty" json:"generate"`
}

// JSONField changes one top-level string field of the JSON value of Key.
// Several fields of one key compose.
type JSONField struct {
	Key   string `yaml:"key" json:"key"`
	Field string `yaml:"field" json:"field"`
	// Spec is a generator spec, or url-password for the item's URL
	// password; default password:32.
	Spec string `yaml:"spec,omitempty" json:"spec"`
}

// Hashed stores the lowercase hex SHA-256 of a new random token in Key and
// hands the token, rendered with Format, to the Secret Deliver names.
type Hashed struct {
	Key string `yaml:"key" json:"key"`
	// TokenBytes is the token's size; default 32, at least 16.
	TokenBytes int `yaml:"tokenBytes,omitempty" json:"tokenBytes"`
	// Deliver is secret:NAME:KEY, in the item's namespace.
	Deliver string `yaml:"deliver" json:"deliver"`
	// Format is a values.ParseDeliveryFormat template; default {{.Base64URL}}.
	Format string `yaml:"format,omitempty" json:"format"`
}

// DeliverTo returns the Secret and key of h.Deliver, and false when it is
// not secret:NAME:KEY.
func (h *Hashed) DeliverTo() (name, key string, ok bool) {
	rest, found := strings.CutPrefix(h.Deliver, "secret:")
	if !found {
		return "", "", false
	}
	name, key, ok = strings.Cut(rest, ":")
	return name, key, ok && name != "" && key != ""
}

// JWKSSpec adds a signing key to a JWKS kept in a Secret (and, when
// DeleteOlderThan is set, drops retired keys older than that).
type JWKSSpec struct {
	// Secret holding the key set.
	Secret string `yaml:"secret" json:"secret"`
	// Namespace overrides spec.namespace.
	Namespace string `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	// Key of the Secret holding the JWKS; default jwks.DefaultSecretKey.
	Key string `yaml:"key,omitempty" json:"key"`
	// Layout is diracx, slurm or generic; empty: detected from the set.
	Layout string `yaml:"layout,omitempty" json:"layout,omitempty"`
	// Alg is Ed25519, EdDSA, ES256, RS256 or HS256; empty: the layout's
	// (DiracX: the signing key's alg).
	Alg string `yaml:"alg,omitempty" json:"alg,omitempty"`
	// DeleteOlderThan, if set, removes non-signing keys older than this.
	DeleteOlderThan Duration `yaml:"deleteOlderThan,omitempty" json:"deleteOlderThan,omitzero"`
}

// Hooks of an item; both are optional.
type Hooks struct {
	// Set applies the pending values to the backing system.
	Set *Hook `yaml:"set,omitempty" json:"set,omitempty"`
	// Test proves the pending values work.
	Test *Hook `yaml:"test,omitempty" json:"test,omitempty"`
}

// Hook is a local command or a Kubernetes Job; exactly one is set.
type Hook struct {
	Exec *ExecHook `yaml:"exec,omitempty" json:"exec,omitempty"`
	Job  *JobHook  `yaml:"job,omitempty" json:"job,omitempty"`
}

// ExecHook runs a local command, without a shell. The values reach it as
// Values says, never on its command line.
type ExecHook struct {
	// Command is the argv; Command[0] is looked up in PATH unless it holds
	// a slash (then it is relative to the working directory).
	Command []string `yaml:"command" json:"command"`
	// Values: stdin or file (default).
	Values ValuesMode `yaml:"values,omitempty" json:"values"`
	// Env adds plain, non-secret settings to the hook's environment.
	Env []EnvVar `yaml:"env,omitempty" json:"env,omitempty"`
	// Timeout bounds the command; default 5m.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitzero"`
	// WorkingDir is relative to the plan file's directory; empty: that
	// directory. See Plan.HookDir.
	WorkingDir string `yaml:"workingDir,omitempty" json:"workingDir,omitempty"`
}

// ValuesMode says how an exec hook receives the pending and current values.
type ValuesMode string

// Values modes.
const (
	// ValuesStdin: a JSON document on standard input.
	ValuesStdin ValuesMode = "stdin"
	// ValuesFile: the same JSON in a 0600 file whose path is in
	// $KUBE_ROTATE_VALUES_FILE (the default).
	ValuesFile ValuesMode = "file"
)

// EnvVar is one environment setting of an exec hook.
type EnvVar struct {
	Name  string `yaml:"name" json:"name"`
	Value string `yaml:"value" json:"value"`
}

// JobHook runs a Job made from Template; the tool adds the pending and
// current Secrets to it.
type JobHook struct {
	Template JobTemplate `yaml:"template" json:"template"`
	// Timeout bounds the Job; default 10m.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitzero"`
}

// Duration is a day-aware duration (5m, 1h, 7d) that remembers whether it
// was set.
type Duration struct {
	time.Duration
	Set bool
}

// UnmarshalYAML parses a duration, naming the line on error.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a string like 5m, 1h or 7d", n.Line)
	}
	v, err := duration.Parse(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	d.Duration, d.Set = v, true
	return nil
}

// IsZero reports an unset duration (for omitempty).
func (d Duration) IsZero() bool { return !d.Set && d.Duration == 0 }

// MarshalJSON writes the duration as 7d, 5m0s, ...
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(duration.Format(d.Duration))
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := duration.Parse(s)
	if err != nil {
		return err
	}
	d.Duration, d.Set = v, true
	return nil
}

// Parse reads a plan strictly (an unknown field is an error naming its
// line), fills in the defaults and validates it. Errors are one line.
func Parse(data []byte) (*Plan, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	p := &Plan{}
	if err := dec.Decode(p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("plan: the file is empty: write a RotationPlan (apiVersion " + APIVersion + ")")
		}
		return nil, fmt.Errorf("plan: %w", unwrapYAML(err))
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("plan: the file holds more than one YAML document: keep one RotationPlan per file")
	}
	p.SetDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseFile reads the plan at path (see Parse) and records its directory,
// against which exec hooks' working directories resolve. Errors start with
// the path.
func ParseFile(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file: give the path of a RotationPlan", path)
		}
		return nil, fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.dir = filepath.Dir(abs)
	return p, nil
}

// Dir is the absolute directory of the plan file, or "" for a plan read
// by Parse.
func (p *Plan) Dir() string { return p.dir }

// HookDir is the directory an exec hook runs in: its workingDir resolved
// against the plan file's directory (an absolute workingDir is kept). For
// a plan read by Parse, a relative workingDir stays relative (to the
// current directory) and an empty one is "".
func (p *Plan) HookDir(h *ExecHook) string {
	if filepath.IsAbs(h.WorkingDir) {
		return filepath.Clean(h.WorkingDir)
	}
	if p.dir == "" {
		if h.WorkingDir == "" {
			return ""
		}
		return filepath.Clean(h.WorkingDir)
	}
	return filepath.Join(p.dir, h.WorkingDir)
}

// SetDefaults fills in what the plan leaves out: restart coalesced,
// timeout 5m, previousTTL 7d, each item's namespace from spec.namespace,
// password:32 for URL passwords and JSON fields, 32 token bytes and
// {{.Base64URL}} for hashed tokens, jwks.json for key sets, values file
// and 5m for exec hooks, 10m for Job hooks. It is idempotent; Parse calls
// it before Validate.
func (p *Plan) SetDefaults() {
	s := &p.Spec
	if s.Restart == "" {
		s.Restart = RestartCoalesced
	}
	defaultDuration(&s.Timeout, DefaultTimeout)
	defaultDuration(&s.PreviousTTL, DefaultPreviousTTL)
	for _, it := range s.Items {
		if it == nil {
			continue
		}
		if sec := it.Secret; sec != nil {
			if sec.Namespace == "" {
				sec.Namespace = s.Namespace
			}
			if u := sec.URLPassword; u != nil && u.Generate == "" {
				u.Generate = DefaultPasswordSpec
			}
			for i := range sec.JSONFields {
				if sec.JSONFields[i].Spec == "" {
					sec.JSONFields[i].Spec = DefaultPasswordSpec
				}
			}
			if h := sec.Hashed; h != nil {
				if h.TokenBytes == 0 {
					h.TokenBytes = DefaultTokenBytes
				}
				if h.Format == "" {
					h.Format = DefaultFormat
				}
			}
		}
		if j := it.JWKS; j != nil {
			if j.Namespace == "" {
				j.Namespace = s.Namespace
			}
			if j.Key == "" {
				j.Key = jwks.DefaultSecretKey
			}
		}
		for _, h := range []*Hook{it.Hooks.Set, it.Hooks.Test} {
			if h == nil {
				continue
			}
			if e := h.Exec; e != nil {
				if e.Values == "" {
					e.Values = ValuesFile
				}
				defaultDuration(&e.Timeout, DefaultHookTimeout)
			}
			if j := h.Job; j != nil {
				defaultDuration(&j.Timeout, DefaultJobTimeout)
			}
		}
	}
}

func defaultDuration(d *Duration, def time.Duration) {
	if !d.Set && d.Duration == 0 {
		d.Duration = def
	}
}

// Namespace is the namespace of the Secret the item changes: its own
// (which SetDefaults fills from spec.namespace), else def, the
// kubeconfig's.
func (i *Item) Namespace(def string) string {
	switch {
	case i.Secret != nil && i.Secret.Namespace != "":
		return i.Secret.Namespace
	case i.JWKS != nil && i.JWKS.Namespace != "":
		return i.JWKS.Namespace
	}
	return def
}

// SecretName is the name of the Secret the item changes: secret.name or
// jwks.secret.
func (i *Item) SecretName() string {
	switch {
	case i.Secret != nil:
		return i.Secret.Name
	case i.JWKS != nil:
		return i.JWKS.Secret
	}
	return ""
}

// Keys are the keys of SecretName the item writes, in file order: for a
// key set, its one key; a hashed token's delivery Secret is not included.
func (i *Item) Keys() []string {
	if i.JWKS != nil {
		return []string{i.JWKS.Key}
	}
	if i.Secret == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	s := i.Secret
	for _, g := range s.Generate {
		add(g.Key)
	}
	if s.URLPassword != nil {
		for _, k := range s.URLPassword.Keys {
			add(k)
		}
	}
	for _, f := range s.JSONFields {
		add(f.Key)
	}
	if s.Hashed != nil {
		add(s.Hashed.Key)
	}
	return out
}

// Fingerprint is the lowercase hex SHA-256 of the plan with its defaults
// filled in, as canonical JSON: a journal records it to notice that the
// plan changed between runs. Leaving out a default and writing it give the
// same fingerprint, as do spec.namespace and the same namespace written on
// every item; the file's location does not count. Fingerprint does not
// change p.
func (p *Plan) Fingerprint() string {
	b, err := json.Marshal(p)
	if err == nil {
		c := &Plan{}
		if err = json.Unmarshal(b, c); err == nil {
			c.SetDefaults()
			// Every item has its namespace now; where it came from does
			// not matter.
			c.Spec.Namespace = ""
			b, err = json.Marshal(c)
		}
	}
	if err != nil {
		// Only a plan built by hand with values JSON cannot hold (NaN in a
		// Job template) gets here; fall back to Go's rendering of it.
		b = fmt.Appendf(nil, "%#v", p)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// unwrapYAML keeps yaml.v3's first "line N: ..." message, on one line
// (yaml.v3 quotes the offending value, newlines included), and names the
// place of an unknown field in the plan's terms.
func unwrapYAML(err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
		if t, ok := fieldTypes[m[3]]; ok {
			msg = fmt.Sprintf("line %s: unknown field %q in %s: use %s", m[1], m[2], t.where, strings.Join(yamlFields(t.t), ", "))
		}
	}
	return errors.New(strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(msg))
}

var unknownFieldRE = regexp.MustCompile(`^line (\d+): field (.*) not found in type (\S+)$`)

// fieldTypes names the plan's types as a plan's author knows them.
var fieldTypes = func() map[string]struct {
	where string
	t     reflect.Type
} {
	m := map[string]struct {
		where string
		t     reflect.Type
	}{}
	for _, x := range []struct {
		where string
		v     any
	}{
		{"the plan", Plan{}}, {"metadata", Metadata{}}, {"spec", Spec{}}, {"an item", Item{}},
		{"an item's secret", SecretSpec{}}, {"a generate entry", GenerateKey{}},
		{"urlPassword", URLPassword{}}, {"a jsonFields entry", JSONField{}}, {"hashed", Hashed{}},
		{"an item's jwks", JWKSSpec{}}, {"hooks", Hooks{}}, {"a hook", Hook{}},
		{"an exec hook", ExecHook{}}, {"an env entry", EnvVar{}}, {"a job hook", JobHook{}},
	} {
		t := reflect.TypeOf(x.v)
		m[t.String()] = struct {
			where string
			t     reflect.Type
		}{x.where, t}
	}
	return m
}()

// yamlFields lists the YAML names of t's fields.
func yamlFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, name)
	}
	return out
}
