package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReportItem is one credential checked against the policy.
type ReportItem struct {
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
	Since *metav1.Time `json:"since,omitempty"`
	// Age is Now - Since as kubectl prints ages (95d, 3h27m); AgeSeconds
	// is exact.
	Age        string `json:"age,omitempty"`
	AgeSeconds int64  `json:"ageSeconds,omitempty"`
	// AgeSource says where Since comes from.
	AgeSource string       `json:"ageSource,omitempty"`
	NotAfter  *metav1.Time `json:"notAfter,omitempty"`

	// Rule is the policy rule that gave the limits.
	Rule       string `json:"rule"`
	MaxAge     string `json:"maxAge"`
	WarnBefore string `json:"warnBefore,omitempty"`
	Overlap    string `json:"overlap,omitempty"`

	State CredentialState `json:"state"`
	// Reason explains the state in one sentence.
	Reason string `json:"reason,omitempty"`
	// Commands rotate the credential (or finish its rotation), in order.
	Commands []string `json:"commands,omitempty"`
	// Labels of the Secret, for policy matching; not printed.
	Labels map[string]string `json:"-"`
}

// ReportSummary counts items by state.
type ReportSummary struct {
	Total   int `json:"total"`
	OK      int `json:"ok"`
	Warn    int `json:"warn"`
	Overdue int `json:"overdue"`
	Expired int `json:"expired"`
	Unknown int `json:"unknown"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// RotationReport is the result of one check.
type RotationReport struct {
	metav1.TypeMeta `json:",inline"`
	Generated       metav1.Time `json:"generated"`
	// Policy names the policy file, or the flags that stood in for one.
	Policy  string        `json:"policy"`
	Summary ReportSummary `json:"summary"`
	Items   []ReportItem  `json:"items"`
	// Errors are sources that could not be read (one line each); the
	// rest of the report stands.
	Errors []string `json:"errors,omitempty"`
}

// CredentialState is where a credential stands against its policy.
type CredentialState string

// Credential states, from best to worst; StateUnknown when its age cannot
// be worked out.
const (
	StateOK      CredentialState = "ok"
	StateWarn    CredentialState = "warn"
	StateOverdue CredentialState = "overdue"
	StateExpired CredentialState = "expired"
	StateUnknown CredentialState = "unknown"
)

// Failing reports whether any item is at or past level: "overdue" means
// overdue or expired; "warn" also counts warnings and unknown ages.
func (r *RotationReport) Failing(level string) bool {
	switch level {
	case "overdue":
		return r.Summary.Overdue+r.Summary.Expired > 0
	case "warn":
		return r.Summary.Overdue+r.Summary.Expired+r.Summary.Warn+r.Summary.Unknown > 0
	}
	return false
}

// Due returns the items that are overdue or expired.
func (r *RotationReport) Due() []ReportItem {
	var out []ReportItem
	for _, it := range r.Items {
		if it.State == StateOverdue || it.State == StateExpired {
			out = append(out, it)
		}
	}
	return out
}
