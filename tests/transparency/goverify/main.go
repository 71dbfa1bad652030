// Command goverify checks a transparency log written by federation the way an auditor
// who does not run our code would: with Go's golang.org/x/mod/sumdb/note and
// golang.org/x/mod/sumdb/tlog, and nothing of ours.
//
//	goverify DIR < request.json > report.json
//
// DIR holds the log as static files: hash tiles tile/<L>/<N>[.p/<W>] and entry bundles
// tile/entries/<N>[.p/<W>]. The request names the log's verifier key (and the name and
// public key it should encode), the signed checkpoints, and the inclusion and
// consistency proofs to check. For every checkpoint, goverify opens the signed note
// with note.Open, reads the tree through tlog.TileHashReader (which authenticates the
// tiles it reads against the checkpoint's root), and checks that every entry of the
// bundles hashes to its leaf. Each of our proofs must pass tlog.CheckRecord or
// tlog.CheckTree and equal the proof tlog.ProveRecord or tlog.ProveTree computes.
//
// The report lists every failure. Exit status: 0 when everything verified, 1 when
// something did not, 2 when the request could not be read.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

type request struct {
	VerifierKey string        `json:"verifier_key"`
	KeyName     string        `json:"key_name"`
	PublicKey   []byte        `json:"public_key"` // standard base64 in JSON
	Checkpoints []string      `json:"checkpoints"`
	Inclusion   []inclusion   `json:"inclusion"`
	Consistency []consistency `json:"consistency"`
}

type inclusion struct {
	Checkpoint int      `json:"checkpoint"`
	Index      int64    `json:"index"`
	Proof      [][]byte `json:"proof"`
}

type consistency struct {
	Old   int      `json:"old"`
	New   int      `json:"new"`
	Proof [][]byte `json:"proof"`
}

type report struct {
	Checkpoints int      `json:"checkpoints"`
	Entries     int      `json:"entries"`
	Inclusion   int      `json:"inclusion"`
	Consistency int      `json:"consistency"`
	Failures    []string `json:"failures"`
}

// checkpoint is a signed tree head that verified, with a hash reader over its tiles.
type checkpoint struct {
	tree   tlog.Tree
	hashes tlog.HashReader
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: goverify DIR < request.json")
		os.Exit(2)
	}
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "goverify: reading the request:", err)
		os.Exit(2)
	}
	files := &directory{root: os.Args[1], cache: map[string][]byte{}, checked: map[string]bool{}}
	rep := run(&req, files)
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		os.Exit(2)
	}
	if len(rep.Failures) > 0 {
		os.Exit(1)
	}
}

func run(req *request, files *directory) *report {
	rep := &report{Failures: []string{}}
	fail := func(format string, args ...interface{}) {
		rep.Failures = append(rep.Failures, fmt.Sprintf(format, args...))
	}

	verifier, err := note.NewVerifier(req.VerifierKey)
	if err != nil {
		fail("verifier key %q: %v", req.VerifierKey, err)
		return rep
	}
	if req.KeyName != "" || req.PublicKey != nil {
		want, err := note.NewEd25519VerifierKey(req.KeyName, ed25519.PublicKey(req.PublicKey))
		if err != nil || want != req.VerifierKey {
			fail("verifier key %q: Go writes %q (%v)", req.VerifierKey, want, err)
		}
	}

	// A head whose signature verified takes part in the proof checks even when its
	// tiles do not hash to its root (a fork): CheckRecord and CheckTree need no tiles.
	heads := make([]*checkpoint, len(req.Checkpoints))
	for i, msg := range req.Checkpoints {
		head, err := openCheckpoint(msg, verifier, files)
		if err != nil {
			fail("checkpoint %d: %v", i, err)
			continue
		}
		heads[i] = head
		n, err := checkEntries(head, files)
		rep.Entries += n
		if err != nil {
			fail("checkpoint %d (size %d): %v", i, head.tree.N, err)
			continue
		}
		rep.Checkpoints++
	}

	for i, item := range req.Inclusion {
		if item.Checkpoint < 0 || item.Checkpoint >= len(heads) || heads[item.Checkpoint] == nil {
			fail("inclusion %d: no signed checkpoint %d", i, item.Checkpoint)
			continue
		}
		if err := checkInclusion(heads[item.Checkpoint], item, files); err != nil {
			fail("inclusion %d (leaf %d, size %d): %v", i, item.Index, heads[item.Checkpoint].tree.N, err)
			continue
		}
		rep.Inclusion++
	}

	for i, item := range req.Consistency {
		if item.Old < 0 || item.Old >= len(heads) || item.New < 0 || item.New >= len(heads) ||
			heads[item.Old] == nil || heads[item.New] == nil {
			fail("consistency %d: no signed checkpoints %d and %d", i, item.Old, item.New)
			continue
		}
		old, new := heads[item.Old], heads[item.New]
		if err := checkConsistency(old, new, item.Proof); err != nil {
			fail("consistency %d (size %d to %d): %v", i, old.tree.N, new.tree.N, err)
			continue
		}
		rep.Consistency++
	}
	return rep
}

