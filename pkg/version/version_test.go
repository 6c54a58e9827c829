package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/kube-rotate/kube-rotate", Version: "v0.0.0-20261123-abcdef"},
		Deps: []*debug.Module{
			{Path: "k8s.io/client-go", Version: "v0.36.6"},
			{Path: "k8s.io/kops", Version: "v1.36.2"},
			{Path: "golang.org/x/text", Version: "v0.30.0"},
			{Path: "k8s.io/kubectl", Version: "v0.36.0", Replace: &debug.Module{Path: "k8s.io/kubectl", Version: "v0.36.6"}},
		},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.time", Value: "2026-11-23T10:00:00Z"}},
	}
	tests := []struct {
		name                  string
		bi                    *debug.BuildInfo
		version, commit, date string
		wantVersion           string
		wantCommit            string
		wantDate              string
		wantDeps              map[string]string
	}{
		{
			name: "stamped release wins over build info", bi: bi,
			version: "v0.1.0", commit: "feedbee", date: "2026-11-01T00:00:00Z",
			wantVersion: "v0.1.0", wantCommit: "feedbee", wantDate: "2026-11-01T00:00:00Z",
			wantDeps: map[string]string{"k8s.io/client-go": "v0.36.6", "k8s.io/kops": "v1.36.2", "k8s.io/kubectl": "v0.36.6"},
		},
		{
			name: "unstamped build reads vcs settings", bi: bi,
			wantVersion: "v0.0.0-20261123-abcdef", wantCommit: "0123abc", wantDate: "2026-11-23T10:00:00Z",
			wantDeps: map[string]string{"k8s.io/client-go": "v0.36.6", "k8s.io/kops": "v1.36.2", "k8s.io/kubectl": "v0.36.6"},
		},
		{
			name: "no build info", bi: nil, wantVersion: "(devel)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fromBuildInfo(tt.bi, tt.version, tt.commit, tt.date)
			if got.Version != tt.wantVersion || got.Commit != tt.wantCommit || got.Date != tt.wantDate {
				t.Errorf("got version=%q commit=%q date=%q, want %q %q %q", got.Version, got.Commit, got.Date, tt.wantVersion, tt.wantCommit, tt.wantDate)
			}
			if len(got.Dependencies) != len(tt.wantDeps) {
				t.Fatalf("dependencies = %v, want %v", got.Dependencies, tt.wantDeps)
			}
			for k, v := range tt.wantDeps {
				if got.Dependencies[k] != v {
					t.Errorf("dependency %s = %q, want %q", k, got.Dependencies[k], v)
				}
			}
			if got.GoVersion == "" || got.Platform == "" {
				t.Errorf("go version/platform missing: %+v", got)
			}
		})
	}
}
