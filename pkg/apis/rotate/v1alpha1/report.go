package v1alpha1

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReportItem is one credential checked against the policy.
type ReportItem struct {
	// ID names the credential across runs (the Action keys issues by it):
	// secret:CLUSTER/NS/NAME, tls:CLUSTER/NS/NAME,
	// jwk:CLUSTER/NS/NAME/KEY#signing, jwk:CLUSTER/NS/NAME/KEY#retiring:KID,
	// jwk-file:PATH#signing, ..., kops-keyset:CLUSTER/KEYSET. Before
	// clusters were named, ids had no CLUSTER/ (key-set files still have
	// none: they belong to the repository).
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
	File string `json:"file,omitempty"`
	KID  string `json:"kid,omitempty"`
	// Cluster is the cluster holding the credential: the identity of the
	// cluster whose Secret it is, or the kOps cluster of a keyset.
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
	// Clusters are the clusters checked, each with its own counts; a
	// cluster that could not be read has Error set and no items.
	Clusters []ReportCluster `json:"clusters,omitempty"`
	// Errors are sources that could not be read (one line each); the
	// rest of the report stands.
	Errors []string `json:"errors,omitempty"`
}

// ClusterTarget names the cluster a command acts on: its identity (as in
// ids), the kubeconfig context and the API server.
type ClusterTarget struct {
	Cluster string `json:"cluster"`
	Context string `json:"context,omitempty"`
	Server  string `json:"server,omitempty"`
}

// String is how commands name the target before they write: cluster prod
// (context prod-admin, server https://...); "" when the cluster is not
// known.
func (t ClusterTarget) String() string {
	if t.Cluster == "" {
		return ""
	}
	var extra []string
	if t.Context != "" {
		extra = append(extra, "context "+t.Context)
	}
	if t.Server != "" {
		extra = append(extra, "server "+t.Server)
	}
	if len(extra) == 0 {
		return "cluster " + t.Cluster
	}
	return "cluster " + t.Cluster + " (" + strings.Join(extra, ", ") + ")"
}

// ReportCluster is one cluster a report checked.
type ReportCluster struct {
	// Name is the cluster's identity, as in item ids and Cluster fields.
	Name string `json:"name"`
	// Context is the kubeconfig context it was read through; Server its
	// API server. Both empty for a kOps cluster read from its state store.
	Context string `json:"context,omitempty"`
	Server  string `json:"server,omitempty"`
	// AlsoContexts point at the same cluster; it was scanned once.
	AlsoContexts []string `json:"alsoContexts,omitempty"`
	// Summary counts this cluster's items.
	Summary ReportSummary `json:"summary"`
	// Error says why the cluster could not be read (one line).
	Error string `json:"error,omitempty"`
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