// openCheckpoint verifies the note's signature and parses the C2SP checkpoint in it.
func openCheckpoint(msg string, verifier note.Verifier, files *directory) (*checkpoint, error) {
	n, err := note.Open([]byte(msg), note.VerifierList(verifier))
	if err != nil {
		return nil, fmt.Errorf("note.Open: %v", err)
	}
	if !strings.HasSuffix(n.Text, "\n") {
		return nil, fmt.Errorf("the text does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("%d lines, not at least 3", len(lines))
	}
	for _, line := range lines {
		if line == "" {
			return nil, fmt.Errorf("an empty line")
		}
	}
	origin := lines[0]
	if n.Sigs[0].Name != origin {
		return nil, fmt.Errorf("signed by %q, not by the origin %q", n.Sigs[0].Name, origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return nil, fmt.Errorf("size %q is not a decimal number", lines[1])
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil || root.String() != lines[2] {
		return nil, fmt.Errorf("root %q is not a base64 hash", lines[2])
	}
	tree := tlog.Tree{N: size, Hash: root}
	return &checkpoint{tree: tree, hashes: tlog.TileHashReader(tree, files)}, nil
}

// checkEntries reads every entry of the tree from the bundles the tree's size implies,
// and checks each against the leaf hash the authenticated tiles hold.
func checkEntries(head *checkpoint, files *directory) (int, error) {
	size := head.tree.N
	if size == 0 {
		// RFC 9162: the empty tree hashes as SHA-256 of nothing (tlog.TreeHash says zero).
		if head.tree.Hash != tlog.Hash(sha256.Sum256(nil)) {
			return 0, fmt.Errorf("the empty tree's root is not SHA-256 of nothing")
		}
		return 0, nil
	}
	root, err := tlog.TreeHash(size, head.hashes)
	if err != nil {
		return 0, fmt.Errorf("tlog.TreeHash over the tiles: %v", err)
	}
	if root != head.tree.Hash {
		return 0, fmt.Errorf("the tiles hash to %v, not the checkpoint's root", root)
	}
	indexes := make([]int64, size)
	for i := range indexes {
		indexes[i] = tlog.StoredHashIndex(0, int64(i))
	}
	leaves, err := head.hashes.ReadHashes(indexes)
	if err != nil {
		return 0, fmt.Errorf("reading the leaf hashes from the tiles: %v", err)
	}
	for start := int64(0); start < size; start += 1 << height {
		entries, err := files.bundle(start>>height, size)
		if err != nil {
			return int(start), err
		}
		for j, entry := range entries {
			if tlog.RecordHash(entry) != leaves[start+int64(j)] {
				return int(start), fmt.Errorf("entry %d does not hash to its leaf in the tiles", start+int64(j))
			}
		}
	}
	return int(size), nil
}

func checkInclusion(head *checkpoint, item inclusion, files *directory) error {
	if item.Index < 0 || item.Index >= head.tree.N {
		return fmt.Errorf("the leaf is not in the tree")
	}
	entries, err := files.bundle(item.Index>>height, head.tree.N)
	if err != nil {
		return err
	}
	leaf := tlog.RecordHash(entries[item.Index&(1<<height-1)])
	proof, err := hashes(item.Proof)
	if err != nil {
		return err
	}
	if err := tlog.CheckRecord(tlog.RecordProof(proof), head.tree.N, head.tree.Hash, item.Index, leaf); err != nil {
		return fmt.Errorf("tlog.CheckRecord: %v", err)
	}
	theirs, err := tlog.ProveRecord(head.tree.N, item.Index, head.hashes)
	if err != nil {
		return fmt.Errorf("tlog.ProveRecord: %v", err)
	}
	if !equal(theirs, proof) {
		return fmt.Errorf("the proof differs from tlog.ProveRecord's")
	}
	return nil
}

func checkConsistency(old, new *checkpoint, raw [][]byte) error {
	proof, err := hashes(raw)
	if err != nil {
		return err
	}
	if err := tlog.CheckTree(tlog.TreeProof(proof), new.tree.N, new.tree.Hash, old.tree.N, old.tree.Hash); err != nil {
		return fmt.Errorf("tlog.CheckTree: %v", err)
	}
	theirs, err := tlog.ProveTree(new.tree.N, old.tree.N, new.hashes)
	if err != nil {
		return fmt.Errorf("tlog.ProveTree: %v", err)
	}
	if !equal(theirs, proof) {
		return fmt.Errorf("the proof differs from tlog.ProveTree's")
	}
	return nil
}

// directory is a tlog.TileReader over the C2SP files: Go's tile paths are
// tile/8/<L>/<N>[.p/<W>] and tile/8/data/... for entries; the C2SP ones drop the "8/"
// and call the data "entries".
type directory struct {
	root    string
	cache   map[string][]byte
	checked map[string]bool
}

func c2spPath(t tlog.Tile) string {
	path := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", height))
	if t.L == -1 {
		path = "entries/" + strings.TrimPrefix(path, "data/")
	}
	return "tile/" + path
}

func (d *directory) read(path string) ([]byte, error) {
	if data, ok := d.cache[path]; ok {
		return data, nil
	}
	data, err := os.ReadFile(filepath.Join(d.root, filepath.FromSlash(path)))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %v", path, err)
	}
	d.cache[path] = data
	return data, nil
}

func (d *directory) Height() int { return height }

func (d *directory) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		raw, err := d.read(c2spPath(t))
		if err != nil {
			return nil, err
		}
		data[i] = raw
	}
	return data, nil
}

