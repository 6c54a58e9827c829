// Command krewmanifest renders krew plugin manifests from `.krew.yaml`
// templates, the format krew-release-bot reads: Go text/template with
// .TagName, indent, and {{addURIAndSha "URL" .TagName}}, which writes the
// uri and the sha256 of the archive. The archive is not downloaded: it is
// the file of the URL's name in -dist, built by `make dist`. Hashes are
// never typed by hand.
//
//	go run ./hack/krewmanifest -tag v0.1.0 -dist dist -out dist/krew krew/rotate.krew.yaml krew/kops-rotate.krew.yaml
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

func main() {
	tag := flag.String("tag", "", "release tag, with a leading v (the manifests' spec.version)")
	dist := flag.String("dist", "dist", "directory holding the archives the URLs name")
	out := flag.String("out", "dist/krew", "directory to write NAME.yaml into")
	uriBase := flag.String("uri-base", "", "if set, replace everything before the archive name in each uri (e.g. file:///tmp/dist/ for a local install)")
	flag.BoolVar(&allowMissing, "allow-missing", false, "for structural checks only: an archive not in -dist gets the sha256 of empty input instead of an error")
	flag.Parse()
	if err := run(*tag, *dist, *out, *uriBase, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "krewmanifest:", err)
		os.Exit(1)
	}
}

// allowMissing: see -allow-missing.
var allowMissing bool

func run(tag, dist, out, uriBase string, templates []string) error {
	if !strings.HasPrefix(tag, "v") {
		return fmt.Errorf("-tag %q: krew wants a version with a leading v", tag)
	}
	if len(templates) == 0 {
		return fmt.Errorf("give the .krew.yaml templates to render")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, t := range templates {
		b, err := render(t, tag, dist, uriBase)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		var meta struct {
			Metadata struct{ Name string } `yaml:"metadata"`
		}
		if err := yaml.Unmarshal(b, &meta); err != nil || meta.Metadata.Name == "" {
			return fmt.Errorf("%s: the rendered manifest has no metadata.name (%v)", t, err)
		}
		dst := filepath.Join(out, meta.Metadata.Name+".yaml")
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
		fmt.Println(dst)
	}
	return nil
}

func render(file, tag, dist, uriBase string) ([]byte, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{
		"indent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
		},
		// addURIAndSha writes "uri: URL" and, on the next line at the same
		// indentation (4 spaces, as krew-release-bot assumes), its sha256.
		"addURIAndSha": func(url, tagName string) (string, error) {
			url = strings.ReplaceAll(url, "{{ .TagName }}", tagName)
			name := path.Base(url)
			sum, err := sha256File(filepath.Join(dist, name))
			if os.IsNotExist(err) && allowMissing {
				empty := sha256.Sum256(nil)
				sum, err = hex.EncodeToString(empty[:]), nil
			}
			if err != nil {
				return "", fmt.Errorf("archive for %s: %w (run make dist)", url, err)
			}
			if uriBase != "" {
				url = uriBase + name
			}
			return fmt.Sprintf("uri: %s\n    sha256: %s", url, sum), nil
		},
	}
	t, err := template.New(filepath.Base(file)).Funcs(funcs).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, struct{ TagName string }{tag}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
