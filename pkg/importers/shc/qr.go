package shc

import (
	"fmt"
	"strconv"
	"strings"
)

// fromQR reads "shc:/" numeric QR text: one card per single-chunk line
// ("shc:/5676..."), and one card from the chunk lines "shc:/C/N/..." of a
// split card, which must all be present. It returns the line of an error.
func fromQR(text string) ([]jwsAt, int, error) {
	var out []jwsAt
	var chunks []string // chunk C at chunks[C-1]
	chunkLine := 0
	total := 0
	line := 0
	for l := range strings.Lines(text) {
		line++
		s := strings.TrimSpace(l)
		if s == "" {
			continue
		}
		if !hasPrefixFold(s, "shc:/") {
			return nil, line, fmt.Errorf("%w: a line does not start with shc:/", ErrMalformed)
		}
		s = s[len("shc:/"):]
		if len(s) > MaxQRDigits+8 { // room for "C/N/"
			return nil, line, fmt.Errorf("%w: a shc:/ line over %d digits (more than one QR code holds)", ErrTooLarge, MaxQRDigits)
		}
		if !strings.Contains(s, "/") {
			if len(s) > MaxQRDigits {
				return nil, line, fmt.Errorf("%w: a shc:/ line over %d digits (more than one QR code holds)", ErrTooLarge, MaxQRDigits)
			}
			if len(out) >= MaxCards {
				return nil, line, fmt.Errorf("%w: more than %d cards", ErrTooLarge, MaxCards)
			}
			jws, err := numericToJWS(s)
			if err != nil {
				return nil, line, err
			}
			out = append(out, jwsAt{jws: jws, line: line})
			continue
		}
		parts := strings.SplitN(s, "/", 3)
		if len(parts) != 3 {
			return nil, line, fmt.Errorf("%w: a chunk line is not shc:/C/N/digits", ErrMalformed)
		}
		c, err1 := strconv.Atoi(parts[0])
		n, err2 := strconv.Atoi(parts[1])
		if err1 != nil || err2 != nil || n < 1 || n > MaxQRChunks || c < 1 || c > n {
			return nil, line, fmt.Errorf("%w: bad chunk numbers (want shc:/C/N/ with 1 <= C <= N <= %d)", ErrQRChunks, MaxQRChunks)
		}
		if len(parts[2]) > MaxQRDigits {
			return nil, line, fmt.Errorf("%w: a shc:/ line over %d digits (more than one QR code holds)", ErrTooLarge, MaxQRDigits)
		}
		if total == 0 {
			total, chunks, chunkLine = n, make([]string, n), line
		} else if n != total {
			return nil, line, fmt.Errorf("%w: chunks of a %d-part and a %d-part card in one file", ErrQRChunks, total, n)
		}
		if prev := chunks[c-1]; prev != "" && prev != parts[2] {
			return nil, line, fmt.Errorf("%w: two different chunks numbered %d", ErrQRChunks, c)
		}
		chunks[c-1] = parts[2]
	}
	if total > 0 {
		var missing []string
		for i, ch := range chunks {
			if ch == "" {
				missing = append(missing, strconv.Itoa(i+1))
			}
		}
		if len(missing) > 0 {
			return nil, chunkLine, fmt.Errorf("%w: chunk %s of %d missing", ErrQRChunks, strings.Join(missing, ", "), total)
		}
		jws, err := numericToJWS(strings.Join(chunks, ""))
		if err != nil {
			return nil, chunkLine, err
		}
		out = append(out, jwsAt{jws: jws, line: chunkLine})
	}
	return out, line, nil
}

// numericToJWS decodes the numeric mode of a card QR code: each pair of
// digits is a character's code minus 45.
func numericToJWS(digits string) (string, error) {
	if len(digits) > 2*MaxJWSSize {
		return "", fmt.Errorf("%w: a JWS over %d MiB", ErrTooLarge, MaxJWSSize>>20)
	}
	if len(digits) == 0 || len(digits)%2 != 0 {
		return "", fmt.Errorf("%w: QR digits are not an even, non-zero count", ErrMalformed)
	}
	b := make([]byte, len(digits)/2)
	for i := range b {
		d0, d1 := digits[2*i], digits[2*i+1]
		if d0 < '0' || d0 > '9' || d1 < '0' || d1 > '9' {
			return "", fmt.Errorf("%w: QR text has a non-digit", ErrMalformed)
		}
		v := int(d0-'0')*10 + int(d1-'0')
		if v > 'z'-45 {
			return "", fmt.Errorf("%w: QR digit pair out of range", ErrMalformed)
		}
		b[i] = byte(v + 45)
	}
	return string(b), nil
}
