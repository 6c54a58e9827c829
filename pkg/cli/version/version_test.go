package version

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/yaml"

	buildinfo "github.com/kube-rotate/kube-rotate/pkg/version"
)

func TestPrint(t *testing.T) {
	info := buildinfo.Info{
		Version: "v0.3.1", Commit: "abc1234", Date: "2026-11-23T10:00:00Z",
		GoVersion: "go1.26.8", Platform: "linux/amd64",
		Dependencies: map[string]string{"k8s.io/kops": "v1.36.2", "k8s.io/client-go": "v0.36.6"},
	}
	tests := []struct {
		name   string
		output string
		short  bool
		check  func(t *testing.T, out string)
	}{
		{"short", "", true, func(t *testing.T, out string) {
			if out != "v0.3.1\n" {
				t.Errorf("short output = %q", out)
			}
		}},
		{"text lists libraries sorted", "", false, func(t *testing.T, out string) {
			i, j := strings.Index(out, "k8s.io/client-go v0.36.6"), strings.Index(out, "k8s.io/kops v1.36.2")
			if !strings.HasPrefix(out, "Version:  v0.3.1\n") || i < 0 || j < 0 || i > j {
				t.Errorf("text output:\n%s", out)
			}
		}},
		{"json round-trips", "json", false, func(t *testing.T, out string) {
			var got buildinfo.Info
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if got.Version != "v0.3.1" || got.Dependencies["k8s.io/kops"] != "v1.36.2" {
				t.Errorf("json = %+v", got)
			}
		}},
		{"yaml round-trips", "yaml", false, func(t *testing.T, out string) {
			var got buildinfo.Info
			if err := yaml.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if got.Commit != "abc1234" {
				t.Errorf("yaml = %+v", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := Print(&b, info, tt.output, tt.short); err != nil {
				t.Fatal(err)
			}
			tt.check(t, b.String())
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		output  string
		short   bool
		wantErr string
	}{
		{"", false, ""},
		{"json", false, ""},
		{"yaml", false, ""},
		{"wide", false, `--output "wide" is not supported`},
		{"json", true, "cannot be used together"},
	}
	for _, tt := range tests {
		o := NewOptions(genericiooptions.NewTestIOStreamsDiscard())
		o.Output, o.Short = tt.output, tt.short
		err := o.Validate()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Validate(output=%q short=%v) = %v, want %q", tt.output, tt.short, err, tt.wantErr)
		}
	}
}
