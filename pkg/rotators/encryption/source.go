// Package encryption rotates the keys of an API server
// EncryptionConfiguration as Kubernetes' "Rotating a decryption key"
// describes it, as a staged, resumable procedure on the procedure engine:
//
//	stage    a new key second in every rotatable provider; every API server reloads
//	promote  the new key first; every API server reloads (it writes with it)
//	rewrite  every object the configuration encrypts is stored again (pkg/cluster/encryption)
//	retire   the old keys removed, once nothing is left under them; every API server reloads
//
// with a rollback of each stage. The stage is read from the configuration
// itself (its key names and order, pkg/model/encryptionconfig); the journal
// keeps only what the configuration cannot show (the rewrite's progress and
// under which configuration it ran, the steps that brought a written
// configuration to the API servers).
//
// Where the configuration lives is a Source: a file the operator ships to
// the control plane (kubeadm and other self-managed control planes), or a
// kOps state store's encryptionconfig secret (pkg/rotators/kops). How a
// written configuration reaches every API server is Options.Rollout: for
// kOps, kops update cluster and a control-plane rolling update; for a file,
// the API servers' --encryption-provider-config-automatic-reload.
package encryption

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Source is where an EncryptionConfiguration lives. Key material passes
// through it, never into a message.
type Source interface {
	// String names it in messages ("file /etc/kubernetes/enc/enc.yaml").
	String() string
	// Read returns the configuration.
	Read(ctx context.Context) ([]byte, error)
	// Write replaces the configuration with data if it still holds was;
	// else it writes nothing and says so.
	Write(ctx context.Context, was, data []byte) error
	// Keep stores the configuration as it was before the retire (it holds
	// the retired keys), for the rollback of the retire.
	Keep(ctx context.Context, data []byte) error
	// Kept returns what Keep stored, nil when nothing is kept.
	Kept(ctx context.Context) ([]byte, error)
	// Drop removes what Keep stored (a missing one is no error).
	Drop(ctx context.Context) error
	// KeptAt names where Keep stores it, for messages.
	KeptAt() string
}

// File is an EncryptionConfiguration file on this machine: the one
// kube-apiserver's --encryption-provider-config names, or the copy the
// operator ships to every control-plane node.
type File struct{ Path string }

// String implements Source.
func (f *File) String() string { return "file " + f.Path }

// KeptAt implements Source: next to the file, mode 0600.
func (f *File) KeptAt() string { return f.Path + ".retired" }

// Read implements Source.
func (f *File) Read(ctx context.Context) ([]byte, error) {
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("reading the encryption configuration: %w", err)
	}
	return b, nil
}

// Write implements Source: the file is read again and compared, then
// replaced by a rename (kube-apiserver never reads half a file), keeping
// its mode.
func (f *File) Write(ctx context.Context, was, data []byte) error {
	cur, err := os.ReadFile(f.Path)
	if err != nil {
		return fmt.Errorf("reading the encryption configuration: %w", err)
	}
	if !bytes.Equal(cur, was) {
		return fmt.Errorf("%s changed since it was read: nothing was written; re-run to start from what it holds now", f.Path)
	}
	mode := os.FileMode(0o600)
	if st, err := os.Stat(f.Path); err == nil {
		mode = st.Mode().Perm()
	}
	return writeFile(f.Path, data, mode)
}

// Keep implements Source.
func (f *File) Keep(ctx context.Context, data []byte) error {
	return writeFile(f.KeptAt(), data, 0o600)
}

// Kept implements Source.
func (f *File) Kept(ctx context.Context) ([]byte, error) {
	b, err := os.ReadFile(f.KeptAt())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the retired keys: %w", err)
	}
	return b, nil
}

// Drop implements Source.
func (f *File) Drop(ctx context.Context) error {
	if err := os.Remove(f.KeptAt()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the retired keys: %w", err)
	}
	return nil
}

// writeFile writes data to a temporary file in path's directory with mode,
// then renames it over path.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