func (d *directory) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

// bundle reads the entry bundle n of a tree of the given size: full, or the partial
// bundle at the tree's right edge. Each distinct entry is checked once to be canonical
// JSON.
func (d *directory) bundle(n, size int64) ([][]byte, error) {
	width := size - n<<height
	if width > 1<<height {
		width = 1 << height
	}
	path := c2spPath(tlog.Tile{H: height, L: -1, N: n, W: int(width)})
	data, err := d.read(path)
	if err != nil {
		return nil, err
	}
	var entries [][]byte
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, fmt.Errorf("%s: a truncated length", path)
		}
		length := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+length {
			return nil, fmt.Errorf("%s: a truncated entry", path)
		}
		entries = append(entries, data[2:2+length])
		data = data[2+length:]
	}
	if int64(len(entries)) != width {
		return nil, fmt.Errorf("%s: %d entries, not %d", path, len(entries), width)
	}
	for i, entry := range entries {
		if d.checked[string(entry)] {
			continue
		}
		if err := checkCanonical(entry); err != nil {
			return nil, fmt.Errorf("%s: entry %d: %v", path, i, err)
		}
		d.checked[string(entry)] = true
	}
	return entries, nil
}

var entryKeys = []string{
	"alg", "aud", "exp", "iat", "iss", "jti", "kid", "principal", "run_id", "sub", "team", "token_sha256",
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// checkCanonical checks an entry against the documented encoding with Go's own JSON:
// the twelve members, and the bytes encoding/json writes for the same values (sorted
// keys, no whitespace, UTF-8 unescaped; the test's entries hold no character that Go
// escapes and the documented form does not).
func checkCanonical(entry []byte) error {
	decoder := json.NewDecoder(bytes.NewReader(entry))
	decoder.UseNumber()
	var record map[string]interface{}
	if err := decoder.Decode(&record); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	keys := make([]string, 0, len(record))
	for key := range record {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != strings.Join(entryKeys, ",") {
		return fmt.Errorf("members %v", keys)
	}
	if digest, ok := record["token_sha256"].(string); !ok || !sha256Hex.MatchString(digest) {
		return fmt.Errorf("token_sha256 is not a SHA-256 in hex")
	}
	var buffer bytes.Buffer
	encoder := json.NewEncoder(&buffer)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(record); err != nil {
		return err
	}
	if canonical := bytes.TrimSuffix(buffer.Bytes(), []byte("\n")); !bytes.Equal(canonical, entry) {
		return fmt.Errorf("not canonical: Go writes %s", canonical)
	}
	return nil
}

func hashes(raw [][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(raw))
	for i, h := range raw {
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d is %d bytes", i, len(h))
		}
		copy(out[i][:], h)
	}
	return out, nil
}

func equal(a, b []tlog.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
