package policy

import (
	"os"
	"strings"
	"testing"
	"time"
)

const day = 24 * time.Hour

func TestParseAndMatch(t *testing.T) {
	b, err := os.ReadFile("testdata/diracx.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		c                 Credential
		rule              string
		maxAge, warn, ovl time.Duration
	}{
		{Credential{Kind: KindJWK, Namespace: "diracx", Name: "diracx-jwks"}, "signing-keys", 30 * day, 7 * day, day},
		{Credential{Kind: KindJWK, Namespace: "other"}, "default", 90 * day, 14 * day, 0},
		{Credential{Kind: KindSecret, Name: "diracx-sql-connection-urls", Labels: map[string]string{"app.kubernetes.io/part-of": "diracx"}}, "db-urls", 60 * day, 14 * day, 0},
		{Credential{Kind: KindSecret, Name: "diracx-sql-connection-urls"}, "default", 90 * day, 14 * day, 0},
		{Credential{Kind: KindKeyset, Keyset: "etcd-manager-ca-main"}, "cluster-ca", 365 * day, 30 * day, 0},
		{Credential{Kind: KindKeyset, Keyset: "service-account"}, "default", 90 * day, 14 * day, 0},
	}
	for _, tt := range tests {
		l, rule := p.For(tt.c)
		if rule != tt.rule || l.MaxAge.Duration != tt.maxAge || l.WarnBefore.Duration != tt.warn || l.Overlap.Duration != tt.ovl {
			t.Errorf("For(%+v) = %s %v/%v/%v, want %s %v/%v/%v", tt.c, rule, l.MaxAge.Duration, l.WarnBefore.Duration, l.Overlap.Duration, tt.rule, tt.maxAge, tt.warn, tt.ovl)
		}
	}
}

func TestStrictErrorsNameTheLine(t *testing.T) {
	head := "apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPolicy\nspec:\n"
	tests := []struct{ name, doc, want string }{
		{"unknown field", head + "  default:\n    maxAge: 90d\n    maxAg: 3d\n", "line 6: field maxAg not found"},
		{"bad duration", head + "  default:\n    maxAge: 90 days\n", `line 5: duration "90 days"`},
		{"bad duration in a rule", head + "  default: {maxAge: 90d}\n  rules:\n  - match: {kind: jwk}\n    overlap: soon\n", `line 7: duration "soon"`},
		{"no default maxAge", head + "  default: {warnBefore: 3d}\n", "spec.default.maxAge is required"},
		{"warn not before max", head + "  default: {maxAge: 10d, warnBefore: 10d}\n", "warnBefore (10d) must be shorter than maxAge (10d)"},
		{"rule warn past its max", head + "  default: {maxAge: 90d, warnBefore: 14d}\n  rules:\n  - name: short\n    maxAge: 7d\n", "spec.rules[0] (short): warnBefore (14d) must be shorter than maxAge (7d)"},
		{"unknown kind", head + "  default: {maxAge: 90d}\n  rules:\n  - match: {kind: password}\n", `match.kind "password" is not known`},
		{"bad glob", head + "  default: {maxAge: 90d}\n  rules:\n  - match: {names: ['[x']}\n", `"[x" is not a valid glob`},
		{"wrong kind", "apiVersion: v1\nkind: ConfigMap\n", "apiVersion/kind"},
		{"two documents", head + "  default: {maxAge: 90d}\n---\nkind: x\n", "more than one YAML document"},
		{"empty", "", "the policy file is empty"},
		{"not yaml", "{{{", "policy:"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line containing %q", tt.name, err, tt.want)
		}
	}
}

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	l := Limits{MaxAge: Duration{90 * day, true}, WarnBefore: Duration{14 * day, true}}
	tests := []struct {
		age      time.Duration
		notAfter time.Time
		want     State
	}{
		{10 * day, time.Time{}, StateOK},
		{76 * day, time.Time{}, StateWarn},
		{90 * day, time.Time{}, StateOverdue},
		{10 * day, now.Add(-time.Second), StateExpired},
		{10 * day, now.Add(10 * day), StateWarn},
		{10 * day, now.Add(30 * day), StateOK},
	}
	for _, tt := range tests {
		if got := Evaluate(l, tt.age, now, tt.notAfter); got != tt.want {
			t.Errorf("Evaluate(age %v, notAfter %v) = %s, want %s", tt.age, tt.notAfter, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/diracx.yaml")
	f.Add(b)
	f.Add([]byte("apiVersion: rotate.kube-rotate.io/v1alpha1\nkind: RotationPolicy\nspec: {default: {maxAge: 1d}}\n"))
	f.Add([]byte("spec:\n  rules:\n  - match: {names: ['*']}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error: %q", err)
			}
			return
		}
		l, _ := p.For(Credential{Kind: KindSecret, Name: "x", Labels: map[string]string{"a": "b"}})
		if l.MaxAge.Duration <= 0 {
			t.Errorf("accepted policy gives maxAge %v", l.MaxAge.Duration)
		}
		_ = Evaluate(l, time.Hour, time.Now(), time.Time{})
	})
}
