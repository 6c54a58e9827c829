package target

import (
	"strings"
	"testing"
)

func TestSecretName(t *testing.T) {
	tests := []struct {
		args    []string
		want    string
		wantErr string
	}{
		{[]string{"secret/db"}, "db", ""},
		{[]string{"secrets/db"}, "db", ""},
		{[]string{"Secret", "db"}, "db", ""},
		{[]string{"db"}, "", "names no kind"},
		{[]string{"deployment/web"}, "", "is not a Secret"},
		{[]string{"secret/"}, "", "is not a Secret"},
		{nil, "", "expected one Secret"},
		{[]string{"secret/a", "secret/b"}, "", "is not a Secret"},
	}
	for _, tt := range tests {
		got, err := SecretName("undo", tt.args)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "kubectl rotate undo secret/NAME") {
				t.Errorf("SecretName(%v) = %q, %v; want error %q with usage", tt.args, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("SecretName(%v) = %q, %v; want %q", tt.args, got, err, tt.want)
		}
	}
}
