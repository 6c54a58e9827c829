// Package version holds the build stamp of the kube-rotate binaries.
//
// Release builds set the variables with
//
//	-ldflags "-X github.com/kube-rotate/kube-rotate/pkg/version.version=v0.1.0
//	          -X github.com/kube-rotate/kube-rotate/pkg/version.commit=abc1234
//	          -X github.com/kube-rotate/kube-rotate/pkg/version.date=2026-11-23T00:00:00Z"
//
// Unstamped builds (go build, go install) fall back to what the Go toolchain
// recorded in the binary's build information.
package version

import (
	"runtime"
	"runtime/debug"
)

// Set by -ldflags -X at release time; see the package comment.
var (
	version = ""
	commit  = ""
	date    = ""
)

// Info describes one binary's build.
type Info struct {
	// Version is the release tag (for example v0.1.0), or "(devel)" for an
	// unstamped build.
	Version string `json:"version"`
	// Commit is the source revision the binary was built from, if known.
	Commit string `json:"commit,omitempty"`
	// Date is the build or commit time in RFC 3339 form, if known.
	Date string `json:"date,omitempty"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
	// Dependencies lists the versions of the libraries that define the
	// binary's behaviour towards clusters (client-go, kOps), keyed by module path.
	Dependencies map[string]string `json:"dependencies,omitempty"`
}

// trackedModules are the dependencies worth reporting in `version` output:
// they decide which API shapes and keystore formats the binary understands.
var trackedModules = []string{
	"k8s.io/client-go",
	"k8s.io/kubectl",
	"k8s.io/kops",
	"github.com/lestrrat-go/jwx/v3",
	"github.com/google/go-github/v92",
}

// Get returns the build information of the running binary.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, version, commit, date)
}

func fromBuildInfo(bi *debug.BuildInfo, stampedVersion, stampedCommit, stampedDate string) Info {
	info := Info{
		Version:   stampedVersion,
		Commit:    stampedCommit,
		Date:      stampedDate,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi == nil {
		if info.Version == "" {
			info.Version = "(devel)"
		}
		return info
	}
	if info.Version == "" {
		info.Version = bi.Main.Version
		if info.Version == "" {
			info.Version = "(devel)"
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if info.Commit == "" {
				info.Commit = s.Value
			}
		case "vcs.time":
			if info.Date == "" {
				info.Date = s.Value
			}
		}
	}
	for _, dep := range bi.Deps {
		m := dep
		if m.Replace != nil {
			m = m.Replace
		}
		for _, want := range trackedModules {
			if dep.Path == want {
				if info.Dependencies == nil {
					info.Dependencies = map[string]string{}
				}
				info.Dependencies[want] = m.Version
			}
		}
	}
	return info
}
