package v1alpha1

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// SecretRotationHistory is a Secret's rotation history, as
// `kubectl rotate history -o json|yaml` prints it.
type SecretRotationHistory struct {
	metav1.TypeMeta `json:",inline"`
	Secret          string  `json:"secret"`
	Namespace       string  `json:"namespace"`
	Phase           string  `json:"phase,omitempty"`
	Previous        string  `json:"previous,omitempty"`
	Items           []Entry `json:"items"`
}

// Entry is one rotation in a Secret's history.
type Entry struct {
	Time       metav1.Time `json:"time"`
	Action     string      `json:"action"`
	Generation int64       `json:"generation"`
	// Keys maps each changed key to the fingerprint of its new value.
	Keys map[string]string `json:"keys"`
	By   string            `json:"by,omitempty"`
}

// KeyNames returns the entry's keys, sorted.
func (e Entry) KeyNames() []string {
	out := make([]string, 0, len(e.Keys))
	for k := range e.Keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ReadHistory parses the History annotation; a missing one is empty.
func ReadHistory(annotations map[string]string) ([]Entry, error) {
	raw, ok := annotations[History]
	if !ok || raw == "" {
		return nil, nil
	}
	var h []Entry
	if err := json.Unmarshal([]byte(raw), &h); err != nil {
		return nil, fmt.Errorf("annotation %s is not valid: %w", History, err)
	}
	return h, nil
}

// GenerationOf returns the Generation annotation, 0 when absent.
func GenerationOf(annotations map[string]string) (int64, error) {
	raw, ok := annotations[Generation]
	if !ok {
		return 0, nil
	}
	g, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || g < 0 {
		return 0, fmt.Errorf("annotation %s=%q is not a generation number", Generation, raw)
	}
	return g, nil
}

// Apply records entry on annotations (modified in place): rotated-at,
// generation, keys, fingerprints, phase and the bounded history.
func Apply(annotations map[string]string, e Entry, phase string) error {
	h, err := ReadHistory(annotations)
	if err != nil {
		return err
	}
	h = append(h, e)
	if len(h) > MaxHistory {
		h = h[len(h)-MaxHistory:]
	}
	hist, err := json.Marshal(h)
	if err != nil {
		return err
	}
	fps, err := json.Marshal(e.Keys)
	if err != nil {
		return err
	}
	annotations[RotatedAt] = e.Time.UTC().Format(time.RFC3339)
	annotations[Generation] = strconv.FormatInt(e.Generation, 10)
	annotations[Keys] = strings.Join(e.KeyNames(), ",")
	annotations[Fingerprints] = string(fps)
	annotations[Phase] = phase
	annotations[History] = string(hist)
	return nil
}
