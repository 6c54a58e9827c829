package githubtest

import (
	"encoding/base64"
	"net/http"
	"path"
	"sort"
	"strings"
)

// resolveRef turns a contents-API ref ("" = default branch, a branch name,
// heads/x, refs/heads/x or a commit sha) into a commit. Caller holds mu.
func (s *Server) resolveRef(ref string) (*commit, bool) {
	if ref == "" {
		ref = s.defaultBranch
	}
	name := strings.TrimPrefix(strings.TrimPrefix(ref, "refs/"), "heads/")
	if sha, ok := s.branches[name]; ok {
		return s.commits[sha], true
	}
	if c, ok := s.commits[ref]; ok {
		return c, true
	}
	return nil, false
}

func (s *Server) refJSON(branch, sha string) map[string]any {
	return map[string]any{
		"ref":     "refs/heads/" + branch,
		"node_id": "REF_fake",
		"url":     s.URL + s.repoPath("git/refs/heads/"+branch),
		"object": map[string]any{
			"sha":  sha,
			"type": "commit",
			"url":  s.URL + s.repoPath("git/commits/"+sha),
		},
	}
}

// branchOfRef returns the branch named by "heads/x" (or "refs/heads/x").
func branchOfRef(ref string) (string, bool) {
	return strings.CutPrefix(strings.TrimPrefix(ref, "refs/"), "heads/")
}

func (s *Server) getRef(w http.ResponseWriter, r *http.Request) {
	b, ok := branchOfRef(r.PathValue("ref"))
	sha, exists := s.branches[b]
	if !ok || !exists {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.refJSON(b, sha))
}

func (s *Server) getCommit(w http.ResponseWriter, r *http.Request) {
	c, ok := s.commits[r.PathValue("sha")]
	if !ok {
		notFound(w)
		return
	}
	parents := make([]any, 0, len(c.parents))
	for _, p := range c.parents {
		parents = append(parents, map[string]any{"sha": p, "url": s.URL + s.repoPath("git/commits/"+p)})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"sha":     c.sha,
		"node_id": "C_fake",
		"url":     s.URL + s.repoPath("git/commits/"+c.sha),
		"message": c.message,
		"parents": parents,
		"author":  map[string]any{"name": BotLogin, "date": ts(c.date)},
	})
}

