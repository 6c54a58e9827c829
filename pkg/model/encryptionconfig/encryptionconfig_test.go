package encryptionconfig

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// A configuration as operators write them: comments, a second resources
// entry, identity and KMS providers, quoting.
const full = `# Managed by hand; see the runbook.
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
      - configmaps
    providers:
      # the key that writes comes first
      - aescbc:
          keys:
            - name: key1   # made in 2024
              secret: "c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDMyYnk="
      - identity: {}
  - resources:
      - events
    providers:
      - identity: {}
  - resources:
      - '*.apps'
    providers:
      - kms:
          apiVersion: v2
          name: vault
          endpoint: unix:///var/run/kms.sock
      - identity: {}
`

const compact = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - secretbox:
      keys:
      - name: old
        secret: YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=
  - identity: {}`

func TestRotationEditsKeepTheDocument(t *testing.T) {
	for _, tt := range []struct {
		name, doc, typ, oldKey string
	}{
		{"indented list, comments, other providers", full, "aescbc", "key1"},
		{"compact list, no newline at the end", compact, "secretbox", "old"},
		{"CRLF line ends", strings.ReplaceAll(full, "\n", "\r\n"), "aescbc", "key1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.Provider("secrets")
			if err != nil || p.Type != tt.typ || p.Stage() != StageIdle {
				t.Fatalf("provider %v %v", p, err)
			}
			now := time.Date(2026, 12, 2, 2, 32, 0, 0, time.UTC)
			name, secret, err := NewKey(p.Type, now, nil)
			if err != nil || name != "key-20261202T023200Z" {
				t.Fatal(name, err)
			}
			staged, err := c.Stage(p, name, secret)
			if err != nil {
				t.Fatal(err)
			}
			sc, p2 := reparse(t, staged)
			if p2.Stage() != StageStaged || names(p2) != tt.oldKey+","+name {
				t.Fatalf("after stage: %s %s\n%s", p2.Stage(), names(p2), staged)
			}
			// Only the new key's two lines were added.
			if got := dropLines(string(staged), name, secret); got != tt.doc {
				t.Errorf("stage changed more than the new key:\n%s", staged)
			}
			promoted, err := sc.Promote(p2)
			if err != nil {
				t.Fatal(err)
			}
			pc, p3 := reparse(t, promoted)
			if p3.Stage() != StagePromoted || names(p3) != name+","+tt.oldKey {
				t.Fatalf("after promote: %s %s\n%s", p3.Stage(), names(p3), promoted)
			}
			if !sameLines(promoted, staged) {
				t.Errorf("promote did more than reorder lines:\n%s", promoted)
			}
			demoted, err := pc.Demote(p3, tt.oldKey)
			if err != nil || !bytes.Equal(demoted, staged) {
				t.Errorf("rollback of promote is not the staged document: %v\n%s", err, demoted)
			}
			unstaged, err := sc.Unstage(p2)
			if err != nil || string(unstaged) != tt.doc {
				t.Errorf("rollback of stage is not the original: %v\n%s", err, unstaged)
			}
			retired, err := pc.Retire(p3)
			if err != nil {
				t.Fatal(err)
			}
			_, p4 := reparse(t, retired)
			if p4.Stage() != StageIdle || names(p4) != name {
				t.Errorf("after retire: %s %s", p4.Stage(), names(p4))
			}
			if strings.Contains(string(retired), "name: "+tt.oldKey) {
				t.Errorf("retire left the old key:\n%s", retired)
			}
			// Everything but the keys is byte for byte the original.
			if tt.name != "compact list, no newline at the end" && !strings.Contains(string(retired), "# the key that writes comes first") {
				t.Error("a comment was lost")
			}
		})
	}
}

func reparse(t *testing.T, b []byte) (*Config, *Provider) {
	t.Helper()
	c, err := Parse(b)
	if err != nil {
		t.Fatalf("the edited document does not parse: %v\n%s", err, b)
	}
	p, err := c.Provider("secrets")
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

func names(p *Provider) string {
	var out []string
	for _, k := range p.Keys {
		out = append(out, k.Name)
	}
	return strings.Join(out, ",")
}

func dropLines(doc string, name, secret string) string {
	var out []string
	for _, l := range strings.SplitAfter(doc, "\n") {
		if strings.Contains(l, "name: "+name) || strings.Contains(l, "secret: "+secret) {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

func sameLines(a, b []byte) bool {
	count := map[string]int{}
	for _, l := range strings.Split(strings.TrimRight(string(a), "\r\n"), "\n") {
		count[strings.TrimRight(l, "\r")]++
	}
	for _, l := range strings.Split(strings.TrimRight(string(b), "\r\n"), "\n") {
		count[strings.TrimRight(l, "\r")]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

// Bad input: one line naming the place and the fix, never the secret.
func TestParseRefuses(t *testing.T) {
	secret := "c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/IDMyYnk="
	for _, tt := range []struct{ name, doc, want string }{
		{"not yaml", "kind: [", "not YAML"},
		{"other kind", "apiVersion: v1\nkind: Secret\n", `kind is "Secret"`},
		{"old apiVersion", "apiVersion: apiserver.config.k8s.io/v1beta1\nkind: EncryptionConfiguration\nresources: []\n", "convert the file first"},
		{"identity only", "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n", "nothing kube-rotate can rotate"},
		{"flow keys", "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys: [{name: a, secret: " + secret + "}]\n", "write them as a block list"},
		{"short key", "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - secretbox:\n      keys:\n      - name: a\n        secret: c2hvcnQ=\n", "key a is 5 bytes: secretbox takes [32]"},
		{"duplicate names", "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n      - name: a\n        secret: " + secret + "\n      - name: a\n        secret: " + secret + "\n", "two keys are named a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Parse: %v, want one line with %q", err, tt.want)
			}
		})
	}
}

// Stage gates: each edit only from the stage it belongs to.
func TestEditsRefusedOutOfStage(t *testing.T) {
	c, _ := Parse([]byte(full))
	p, _ := c.Provider("secrets")
	if _, err := c.Promote(p); err == nil || !strings.Contains(err.Error(), "only a staged key") {
		t.Errorf("promote when idle: %v", err)
	}
	if _, err := c.Retire(p); err == nil || !strings.Contains(err.Error(), "retire follows a promote") {
		t.Errorf("retire when idle: %v", err)
	}
	if _, err := c.Provider("pods"); err == nil || !strings.Contains(err.Error(), `no rotatable provider covers "pods"`) {
		t.Errorf("provider for pods: %v", err)
	}
	if p.Prefix("key1") != "k8s:enc:aescbc:v1:key1:" {
		t.Errorf("prefix %q", p.Prefix("key1"))
	}
}
