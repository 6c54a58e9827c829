package secret

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-rotate/kube-rotate/pkg/kube"
	"github.com/kube-rotate/kube-rotate/pkg/record"
	"github.com/kube-rotate/kube-rotate/pkg/rotation"
	"github.com/kube-rotate/kube-rotate/pkg/values"
)

// delivery hands the plaintext of a hashed token over exactly once: to a
// new 0600 file, or to a key of another Secret. Never to the terminal.
type delivery struct {
	path               string // file:PATH
	secretName, secKey string // secret:NAME:KEY
	format             *template.Template
	plaintext          []byte

	// what deliver did, for takeBack
	wroteFile     bool
	createdSecret bool
	previous      []byte
	hadPrevious   bool
}

func parseDelivery(spec, format string) (*delivery, error) {
	t, err := values.ParseDeliveryFormat(format)
	if err != nil {
		return nil, fmt.Errorf("--deliver-format: %w", err)
	}
	d := &delivery{format: t}
	switch {
	case strings.HasPrefix(spec, "file:"):
		d.path = strings.TrimPrefix(spec, "file:")
		if d.path == "" {
			return nil, errors.New("--deliver file:PATH needs a path")
		}
		if _, err := os.Lstat(d.path); err == nil {
			return nil, fmt.Errorf("--deliver: %s already exists: the token goes to a new file only; remove it or choose another path", d.path)
		}
	case strings.HasPrefix(spec, "secret:"):
		name, key, ok := strings.Cut(strings.TrimPrefix(spec, "secret:"), ":")
		if !ok || name == "" || key == "" {
			return nil, errors.New("--deliver secret:NAME:KEY needs a Secret name and a key")
		}
		d.secretName, d.secKey = name, key
	default:
		return nil, fmt.Errorf("--deliver %q: use file:PATH or secret:NAME:KEY", spec)
	}
	return d, nil
}

func (d *delivery) where() string {
	if d.path != "" {
		return "file " + d.path
	}
	return "secret/" + d.secretName + " key " + d.secKey
}

// deliver writes the token. source is the Secret receiving the hash.
func (d *delivery) deliver(ctx context.Context, c *kube.Clients, source string) error {
	if d.path != "" {
		f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("--deliver: creating %s: %w", d.path, errors.Unwrap(err))
		}
		_, werr := f.Write(append(append([]byte{}, d.plaintext...), '\n'))
		cerr := f.Close()
		if werr != nil || cerr != nil {
			os.Remove(d.path)
			return fmt.Errorf("--deliver: writing %s failed", d.path)
		}
		d.wroteFile = true
		return nil
	}
	if d.secretName == source {
		return fmt.Errorf("--deliver secret:%s: the token must go to another Secret than the one holding its hash", d.secretName)
	}
	secrets := c.Kube.CoreV1().Secrets(c.Namespace)
	s, err := secrets.Get(ctx, d.secretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: d.secretName, Namespace: c.Namespace,
				Labels: map[string]string{record.ManagedByLabel: record.ManagedBy}},
			Data: map[string][]byte{d.secKey: d.plaintext},
		}, metav1.CreateOptions{FieldManager: rotation.FieldManager})
		if err != nil {
			return fmt.Errorf("--deliver: creating secret/%s: %w", d.secretName, err)
		}
		d.createdSecret = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("--deliver: reading secret/%s: %w", d.secretName, err)
	}
	d.previous, d.hadPrevious = s.Data[d.secKey]
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[d.secKey] = d.plaintext
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: rotation.FieldManager}); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("--deliver: secret/%s changed while the token was being written: nothing was changed; re-run the command", d.secretName)
		}
		return fmt.Errorf("--deliver: writing secret/%s: %w", d.secretName, err)
	}
	return nil
}

// takeBack undoes deliver after the hash could not be written.
func (d *delivery) takeBack(ctx context.Context, c *kube.Clients, errOut io.Writer) {
	if d.wroteFile {
		if err := os.Remove(d.path); err == nil {
			fmt.Fprintf(errOut, "removed %s: its token was never put in effect\n", d.path)
		}
		return
	}
	secrets := c.Kube.CoreV1().Secrets(c.Namespace)
	if d.createdSecret {
		_ = secrets.Delete(ctx, d.secretName, metav1.DeleteOptions{})
		return
	}
	s, err := secrets.Get(ctx, d.secretName, metav1.GetOptions{})
	if err != nil {
		return
	}
	if d.hadPrevious {
		s.Data[d.secKey] = d.previous
	} else {
		delete(s.Data, d.secKey)
	}
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: rotation.FieldManager}); err == nil {
		fmt.Fprintf(errOut, "restored secret/%s key %s: the new token was never put in effect\n", d.secretName, d.secKey)
	}
}
