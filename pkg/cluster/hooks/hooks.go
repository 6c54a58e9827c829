// Package hooks runs the hooks of a rotation plan: commands that apply a
// pending value to a backing system (step "set", e.g. ALTER ROLE ...
// PASSWORD) or prove that it works (step "test").
//
// A hook is either a local command (Exec) or a Kubernetes Job (Job). Values
// never reach a hook on its command line: an Exec hook reads them as JSON
// on stdin or from a private file, a Job hook from Secret volumes. Every
// output kept in a Result or quoted in an error is redacted first.
package hooks

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kube-rotate/kube-rotate/pkg/model/values"
)

// DefaultTimeout bounds a hook whose Timeout is 0.
const DefaultTimeout = 5 * time.Minute

// OutputLimit is how much of a hook's output (its tail) a Result keeps.
const OutputLimit = 4 << 10

// Kinds of hook, as in Result.Kind.
const (
	KindExec = "exec"
	KindJob  = "job"
)

// Where an Exec hook reads its values (Exec.Values).
const (
	ValuesStdin = "stdin"
	ValuesFile  = "file"
)

// Environment variables a hook sees. None of them holds a value.
const (
	EnvValuesFile = "KUBE_ROTATE_VALUES_FILE"
	EnvStep       = "KUBE_ROTATE_STEP"
	EnvItem       = "KUBE_ROTATE_ITEM"
	EnvSecret     = "KUBE_ROTATE_SECRET"
	EnvNamespace  = "KUBE_ROTATE_NAMESPACE"
	EnvRotationID = "KUBE_ROTATE_ROTATION_ID"
	EnvPendingDir = "KUBE_ROTATE_PENDING_DIR"
	EnvCurrentDir = "KUBE_ROTATE_CURRENT_DIR"
)

// Values are what a hook may read: the pending (new) and current values
// of a Secret's keys, and which rotation step asks.
type Values struct {
	Pending, Current                          map[string][]byte
	Secret, Namespace, Item, Step, RotationID string
}

// Result is what a hook run left: its exit code and the redacted tail of
// its output.
type Result struct {
	Step string `json:"step"`
	// Kind is KindExec or KindJob.
	Kind string `json:"kind"`
	// ExitCode is the hook's exit code; -1 when it has none (killed by a
	// signal or timeout, a Job that failed without a terminated container).
	ExitCode int       `json:"exitCode"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Output is the last OutputLimit bytes of the combined output (for a
	// Job: the logs of its failed pod), with every pending and current
	// value, and its encoded forms, replaced by [REDACTED].
	Output string `json:"output,omitempty"`
	// Job is namespace/name of the Job a job hook ran.
	Job string `json:"job,omitempty"`
}

// document is the JSON an Exec hook reads.
type document struct {
	Secret        string            `json:"secret"`
	Namespace     string            `json:"namespace"`
	Item          string            `json:"item"`
	Step          string            `json:"step"`
	RotationID    string            `json:"rotationId"`
	Pending       map[string]string `json:"pending"`
	Current       map[string]string `json:"current"`
	PendingBase64 map[string]string `json:"pendingBase64,omitempty"`
	CurrentBase64 map[string]string `json:"currentBase64,omitempty"`
}

// splitUTF8 puts each value under text when it is valid UTF-8 and under
// b64 (base64) when it is not.
func splitUTF8(in map[string][]byte) (text, b64 map[string]string) {
	text = map[string]string{}
	for k, v := range in {
		if utf8.Valid(v) {
			text[k] = string(v)
			continue
		}
		if b64 == nil {
			b64 = map[string]string{}
		}
		b64[k] = base64.StdEncoding.EncodeToString(v)
	}
	return text, b64
}

// document renders the JSON an Exec hook reads. Errors never quote it.
func (v Values) document() ([]byte, error) {
	d := document{Secret: v.Secret, Namespace: v.Namespace, Item: v.Item, Step: v.Step, RotationID: v.RotationID}
	d.Pending, d.PendingBase64 = splitUTF8(v.Pending)
	d.Current, d.CurrentBase64 = splitUTF8(v.Current)
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding its values as JSON failed", v.what())
	}
	return append(b, '\n'), nil
}

// secrets lists every pending and current value for redaction, with the
// secret parts a rotation puts inside a value: the password part of a URL
// (--url-password, urlPassword) and the string fields of a JSON object
// (json-field), and URL passwords inside those fields. A hook printing only
// the new password must not leak it either.
func (v Values) secrets() [][]byte {
	var out [][]byte
	for _, m := range []map[string][]byte{v.Pending, v.Current} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, m[k])
			out = append(out, secretParts(m[k])...)
		}
	}
	return out
}

// minPart is the shortest part of a value redacted on its own: shorter
// fields (ids, regions) are too common in ordinary output.
const minPart = 8

// secretParts returns the URL password and the JSON string fields (and
// their URL passwords) inside a value.
func secretParts(v []byte) [][]byte {
	var out [][]byte
	add := func(s string) {
		if len(s) >= minPart {
			out = append(out, []byte(s))
		}
		if p, err := values.URLPassword(s); err == nil && len(p) >= minPart {
			out = append(out, []byte(p))
		}
	}
	if p, err := values.URLPassword(string(v)); err == nil && len(p) >= minPart {
		out = append(out, []byte(p))
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(v, &obj) == nil {
		names := make([]string, 0, len(obj))
		for n := range obj {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			var s string
			if json.Unmarshal(obj[n], &s) == nil {
				add(s)
			}
		}
	}
	return out
}

// env is the KUBE_ROTATE_* settings every hook sees (no values).
func (v Values) env() [][2]string {
	return [][2]string{
		{EnvStep, v.Step}, {EnvItem, v.Item}, {EnvSecret, v.Secret},
		{EnvNamespace, v.Namespace}, {EnvRotationID, v.RotationID},
	}
}

// what names the hook in errors: "hook set of item db-password".
func (v Values) what() string {
	step, item := v.Step, v.Item
	if step == "" {
		step = "(no step)"
	}
	if item == "" {
		item = "(unnamed)"
	}
	return fmt.Sprintf("hook %s of item %s", step, item)
}

// shortDuration prints 2m rather than 2m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if d >= time.Minute && d%time.Minute == 0 {
		s = strings.TrimSuffix(s, "0s")
		if d%time.Hour == 0 {
			s = strings.TrimSuffix(s, "0m")
		}
	}
	return s
}

// lastLine is the last non-empty line of (already redacted) output, made
// safe to put in a one-line error.
func lastLine(out string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f {
				return ' '
			}
			return r
		}, lines[i]))
		if l == "" {
			continue
		}
		const max = 300
		if len(l) > max {
			cut := max
			for cut > 0 && !utf8.RuneStart(l[cut]) {
				cut--
			}
			l = l[:cut] + "..."
		}
		return l
	}
	return "(no output)"
}
