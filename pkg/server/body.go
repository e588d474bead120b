package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/phr-project/phr/pkg/server/api"
	"github.com/phr-project/phr/pkg/shlhost"
)

// bodyRule is what one route accepts as a request body: at most max
// bytes and, when the server decodes it as JSON, at most depth levels of
// nesting and items array elements and object members in all. A JSON
// body is held to its rule in one pass over its bytes before any decoder
// sees it, so a megabyte of "[[[[" or of "{},{},{}" costs a scan, not a
// decoder's allocations.
type bodyRule struct {
	max   int64
	depth int // 0: the server does not decode it as JSON (uploads, /shl)
	items int
}

// Shapes of JSON bodies.
const (
	// Small objects: logins, devices, keys, share files.
	smallBody  = 8 << 10
	smallDepth = 8
	smallItems = 256
	// Structured bodies with one long list (ingest readings, share
	// selections).
	listDepth = 8
	// FHIR resources nest (Questionnaire items, extensions, contained
	// resources) but not this deep; Go's decoder alone allows 10,000.
	fhirDepth = 100
	fhirItems = 100_000
	// shareItems bounds a share request: select.ids and types.
	shareItems = 10_000
	// shareBody bounds share requests (pre-encrypted files included).
	shareBody = 4 << 20
)

// noBody is the rule of routes that take no body: a small one is
// tolerated (some clients send "{}" with a DELETE) and never read.
var noBody = bodyRule{max: 4 << 10}

// bodyRules is the one table of request body limits, by route ("METHOD
// /template"). Every route that takes a body (POST, PUT, PATCH) must be
// here: a test holds the router to it.
func (s *Server) bodyRules() map[string]bodyRule {
	c := s.cfg
	return map[string]bodyRule{
		"POST /api/v1/accounts":               {smallBody, smallDepth, smallItems},
		"POST /api/v1/accounts/recover":       {smallBody, smallDepth, smallItems},
		"POST /api/v1/backup":                 {smallBody, smallDepth, smallItems},
		"POST /api/v1/sessions":               {smallBody, smallDepth, smallItems},
		"POST /api/v1/devices":                {smallBody, smallDepth, smallItems},
		"POST /api/v1/records":                {c.MaxBodyBytes, fhirDepth, fhirItems},
		"PUT /api/v1/records/:id":             {c.MaxBodyBytes, fhirDepth, fhirItems},
		"POST /api/v1/imports":                {max: c.MaxImportBytes}, // multipart
		"POST /api/v1/ingest":                 {c.MaxIngestBytes, listDepth, 10*c.MaxIngestReadings + 64},
		"POST /api/v1/keys/passphrase":        {smallBody, smallDepth, smallItems},
		"POST /api/v1/keys/recovery":          {smallBody, smallDepth, smallItems},
		"POST /api/v1/keys/rotate":            {smallBody, smallDepth, smallItems},
		"POST /api/v1/shares":                 {shareBody, listDepth, shareItems},
		"PUT /api/v1/shares/:id/files":        {shareBody, smallDepth, smallItems},
		"POST " + shlhost.PathPrefix + "/:id": {max: s.shl.MaxBody()}, // parsed by shlhost

		// Passkeys (passkeys.go): WebAuthn credentials are small.
		"POST /api/v1/passkeys/register/begin":  {smallBody, smallDepth, smallItems},
		"POST /api/v1/passkeys/register/finish": {smallBody, smallDepth, smallItems},
		"POST /api/v1/passkeys/login/begin":     {smallBody, smallDepth, smallItems},
		"POST /api/v1/passkeys/login/finish":    {smallBody, smallDepth, smallItems},
	}
}

const ctxBody = "phrd.body"

// limitBody applies the route's body rule: a declared length over it is
// refused at once, without reading a byte; a body without one (chunked)
// is cut at the limit as it is read.
func (s *Server) limitBody(rules map[string]bodyRule) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			rule, ok := rules[req.Method+" "+c.Path()]
			if !ok {
				rule = noBody
			}
			c.Set(ctxBody, rule)
			if req.ContentLength > rule.max {
				return &http.MaxBytesError{Limit: rule.max}
			}
			if req.Body != nil && req.Body != http.NoBody {
				req.Body = http.MaxBytesReader(c.Response(), req.Body, rule.max)
			}
			return next(c)
		}
	}
}

func ruleOf(c echo.Context) bodyRule {
	if r, ok := c.Get(ctxBody).(bodyRule); ok {
		return r
	}
	return noBody
}

// readBody reads a JSON body (size-limited by limitBody) and holds it to
// the route's shape limits.
func readBody(c echo.Context) ([]byte, error) {
	if err := requireJSON(c); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return nil, readError(err)
	}
	rule := ruleOf(c)
	if err := checkJSONShape(data, rule.depth, rule.items); err != nil {
		return nil, err
	}
	return data, nil
}

