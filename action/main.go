// Command action is the entrypoint of the kube-rotate GitHub Action container.
// It stays thin: inputs are read here and handed to pkg/; see action.yml.
package main

import (
	"os"

	"github.com/sethvargo/go-githubactions"

	"github.com/kube-rotate/kube-rotate/pkg/version"
)

func main() {
	gha := githubactions.New()
	v := version.Get()
	gha.Infof("kube-rotate action %s (%s)", v.Version, v.Platform)
	if os.Getenv("GITHUB_OUTPUT") != "" {
		gha.SetOutput("version", v.Version)
	}
}
