package pdfdoc

import (
	"bytes"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
)

// Page geometry, in millimetres (US Letter: the Kill-the-Clipboard
// profile is American; it prints on A4 with a little more bottom margin).
const (
	margin   = 15.0
	bodySize = 9.5
	lineH    = 4.3
	font     = "go"
)

var (
	black = [3]int{0, 0, 0}
	grey  = [3]int{90, 90, 90}
	red   = [3]int{176, 0, 32}
	rule  = [3]int{170, 170, 170}
	fill  = [3]int{238, 238, 238}
)

// writer lays out one document.
type writer struct {
	f        *fpdf.Fpdf
	width    float64 // between the margins
	pageH    float64
	headRow  []cell // the header row of the table being drawn, for page breaks
	colW     []float64
	footLeft string
	// sources: records come from more than one source, so tables have a
	// column with the source's number.
	sources bool
}

func newWriter(title, subject string, now time.Time) *writer {
	f := fpdf.New("P", "mm", "Letter", "")
	f.SetMargins(margin, margin, margin)
	f.SetAutoPageBreak(true, margin+6)
	f.AddUTF8FontFromBytes(font, "", goregular.TTF)
	f.AddUTF8FontFromBytes(font, "B", gobold.TTF)
	f.SetCreationDate(now)
	f.SetModificationDate(now)
	f.SetCatalogSort(true)
	f.SetTitle(clean(title), true)
	f.SetSubject(clean(subject), true)
	f.SetCreator("phr", true)
	f.SetProducer("phr", true)
	f.AliasNbPages("{nb}")
	w, h := f.GetPageSize()
	wr := &writer{f: f, width: w - 2*margin, pageH: h}
	f.SetFooterFunc(func() {
		f.SetY(-margin)
		f.SetFont(font, "", 7.5)
		f.SetTextColor(grey[0], grey[1], grey[2])
		f.CellFormat(wr.width*0.8, 4, wr.footLeft, "", 0, "L", false, 0, "")
		f.CellFormat(wr.width*0.2, 4, "Page "+itoa(f.PageNo())+" of {nb}", "", 0, "R", false, 0, "")
	})
	f.AddPage()
	return wr
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// bytes returns the finished PDF.
func (w *writer) bytes() ([]byte, error) {
	var buf bytes.Buffer
	if err := w.f.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (w *writer) color(c [3]int) { w.f.SetTextColor(c[0], c[1], c[2]) }

// space returns how much room is left on the page.
func (w *writer) space() float64 { return w.pageH - margin - 6 - w.f.GetY() }

// need starts a new page unless h millimetres are left.
func (w *writer) need(h float64) {
	if w.space() < h {
		w.f.AddPage()
	}
}

// text writes a paragraph.
func (w *writer) text(s string, size float64, style string, c [3]int) {
	w.f.SetFont(font, style, size)
	w.color(c)
	w.f.MultiCell(w.width, size*0.45, clean(s), "", "L", false)
}

// heading starts a section, kept with at least the next few lines.
func (w *writer) heading(s string) {
	w.need(22)
	w.f.Ln(2.5)
	w.f.SetFont(font, "B", 12)
	w.color(black)
	w.f.CellFormat(w.width, 6, clean(s), "", 1, "L", false, 0, "")
	x, y := w.f.GetXY()
	w.f.SetDrawColor(rule[0], rule[1], rule[2])
	w.f.SetLineWidth(0.3)
	w.f.Line(x, y, x+w.width, y)
	w.f.Ln(1.2)
}

// subheading names a group within a section, kept with what follows.
func (w *writer) subheading(s string, c [3]int) {
	w.need(18)
	w.f.Ln(1)
	w.text(s, 10, "B", c)
	w.f.Ln(0.5)
}

// note writes a short grey line under a section heading.
func (w *writer) note(s string) {
	w.text(s, 8.5, "", grey)
	w.f.Ln(0.6)
}

// cell is one cell of a table row.
type cell struct {
	text  string
	bold  bool
	color [3]int
	// draw, when set, draws the cell's content in the box x, y, w, h
	// instead of text; minH is the height it needs.
	draw func(w *writer, x, y, width, height float64)
	minH float64
}

// table draws rows with the given column widths (fractions of the page
// width) and a header row repeated after page breaks.
func (w *writer) table(widths []float64, head []string, rows [][]cell) {
	w.colW = make([]float64, len(widths))
	for i, f := range widths {
		w.colW[i] = f * w.width
	}
	w.headRow = nil
	for _, h := range head {
		w.headRow = append(w.headRow, cell{text: h, bold: true, color: grey})
	}
	w.need(2 * lineH * 2.5)
	w.row(w.headRow, true)
	for _, r := range rows {
		w.row(r, false)
	}
	w.f.Ln(1)
}

// sourced is table for rows whose last cell is the record's source: with
// one source for the whole document, that column is left out and the
// others share its width.
func (w *writer) sourced(widths []float64, head []string, rows [][]cell) {
	if w.sources {
		w.table(widths, head, rows)
		return
	}
	n := len(widths) - 1
	scale := 1 / (1 - widths[n])
	ws := make([]float64, n)
	for i := range ws {
		ws[i] = widths[i] * scale
	}
	cut := make([][]cell, len(rows))
	for i, r := range rows {
		cut[i] = r[:n]
	}
	w.table(ws, head[:n], cut)
}

// row draws one row, starting a new page (with the header again) when it
// does not fit.
func (w *writer) row(cells []cell, header bool) {
	f := w.f
	size := bodySize
	if header {
		size = 8
	}
	lines := make([][]string, len(cells))
	h := 0.0
	for i, c := range cells {
		if c.draw != nil {
			h = max(h, c.minH)
			continue
		}
		style := ""
		if c.bold {
			style = "B"
		}
		f.SetFont(font, style, size)
		lines[i] = f.SplitText(clean(c.text), w.colW[i]-1.6)
		h = max(h, float64(len(lines[i]))*lineH+1.4)
	}
	if !header && w.space() < h {
		f.AddPage()
		if w.headRow != nil {
			w.row(w.headRow, true)
		}
	}
	x0, y0 := f.GetXY()
	if header {
		f.SetFillColor(fill[0], fill[1], fill[2])
		f.Rect(x0, y0, w.width, h, "F")
	}
	x := x0
	for i, c := range cells {
		if c.draw != nil {
			c.draw(w, x+0.8, y0+0.7, w.colW[i]-1.6, h-1.4)
		} else {
			style := ""
			if c.bold {
				style = "B"
			}
			f.SetFont(font, style, size)
			w.color(c.color)
			for j, l := range lines[i] {
				f.SetXY(x+0.8, y0+0.7+float64(j)*lineH)
				f.CellFormat(w.colW[i]-1.6, lineH, l, "", 0, "L", false, 0, "")
			}
		}
		x += w.colW[i]
	}
	f.SetDrawColor(220, 220, 220)
	f.SetLineWidth(0.2)
	f.Line(x0, y0+h, x0+w.width, y0+h)
	f.SetXY(x0, y0+h)
	w.color(black)
}

// clean makes s safe to set: valid UTF-8, no control characters
// (newlines and tabs become spaces unless keepLines).
func clean(s string) string { return cleanText(s, false) }

func cleanText(s string, keepLines bool) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' && keepLines:
			return r
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.Is(unicode.Cf, r): // zero-width and other format characters: no glyph
			return -1
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			if keepLines && (r == '\u2028' || r == '\u2029') {
				return '\n'
			}
			return -1
		}
		return r
	}, s)
}