// readError maps an error reading a body: over the limit stays a
// MaxBytesError (413), a read deadline is 408, a client gone is the
// cancellation it is.
func readError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errReadTimeout
	}
	return badRequest("the body could not be read")
}

// errReadTimeout: the client did not send its body in time.
var errReadTimeout = newError(http.StatusRequestTimeout, api.CodeTimeout, "the request body did not arrive in time")

// decodeJSON reads a JSON body into dst, strictly: unknown fields,
// trailing data and a wrong Content-Type are errors.
func decodeJSON(c echo.Context, dst any) error {
	data, err := readBody(c)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return badRequest("the body must hold one JSON object")
	}
	// encoding/json matches names without regard to case and lets a
	// repeated member win: hold the names to exactly one spelling, once.
	return checkNames(json.NewDecoder(bytes.NewReader(data)), reflect.TypeOf(dst), "")
}

// checkNames walks one JSON value (valid: it was just decoded) against
// the Go type it was decoded into, and refuses object members that name
// a struct field in another case than its JSON name, or that repeat.
// Values of types that decode themselves (time.Time, json.RawMessage)
// and of interface types are skipped.
func checkNames(d *json.Decoder, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		var skip json.RawMessage
		return d.Decode(&skip)
	}
	tok, err := d.Token()
	if err != nil {
		return badRequest("the body is not valid JSON")
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return badRequest("the body is not valid JSON")
			}
			name, _ := k.(string)
			ft := t
			switch t.Kind() {
			case reflect.Map:
				ft = t.Elem()
			case reflect.Struct:
				f, ok := jsonField(t, name)
				if !ok {
					return badRequest("unknown field %q", truncate(path+name, 80))
				}
				ft = f
			}
			if seen[name] {
				return badRequest("field %q appears more than once", truncate(path+name, 80))
			}
			seen[name] = true
			if err := checkNames(d, ft, path+name+"."); err != nil {
				return err
			}
		}
	case json.Delim('['):
		et := t
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			et = t.Elem()
		}
		for i := 0; d.More(); i++ {
			if err := checkNames(d, et, fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i)); err != nil {
				return err
			}
		}
	default:
		return nil // a scalar
	}
	_, err = d.Token() // the closing bracket
	return err
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// jsonField finds the field of struct type t whose JSON name is exactly
// name, as encoding/json names fields (tags, embedded structs).
func jsonField(t reflect.Type, name string) (reflect.Type, bool) {
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous && f.Tag.Get("json") == "" && f.Type.Kind() == reflect.Struct {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f.Type, true
		}
	}
	return nil, false
}

// readJSON reads a JSON body for decoding by hand (FHIR resources keep
// every field).
func readJSON(c echo.Context) ([]byte, error) {
	data, err := readBody(c)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimSpace(data)
	if !json.Valid(data) {
		return nil, badRequest("the body is not valid JSON")
	}
	return data, nil
}

func requireJSON(c echo.Context) error {
	ct := c.Request().Header.Get("Content-Type")
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt != "application/json" && mt != "application/fhir+json" && !strings.HasSuffix(mt, "+json") {
		return newError(http.StatusUnsupportedMediaType, api.CodeUnsupportedType, "send the body as application/json")
	}
	return nil
}

// jsonError describes a decoding error by field, without quoting input.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return badRequest("the body is empty")
	case errors.As(err, &se):
		return badRequest("the body is not valid JSON (at byte %d)", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return badRequest("%s: must be a JSON %s", te.Field, te.Type.Kind())
		}
		return badRequest("the body must be a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return badRequest("the body is not valid JSON")
}

// checkJSONShape refuses JSON text nested deeper than maxDepth, or with
// more than maxItems array elements and object members in all. It does
// not validate (the decoder after it does) and stops at the first excess;
// maxDepth 0 means the body is not the server's to decode.
func checkJSONShape(data []byte, maxDepth, maxItems int) error {
	if maxDepth <= 0 {
		return nil
	}
	depth, items := 0, 0
	inString, escaped, open := false, false, false
	for _, b := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
			continue
		}
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		}
		// The first token after an opening bracket is the container's
		// first item, unless it closes it; every comma adds one.
		if open && b != '}' && b != ']' {
			items++
		}
		open = false
		switch b {
		case '{', '[':
			depth++
			if depth > maxDepth {
				return badRequest("the body nests JSON deeper than %d levels", maxDepth)
			}
			open = true
		case '}', ']':
			depth--
		case ',':
			items++
		case '"':
			inString = true
		}
		if items > maxItems {
			return badRequest("the body holds more than %d JSON values", maxItems)
		}
	}
	return nil
}
