package qrimage

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/phr-project/phr/pkg/importers"
)

// Gather finds, among the files of one import, the images that hold only
// some chunks of a split SMART Health Card ("shc:/C/N/..."), and joins the
// chunks of each card (by its chunk count N) into one input: the shc:/
// text of all of them, named after the images ("a.png + b.png"). It
// returns the other files unchanged, in their order. Files that are not
// images, images that cannot be read, and images holding whole cards or
// links are left to the usual import (which reports their problems). Two
// different cards with the same chunk count, split over the images of one
// import, are joined and then refused by the shc importer (two different
// chunks with one number): import them separately.
func Gather(paths []string) (rest []string, joined []*importers.Input) {
	images := 0
	for _, p := range paths {
		if isImageFile(p) {
			images++
		}
	}
	if images < 2 {
		return paths, nil
	}
	type pool struct {
		names []string
		lines []string
	}
	pools := map[int]*pool{}
	var order []int
	for _, p := range paths {
		n, lines := partialChunks(p)
		if n == 0 {
			rest = append(rest, p)
			continue
		}
		pl := pools[n]
		if pl == nil {
			pl = &pool{}
			pools[n] = pl
			order = append(order, n)
		}
		pl.names = append(pl.names, filepath.Base(p))
		pl.lines = append(pl.lines, lines...)
	}
	for _, n := range order {
		pl := pools[n]
		text := strings.Join(pl.lines, "\n") + "\n"
		sum := sha256.Sum256([]byte(text))
		joined = append(joined, &importers.Input{
			Name:   strings.Join(pl.names, " + "),
			R:      strings.NewReader(text),
			Size:   int64(len(text)),
			SHA256: hex.EncodeToString(sum[:]),
		})
	}
	return rest, joined
}

func isImageFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head, _ := bufio.NewReader(f).Peek(8)
	return Detect(head)
}

// partialChunks returns the chunk count N and the lines of an image whose
// codes are all chunks of one split card, not all of them; else 0.
func partialChunks(path string) (int, []string) {
	if !isImageFile(path) {
		return 0, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	texts, err := Scan(f)
	if err != nil {
		return 0, nil
	}
	total := 0
	have := map[int]bool{}
	for _, t := range texts {
		c, n, ok := chunkNumbers(t)
		if !ok || (total != 0 && n != total) {
			return 0, nil
		}
		total = n
		have[c] = true
	}
	if total == 0 || len(have) == total {
		return 0, nil
	}
	return total, texts
}

// chunkNumbers reads C and N of "shc:/C/N/digits".
func chunkNumbers(t string) (c, n int, ok bool) {
	t = strings.TrimSpace(t)
	if len(t) < 5 || !strings.EqualFold(t[:5], "shc:/") {
		return 0, 0, false
	}
	parts := strings.SplitN(t[5:], "/", 3)
	if len(parts) != 3 {
		return 0, 0, false
	}
	c, err1 := strconv.Atoi(parts[0])
	n, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || n < 2 || c < 1 || c > n {
		return 0, 0, false
	}
	return c, n, true
}