func (s *Server) createRef(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Ref *string `json:"ref"`
		SHA *string `json:"sha"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Ref == nil || in.SHA == nil {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"ref\" and \"sha\" are required.")
		return
	}
	if !strings.HasPrefix(*in.Ref, "refs/") || strings.Count(*in.Ref, "/") < 2 {
		writeError(w, http.StatusUnprocessableEntity, "Reference name must start with 'refs/' and have at least two slashes.")
		return
	}
	b, ok := branchOfRef(*in.Ref)
	if !ok || b == "" {
		writeError(w, http.StatusUnprocessableEntity, "githubtest: only refs/heads/ references are supported")
		return
	}
	if _, ok := s.commits[*in.SHA]; !ok {
		writeError(w, http.StatusUnprocessableEntity, "Object does not exist")
		return
	}
	if _, ok := s.branches[b]; ok {
		writeError(w, http.StatusUnprocessableEntity, "Reference already exists")
		return
	}
	s.branches[b] = *in.SHA
	writeJSON(w, http.StatusCreated, s.refJSON(b, *in.SHA))
}

func (s *Server) updateRef(w http.ResponseWriter, r *http.Request) {
	var in struct {
		SHA   *string `json:"sha"`
		Force bool    `json:"force"`
	}
	if !decode(w, r, &in) {
		return
	}
	b, ok := branchOfRef(r.PathValue("ref"))
	old, exists := s.branches[b]
	if !ok || !exists {
		writeError(w, http.StatusUnprocessableEntity, "Reference does not exist")
		return
	}
	if in.SHA == nil {
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"sha\" wasn't supplied.")
		return
	}
	if _, ok := s.commits[*in.SHA]; !ok {
		writeError(w, http.StatusUnprocessableEntity, "Object does not exist")
		return
	}
	if !in.Force && !s.isAncestor(old, *in.SHA) {
		writeError(w, http.StatusUnprocessableEntity, "Update is not a fast forward")
		return
	}
	s.branches[b] = *in.SHA
	writeJSON(w, http.StatusOK, s.refJSON(b, *in.SHA))
}

func (s *Server) deleteRef(w http.ResponseWriter, r *http.Request) {
	b, ok := branchOfRef(r.PathValue("ref"))
	if _, exists := s.branches[b]; !ok || !exists {
		writeError(w, http.StatusUnprocessableEntity, "Reference does not exist")
		return
	}
	if b == s.defaultBranch {
		writeError(w, http.StatusUnprocessableEntity, "Cannot delete the default branch")
		return
	}
	delete(s.branches, b)
	w.WriteHeader(http.StatusNoContent)
}

// base64Lines encodes like GitHub's contents API: 60 characters a line.
func base64Lines(b []byte) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	for len(enc) > 60 {
		sb.WriteString(enc[:60])
		sb.WriteByte('\n')
		enc = enc[60:]
	}
	sb.WriteString(enc)
	sb.WriteByte('\n')
	return sb.String()
}

func (s *Server) contentMeta(p string, b []byte, ref string) map[string]any {
	sha := blobSHA(b)
	return map[string]any{
		"type":         "file",
		"name":         path.Base(p),
		"path":         p,
		"sha":          sha,
		"size":         len(b),
		"url":          s.URL + s.repoPath("contents/"+p) + "?ref=" + ref,
		"html_url":     "https://github.com/" + s.owner + "/" + s.repo + "/blob/" + ref + "/" + p,
		"git_url":      s.URL + s.repoPath("git/blobs/"+sha),
		"download_url": "https://raw.githubusercontent.com/" + s.owner + "/" + s.repo + "/" + ref + "/" + p,
	}
}

func (s *Server) getContents(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("ref")
	c, ok := s.resolveRef(ref)
	if !ok {
		writeError(w, http.StatusNotFound, "No commit found for the ref "+ref)
		return
	}
	if ref == "" {
		ref = s.defaultBranch
	}
	p := strings.Trim(r.PathValue("path"), "/")
	if b, ok := c.files[p]; ok {
		m := s.contentMeta(p, b, ref)
		m["encoding"] = "base64"
		m["content"] = base64Lines(b)
		writeJSON(w, http.StatusOK, m)
		return
	}
	// A directory: list its direct entries.
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	entries := map[string]map[string]any{}
	for fp, b := range c.files {
		rest, ok := strings.CutPrefix(fp, prefix)
		if !ok {
			continue
		}
		if dir, _, isDir := strings.Cut(rest, "/"); isDir {
			entries[dir] = map[string]any{"type": "dir", "name": dir, "path": prefix + dir}
		} else {
			entries[rest] = s.contentMeta(fp, b, ref)
		}
	}
	if len(entries) == 0 {
		notFound(w)
		return
	}
	var names []string
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	list := []any{}
	for _, n := range names {
		list = append(list, entries[n])
	}
	writeJSON(w, http.StatusOK, list)
}

type contentPut struct {
	Message *string `json:"message"`
	Content *string `json:"content"`
	SHA     *string `json:"sha"`
	Branch  *string `json:"branch"`
}

// putContents creates or updates one file with a commit, requiring the
// current blob sha for an existing file as GitHub does.
func (s *Server) putContents(w http.ResponseWriter, r *http.Request) {
	var in contentPut
	if !decode(w, r, &in) {
		return
	}
	p := strings.Trim(r.PathValue("path"), "/")
	switch {
	case p == "":
		notFound(w)
		return
	case in.Message == nil:
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"message\" wasn't supplied.")
		return
	case in.Content == nil:
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"content\" wasn't supplied.")
		return
	}
	content, err := base64.StdEncoding.DecodeString(*in.Content)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "content is not valid Base64")
		return
	}
	branch := s.defaultBranch
	if in.Branch != nil && *in.Branch != "" {
		branch = *in.Branch
	}
	head, ok := s.branches[branch]
	if !ok {
		writeError(w, http.StatusNotFound, "Branch "+branch+" not found")
		return
	}
	cur := s.commits[head]
	old, exists := cur.files[p]
	switch {
	case exists && (in.SHA == nil || *in.SHA == ""):
		writeError(w, http.StatusUnprocessableEntity, "Invalid request.\n\n\"sha\" wasn't supplied.")
		return
	case exists && *in.SHA != blobSHA(old):
		writeError(w, http.StatusConflict, p+" does not match "+*in.SHA)
		return
	case !exists && in.SHA != nil && *in.SHA != "":
		writeError(w, http.StatusConflict, p+" does not match "+*in.SHA)
		return
	}
	files := maps(cur.files)
	files[p] = content
	c := s.newCommit([]string{head}, *in.Message, files)
	s.branches[branch] = c.sha
	status := http.StatusOK
	if !exists {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{
		"content": s.contentMeta(p, content, branch),
		"commit": map[string]any{
			"sha":      c.sha,
			"node_id":  "C_fake",
			"message":  c.message,
			"html_url": "https://github.com/" + s.owner + "/" + s.repo + "/commit/" + c.sha,
			"parents":  []any{map[string]any{"sha": head}},
			"author":   map[string]any{"name": BotLogin, "date": ts(c.date)},
		},
	})
}
