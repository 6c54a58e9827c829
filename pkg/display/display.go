// Package display carries the name a tool was invoked by through the
// context, so the core words the commands it suggests as the user types
// them: `kops-rotate stage all …`, or `kubectl kops-rotate stage all …`
// when it runs as a kubectl plugin. The root commands put the name in the
// context; the core reads it, never a hard-coded string.
package display

import "context"

type kopsRotateKey struct{}

// DefaultKopsRotate is the name of kops-rotate when nothing else is known
// (for example in `kubectl rotate status`, which suggests its commands).
const DefaultKopsRotate = "kops-rotate"

// WithKopsRotate returns ctx carrying the name kops-rotate runs as.
func WithKopsRotate(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, kopsRotateKey{}, name)
}

// KopsRotate returns the name kops-rotate runs as, from ctx, else
// DefaultKopsRotate.
func KopsRotate(ctx context.Context) string {
	if ctx != nil {
		if n, ok := ctx.Value(kopsRotateKey{}).(string); ok && n != "" {
			return n
		}
	}
	return DefaultKopsRotate
}

type kubectlRotateKey struct{}

// DefaultKubectlRotate is the name of kubectl-rotate: users run it through
// kubectl's plugin dispatch (and the Action suggests commands to type).
const DefaultKubectlRotate = "kubectl rotate"

// WithKubectlRotate returns ctx carrying the name kubectl-rotate runs as.
func WithKubectlRotate(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, kubectlRotateKey{}, name)
}

// KubectlRotate returns the name kubectl-rotate runs as, from ctx, else
// DefaultKubectlRotate.
func KubectlRotate(ctx context.Context) string {
	if ctx != nil {
		if n, ok := ctx.Value(kubectlRotateKey{}).(string); ok && n != "" {
			return n
		}
	}
	return DefaultKubectlRotate
}
