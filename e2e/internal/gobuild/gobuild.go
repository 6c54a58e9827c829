// Package gobuild runs the go command for the harness's throwaway wrapper
// modules (the control plane, the External Secrets operator): static
// binaries, no VCS stamping, no workspace or caller's module flags.
package gobuild

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/mod/modfile"
)

// Env is added to the environment of every command of a wrapper module
// (for example GOSUMDB=off, for that wrapper only).
type Env []string

// Command returns a go command in dir; log, if not nil, receives its output.
func (e Env) Command(ctx context.Context, dir string, log io.Writer, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	if log != nil {
		cmd.Stdout, cmd.Stderr = log, log
	}
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOWORK=off", "GO111MODULE=on"), e...)
	return cmd
}

// Run runs a go command in dir.
func (e Env) Run(ctx context.Context, dir string, log io.Writer, args ...string) error {
	return e.Command(ctx, dir, log, args...).Run()
}

// Output runs go and returns its standard output; the error carries what
// go printed on standard error.
func (e Env) Output(ctx context.Context, dir string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := e.Command(ctx, dir, nil, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// ModInfo is what `go mod download -json` says of a module.
type ModInfo struct{ Dir, GoMod, Error string }

// ModDownload downloads module@version through the module proxy.
func (e Env) ModDownload(ctx context.Context, dir, modVersion string) (ModInfo, error) {
	out, err := e.Output(ctx, dir, "mod", "download", "-json", modVersion)
	var info ModInfo
	_ = json.Unmarshal(out, &info)
	if err != nil || info.GoMod == "" || info.Dir == "" {
		msg := info.Error
		if msg == "" && err != nil {
			msg = err.Error()
		}
		return info, fmt.Errorf("downloading %s from the module proxy: %s", modVersion, msg)
	}
	return info, nil
}

// CheckNoUpgrades fails if resolving the wrapper module in src selected,
// for a module upstream's go.mod requires, another version than
// upstream's: the binaries must be built from upstream's dependency set.
// Modules skip returns true for are not compared.
func (e Env) CheckNoUpgrades(ctx context.Context, src string, upstream []byte, skip func(path string) bool) error {
	f, err := modfile.Parse("upstream", upstream, nil)
	if err != nil {
		return err
	}
	out, err := e.Output(ctx, src, "list", "-m", "-json", "all")
	if err != nil {
		return fmt.Errorf("listing the wrapper's modules: %w", err)
	}
	selected := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m struct{ Path, Version string }
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("reading go list output: %w", err)
		}
		selected[m.Path] = m.Version
	}
	var moved []string
	for _, r := range f.Require {
		if got, ok := selected[r.Mod.Path]; ok && got != r.Mod.Version && (skip == nil || !skip(r.Mod.Path)) {
			moved = append(moved, fmt.Sprintf("%s %s -> %s", r.Mod.Path, r.Mod.Version, got))
		}
	}
	if len(moved) > 0 {
		return fmt.Errorf("the wrapper module would not build upstream's dependency set (%s)", strings.Join(moved, ", "))
	}
	return nil
}
