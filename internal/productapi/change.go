package productapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxPrice is the highest price a PUT may set.
const MaxPrice = 1e9

// changeExample is the shape of a PUT body, for error messages.
const changeExample = `{"price": 9.99} (fields name, description, price)`

// errMediaType is wrapped by checkJSONContentType's errors: the answer is 415.
var errMediaType = errors.New("unsupported media type")

// checkJSONContentType accepts Content-Type: application/json, with parameters such
// as charset=utf-8; JSON is UTF-8, so another charset is refused, as is a missing type.
func checkJSONContentType(h http.Header) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		return fmt.Errorf("%w: the request has no Content-Type; send Content-Type: application/json", errMediaType)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q; send Content-Type: application/json", errMediaType, truncate(ct, 60))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Errorf("%w: charset %q; JSON is UTF-8: send Content-Type: application/json or application/json; charset=utf-8", errMediaType, truncate(cs, 30))
	}
	return nil
}

// decodeChange reads a PUT body strictly: exactly one JSON object in valid UTF-8,
// whose members are name and description (strings) and price (a number from 0 to
// MaxPrice, -0 read as 0), each at most once, spelled exactly so, and at least one of
// them; nothing may follow the object but white space. Go's encoding/json alone
// would take the first of two objects, fields in any case, the last of duplicate
// names, and null for "no change".
func decodeChange(body []byte) (Change, error) {
	var c Change
	if !utf8.Valid(body) {
		return c, fmt.Errorf("the body is not valid UTF-8; send JSON such as %s", changeExample)
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return c, fmt.Errorf("the body must be one JSON object such as %s", changeExample)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // the '{' checked above
		return c, syntaxError(err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return c, syntaxError(err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return c, fmt.Errorf("the field %q is given twice; give each field once", truncate(name, 40))
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return c, syntaxError(err)
		}
		switch name {
		case "name", "description":
			s, err := decodeString(name, raw)
			if err != nil {
				return c, err
			}
			if name == "name" {
				c.Name = &s
			} else {
				c.Description = &s
			}
		case "price":
			p, err := decodePrice(raw)
			if err != nil {
				return c, err
			}
			c.Price = &p
		default:
			return c, fmt.Errorf("unknown field %q; the fields are name, description and price", truncate(name, 40))
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return c, syntaxError(err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		what := "more data"
		if d, ok := tok.(json.Delim); ok && d == '{' {
			what = "a second object"
		}
		return c, fmt.Errorf("%s follows the JSON object; send exactly one object such as %s", what, changeExample)
	}
	if len(seen) == 0 {
		return c, fmt.Errorf("the object changes nothing; give at least one field, e.g. %s", changeExample)
	}
	return c, nil
}

func decodeString(name string, raw json.RawMessage) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' {
		return "", fmt.Errorf("%s must be a JSON string, not %s", name, truncate(string(raw), 30))
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", syntaxError(err)
	}
	return s, nil
}

// decodePrice reads a JSON number: anything else (a string, null, true) is refused,
// as are numbers a float64 cannot hold, and -0 is 0.
func decodePrice(raw json.RawMessage) (float64, error) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, fmt.Errorf("price must be a JSON number such as 9.99, not %s", truncate(string(raw), 30))
	}
	p, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(p) || math.IsInf(p, 0) {
		return 0, fmt.Errorf("price %s: it must be a number between 0 and %g", truncate(string(raw), 30), MaxPrice)
	}
	if p == 0 {
		p = 0 // -0 is 0: the stored product never says -0
	}
	if p < 0 || p > MaxPrice {
		return 0, fmt.Errorf("price %s: it must be between 0 and %g", truncate(string(raw), 30), MaxPrice)
	}
	return p, nil
}

// syntaxError says where the JSON broke, and what a body looks like.
func syntaxError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("the body is not valid JSON at byte %d (%v); send one object such as %s", se.Offset, se, changeExample)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("the body ends inside the JSON object; send one complete object such as %s", changeExample)
	}
	return fmt.Errorf("the body is not valid JSON (%v); send one object such as %s", err, changeExample)
}
